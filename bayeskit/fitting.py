"""Fitting: :func:`fit` turns evidence and a model family into a posterior.

``method="auto"`` (the default) lets the exact engine answer wherever it applies (a
family with an exact engine, normal-normal, and priors it supports) and samples by MCMC
everywhere else; the fit's ``settings`` say which engine ran and why (``engine``,
``engine_reason``). ``method="mcmc"`` samples the PyMC model with nutpie (PyMC's own NUTS
as fallback) and stores prior and posterior predictive draws and the pointwise
log-likelihood; a fit with divergent transitions (or, for normal-normal, one that
misses the exact posterior) is refitted with a higher target
acceptance, longer tuning and, if divergences persist at the highest target, the other
parametrisation (:data:`MAX_ATTEMPTS`, ``auto_refit``). ``method="exact"`` integrates the posterior
numerically, in milliseconds, and draws from it for plots.
"""

from __future__ import annotations

import functools
import numbers
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from bayeskit.errors import UserError
from bayeskit.families import FAMILIES, evidence_tables, get_family
from bayeskit.families.data import ArmData, StudyData
from bayeskit.sampling import quiet_pymc, sample  # noqa: F401  (their home before)

METHODS = ("auto", "mcmc", "exact")
#: attempts an MCMC fit with divergences gets when ``auto_refit`` is on (the first included)
MAX_ATTEMPTS = 4
#: each refit's target acceptance (at least this) and tuning (times the first attempt's);
#: the fourth attempt repeats the last of these in the other parametrisation, and only
#: when the third still diverged (on two BCG trials a switch to the centred form at the
#: third attempt turned 3 divergences into 23, while the non-centred form at 0.99 had 0)
REFIT_SCHEDULE = ((0.95, 2), (0.99, 4))
SAMPLERS = ("nutpie", "pymc")


