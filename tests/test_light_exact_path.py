"""The exact path stays light: what a normal-normal exact fit imports, in a fresh process.

``bayeskit fit --method exact`` took 4-7 s as a whole process for an engine that takes
milliseconds, because it imported the MCMC stack, Dask's distributed and plotting. These
tests run the fit in a subprocess and list the heavy modules left in ``sys.modules``.
"""

import json
import subprocess
import sys

import pytest

from tests.conftest import ROOT

#: never needed by an exact fit, in any of its forms
MCMC_AND_PLOTS = ("pymc", "pytensor", "nutpie", "numba", "arviz_plots", "matplotlib.pyplot")
#: nor, without a run directory to write, Dask, ArviZ, xarray or scipy.stats
HEAVY = (*MCMC_AND_PLOTS, "dask", "distributed", "arviz_base", "arviz_stats", "xarray",
         "scipy.stats")  # fmt: skip

REPORT = """
import json, sys
{body}
print(json.dumps(sorted(name for name in {names!r} if name in sys.modules)))
"""


def imported(body: str, names) -> list[str]:
    """Run ``body`` in a fresh interpreter; return which of ``names`` it imported."""
    code = REPORT.format(body=body, names=tuple(names))
    done = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_an_exact_fit_and_its_summary_import_nothing_heavy():
    body = """
import bayeskit as bk
fit = bk.fit(bk.data_path("eight_schools.csv"), method="exact",
             priors={"mu": "Normal(0, 5)", "tau": "HalfCauchy(5)"})
assert fit.verdict == "pass" and round(float(fit.summary().loc["mu", "mean"]), 1) == 4.4
"""
    assert imported(body, HEAVY) == []


def test_the_command_line_exact_fit_with_json_imports_nothing_heavy():
    body = """
from typer.testing import CliRunner
from bayeskit.cli import app
args = ["fit", "models/eight_schools.toml", "--method", "exact", "--json"]
result = CliRunner().invoke(app, args)
assert result.exit_code == 0, result.output
assert json.loads(result.stdout)["summary"][0]["parameter"] == "mu"
"""
    assert imported(body, HEAVY) == []


def test_a_run_directory_of_an_exact_fit_imports_no_mcmc_and_no_pyplot(tmp_path):
    # the report draws with matplotlib's object API (Agg), and the DataTree is written
    # with xarray (which itself asks Dask for its scheduler when Dask is installed)
    body = f"""
from typer.testing import CliRunner
from bayeskit.cli import app
args = ["fit", "models/eight_schools.toml", "--method", "exact", "--out", {str(tmp_path / "run")!r}]
result = CliRunner().invoke(app, args)
assert result.exit_code == 0, result.output
"""
    assert imported(body, MCMC_AND_PLOTS) == []
    assert (tmp_path / "run" / "report.html").stat().st_size > 0
    figures = sorted(p.name for p in (tmp_path / "run" / "figures").iterdir())
    assert {"forest.png", "forest.svg", "prior_posterior.png"} <= set(figures)
    stems = [name.rsplit(".", 1)[0] for name in figures]  # PNG and SVG of every figure
    assert figures == sorted(f"{s}.{kind}" for s in set(stems) for kind in ("png", "svg"))


def test_exact_draws_are_made_when_first_read_and_are_those_of_the_seed():
    import bayeskit as bk

    fit = bk.fit(bk.data_path("eight_schools.csv"), method="exact", seed=5)
    assert fit.draw is not None  # not drawn yet
    tree = fit.idata
    assert fit.draw is None and fit.idata is tree  # drawn once, then kept
    again = fit.exact.draws(4000, seed=5, chains=4)
    assert tree.posterior["mu"].values.tolist() == again.posterior["mu"].values.tolist()
    assert tree.log_likelihood["y"].dims == ("chain", "draw", "study")


def test_a_fit_given_its_idata_keeps_it():
    import bayeskit as bk
    from bayeskit.fitting import Fit

    fit = bk.fit(bk.data_path("eight_schools.csv"), method="exact", seed=5)
    copy = Fit("tree", None, fit.family, fit.method, fit.data, fit.priors, fit.settings)
    assert copy.idata == "tree"
    copy.idata = "other"
    assert copy.idata == "other"


@pytest.mark.parametrize("text", ["HalfNormal(0.5)", "HalfCauchy(2)", "Exponential(3)",
                                  "Uniform(0.5, 4)", "LogNormal(-1, 0.7)", "Normal(1, 2)",
                                  "turner:general"])  # fmt: skip
def test_quantiles_without_scipy_stats_equal_scipy_to_the_bit(text):
    import numpy as np

    from bayeskit.priors import parse_prior

    prior = parse_prior(text)
    q = np.concatenate([[-0.5, 0.0, 1.0, 1.5, np.nan, 1e-300, 1 - 1e-16],
                        np.random.default_rng(1).uniform(size=2000)])  # fmt: skip
    if prior.family == "LogNormalTau2":
        want = np.sqrt(prior._tau2().ppf(q))
    else:
        want = prior.scipy().ppf(q)
    assert np.array_equal(prior.ppf(q), want, equal_nan=True)
