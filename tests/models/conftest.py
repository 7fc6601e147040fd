"""Shared fixtures and comparisons for model tests.

Reference posteriors: tests/reference/jags/reference.json (JAGS 4.3.1 through rjags 4-13,
4 chains, ESS >= 20,000 per quantity; the script and model code are beside it).
Tolerances come from Monte Carlo standard errors, not fixed constants: a posterior mean
must lie within 4 combined MCSEs of the reference (ours from ArviZ, JAGS's from coda),
and a 2.5/97.5% quantile within 4 combined quantile MCSEs.
"""

import json
from functools import cache

import numpy as np
import pandas as pd

from tests.conftest import REFERENCE


@cache
def jags_case(name: str) -> dict:
    return json.loads((REFERENCE / "jags" / "reference.json").read_text())["cases"][name]


def quantile_mcse(draws: np.ndarray, prob: float) -> float:
    """MCSE of a quantile from (chain, draw) draws, by ArviZ's method."""
    import arviz_stats
    from arviz_base import from_dict

    dt = from_dict({"posterior": {"x": np.asarray(draws)}})
    return float(arviz_stats.mcse(dt, method="quantile", prob=prob)["x"])


def assert_matches_jags(idata, ref_params: dict, names: dict[str, str], z: float = 4.0) -> None:
    """Compare posterior means and 2.5/97.5% quantiles with MCSE-based tolerances.

    ``names`` maps our variable selector ("mu", "theta[A]") to the reference's key.
    """
    import arviz_stats

    post = idata["posterior"].to_dataset()
    failures = []
    for ours, theirs in names.items():
        ref = ref_params[theirs]
        var, _, label = ours.partition("[")
        da = post[var]
        if label:
            dim = next(d for d in da.dims if d not in ("chain", "draw"))
            da = da.sel({dim: label.rstrip("]")})
        draws = da.values
        mcse = float(
            arviz_stats.mcse(
                __import__("arviz_base").from_dict({"posterior": {"x": draws}}), method="mean"
            )["x"]
        )
        tol = z * np.hypot(mcse, ref["mcse_mean"])
        if abs(draws.mean() - ref["mean"]) > tol:
            failures.append(f"{ours} mean {draws.mean():.4f} vs {ref['mean']:.4f} (tol {tol:.4f})")
        for q, key in ((0.025, "q2.5"), (0.975, "q97.5")):
            ref_se = (
                ref["sd"] * np.sqrt(q * (1 - q) / ref["ess"]) / max(_normal_density_at(q), 1e-3)
            )
            tol = z * np.hypot(quantile_mcse(draws, q), ref_se)
            got = np.quantile(draws, q)
            if abs(got - ref[key]) > tol:
                failures.append(f"{ours} {key} {got:.4f} vs {ref[key]:.4f} (tol {tol:.4f})")
    assert not failures, "; ".join(failures)


def _normal_density_at(q: float) -> float:
    """Density of a standard normal at its q-quantile (for the reference quantile's MCSE)."""
    from scipy import stats

    return float(stats.norm.pdf(stats.norm.ppf(q)))


def study_table(labels, yi, vi=None, sei=None, **covariates) -> pd.DataFrame:
    data = {"study": list(labels), "yi": yi}
    data["sei"] = np.sqrt(vi) if sei is None else sei
    return pd.DataFrame(data | covariates)
