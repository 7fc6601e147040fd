"""Model families, registered by name: each one owns everything about itself.

A family (a :class:`Family` subclass, one module or folder here) declares its data kind,
prior slots (default, positive-only, flat allowed, and why), an options model that
refuses what does not apply, ``prepare`` (evidence to model data), ``build`` (the PyMC
model) and optionally ``exact``, ``predict`` and an SBC design; the rest of bayeskit
asks the family instead of comparing names, in the manner of bambi's families table.
Look one up with :func:`get_family`; an unknown name raises a
:class:`~bayeskit.errors.UserError` that lists the known ones.

Adding a family is one module here and one line in :data:`REGISTRY`. A family's module
is imported when the family is first looked up, so that listing the names (the CLI's
``--help``) stays fast.

>>> get_family("normal-normal").data
'study'
>>> list(FAMILIES)
['normal-normal', 'binomial-normal', 'normal-arm', 'exposure-response', 'normal-multilevel',
 'normal-selection']
"""

from __future__ import annotations

import importlib
from collections.abc import Iterator, Mapping
from typing import TYPE_CHECKING, Any

from bayeskit.errors import UserError

if TYPE_CHECKING:
    from bayeskit.families._base import Family

#: every family: its name and where its class lives (``module:Class`` in this package)
REGISTRY: dict[str, str] = {
    "normal-normal": "normal_normal:NormalNormal",
    "binomial-normal": "binomial_normal:BinomialNormal",
    "normal-arm": "normal_arm:NormalArm",
    "exposure-response": "exposure:ExposureResponse",
    "normal-multilevel": "normal_multilevel:NormalMultilevel",
    "normal-selection": "normal_selection:NormalSelection",
}


class _Families(Mapping):
    """The registered families by name, each imported and made on first use."""

    def __init__(self) -> None:
        self._made: dict[str, Family] = {}

    def __getitem__(self, name: str) -> Family:
        if name not in self._made:
            module, cls = REGISTRY[name].split(":")
            family = getattr(importlib.import_module(f"{__name__}.{module}"), cls)()
            if family.name != name:
                raise RuntimeError(f"family {cls} is registered as {name!r}, named {family.name!r}")
            self._made[name] = family
        return self._made[name]

    def __iter__(self) -> Iterator[str]:
        return iter(REGISTRY)

    def __len__(self) -> int:
        return len(REGISTRY)


#: every registered family, by name (a read-only mapping)
FAMILIES: Mapping[str, Family] = _Families()


def get_family(name: Any) -> Family:
    """Return the family called ``name`` (``normal-normal``, ``binomial-normal``, ...).

    Examples
    --------
    >>> get_family("Normal_Arm").name
    'normal-arm'
    >>> get_family("probit")
    Traceback (most recent call last):
    ...
    bayeskit.errors.UserError: unknown model 'probit'; choose one of normal-normal, ...
    """
    from bayeskit.families._base import Family

    if isinstance(name, Family):
        return name
    key = str(getattr(name, "value", name)).strip().lower().replace("_", "-")
    if key not in REGISTRY:
        raise UserError(f"unknown model {name!r}; choose one of {', '.join(REGISTRY)}")
    return FAMILIES[key]


_LAZY = {"Family", "Options", "PriorSlot", "SBCDesign", "evidence_tables"}


def __getattr__(name: str):
    if name in _LAZY:
        from bayeskit.families import _base

        return getattr(_base, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = ["FAMILIES", "REGISTRY", "get_family", *sorted(_LAZY)]
