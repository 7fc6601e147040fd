"""Former home of the model families, now :mod:`bayeskit.families`.

The old import paths keep working: ``bayeskit.models.data``, ``bayeskit.models.exposure``
and the other modules are the moved ones under their old names.

>>> from bayeskit.models.exposure import beta_params
>>> beta_params.__module__
'bayeskit.families.exposure.model'
"""

from __future__ import annotations

import importlib
import sys

from bayeskit.families import FAMILIES, Family, get_family

_MOVED = {
    "_effects": "bayeskit.families._effects",
    "data": "bayeskit.families.data",
    "normal_normal": "bayeskit.families.normal_normal",
    "binomial_normal": "bayeskit.families.binomial_normal",
    "normal_arm": "bayeskit.families.normal_arm",
    "exposure": "bayeskit.families.exposure.model",
    "exposure_data": "bayeskit.families.exposure.gather",
}
for _old, _new in _MOVED.items():
    sys.modules[f"{__name__}.{_old}"] = importlib.import_module(_new)

__all__ = ["FAMILIES", "Family", "get_family"]
