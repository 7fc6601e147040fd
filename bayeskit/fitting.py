"""Fitting: :func:`fit` turns evidence and a model family into a posterior.

``method="mcmc"`` samples the PyMC model with nutpie (PyMC's own NUTS as fallback) and
stores prior and posterior predictive draws and the pointwise log-likelihood;
``method="exact"`` (normal-normal only) integrates the posterior numerically, in
milliseconds, and draws from it for plots.
"""

from __future__ import annotations

import numbers
from collections.abc import Mapping, Sequence
from contextvars import ContextVar
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from bayeskit.errors import UserError
from bayeskit.models import get_family
from bayeskit.models.data import ArmData, StudyData, arm_data, study_data

METHODS = ("mcmc", "exact")
SAMPLERS = ("nutpie", "pymc")
# set by build_model: fit() then stops where it would sample and hands back the model, so
# building and fitting share one path of validation and data preparation
_BUILD_ONLY: ContextVar[bool] = ContextVar("bayeskit_build_only", default=False)


@dataclass
class Fit:
    """A fitted model: the ArviZ DataTree, the PyMC model and how they were made.

    Attributes
    ----------
    idata : xarray.DataTree
        Groups ``posterior``, ``posterior_predictive``, ``log_likelihood``,
        ``sample_stats``, ``observed_data``, ``constant_data``, ``prior`` (MCMC); the exact
        engine gives ``posterior`` draws only.
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

    def summary(self) -> pd.DataFrame:
        """Posterior summary: exact for the exact engine, with MCMC columns otherwise."""
        from bayeskit.summary import summarize

        if self.exact is not None:
            return self.exact.summary()
        return summarize(self.idata, mcmc=True)

    @property
    def verdict(self) -> str:
        """Worst verdict of the sampling diagnostics: ``pass``, ``warn`` or ``fail``.

        Pareto k is left out: a high k says PSIS-LOO is unreliable for that study (the fit
        leans on it), not that the posterior was computed wrongly; it is reported in
        ``checks`` and in the report, but does not fail ``--strict``.
        """
        from bayeskit.diagnostics import verdict

        return verdict([c for c in self.checks if c.name != "pareto_k"])


def fit(
    data: pd.DataFrame | str | Path | Sequence[str | Path],
    model: str = "normal-normal",
    *,
    measure: str | None = None,
    outcome: str | None = None,
    timepoint: str | None = None,
    covariates: str | Sequence[str] | None = None,
    priors: Mapping[str, Any] | None = None,
    pooling: str = "partial",
    parametrization: str = "auto",
    baseline: str = "fixed",
    baseline_risk: float | None = None,
    method: str = "mcmc",
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
) -> Fit:
    """Fit a Bayesian meta-analysis.

    Parameters
    ----------
    data : DataFrame, path or list of paths
        Evidence (from :func:`bayeskit.load_evidence`) or CSV files.
    model : str
        ``normal-normal`` (study-level ``yi``/``sei``; arm-level data are turned into
        effect sizes with ``measure``), ``binomial-normal`` or ``normal-arm``.
    measure, outcome, timepoint
        Which effect measure, outcome and timepoint (see :func:`bayeskit.effects`).
    covariates : str or list of str, optional
        Meta-regression terms: column names or a formula such as
        ``"~ route + log(systemic_dose_mg_per_kg)"``; coefficients are ``beta[<term>]``.
    priors : dict, optional
        Prior strings or :class:`~bayeskit.priors.Prior` objects for ``mu``, ``tau``,
        ``beta``, ``baseline``; the defaults of :func:`bayeskit.priors.default_priors`
        fill the rest.
    pooling : {"partial", "none", "full"}
    parametrization : {"auto", "noncentered", "centered"}
    baseline : {"fixed", "random"}
        Study baselines of ``binomial-normal``.
    baseline_risk : float, optional
        Control-group risk at which binary effects are also stated as probabilities; by
        default the median observed control risk, when there are control arms.
    method : {"mcmc", "exact"}
    draws, tune, chains, seed, sampler, target_accept, progress
        Sampler settings; ``seed`` None picks one and records it.
    effect_options : dict, optional
        Passed to :func:`bayeskit.effects` (``add``, ``to``, ``ri``, ``sd_change``, ...).
    exclude : list of str
        Studies to leave out (leave-one-study-out sensitivity, switching evidence off).
    model_options : dict, optional
        Family-specific settings; for ``exposure-response``: ``scale`` (``"logit"`` or
        ``"smd"``), ``form``, ``sessions``, ``exposure_ref``, ``route_effect``,
        ``bias_sd``, ``design_weight``, ``borrowing``, ``designs``, ``outcome_sd``
        (see :mod:`bayeskit.models.exposure`).

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
    from bayeskit.evidence import load_evidence

    fam = get_family(model)
    if method not in METHODS:
        raise UserError(f"method must be one of {', '.join(METHODS)} (got {method!r})")
    if sampler not in SAMPLERS:
        raise UserError(f"sampler must be one of {', '.join(SAMPLERS)} (got {sampler!r})")
    if method == "exact" and fam.name != "normal-normal":
        raise UserError(
            f"the exact engine is for the normal-normal model, not {fam.name}; use method='mcmc'"
        )
    if seed is not None and (not isinstance(seed, numbers.Integral) or isinstance(seed, bool)):
        raise TypeError(f"seed must be a whole number (int) or None; got {seed!r}")
    if seed is not None and not 0 <= seed < 2**32:
        raise UserError(f"seed must lie in [0, 2**32) (got {seed})")
    for name, value, low in (("draws", draws, 1), ("tune", tune, 0), ("chains", chains, 1)):
        if int(value) != value or value < low:
            raise UserError(f"{name} must be a whole number of at least {low} (got {value})")
    if not 0.5 <= target_accept < 1:
        raise UserError(f"target_accept must lie in [0.5, 1) (got {target_accept})")
    seed = int(np.random.SeedSequence().entropy % 2**31) if seed is None else int(seed)

    model_options = dict(model_options or {})
    if exclude:
        data = _without(data, exclude)
    if fam.data == "exposure":
        return _fit_exposure(
            fam,
            data,
            outcome,
            timepoint,
            priors,
            model_options,
            effect_options or {},
            draws=draws,
            tune=tune,
            chains=chains,
            seed=seed,
            sampler=sampler,
            target_accept=target_accept,
            progress=progress,
        )
    if isinstance(data, list) and all(isinstance(t, pd.DataFrame) for t in data):
        attrs = data[0].attrs
        data = pd.concat(data, ignore_index=True)
        data.attrs = attrs
    evidence = data if isinstance(data, pd.DataFrame) else load_evidence(data)
    prepared = _prepare(
        fam, evidence, measure, outcome, timepoint, covariates, effect_options or {}
    )
    chosen = resolve_priors(fam, prepared, priors)
    if baseline_risk is None:
        baseline_risk = _observed_control_risk(prepared)
    if parametrization == "auto":
        from bayeskit.models.normal_normal import auto_parametrization

        parametrization = auto_parametrization(prepared) if fam.data == "study" else "noncentered"
    elif parametrization not in ("noncentered", "centered"):
        raise UserError(
            f"parametrization must be auto, noncentered or centered (got {parametrization!r})"
        )
    settings = {
        "pooling": pooling,
        "parametrization": parametrization,
        "method": method,
        "draws": draws,
        "tune": tune,
        "chains": chains,
        "seed": seed,
        "sampler": sampler,
        "target_accept": target_accept,
        "baseline": baseline,
        "baseline_risk": baseline_risk,
    }

    if method == "exact":
        from bayeskit.exact import exact_posterior

        post = exact_posterior(prepared, chosen, pooling=pooling, baseline_risk=baseline_risk)
        idata = post.draws(draws * chains, seed=seed, chains=chains)
        return Fit(idata, None, fam.name, method, prepared, chosen, settings, exact=post)

    options = {
        "pooling": pooling,
        "parametrization": parametrization,
        "baseline_risk": baseline_risk,
    }
    if fam.name == "binomial-normal":
        options["baseline"] = baseline
    pm_model = fam.build(prepared, chosen, **options)
    sampling = {
        "draws": draws,
        "tune": tune,
        "chains": chains,
        "seed": seed,
        "sampler": sampler,
        "target_accept": target_accept,
        "progress": progress,
    }
    return _mcmc_fit(pm_model, fam, prepared, chosen, settings, sampling)