@dataclass(repr=False)
class Fit:
    """A fitted model: the ArviZ DataTree, the PyMC model and how they were made.

    Attributes
    ----------
    idata : xarray.DataTree
        Groups ``posterior``, ``posterior_predictive``, ``log_likelihood``,
        ``sample_stats``, ``observed_data``, ``constant_data``, ``prior`` (MCMC); the exact
        engine gives ``posterior`` draws and ``log_likelihood`` only, drawn when first
        asked for (its summary needs no draws).
    model : pymc.Model or None
        The model, to extend in raw PyMC (None for the exact engine).
    family, method : str
    data : StudyData or ArmData
        The data as the model saw it.
    priors : dict
        The priors used (defaults filled in).
    settings : dict
        Pooling, parametrization, sampler settings and the seed.
    exact : ExactPosterior or None
    checks : list of diagnostics.Check

    Examples
    --------
    >>> import bayeskit as bk
    >>> fit = bk.fit(bk.data_path("eight_schools.csv"), method="exact",
    ...              priors={"mu": "Normal(0, 5)", "tau": "HalfCauchy(5)"})
    >>> fit.family, fit.method, fit.model is None, fit.verdict
    ('normal-normal', 'exact', True, 'pass')
    >>> fit.idata.posterior["mu"].shape, round(float(fit.summary().loc["mu", "mean"]), 1)
    ((4, 1000), 4.4)

    Printed, a fit is a compact summary, as metafor prints ``rma``:

    >>> print(fit)  # doctest: +NORMALIZE_WHITESPACE
    Bayesian meta-analysis: normal-normal, 8 studies, exact engine
    <BLANKLINE>
                            median       sd      2.5%     97.5%
    mu                       4.415    3.318    -2.168     10.85
    tau                      2.749    3.220    0.1231     11.93
    tau2                     7.556    47.99   0.01515     142.4
    I2 (%)                   5.263    13.96   0.01114     51.14
    H2                       1.056   0.3528     1.000     2.047
    theta_new                4.491    5.858    -7.695     15.78
    <BLANKLINE>
    theta_new: where a new study's true effect lies (95% prediction interval).
    I2, H2: typical within-study variance s2 = 136 (Higgins & Thompson 2002).
    Diagnostics: pass (exact engine: no sampling).
    """

    idata: Any
    model: Any
    family: str
    method: str
    data: StudyData | ArmData
    priors: dict
    settings: dict
    exact: Any = None
    checks: list = field(default_factory=list)
    #: makes ``idata`` when first read (the exact engine's draws), then forgotten
    draw: Any = field(default=None, repr=False, compare=False)

    def summary(self) -> pd.DataFrame:
        """Posterior summary: exact for the exact engine, with MCMC columns otherwise.

        One row per quantity (``mu``, ``beta[<term>]``, ``tau``, ``theta[<study>]``,
        ``theta_new``, ...), then the heterogeneity rows ``tau2``, ``I2``, ``H2``,
        ``s2_typical`` and the prediction interval on other scales
        (:mod:`bayeskit.heterogeneity`).

        Examples
        --------
        >>> import bayeskit as bk
        >>> fit = bk.fit(bk.data_path("eight_schools.csv"),
        ...              priors={"mu": "Normal(0, 5)", "tau": "HalfCauchy(5)"})
        >>> fit.summary().loc[["mu", "theta_new", "I2"], ["q2.5", "q97.5"]].round(2)
                   q2.5  q97.5
        parameter
        mu        -2.17  10.85
        theta_new -7.70  15.78
        I2         0.00   0.51
        """
        from bayeskit.heterogeneity import heterogeneity_summary
        from bayeskit.summary import summarize

        table = self.exact.summary() if self.exact is not None else summarize(self.idata)
        rows = heterogeneity_summary(self)
        if rows is None:
            return table
        return pd.concat([table, rows.reindex(columns=table.columns)])

    def prob(self, event: str) -> float:
        """Posterior probability of an event ``NAME OP NUMBER``, e.g. ``"mu > 0"``.

        ``NAME`` is a scalar quantity of the posterior (``mu``, ``tau``, ``theta_new``,
        ``beta[<term>]``, ``theta[<study>]``, ``odds_ratio``, ``tau2``, ``I2``, ``H2``,
        ...) and ``OP`` one of ``<``, ``<=``, ``>``, ``>=``. The text is parsed, never
        evaluated; anything else is a :class:`~bayeskit.errors.UserError`. Exact fits
        answer from the exact posterior (a normal mixture over the grid of tau), MCMC
        fits with the share of draws.

        Examples
        --------
        >>> import bayeskit as bk
        >>> fit = bk.fit(bk.data_path("eight_schools.csv"),
        ...              priors={"mu": "Normal(0, 5)", "tau": "HalfCauchy(5)"})
        >>> round(fit.prob("mu > 0"), 4), round(fit.prob("theta_new < -0.2"), 4)
        (0.9076, 0.1624)
        >>> fit.prob("mu > 0 or True")
        Traceback (most recent call last):
        ...
        bayeskit.errors.UserError: cannot read the event "mu > 0 or True": an event is ...
        """
        from bayeskit.probability import probability

        return probability(self, event)

    def plot_forest(self):
        """Forest plot: observed and model estimates, weights, pooled effect, prediction.

        The report's figure (:func:`bayeskit.report.forest.forest_figure`), as a
        matplotlib ``Figure``.

        Examples
        --------
        >>> import bayeskit as bk
        >>> fit = bk.fit(bk.data_path("eight_schools.csv"))
        >>> figure = fit.plot_forest()
        >>> figure.axes[0].get_yticklabels()[0].get_text()
        'A'
        """
        from bayeskit.report.forest import forest_figure

        return self._draw(forest_figure)

    def plot_funnel(self):
        """Funnel plot with posterior predictive contours (normal-normal fits).

        The report's figure (:func:`bayeskit.report.funnel.funnel_figure`): each study's
        observed effect against its standard error, with where a new study of that
        precision would fall, and the small-study check.

        Examples
        --------
        >>> import bayeskit as bk
        >>> figure = bk.fit(bk.data_path("eight_schools.csv")).plot_funnel()
        >>> figure.axes[0].get_ylabel()
        'standard error'
        """
        from bayeskit.report.funnel import funnel_figure

        figure = self._draw(funnel_figure)
        if figure is None:
            raise UserError(
                f"a funnel plot is drawn for study-level effect sizes (normal-normal with "
                f"partial pooling); this fit is {self.family}"
            )
        return figure

    def save(self, out: str | Path, *, force: bool = False, report: bool = True) -> Path:
        """Write the run directory (summary, posterior, diagnostics, manifest, report).

        What ``bayeskit fit --out`` writes (:func:`bayeskit.rundir.write_run`).

        Examples
        --------
        >>> import tempfile
        >>> import bayeskit as bk
        >>> fit = bk.fit(bk.data_path("eight_schools.csv"))
        >>> out = fit.save(Path(tempfile.mkdtemp()) / "run")
        >>> (out / "report.html").is_file(), (out / "summary.csv").is_file()
        (True, True)
        """
        from bayeskit.rundir import write_run

        return write_run(self, out, force=force, report=report, command=["python", "Fit.save"])

    def _draw(self, figure_of):
        """Draw a report figure for this fit, from its run directory written to a scratch folder."""
        import tempfile

        from bayeskit.report.run import load_run
        from bayeskit.rundir import write_run

        with tempfile.TemporaryDirectory() as tmp:
            run = load_run(write_run(self, Path(tmp) / "run", report=False, command=["python"]))
            return figure_of(run)

    def __repr__(self) -> str:
        from bayeskit.display import compact_summary

        return compact_summary(self)

    @property
    def verdict(self) -> str:
        """Worst verdict of the sampling diagnostics: ``pass``, ``warn`` or ``fail``.

        Pareto k is left out: a high k says PSIS-LOO is unreliable for that study (the fit
        leans on it), not that the posterior was computed wrongly; it is reported in
        ``checks`` and in the report, but does not fail ``--strict``.
        """
        checks = [c for c in self.checks if c.name != "pareto_k"]
        if not checks:  # the exact engine: nothing to check (and no ArviZ to import)
            return "pass"
        from bayeskit.diagnostics import verdict

        return verdict(checks)


