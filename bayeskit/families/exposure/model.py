"""``exposure-response``: arm-level dose and route response across designs and indications.

Each arm's systemic exposure is ``E = dose_mg_per_kg x F[route]`` (times the number of
sessions only when sessions act as a multiplier; by default they are their own term),
where the bioavailability ``F[route]`` is uncertain: it has a Beta prior centred on the
figure in ``data/routes.csv`` with that table's stated SD (intravenous is 1 by
definition). Placebo and no-drug arms have ``E = 0``. The treatment effect of an arm is

* log-linear: ``beta[indication] * log2(1 + E / E_ref)``, so ``exp(beta)`` is the odds
  ratio per doubling of ``1 + E / E_ref`` (close to per doubling of exposure once
  ``E >> E_ref``); the reference exposure ``E_ref`` is a parameter with the prior
  ``exposure_ref`` unless the spec fixes it; or
* Emax: ``emax[indication] * E / (ed50 + E)`` with a prior on ``ed50`` (as MBNMAdose);

plus ``beta_sessions * log2(sessions)`` when sessions are a separate term (the default),
and a route effect beyond pharmacokinetics ``route_effect[route] ~ Normal(0, route_sd)``
for ketamine arms. Contrasts such as high vs low dose (both arms on ketamine) are
handled by the arm structure: the data inform ``beta`` through the difference in
exposure between arms.

Only within-study contrasts inform the dose response by default (``likelihood =
"contrast"``, as MBNMAdose and model 4 of Jackson et al. 2018, Res Synth Methods 9:103,
do): binary arms are ``events ~ Binomial(n, expit(alpha[study] + treated x (effect -
effect(control) + delta[study] + bias[study])))`` with a separate baseline ``alpha[study]
~ baseline prior``, the logit of the study's reference arm, for every study (a nuisance
parameter, a fixed effect), so control arms at different exposures in different trials
do not inform the slope, and a single-arm study's level is absorbed by its own baseline. ``delta ~
Normal(0, tau)`` is the study's deviation in its contrast. ``likelihood = "arm"`` keeps
the arm-based version: random baselines ``alpha ~ Normal(alpha_mu[indication],
alpha_sd)``, which lets single arms and the baselines of trials at different exposures
inform the slope (a non-randomised comparison), and ``c = +-1/2`` loadings of delta.
Study-level contrasts (a published log odds ratio, or an SMD for continuous outcomes)
enter as ``yi ~ Normal(effect(exp) - effect(ctl) + delta + bias, sei)``.

The bias of a study acts on its relative effect (the experimental arm, or a single
arm's change), never on both arms, so it does not cancel from a two-arm contrast. For
non-randomised designs (every design but ``rct`` and ``crossover_rct``)
``bias[study] = direction x bias_mean[design] + bias_sd[design] x z`` with ``z ~
Normal(0, 1)`` and ``direction`` +1 when higher outcomes are benefit (``benefit``), so the
bias favours the experimental arm on average. Defaults (``DEFAULT_BIAS_MEAN``,
``DEFAULT_BIAS_SD``, log-odds scale; times sqrt(3)/pi on the SMD scale, Chinn 2000): a
mean of 0.37, the exaggeration of odds ratios by trials with inadequate or unclear
allocation concealment and subjective outcomes (ratio of odds ratios 0.69, Wood et al.
2008, BMJ 336:601, the data behind the empirical bias priors of Welton et al. 2009,
JRSS-A 172:119), and SDs of 0.3 (cohort, case control), 0.5 (case series,
non_randomised) and 1.0 (case report), in the range of the internal biases elicited by
Turner et al. 2009 (JRSS-A 172:21). ``bias_form = "proportional"`` multiplies the
relative effect by ``exp(bias)`` instead (Turner et al.'s proportional bias). When
several studies share a research group (a ``group`` column), a shared random effect
``group_effect[group] ~ Normal(0, group_sd)`` adds to the bias of each of them,
randomised or not. Alternatively a power-prior weight per design multiplies that
design's log-likelihood.

A study reporting several selected outcomes or timepoints (``repeated = "all"``, see
:func:`~bayeskit.families.exposure.gather.gather`) enters as m sub-studies, each with its
own baseline, all sharing the study's ``delta`` and bias (dim ``parent``); each
sub-study's log-likelihood and baseline prior are weighted 1/m, so that the patients
measured m times count once (working independence with weights, a composite likelihood).

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
#: mean bias (favouring the experimental arm, log-odds scale) of each non-randomised
#: design: -log(0.69), Wood et al. 2008's ratio of odds ratios for inadequate or unclear
#: allocation concealment with subjective outcomes (a lower bound for no randomisation)
DEFAULT_BIAS_MEAN = dict.fromkeys(DEFAULT_BIAS_SD, 0.37)
#: mean log-factor of a proportional bias: an exaggeration of the relative effect by
#: about a fifth (a judgement within Turner et al. 2009's elicited proportional biases)
DEFAULT_PROPORTIONAL_MEAN = dict.fromkeys(DEFAULT_BIAS_SD, 0.2)
#: log-odds to SMD (Chinn 2000, Stat Med 19:3127)
LOGIT_TO_SMD = float(np.sqrt(3) / np.pi)
FORMS = ("loglinear", "emax")
SESSIONS = ("multiplier", "term", "ignore")
LIKELIHOODS = ("contrast", "arm")
BIAS_FORMS = ("additive", "proportional")


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
    anchor: tuple[float, float, int] | None  # doses and route of a randomised dose contrast
    group: list[str]  # research groups of two or more studies
    study_group: np.ndarray  # index into group; -1 for a study alone in its group
    bioavailability: pd.DataFrame  # per route: mean, sd
    arms: pd.DataFrame  # binary arms
    contrasts: pd.DataFrame  # study-level contrasts
    scale: str  # "logit" (binary) or "smd"
    table: pd.DataFrame = field(repr=False)
    measure: str = "OR"
    settings: dict | None = field(default=None, repr=False)  # the options it was built with
    #: case reports and series described beside the fit, not pooled (None: none left out)
    described: pd.DataFrame | None = field(default=None, repr=False)
    #: borrowing = "prior": what the source fit needs, and the informative prior it made
    borrow_request: dict | None = field(default=None, repr=False)
    borrowed: object | None = field(default=None, repr=False)
    #: the studies whose outcomes or timepoints enter as sub-studies (``repeated = "all"``);
    #: ``study`` then holds the sub-studies and ``study_parent`` indexes into ``parent``
    parent: list[str] = field(default_factory=list)
    study_parent: np.ndarray = field(default_factory=lambda: np.zeros(0, int))

    @property
    def repeated(self) -> bool:
        """Whether a study has several sub-studies (its deviation and bias are shared)."""
        return len(self.parent) < len(self.study)


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
    if "parent" in rows:
        rows["parent"] = rows["parent"].fillna(rows["study"]).astype(str)
    group, study_group = _groups(rows, study)
    parent, study_parent = _parents(rows, study)
    arms_out, con_out = _indexed(rows, study, route_list)
    m = np.bincount(study_parent)[study_parent]  # sub-studies of each one's study
    for part in (arms_out, con_out):
        if len(part):
            part["repeat_weight"] = 1.0 / m[part["study_idx"].to_numpy()]
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
        anchor=_anchor(arms_out, con_out),
        group=group,
        study_group=study_group,
        bioavailability=bio,
        arms=arms_out,
        contrasts=con_out,
        scale=scale,
        table=rows.drop(columns=["kind"]),
        measure="OR" if scale == "logit" else "SMD",
        parent=parent,
        study_parent=study_parent,
    )


def _parents(rows: pd.DataFrame, study: list[str]) -> tuple[list[str], np.ndarray]:
    """Return the original studies (column ``parent``) and each (sub-)study's index into them.

    Examples
    --------
    >>> rows = pd.DataFrame({"study": ["A [x]", "A [y]", "B"], "parent": ["A", "A", "B"]})
    >>> _parents(rows, ["A [x]", "A [y]", "B"])
    (['A', 'B'], array([0, 0, 1]))
    """
    if "parent" not in rows:
        return list(study), np.arange(len(study))
    of = rows.assign(parent=rows["parent"].fillna(rows["study"])).drop_duplicates("study")
    of = of.set_index(of["study"].astype(str))["parent"].astype(str)
    parent = list(dict.fromkeys(of.loc[study]))
    return parent, np.array([parent.index(of[s]) for s in study])


def _groups(rows: pd.DataFrame, study: list[str]) -> tuple[list[str], np.ndarray]:
    """Research groups (the ``group`` column) that hold two or more studies.

    A group of one study adds nothing a study's own bias does not, so it is left out.
    """
    if "group" not in rows or rows["group"].isna().all():
        return [], np.full(len(study), -1)
    per_study = rows.groupby(rows["study"].astype(str))["group"].agg(
        lambda g: sorted(set(g.dropna().astype(str)))
    )
    several = per_study[per_study.map(len) > 1]
    if len(several):
        raise UserError(
            f"column group: study {several.index[0]} has rows in several research groups "
            f"({', '.join(several.iloc[0])}); a study belongs to one group"
        )
    of_study = {s: (g[0] if g else None) for s, g in per_study.items()}
    # a group of one study's sub-studies is still a group of one study
    parents = rows["parent"] if "parent" in rows else rows["study"]
    parent_of = dict(zip(rows["study"].astype(str), parents.astype(str), strict=True))
    pairs = {(parent_of.get(s, s), g) for s, g in of_study.items() if g}
    counts = pd.Series([g for _, g in pairs]).value_counts()
    group = sorted(counts[counts > 1].index)
    return group, np.array(
        [group.index(of_study[s]) if of_study[s] in group else -1 for s in study]
    )


def _indexed(rows: pd.DataFrame, study: list[str], route_list: list[str]):
    """Split rows into arms and contrasts, with study and route indices and defaults."""
    arms_out = rows[rows["kind"] == "arm"].reset_index(drop=True)
    con_out = rows[rows["kind"] == "contrast"].reset_index(drop=True)
    if len(arms_out):
        role = arms_out.get("role", pd.Series(None, index=arms_out.index))
        arms_out = arms_out.assign(
            label=arms_out["study"].astype(str) + ":" + arms_out["arm"].astype(str),
            study_idx=[study.index(s) for s in arms_out["study"].astype(str)],
            route_idx=_route_index(route_list, arms_out["route"]),
            c=np.where(role == "control", -0.5, 0.5),
            treated=np.where(role == "control", 0.0, 1.0),
            sessions=arms_out["sessions"].fillna(1.0).astype(float),
        )
        arms_out = _with_control_arm(arms_out, route_list)
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


def _anchor(arms: pd.DataFrame, con: pd.DataFrame) -> tuple[float, float, int] | None:
    """Return the first randomised dose contrast: (low dose, high dose, route index).

    Both arms by one route (or the low arm without drug) at different doses; with
    ``slope_scale = "contrast"`` the slope's prior is on the effect between them. Without
    one, the highest dose against no drug.
    """
    pairs = []
    if len(arms):
        rand = arms[arms["design"].isin(RANDOMISED) & (arms["treated"] == 1)]
        pairs += [
            (r.control_dose_mg_per_kg, r.dose_mg_per_kg, r.route_idx, r.control_route_idx)
            for r in rand.itertuples()
        ]
    if len(con):
        rand = con[con["design"].isin(RANDOMISED)]
        pairs += [
            (r.control_dose_mg_per_kg, r.dose_mg_per_kg, r.route_idx, r.control_route_idx)
            for r in rand.itertuples()
        ]
    for lo, hi, route, route0 in pairs:
        if hi > lo and route >= 0 and (lo == 0 or route0 == route):
            return float(lo), float(hi), int(route)
    # no randomised dose contrast (e.g. a refit leaving that trial out): the highest dose
    # in the data against no drug
    rows = pd.concat([t for t in (arms, con) if len(t)], ignore_index=True)
    on = rows[(rows["dose_mg_per_kg"] > 0) & (rows["route_idx"] >= 0)]
    if on.empty:
        return None
    top = on.loc[on["dose_mg_per_kg"].idxmax()]
    return 0.0, float(top["dose_mg_per_kg"]), int(top["route_idx"])


def _with_control_arm(arms: pd.DataFrame, route_list: list[str]) -> pd.DataFrame:
    """Add each arm's study control regimen (``control_*``); no drug where there is none."""
    ctl = arms[arms["treated"] == 0].drop_duplicates("study_idx").set_index("study_idx")
    has = arms["study_idx"].isin(ctl.index)
    pick = ctl.reindex(arms["study_idx"])
    return arms.assign(
        control_dose_mg_per_kg=np.where(has, pick["dose_mg_per_kg"].to_numpy(float), 0.0),
        control_route_idx=np.where(has, pick["route_idx"].to_numpy(float), -1).astype(int),
        control_sessions=np.where(has, pick["sessions"].to_numpy(float), 0.0),
    )


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
    sessions: str = "term",
    exposure_ref: float | None = None,
    route_effect: bool = False,
    slope_scale: str = "doubling",
    likelihood: str = "contrast",
    bias_form: str = "additive",
    bias_mean: dict[str, float] | None = None,
    bias_sd: dict[str, float] | None = None,
    benefit: str = "higher",
    group_effect: bool = True,
    design_weight: dict[str, float] | None = None,
    borrowing: bool | str = True,
    borrowed=None,
):
    """Return the ``pymc.Model`` of the exposure-response model.

    Dims: ``study``, ``arm``, ``contrast``, ``route``, ``indication``, ``design``,
    ``group``.

    Parameters
    ----------
    data : ExposureData
        From :func:`exposure_data`.
    priors : dict of str to Prior
        ``beta_dose`` (or ``emax`` and ``ed50``), ``tau``, ``baseline``, and as needed
        ``exposure_ref``, ``baseline_sd``, ``indication_sd``, ``beta_sessions``,
        ``route_sd``, ``group_sd``.
    form : {"loglinear", "emax"}
    sessions : {"term", "multiplier", "ignore"}
    exposure_ref : float, optional
        Reference systemic exposure (mg/kg) of the log-linear form; None estimates it
        (prior ``exposure_ref``).
    route_effect : bool
        Add a route effect beyond pharmacokinetics.
    slope_scale : {"doubling", "contrast"}
        Where the slope's prior sits: per doubling (``beta_dose``, or ``emax``), or on
        the effect between the doses of the data's first randomised dose contrast
        (``dose_contrast``), so that the shape and the reference exposure leave the prior
        of that within-evidence answer alone.
    likelihood : {"contrast", "arm"}
        Fixed study baselines (only within-study contrasts inform the dose response) or
        random baselines (arm-based: baselines of different trials inform it too).
    bias_form : {"additive", "proportional"}
        The bias adds to the relative effect, or multiplies it by ``exp(bias)``.
    bias_mean, bias_sd : dict, optional
        Mean (favouring the experimental arm) and SD of each non-randomised design's bias
        (defaults: ``DEFAULT_BIAS_MEAN`` or ``DEFAULT_PROPORTIONAL_MEAN``,
        ``DEFAULT_BIAS_SD``; means on the SMD scale times ``LOGIT_TO_SMD``).
    benefit : {"higher", "lower"}
        The direction of benefit, which the mean bias favours.
    group_effect : bool
        A shared random effect for studies of one research group (``group`` column).
    design_weight : dict, optional
        Power-prior weights per design, instead of a bias term.
    borrowing : bool or "prior"
        Exchangeable slopes across indications; ``"prior"``: separate slopes, the target
        indication's ``dose_contrast`` with the robust mixture prior ``borrowed``
        (:class:`~bayeskit.families.exposure.borrow.BorrowedPrior`).
    borrowed : BorrowedPrior, optional
        The informative prior ``borrowing = "prior"`` needs.

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
    ...        "exposure_ref": "LogNormal(-1.6, 1.2)",
    ...        "beta_sessions": "Normal(0, 0.5)", "group_sd": "HalfNormal(0.2)"}.items()}
    >>> m = build(d, pri)
    >>> m.coords["route"], m.coords["indication"]
    (('iv', 'im', 'sl', 'oral', 'intranasal'), ('OUD',))
    """
    import pymc as pm

    _check_choices(form, sessions, likelihood, bias_form, exposure_ref)
    weights = design_weight or {}
    arms, con = data.arms, data.contrasts
    with pm.Model(coords=_coords(data)) as model:
        F = _bioavailability(data)
        ref = exposure_ref
        if form == "loglinear" and ref is None:
            ref = priors["exposure_ref"].to_pymc("exposure_ref")
        ed50 = priors["ed50"].to_pymc("ed50") if form == "emax" else None
        divisor = None
        if slope_scale == "contrast":
            divisor = _anchor_span(data, F, form, ref, ed50, sessions)
        slope = _slopes(data, priors, form, borrowing, divisor, borrowed)
        beta_sessions = (
            priors["beta_sessions"].to_pymc("beta_sessions") if sessions == "term" else None
        )
        route_eff = None
        if route_effect:
            route_sd = priors["route_sd"].to_pymc("route_sd")
            rz = pm.Normal("route_effect_z", 0.0, 1.0, dims="route")
            route_eff = pm.Deterministic("route_effect", route_sd * rz, dims="route")

        effect_of = _effect_function(F, slope, ed50, beta_sessions, route_eff, form, sessions, ref)

        tau = priors["tau"].to_pymc("tau")
        # sub-studies of one study (repeated = "all") share its deviation: one trial
        dz = _standard_normal_per_study(data, "delta_z")
        delta = pm.Deterministic("delta", tau * dz, dims="study")
        shift, factor = _bias(
            data,
            priors,
            bias_form,
            bias_mean,
            bias_sd,
            1.0 if benefit == "higher" else -1.0,
            group_effect,
        )
        ind_of_study = data.study_indication

        if len(arms):
            _observe_arms(data, priors, likelihood, effect_of, shift, factor, delta, weights)
        if len(con):
            s_idx = con["study_idx"].to_numpy()
            e1 = effect_of(con, "", ind_of_study[s_idx])
            e0 = effect_of(con, "control_", ind_of_study[s_idx])
            mean = (e1 - e0) * factor[s_idx] + shift[s_idx] + delta[s_idx]
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