def sample(
    model,
    *,
    draws: int,
    tune: int,
    chains: int,
    seed: int,
    sampler: str = "nutpie",
    target_accept: float = 0.9,
    progress: bool = False,
):
    """Sample a PyMC model and gather every group a report needs into one DataTree.

    The posterior comes from NUTS (nutpie by default), then prior draws, prior and
    posterior predictive draws and the pointwise log-likelihood are added, all seeded
    from ``seed`` so the whole DataTree is reproducible.

    Examples
    --------
    >>> import bayeskit as bk
    >>> model = bk.build_model(
    ...     bk.data_path("eight_schools.csv"),
    ...     priors={"mu": "Normal(0, 5)", "tau": "HalfCauchy(5)"},
    ... )
    >>> idata = sample(model, draws=200, tune=200, chains=2, seed=1)
    >>> "log_likelihood" in idata.children, idata.posterior["mu"].shape
    (True, (2, 200))
    """
    import pymc as pm

    seeds = np.random.SeedSequence(seed).generate_state(3)
    if sampler == "nutpie":
        # through the compile cache: a model of an already compiled structure only swaps
        # its data in (bayeskit.compiled)
        from bayeskit.compiled import sample_nutpie

        idata = sample_nutpie(
            model,
            draws=draws,
            tune=tune,
            chains=chains,
            seed=int(seeds[0]),
            target_accept=target_accept,
            progress=progress,
        )
    else:
        # name the sampler always: PyMC 6 picks nutpie by itself whenever it is installed
        idata = pm.sample(
            model=model,
            draws=draws,
            tune=tune,
            chains=chains,
            random_seed=int(seeds[0]),
            target_accept=target_accept,
            progressbar=progress,
            compute_convergence_checks=False,
            nuts_sampler=sampler,
        )
    pm.compute_log_likelihood(idata, model=model, progressbar=False)
    prior = pm.sample_prior_predictive(draws=draws, model=model, random_seed=int(seeds[1]))
    ppc = pm.sample_posterior_predictive(
        idata, model=model, random_seed=int(seeds[2]), progressbar=False
    )
    for tree in (prior, ppc):
        for name, child in tree.children.items():
            if name not in idata.children:
                idata[name] = child
    return idata


