"""``normal-normal``: the random-effects model on study-level effect sizes.

``yi ~ Normal(theta[study], sei)``, ``theta ~ Normal(mu + X beta, tau)`` (non-centred by
default), the model of DerSimonian-Laird, metafor's ``rma`` and bayesmeta, with the
within-study standard errors treated as known.
"""

from __future__ import annotations

from typing import ClassVar, override

import numpy as np

from bayeskit.families._effects import add_binary_scale, add_treatment_effects, check_pooling
from bayeskit.families._random_effects import (
    BETA,
    MU,
    TAU,
    RandomEffectsFamily,
    RandomEffectsOptions,
    baseline_risk_field,
    evidence_table,
)
from bayeskit.families.data import StudyData, study_data


def auto_parametrization(data: StudyData) -> str:
    """Centred when the studies are informative relative to the heterogeneity, else non-centred.

    Rule: compute the DerSimonian-Laird estimate of the residual tau (after the
    meta-regression's covariates, as metafor's ``rma(method="DL", mods=...)`` does); when it
    exceeds the median within-study standard error, the likelihood pins each ``theta``
    down better than the population distribution does, and the centred form samples
    better (Betancourt & Girolami 2015, arXiv:1312.0906). Otherwise the non-centred form
    avoids the funnel. Ignoring the covariates would overstate tau whenever they explain
    the heterogeneity, and choose the centred form exactly where it diverges.

    Examples
    --------
    >>> import bayeskit as bk
    >>> from bayeskit.families.data import study_data
    >>> auto_parametrization(study_data(bk.load_evidence(bk.data_path("eight_schools.csv"))))
    'noncentered'
    """
    k = len(data.yi)
    if k < 2:
        return "noncentered"
    return "centered" if np.sqrt(residual_tau2_dl(data)) > np.median(data.sei) else "noncentered"


def residual_tau2_dl(data: StudyData) -> float:
    """DerSimonian-Laird (method of moments) estimate of the residual between-study variance.

    With covariates this is the meta-regression form (Raudenbush 2009, in *The Handbook of
    Research Synthesis and Meta-Analysis*, eq. 16.40): ``(Q_E - (k - p)) / (tr W - tr P)``
    with ``P = W X (X'WX)^-1 X'W``, truncated at zero; ``X`` holds an intercept and the
    covariates.

    Examples
    --------
    >>> import bayeskit as bk
    >>> from bayeskit.families.data import study_data
    >>> ev = bk.load_evidence(bk.data_path("eight_schools.csv"))
    >>> round(residual_tau2_dl(study_data(ev)), 6)  # metafor: rma(yi, sei=sei, method="DL")
    0.0
    """
    y = np.asarray(data.yi, dtype=float)
    w = 1 / np.asarray(data.sei, dtype=float) ** 2
    X = np.column_stack([np.ones_like(y), np.asarray(data.X, dtype=float)])
    k, p = X.shape
    if k <= p:
        return 0.0
    xtwx_inv = np.linalg.pinv(X.T @ (w[:, None] * X))
    beta = xtwx_inv @ (X.T @ (w * y))
    q = np.sum(w * (y - X @ beta) ** 2)
    # tr P as the sum of its diagonal, row by row: P itself is k x k (3 GB at k = 20,000)
    wx = w[:, None] * X
    trace_p = np.einsum("ij,ij->", wx @ xtwx_inv, wx)
    return max(0.0, (q - (k - p)) / (np.sum(w) - trace_p))


def build(
    data: StudyData,
    priors: dict,
    *,
    pooling: str = "partial",
    parametrization: str = "noncentered",
    baseline_risk: float | None = None,
):
    """Return the ``pymc.Model`` of the normal-normal random-effects model.

    Dims: ``study`` (and ``term`` with covariates). Data containers ``yi``, ``sei``
    (and ``X``) can be swapped with ``pm.set_data`` to refit without recompiling.

    Examples
    --------
    >>> import bayeskit as bk
    >>> from bayeskit.families.data import study_data
    >>> from bayeskit.priors import parse_prior
    >>> d = study_data(bk.load_evidence(bk.data_path("eight_schools.csv")))
    >>> pri = {"mu": parse_prior("Normal(0, 5)"), "tau": parse_prior("HalfCauchy(5)")}
    >>> m = build(d, pri)
    >>> sorted(m.named_vars)  # doctest: +NORMALIZE_WHITESPACE
    ['mu', 'sei', 'tau', 'theta', 'theta_new', 'theta_new_z', 'theta_z', 'y', 'yi']
    """
    import pymc as pm

    check_pooling(pooling, data.X)
    coords = {"study": data.study}
    if data.terms:
        coords["term"] = data.terms
    with pm.Model(coords=coords) as model:
        yi = pm.Data("yi", data.yi, dims="study")
        sei = pm.Data("sei", data.sei, dims="study")
        theta = add_treatment_effects(
            priors, data.X, pooling=pooling, parametrization=parametrization
        )
        pm.Normal("y", mu=theta, sigma=sei, observed=yi, dims="study")
        add_binary_scale(data.measure, baseline_risk, pooling)
    return model


class NormalNormalOptions(RandomEffectsOptions):
    """Options of ``normal-normal``.

    The random-effects options, the measure computed from arm-level data, and the
    control risk at which binary effects are stated.
    """

    measure: str | None = None
    baseline_risk: float | None = baseline_risk_field()


