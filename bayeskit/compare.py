"""Comparing fits of the same data by PSIS-LOO (Vehtari, Gelman & Gabry 2017).

The fits' pointwise log-likelihoods are per study with the study effects integrated
out (:mod:`bayeskit.loo`), so the comparison is leave-one-study-out: which model
predicts a left-out study better.
"""

from __future__ import annotations

import io
import json
import warnings
from pathlib import Path

import pandas as pd

from bayeskit.errors import UserError
from bayeskit.outputs import write_file


def compare_runs(runs: list[str | Path]) -> pd.DataFrame:
    """LOO comparison table of run directories fitted to the same data.

    Parameters
    ----------
    runs : list of paths
        Run directories written by ``bayeskit fit`` (MCMC, with a log_likelihood group).

    Returns
    -------
    DataFrame
        One row per run (named by its folder), best first, with ArviZ's columns
        (``attrs["loo"]``: ``leave-one-study-out`` or ``conditional``):
        ``rank``, ``elpd_diff`` (this run minus the best, so 0 or negative), ``dse``,
        ``p_worse``, ``diag_diff``, ``diag_elpd``, ``p``, ``elpd``, ``se`` and ``weight``
        (stacking).

    Examples
    --------
    Two hand-made run directories whose models centre the same eight observations at
    1 and at 3:

    >>> import tempfile
    >>> import numpy as np
    >>> from arviz_base import from_dict
    >>> from scipy import stats
    >>> rng = np.random.default_rng(0)
    >>> y, base = rng.normal(1.0, 1.0, size=8), Path(tempfile.mkdtemp())
    >>> for name, centre in [("near", 1.0), ("far", 3.0)]:
    ...     mu = rng.normal(centre, 0.3, size=(2, 100, 1))
    ...     tree = from_dict({"posterior": {"mu": mu[..., 0]},
    ...                       "log_likelihood": {"y": stats.norm.logpdf(y, mu, 1.0)}})
    ...     (base / name).mkdir()
    ...     tree.to_netcdf(base / name / "posterior.nc", engine="h5netcdf")
    ...     _ = (base / name / "manifest.json").write_text('{"data": {}}')
    >>> table = compare_runs([base / "far", base / "near"])
    >>> table.index.tolist(), table["rank"].tolist()
    (['near', 'far'], [0, 1])
    >>> bool(table.loc["far", "elpd_diff"] < 0)  # worse than the best
    True
    """
    import arviz_stats

    from bayeskit.loo import loo_kind
    from bayeskit.report.run import read_json_object, read_posterior

    if len(runs) < 2:
        raise UserError("compare needs at least two run directories")
    trees, hashes = {}, {}
    for run in map(Path, runs):
        manifest, nc = run / "manifest.json", run / "posterior.nc"
        if not manifest.is_file() or not nc.is_file():
            raise UserError(f"{run} is not a run directory (no manifest.json / posterior.nc)")
        hashes[run.name] = read_json_object(manifest).get("data")
        tree = read_posterior(nc)
        if "log_likelihood" not in tree.children:
            raise UserError(
                f"{run} has no pointwise log-likelihood (an exact-engine run?): "
                "refit with --method mcmc to compare by LOO"
            )
        if run.name in trees:
            raise UserError(f"two runs are called {run.name!r}; give them different folders")
        trees[run.name] = tree
    kinds = {name: loo_kind(tree) for name, tree in trees.items()}
    if len(set(kinds.values())) > 1:
        listed = ", ".join(f"{name}: {kind}" for name, kind in kinds.items())
        raise UserError(
            f"the runs' LOO answer different questions ({listed}): a leave-one-study-out "
            "log-likelihood and one conditional on each study's own effects are not "
            "comparable; refit the older or no-pooling runs with a pooled model"
        )
    if len({json.dumps(h, sort_keys=True) for h in hashes.values()}) > 1:
        raise UserError(
            "the runs were fitted to different data (their data hashes differ); "
            "LOO compares models of the same observations only"
        )
    shapes = {
        n: {v: t["log_likelihood"][v].shape[2:] for v in t["log_likelihood"].data_vars}
        for n, t in trees.items()
    }
    if len({json.dumps({k: list(v) for k, v in s.items()}) for s in shapes.values()}) > 1:
        raise UserError(
            "the runs' observations differ (different likelihood variables or "
            f"shapes: {shapes}); LOO compares models of the same observations"
        )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # Pareto k warnings: in the table
        table = arviz_stats.compare(trees, round_to="none")
    table.index.name = "run"
    table.attrs["loo"] = next(iter(kinds.values()))
    return table


