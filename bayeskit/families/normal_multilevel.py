"""``normal-multilevel``: several effect sizes per study (three-level meta-analysis).

``y_ij ~ Normal(theta_ij, se_ij)`` for effect ``j`` of study ``i``, with
``theta_ij = mu + u_i + v_ij`` (``+ w_c`` for the study's cluster ``c`` when the table has
a ``cluster`` column), ``u ~ Normal(0, tau_study)``, ``v ~ Normal(0, tau_es)``,
``w ~ Normal(0, tau_cluster)``: the model of metafor's
``rma.mv(yi, vi, random = ~ 1 | study/es_id)`` (Konstantopoulos 2011, Res Synth Methods
2:61; Cheung 2014, Psychol Methods 19:211), non-centred by default.

Effects measured on the same patients have correlated sampling errors. The option
``rho`` is a working within-study correlation (the approach of correlated-and-
hierarchical-effects models, Pustejovsky & Tipton 2022, Prev Sci 23:425): the sampling
errors of a study's effects are multivariate normal with covariance ``rho se_a se_b``
off the diagonal. It is a fixed value (default 0: independent samples, as in
Konstantopoulos' schools), because studies rarely report it; :func:`rho_sensitivity`
refits over several values.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import ClassVar, Literal, override

import numpy as np
import pandas as pd
from pydantic import Field

from bayeskit.errors import UserError
from bayeskit.families._base import Family, Options, PriorSlot, SBCDesign
from bayeskit.families._random_effects import MU, evidence_table

_TAU_REASON = (
    "as normal-normal's tau: HalfNormal(0.5) on log and standardised scales (Röver et al. "
    "2021), one typical standard error on a raw scale"
)
TAU_STUDY = PriorSlot("tau_study", None, _TAU_REASON, positive=True)
TAU_ES = PriorSlot("tau_es", None, _TAU_REASON, positive=True)
TAU_CLUSTER = PriorSlot("tau_cluster", None, _TAU_REASON, positive=True)
#: the variance components, outermost first, with the data level each describes
LEVELS = {"tau_cluster": "cluster", "tau_study": "study", "tau_es": "effect size"}


@dataclass
class MultilevelData:
    """Effect sizes nested in studies (and studies in clusters).

    Made by :func:`multilevel_data`. ``effect`` labels each effect size
    ``study:es_id``; ``study_idx`` maps each to its study, ``cluster_idx`` each study to
    its cluster (None without clusters). ``X`` is empty: the family takes no covariates.

    Examples
    --------
    >>> import bayeskit as bk
    >>> d = multilevel_data(bk.load_evidence(bk.data_path("konstantopoulos2011.csv")))
    >>> len(d.effect), len(d.study), d.effect[0], d.measure
    (56, 11, '11:1', 'SMD')
    """

    study: list[str]
    effect: list[str]
    study_idx: np.ndarray
    yi: np.ndarray
    sei: np.ndarray
    measure: str | None
    table: pd.DataFrame = field(repr=False)
    rho: float = 0.0
    cluster: list[str] | None = None
    cluster_idx: np.ndarray | None = None
    X: pd.DataFrame = field(default_factory=pd.DataFrame, repr=False)

    @property
    def terms(self) -> list[str]:
        """No meta-regression terms."""
        return []

    def blocks(self) -> list[np.ndarray]:
        """Return the positions of each study's effects, in study order."""
        return [np.flatnonzero(self.study_idx == i) for i in range(len(self.study))]


def _label_column(es: pd.DataFrame) -> pd.Series:
    """Each row's effect-size label: ``es_id``, else its outcome and timepoint, else 1."""
    if "es_id" in es:
        return es["es_id"].astype(str)
    parts = [es[c].astype(str) for c in ("outcome", "timepoint") if c in es]
    if not parts:
        return pd.Series("1", index=es.index)
    label = parts[0]
    for p in parts[1:]:
        label = label + "@" + p
    return label


