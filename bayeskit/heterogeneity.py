"""Heterogeneity: tau, tau^2, Bayesian I^2 and H^2, and the prediction interval.

For every family with a between-study SD ``tau`` the summary gains the rows

* ``tau2``: the between-study variance tau^2;
* ``I2``: ``tau^2 / (tau^2 + s^2)``, the share of the variation in the study estimates
  that is between-study heterogeneity rather than sampling error, as a proportion
  (multiply by 100 for metafor's percent);
* ``H2``: ``(tau^2 + s^2) / s^2 = 1 / (1 - I2)``;
* ``s2_typical``: the "typical" within-study variance ``s^2`` of Higgins & Thompson
  (2002, Stat Med 21:1539, eq. 9): ``(k - 1) sum(w) / ((sum w)^2 - sum(w^2))`` with
  ``w = 1 / v_i``; with meta-regression covariates the residual form
  ``(k - p) / tr(P)``, ``P = W - W X (X'W X)^-1 X'W``, as metafor's ``rma`` computes it
  (Viechtbauer 2010, J Stat Softw 36(3));
* the prediction interval is the row ``theta_new`` (a new study's true effect); for
  binary measures it is also stated on the ratio scale (``odds_ratio_new`` or
  ``risk_ratio_new``) and, at the fit's baseline risk, as ``p_treatment_new`` and
  ``risk_difference_new``; a family without ``theta_new`` (exposure-response) gets
  ``delta_new``, a new study's deviation from the fitted dose-response,
  ``Normal(0, tau)``.

I^2 and H^2 are posteriors, not point estimates: each is a function of tau, so its
posterior is that of tau pushed through the function (Higgins & Thompson 2002, sec. 6
suggest exactly this Bayesian reading). ``s^2`` is fixed by the data. The within-study
variances come from the family (:meth:`bayeskit.families.Family.within_study_variances`):
``sei^2`` of study-level effects, the variance of each study's log odds ratio or mean
difference from its arms.

For the exact engine every row is computed from the exact posterior of tau (a grid),
not from draws; for MCMC from the draws, with the Monte Carlo columns.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pandas as pd

from bayeskit.measures import ratio_parameter

#: the rows this module adds to a summary, in order (those that apply)
ROWS = (
    "tau2",
    "I2",
    "H2",
    "s2_typical",
    "odds_ratio_new",
    "risk_ratio_new",
    "p_treatment_new",
    "risk_difference_new",
    "delta_new",
)


def typical_variance(v, X=None) -> float:
    """Return the typical within-study variance ``s^2`` of Higgins & Thompson (2002).

    Parameters
    ----------
    v : array of float
        Within-study sampling variances.
    X : array, optional
        Meta-regression covariates (no intercept column), one row per variance: the
        residual form ``(k - p) / tr(P)`` is used, as in metafor.

    Returns
    -------
    float
        NaN when there are too few studies (``k <= p``).

    Examples
    --------
    Eight schools: ``w = 1 / sei^2``.

    >>> sei = np.array([15.0, 10, 16, 11, 9, 11, 10, 18])
    >>> round(typical_variance(sei**2), 4)
    136.0146
    >>> typical_variance([4.0])  # one study: undefined
    nan
    """
    v = np.asarray(v, dtype=float)
    k = v.size
    w = 1 / v
    Z = np.ones((k, 1))
    if X is not None and np.size(X):
        Z = np.column_stack([Z, np.asarray(X, dtype=float).reshape(k, -1)])
    p = Z.shape[1]
    if k <= p:
        return float("nan")
    if p == 1:
        return float((k - 1) * w.sum() / (w.sum() ** 2 - np.sum(w**2)))
    W = np.diag(w)
    P = W - W @ Z @ np.linalg.pinv(Z.T @ W @ Z) @ Z.T @ W
    return float((k - p) / np.trace(P))


def i2(tau, s2: float):
    """Return ``tau^2 / (tau^2 + s^2)`` (I^2 as a proportion).

    Examples
    --------
    >>> float(i2(2.0, 4.0))
    0.5
    """
    t2 = np.asarray(tau, dtype=float) ** 2
    return t2 / (t2 + s2)


def heterogeneity_summary(fit) -> pd.DataFrame | None:
    """Heterogeneity rows for a fit: ``tau2``, ``I2``, ``H2``, ``s2_typical``, ``*_new``.

    Parameters
    ----------
    fit : Fit
        From :func:`bayeskit.fit`.

    Returns
    -------
    DataFrame or None
        Indexed by ``parameter``, with the columns of the fit's summary; None when the
        fit has no heterogeneity (no pooling, complete pooling, no tau, or fewer than
        two contrasts to state a typical within-study variance).

    Examples
    --------
    >>> import bayeskit as bk
    >>> fit = bk.fit(bk.data_path("eight_schools.csv"),
    ...              priors={"mu": "Normal(0, 5)", "tau": "HalfCauchy(5)"})
    >>> rows = heterogeneity_summary(fit)
    >>> rows.index.tolist()
    ['tau2', 'I2', 'H2', 's2_typical']
    >>> rows.loc["I2", ["q50", "q97.5"]].round(3).tolist()
    [0.053, 0.511]
    """
    from bayeskit.families import get_family

    fam = get_family(fit.family)
    within = fam.within_study_variances(fit.data)
    if within is None:
        return None
    if getattr(fam, "variance_components", None):
        return component_summary(fit, fam.variance_components, typical_variance(*within))
    if fit.exact is not None:
        # the exact posterior answers without its draws (made only when read)
        if fit.exact.pooling != "partial" or not np.any(fit.exact.tau > 0):
            return None  # no population, or complete pooling: tau is 0 by construction
        post = None
    else:
        post = fit.idata["posterior"]
        if "tau" not in post.data_vars:
            return None
        tau = np.asarray(post["tau"].values, dtype=float)
        if tau.ndim != 2 or not np.any(tau > 0):
            return None  # complete pooling: tau is 0 by construction
    s2 = typical_variance(*within)
    if not np.isfinite(s2):
        return None
    measure = fam.measure(fit.settings) or getattr(fit.data, "measure", None)
    p0 = fit.settings.get("baseline_risk")
    if fit.exact is not None:
        rows = _exact_rows(fit.exact, s2, measure, p0)
    else:
        rows = _draw_rows(post, s2, measure, p0, fit.settings.get("seed"))
    rows.index.name = "parameter"
    return rows


def _new_study_functions(measure, p0) -> dict[str, Callable]:
    """Increasing functions of ``theta_new`` that state it on the ratio and risk scales."""
    from scipy import special

    ratio = ratio_parameter(measure) if measure in ("OR", "RR") else None
    if ratio is None:
        return {}
    out: dict[str, Callable] = {f"{ratio}_new": np.exp}
    if p0 is not None:
        if measure == "OR":
            p1 = lambda x: special.expit(special.logit(p0) + x)  # noqa: E731
        else:
            p1 = lambda x: np.minimum(p0 * np.exp(x), 1.0)  # noqa: E731
        out["p_treatment_new"] = p1
        out["risk_difference_new"] = lambda x: p1(x) - p0
    return out


def _tau_functions(s2: float) -> dict[str, Callable]:
    return {
        "tau2": lambda t: np.asarray(t, dtype=float) ** 2,
        "I2": lambda t: i2(t, s2),
        "H2": lambda t: 1 / (1 - i2(t, s2)),
    }


def _exact_rows(post, s2, measure, p0) -> pd.DataFrame:
    rows = {name: post.tau_function_summary(f) for name, f in _tau_functions(s2).items()}
    rows["s2_typical"] = [s2, 0.0, s2, s2, s2]
    for name, f in _new_study_functions(measure, p0).items():
        rows[name] = post.function_summary("theta_new", f)
    return pd.DataFrame.from_dict(
        rows, orient="index", columns=["mean", "sd", "q2.5", "q50", "q97.5"]
    )


def _draw_rows(post, s2, measure, p0, seed) -> pd.DataFrame:
    """Rows from MCMC draws, with Monte Carlo columns (via :func:`bayeskit.summary.summarize`)."""
    import xarray as xr

    from bayeskit.summary import summarize

    tau = post["tau"]
    derived = {name: f(tau) for name, f in _tau_functions(s2).items()}
    if "theta_new" in post.data_vars and post["theta_new"].ndim == 2:
        for name, f in _new_study_functions(measure, p0).items():
            derived[name] = xr.apply_ufunc(f, post["theta_new"])
    else:
        # a new study's deviation from the population mean function: tau times a
        # standard normal, drawn reproducibly from the fit's seed
        z = np.random.default_rng(seed).standard_normal(tau.shape)
        derived["delta_new"] = tau * z
    ds = xr.Dataset(
        {k: xr.DataArray(np.asarray(v), dims=("chain", "draw")) for k, v in derived.items()}
    )
    table = summarize(xr.DataTree.from_dict({"posterior": ds}), mcmc=True)
    constant = pd.DataFrame(
        [[s2, 0.0, s2, s2, s2] + [np.nan] * (table.shape[1] - 5)],
        index=["s2_typical"],
        columns=table.columns,
    )
    order = [r for r in ROWS if r in table.index or r == "s2_typical"]
    return pd.concat([table, constant]).loc[order]


def component_summary(fit, components, s2: float) -> pd.DataFrame | None:
    """Variance components of a multilevel fit and their I^2 shares.

    For each level's SD ``tau_<level>`` the rows ``tau2_<level>`` and
    ``I2_<level> = tau_<level>^2 / (sum of the tau^2 + s^2)``, and ``I2_total``, the
    share of all heterogeneity: the three-level I^2 of Cheung (2014, Psychol Methods
    19:211, eq. 16) and Nakagawa & Santos (2012, Evol Ecol 26:1253), with ``s^2`` the
    typical sampling variance of all effect sizes (:func:`typical_variance`), as
    metafor's users compute it for ``rma.mv`` fits.

    Examples
    --------
    >>> import bayeskit as bk
    >>> fit = bk.fit(bk.data_path("konstantopoulos2011.csv"), "normal-multilevel",
    ...              priors={"mu": "Normal(0, 1)"})
    >>> rows = fit.summary().loc[["I2_study", "I2_es", "I2_total"], "mean"]
    >>> rows.round(2).tolist()
    [0.64, 0.32, 0.96]
    """
    names = [c for c in components if c in fit.priors]
    if not np.isfinite(s2) or not names:
        return None
    levels = [n.removeprefix("tau_") for n in names]

    def shares(*taus):
        t2 = [np.asarray(t, dtype=float) ** 2 for t in taus]
        total = sum(t2) + s2
        return {**{f"I2_{lv}": t / total for lv, t in zip(levels, t2, strict=True)},
                "I2_total": (total - s2) / total}  # fmt: skip

    if fit.exact is not None:
        post = fit.exact
        rows = {f"tau2_{lv}": post.sd_function_summary(n, np.square)
                for lv, n in zip(levels, names, strict=True)}  # fmt: skip
        for key in shares(*[0.0] * len(names)):
            rows[key] = post.cell_function_summary(lambda a, b, key=key: shares(a, b)[key])
        rows["s2_typical"] = [s2, 0.0, s2, s2, s2]
        table = pd.DataFrame.from_dict(rows, orient="index", columns=["mean", "sd", "q2.5",
                                                                      "q50", "q97.5"])  # fmt: skip
    else:
        import xarray as xr

        from bayeskit.summary import summarize

        post = fit.idata["posterior"]
        taus = [np.asarray(post[n].values, dtype=float) for n in names]
        derived = {f"tau2_{lv}": t**2 for lv, t in zip(levels, taus, strict=True)}
        derived |= shares(*taus)
        ds = xr.Dataset({k: (("chain", "draw"), v) for k, v in derived.items()})
        table = summarize(xr.DataTree.from_dict({"posterior": ds}), mcmc=True)
        constant = pd.DataFrame(
            [[s2, 0.0, s2, s2, s2] + [np.nan] * (table.shape[1] - 5)],
            index=["s2_typical"],
            columns=table.columns,
        )
        table = pd.concat([table, constant])
    table.index.name = "parameter"
    return table


def arm_contrast_variances(study_idx, control, *, events=None, n=None, se=None):
    """Each study's within-study variance of its contrast, from its arms.

    A study with one control arm and at least one other arm contributes one variance
    (its other arms taken together, as they share one effect); single arms contribute
    nothing. Binary arms give the variance of the log odds ratio,
    ``1/a + 1/b + 1/c + 1/d`` with 0.5 added to every cell of a table with a zero cell
    (metafor's ``escalc`` default); continuous arms the variance of the mean
    difference, ``se_e^2 + se_c^2``.

    Parameters
    ----------
    study_idx : array of int
        Each arm's study.
    control : array of bool
        Whether the arm is its study's control.
    events, n : array, optional
        Binary arms.
    se : array, optional
        Continuous arms: standard error of each arm's mean.

    Returns
    -------
    (array of float, array of int)
        The variances and the studies they belong to.

    Examples
    --------
    >>> v, s = arm_contrast_variances([0, 0, 1], [True, False, False],
    ...                               events=[2, 8, 5], n=[35, 35, 20])
    >>> v.round(4).tolist(), s.tolist()
    ([0.6923], [0])
    >>> v, s = arm_contrast_variances([0, 0], [True, False], se=[0.3, 0.4])
    >>> v.round(4).tolist()
    [0.25]
    """
    study_idx = np.asarray(study_idx)
    control = np.asarray(control, dtype=bool)
    out, studies = [], []
    for s in dict.fromkeys(study_idx.tolist()):
        arms = study_idx == s
        ctl, exp = np.flatnonzero(arms & control), np.flatnonzero(arms & ~control)
        if len(ctl) != 1 or not len(exp):
            continue
        if events is not None:
            ev, nn = np.asarray(events, dtype=float), np.asarray(n, dtype=float)
            a, n1 = ev[exp].sum(), nn[exp].sum()
            c, n2 = ev[ctl[0]], nn[ctl[0]]
            cells = np.array([a, n1 - a, c, n2 - c])
            if np.any(cells == 0):
                cells = cells + 0.5
            out.append(float(np.sum(1 / cells)))
        elif se is not None:
            s2 = np.asarray(se, dtype=float) ** 2
            out.append(float(1 / np.sum(1 / s2[exp]) + s2[ctl[0]]))
        else:
            continue
        studies.append(s)
    return np.asarray(out, dtype=float), np.asarray(studies, dtype=int)


def typical_variance_of(fit) -> float | None:
    """Return the typical within-study variance of a fit's data (None: the family has none).

    Examples
    --------
    >>> import bayeskit as bk
    >>> round(typical_variance_of(bk.fit(bk.data_path("eight_schools.csv"))), 2)
    136.01
    """
    from bayeskit.families import get_family

    within = get_family(fit.family).within_study_variances(fit.data)
    if within is None:
        return None
    s2 = typical_variance(*within)
    return s2 if np.isfinite(s2) else None


def heterogeneity_draws(fit) -> dict[str, np.ndarray]:
    """Draws of ``tau2``, ``I2`` and ``H2`` (where the fit has tau and a typical variance).

    Examples
    --------
    >>> import bayeskit as bk
    >>> draws = heterogeneity_draws(bk.fit(bk.data_path("eight_schools.csv"), seed=1))
    >>> sorted(draws), bool(np.all((draws["I2"] >= 0) & (draws["I2"] < 1)))
    (['H2', 'I2', 'tau2'], True)
    """
    post = fit.idata["posterior"]
    s2 = typical_variance_of(fit)
    if s2 is None or "tau" not in post.data_vars:
        return {}
    tau = np.asarray(post["tau"].values, dtype=float)
    return {name: f(tau) for name, f in _tau_functions(s2).items()}
