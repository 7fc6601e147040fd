"""Small-k guidance: with five studies or fewer the report weighs the tau prior (issue 14)."""

import json

import pandas as pd
import pytest
from typer.testing import CliRunner

import bayeskit as bk
from bayeskit.cli import app
from bayeskit.priors import heterogeneity_prior
from bayeskit.smallk import small_k_table, tau_overlap_draws, tau_overlap_exact
from tests.models.conftest import jags_case, study_table

BCG = jags_case("bcg_nn")["data"]
PRIORS = {"mu": "Normal(0, 4)", "tau": "HalfNormal(1)"}
runner = CliRunner()


def bcg_csv(path, k: int):
    table = study_table(BCG["labels"][:k], BCG["yi"][:k], BCG["vi"][:k], measure=["RR"] * k)
    table.to_csv(path, index=False)
    return path


def fit_run(tmp_path, k: int):
    out = tmp_path / f"k{k}"
    args = ["fit", "--data", str(bcg_csv(tmp_path / f"bcg{k}.csv", k)), "--out", str(out)]
    for name, prior in PRIORS.items():
        args += ["--prior", f"{name}={prior}"]
    result = runner.invoke(app, [*args, "--seed", "1", "--quiet"])
    assert result.exit_code == 0, result.output
    return out


def test_three_studies_get_the_sentence_and_the_table(tmp_path):
    out = fit_run(tmp_path, 3)
    report = (out / "report.md").read_text()
    assert "With so few studies the prior on tau" in report
    assert "## Alternative heterogeneity priors" in report
    table = pd.read_csv(out / "small_k.csv")
    assert table["prior"].tolist() == [
        "as fitted",
        "rover:logor",
        "rover:logor-conservative",
        "turner:general",
    ]
    assert "HalfNormal(sigma=0.5)" in report and "LogNormalTau2(mu=-2.56, sigma=1.74)" in report
    # the sentence quotes the overlap of the fit's own prior and posterior
    overlap = table["tau_overlap"].iloc[0]
    assert f"overlap by {overlap:.0%}" in report.replace("\n", " ")
    html = (out / "report.html").read_text()
    assert 'id="small-k"' in html
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["method"] == "exact" and manifest["settings"]["engine"] == "exact"


def test_eight_studies_get_neither(tmp_path):
    out = fit_run(tmp_path, 8)
    report = (out / "report.md").read_text()
    assert "With so few studies" not in report
    assert "Alternative heterogeneity priors" not in report
    assert not (out / "small_k.csv").exists()


@pytest.mark.parametrize("name", ["rover:logor", "rover:logor-conservative", "turner:general"])
def test_alternative_rows_equal_a_direct_exact_fit(tmp_path, name):
    table = study_table(BCG["labels"][:3], BCG["yi"][:3], BCG["vi"][:3], measure=["RR"] * 3)
    rows = small_k_table(bk.fit(table, priors=PRIORS)).set_index("prior")
    direct = bk.fit(table, priors=PRIORS | {"tau": heterogeneity_prior(name)}, method="exact")
    s = direct.summary()
    for q in ("q50", "q2.5", "q97.5"):
        assert rows.loc[name, f"mu_{q}"] == pytest.approx(s.loc["mu", q], rel=1e-12)
        assert rows.loc[name, f"theta_new_{q}"] == pytest.approx(s.loc["theta_new", q], rel=1e-12)
    assert rows.loc[name, "tau_overlap"] == pytest.approx(tau_overlap_exact(direct.exact))
    assert rows.loc[name, "tau_prior"] == str(heterogeneity_prior(name))


def test_overlap_is_near_one_when_the_data_say_nothing_and_small_when_they_do():
    # one huge standard error: the posterior of tau is its prior
    vague = study_table(["A", "B"], [0.1, -0.1], sei=[100.0, 100.0])
    f = bk.fit(vague, priors=PRIORS)
    assert tau_overlap_exact(f.exact) == pytest.approx(1.0, abs=0.01)
    # precise, very different studies: the data move tau far above the prior
    sharp = study_table(list("ABCDE"), [-5.0, -2.5, 0.0, 2.5, 5.0], sei=[0.05] * 5)
    assert tau_overlap_exact(bk.fit(sharp, priors=PRIORS).exact) < 0.1
    mild = study_table(list("ABCDE"), [-3.0, -1.5, 0.0, 1.5, 3.0], sei=[0.05] * 5)
    assert 0.1 < tau_overlap_exact(bk.fit(mild, priors=PRIORS).exact) < 0.4
    # from MCMC-like draws the same number, up to binning
    draws = bk.fit(vague, priors=PRIORS, draws=5000).idata.posterior["tau"].values
    assert tau_overlap_draws(draws, f.priors["tau"]) == pytest.approx(1.0, abs=0.05)


def test_a_raw_scale_gets_the_sentence_but_no_catalogued_priors():
    schools = bk.load_evidence(bk.data_path("eight_schools.csv"))
    three = schools[schools["study"].isin(["A", "B", "C"])]
    table = small_k_table(bk.fit(three, priors={"tau": "HalfCauchy(5)"}))
    assert table["prior"].tolist() == ["as fitted"]
