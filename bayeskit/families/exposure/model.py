"""``exposure-response``: arm-level dose and route response across designs and indications.

Each arm's systemic exposure is ``E = dose_mg_per_kg x F[route]`` (times the number of
sessions when sessions act as a multiplier), where the bioavailability ``F[route]`` is
uncertain: it has a Beta prior centred on the figure in ``data/routes.csv`` with that
table's stated SD (intravenous is 1 by definition). Placebo and no-drug arms have
``E = 0``. The treatment effect of an arm is

* log-linear: ``beta[indication] * log2(1 + E / E_ref)``, so ``exp(beta)`` is the odds
  ratio per doubling of ``1 + E / E_ref`` (close to per doubling of exposure once
  ``E >> E_ref``); or
* Emax: ``emax[indication] * E / (ed50 + E)``;

plus, optionally, ``beta_sessions * log2(sessions)`` when sessions are a separate term,
and a route effect beyond pharmacokinetics ``route_effect[route] ~ Normal(0, route_sd)``
for ketamine arms. Contrasts such as high vs low dose (both arms on ketamine) are
handled by the arm structure: the data inform ``beta`` through the difference in
exposure between arms.

Binary arms: ``events ~ Binomial(n, expit(alpha[study] + effect + c * delta[study] +
bias[study]))`` with random baselines ``alpha ~ Normal(alpha_mu[indication], alpha_sd)``
(so single-arm studies inform the absolute level), ``c = +-1/2`` and
``delta ~ Normal(0, tau)`` the study's deviation in its contrast. Study-level contrasts
(a published log odds ratio, or an SMD for continuous outcomes) enter as
``yi ~ Normal(effect(exp) - effect(ctl) + delta + bias, sei)``.

Non-randomised studies (every design but ``rct`` and ``crossover_rct``) get a
design-specific bias ``bias[study] ~ Normal(bias_mean[design], bias_sd[design])``
(Welton et al. 2009, JRSS-A 172:119; Prevost et al. 2000, Stat Med 19:3359):
``bias_mean`` has a prior, ``bias_sd`` is set in the spec (default 0.3 cohort and case
control, the analytic designs with their own comparison group; 0.5 case series and
``non_randomised``, the fallback for any other design; 1.0 case report; on the log-odds
or SMD scale), so such evidence moves the result only as much as the extra
variance allows. Alternatively a power-prior weight per design multiplies that design's
log-likelihood.

Indications (OUD, AUD, CUD, ...) share information through their slopes:
``beta[indication] ~ Normal(beta_mu, indication_sd)``; the prior on ``indication_sd``
says how exchangeable they are (a small scale borrows strongly).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from bayeskit.errors import UserError
from bayeskit.families.exposure.mean import exposure, mean_effect

RANDOMISED = ("rct", "crossover_rct")
DEFAULT_BIAS_SD = {
    "cohort": 0.3, "case_control": 0.3, "case_series": 0.5, "non_randomised": 0.5,
    "case_report": 1.0,
}  # fmt: skip
FORMS = ("loglinear", "emax")
SESSIONS = ("multiplier", "term", "ignore")


@dataclass
class ExposureData:
    """Arms and study-level contrasts with their exposures, for the exposure-response model.

    Made by :func:`exposure_data`.

    Examples
    --------
    >>> import bayeskit as bk
    >>> ev = bk.load_evidence(bk.data_path("oud_abstinence.csv"))
    >>> d = exposure_data(ev[ev["timepoint"] == "12 months"], None, routes=bk.load_routes())
    >>> d.scale, d.indication, len(d.arms), len(d.contrasts)
    ('logit', ['OUD'], 4, 0)
    """

    study: list[str]
    indication: list[str]
    route: list[str]
    design: list[str]
    study_indication: np.ndarray
    study_design: np.ndarray  # index into design; -1 for randomised
    bioavailability: pd.DataFrame  # per route: mean, sd
    arms: pd.DataFrame  # binary arms
    contrasts: pd.DataFrame  # study-level contrasts
    scale: str  # "logit" (binary) or "smd"
    table: pd.DataFrame = field(repr=False)
    measure: str = "OR"


def _route_index(routes: list[str], values: pd.Series) -> np.ndarray:
    return np.array([routes.index(r) if isinstance(r, str) else -1 for r in values])


def exposure_data(
    arms: pd.DataFrame | None,
    contrasts: pd.DataFrame | None,
    *,
    routes: pd.DataFrame,
    scale: str = "logit",
    designs: list[str] | None = None,
) -> ExposureData:
    """Assemble arms (binary) and contrasts (yi, sei) into one exposure data set.

    Parameters
    ----------
    arms : DataFrame or None
        Arm-level binary rows with ``study, arm, n, events, dose_mg_per_kg, route,
        sessions, design, indication, role``.
    contrasts : DataFrame or None
        One row per study contrast with ``study, yi, sei`` and the experimental arm's
        ``dose_mg_per_kg, route, sessions`` (control: ``control_dose_mg_per_kg``,
        ``control_route``, ``control_sessions``; absent means no drug).
    routes : DataFrame
        Bioavailability per route (from :func:`bayeskit.load_routes`).
    scale : {"logit", "smd"}
    designs : list of str, optional
        Keep only studies of these designs (switch a design off by leaving it out).

    Returns
    -------
    ExposureData

    Examples
    --------
    >>> import bayeskit as bk
    >>> from bayeskit.families.exposure.model import exposure_data
    >>> ev = bk.load_evidence(bk.data_path("oud_abstinence.csv"))
    >>> d = exposure_data(ev[ev["timepoint"] == "12 months"], None, routes=bk.load_routes())
    >>> d.study, d.arms["c"].tolist()
    (['KRUPITSKY2002', 'KRUPITSKY2007'], [0.5, -0.5, 0.5, -0.5])
    """
    parts = []
    if arms is not None and len(arms):
        a = arms.copy()
        a["kind"] = "arm"
        parts.append(a)
    if contrasts is not None and len(contrasts):
        c = contrasts.reset_index() if "study" not in contrasts.columns else contrasts.copy()
        c["kind"] = "contrast"
        parts.append(c)
    if not parts:
        raise UserError("the exposure-response model got no data")
    rows = pd.concat(parts, ignore_index=True)
    if "design" not in rows:
        rows["design"] = "rct"
    rows["design"] = rows["design"].fillna("rct")
    if designs is not None:
        rows = rows[rows["design"].isin(designs)]
        if rows.empty:
            raise UserError(f"no studies left after keeping designs {designs}")
    if "indication" not in rows:
        rows["indication"] = "all"
    rows["indication"] = rows["indication"].fillna("all")
    for col in ("sessions", "control_sessions"):
        if col not in rows:
            rows[col] = np.nan
    for col in ("control_dose_mg_per_kg", "control_route"):
        if col not in rows:
            rows[col] = np.nan if "dose" in col else None
    dose = rows["dose_mg_per_kg"]
    missing = dose.isna()
    if missing.any():
        bad = sorted(set(rows.loc[missing, "study"]))
        raise UserError(
            f"the exposure-response model needs each arm's dose_mg_per_kg; missing "
            f"for {', '.join(bad)} (fill it in, or leave the study out)"
        )
    unknown = sorted(set(rows["route"].dropna()) - set(routes.index))
    if unknown:
        raise UserError(f"no bioavailability for route(s) {unknown} in the route table")
    study = list(dict.fromkeys(rows["study"].astype(str)))
    first = rows.drop_duplicates("study").set_index("study").loc[study]
    indication = sorted(set(first["indication"]))
    design = sorted({d for d in first["design"] if d not in RANDOMISED})
    # every route of the table is in the model, so a regimen by a route no study used can
    # still be predicted: its bioavailability is then carried by its prior alone
    route_list = list(routes.index)
    arms_out, con_out = _indexed(rows, study, route_list)
    bio = routes.loc[route_list].rename(
        columns={"bioavailability": "mean", "bioavailability_sd": "sd"}
    )
    return ExposureData(
        study=study,
        indication=indication,
        route=route_list,
        design=design,
        study_indication=np.array([indication.index(i) for i in first["indication"]]),
        study_design=np.array([design.index(d) if d in design else -1 for d in first["design"]]),
        bioavailability=bio,
        arms=arms_out,
        contrasts=con_out,
        scale=scale,
        table=rows.drop(columns=["kind"]),
        measure="OR" if scale == "logit" else "SMD",
    )


def _indexed(rows: pd.DataFrame, study: list[str], route_list: list[str]):
    """Split rows into arms and contrasts, with study and route indices and defaults."""
    arms_out = rows[rows["kind"] == "arm"].reset_index(drop=True)
    con_out = rows[rows["kind"] == "contrast"].reset_index(drop=True)
    if len(arms_out):
        arms_out = arms_out.assign(
            label=arms_out["study"].astype(str) + ":" + arms_out["arm"].astype(str),
            study_idx=[study.index(s) for s in arms_out["study"].astype(str)],
            route_idx=_route_index(route_list, arms_out["route"]),
            c=np.where(
                arms_out.get("role", pd.Series(None, index=arms_out.index)) == "control", -0.5, 0.5
            ),
            sessions=arms_out["sessions"].fillna(1.0).astype(float),
        )
    if len(con_out):
        con_out = con_out.assign(
            label=con_out["study"].astype(str),
            study_idx=[study.index(s) for s in con_out["study"].astype(str)],
            route_idx=_route_index(route_list, con_out["route"]),
            control_route_idx=_route_index(route_list, con_out["control_route"]),
            control_dose_mg_per_kg=con_out["control_dose_mg_per_kg"].fillna(0.0).astype(float),
            sessions=con_out["sessions"].fillna(1.0).astype(float),
            control_sessions=con_out["control_sessions"].fillna(0.0).astype(float),
        )
    return arms_out, con_out


def beta_params(mean: float, sd: float) -> tuple[float, float]:
    """Beta(a, b) with the given mean and SD (method of moments).

    Examples
    --------
    >>> [round(x, 2) for x in beta_params(0.32, 0.07)]
    [13.89, 29.52]
    """
    if not 0 < mean < 1:
        raise UserError(f"a bioavailability must lie in (0, 1) to have a Beta prior (got {mean})")
    k = mean * (1 - mean) / sd**2 - 1
    if k <= 0:
        raise UserError(
            f"bioavailability SD {sd} is too large for mean {mean}: a Beta prior "
            "needs sd^2 < mean (1 - mean)"
        )
    return mean * k, (1 - mean) * k


def build(
    data: ExposureData,
    priors: dict,
    *,
    form: str = "loglinear",
    sessions: str = "multiplier",
    exposure_ref: float = 0.1,
    route_effect: bool = False,
    bias_sd: dict[str, float] | None = None,
    design_weight: dict[str, float] | None = None,
    borrowing: bool = True,
):
    """Return the ``pymc.Model`` of the exposure-response model.

    Dims: ``study``, ``arm``, ``contrast``, ``route``, ``indication``, ``design``.

    Parameters
    ----------
    data : ExposureData
        From :func:`exposure_data`.
    priors : dict of str to Prior
        ``beta_dose`` (or ``emax`` and ``ed50``), ``tau``, ``baseline``, ``baseline_sd``,
        and as needed ``indication_sd``, ``beta_sessions``, ``route_sd``, ``bias``.
    form : {"loglinear", "emax"}
    sessions : {"multiplier", "term", "ignore"}
    exposure_ref : float
        Reference systemic exposure (mg/kg) of the log-linear form.
    route_effect : bool
        Add a route effect beyond pharmacokinetics.
    bias_sd : dict, optional
        Extra SD of each non-randomised design's bias (defaults: ``DEFAULT_BIAS_SD``).
    design_weight : dict, optional
        Power-prior weights per design, instead of a bias term.
    borrowing : bool
        Exchangeable slopes across indications.

    Examples
    --------
    >>> import bayeskit as bk
    >>> from bayeskit.families.exposure.model import build, exposure_data
    >>> from bayeskit.priors import parse_prior
    >>> ev = bk.load_evidence(bk.data_path("oud_abstinence.csv"))
    >>> arms = ev[ev["timepoint"] == "12 months"]
    >>> d = exposure_data(arms, None, routes=bk.load_routes())
    >>> pri = {k: parse_prior(v) for k, v in {"beta_dose": "Normal(0, 0.5)",
    ...        "tau": "HalfNormal(0.5)", "baseline": "Normal(0, 2)",
    ...        "baseline_sd": "HalfNormal(1)"}.items()}
    >>> m = build(d, pri)
    >>> m.coords["route"], m.coords["indication"]
    (('iv', 'im', 'sl', 'oral', 'intranasal'), ('OUD',))
    """
    import pymc as pm

    if form not in FORMS:
        raise UserError(f"form must be one of {', '.join(FORMS)} (got {form!r})")
    if sessions not in SESSIONS:
        raise UserError(f"sessions must be one of {', '.join(SESSIONS)} (got {sessions!r})")
    if exposure_ref <= 0:
        raise UserError(f"exposure_ref must be positive (got {exposure_ref})")
    bias_sd = DEFAULT_BIAS_SD | (bias_sd or {})
    weights = design_weight or {}
    arms, con = data.arms, data.contrasts
    with pm.Model(coords=_coords(data)) as model:
        F = _bioavailability(data)
        slope, ed50 = _slopes(data, priors, form, borrowing)
        beta_sessions = (
            priors["beta_sessions"].to_pymc("beta_sessions") if sessions == "term" else None
        )
        route_eff = None
        if route_effect:
            route_sd = priors["route_sd"].to_pymc("route_sd")
            rz = pm.Normal("route_effect_z", 0.0, 1.0, dims="route")
            route_eff = pm.Deterministic("route_effect", route_sd * rz, dims="route")

        effect_of = _effect_function(
            F, slope, ed50, beta_sessions, route_eff, form, sessions, exposure_ref
        )

        tau = priors["tau"].to_pymc("tau")
        dz = pm.Normal("delta_z", 0.0, 1.0, dims="study")
        delta = pm.Deterministic("delta", tau * dz, dims="study")
        bias = _bias(data, priors, bias_sd)
        ind_of_study = data.study_indication

        if len(arms):
            s_idx = arms["study_idx"].to_numpy()
            alpha_mu = priors["baseline"].to_pymc("alpha_mu", dims="indication")
            alpha_sd = priors["baseline_sd"].to_pymc("alpha_sd")
            az = pm.Normal("alpha_z", 0.0, 1.0, dims="study")
            alpha = pm.Deterministic("alpha", alpha_mu[ind_of_study] + alpha_sd * az, dims="study")
            eff = effect_of(arms, "", ind_of_study[s_idx])
            logit_p = alpha[s_idx] + eff + arms["c"].to_numpy() * delta[s_idx] + bias[s_idx]
            n = arms["n"].to_numpy(int)
            _observe(
                pm.Binomial,
                lambda r: {"n": n[r], "logit_p": logit_p[r]},
                "events",
                arms,
                weights,
                arms["events"].to_numpy(int),
                "arm",
            )
        if len(con):
            s_idx = con["study_idx"].to_numpy()
            e1 = effect_of(con, "", ind_of_study[s_idx])
            e0 = effect_of(con, "control_", ind_of_study[s_idx])
            mean = e1 - e0 + delta[s_idx] + bias[s_idx]
            sei = con["sei"].to_numpy(float)
            _observe(
                pm.Normal,
                lambda r: {"mu": mean[r], "sigma": sei[r]},
                "yi",
                con,
                weights,
                con["yi"].to_numpy(float),
                "contrast",
            )
    return model


def _coords(data: ExposureData) -> dict:
    """Return the model's coordinates: study, route, indication; design, arm, contrast."""
    coords = {"study": data.study, "route": data.route, "indication": data.indication}
    if data.design:
        coords["design"] = data.design
    if len(data.arms):
        coords["arm"] = data.arms["label"].tolist()
    if len(data.contrasts):
        coords["contrast"] = data.contrasts["label"].tolist()
    return coords


