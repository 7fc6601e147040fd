"""Posterior summaries: one row per scalar quantity, named as the literature names them.

Rows are ``mu``, ``beta[<term>]``, ``tau``, ``theta[<study>]``, ``theta_new`` and any
derived quantity (``odds_ratio``, ``p_treatment``, ...); nuisance parameters (study
baselines ``alpha``, non-centred ``*_z`` variables) are left out.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

COLUMNS = ["mean", "sd", "q2.5", "q50", "q97.5"]
MCMC_COLUMNS = [*COLUMNS, "mcse_mean", "ess_bulk", "ess_tail", "r_hat"]
ORDER = ("mu", "beta", "tau", "theta", "theta_new")
HIDDEN_SUFFIXES = ("_z",)
HIDDEN = {"alpha", "alpha_sigma", "delta_z", "bias_z", "alpha_z", "beta_dose_z", "emax_z"}
HIDDEN_PREFIXES = ("_", "bioavailability_")


def summary_variables(posterior) -> list[str]:
    """Names of the posterior variables a summary reports, in reading order.

    Sampler-internal variables (non-centred ``*_z`` auxiliaries, the per-route
    ``bioavailability_*`` components) are left out; ``mu``, ``beta``, ``tau``, ``theta``
    and ``theta_new`` come first.

    Examples
    --------
    >>> import xarray as xr
    >>> from bayeskit.summary import summary_variables
    >>> post = xr.Dataset({v: 0.0 for v in ("theta", "theta_z", "tau", "mu", "odds_ratio")})
    >>> summary_variables(post)
    ['mu', 'tau', 'theta', 'odds_ratio']
    """
    names = [
        v
        for v in posterior.data_vars
        if v not in HIDDEN and not v.endswith(HIDDEN_SUFFIXES) and not v.startswith(HIDDEN_PREFIXES)
    ]
    first = [v for v in ORDER if v in names]
    return first + [v for v in names if v not in first]


def summarize(idata, *, var_names: list[str] | None = None, mcmc: bool = True) -> pd.DataFrame:
    """Summarise the posterior group of a DataTree.

    Parameters
    ----------
    idata : xarray.DataTree
        With a ``posterior`` group of dims ``(chain, draw, ...)``.
    var_names : list of str, optional
        Variables to report; by default every non-nuisance variable.
    mcmc : bool
        Add ``mcse_mean``, ``ess_bulk``, ``ess_tail`` and ``r_hat`` (ArviZ's rank-normalised
        estimators).

    Returns
    -------
    DataFrame
        Indexed by ``parameter`` (``theta[A]``, ...), columns ``mean, sd, q2.5, q50, q97.5``
        and, for MCMC, the four sampling columns.

    Examples
    --------
    >>> import numpy as np
    >>> from arviz_base import from_dict
    >>> rng = np.random.default_rng(0)
    >>> dt = from_dict({"posterior": {"mu": rng.normal(size=(2, 500))}})
    >>> summarize(dt).loc["mu", ["mean", "sd"]].round(1).tolist()
    [0.0, 1.0]
    """
    import arviz_stats

    post = idata["posterior"].to_dataset()
    names = var_names or summary_variables(post)
    post = post[names]
    stats = {
        "mean": post.mean(("chain", "draw")),
        "sd": post.std(("chain", "draw"), ddof=1),
        "q2.5": post.quantile(0.025, ("chain", "draw")).drop_vars("quantile"),
        "q50": post.quantile(0.5, ("chain", "draw")).drop_vars("quantile"),
        "q97.5": post.quantile(0.975, ("chain", "draw")).drop_vars("quantile"),
    }
    if mcmc:
        import warnings

        # a constant component (IV bioavailability, the zero bias of a randomised study)
        # has no between- or within-chain variance: ArviZ divides 0 by 0 and reports NaN,
        # which is the right answer, so its RuntimeWarning is not news
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            stats |= {
                "mcse_mean": arviz_stats.mcse(post, method="mean"),
                "ess_bulk": arviz_stats.ess(post, method="bulk"),
                "ess_tail": arviz_stats.ess(post, method="tail"),
                "r_hat": arviz_stats.rhat(post),
            }
    rows = {}
    for name in names:
        for label, index in _components(post[name]):
            rows[label] = [float(np.asarray(stats[c][name])[index]) for c in stats]
    table = pd.DataFrame.from_dict(rows, orient="index", columns=list(stats))
    table.index.name = "parameter"
    return table


def _components(da):
    """Yield (label, index) for every scalar component of a (chain, draw, ...) variable."""
    dims = [d for d in da.dims if d not in ("chain", "draw")]
    if not dims:
        yield da.name, ()
        return
    shape = [da.sizes[d] for d in dims]
    for index in np.ndindex(*shape):
        labels = [str(da[d].values[i]) for d, i in zip(dims, index, strict=True)]
        yield f"{da.name}[{','.join(labels)}]", index