def _observe_arms(data, priors, likelihood, effect_of, shift, factor, delta, weights):
    """Add the binary arms' likelihood (contrast- or arm-based)."""
    import pymc as pm

    arms, ind_of_study = data.arms, data.study_indication
    s_idx = arms["study_idx"].to_numpy()
    eff = effect_of(arms, "", ind_of_study[s_idx])
    eff0 = effect_of(arms, "control_", ind_of_study[s_idx])
    alpha = _baselines(data, priors, likelihood, eff0)
    treated = arms["treated"].to_numpy(float)
    if likelihood == "contrast":  # alpha: the logit of the study's reference arm
        logit_p = alpha[s_idx] + treated * (
            (eff - eff0) * factor[s_idx] + shift[s_idx] + delta[s_idx]
        )
    else:  # alpha: the logit without drug, random across studies
        logit_p = (
            alpha[s_idx]
            + eff0
            + (eff - eff0) * factor[s_idx]
            + treated * shift[s_idx]
            + arms["c"].to_numpy() * delta[s_idx]
        )
    # the denominators are data, like the events: the derived-count variants of the
    # robustness table (other denominators) then reuse the fit's compiled sampler
    n = pm.Data("events_n", arms["n"].to_numpy(int), dims="arm")
    _observe(
        pm.Binomial,
        lambda r: {"n": n[r], "logit_p": logit_p[r]},
        "events",
        arms,
        weights,
        arms["events"].to_numpy(int),
        "arm",
    )