def _get_idata(self: Fit):
    tree = self.__dict__.get("_idata")
    if tree is None and self.draw is not None:
        tree, self.draw = self.draw(), None
        self.__dict__["_idata"] = tree
    return tree


def _set_idata(self: Fit, value) -> None:
    self.__dict__["_idata"] = value


# `idata` is a dataclass field read through a property, so that an exact fit draws its
# 4,000 posterior draws (and their log-likelihood) only when something reads them:
# `bayeskit fit --json` and a summary of 20,000 studies never do
Fit.idata = property(_get_idata, _set_idata, doc="The ArviZ DataTree (see the class).")


def fit(
    data: pd.DataFrame | str | Path | Sequence[str | Path],
    model: str = "normal-normal",
    *,
    measure: str | None = None,
    outcome: str | None = None,
    timepoint: str | None = None,
    covariates: str | Sequence[str] | None = None,
    priors: Mapping[str, Any] | None = None,
    pooling: str | None = None,
    parametrization: str | None = None,
    baseline: str | None = None,
    baseline_risk: float | None = None,
    method: str = "auto",
    draws: int = 1000,
    tune: int = 1000,
    chains: int = 4,
    seed: int | None = None,
    sampler: str = "nutpie",
    target_accept: float = 0.9,
    progress: bool = False,
    effect_options: Mapping[str, Any] | None = None,
    model_options: Mapping[str, Any] | None = None,
    exclude: Sequence[str] = (),
    auto_refit: bool = True,
    posterior_only: bool = False,
) -> Fit:
    """Fit a Bayesian meta-analysis.

    Generic over the model families (:mod:`bayeskit.families`): the family prepares the
    data, gives the default priors and checks the options; then the model is built and
    sampled, or the family's exact engine computes the posterior. Options that do not
    apply to the family (``pooling`` for ``exposure-response``, ``baseline`` for
    ``normal-normal``, ...) raise a :class:`~bayeskit.errors.UserError` that lists the
    family's options.

    Parameters
    ----------
    data : DataFrame, path or list of paths
        Evidence (from :func:`bayeskit.load_evidence`) or CSV files.
    model : str
        ``normal-normal`` (study-level ``yi``/``sei``; arm-level data are turned into
        effect sizes with ``measure``), ``binomial-normal``, ``normal-arm`` or
        ``exposure-response`` (see :data:`bayeskit.families.FAMILIES`).
    measure, outcome, timepoint
        Which effect measure (``normal-normal`` only), outcome and timepoint (see
        :func:`bayeskit.effects`).
    covariates : str or list of str, optional
        Meta-regression terms: column names or a formula such as
        ``"~ route + log(systemic_dose_mg_per_kg)"``; coefficients are ``beta[<term>]``.
    priors : dict, optional
        Prior strings or :class:`~bayeskit.priors.Prior` objects for the family's prior
        slots (``mu``, ``tau``, ``beta``, ``baseline``, ...); the family's defaults (see
        :func:`bayeskit.priors.default_priors`) fill the rest.
    pooling : {"partial", "none", "full"}, optional
        Default ``"partial"``.
    parametrization : {"auto", "noncentered", "centered"}, optional
        Default ``"auto"``.
    baseline : {"fixed", "random"}, optional
        Study baselines of ``binomial-normal`` (default ``"fixed"``).
    baseline_risk : float, optional
        Control-group risk at which binary effects are also stated as probabilities; by
        default the median observed control risk, when there are control arms.
    method : {"auto", "mcmc", "exact"}
        ``auto`` (default): the exact engine wherever it applies (``normal-normal`` with
        Normal or Flat priors on ``mu`` and ``beta``), MCMC otherwise; ``exact`` insists
        on the exact engine (an error where it does not apply); ``mcmc`` always samples.
        ``settings["engine"]`` and ``settings["engine_reason"]`` say what ran and why.
    draws, tune, chains, seed, sampler, target_accept, progress
        Sampler settings; ``seed`` None picks one and records it.
    auto_refit : bool
        When an MCMC fit has divergent transitions, or (with an exact engine) differs
        from the exact posterior by more than Monte Carlo error explains
        (:func:`bayeskit.crosscheck.exact_check`), refit it (up to
        :data:`MAX_ATTEMPTS` attempts in all): target acceptance at least 0.95 and twice
        the tuning, then at least 0.99 and four times the tuning and, if that still
        diverged, the same again in the other parametrisation where the family has one.
        Every attempt is recorded in ``settings["attempts"]``. The fit returned is the
        best attempt (fewest divergences, then agreement with the exact posterior; the
        later on a tie), which is the last one unless a refit made things worse;
        ``settings["returned_attempt"]`` says which. Default True.
    posterior_only : bool
        MCMC only: draw the posterior and nothing more: no prior draws, no prior or
        posterior predictive draws, no pointwise log-likelihood (so no LOO and no
        Pareto-k check in the verdict). The posterior draws are the same as without it
        (same seed). For refits that read only the posterior (``robustness.csv``); each
        of those groups costs a compiled PyTensor function and a loop over draws. Default
        False.
    effect_options : dict, optional
        Passed to :func:`bayeskit.effects` (``add``, ``to``, ``ri``, ``sd_change``, ...).
    exclude : list of str
        Studies to leave out (leave-one-study-out sensitivity, switching evidence off).
    model_options : dict, optional
        Further family options; for ``exposure-response``: ``scale`` (``"logit"`` or
        ``"smd"``), ``form``, ``sessions``, ``exposure_ref``, ``route_effect``,
        ``bias_sd``, ``design_weight``, ``borrowing``, ``designs``, ``outcome_sd``
        (see :mod:`bayeskit.families.exposure`).

    Returns
    -------
    Fit

    Examples
    --------
    >>> import bayeskit as bk
    >>> f = bk.fit(bk.data_path("eight_schools.csv"), method="exact",
    ...            priors={"mu": "Normal(0, 5)", "tau": "HalfCauchy(5)"})
    >>> f.summary().loc["mu", "mean"].round(1)
    np.float64(4.4)
    """
    fam = get_family(model)
    _check_sampling(fam, method, sampler, draws, tune, chains, target_accept, seed)
    data, measure = _effects_input(fam, data, measure)
    seed = int(np.random.SeedSequence().entropy % 2**31) if seed is None else int(seed)
    options = {
        "measure": measure,
        "covariates": covariates,
        "pooling": pooling,
        "parametrization": parametrization,
        "baseline": baseline,
        "baseline_risk": baseline_risk,
        **dict(model_options or {}),
    }
    prepared, chosen, resolved = _setup(
        fam, data, priors, options, outcome, timepoint, effect_options, exclude
    )
    engine, reason, post = choose_engine(fam, prepared, chosen, resolved, method)
    settings = fam.settings(prepared, resolved) | {
        "method": method,
        "engine": engine,
        "engine_reason": reason,
        "draws": draws,
        "tune": tune,
        "chains": chains,
        "seed": seed,
        "sampler": sampler,
        "target_accept": target_accept,
        # which priors the analyst chose (the rest are the family's defaults): the
        # methods text says where each prior came from (bayeskit.report.methods)
        "priors_given": sorted(priors or {}),
    }
    if posterior_only:
        settings["posterior_only"] = True
    if engine == "exact":
        draw = functools.partial(_exact_draws, fam, prepared, chosen, post, draws, chains, seed)
        return Fit(None, None, fam.name, "exact", prepared, chosen, settings, exact=post, draw=draw)
    settings["auto_refit"] = bool(auto_refit)
    sampling = {"draws": draws, "chains": chains, "seed": seed, "sampler": sampler}
    if posterior_only:
        sampling["posterior_only"] = True
    attempts, fits = [], []
    steps = [(target_accept, 1)]
    if auto_refit:
        steps += [(max(target_accept, ta), times) for ta, times in REFIT_SCHEDULE]
    for ta, times in steps[:MAX_ATTEMPTS]:
        fits.append(_attempt(fam, prepared, chosen, resolved, settings, progress, sampling,
                             ta, tune * times, attempts))  # fmt: skip
        if _settled(fits[-1], attempts[-1]):
            break
    # the other form only when divergences persisted at the highest target: a fit that
    # merely disagrees with the exact posterior keeps its form
    switched = _switched(resolved)
    if auto_refit and attempts[-1]["divergences"] > 0 and switched is not resolved:
        ta, times = steps[-1]
        fits.append(_attempt(fam, prepared, chosen, switched, settings, progress, sampling,
                             ta, tune * times, attempts))  # fmt: skip
    best = min(range(len(fits)), key=lambda i: (*_badness(fits[i], attempts[i]), -i))
    result = fits[best]
    result.settings["attempts"] = attempts
    result.settings["returned_attempt"] = best + 1
    return result