def _effect_function(F, slope, ed50, beta_sessions, route_eff, form, sessions, exposure_ref):
    """Return ``effect_of(rows, prefix, ind_idx)``: each row's effect through the mean function.

    ``prefix`` ``"control_"`` gives the effect of a contrast's control arm.
    """
    import pytensor.tensor as pt

    def effect(dose, route_idx, n_sessions, ind_idx):
        r = np.maximum(route_idx, 0)
        return mean_effect(
            exposure(dose, F[r], n_sessions, {"sessions": sessions}),
            (dose > 0).astype(float),
            n_sessions,
            form=form,
            exposure_ref=exposure_ref,
            slope=slope[ind_idx],
            ed50=ed50,
            beta_sessions=beta_sessions,
            route_effect=None if route_eff is None else route_eff[r],
            log2=pt.log2,
        )

    def effect_of(rows, prefix, ind_idx):
        """Return each row's effect (its control arm's with prefix "control_")."""
        return effect(
            rows[f"{prefix}dose_mg_per_kg"].to_numpy(float),
            rows[f"{prefix}route_idx"].to_numpy(),
            rows[f"{prefix}sessions"].to_numpy(float),
            ind_idx,
        )

    return effect_of


def _bioavailability(data: ExposureData):
    """Add the bioavailability by route: Beta priors centred on the route table, IV 1."""
    import pymc as pm
    import pytensor.tensor as pt

    parts = []
    for r, (m, s) in data.bioavailability[["mean", "sd"]].iterrows():
        if s == 0 or m == 1:
            parts.append(pt.as_tensor_variable(np.float64(m)))
        else:
            a, b = beta_params(float(m), float(s))
            parts.append(pm.Beta(f"bioavailability_{r}", alpha=a, beta=b))
    return pm.Deterministic("bioavailability", pt.stack(parts), dims="route")