def _anchor_span(data: ExposureData, F, form, ref, ed50, sessions):
    """Return the shape's rise between the anchor doses (slope = contrast over it)."""
    if data.anchor is None:
        raise UserError(
            'slope_scale = "contrast" needs a ketamine dose in the data; none has one: '
            'use slope_scale = "doubling"'
        )
    lo, hi, r = data.anchor
    settings = {"sessions": sessions}
    E = [exposure(d, F[r], 1.0, settings) for d in (lo, hi)]
    if form == "loglinear":
        import pytensor.tensor as pt

        g = [pt.log2(1 + e / ref) for e in E]
    else:
        g = [e / (ed50 + e) for e in E]
    return g[1] - g[0]


def _check_choices(form, sessions, likelihood, bias_form, exposure_ref) -> None:
    """Refuse an unknown form, sessions, likelihood or bias form, or a bad exposure_ref."""
    if form not in FORMS:
        raise UserError(f"form must be one of {', '.join(FORMS)} (got {form!r})")
    if sessions not in SESSIONS:
        raise UserError(f"sessions must be one of {', '.join(SESSIONS)} (got {sessions!r})")
    if likelihood not in LIKELIHOODS:
        raise UserError(f"likelihood must be one of {', '.join(LIKELIHOODS)} (got {likelihood!r})")
    if bias_form not in BIAS_FORMS:
        raise UserError(f"bias_form must be one of {', '.join(BIAS_FORMS)} (got {bias_form!r})")
    if exposure_ref is not None and exposure_ref <= 0:
        raise UserError(f"exposure_ref must be positive (got {exposure_ref})")