EXPOSURE_PRIORS = {
    "beta_dose": "Normal(0, 0.5)",  # log-OR (or SMD) per doubling: a large effect is 1 SD
    "indication_sd": "HalfNormal(0.25)",  # moderate borrowing between indications
    "emax": "Normal(0, 2)",
    "ed50": "LogNormal(0, 1)",  # mg/kg of systemic exposure; median 1, 95% in 0.14-7
    "beta_sessions": "Normal(0, 0.5)",
    "route_sd": "HalfNormal(0.25)",
    "tau": "HalfNormal(0.5)",  # Roever et al. 2021
    "bias": "Normal(0, 0.5)",  # mean bias of a non-randomised design, log-OR or SMD
    "baseline": "Normal(0, 2)",  # logit of the outcome without ketamine
    "baseline_sd": "HalfNormal(1)",
}
EXPOSURE_OPTIONS = (
    "scale",
    "form",
    "sessions",
    "exposure_ref",
    "route_effect",
    "bias_sd",
    "design_weight",
    "borrowing",
    "designs",
    "outcome_sd",
)


def _fit_exposure(fam, data, outcome, timepoint, priors, options, effect_options, **sampling):
    from bayeskit.evidence import load_routes
    from bayeskit.models.exposure import exposure_data
    from bayeskit.models.exposure_data import gather
    from bayeskit.priors import parse_prior

    unknown = sorted(set(options) - set(EXPOSURE_OPTIONS))
    if unknown:
        raise UserError(
            f"unknown exposure-response option {unknown[0]!r}; options: "
            f"{', '.join(EXPOSURE_OPTIONS)}"
        )
    tables = _tables(data)
    scale = options.pop("scale", "logit")
    if scale not in ("logit", "smd"):
        raise UserError(f"scale must be 'logit' (binary outcomes) or 'smd' (got {scale!r})")
    arms, contrasts = gather(
        tables,
        scale=scale,
        outcomes=outcome,
        timepoint=timepoint,
        outcome_sd=options.pop("outcome_sd", None),
        sd_change=effect_options.get("sd_change"),
    )
    prepared = exposure_data(
        arms, contrasts, routes=load_routes(), scale=scale, designs=options.pop("designs", None)
    )
    prepared.table.attrs["sha256"] = {
        f: h for t in tables for f, h in t.attrs.get("sha256", {}).items()
    }
    given = dict(priors or {})
    bad = sorted(set(given) - set(fam.prior_names))
    if bad:
        raise UserError(
            f"model {fam.name} has no prior called {bad[0]!r}; its priors: "
            f"{', '.join(fam.prior_names)}"
        )
    chosen = {
        k: parse_prior(
            given.get(k, v),
            positive=k.endswith("_sd") or k == "tau" or k == "ed50",
            what=f"prior for {k}",
        )
        for k, v in EXPOSURE_PRIORS.items()
    }
    options.setdefault("form", "loglinear")
    options.setdefault("sessions", "multiplier")
    options.setdefault("exposure_ref", 0.1)
    model = fam.build(prepared, chosen, **options)
    settings = {"method": "mcmc", "scale": scale, **options, **sampling}
    return _mcmc_fit(model, fam, prepared, chosen, settings, sampling)


def quiet_pymc() -> None:
    """Silence PyMC's INFO messages (``Sampling: [y]``) for this process.

    PyMC sets its logger to INFO when it is first imported, so it is imported here first.

    Examples
    --------
    >>> import logging
    >>> quiet_pymc()
    >>> logging.getLogger("pymc").level == logging.WARNING
    True
    """
    import logging

    import pymc  # noqa: F401

    logging.getLogger("pymc").setLevel(logging.WARNING)