def _effect_tables(table: pd.DataFrame, measure, outcome, timepoint, effect_options):
    """Effect sizes, one row each: study-level rows as given, arm-level per outcome."""
    from bayeskit.measures import effects

    study_level = table.attrs.get("shape") == "study" or "yi" in table.columns
    if outcome is not None or "outcome" not in table:
        groups = [(outcome, table)]
    else:  # several outcomes of one study are its effect sizes: computed one at a time
        groups = [(str(o), rows) for o, rows in table.groupby("outcome", sort=False)]
    parts = []
    for name, rows in groups:
        rows = rows.copy()
        rows.attrs = table.attrs
        es = effects(rows, measure, outcome=name, timepoint=timepoint, **effect_options)
        if not study_level and "es_id" not in es:
            es["es_id"] = name if name is not None else "1"
            if es.index.has_duplicates:  # several experimental arms: one label each
                es["es_id"] = [f"{name}:{j}" for j in range(len(es))]
        parts.append(es)
    out = pd.concat(parts)
    out.attrs = parts[0].attrs
    codes = {p.attrs.get("measure") for p in parts}
    if len(codes) > 1:
        raise UserError(
            f"the outcomes give different measures ({', '.join(map(str, codes))}); the "
            "effects of one multilevel model share one measure: choose it with --measure"
        )
    return out


def multilevel_data(
    table: pd.DataFrame,
    *,
    measure: str | None = None,
    outcome: str | None = None,
    timepoint: str | None = None,
    **effect_options,
) -> MultilevelData:
    """Prepare effect sizes nested in studies for ``normal-multilevel``.

    A study-level table gives one effect size a row, labelled by its ``es_id`` column
    (or, without one, by its ``outcome`` and ``timepoint``); an arm-level table gives
    each study's effect on each outcome (computed with ``measure``), labelled by the
    outcome. An optional ``cluster`` column nests studies in clusters.

    Examples
    --------
    >>> import bayeskit as bk
    >>> d = multilevel_data(bk.load_evidence(bk.data_path("konstantopoulos2011.csv")))
    >>> d.study[:3], [len(b) for b in d.blocks()][:3]
    (['11', '12', '18'], [4, 4, 3])
    """
    es = _effect_tables(table, measure, outcome, timepoint, effect_options)
    labels = _label_column(es)
    study = [str(s) for s in es.index]
    effect = [f"{s}:{e}" for s, e in zip(study, labels, strict=True)]
    if len(set(effect)) < len(effect):
        dup = next(e for e in effect if effect.count(e) > 1)
        raise UserError(
            f"effect size {dup!r} appears more than once; give each effect size of a "
            "study its own es_id (a column of labels unique within the study)"
        )
    studies = list(dict.fromkeys(study))
    study_idx = np.array([studies.index(s) for s in study])
    order = np.argsort(study_idx, kind="stable")  # each study's effects together
    cluster = cluster_idx = None
    if "cluster" in es:
        per_study = es["cluster"].astype(str).groupby(study, sort=False)
        n_clusters = per_study.nunique()
        if es["cluster"].isna().any() or (n_clusters > 1).any():
            bad = n_clusters[n_clusters > 1].index.tolist() or ["(missing)"]
            raise UserError(
                f"each study belongs to one cluster: the 'cluster' column is missing or "
                f"differs within study {bad[0]}"
            )
        first = per_study.first().loc[studies]
        cluster = list(dict.fromkeys(first))
        cluster_idx = np.array([cluster.index(c) for c in first])
    return MultilevelData(
        study=studies,
        effect=[effect[i] for i in order],
        study_idx=study_idx[order],
        yi=es["yi"].to_numpy(float)[order],
        sei=es["sei"].to_numpy(float)[order],
        measure=es.attrs.get("measure") or measure,
        table=es.iloc[order],
        cluster=cluster,
        cluster_idx=cluster_idx,
    )


def sampling_covariances(data: MultilevelData, rho: float) -> list[np.ndarray]:
    """Each study's sampling covariance: ``se_a^2`` on the diagonal, ``rho se_a se_b`` off it.

    Examples
    --------
    >>> import bayeskit as bk
    >>> d = multilevel_data(bk.load_evidence(bk.data_path("konstantopoulos2011.csv")))
    >>> S = sampling_covariances(d, 0.5)[0]
    >>> S.shape, bool(np.isclose(S[0, 1], 0.5 * d.sei[0] * d.sei[1]))
    ((4, 4), True)
    """
    out = []
    for block in data.blocks():
        se = data.sei[block]
        R = np.full((len(se), len(se)), float(rho))
        np.fill_diagonal(R, 1.0)
        out.append(R * np.outer(se, se))
    return out