def _baselines(data: ExposureData, priors: dict, likelihood: str, eff0):
    """Add the study baselines: fixed effects at the reference arm, or random ones.

    Contrast-based (as MBNMAdose): ``alpha[study]`` is the logit of the study's reference
    arm (its control, or its single arm), one free parameter per study with the
    ``baseline`` prior, so that it is nearly independent of the slope. For absolute
    probabilities ``alpha_mu[indication]`` is the mean over that indication's studies
    with arms (all of them where it has none) of ``alpha - effect(reference arm)``: the
    logit without drug, a summary that the likelihood does not see (and an
    extrapolation where no arm went without drug). Arm-based: ``alpha ~
    Normal(alpha_mu[indication], alpha_sd)`` is the logit without drug.
    """
    import pymc as pm
    import pytensor.tensor as pt

    ind_of_study = data.study_indication
    if likelihood == "arm":
        alpha_mu = priors["baseline"].to_pymc("alpha_mu", dims="indication")
        alpha_sd = priors["baseline_sd"].to_pymc("alpha_sd")
        az = pm.Normal("alpha_z", 0.0, 1.0, dims="study")
        _temper_sub_studies(data, az)
        return pm.Deterministic("alpha", alpha_mu[ind_of_study] + alpha_sd * az, dims="study")
    alpha = priors["baseline"].to_pymc("alpha", dims="study")
    _temper_sub_studies(data, alpha)
    s_idx = data.arms["study_idx"].to_numpy()
    # the reference arm's effect, once per study (every arm of a study carries it)
    first = np.array(
        [
            int(np.flatnonzero(s_idx == i)[0]) if (s_idx == i).any() else 0
            for i in range(len(data.study))
        ]
    )
    zero_drug = alpha - eff0[first]
    with_arms = np.isin(np.arange(len(data.study)), s_idx)
    weights = np.zeros((len(data.indication), len(data.study)))
    for i in range(len(data.indication)):
        mine = with_arms & (ind_of_study == i)
        use = mine if mine.any() else with_arms
        weights[i] = use / use.sum()
    pm.Deterministic("alpha_mu", pt.dot(pt.as_tensor(weights), zero_drug), dims="indication")
    return alpha


