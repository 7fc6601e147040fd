"""Model families, registered by name.

Each family is a builder function returning a ``pymc.Model`` with named dims (``study``,
``arm``, ``term``), the kind of data it takes and its default priors. Look one up with
:func:`get_family`; an unknown name raises a :class:`~bayeskit.errors.UserError` that
lists the known ones.

>>> get_family("normal-normal").data
'study'
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from bayeskit.errors import UserError
from bayeskit.models import binomial_normal, exposure, normal_arm, normal_normal


@dataclass(frozen=True)
class Family:
    """A model family: its name, builder and the data it takes.

    Examples
    --------
    >>> family = FAMILIES["binomial-normal"]
    >>> family.data, family.outcome_type, family.prior_names[:3]
    ('arm', 'binary', ('mu', 'tau', 'beta'))
    """

    name: str
    build: Callable
    data: str  # "study" (yi, sei) or "arm"
    outcome_type: str | None  # for arm data: "binary" or "continuous"
    prior_names: tuple[str, ...]
    description: str


FAMILIES = {
    f.name: f
    for f in [
        Family("normal-normal", normal_normal.build, "study", None, ("mu", "tau", "beta"),
               "random effects on study-level effect sizes (yi, sei)"),
        Family("binomial-normal", binomial_normal.build, "arm", "binary",
               ("mu", "tau", "beta", "baseline", "baseline_sd"),
               "exact binomial likelihood on arm counts, fixed study baselines"),
        Family("normal-arm", normal_arm.build, "arm", "continuous",
               ("mu", "tau", "beta", "baseline"),
               "arm-level means and SDs of a continuous outcome"),
        Family("exposure-response", exposure.build, "exposure", None,
               ("beta_dose", "indication_sd", "emax", "ed50", "beta_sessions", "route_sd",
                "tau", "bias", "baseline", "baseline_sd"),
               "dose and route response across designs and indications (arms and contrasts)"),
    ]
}  # fmt: skip
BUILDERS = {name: f.build for name, f in FAMILIES.items()}


def get_family(name: str) -> Family:
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
    key = name.strip().lower().replace("_", "-")
    if key not in FAMILIES:
        raise UserError(f"unknown model {name!r}; choose one of {', '.join(FAMILIES)}")
    return FAMILIES[key]