def _attempt(fam, prepared, chosen, options, settings, progress, sampling, ta, tune, attempts):
    """Run one MCMC attempt and append its record to ``attempts``."""
    tried = [a["parametrization"] for a in attempts]
    result = _mcmc(fam, prepared, chosen, options, settings, progress,
                   sampling | {"tune": tune, "target_accept": ta}, tried)  # fmt: skip
    attempts.append(_attempt_record(len(attempts) + 1, result))
    return result


def _badness(result: Fit, record: dict) -> tuple[int, int]:
    """Rank attempts: divergences first, then whether the exact-agreement check failed."""
    agreement = next((c for c in result.checks if c.name == "exact_agreement"), None)
    return record["divergences"], int(agreement is not None and agreement.verdict != "pass")


def _settled(result: Fit, record: dict) -> bool:
    """Return True when an attempt needs no refit: no divergences, agreement where checked."""
    return _badness(result, record) == (0, 0)


def _exact_draws(fam, prepared, chosen, post, draws: int, chains: int, seed: int):
    """Draw from the exact posterior; add the log-likelihood LOO needs; return the tree."""
    from bayeskit.loo import study_log_likelihood

    idata = post.draws(draws * chains, seed=seed, chains=chains)
    # the exact engine's draws get the same leave-one-study-out log-likelihood as an
    # MCMC fit's, so that compare and the report treat both engines alike
    return study_log_likelihood(fam, prepared, idata, chosen)


