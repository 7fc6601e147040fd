"""``binomial-normal``: exact binomial likelihood on arm-level counts.

``events[arm] ~ Binomial(n, p)``, ``logit(p) = alpha[study] + treat * theta[study]``
with ``treat`` = -1/2 for the control arm and +1/2 for an experimental or single arm,
``alpha`` the study baselines (fixed effects, each with its own prior) and
``theta ~ Normal(mu + X beta, tau)``: model 4 of Jackson et al. (2018, Stat Med
37:1059), which needs no continuity correction, so zero cells need no special care.

With fixed baselines a single-arm study informs only its own ``alpha`` and so leaves
``mu`` untouched, which is the honest default. ``baseline="random"`` instead draws the
baselines from ``Normal(alpha_mu, alpha_sigma)``: then single arms do inform ``mu``,
through the exchangeability of baselines that this assumes.
"""

from __future__ import annotations

from typing import ClassVar, Literal, override

from bayeskit.errors import UserError
from bayeskit.families._base import PriorSlot
from bayeskit.families._effects import add_binary_scale, add_treatment_effects, check_pooling
from bayeskit.families._random_effects import (
    BETA,
    MU,
    TAU,
    ArmFamily,
    RandomEffectsOptions,
    baseline_risk_field,
)
from bayeskit.families.data import ArmData

BASELINES = ("fixed", "random")


def build(
    data: ArmData,
    priors: dict,
    *,
    pooling: str = "partial",
    parametrization: str = "noncentered",
    baseline: str = "fixed",
    baseline_risk: float | None = None,
):
    """Return the ``pymc.Model`` of the binomial-normal model (dims ``study``, ``arm``).

    Examples
    --------
    >>> import bayeskit as bk
    >>> from bayeskit.families.data import arm_data
    >>> from bayeskit.priors import parse_prior
    >>> ev = bk.load_evidence(bk.data_path("oud_abstinence.csv"))
    >>> d = arm_data(ev, outcome_type="binary", timepoint="12 months")
    >>> pri = {k: parse_prior(v) for k, v in
    ...        {"mu": "Normal(0, 4)", "tau": "HalfNormal(0.5)", "baseline": "Normal(0, 5)"}.items()}
    >>> m = build(d, pri)
    >>> m.named_vars["events"].owner is not None
    True
    """
    import pymc as pm

    check_pooling(pooling, data.X)
    if baseline not in BASELINES:
        raise UserError(f"baseline must be 'fixed' or 'random' (got {baseline!r})")
    coords = {"study": data.study, "arm": data.arm}
    if data.terms:
        coords["term"] = data.terms
    with pm.Model(coords=coords) as model:
        idx = pm.Data("study_idx", data.study_idx, dims="arm")
        treat = pm.Data("treat", data.treat, dims="arm")
        n = pm.Data("n", data.n.astype("int64"), dims="arm")
        events = pm.Data("events_data", data.events, dims="arm")
        if baseline == "fixed":
            alpha = priors["baseline"].to_pymc("alpha", dims="study")
        else:
            alpha_mu = priors["baseline"].to_pymc("alpha_mu")
            alpha_sigma = priors.get("baseline_sd", priors["tau"]).to_pymc("alpha_sigma")
            alpha_z = pm.Normal("alpha_z", 0.0, 1.0, dims="study")
            alpha = pm.Deterministic("alpha", alpha_mu + alpha_sigma * alpha_z, dims="study")
        theta = add_treatment_effects(
            priors, data.X, pooling=pooling, parametrization=parametrization
        )
        logit_p = alpha[idx] + treat * theta[idx]
        pm.Binomial("events", n=n, logit_p=logit_p, observed=events, dims="arm")
        add_binary_scale("OR", baseline_risk, pooling)
    return model


class BinomialNormalOptions(RandomEffectsOptions):
    """Options of ``binomial-normal``.

    Fixed or random study baselines, and the control risk at which effects are stated
    as probabilities.
    """

    baseline: Literal["fixed", "random"] = "fixed"
    baseline_risk: float | None = baseline_risk_field()


class BinomialNormal(ArmFamily):
    """``binomial-normal``: the exact binomial likelihood on arm counts.

    Examples
    --------
    >>> family = BinomialNormal()
    >>> family.data, family.outcome_type, family.prior_names[:3]
    ('arm', 'binary', ('mu', 'tau', 'beta'))
    """

    name = "binomial-normal"
    outcome_type = "binary"
    description = "exact binomial likelihood on arm counts, fixed study baselines"
    methods = (
        "The event counts of each arm were given an exact binomial likelihood, "
        "r_ij ~ Binomial(n_ij, p_ij) with logit(p_ij) = alpha_i + x_ij theta_i, where "
        "alpha_i is study i's baseline log-odds and x_ij is -1/2 for the control arm and "
        "+1/2 for the experimental arm (model 4 of Jackson et al. 2018, which needs no "
        "continuity correction for zero cells); {effects}"
    )
    slots = (
        MU,
        TAU,
        BETA,
        PriorSlot("baseline", None, "Normal(0, 5): control-arm logits of risks from 0.01% "
                  "to 99.99% lie within 2 SD"),
        PriorSlot("baseline_sd", None, "the prior of tau, unless given (random baselines "
                  "only)", positive=True),
    )  # fmt: skip
    options_model = BinomialNormalOptions
    example: ClassVar[dict] = {"data": "oud_abstinence.csv", "timepoint": "12 months"}
    sbc_priors: ClassVar[dict] = {
        "mu": "Normal(0, 1)",
        "tau": "HalfNormal(0.5)",
        "baseline": "Normal(-1, 1)",
    }

    @override
    def default_priors(self, prepared: ArmData) -> dict:
        from bayeskit.priors import default_priors

        return {k: v for k, v in default_priors("OR").items() if k in self.prior_names}

    observed = "events"

    @override
    def measure(self, settings) -> str:
        return "OR"

    @override
    def arm_terms(self, prepared: ArmData):
        from bayeskit.families._marginal import binomial_terms

        return binomial_terms(prepared.events.astype(float), prepared.n.astype(float))

    @override
    def build(self, prepared: ArmData, priors: dict, options: BinomialNormalOptions):
        return build(
            prepared,
            priors,
            pooling=options.pooling,
            parametrization=options.parametrization,
            baseline=options.baseline,
            baseline_risk=options.baseline_risk,
        )