def _temper_sub_studies(data: ExposureData, baseline) -> None:
    """Weight a sub-study's baseline prior 1/m, as its likelihood (``repeated = "all"``).

    A sub-study's whole contribution, its likelihood and the prior of its own nuisance
    baseline, is weighted 1/m. Weighting the likelihood alone would let the baseline
    prior pull harder on each of m half-informed baselines than on one fully informed
    one: a study copied at a second timepoint would then move the answer (on the
    Krupitsky 2002 arms, by -0.1 on the log odds ratio's posterior mean, found on a grid).
    With both weighted, the copy leaves the density unchanged where the copies'
    baselines agree.
    """
    import pymc as pm

    if not data.repeated:
        return
    w = 1.0 / np.bincount(data.study_parent)[data.study_parent]
    pm.Potential("baseline_weighted", ((w - 1.0) * pm.logp(baseline, baseline)).sum())


def _coords(data: ExposureData) -> dict:
    """Return the model's coordinates: study, route, indication; design, arm, contrast."""
    coords = {"study": data.study, "route": data.route, "indication": data.indication}
    if data.design:
        coords["design"] = data.design
    if data.group:
        coords["group"] = data.group
    if data.repeated:
        coords["parent"] = data.parent
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


def _slopes(data: ExposureData, priors: dict, form: str, borrowing, divisor=None, borrowed=None):
    """Add the slope of each indication (``beta_dose`` or ``emax``) and return it.

    With a ``divisor`` (``slope_scale = "contrast"``) the free parameter is
    ``dose_contrast``, the effect between the anchor doses, and the slope is it over the
    shape's rise between them. With ``borrowing = "prior"`` the target indication's
    ``dose_contrast`` has the robust mixture prior ``borrowed``, the others their own.
    """
    import pymc as pm
    import pytensor.tensor as pt

    name = "beta_dose" if form == "loglinear" else "emax"
    free = name if divisor is None else "dose_contrast"
    n_ind = len(data.indication)
    if borrowing == "prior":
        value = _borrowed_contrast(data, priors, free, borrowed)
    elif n_ind > 1 and borrowing:
        mu = priors[free].to_pymc(f"{free}_mu")
        ind_sd = priors["indication_sd"].to_pymc("indication_sd")
        z = pm.Normal(f"{free}_z", 0.0, 1.0, dims="indication")
        value = pm.Deterministic(free, mu + ind_sd * z, dims="indication")
    elif n_ind > 1:  # no borrowing: a separate slope for each indication
        value = priors[free].to_pymc(free, dims="indication")
    else:
        mu = priors[free].to_pymc(f"{free}_mu")
        value = pm.Deterministic(free, mu * pt.ones(1), dims="indication")
    slope = value if divisor is None else pm.Deterministic(name, value / divisor, dims="indication")
    if form == "loglinear":
        pm.Deterministic(
            "or_per_doubling" if data.scale == "logit" else "effect_per_doubling",
            pt.exp(slope) if data.scale == "logit" else slope,
            dims="indication",
        )
    return slope