def _mcmc(fam, prepared, chosen, options, settings, progress, sampling, tried=()) -> Fit:
    """One MCMC attempt: build, sample, diagnose (and compare with the exact engine)."""
    from bayeskit.diagnostics import diagnose
    from bayeskit.loo import study_log_likelihood

    pm_model = fam.build(prepared, chosen, options)
    idata = sample(pm_model, progress=progress, **sampling)
    if not sampling.get("posterior_only"):
        # LOO leaves one study out: the family integrates each study's effects out
        idata = study_log_likelihood(fam, prepared, idata, chosen)
    parametrization = getattr(options, "parametrization", None)
    forms = list(dict.fromkeys([*tried, parametrization])) if parametrization else None
    checks = diagnose(idata, parametrization=forms, target_accept=sampling["target_accept"])
    result = Fit(
        idata,
        pm_model,
        fam.name,
        "mcmc",
        prepared,
        chosen,
        settings | fam.settings(prepared, options) | sampling,
        checks=checks,
    )
    if fam.exact is not None:
        from bayeskit.crosscheck import exact_check

        try:
            exact = fam.exact(prepared, chosen, options)
        except UserError:  # priors the exact engine does not take: nothing to compare
            exact = None
        if exact is not None:
            result.checks.append(exact_check(result, exact))
    return result


