"""Answers to a clinician's questions from an exposure-response fit.

:func:`predict` turns posterior draws into the effect of a chosen dose, route and number
of sessions: the exposure, the effect against no ketamine (or against a comparator
regimen), and for binary outcomes the probability of the outcome with and without
ketamine, their difference and the posterior probability that the gain reaches a
threshold. Each effect comes twice: the average effect (``effect``, ``difference``) and
the effect in a new study (``effect_new``, ``difference_new``), which adds the
between-study deviation (``tau``) and so is the predictive answer for a new setting.

:func:`answer_questions` labels every answer: *within the evidence* when a randomised
trial compared exactly those two regimens, *extrapolated* otherwise (against no ketamine
where no arm went without it, or outside the doses the data covered, which it states).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import xarray as xr

from bayeskit.errors import UserError

QUANTILES = (0.025, 0.5, 0.975)


def effect_draws(
    fit,
    *,
    route: str,
    dose_mg_per_kg: float,
    sessions: float = 1,
    indication: str | None = None,
    versus: dict | None = None,
) -> xr.Dataset:
    """Posterior draws of exposure and effect (vs no drug) for one regimen.

    The family's own prediction (``predict`` of
    :class:`bayeskit.families.exposure.ExposureResponse`, the model's mean function).
    Returns a Dataset with ``exposure`` (systemic mg/kg) and ``effect`` (log odds ratio
    or SMD against no ketamine), dims ``(chain, draw)``.

    Examples
    --------
    A hand-made posterior of four draws (a real one comes from :func:`bayeskit.fit`):

    >>> from types import SimpleNamespace
    >>> from arviz_base import from_dict
    >>> idata = from_dict(
    ...     {"posterior": {"bioavailability": np.tile([1.0, 0.25], (1, 4, 1)),
    ...                    "beta_dose": np.array([[[0.2], [0.4], [0.6], [0.8]]]),
    ...                    "alpha_mu": np.zeros((1, 4, 1))}},
    ...     dims={"bioavailability": ["route"], "beta_dose": ["indication"],
    ...           "alpha_mu": ["indication"]},
    ...     coords={"route": ["iv", "oral"], "indication": ["OUD"]})
    >>> fit = SimpleNamespace(family="exposure-response", idata=idata, settings={
    ...     "sessions": "multiplier", "form": "loglinear", "exposure_ref": 0.5})
    >>> draws = effect_draws(fit, route="iv", dose_mg_per_kg=0.5)
    >>> draws["exposure"].values.tolist(), draws["effect"].values.tolist()
    ([[0.5, 0.5, 0.5, 0.5]], [[0.2, 0.4, 0.6, 0.8]])
    """
    from bayeskit.families import get_family

    family = get_family(fit.family)
    if family.predict is None:
        raise UserError(
            f"predict needs a fit of a family with regimens (exposure-response), not {fit.family}"
        )
    draws = family.predict(
        fit.idata["posterior"].to_dataset(),
        fit.settings,
        route=route,
        dose_mg_per_kg=dose_mg_per_kg,
        sessions=sessions,
        indication=indication,
        **({"versus": versus} if versus is not None else {}),
    )
    return draws


def predict(
    fit,
    *,
    route: str,
    dose_mg_per_kg: float,
    sessions: float = 1,
    indication: str | None = None,
    threshold: float = 0.10,
    scales: dict[str, float] | None = None,
    better: str = "higher",
    versus: dict | None = None,
) -> pd.DataFrame:
    """Summarise what a regimen is expected to do, with posterior uncertainty.

    Parameters
    ----------
    fit : Fit
        An ``exposure-response`` fit.
    route, dose_mg_per_kg, sessions
        The regimen (dose per session; sessions multiply exposure or enter as their own
        term, as the fit's spec said).
    indication : str, optional
        Needed when the fit pools several indications.
    threshold : float
        For binary outcomes: the gain in probability asked about (0.10 = 10 percentage
        points).
    scales : dict, optional
        For SMD fits: natural-scale SDs, e.g. ``{"COWS points": 4, "mmHg": 12.4}``; the
        effect is also reported as ``effect x SD`` in each unit.
    better : {"higher", "lower"}
        Which direction is benefit (abstinence: higher; withdrawal scores: lower).
    versus : dict, optional
        A comparator regimen (``dose_mg_per_kg``, ``route``, ``sessions``) in place of no
        ketamine; ``p_without`` is then the probability under the comparator.

    Returns
    -------
    DataFrame
        Rows ``exposure``, ``effect``, ``effect_new``, (``odds_ratio``, ``p_without``,
        ``p_with``, ``difference``, ``difference_new``) or natural-scale effects; columns
        mean, sd, q2.5, q50, q97.5, and ``prob`` holding P(benefit) on the effect rows and
        P(difference >= threshold) on the difference rows.

    Examples
    --------
    A hand-made posterior of four draws (a real one comes from :func:`bayeskit.fit`):

    >>> from types import SimpleNamespace
    >>> from arviz_base import from_dict
    >>> idata = from_dict(
    ...     {"posterior": {"bioavailability": np.tile([1.0, 0.25], (1, 4, 1)),
    ...                    "beta_dose": np.array([[[0.2], [0.4], [0.6], [0.8]]]),
    ...                    "alpha_mu": np.zeros((1, 4, 1))}},
    ...     dims={"bioavailability": ["route"], "beta_dose": ["indication"],
    ...           "alpha_mu": ["indication"]},
    ...     coords={"route": ["iv", "oral"], "indication": ["OUD"]})
    >>> fit = SimpleNamespace(family="exposure-response", idata=idata, settings={
    ...     "sessions": "multiplier", "form": "loglinear", "exposure_ref": 0.5})
    >>> table = predict(fit, route="oral", dose_mg_per_kg=2.0, threshold=0.10)
    >>> table.loc[["effect", "effect_new", "difference"], ["mean", "prob"]].round(3)
                 mean  prob
    quantity
    effect      0.500   1.0
    effect_new  0.500   1.0
    difference  0.121   0.5
    """
    if better not in ("higher", "lower"):
        raise UserError("better must be 'higher' or 'lower'")
    draws = effect_draws(
        fit,
        route=route,
        dose_mg_per_kg=dose_mg_per_kg,
        sessions=sessions,
        indication=indication,
        versus=versus,
    )
    sign = 1 if better == "higher" else -1
    rows = {"exposure": draws["exposure"], "effect": draws["effect"]}
    if "effect_new" in draws:
        rows["effect_new"] = draws["effect_new"]
    if "p_with" in draws:
        rows |= {
            "odds_ratio": np.exp(draws["effect"]),
            "p_without": draws["p_without"],
            "p_with": draws["p_with"],
            "difference": draws["difference"],
        }
        if "difference_new" in draws:
            rows["difference_new"] = draws["difference_new"]
    for unit, sd in (scales or {}).items():
        rows[f"effect_{unit}"] = draws["effect"] * sd
    table = pd.DataFrame({name: _summary(da.values.ravel()) for name, da in rows.items()}).T
    table["prob"] = np.nan
    for name in ("effect", "effect_new"):
        if name in rows:
            table.loc[name, "prob"] = float(np.mean(sign * rows[name].values > 0))
    for name in ("difference", "difference_new"):
        if name in rows:
            table.loc[name, "prob"] = float(np.mean(sign * rows[name].values >= threshold))
    table.index.name = "quantity"
    table.attrs = {
        "route": route,
        "dose_mg_per_kg": dose_mg_per_kg,
        "sessions": sessions,
        "threshold": threshold,
    }
    return table


def _summary(x: np.ndarray) -> dict[str, float]:
    q = np.quantile(x, QUANTILES)
    return {
        "mean": float(x.mean()),
        "sd": float(x.std(ddof=1)),
        "q2.5": q[0],
        "q50": q[1],
        "q97.5": q[2],
    }


def answer_questions(fit, spec) -> pd.DataFrame:
    """Answer every ``[[questions]]`` of a spec, each answer labelled by its evidence.

    Each regimen gets its answer against no ketamine, labelled ``extrapolated`` unless a
    randomised trial of the indication compared exactly that regimen with no ketamine,
    and one answer against the control of every randomised trial whose experimental arm
    was that regimen, labelled ``within the evidence``. The block label (index level
    ``question``) says both: ``"<label> vs <comparator> (<evidence>)"``; the columns
    ``regimen``, ``comparator``, ``evidence`` and ``basis`` (the trial, or the doses the
    data covered) say them again.

    Examples
    --------
    A hand-made posterior of four draws (a real one comes from :func:`bayeskit.fit`):

    >>> from types import SimpleNamespace
    >>> import bayeskit as bk
    >>> from arviz_base import from_dict
    >>> from bayeskit.families.exposure.model import exposure_data
    >>> ev = bk.load_evidence(bk.data_path("oud_abstinence.csv"))
    >>> data = exposure_data(ev[ev["timepoint"] == "12 months"], None, routes=bk.load_routes())
    >>> idata = from_dict(
    ...     {"posterior": {"bioavailability": np.tile([1.0, 1.0], (1, 4, 1)),
    ...                    "beta_dose": np.array([[[0.2], [0.4], [0.6], [0.8]]]),
    ...                    "alpha_mu": np.zeros((1, 4, 1))}},
    ...     dims={"bioavailability": ["route"], "beta_dose": ["indication"],
    ...           "alpha_mu": ["indication"]},
    ...     coords={"route": ["iv", "im"], "indication": ["OUD"]})
    >>> fit = SimpleNamespace(family="exposure-response", idata=idata, data=data, settings={
    ...     "sessions": "term", "form": "loglinear", "exposure_ref": 0.5})
    >>> from bayeskit.spec import QuestionSpec, ReportSpec
    >>> spec = SimpleNamespace(report=ReportSpec(), questions=[
    ...     QuestionSpec(label="im 2", route="im", dose_mg_per_kg=2.0)])
    >>> answers = answer_questions(fit, spec)
    >>> list(answers.index.unique("question"))  # doctest: +NORMALIZE_WHITESPACE
    ['im 2 vs no ketamine (extrapolated)',
     'im 2 vs 0.2 mg/kg im, 1 session (within the evidence)']
    >>> answers.loc["im 2 vs 0.2 mg/kg im, 1 session (within the evidence)", "basis"].iloc[0]
    'randomised in KRUPITSKY2002'
    """
    blocks = []
    for q, comp, evidence, basis, versus in _question_blocks(fit, spec):
        table = predict(
            fit,
            route=q.route,
            dose_mg_per_kg=q.dose_mg_per_kg,
            sessions=q.sessions,
            indication=q.indication,
            threshold=q.threshold,
            scales=spec.report.scales,
            better=spec.report.better,
            versus=versus,
        )
        blocks.append(
            table.reset_index().assign(
                question=f"{q.label} vs {comp} ({evidence})",
                regimen=q.label,
                comparator=comp,
                evidence=evidence,
                basis=basis,
            )
        )
    out = pd.concat(blocks, ignore_index=True).set_index(["question", "quantity"])
    return out


def _question_blocks(fit, spec):
    """Yield ``(question, comparator text, evidence, basis, versus)`` for every answer."""
    from bayeskit.families.exposure.evidence import (
        EXTRAPOLATED,
        Regimen,
        classify,
        randomised_contrasts,
    )

    data = getattr(fit, "data", None)
    trials = randomised_contrasts(data) if data is not None else None
    for q in spec.questions:
        regimen = Regimen(q.dose_mg_per_kg, q.route, q.sessions)
        indication = q.indication or (data.indication[0] if data is not None else None)
        comparators = [Regimen(0.0, None, 0)]
        if trials is not None:
            comparators += [
                r.control
                for r in trials.itertuples()
                if r.indication == indication
                and r.experimental.same(regimen)
                and not r.control.same(comparators[0])
            ]
        for comp in comparators:
            if data is not None:
                evidence, basis = classify(data, indication, regimen, comp)
            else:
                evidence, basis = EXTRAPOLATED, "the fit's data are not at hand"
            versus = None
            if comp.dose_mg_per_kg > 0:
                versus = {
                    "dose_mg_per_kg": comp.dose_mg_per_kg,
                    "route": comp.route,
                    "sessions": comp.sessions,
                }
            yield q, comp.text(), evidence, basis, versus


#: the answers a shape comparison reports, with the posterior probability each carries
SHAPE_QUANTITIES = ("effect", "effect_new", "difference", "difference_new")


def shape_table(fit, spec, forms: tuple[str, ...] = ("loglinear", "emax")) -> pd.DataFrame:
    """Each question under every dose-response shape, and stacked over the shapes.

    The spec is refitted with each ``form`` (the fit itself stands for its own); the
    shapes are compared by their leave-one-study-out LOO and stacked (Yao et al. 2018,
    Bayesian Analysis 13:917; ArviZ's ``compare``), and the stacked answer mixes the
    shapes' draws in proportion to their stacking weights (a fixed-seed draw of each).

    Returns
    -------
    DataFrame
        Index ``(question, shape, quantity)`` with shape ``loglinear``, ``emax`` and
        ``stacked``; columns ``weight`` (stacking), ``elpd``, ``dse`` (SE of its
        difference from the best), ``weight_pseudo_bma``, mean, sd, q2.5, q50, q97.5,
        ``prob`` and ``evidence``.

    Examples
    --------
    The bundled OUD spec with short chains (two fits, about a minute):

    >>> from bayeskit.spec import load_spec, spec_from_dict
    >>> loaded = load_spec("oud_abstinence")
    >>> raw = loaded.model_dump(mode="json", exclude={"base_dir"})
    >>> raw["sampler"] |= {"draws": 200, "tune": 300, "chains": 2}
    >>> spec = spec_from_dict(raw, source="example", base_dir=loaded.base_dir)
    >>> import bayeskit as bk
    >>> fit = bk.fit(spec.data_files(), **spec.fit_kwargs())
    >>> table = shape_table(fit, spec)
    >>> sorted(table.index.unique("shape")), round(float(table["weight"].max()), 6) <= 1
    (['emax', 'loglinear', 'stacked'], True)
    """
    import warnings

    import arviz_stats

    from bayeskit.fitting import add_log_likelihood
    from bayeskit.fitting import fit as refit

    fits = {}
    for form in forms:
        if fit.settings.get("form") == form:
            fits[form] = fit
            continue
        kwargs = spec.fit_kwargs()
        kwargs["model_options"] = kwargs["model_options"] | {"form": form}
        # the other shape's posterior and its log-likelihood are all this table reads:
        # no predictive draws (about 3 s of the main job)
        fits[form] = add_log_likelihood(refit(spec.data_files(), **kwargs, posterior_only=True))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # Pareto k warnings: reported by fits
        trees = {k: f.idata for k, f in fits.items()}
        loo = arviz_stats.compare(trees, round_to="none")
        # pseudo-BMA weights (exp(elpd), deterministic) beside stacking: when the shapes
        # predict the studies equally well (elpd difference within dse), stacking's
        # weights are not identified and can sit at a vertex
        pbma = arviz_stats.compare(trees, method="pseudo-bma", round_to="none")["weight"]
    weight = loo["weight"].astype(float)
    sign = 1 if spec.report.better == "higher" else -1
    rng = np.random.default_rng(20261202)
    rows = []
    for q, comp, evidence, _, versus in _question_blocks(fit, spec):
        label = f"{q.label} vs {comp} ({evidence})"
        draws = {}
        for form, f in fits.items():
            d = effect_draws(
                f,
                route=q.route,
                dose_mg_per_kg=q.dose_mg_per_kg,
                sessions=q.sessions,
                indication=q.indication,
                versus=versus,
            )
            draws[form] = {k: d[k].values.ravel() for k in SHAPE_QUANTITIES if k in d}
        n = min(len(next(iter(v.values()))) for v in draws.values())
        take = {form: int(round(weight[form] * n)) for form in fits}
        stacked = {
            k: np.concatenate(
                [rng.choice(draws[form][k], size=take[form], replace=False) for form in fits]
            )
            for k in draws[next(iter(fits))]
        }
        for shape, values in [*draws.items(), ("stacked", stacked)]:
            for k, x in values.items():
                threshold = q.threshold if k.startswith("difference") else 0.0
                prob = np.mean(sign * x >= threshold) if threshold else np.mean(sign * x > 0)
                rows.append(
                    {
                        "question": label,
                        "shape": shape,
                        "quantity": k,
                        "weight": 1.0 if shape == "stacked" else float(weight[shape]),
                        "elpd": np.nan if shape == "stacked" else float(loo.loc[shape, "elpd"]),
                        "dse": np.nan if shape == "stacked" else float(loo.loc[shape, "dse"]),
                        "weight_pseudo_bma": (np.nan if shape == "stacked" else float(pbma[shape])),
                        **_summary(x),
                        "prob": float(prob),
                        "evidence": evidence,
                    }
                )
    return pd.DataFrame(rows).set_index(["question", "shape", "quantity"])


def question_answer(answers: pd.DataFrame, label: str, comparator: str = "no ketamine"):
    """Return the block of :func:`answer_questions` for one question and comparator.

    Examples
    --------
    >>> answers = pd.DataFrame({"question": ["a vs no ketamine (extrapolated)"],
    ...     "quantity": ["effect"], "mean": [0.5], "regimen": ["a"],
    ...     "comparator": ["no ketamine"]}).set_index(["question", "quantity"])
    >>> question_answer(answers, "a").loc["effect", "mean"]
    np.float64(0.5)
    """
    rows = answers[(answers["regimen"] == label) & (answers["comparator"] == comparator)]
    if rows.empty:
        raise UserError(f"no answer for question {label!r} against {comparator!r}")
    return rows.droplevel("question")


#: the three ways the other indications can inform a target, as the tables label them
BORROWING_FITS = {
    True: "with borrowing (exchangeable)",
    False: "without borrowing",
    "prior": "informative prior (robust mixture)",
}


def borrowing_target(fit, spec) -> str | None:
    """Return the indication an informative prior is for: the option, or the questions'.

    ``borrowing_target`` where the fit has it; otherwise the one indication every
    question of the spec asks about, if it is in the fit (None: none can be told).

    Examples
    --------
    >>> from types import SimpleNamespace
    >>> fit = SimpleNamespace(settings={}, data=SimpleNamespace(indication=["AUD", "OUD"]))
    >>> spec = SimpleNamespace(questions=[SimpleNamespace(indication="OUD")])
    >>> borrowing_target(fit, spec)
    'OUD'
    >>> borrowing_target(fit, SimpleNamespace(questions=[]))  # nothing to tell it by
    """
    given = (getattr(fit, "settings", None) or {}).get("borrowing_target")
    if given:
        return given
    asked = {q.indication for q in getattr(spec, "questions", None) or []}
    if len(asked) == 1 and next(iter(asked)) in fit.data.indication:
        return next(iter(asked))
    return None


def borrowing_table(fit, spec) -> pd.DataFrame:
    """Each indication's dose contrast with borrowing, without it, and as a prior, side by side.

    The fit stands for its own setting of ``borrowing``; the others are refits with the
    spec's sampler settings: exchangeable slopes (``indication_sd``), a separate slope
    for each indication (its own prior), and the target indication's dose contrast with
    an informative robust mixture prior made from the other indications alone
    (``borrowing = "prior"``, :mod:`bayeskit.families.exposure.borrow`; only where the
    target can be told, :func:`borrowing_target`). The parameter is ``dose_contrast``
    (the effect between the doses of the first randomised dose contrast) where the fit
    has it, else the slope ``beta_dose``.

    Returns
    -------
    DataFrame
        Index ``(indication, fit)``; columns ``parameter``, mean, sd, q2.5, q50, q97.5,
        ``prob_positive`` (posterior P(> 0)), and on the informative-prior row of the
        target: ``prior_ess`` (ELIR), ``ess_unit``, ``prior_weight`` and
        ``posterior_weight`` (the informative component's share before and after the
        data).

    Examples
    --------
    The bundled spec with short chains (four exposure-response fits, about a minute, so
    skipped in the doctests; ``tests/test_borrowing.py`` runs it as a slow test):

    >>> import bayeskit as bk
    >>> from bayeskit.spec import load_spec, spec_from_dict
    >>> loaded = load_spec("sud_abstinence")
    >>> raw = loaded.model_dump(mode="json", exclude={"base_dir"})
    >>> raw["sampler"] |= {"draws": 200, "tune": 300, "chains": 2}
    >>> spec = spec_from_dict(raw, source="example", base_dir=loaded.base_dir)
    >>> fit = bk.fit(spec.data_files(), **spec.fit_kwargs())  # doctest: +SKIP
    >>> table = borrowing_table(fit, spec)  # doctest: +SKIP
    >>> table.loc["OUD"].index.tolist()  # doctest: +SKIP
    ['with borrowing (exchangeable)', 'without borrowing', 'informative prior (robust mixture)']
    """
    from bayeskit.families.exposure.borrow import informative_share
    from bayeskit.fitting import fit as refit

    mine = fit.settings.get("borrowing", True)
    target = borrowing_target(fit, spec)
    fits = {}
    for setting, label in BORROWING_FITS.items():
        if setting == mine:
            fits[label] = fit
            continue
        if setting == "prior" and target is None:
            continue
        kwargs = spec.fit_kwargs()
        options = {"borrowing": setting}
        if setting == "prior":
            options["borrowing_target"] = target
        kwargs["model_options"] = kwargs["model_options"] | options
        fits[label] = refit(spec.data_files(), **kwargs)
    rows = []
    for label, f in fits.items():
        post = f.idata["posterior"]
        name = "dose_contrast" if "dose_contrast" in post else "beta_dose"
        s = f.summary()
        borrowed = getattr(f.data, "borrowed", None)
        for ind in f.data.indication:
            key = f"{name}[{ind}]"
            if key not in s.index:
                continue
            row = {"indication": ind, "fit": label, "parameter": name}
            row |= s.loc[key, ["mean", "sd", "q2.5", "q50", "q97.5"]].to_dict()
            draws = post[name].sel(indication=ind).values.ravel()
            row["prob_positive"] = float(np.mean(draws > 0))
            if borrowed is not None and ind == borrowed.target:
                row |= {
                    "prior_ess": borrowed.ess(),
                    "ess_unit": borrowed.ess_unit(),
                    "prior_weight": borrowed.weight,
                    "posterior_weight": informative_share(draws, borrowed),
                }
            rows.append(row)
    return pd.DataFrame(rows).set_index(["indication", "fit"])