def _borrowed_contrast(data: ExposureData, priors: dict, free: str, borrowed):
    """Each indication's dose contrast; the target's with the informative mixture prior.

    The mixture's weights, means and SDs are data containers, so fits that differ only in
    the borrowing knobs share one compiled sampler.
    """
    import pymc as pm
    import pytensor.tensor as pt

    if borrowed is None or free != "dose_contrast":
        raise UserError('borrowing = "prior" needs slope_scale = "contrast" and a source fit')
    w, mu, sigma = borrowed.components()
    mix = pm.NormalMixture(
        f"{free}_borrowed",
        w=pm.Data("borrowed_weight", w),
        mu=pm.Data("borrowed_mu", mu),
        sigma=pm.Data("borrowed_sigma", sigma),
    )
    parts = []
    for ind in data.indication:
        if ind == borrowed.target:
            parts.append(mix)
        else:  # other indications: their own slope with the spec's prior
            parts.append(priors[free].to_pymc(f"{free}_{ind}"))
    return pm.Deterministic(free, pt.stack(parts), dims="indication")


def _standard_normal_per_study(data: ExposureData, name: str):
    """Add ``name ~ Normal(0, 1)`` per study; sub-studies (dim ``parent``) share their study's."""
    import pymc as pm

    if not data.repeated:
        return pm.Normal(name, 0.0, 1.0, dims="study")
    return pm.Normal(name, 0.0, 1.0, dims="parent")[data.study_parent]