def add_log_likelihood(result: Fit) -> Fit:
    """Add the pointwise log-likelihood to a ``posterior_only`` MCMC fit, for LOO.

    The family's leave-one-study-out log-likelihood where it computes one from the
    posterior, else PyMC's (conditional) one: what :func:`fit` adds by default. Used
    where a refit is compared by LOO but needs no predictive draws (the dose-response
    shapes of :func:`bayeskit.questions.shape_table`).

    Examples
    --------
    >>> import bayeskit as bk
    >>> f = bk.fit(bk.data_path("eight_schools.csv"), method="mcmc", draws=100, tune=100,
    ...            chains=2, seed=1, posterior_only=True,
    ...            priors={"mu": "Normal(0, 5)", "tau": "HalfCauchy(5)"})
    >>> "log_likelihood" in add_log_likelihood(f).idata.children
    True
    """
    from bayeskit.loo import study_log_likelihood

    if result.method != "mcmc" or "log_likelihood" in result.idata.children:
        return result
    fam = get_family(result.family)
    idata = study_log_likelihood(fam, result.data, result.idata, result.priors)
    if "log_likelihood" not in idata.children:
        # the family has no marginal one (a None answer costs nothing): PyMC's
        # conditional log-likelihood, labelled as such by study_log_likelihood
        import pymc as pm

        pm.compute_log_likelihood(idata, model=result.model, progressbar=False)
        idata = study_log_likelihood(fam, result.data, idata, result.priors)
    result.idata = idata
    return result


def _switched(options):
    """Return the options with the other parametrisation, where the family has one."""
    current = getattr(options, "parametrization", None)
    if current not in ("centered", "noncentered"):
        return options
    other = "noncentered" if current == "centered" else "centered"
    return options.model_copy(update={"parametrization": other})


def _attempt_record(number: int, result: Fit) -> dict:
    """Return what the manifest keeps of one MCMC attempt: settings and diagnostics."""
    values = {c.name: c.value for c in result.checks}
    ess = [values.get(n) for n in ("ess_bulk", "ess_tail") if values.get(n) is not None]
    s = result.settings
    return {
        "attempt": number,
        "parametrization": s.get("parametrization"),
        "target_accept": s["target_accept"],
        "tune": s["tune"],
        "draws": s["draws"],
        "divergences": int(values.get("divergences", 0) or 0),
        "min_ess": float(min(ess)) if ess else None,
        "max_r_hat": values.get("r_hat"),
        "exact_agreement_sd": values.get("exact_agreement"),
        "verdict": result.verdict,
    }


