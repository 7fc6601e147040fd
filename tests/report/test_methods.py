"""methods.md: the methods and results of a run, as a journal's methods section.

Eight schools from its spec (exact engine) and a BCG meta-regression on absolute latitude
(Colditz et al. 1994; metafor's ``dat.bcg``); the ketamine specs' methods.md is checked
in tests/cli/test_ketamine_specs.py, on the runs that test already makes.
"""

import hashlib
import re
from importlib.metadata import version

import pandas as pd
import pytest
from typer.testing import CliRunner

import bayeskit as bk
from bayeskit.cli import app
from bayeskit.rundir import write_run
from tests.conftest import DATA, ROOT

# metafor's dat.bcg: absolute latitude of each trial, in the order of bcg_RR.csv
ABLAT = [44, 55, 42, 52, 13, 44, 19, 13, 27, 42, 18, 33, 33]


def one_paragraph(text: str) -> str:
    return " ".join(text.split())


@pytest.fixture(scope="module")
def schools(tmp_path_factory):
    out = tmp_path_factory.mktemp("methods") / "schools"
    spec = ROOT / "models" / "eight_schools.toml"
    result = CliRunner().invoke(app, ["fit", str(spec), "--out", str(out), "--quiet"])
    assert result.exit_code == 0, result.output
    return out


def test_eight_schools_methods_state_data_model_priors_engine_software(schools):
    text = (schools / "methods.md").read_text(encoding="utf-8")
    assert text.startswith("# Methods and results: eight_schools\n")
    for heading in ("## Methods", "## Results"):
        assert f"\n{heading}\n" in text
    flat = one_paragraph(text)
    digest = hashlib.sha256((DATA / "eight_schools.csv").read_bytes()).hexdigest()
    assert f"eight_schools.csv (SHA-256 {digest})" in flat
    assert "Data: 8 studies, on the mean difference scale." in flat
    assert "y_i ~ Normal(theta_i, se_i)" in flat and "theta_i ~ Normal(mu, tau)" in flat
    assert (
        "Priors: mu ~ Normal(mu=0, sigma=5) (as given for this analysis); "
        "tau ~ HalfCauchy(beta=5) (as given for this analysis)." in flat
    )
    assert "beta ~" not in flat  # no covariates: the family's beta slot is no prior here
    assert "exact engine" in flat and "no Monte Carlo error" in flat
    assert f"pymc {version('pymc')}" in flat and f"bayeskit {bk.__version__}" in flat
    # results: the exact posterior of mu under the spec's priors (4.42, -2.17 to 10.9)
    assert "the pooled effect (mu, mean difference) is 4.42 (95% credible interval -2.17 to" in (
        flat
    )


def test_report_has_the_methods_section_and_names_priors_in_its_headline(schools):
    html = (schools / "report.html").read_text(encoding="utf-8")
    assert '<section id="methods">' in html
    headline = re.search(r'<div class="headline">(.*?)</div>', html, re.S).group(1)
    assert "Priors: mu ~ Normal(mu=0, sigma=5); tau ~ HalfCauchy(beta=5)." in headline
    md = (schools / "report.md").read_text(encoding="utf-8")
    assert "\n## Methods\n" in md and "Priors: mu ~ Normal(mu=0, sigma=5)" in md
    manifest = (schools / "manifest.json").read_text(encoding="utf-8")
    assert '"methods.md"' in manifest  # hashed with the run's other outputs


def test_bcg_meta_regression_methods(tmp_path):
    bcg = pd.read_csv(ROOT / "tests" / "reference" / "escalc" / "bcg_RR.csv")
    table = pd.DataFrame(
        {"study": bcg["study"], "yi": bcg["yi"], "sei": bcg["vi"] ** 0.5, "ablat": ABLAT}
    )
    fit = bk.fit(
        table,
        method="exact",
        measure="RR",
        covariates=["ablat"],
        priors={"tau": "rover:logor"},
    )
    out = write_run(fit, tmp_path / "bcg")
    flat = one_paragraph((out / "methods.md").read_text(encoding="utf-8"))
    assert "Data: 13 studies, on the log risk ratio scale, with study-level covariates ablat." in (
        flat
    )
    assert "theta_i ~ Normal(mu + x_i'beta, tau)" in flat
    assert "a meta-regression on ablat, mu being the effect at their reference levels" in flat
    # tau as given (a named catalogue prior); mu and beta bayeskit's defaults
    assert "tau ~ HalfNormal(sigma=0.5) (as given for this analysis" in flat
    assert re.search(r"mu ~ Normal\(mu=0, sigma=4\) \(bayeskit's default", flat), flat
    assert re.search(r"beta ~ Normal\([^)]*\) \(bayeskit's default", flat), flat
    assert "Results" in (out / "methods.md").read_text(encoding="utf-8")
