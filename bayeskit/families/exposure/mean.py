"""The exposure-response mean function: the one copy, used by the model and by predictions.

Written with arithmetic operators only (and a ``log2`` passed in), so that the same code
runs on PyTensor tensors inside :func:`~bayeskit.families.exposure.model.build` and on
NumPy arrays or xarray posterior draws in :meth:`ExposureResponse.predict`.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import numpy as np


def exposure(dose: Any, bioavailability: Any, sessions: Any, settings: Mapping[str, Any]) -> Any:
    """Systemic exposure ``dose x F[route]`` (times sessions when they act as a multiplier).

    Examples
    --------
    >>> exposure(2.0, 0.5, 3, {"sessions": "multiplier"})
    3.0
    >>> exposure(2.0, 0.5, 3, {"sessions": "term"})
    1.0
    """
    mult = sessions if settings["sessions"] == "multiplier" else 1.0
    return dose * bioavailability * mult


def mean_effect(
    E: Any,
    on: Any,
    sessions: Any,
    *,
    form: str,
    exposure_ref: float | None,
    slope: Any,
    ed50: Any = None,
    beta_sessions: Any = None,
    route_effect: Any = None,
    log2: Callable = np.log2,
) -> Any:
    """Effect against no drug of exposure ``E``: log-linear or Emax, plus sessions and route.

    Parameters
    ----------
    E : array or tensor
        Systemic exposure (mg/kg), from :func:`exposure`.
    on : array or bool
        1 (True) for ketamine arms: the sessions and route terms apply to those only.
    sessions : array or float
        Number of sessions (the ``beta_sessions`` term uses ``log2(max(sessions, 1))``).
    form : {"loglinear", "emax"}
    exposure_ref : float
        Reference exposure of the log-linear form.
    slope
        ``beta_dose`` (log-linear) or ``emax`` of the indication.
    ed50, beta_sessions, route_effect
        Emax half-effect exposure; the sessions coefficient and the route's effect, when
        the model has them (None otherwise).
    log2 : callable
        ``numpy.log2`` for draws, ``pytensor.tensor.log2`` inside a model.

    Examples
    --------
    >>> float(mean_effect(0.1, 1.0, 1, form="loglinear", exposure_ref=0.1, slope=0.3))
    0.3
    >>> float(mean_effect(1.0, 1.0, 1, form="emax", exposure_ref=None, slope=2.0, ed50=1.0))
    1.0
    """
    g = log2(1 + E / exposure_ref) if form == "loglinear" else E / (ed50 + E)
    out = slope * g
    if beta_sessions is not None:
        out = out + beta_sessions * np.log2(np.maximum(sessions, 1.0)) * on
    if route_effect is not None:
        out = out + route_effect * on
    return out