def choose_engine(fam, prepared, chosen, resolved, method: str):
    """Return ``(engine, reason, exact_posterior)`` for ``method`` on this family and data.

    ``auto`` takes the exact engine when the family has one and it accepts the priors and
    data (anything it refuses, such as a Student-t prior on ``mu``, falls back to MCMC);
    the reason is one sentence for the manifest and the report.

    Examples
    --------
    >>> import bayeskit as bk
    >>> f = bk.fit(bk.data_path("eight_schools.csv"), priors={"tau": "HalfCauchy(5)"})
    >>> f.method, f.settings["engine_reason"]
    ('exact', 'exact engine: normal-normal with known within-study variances is ...')
    >>> from bayeskit.families import get_family
    >>> choose_engine(get_family("binomial-normal"), None, {}, None, "auto")[:2]
    ('mcmc', 'MCMC: the binomial-normal family has no exact engine')
    """
    if method == "mcmc":
        return "mcmc", "MCMC, as asked (method mcmc)", None
    if fam.exact is None:
        return "mcmc", f"MCMC: the {fam.name} family has no exact engine", None
    try:
        post = fam.exact(prepared, chosen, resolved)
    except UserError as err:
        if method == "exact":
            raise
        why = str(err).split(": use method")[0].removeprefix("the exact engine ")
        return "mcmc", f"MCMC: the exact engine does not apply here ({why})", None
    pooling = getattr(resolved, "pooling", "partial")
    how = {
        "partial": "is integrated numerically over tau",
        "full": "has tau fixed at 0, so the posterior is normal in closed form",
        "none": "gives each study its own effect, normal in closed form",
    }[pooling]
    how = getattr(fam, "exact_how", None) or how  # a family whose engine says it otherwise
    asked = ", as asked (method exact)" if method == "exact" else ""
    return "exact", f"exact engine{asked}: {fam.name} with known within-study variances {how}", post


def _check_sampling(fam, method, sampler, draws, tune, chains, target_accept, seed) -> None:
    """Refuse an unknown method or sampler, an exact fit without an engine, bad counts."""
    if seed is not None and (not isinstance(seed, numbers.Integral) or isinstance(seed, bool)):
        raise TypeError(f"seed must be a whole number (int) or None; got {seed!r}")
    if seed is not None and not 0 <= seed < 2**32:
        raise UserError(f"seed must lie in [0, 2**32) (got {seed})")
    if method not in METHODS:
        raise UserError(f"method must be one of {', '.join(METHODS)} (got {method!r})")
    if sampler not in SAMPLERS:
        raise UserError(f"sampler must be one of {', '.join(SAMPLERS)} (got {sampler!r})")
    if method == "exact" and fam.exact is None:
        exact = [f.name for f in FAMILIES.values() if f.exact is not None]
        raise UserError(
            f"the exact engine is for the {', '.join(exact)} model, not {fam.name}; "
            "use method='mcmc'"
        )
    for name, value, low in (("draws", draws, 1), ("tune", tune, 0), ("chains", chains, 1)):
        if int(value) != value or value < low:
            raise UserError(f"{name} must be a whole number of at least {low} (got {value})")
    if not 0.5 <= target_accept < 1:
        raise UserError(f"target_accept must lie in [0.5, 1) (got {target_accept})")


def _setup(fam, data, priors, options, outcome, timepoint, effect_options, exclude):
    """Check the options, prepare the data and resolve the priors: what fit and build share."""
    checked = fam.options(options)
    if exclude:
        data = _without(data, exclude)
    prepared = fam.prepare(
        data, checked, outcome=outcome, timepoint=timepoint, effect_options=effect_options or {}
    )
    chosen = fam.resolve_priors(prepared, priors)
    return prepared, chosen, fam.resolve(prepared, checked)