def build_model(data, model: str = "normal-normal", **options: Any):
    """Build the PyMC model :func:`fit` would sample, without sampling it.

    Takes the arguments of :func:`fit` (sampler settings are ignored). The model keeps
    its data in ``pm.Data`` containers, so it can be extended in raw PyMC, sampled with
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
    """
    if options.get("method", "mcmc") != "mcmc":
        raise UserError("build_model builds the MCMC model; the exact engine has none")
    token = _BUILD_ONLY.set(True)
    try:
        return fit(data, model, **options)
    finally:
        _BUILD_ONLY.reset(token)


def _mcmc_fit(model, fam, prepared, chosen, settings, sampling) -> Fit:
    """Sample a built model and wrap it, with its diagnostics, in a :class:`Fit`."""
    from bayeskit.diagnostics import diagnose

    if _BUILD_ONLY.get():
        return model

    idata = sample(model, **sampling)
    return Fit(idata, model, fam.name, "mcmc", prepared, chosen, settings, checks=diagnose(idata))


def resolve_priors(fam, prepared, given: Mapping[str, Any] | None) -> dict:
    """Return the family's default priors, overridden by those given (text or Prior).

    Examples
    --------
    >>> import bayeskit as bk
    >>> from bayeskit.evidence import load_evidence
    >>> from bayeskit.models import get_family
    >>> prepared = study_data(load_evidence(bk.data_path("eight_schools.csv")))
    >>> chosen = resolve_priors(get_family("normal-normal"), prepared, {"tau": "HalfCauchy(5)"})
    >>> {name: str(prior) for name, prior in chosen.items()}
    {'mu': 'Normal(mu=0, sigma=129)', 'tau': 'HalfCauchy(beta=5)',
     'beta': 'Normal(mu=0, sigma=129)'}
    """
    from bayeskit.priors import default_priors, parse_prior

    given = dict(given or {})
    unknown = sorted(set(given) - set(fam.prior_names))
    if unknown:
        raise UserError(
            f"model {fam.name} has no prior called {unknown[0]!r}; its priors: "
            f"{', '.join(fam.prior_names)}"
        )
    if isinstance(prepared, StudyData):
        chosen = default_priors(prepared.measure, yi=prepared.yi, sei=prepared.sei)
    elif prepared.outcome_type == "binary":
        chosen = default_priors("OR")
    else:
        se_diff = prepared.se * np.sqrt(2)
        chosen = default_priors(None, yi=None, sei=se_diff)
        scale = float(f"{10 * np.max(np.abs(prepared.mean)):.3g}") or 1.0
        chosen["baseline"] = parse_prior(f"Normal(0, {scale})")
    chosen = {k: v for k, v in chosen.items() if k in fam.prior_names}
    for name, value in given.items():
        chosen[name] = parse_prior(
            value,
            allow_flat=name in ("mu", "beta"),
            positive=name in ("tau", "baseline_sd"),
            what=f"prior for {name}",
        )
    return chosen


def _tables(data) -> list[pd.DataFrame]:
    """Return the evidence as a list of validated tables, one per file (shapes may differ)."""
    from bayeskit.evidence import load_evidence

    if isinstance(data, pd.DataFrame):
        return [data]
    if isinstance(data, list) and all(isinstance(t, pd.DataFrame) for t in data):
        return data
    paths = [data] if isinstance(data, (str, Path)) else list(data)
    return [load_evidence(p) for p in paths]


def _without(data, exclude: Sequence[str]):
    """Return the data with the named studies' rows removed (each file keeps its attrs)."""
    tables = _tables(data)
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


def _prepare(fam, evidence, measure, outcome, timepoint, covariates, effect_options):
    if fam.data == "study":
        return study_data(
            evidence,
            measure=measure,
            outcome=outcome,
            timepoint=timepoint,
            covariates=covariates,
            **effect_options,
        )
    return arm_data(
        evidence,
        outcome_type=fam.outcome_type,
        outcome=outcome,
        timepoint=timepoint,
        covariates=covariates,
    )


def _observed_control_risk(prepared) -> float | None:
    """Median observed risk in control arms (None when there are none or not binary)."""
    if isinstance(prepared, ArmData):
        if prepared.outcome_type != "binary" or not (prepared.treat < 0).any():
            return None
        control = prepared.treat < 0
        risk = prepared.events[control] / prepared.n[control]
    else:
        table = prepared.table
        if prepared.measure not in ("OR", "RR") or "ci" not in table or "n2i" not in table:
            return None
        risk = (table["ci"] / table["n2i"]).to_numpy(float)
    risk = float(np.median(risk))
    return risk if 0 < risk < 1 else None