def check_rho(data: MultilevelData, rho: float) -> None:
    """Refuse a working correlation that no covariance matrix of the data's studies has.

    An exchangeable correlation of ``n`` effects is positive definite for
    ``-1 / (n - 1) < rho < 1``.

    Examples
    --------
    >>> import bayeskit as bk
    >>> d = multilevel_data(bk.load_evidence(bk.data_path("konstantopoulos2011.csv")))
    >>> check_rho(d, -0.2)
    Traceback (most recent call last):
    ...
    bayeskit.errors.UserError: option 'rho' = -0.2 is not a correlation of ...
    """
    n = max(len(b) for b in data.blocks())
    if n > 1 and not -1 / (n - 1) < rho < 1:
        raise UserError(
            f"option 'rho' = {rho:g} is not a correlation of {n} effects of one study "
            f"(an exchangeable correlation needs {-1 / (n - 1):.3g} < rho < 1)"
        )


def build(
    data: MultilevelData, priors: dict, *, rho: float = 0.0, parametrization: str = "noncentered"
):
    """Return the ``pymc.Model`` of the three-level (or four-level) normal model.

    Dims ``effect``, ``study`` (and ``cluster``). With ``rho != 0`` the likelihood is
    multivariate normal with the block-diagonal sampling covariance
    (:func:`sampling_covariances`), given by its fixed Cholesky factor.

    Examples
    --------
    >>> import bayeskit as bk
    >>> from bayeskit.priors import parse_prior
    >>> d = multilevel_data(bk.load_evidence(bk.data_path("konstantopoulos2011.csv")))
    >>> pri = {k: parse_prior(v) for k, v in {"mu": "Normal(0, 1)",
    ...        "tau_study": "HalfNormal(0.5)", "tau_es": "HalfNormal(0.5)"}.items()}
    >>> [rv.name for rv in build(d, pri).free_RVs]
    ['mu', 'tau_study', 'tau_es', 'u_z', 'v_z', 'theta_new_z']
    """
    import pymc as pm
    import pytensor.tensor as pt
    from scipy.linalg import block_diag

    coords = {"effect": data.effect, "study": data.study}
    if data.cluster is not None:
        coords["cluster"] = data.cluster
    centred = parametrization == "centered"
    with pm.Model(coords=coords) as model:
        yi = pm.Data("yi", data.yi, dims="effect")
        sei = pm.Data("sei", data.sei, dims="effect")
        mu = priors["mu"].to_pymc("mu")
        taus = []
        study_mean = 0.0
        if data.cluster is not None:
            tau_c = priors["tau_cluster"].to_pymc("tau_cluster")
            w = _level("w", tau_c, "cluster", centred)
            study_mean = w[data.cluster_idx]
            taus.append(tau_c)
        tau_s = priors["tau_study"].to_pymc("tau_study")
        tau_e = priors["tau_es"].to_pymc("tau_es")
        taus += [tau_s, tau_e]
        study_mean = study_mean + _level("u", tau_s, "study", centred)
        v = _level("v", tau_e, "effect", centred)
        theta = pm.Deterministic("theta", mu + study_mean[data.study_idx] + v, dims="effect")
        if rho == 0:
            pm.Normal("y", mu=theta, sigma=sei, observed=yi, dims="effect")
        else:
            L = block_diag(*(np.linalg.cholesky(S) for S in sampling_covariances(data, rho)))
            pm.MvNormal("y", mu=theta, chol=pt.as_tensor_variable(L), observed=yi, dims="effect")
        # a new effect size in a new study (of a new cluster): every level drawn afresh
        z_new = pm.Normal("theta_new_z", 0.0, 1.0)
        total = pt.sqrt(sum(t**2 for t in taus))
        pm.Deterministic("theta_new", mu + total * z_new)
    return model


def _level(name: str, tau, dim: str, centred: bool):
    """Random effects of one level, ``Normal(0, tau)``, centred or not."""
    import pymc as pm

    if centred:
        return pm.Normal(name, 0.0, tau, dims=dim)
    z = pm.Normal(f"{name}_z", 0.0, 1.0, dims=dim)
    return pm.Deterministic(name, tau * z, dims=dim)