def _slopes(data: ExposureData, priors: dict, form: str, borrowing: bool):
    """Add the slope of each indication (``beta_dose`` or ``emax``); return it and ``ed50``."""
    import pymc as pm
    import pytensor.tensor as pt

    n_ind = len(data.indication)
    if form == "loglinear":
        beta_mu = priors["beta_dose"].to_pymc("beta_dose_mu")
        if n_ind > 1 and borrowing:
            ind_sd = priors["indication_sd"].to_pymc("indication_sd")
            z = pm.Normal("beta_dose_z", 0.0, 1.0, dims="indication")
            slope = pm.Deterministic("beta_dose", beta_mu + ind_sd * z, dims="indication")
        elif n_ind > 1:  # no borrowing: a separate slope for each indication
            slope = priors["beta_dose"].to_pymc("beta_dose", dims="indication")
        else:
            slope = pm.Deterministic("beta_dose", beta_mu * pt.ones(1), dims="indication")
        pm.Deterministic(
            "or_per_doubling" if data.scale == "logit" else "effect_per_doubling",
            pt.exp(slope) if data.scale == "logit" else slope,
            dims="indication",
        )
        return slope, None
    emax = priors["emax"].to_pymc("emax_mu")
    if n_ind > 1 and borrowing:
        ind_sd = priors["indication_sd"].to_pymc("indication_sd")
        z = pm.Normal("emax_z", 0.0, 1.0, dims="indication")
        slope = pm.Deterministic("emax", emax + ind_sd * z, dims="indication")
    else:
        slope = pm.Deterministic("emax", emax * pt.ones(n_ind), dims="indication")
    return slope, priors["ed50"].to_pymc("ed50")


