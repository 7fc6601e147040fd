"""The random-effects structure every family shares.

``mu``, ``beta``, ``tau``, ``theta`` and ``theta_new``, with no, partial or complete
pooling.

Each builder calls :func:`add_treatment_effects` inside its ``pm.Model`` and then adds its
own likelihood on ``theta``.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import pandas as pd

from bayeskit.errors import UserError
from bayeskit.measures import ratio_parameter

POOLING = ("partial", "none", "full")
PARAMETRIZATIONS = ("noncentered", "centered")


def check_pooling(pooling: str, X: pd.DataFrame) -> str:
    """Validate ``pooling`` (and that no-pooling models have no covariates).

    Examples
    --------
    >>> import pandas as pd
    >>> check_pooling("partial", pd.DataFrame(index=range(3)))
    'partial'
    >>> check_pooling("none", pd.DataFrame({"dose": [1.0, 2.0]}))
    Traceback (most recent call last):
    ...
    bayeskit.errors.UserError: covariates need a pooled model: ...
    """
    if pooling not in POOLING:
        raise UserError(f"pooling must be one of {', '.join(POOLING)} (got {pooling!r})")
    if pooling == "none" and X.shape[1]:
        raise UserError(
            "covariates need a pooled model: with pooling='none' each study has "
            "its own effect and there is no regression to fit"
        )
    return pooling


def add_treatment_effects(
    priors: Mapping,
    X: pd.DataFrame,
    *,
    pooling: str,
    parametrization: str,
):
    """Add the treatment-effect parameters to the model on the context stack.

    Returns the tensor ``theta`` (one effect per study). Under ``"partial"`` pooling
    ``theta[study] ~ Normal(mu + X beta, tau)``; under ``"full"`` every study shares
    ``mu + X beta`` (``tau`` is 0); under ``"none"`` each ``theta`` has the ``mu`` prior
    and there is no ``mu``, ``tau`` or ``theta_new``.

    ``theta_new`` is the effect in a new study with every covariate at 0 (the reference
    levels): the predictive distribution ``Normal(mu, tau)``.

    Examples
    --------
    >>> import pymc as pm
    >>> from bayeskit.priors import parse_prior
    >>> priors = {"mu": parse_prior("Normal(0, 1)"), "tau": parse_prior("HalfNormal(0.5)")}
    >>> with pm.Model(coords={"study": ["A", "B", "C"]}) as model:
    ...     theta = add_treatment_effects(priors, pd.DataFrame(index=range(3)),
    ...                                   pooling="partial", parametrization="noncentered")
    >>> [rv.name for rv in model.free_RVs], [d.name for d in model.deterministics]
    (['mu', 'tau', 'theta_z', 'theta_new_z'], ['theta', 'theta_new'])
    """
    import pymc as pm
    import pytensor.tensor as pt

    if pooling == "none":
        return priors["mu"].to_pymc("theta", dims="study")
    mu = priors["mu"].to_pymc("mu")
    linpred = mu
    if X.shape[1]:
        Xd = pm.Data("X", X.to_numpy(float), dims=("study", "term"))
        beta = priors["beta"].to_pymc("beta", dims="term")
        linpred = mu + pt.dot(Xd, beta)
    if pooling == "full":
        pm.Deterministic("tau", pt.as_tensor_variable(np.float64(0.0)))
        pm.Deterministic("theta_new", mu)
        return pm.Deterministic("theta", linpred + pt.zeros(len(X)), dims="study")
    tau = priors["tau"].to_pymc("tau")
    if parametrization == "centered":
        theta = pm.Normal("theta", mu=linpred, sigma=tau, dims="study")
    else:
        z = pm.Normal("theta_z", 0.0, 1.0, dims="study")
        theta = pm.Deterministic("theta", linpred + tau * z, dims="study")
    z_new = pm.Normal("theta_new_z", 0.0, 1.0)
    pm.Deterministic("theta_new", mu + tau * z_new)
    return theta


def add_binary_scale(measure: str | None, baseline_risk: float | None, pooling: str) -> None:
    """Add the pooled effect on the ratio scale and on the absolute probability scale.

    For log odds ratios: ``odds_ratio = exp(mu)`` and, at the stated control-group risk
    ``p_control``, ``p_treatment = expit(logit(p_control) + mu)`` and
    ``risk_difference = p_treatment - p_control``; for log risk ratios likewise with
    ``risk_ratio`` and ``p_treatment = p_control * exp(mu)`` (capped at 1).

    Examples
    --------
    >>> import pymc as pm
    >>> with pm.Model() as model:
    ...     mu = pm.Normal("mu", 0, 1)
    ...     add_binary_scale("OR", 0.2, "partial")
    >>> [d.name for d in model.deterministics]
    ['odds_ratio', 'p_treatment', 'risk_difference']
    >>> round(float(model["p_treatment"].eval({model["mu"]: 0.0})), 3)  # OR 1: no change
    0.2
    """
    import pymc as pm
    import pytensor.tensor as pt

    if pooling == "none" or measure not in ("OR", "RR"):
        return
    model = pm.modelcontext(None)
    mu = model["mu"]
    pm.Deterministic(ratio_parameter(measure), pt.exp(mu))
    if baseline_risk is None:
        return
    if not 0 < baseline_risk < 1:
        raise UserError(
            f"the baseline risk must lie strictly between 0 and 1 (got {baseline_risk})"
        )
    p0 = float(baseline_risk)
    if measure == "OR":
        p1 = pm.math.invlogit(np.log(p0 / (1 - p0)) + mu)
    else:
        p1 = pt.minimum(p0 * pt.exp(mu), 1.0)
    pm.Deterministic("p_treatment", p1)
    pm.Deterministic("risk_difference", p1 - p0)