def _bias(data, priors, bias_form, bias_mean, bias_sd, direction, group_effect):
    """Add each study's bias on its relative effect; return (additive shift, factor).

    ``bias[study]`` is ``direction x mean[design] + sd[design] x z`` for non-randomised
    studies, 0 for randomised ones, plus the shared effect of its research group. Additive
    bias is the shift (factor 1); proportional bias is the log of the factor (shift 0).
    """
    import pymc as pm
    import pytensor.tensor as pt

    n = len(data.study)
    terms = []
    if data.design:
        default = DEFAULT_BIAS_MEAN if bias_form == "additive" else DEFAULT_PROPORTIONAL_MEAN
        if data.scale == "smd" and bias_form == "additive":
            default = {k: v * LOGIT_TO_SMD for k, v in default.items()}
        means = default | (bias_mean or {})
        sds = DEFAULT_BIAS_SD | (bias_sd or {})
        nonrand = data.study_design >= 0
        idx = np.maximum(data.study_design, 0)
        m = np.where(
            nonrand, [direction * means.get(d, 0.0) for d in np.array(data.design)[idx]], 0.0
        )
        sd = np.where(nonrand, [sds.get(d, 0.5) for d in np.array(data.design)[idx]], 0.0)
        bz = _standard_normal_per_study(data, "bias_z")
        terms.append(m + sd * bz)
    if group_effect and data.group:
        group_sd = priors["group_sd"].to_pymc("group_sd")
        gz = pm.Normal("group_z", 0.0, 1.0, dims="group")
        g = pm.Deterministic("group_effect", group_sd * gz, dims="group")
        mine = data.study_group >= 0
        terms.append(pt.where(mine, g[np.maximum(data.study_group, 0)], 0.0))
    if not terms:
        return pt.zeros(n), pt.ones(n)
    bias = pm.Deterministic("bias", sum(terms[1:], terms[0]), dims="study")
    if bias_form == "additive":
        return bias, pt.ones(n)
    return pt.zeros(n), pt.exp(bias)


def _observe(dist, params, name, rows, weights, observed, dim):
    """Observe rows; rows of a design with power-prior weight w < 1 add w x log-likelihood.

    A sub-study of a study with m of them (``repeated = "all"``) has its weight times
    1/m: its m effects were measured on the same patients, and working independence with
    weights 1/m counts those patients once (a composite likelihood) instead of m times.
    Weighted rows enter through ``pm.Potential`` and so have no pointwise log-likelihood
    or posterior predictive draws; unweighted rows are ordinary observed variables.
    """
    import pymc as pm

    w = rows["design"].map(lambda d: float(weights.get(d, 1.0))).to_numpy()
    if np.any((w < 0) | (w > 1)):
        raise UserError("design weights (power priors) must lie in [0, 1]")
    if "repeat_weight" in rows:
        w = w * rows["repeat_weight"].to_numpy(float)
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