class MultilevelOptions(Options):
    """Options of ``normal-multilevel``.

    ``rho``: the working within-study correlation of sampling errors (default 0);
    ``parametrization``: non-centred by default (few effects per study rarely pin their
    own deviations down); ``measure``: for arm-level tables.
    """

    rho: float = Field(0.0, gt=-1, lt=1)
    parametrization: Literal["noncentered", "centered"] = "noncentered"
    measure: str | None = None


class NormalMultilevel(Family):
    """``normal-multilevel``: effect sizes nested in studies (and studies in clusters).

    Examples
    --------
    >>> family = NormalMultilevel()
    >>> family.data, family.prior_names
    ('study', ('mu', 'tau_study', 'tau_es', 'tau_cluster'))
    """

    name = "normal-multilevel"
    data = "study"
    description = "several effect sizes per study (es_id), studies optionally in clusters"
    methods = (
        "Each effect size y_ij (effect j of study i) was given a normal likelihood with its "
        "reported standard error treated as known, y_ij ~ Normal(theta_ij, se_ij); the "
        "true effects were modelled as theta_ij = mu + u_i + v_ij with study deviations "
        "u_i ~ Normal(0, tau_study) and effect-size deviations v_ij ~ Normal(0, tau_es) "
        "(a three-level model, Konstantopoulos 2011)"
    )
    slots = (MU, TAU_STUDY, TAU_ES, TAU_CLUSTER)
    options_model = MultilevelOptions
    example: ClassVar[dict] = {"data": "konstantopoulos2011.csv"}
    funnel = False
    #: how the exact engine integrates, for the engine's reason in the manifest and report
    exact_how: ClassVar[str] = (
        "is integrated analytically over mu and on a 2-D grid over tau_study and tau_es"
    )

    @override
    def prepare(self, evidence, options, *, outcome, timepoint, effect_options) -> MultilevelData:
        data = multilevel_data(
            evidence_table(evidence),
            measure=options.measure,
            outcome=outcome,
            timepoint=timepoint,
            **effect_options,
        )
        check_rho(data, options.rho)
        data.rho = options.rho
        return data

    @override
    def default_priors(self, prepared: MultilevelData) -> dict:
        from bayeskit.priors import default_priors

        chosen = default_priors(prepared.measure, yi=prepared.yi, sei=prepared.sei)
        out = {"mu": chosen["mu"], "tau_study": chosen["tau"], "tau_es": chosen["tau"]}
        if prepared.cluster is not None:
            out["tau_cluster"] = chosen["tau"]
        return out

    @override
    def settings(self, prepared, options) -> dict:
        return options.model_dump(exclude={"measure"})

    @override
    def build(self, prepared: MultilevelData, priors: dict, options: MultilevelOptions):
        return build(prepared, priors, rho=options.rho, parametrization=options.parametrization)

    def exact(self, prepared: MultilevelData, priors: dict, options: MultilevelOptions):
        """Compute the exact posterior on a grid of the two SDs (no clusters; Normal or Flat mu)."""
        from bayeskit.exact_multilevel import multilevel_posterior

        return multilevel_posterior(prepared, priors, rho=options.rho)

    @override
    def within_study_variances(self, prepared: MultilevelData):
        """``sei^2`` of every effect size (the typical sampling variance of the I^2 shares)."""
        return np.asarray(prepared.sei, dtype=float) ** 2, np.zeros((len(prepared.sei), 0))

    #: the variance components the report tabulates, outermost level first
    variance_components: ClassVar[tuple[str, ...]] = tuple(LEVELS)

    @override
    def marginal_log_likelihood(self, prepared: MultilevelData, posterior, priors=None):
        """Each study's effects together, ``u`` and ``v`` integrated out (multivariate normal).

        A left-out study's effects are ``Normal(mu + w_c, S_i + tau_study^2 J +
        tau_es^2 I)``; with clusters, the cluster's effect ``w_c`` stays at its draw
        (the other studies of the cluster inform it).
        """
        from bayeskit.families._marginal import LEAVE_ONE_STUDY_OUT, flat, study_dataset

        mu = flat(posterior, "mu")
        ts, te = flat(posterior, "tau_study"), flat(posterior, "tau_es")
        offset = np.zeros((len(mu), len(prepared.study)))
        if prepared.cluster is not None:
            offset = flat(posterior, "w")[:, prepared.cluster_idx]
        values = np.empty((len(mu), len(prepared.study)))
        covariances = sampling_covariances(prepared, prepared.rho)
        for i, (block, S) in enumerate(zip(prepared.blocks(), covariances, strict=True)):
            n = len(block)
            cov = S + ts[:, None, None] ** 2 + te[:, None, None] ** 2 * np.eye(n)
            L = np.linalg.cholesky(cov)
            r = prepared.yi[block] - (mu + offset[:, i])[:, None]
            z = np.linalg.solve(L, r[..., None])[..., 0]
            logdet = 2 * np.log(np.diagonal(L, axis1=1, axis2=2)).sum(-1)
            values[:, i] = -0.5 * (n * np.log(2 * np.pi) + logdet + np.sum(z**2, -1))
        note = (
            "each study's effect sizes together, its study and effect-size deviations "
            "integrated out: y_i ~ MultivariateNormal(mu, S_i + tau_study^2 J + tau_es^2 I)"
        )
        return study_dataset("y", values, posterior, prepared.study, LEAVE_ONE_STUDY_OUT, note)

    # ------------------------------------------------------------------ SBC

    sbc_priors: ClassVar[dict] = {
        "mu": "Normal(0, 1)",
        "tau_study": "HalfNormal(0.5)",
        "tau_es": "HalfNormal(0.5)",
    }

    @property
    @override
    def sbc(self) -> SBCDesign:
        return SBCDesign(
            self.sbc_priors, ("mu", "tau_study", "tau_es", "theta_new"), self.sbc_template
        )

    def sbc_rows(self, studies: int) -> list[str]:
        """Synthetic design: ``studies`` studies with 1 to 3 effect sizes each."""
        rows = ["study,es_id,yi,sei,measure"]
        for i in range(studies):
            for j in range(1 + i % 3):
                se = 0.15 + 0.35 * i / max(studies - 1, 1)
                rows.append(f"S{i + 1},{j + 1},0,{se:.4f},SMD")
        return rows

    def sbc_template(self, studies: int, priors: dict):
        """Build the model on the synthetic design (outcomes are placeholders)."""
        import tempfile
        from pathlib import Path

        from bayeskit.fitting import build_model

        with tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp) / "sbc_normal_multilevel.csv"
            path.write_text("\n".join(self.sbc_rows(studies)) + "\n")
            return build_model(path, self.name, priors=priors)


