"""``normal-arm``: arm-level means of a continuous outcome.

``mean[arm] ~ Normal(alpha[study] + treat * theta[study], sd / sqrt(n))`` with
``treat`` = -1/2 (control) or +1/2 (experimental), ``alpha`` the study baselines and
``theta ~ Normal(mu + X beta, tau)``: the continuous counterpart of ``binomial-normal``,
with each arm's standard error treated as known. ``theta`` and ``mu`` are mean
differences on the outcome's own scale (COWS points, mmHg, beats per minute).
"""

from __future__ import annotations

from typing import ClassVar, override

import numpy as np

from bayeskit.families._base import PriorSlot
from bayeskit.families._effects import add_treatment_effects, check_pooling
from bayeskit.families._random_effects import BETA, MU, TAU, ArmFamily
from bayeskit.families.data import ArmData


def build(
    data: ArmData,
    priors: dict,
    *,
    pooling: str = "partial",
    parametrization: str = "noncentered",
    baseline_risk: float | None = None,
):
    """Return the ``pymc.Model`` of the normal arm-level model (dims ``study``, ``arm``).

    Examples
    --------
    >>> import bayeskit as bk
    >>> from bayeskit.families.data import arm_data
    >>> from bayeskit.priors import parse_prior
    >>> ev = bk.load_evidence(bk.data_path("opioid_withdrawal.csv"))
    >>> d = arm_data(ev, outcome_type="continuous", outcome="peak_map")
    >>> pri = {k: parse_prior(v) for k, v in {"mu": "Normal(0, 50)", "tau": "HalfNormal(10)",
    ...        "baseline": "Normal(0, 1000)"}.items()}
    >>> build(d, pri).coords["arm"]
    ('JOVAISA2006:ketamine', 'JOVAISA2006:placebo')
    """
    import pymc as pm

    check_pooling(pooling, data.X)
    coords = {"study": data.study, "arm": data.arm}
    if data.terms:
        coords["term"] = data.terms
    with pm.Model(coords=coords) as model:
        idx = pm.Data("study_idx", data.study_idx, dims="arm")
        treat = pm.Data("treat", data.treat, dims="arm")
        se = pm.Data("se", data.se, dims="arm")
        mean = pm.Data("mean_data", data.mean, dims="arm")
        alpha = priors["baseline"].to_pymc("alpha", dims="study")
        theta = add_treatment_effects(
            priors, data.X, pooling=pooling, parametrization=parametrization
        )
        pm.Normal("mean", mu=alpha[idx] + treat * theta[idx], sigma=se, observed=mean, dims="arm")
    return model


class NormalArm(ArmFamily):
    """``normal-arm``: arm-level means and SDs of a continuous outcome.

    Examples
    --------
    >>> family = NormalArm()
    >>> family.outcome_type, family.prior_names
    ('continuous', ('mu', 'tau', 'beta', 'baseline'))
    """

    name = "normal-arm"
    outcome_type = "continuous"
    description = "arm-level means and SDs of a continuous outcome"
    methods = (
        "The mean outcome of each arm was given a normal likelihood with its standard "
        "error SD/sqrt(n) treated as known, m_ij ~ Normal(alpha_i + x_ij theta_i, "
        "s_ij / sqrt(n_ij)), where alpha_i is study i's baseline and x_ij is -1/2 for the "
        "control arm and +1/2 for the experimental arm; {effects}"
    )
    slots = (
        MU,
        TAU,
        BETA,
        PriorSlot("baseline", None, "Normal(0, 10 x the largest arm mean): vague on the "
                  "outcome's own scale"),
    )  # fmt: skip
    example: ClassVar[dict] = {"data": "opioid_withdrawal.csv", "outcome": "peak_map"}
    sbc_priors: ClassVar[dict] = {
        "mu": "Normal(0, 1)",
        "tau": "HalfNormal(0.5)",
        "baseline": "Normal(0, 1)",
    }

    @override
    def default_priors(self, prepared: ArmData) -> dict:
        from bayeskit.priors import default_priors, parse_prior

        chosen = default_priors(None, yi=None, sei=prepared.se * np.sqrt(2))
        scale = float(f"{10 * np.max(np.abs(prepared.mean)):.3g}") or 1.0
        chosen["baseline"] = parse_prior(f"Normal(0, {scale})")
        return {k: v for k, v in chosen.items() if k in self.prior_names}

    observed = "mean"

    @override
    def measure(self, settings) -> str:
        return "MD"

    @override
    def arm_terms(self, prepared: ArmData):
        from bayeskit.families._marginal import normal_terms

        return normal_terms(prepared.mean.astype(float), prepared.se.astype(float))

    @override
    def build(self, prepared: ArmData, priors: dict, options):
        return build(
            prepared, priors, pooling=options.pooling, parametrization=options.parametrization
        )