def _bias(data: ExposureData, priors: dict, bias_sd: dict):
    """Add the bias of each non-randomised study (0 for randomised ones)."""
    import pymc as pm
    import pytensor.tensor as pt

    if not data.design:
        return pt.zeros(len(data.study))
    bias_mean = priors["bias"].to_pymc("bias_mean", dims="design")
    bz = pm.Normal("bias_z", 0.0, 1.0, dims="study")
    sd = np.array([bias_sd.get(d, 0.5) for d in data.design])
    nonrand = data.study_design >= 0
    idx = np.maximum(data.study_design, 0)
    return pm.Deterministic(
        "bias", pt.where(nonrand, bias_mean[idx] + sd[idx] * bz, 0.0), dims="study"
    )


def _observe(dist, params, name, rows, weights, observed, dim):
    """Observe rows; rows of a design with power-prior weight w < 1 add w x log-likelihood.

    Weighted rows enter through ``pm.Potential`` and so have no pointwise log-likelihood
    or posterior predictive draws; unweighted rows are ordinary observed variables.
    """
    import pymc as pm

    w = rows["design"].map(lambda d: float(weights.get(d, 1.0))).to_numpy()
    if np.any((w < 0) | (w > 1)):
        raise UserError("design weights (power priors) must lie in [0, 1]")
    if np.all(w == 1):
        # a data container, so that a compiled sampler can be reused with other outcomes
        data = pm.Data(f"{name}_data", observed, dims=dim)
        dist(name, **params(slice(None)), observed=data, dims=dim)
        return
    full, part = np.flatnonzero(w == 1), np.flatnonzero((w > 0) & (w < 1))
    if len(full):
        dist(name, **params(full), observed=observed[full])
    if len(part):
        logp = pm.logp(dist.dist(**params(part)), observed[part])
        pm.Potential(f"{name}_weighted", (w[part] * logp).sum())