def rho_sensitivity(
    data, rhos: Sequence[float] = (0.0, 0.3, 0.6, 0.9), **fit_options
) -> pd.DataFrame:
    """Refit ``normal-multilevel`` at several working correlations ``rho``.

    Returns
    -------
    DataFrame
        One row per ``rho``: posterior mean, SD and 95% interval of ``mu``, and the
        posterior means of ``tau_study`` and ``tau_es``.

    Examples
    --------
    >>> import bayeskit as bk
    >>> table = rho_sensitivity(bk.data_path("konstantopoulos2011.csv"), [0.0, 0.5],
    ...                         method="exact")
    >>> table.index.tolist(), bool(table.loc[0.5, "mu_sd"] > table.loc[0.0, "mu_sd"])
    ([0.0, 0.5], True)
    """
    from bayeskit.fitting import fit

    rows = {}
    options = dict(fit_options.pop("model_options", None) or {})
    for rho in rhos:
        options["rho"] = float(rho)
        s = fit(data, "normal-multilevel", model_options=options, **fit_options).summary()
        rows[float(rho)] = {
            "mu_mean": s.loc["mu", "mean"],
            "mu_sd": s.loc["mu", "sd"],
            "mu_q2.5": s.loc["mu", "q2.5"],
            "mu_q97.5": s.loc["mu", "q97.5"],
            "tau_study_mean": s.loc["tau_study", "mean"],
            "tau_es_mean": s.loc["tau_es", "mean"],
        }
    return pd.DataFrame.from_dict(rows, orient="index").rename_axis("rho")