def build_model(data, model: str = "normal-normal", **options: Any):
    """Build the PyMC model :func:`fit` would sample, without sampling it.

    Takes the arguments of :func:`fit` (sampler settings are ignored) and refuses, as
    :func:`fit` does, options that do not apply to the family. The model keeps its data
    in ``pm.Data`` containers, so it can be extended in raw PyMC, sampled with
    :func:`sample`, or given new data with ``pm.set_data``.

    Returns
    -------
    pymc.Model

    Examples
    --------
    >>> import bayeskit as bk
    >>> m = bk.build_model(bk.data_path("eight_schools.csv"),
    ...                    priors={"mu": "Normal(0, 5)", "tau": "HalfCauchy(5)"})
    >>> [rv.name for rv in m.free_RVs]
    ['mu', 'tau', 'theta_z', 'theta_new_z']
    >>> bk.build_model(bk.data_path("oud_abstinence.csv"), "exposure-response",
    ...                pooling="none")
    Traceback (most recent call last):
    ...
    bayeskit.families._base.OptionsError: option 'pooling' does not apply to model ...
    """
    if options.pop("method", "mcmc") not in ("mcmc", "auto"):
        raise UserError("build_model builds the MCMC model; the exact engine has none")
    for key in (
        "draws",
        "tune",
        "chains",
        "seed",
        "sampler",
        "target_accept",
        "progress",
        "auto_refit",
    ):
        options.pop(key, None)
    fam = get_family(model)
    fixed = {k: options.pop(k, None) for k in ("priors", "outcome", "timepoint")}
    effect_options = options.pop("effect_options", None)
    exclude = options.pop("exclude", ())
    given = {**(options.pop("model_options", None) or {}), **options}
    prepared, chosen, resolved = _setup(
        fam,
        data,
        fixed["priors"],
        given,
        fixed["outcome"],
        fixed["timepoint"],
        effect_options,
        exclude,
    )
    return fam.build(prepared, chosen, resolved)


def resolve_priors(fam, prepared, given: Mapping[str, Any] | None) -> dict:
    """Return the family's default priors, overridden by those given (text or Prior).

    The family decides (:meth:`bayeskit.families.Family.resolve_priors`).

    Examples
    --------
    >>> import bayeskit as bk
    >>> from bayeskit.evidence import load_evidence
    >>> from bayeskit.families.data import study_data
    >>> prepared = study_data(load_evidence(bk.data_path("eight_schools.csv")))
    >>> chosen = resolve_priors("normal-normal", prepared, {"tau": "HalfCauchy(5)"})
    >>> {name: str(prior) for name, prior in chosen.items()}
    {'mu': 'Normal(mu=0, sigma=129)', 'tau': 'HalfCauchy(beta=5)',
     'beta': 'Normal(mu=0, sigma=129)'}
    """
    return get_family(fam).resolve_priors(prepared, given)


def _effects_input(fam, data, measure):
    """Accept the table :func:`bayeskit.effects` returns, as metafor's ``rma`` takes ``escalc``'s.

    Effect sizes come indexed by study with their measure in ``attrs``; the family reads
    a study column, and its measure option (where it has one) from that table.
    """
    if not isinstance(data, pd.DataFrame) or data.index.name != "study" or "study" in data:
        return data, measure
    attrs = dict(data.attrs)
    data = data.reset_index()
    data.attrs = attrs
    if measure is None and attrs.get("measure") and "measure" in fam.options_model.model_fields:
        measure = attrs["measure"]
    return data, measure


def _without(data, exclude: Sequence[str]):
    """Return the data with the named studies' rows removed (each file keeps its attrs)."""
    tables = evidence_tables(data)
    known = {str(s) for t in tables for s in t["study"]}
    missing = sorted(set(exclude) - known)
    if missing:
        raise UserError(f"cannot leave out {missing[0]!r}: no such study in the data")
    out = []
    for t in tables:
        kept = t[~t["study"].astype(str).isin(exclude)].copy()
        kept.attrs = dict(t.attrs)
        if len(kept):
            out.append(kept)
    if not out:
        raise UserError("leaving those studies out leaves no data")
    if len(out) == 1:
        return out[0]
    return out
