"""``exposure-response``: dose and route response across designs and indications.

:mod:`~bayeskit.families.exposure.model` builds the PyMC model,
:mod:`~bayeskit.families.exposure.gather` collects its data from several evidence files,
and :mod:`~bayeskit.families.exposure.mean` holds the mean function, shared by the model
and by :meth:`ExposureResponse.predict` (questions, report figures).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, ClassVar, Literal, override

import numpy as np
import xarray as xr
from pydantic import Field

from bayeskit.errors import UserError
from bayeskit.evidence.schema import DESIGNS
from bayeskit.families._base import Family, Options, PriorSlot, SBCDesign
from bayeskit.families.exposure.mean import exposure, mean_effect

#: columns each arm (or contrast) of the exposure-response model must have
REQUIRED_COLUMNS = ("dose_mg_per_kg", "route")


class ExposureOptions(Options):
    """Options of ``exposure-response`` (see :func:`bayeskit.families.exposure.model.build`)."""

    scale: Literal["logit", "smd"] = "logit"
    form: Literal["loglinear", "emax"] = "loglinear"
    sessions: Literal["term", "multiplier", "ignore"] = "term"
    #: fixed reference exposure of the log-linear form; None (default) estimates it
    exposure_ref: float | None = Field(None, gt=0)
    route_effect: bool = False
    slope_scale: Literal["doubling", "contrast"] = "doubling"
    likelihood: Literal["contrast", "arm"] = "contrast"
    bias_form: Literal["additive", "proportional"] = "additive"
    bias_mean: dict[str, float] | None = None
    bias_sd: dict[str, float] | None = None
    benefit: Literal["higher", "lower"] = "higher"
    group_effect: bool = True
    design_weight: dict[str, float] | None = None
    #: exchangeable slopes (True), separate ones (False), or separate ones with the
    #: target's dose contrast given an informative prior from the other indications
    #: ("prior": a robust mixture; bayeskit.families.exposure.borrow)
    borrowing: bool | Literal["prior"] = True
    #: the indication that gets the informative prior (borrowing = "prior")
    borrowing_target: str | None = None
    #: robust-mixture weight of the informative component
    borrowing_weight: float = Field(0.5, ge=0, le=1)
    #: variance inflation factor of the informative component (1: as fitted)
    borrowing_inflate: float = Field(2.0, ge=1)
    #: shift of the informative component's mean (on the effect scale)
    borrowing_shift: float = 0.0
    #: also refit under every shape and report each shape's and the stacked answers
    compare_forms: bool = False
    designs: list[Literal[DESIGNS]] | None = None  # type: ignore[valid-type]
    outcome_sd: dict[str, float] | None = None
    #: case reports and case series: described beside the fit (default), or pooled, which
    #: needs a stated directional natural-course bias mean for each in ``bias_mean``
    case_reports: Literal["describe", "pool"] = "describe"
    #: a study with several selected outcomes or timepoints: its first only (in the order
    #: listed), or each as a sub-study with its own baseline, sharing the study's deviation
    #: and bias, each log-likelihood and baseline prior weighted 1/m (m sub-studies: the same
    #: patients)
    repeated: Literal["first", "all"] = "first"


class ExposureResponse(Family):
    """``exposure-response``: arms and contrasts explained by systemic exposure.

    Examples
    --------
    >>> family = ExposureResponse()
    >>> family.data, family.prior_names[:3], family.slot("ed50").positive
    ('exposure', ('beta_dose', 'dose_contrast', 'indication_sd'), True)
    """

    name = "exposure-response"
    data = "exposure"
    description = "dose and route response across designs and indications (arms and contrasts)"
    pooled = False
    methods = (
        "Each study's arms (binomial counts on the logit scale, or standardised mean "
        "differences) were modelled as a function of systemic exposure: the dose per "
        "kilogram times the bioavailability of the route (itself uncertain, with a prior "
        "from pharmacokinetic studies) and the number of sessions ({sessions}). The effect "
        "rises with exposure through a {form} curve relative to a reference exposure of "
        "{exposure_ref} mg/kg; non-randomised designs carry a bias term, contrasts of the "
        "same trial share its baseline, study contrasts vary between studies with standard "
        "deviation tau, and the dose slopes of different indications are {borrowing}."
    )
    slots = (
        PriorSlot("beta_dose", "Normal(0, 0.5)", "log-OR (or SMD) per doubling: a large "
                  "effect is 1 SD"),
        PriorSlot("dose_contrast", "Normal(0, 1)", "effect between the doses of the "
                  "data's randomised dose contrast (slope_scale = contrast), log-OR or SMD"),
        PriorSlot("indication_sd", "HalfNormal(0.25)", "moderate borrowing between "
                  "indications", positive=True),
        PriorSlot("emax", "Normal(0, 2)", "maximal effect of the Emax form, log-OR or SMD"),
        PriorSlot("ed50", "LogNormal(0, 1)", "mg/kg of systemic exposure; median 1, 95% in "
                  "0.14-7", positive=True),
        PriorSlot("exposure_ref", "LogNormal(-1.6, 1.2)", "reference exposure of the "
                  "log-linear form, mg/kg: median 0.2, 95% in 0.02-2.1 (sub-anaesthetic "
                  "to anaesthetic)", positive=True),
        PriorSlot("beta_sessions", "Normal(0, 0.5)", "per doubling of sessions, as beta_dose"),
        PriorSlot("route_sd", "HalfNormal(0.25)", "a route effect beyond pharmacokinetics "
                  "is small", positive=True),
        PriorSlot("tau", "HalfNormal(0.5)", "Röver et al. 2021", positive=True),
        PriorSlot("group_sd", "HalfNormal(0.2)", "shared bias of one research group's "
                  "studies, log-OR or SMD", positive=True),
        PriorSlot("baseline", "Normal(0, 2)", "logit of the outcome without ketamine"),
        PriorSlot("baseline_sd", "HalfNormal(1)", "spread of study baselines on the logit "
                  "scale", positive=True),
    )  # fmt: skip
    options_model = ExposureOptions
    example: ClassVar[dict] = {"data": "oud_abstinence.csv", "timepoint": "12 months"}
    forest_note = (
        "Contrasts compare each study's arms as randomised (dose against dose, sessions "
        "against sessions); the model explains them through exposure, in the "
        "exposure-response figure."
    )
    # Contrast-based fits (the default) get a leave-one-study-out likelihood
    # (exposure/loo.py). The arm-based version carries a random baseline, deviation and
    # design bias with different loadings on the arms, and power priors down-weight
    # designs: a quadrature over all of that per study is not clean, so LOO stays
    # conditional there and says so.
    conditional_loo_note = (
        "exposure-response (arm-based, with power-prior weights, or with sub-studies "
        "weighted 1/m) keeps each observation's likelihood given its study's random "
        "effects (deviation, baseline, design bias): conditional LOO, which says how "
        "well an arm or contrast is predicted once its study's effects are known, not how "
        "well a new study is predicted; a high Pareto k is common there"
    )

    @override
    def marginal_log_likelihood(self, prepared, posterior, priors=None):
        from bayeskit.families.exposure.loo import contrast_log_likelihood

        settings = getattr(prepared, "settings", None)
        if settings is None:
            return None
        return contrast_log_likelihood(self, prepared, posterior, settings)

    def prepare(self, evidence, options: ExposureOptions, *, outcome, timepoint, effect_options):
        """Gather arms and contrasts from every table, and refuse data without doses.

        Examples
        --------
        >>> import bayeskit as bk
        >>> ev = bk.load_evidence(bk.data_path("opioid_withdrawal.csv"))
        >>> ExposureResponse().prepare(ev.drop(columns="dose_mg_per_kg"),
        ...     ExposureOptions(scale="smd"), outcome="peak_map", timepoint=None,
        ...     effect_options={})
        Traceback (most recent call last):
        ...
        bayeskit.errors.UserError: the exposure-response model needs column(s) dose_mg_per_kg ...
        """
        from bayeskit.evidence import load_routes
        from bayeskit.families._base import evidence_tables
        from bayeskit.families.exposure.gather import gather
        from bayeskit.families.exposure.model import exposure_data

        tables = evidence_tables(evidence)
        arms, contrasts = gather(
            tables,
            scale=options.scale,
            outcomes=outcome,
            timepoint=timepoint,
            outcome_sd=options.outcome_sd,
            sd_change=effect_options.get("sd_change"),
            repeated=options.repeated,
        )
        for rows in (arms, contrasts):
            missing = [c for c in REQUIRED_COLUMNS if len(rows) and c not in rows]
            if missing:
                raise UserError(
                    f"the exposure-response model needs column(s) {', '.join(missing)} "
                    "(each arm's dose and route); the data have "
                    f"{', '.join(map(str, rows.columns))}"
                )
        arms, contrasts, described = _described(arms, contrasts, options)
        prepared = exposure_data(
            arms, contrasts, routes=load_routes(), scale=options.scale, designs=options.designs
        )
        prepared.described = described
        if options.borrowing == "prior":
            prepared.borrow_request = _borrow_request(
                prepared, tables, options, outcome, timepoint, effect_options
            )
        prepared.table.attrs["sha256"] = {
            f: h for t in tables for f, h in t.attrs.get("sha256", {}).items()
        }
        return prepared

    @override
    def resolve_priors(self, prepared, given) -> dict:
        """Return the priors; with ``borrowing = "prior"`` the source fit makes the target's prior.

        The other indications are fitted alone (once per process for the same data,
        priors and options) and summarised on ``prepared.borrowed``
        (:class:`~bayeskit.families.exposure.borrow.BorrowedPrior`); ``dose_contrast``
        stays the spec's prior, the mixture's robust component and every other
        indication's prior.
        """
        chosen = super().resolve_priors(prepared, given)
        request = getattr(prepared, "borrow_request", None)
        if request is not None:
            prepared.borrowed = _borrowed_prior(prepared, request, chosen, given)
        return chosen

    @override
    def build(self, prepared, priors: dict, options: ExposureOptions):
        from bayeskit.families.exposure.model import build

        # the leave-one-study-out likelihood needs the options the model was built with
        prepared.settings = self.settings(prepared, options)
        return build(
            prepared,
            priors,
            form=options.form,
            sessions=options.sessions,
            exposure_ref=options.exposure_ref,
            route_effect=options.route_effect,
            slope_scale=options.slope_scale,
            likelihood=options.likelihood,
            bias_form=options.bias_form,
            bias_mean=options.bias_mean,
            bias_sd=options.bias_sd,
            benefit=options.benefit,
            group_effect=options.group_effect,
            design_weight=options.design_weight,
            borrowing=options.borrowing,
            borrowed=getattr(prepared, "borrowed", None),
        )

    @override
    def settings(self, prepared, options: ExposureOptions) -> dict:
        # case_reports is kept: whether case reports were pooled belongs in the manifest
        out = options.model_dump(exclude={"designs", "outcome_sd", "compare_forms"})
        borrowed = getattr(prepared, "borrowed", None)
        if borrowed is not None:  # the informative prior as made, with its ESS
            out["borrowed_prior"] = borrowed.as_dict()
        return out

    @override
    def measure(self, settings: Mapping[str, Any]) -> str:
        return "OR" if settings.get("scale", "logit") == "logit" else "SMD"

    def predict(
        self,
        posterior: xr.Dataset,
        settings: Mapping[str, Any],
        *,
        route: str,
        dose_mg_per_kg: float | Sequence[float] | np.ndarray,
        sessions: float = 1,
        indication: str | None = None,
        versus: Mapping[str, Any] | None = None,
    ) -> xr.Dataset:
        """Posterior draws of exposure and effect (vs no drug) for a regimen.

        Computed from a posterior and the fit's settings (``form``, ``sessions``,
        ``exposure_ref``) with the model's own mean function, so a live fit and a run
        directory give the same answer. ``dose_mg_per_kg`` may be an array, which adds a
        ``dose`` dimension, so a whole dose-response curve is one call.

        ``versus`` names a comparator regimen (``dose_mg_per_kg``, ``route``, ``sessions``)
        in place of no drug. ``effect_new`` is the effect in a new study: the average
        effect plus a deviation drawn from ``Normal(0, tau)`` (fixed-seed draws), so its
        interval is predictive for a new setting.

        Returns
        -------
        xarray.Dataset
            ``exposure``, ``effect`` and ``effect_new``, plus ``p_without``, ``p_with``,
            ``difference`` (and ``p_with_new``, ``difference_new``) when the fit has
            baselines (``alpha_mu``); dims ``(chain, draw)`` and ``dose`` for an array of
            doses.

        Examples
        --------
        >>> post = xr.Dataset({
        ...     "bioavailability": (("chain", "draw", "route"), np.full((1, 2, 1), 0.5)),
        ...     "beta_dose": (("chain", "draw", "indication"), np.full((1, 2, 1), 0.3)),
        ... }, coords={"route": ["im"], "indication": ["OUD"]})
        >>> s = {"form": "loglinear", "sessions": "multiplier", "exposure_ref": 0.1}
        >>> d = ExposureResponse().predict(post, s, route="im", dose_mg_per_kg=[0.0, 0.2])
        >>> d["effect"].isel(chain=0, draw=0).values.round(2).tolist()  # 0.3 log2(1 + 1)
        [0.0, 0.3]
        >>> s["exposure_ref"] = None  # estimated: its draws come from the posterior
        >>> post["exposure_ref"] = (("chain", "draw"), np.array([[0.1, 0.3]]))
        >>> d = ExposureResponse().predict(post, s, route="im", dose_mg_per_kg=0.2,
        ...                                versus={"dose_mg_per_kg": 0.1, "route": "im"})
        >>> d["effect"].values.round(3).tolist()  # 0.3 log2(2 / 1.5), 0.3 log2((4/3) / (7/6))
        [[0.125, 0.058]]
        """
        routes = [str(r) for r in posterior["bioavailability"]["route"].values]
        if route not in routes:
            raise UserError(
                f"route {route!r} is not in this fit; its routes: {', '.join(routes)} "
                "(add the route to the route table)"
            )
        indications = [str(i) for i in posterior["indication"].values]
        if indication is None:
            if len(indications) > 1:
                raise UserError(f"choose an indication: {', '.join(indications)}")
            indication = indications[0]
        elif indication not in indications:
            raise UserError(
                f"indication {indication!r} is not in this fit: {', '.join(indications)}"
            )
        if np.ndim(dose_mg_per_kg):
            values = np.asarray(dose_mg_per_kg, dtype=float)
            dose: Any = xr.DataArray(values, dims="dose", coords={"dose": values})
        else:
            dose = float(dose_mg_per_kg)
        if np.any(np.asarray(dose_mg_per_kg) < 0) or sessions < 1:
            raise UserError("dose_mg_per_kg must be at least 0 and sessions at least 1")

        def get(name, **sel):
            return posterior[name].sel(**sel) if name in posterior else None

        form = settings["form"]
        ref = settings.get("exposure_ref")
        if form == "loglinear" and ref is None:
            ref = posterior["exposure_ref"]
        slope = get("beta_dose" if form == "loglinear" else "emax", indication=indication)

        def effect_of(dose, route, sessions):
            E = exposure(dose, posterior["bioavailability"].sel(route=route), sessions, settings)
            on = dose > 0
            return E, mean_effect(
                E,
                on,
                sessions,
                form=form,
                exposure_ref=ref,
                slope=slope,
                ed50=get("ed50"),
                beta_sessions=get("beta_sessions"),
                route_effect=get("route_effect", route=route),
                log2=np.log2,
            )

        E, effect = effect_of(dose, route, sessions)
        base_effect = 0.0
        if versus is not None:
            v_route = versus.get("route") or route
            if v_route not in routes:
                raise UserError(f"comparator route {v_route!r} is not in this fit")
            _, base_effect = effect_of(
                float(versus.get("dose_mg_per_kg", 0.0)), v_route, float(versus.get("sessions", 1))
            )
            effect = effect - base_effect
        new = effect + _new_study_deviation(posterior)
        out = xr.Dataset({"exposure": E, "effect": effect, "effect_new": new})
        if "alpha_mu" in posterior:
            base = posterior["alpha_mu"].sel(indication=indication) + base_effect
            p0 = 1 / (1 + np.exp(-base))
            p1 = 1 / (1 + np.exp(-(base + effect)))
            p1_new = 1 / (1 + np.exp(-(base + new)))
            out = out.assign(
                p_without=p0,
                p_with=p1,
                difference=p1 - p0,
                p_with_new=p1_new,
                difference_new=p1_new - p0,
            )
        keep = ("chain", "draw", "dose")
        return out.drop_vars([c for c in out.coords if c not in keep]).transpose(
            "chain", "draw", ...
        )

    @override
    def within_study_variances(self, prepared):
        """Variances of the contrasts ``tau`` applies to: arm pairs' log odds ratios, ``sei^2``.

        Examples
        --------
        >>> import bayeskit as bk
        >>> from bayeskit.families.exposure.model import exposure_data
        >>> ev = bk.load_evidence(bk.data_path("oud_abstinence.csv"))
        >>> d = exposure_data(ev[ev["timepoint"] == "12 months"], None, routes=bk.load_routes())
        >>> v, X = ExposureResponse().within_study_variances(d)
        >>> v.round(3).tolist(), X
        ([0.692, 0.368], None)
        """
        from bayeskit.heterogeneity import arm_contrast_variances

        parts = []
        arms, con = prepared.arms, prepared.contrasts
        if len(arms):
            v, _ = arm_contrast_variances(
                arms["study_idx"].to_numpy(), arms["c"].to_numpy() < 0,
                events=arms["events"].to_numpy(float), n=arms["n"].to_numpy(float),
            )  # fmt: skip
            parts.append(v)
        if len(con):
            parts.append(con["sei"].to_numpy(float) ** 2)
        return np.concatenate(parts) if parts else np.zeros(0), None

    @override
    def fitted_contrasts(self, table, posterior, settings):
        """Each observed contrast and the fitted dose-response difference at its doses.

        Arm pairs (each experimental arm against its study's control arm) give an
        observed log odds ratio; study-level contrasts their ``yi``. The fitted value is
        ``effect(doses of the arm) - effect(doses of the control)`` from the posterior,
        without the study's own deviation or design bias.

        Examples
        --------
        >>> import pandas as pd
        >>> post = xr.Dataset({
        ...     "bioavailability": (("chain", "draw", "route"), np.full((1, 2, 1), 1.0)),
        ...     "beta_dose": (("chain", "draw", "indication"), np.full((1, 2, 1), 0.5)),
        ... }, coords={"route": ["iv"], "indication": ["OUD"]})
        >>> s = {"form": "loglinear", "sessions": "multiplier", "exposure_ref": 0.1}
        >>> table = pd.DataFrame({"study": ["S", "S"], "arm": ["hi", "lo"],
        ...     "role": ["experimental", "control"], "n": [20, 20], "events": [8, 4],
        ...     "dose_mg_per_kg": [0.3, 0.1], "route": ["iv", "iv"], "indication": "OUD"})
        >>> rows = ExposureResponse().fitted_contrasts(table, post, s)
        >>> rows[0]["label"], round(rows[0]["yi"], 3), float(rows[0]["fitted"][0]).__round__(3)
        ('S', 0.981, 0.5)
        """
        from bayeskit.families.exposure.contrasts import fitted_contrasts

        return fitted_contrasts(self, table, posterior, settings)

    @property
    @override
    def sbc(self) -> SBCDesign:
        return SBCDesign(
            {}, ("dose_contrast_mu", "tau", "beta_sessions", "alpha", "delta"), _template
        )


#: seed of the standard normal draws behind a new study's deviation (reproducible answers)
NEW_STUDY_SEED = 20261202


def _new_study_deviation(posterior: xr.Dataset) -> xr.DataArray | float:
    """Draws of a new study's deviation ``tau x z``, ``z ~ Normal(0, 1)`` (0 without tau).

    Examples
    --------
    >>> post = xr.Dataset({"tau": (("chain", "draw"), np.zeros((1, 3)))})
    >>> _new_study_deviation(post).values.tolist()
    [[0.0, 0.0, 0.0]]
    """
    if "tau" not in posterior:
        return 0.0
    tau = posterior["tau"]
    z = np.random.default_rng(NEW_STUDY_SEED).standard_normal(tau.shape)
    return tau * z


def _template(studies: int, priors: dict):
    """Build the model of the bundled ketamine spec (its design; ``studies`` unused)."""
    from bayeskit.fitting import build_model
    from bayeskit.spec import load_spec

    spec = load_spec("oud_abstinence")
    kwargs = spec.fit_kwargs()
    kwargs["priors"] = dict(kwargs.get("priors") or {}) | priors
    for key in ("draws", "tune", "chains", "seed", "sampler", "target_accept", "progress"):
        kwargs.pop(key, None)
    return build_model(spec.data_files(), **kwargs)


def _borrow_request(prepared, tables, options, outcome, timepoint, effect_options) -> dict:
    """Check a ``borrowing = "prior"`` fit's data and options; keep what the source fit needs."""
    target = options.borrowing_target
    if len(prepared.indication) < 2:
        raise UserError(
            f'option borrowing = "prior" needs a second indication to borrow from; the data '
            f"have {', '.join(prepared.indication)} only"
        )
    if target not in prepared.indication:
        raise UserError(
            f'option borrowing = "prior" needs borrowing_target, the indication the prior is '
            f"for: one of {', '.join(prepared.indication)} (got {target!r})"
        )
    if options.slope_scale != "contrast" or prepared.anchor is None:
        raise UserError(
            'option borrowing = "prior" puts the prior on the dose contrast: set '
            'slope_scale = "contrast" (the data need a randomised dose contrast)'
        )
    low, high, route = prepared.anchor
    return {
        "tables": tables,
        "options": options,
        "outcome": outcome,
        "timepoint": timepoint,
        "effect_options": effect_options,
        "anchor": (low, high, prepared.route[route]),
    }


def _borrowed_prior(prepared, request: dict, chosen: dict, given):
    """Fit the source indications and return the target's informative prior."""
    from bayeskit.families.exposure.borrow import BorrowedPrior, control_risk, source_fit

    options = request["options"]
    robust = chosen["dose_contrast"]
    if robust.family != "Normal":
        raise UserError(
            'option borrowing = "prior": the dose_contrast prior is the mixture\'s robust '
            f"component and must be a Normal, not {robust}"
        )
    target = options.borrowing_target
    mean, sd, verdict, sources = source_fit(request, dict(given or {}), target)
    low, high, route = request["anchor"]
    return BorrowedPrior(
        target=target,
        sources=sources,
        anchor=f"{high:g} vs {low:g} mg/kg {route}",
        mean=mean,
        sd=sd,
        weight=options.borrowing_weight,
        inflate=options.borrowing_inflate,
        shift=options.borrowing_shift,
        robust_mean=robust.params["mu"],
        robust_sd=robust.params["sigma"],
        scale=prepared.scale,
        control_risk=control_risk(prepared.arms, target) if prepared.scale == "logit" else None,
        source_verdict=verdict,
    )


#: Designs described beside the fit by default: a single patient's or a series' pre/post
#: change mostly reflects co-treatment and the natural course, whose direction the data
#: cannot tell apart from ketamine's effect.
DESCRIBED = ("case_report", "case_series")


def _described(arms, contrasts, options: ExposureOptions):
    """Split off case reports and series unless ``case_reports = "pool"`` asks for them.

    Pooling them needs ``bias_mean`` to state a non-zero (directional) natural-course bias
    for each such design in the data: a default centred on a small literature value would
    hide the assumption that decides their contribution.

    Examples
    --------
    >>> import pandas as pd
    >>> arms = pd.DataFrame({"study": ["A", "B"], "design": ["rct", "case_report"]})
    >>> kept, _, described = _described(arms, None, ExposureOptions())
    >>> kept["study"].tolist(), described["study"].tolist()
    (['A'], ['B'])
    >>> _described(arms, None, ExposureOptions(case_reports="pool"))
    Traceback (most recent call last):
    ...
    bayeskit.errors.UserError: option case_reports = "pool": state a directional ...
    """
    import pandas as pd

    parts = [t for t in (arms, contrasts) if t is not None and len(t) and "design" in t]
    present = sorted({d for t in parts for d in t["design"].dropna() if d in DESCRIBED})
    if options.case_reports == "pool":
        stated = options.bias_mean or {}
        unstated = [d for d in present if not stated.get(d)]
        if unstated:
            raise UserError(
                f'option case_reports = "pool": state a directional natural-course bias '
                f"mean for {', '.join(unstated)} in option bias_mean (e.g. bias_mean = "
                f"{{ {unstated[0]} = 0.5 }}, in the direction that favours ketamine when "
                "the natural course and co-treatment improve patients); without one, "
                'leave case_reports = "describe" and they are shown, not pooled'
            )
        return arms, contrasts, None

    def split(t):
        if t is None or not len(t) or "design" not in t:
            return t, None
        out = t["design"].isin(DESCRIBED)
        return t[~out], t[out]

    arms, a_out = split(arms)
    contrasts, c_out = split(contrasts)
    gone = [t for t in (a_out, c_out) if t is not None and len(t)]
    if not gone:
        return arms, contrasts, None
    described = pd.concat(gone, ignore_index=True)
    if all(t is None or not len(t) for t in (arms, contrasts)):
        raise UserError(
            f"every study ({', '.join(sorted(set(described['study'])))}) is a case report "
            "or case series, which are described, not pooled, by default (option "
            'case_reports = "describe"); to pool them set case_reports = "pool" with a '
            "directional natural-course bias mean for each in option bias_mean"
        )
    return arms, contrasts, described