class NormalNormal(RandomEffectsFamily):
    """``normal-normal``: random effects on study-level effect sizes (``yi``, ``sei``).

    Examples
    --------
    >>> family = NormalNormal()
    >>> family.data, family.prior_names, family.exact is not None
    ('study', ('mu', 'tau', 'beta'), True)
    """

    name = "normal-normal"
    data = "study"
    description = "random effects on study-level effect sizes (yi, sei)"
    methods = (
        "Each study's effect estimate y_i was given a normal likelihood with its reported "
        "standard error treated as known, y_i ~ Normal(theta_i, se_i); {effects}"
    )
    slots = (MU, TAU, BETA)
    options_model = NormalNormalOptions
    example: ClassVar[dict] = {"data": "eight_schools.csv"}
    sbc_priors: ClassVar[dict] = {"mu": "Normal(0, 1)", "tau": "HalfNormal(0.5)"}
    sbc_parameters = ("mu", "tau", "theta", "theta_new")

    @override
    def prepare(self, evidence, options, *, outcome, timepoint, effect_options) -> StudyData:
        return study_data(
            evidence_table(evidence),
            measure=options.measure,
            outcome=outcome,
            timepoint=timepoint,
            covariates=options.covariates,
            **effect_options,
        )

    @override
    def default_priors(self, prepared: StudyData) -> dict:
        from bayeskit.priors import default_priors

        chosen = default_priors(prepared.measure, yi=prepared.yi, sei=prepared.sei)
        return {k: v for k, v in chosen.items() if k in self.prior_names}

    @override
    def auto_parametrization(self, prepared: StudyData) -> str:
        return auto_parametrization(prepared)

    @override
    def build(self, prepared: StudyData, priors: dict, options: NormalNormalOptions):
        return build(
            prepared,
            priors,
            pooling=options.pooling,
            parametrization=options.parametrization,
            baseline_risk=options.baseline_risk,
        )

    funnel = True

    @override
    def within_study_variances(self, prepared: StudyData):
        """``sei^2`` of each study, with its covariates.

        Examples
        --------
        >>> import bayeskit as bk
        >>> from bayeskit.families.data import study_data
        >>> d = study_data(bk.load_evidence(bk.data_path("eight_schools.csv")))
        >>> v, X = NormalNormal().within_study_variances(d)
        >>> v[:2].tolist(), X.shape
        ([225.0, 100.0], (8, 0))
        """
        return np.asarray(prepared.sei, dtype=float) ** 2, prepared.X.to_numpy(float)

    def exact(self, prepared: StudyData, priors: dict, options: NormalNormalOptions):
        """Compute the exact posterior (:func:`bayeskit.exact.exact_posterior`)."""
        from bayeskit.exact import exact_posterior

        return exact_posterior(
            prepared, priors, pooling=options.pooling, baseline_risk=options.baseline_risk
        )

    @override
    def marginal_log_likelihood(self, prepared: StudyData, posterior, priors=None):
        """``yi ~ Normal(mu + x'beta, sqrt(tau^2 + sei^2))``: theta integrated out.

        Under ``pooling="full"`` tau is 0 and this is the model's own likelihood; under
        ``pooling="none"`` there is no population, and the likelihood given each
        study's ``theta`` is kept, labelled conditional.

        Examples
        --------
        >>> import bayeskit as bk, xarray as xr
        >>> from scipy import stats
        >>> from bayeskit.families.data import study_data
        >>> d = study_data(bk.load_evidence(bk.data_path("eight_schools.csv")))
        >>> post = xr.Dataset({"mu": (("chain", "draw"), [[4.0]]),
        ...                    "tau": (("chain", "draw"), [[3.0]])})
        >>> ll = NormalNormal().marginal_log_likelihood(d, post)
        >>> bool(np.isclose(ll["y"].values[0, 0, 0], stats.norm.logpdf(28, 4, np.hypot(3, 15))))
        True
        """
        from scipy import stats

        from bayeskit.families._marginal import (
            CONDITIONAL,
            LEAVE_ONE_STUDY_OUT,
            flat,
            population_mean,
            study_dataset,
        )

        if "tau" not in posterior:  # no pooling: no population
            values = stats.norm.logpdf(prepared.yi, flat(posterior, "theta"), prepared.sei)
            return study_dataset(
                "y", values, posterior, prepared.study, CONDITIONAL, self.no_pooling_loo_note
            )
        tau = flat(posterior, "tau")[:, None]
        sd = np.sqrt(tau**2 + prepared.sei**2)
        values = stats.norm.logpdf(prepared.yi, population_mean(posterior, prepared.X), sd)
        note = (
            "each study's effect theta integrated out: "
            "yi ~ Normal(mu + x'beta, sqrt(tau^2 + sei^2))"
        )
        return study_dataset("y", values, posterior, prepared.study, LEAVE_ONE_STUDY_OUT, note)

    def sbc_exact(self, **kwargs):
        """SBC of the exact engine (:func:`bayeskit.calibration.sbc_normal_normal`)."""
        from bayeskit.calibration import sbc_normal_normal

        return sbc_normal_normal(**kwargs)

    @override
    def sbc_rows(self, studies: int) -> list[str]:
        return ["study,yi,sei,measure"] + [
            f"S{i + 1},0,{0.15 + 0.35 * i / max(studies - 1, 1):.4f},SMD" for i in range(studies)
        ]
