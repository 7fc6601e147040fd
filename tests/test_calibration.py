"""Simulation-based calibration of the exact normal-normal engine."""

import numpy as np
import pytest

from bayeskit.calibration import sbc_normal_normal, sbc_summary
from bayeskit.priors import parse_prior


@pytest.mark.parametrize("tau", ["HalfNormal(1)", "HalfCauchy(0.5)"])
def test_exact_engine_is_calibrated(tau):
    priors = {"mu": parse_prior("Normal(0, 2)"), "tau": parse_prior(tau)}
    ranks = sbc_normal_normal(priors=priors, studies=5, replicates=300, draws=199, seed=11)
    summary = sbc_summary(ranks, draws=199)
    # no parameter's uniformity test rejects at 1%
    assert (summary["p_uniform"] > 0.01).all(), summary
    # 95% coverage within 3 binomial SEs of 0.95 (300 replicates: SE 0.0126)
    se = np.sqrt(0.95 * 0.05 / 300)
    assert (abs(summary["coverage_95"] - 0.95) < 3 * se).all(), summary


GENERATING = {"mu": "Normal(0, 2)", "tau": "HalfNormal(1)"}


@pytest.mark.parametrize(
    "wrong, parameter",
    [({"mu": "Normal(3, 0.5)"}, "mu"), ({"tau": "HalfNormal(0.05)"}, "tau")],
    ids=["mu-prior-shifted", "tau-prior-too-narrow"],
)
def test_sbc_detects_a_miscalibrated_posterior(wrong, parameter):
    # fitting with a prior other than the one that generated the data must show up
    gen = {k: parse_prior(v) for k, v in GENERATING.items()}
    fit = gen | {k: parse_prior(v) for k, v in wrong.items()}
    settings = {"studies": 5, "replicates": 200, "draws": 199, "seed": 3}
    bad = sbc_summary(sbc_normal_normal(priors=gen, fit_priors=fit, **settings), draws=199)
    assert bad.loc[parameter, "p_uniform"] < 1e-6, bad
    assert bad.loc[parameter, "coverage_95"] < 0.85, bad
    # the same replicates (same seed: same truths and data) fitted with the right prior
    good = sbc_summary(sbc_normal_normal(priors=gen, **settings), draws=199)
    assert (good["p_uniform"] > 0.01).all(), good
    assert good.loc[parameter, "coverage_95"] > 0.9, good


# ---- MCMC calibration of every family -------------------------------------------------

import json  # noqa: E402

import pandas as pd  # noqa: E402
from typer.testing import CliRunner  # noqa: E402

from bayeskit.calibration import SBC_PARAMETERS, sbc, sbc_passes  # noqa: E402
from bayeskit.cli import app  # noqa: E402

SMALL = {"replicates": 8, "studies": 4, "iterations": 100, "tune": 150, "chains": 2}


def test_mcmc_sbc_is_reproducible_and_well_formed():
    a = sbc("binomial-normal", seed=5, scheduler="none", chunk=4, **SMALL)
    b = sbc("binomial-normal", seed=5, scheduler="none", chunk=8, **SMALL)
    pd.testing.assert_frame_equal(a, b)  # chunking does not change a replicate's seed
    assert list(a["parameter"].unique()) == list(SBC_PARAMETERS["binomial-normal"])
    assert len(a) == 8 * 3
    assert a["rank"].between(0, 99).all()
    # the truth comes from the prior: tau is positive, and differs between replicates
    tau = a.loc[a["parameter"] == "tau", "truth"]
    assert (tau > 0).all() and tau.nunique() == 8
    # coverage flags follow from the rank (central 95%: ranks 2.5..97.5 of 100)
    assert (a["covered_95"] == a["rank"].between(3, 96)).all()


def test_cli_sbc_writes_a_run_directory(tmp_path):
    out = tmp_path / "sbc"
    args = ["sbc", "--model", "normal-normal", "--method", "exact", "--replicates", "300"]
    result = CliRunner().invoke(app, [*args, "--draws", "199", "--seed", "2", "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert {p.name for p in out.iterdir()} == {
        "ranks.csv",
        "summary.csv",
        "manifest.json",
        "report.md",
        "figures",
    }
    assert (out / "figures" / "sbc.png").stat().st_size > 10_000
    summary = pd.read_csv(out / "summary.csv", index_col=0)
    assert sbc_passes(summary)
    assert summary["replicates"].eq(300).all()
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["seed"] == 2 and manifest["settings"]["model"] == "normal-normal"
    assert "| mu |" in (out / "report.md").read_text()
    # an existing folder is kept without --force
    again = CliRunner().invoke(app, [*args, "--out", str(out)])
    assert again.exit_code == 2 and "--force" in again.output


def test_cli_sbc_user_errors():
    runner = CliRunner()
    bad = runner.invoke(app, ["sbc", "--model", "nope", "--out", "x"])
    assert bad.exit_code == 2 and "nope" in bad.output
    exact = runner.invoke(app, ["sbc", "--model", "normal-arm", "--method", "exact", "--out", "x"])
    assert exact.exit_code == 2 and "exact engine" in exact.output


@pytest.mark.slow
@pytest.mark.parametrize(
    "family", ["normal-normal", "binomial-normal", "normal-arm", "exposure-response"]
)
def test_every_family_is_calibrated(family):
    """200 replicates per family (about 1-2 minutes each on two cores)."""
    ranks = sbc(family, replicates=200, seed=0, scheduler="local")
    summary = sbc_summary(ranks, draws=99)
    assert sbc_passes(summary), summary