CAVEATS = {
    "N < 100": "fewer than 100 observations: the normal approximation behind dse and "
    "p_worse is poorly calibrated; read elpd_diff against dse, not as a probability",
    "|elpd_diff| < 4": "the models predict almost equally well (|elpd_diff| < 4): the "
    "difference is within noise",
}


def caveats(table: pd.DataFrame) -> list[str]:
    """Say in words what ArviZ's ``diag_diff`` and ``diag_elpd`` columns flag.

    Examples
    --------
    >>> table = pd.DataFrame({"diag_diff": ["", "N < 100"], "diag_elpd": ["", "2 k̂ > 0.70"]},
    ...                      index=["full", "partial"])
    >>> for line in caveats(table):
    ...     print(line)
    caveat: partial: fewer than 100 observations: the normal approximation behind dse and
    p_worse is poorly calibrated; read elpd_diff against dse, not as a probability
    caveat: partial: 2 k̂ > 0.70: PSIS-LOO is unreliable for those observations and the
    comparison may favour this run; check them (bayeskit sensitivity leaves each out)
    """

    def text(value) -> str:
        return "" if value is None or pd.isna(value) else str(value).strip()

    out = []
    for run, row in table.iterrows():
        if diff := text(row.get("diag_diff")):
            out.append(f"caveat: {run}: {CAVEATS.get(diff, diff)}")
        if elpd := text(row.get("diag_elpd")):
            out.append(
                f"caveat: {run}: {elpd}: PSIS-LOO is unreliable for those observations and "
                "the comparison may favour this run; check them (bayeskit sensitivity leaves "
                "each out)"
            )
    return out


def plot_comparison(table: pd.DataFrame, path: str | Path) -> None:
    """ELPD of each run with its SE, and best + ``elpd_diff`` (its SE) beside it.

    ``elpd_diff`` is ArviZ's: this run's ELPD minus the best run's (0 or negative), so
    the difference marker of a worse run sits left of the best run's ELPD.

    Examples
    --------
    >>> import tempfile
    >>> table = pd.DataFrame({"elpd": [-9.6, -20.9], "se": [0.9, 3.0],
    ...                       "elpd_diff": [0.0, -11.3], "dse": [0.0, 3.5]},
    ...                      index=["near", "far"])
    >>> path = Path(tempfile.mkdtemp()) / "compare.png"
    >>> plot_comparison(table, path)
    >>> path.stat().st_size > 0
    True
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    fig, ax = plt.subplots(figsize=(6, 0.6 * len(table) + 1.5))
    y = np.arange(len(table))[::-1]
    ax.errorbar(table["elpd"], y, xerr=table["se"], fmt="o", color="#1f4e79", label="elpd")
    ax.errorbar(
        table["elpd"].iloc[0] + table["elpd_diff"],  # elpd_diff <= 0: left of the best
        y - 0.15,
        xerr=table["dse"],
        fmt="^",
        color="#b2182b",
        label="difference from best (its SE)",
    )
    ax.set_yticks(y, table.index)
    ax.set_xlabel("expected log predictive density (PSIS-LOO)")
    ax.legend(fontsize=8)
    fig.tight_layout()
    image = io.BytesIO()
    fig.savefig(image, format="png", dpi=110)
    plt.close(fig)
    write_file(path, image.getvalue())
