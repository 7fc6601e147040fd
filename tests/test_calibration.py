"""Simulation-based calibration of the exact normal-normal engine."""

from fractions import Fraction

import numpy as np
import pytest

from bayeskit.calibration import covered, expected_coverage, sbc_normal_normal, sbc_summary
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


def inside(rank: int, draws: int, level: float) -> bool:
    """Whether rank ``rank`` of ``draws`` falls in the central ``level`` interval.

    Under calibration the rank r of the truth among L draws is uniform on 0..L: the truth
    falls in the r-th of L + 1 equally likely gaps, whose midpoint is (r + 1/2) / (L + 1).
    Exact fractions, independently of bayeskit.
    """
    level = Fraction(level).limit_denominator(1000)
    return (1 - level) / 2 < Fraction(2 * rank + 1, 2 * (draws + 1)) < (1 + level) / 2


def ranks_inside(draws: int, level: float) -> Fraction:
    """Share of the draws + 1 equally likely ranks inside the central interval."""
    return Fraction(sum(inside(r, draws, level) for r in range(draws + 1)), draws + 1)


@pytest.mark.parametrize("draws", [9, 39, 99, 199, 999, 57, 150])
@pytest.mark.parametrize("level", [0.5, 0.8, 0.95])
def test_expected_coverage_is_the_share_of_equally_likely_ranks_inside(draws, level):
    assert expected_coverage(draws, level) == pytest.approx(float(ranks_inside(draws, level)))


def test_coverage_is_nominal_exactly_when_the_tails_hold_whole_ranks():
    # 199 draws: 200 ranks, 5 in each 2.5% tail; 99 draws: the "95%" interval holds 94
    assert ranks_inside(199, 0.95) == Fraction(95, 100)
    assert ranks_inside(99, 0.95) == Fraction(94, 100)
    assert all(expected_coverage(199, level) == level for level in (0.5, 0.8, 0.95))


@pytest.mark.parametrize("draws", [99, 199])
def test_coverage_of_exchangeable_draws_matches_the_derived_expectation(draws):
    # a perfectly calibrated posterior: the truth and the draws are exchangeable
    rng = np.random.default_rng(draws)
    reps = 40_000
    sample = rng.normal(size=(reps, draws + 1))
    rank = (sample[:, 1:] < sample[:, :1]).sum(1)
    hit = covered(rank, draws, 0.95).mean()
    se = np.sqrt(0.95 * 0.05 / reps)  # about 0.0011
    assert abs(hit - float(ranks_inside(draws, 0.95))) < 4 * se
    if draws == 99:  # the nominal 0.95 is not what 99 draws give: 9 SEs away
        assert abs(hit - 0.95) > 4 * se


def test_summary_and_pass_rule_use_the_derived_coverage():
    # 100 replicates at each rank of 0..99: coverage is exactly the derived 0.94
    ranks = pd.DataFrame({"parameter": "mu", "rank": np.tile(np.arange(100), 100)})
    for level in (0.5, 0.8, 0.95):
        ranks[f"covered_{int(level * 100)}"] = covered(ranks["rank"], 99, level)
    summary = sbc_summary(ranks, draws=99)
    assert summary.loc["mu", "coverage_95"] == pytest.approx(0.94)
    assert summary.loc["mu", "expected_95"] == pytest.approx(float(ranks_inside(99, 0.95)))
    assert sbc_passes(summary)
    # with the old fixed 0.95 this perfect calibration would be 0.01 / 0.0024 = 4 MCSE off
    assert abs(0.94 - 0.95) > 3 * summary.loc["mu", "coverage_95_mcse"]
    # a coverage 4 MCSE below the expectation fails
    low = summary.assign(coverage_95=0.94 - 4 * summary["coverage_95_mcse"])
    assert not sbc_passes(low)


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
    # coverage flags follow from the rank (its gap's midpoint in the central interval)
    assert (a["covered_95"] == [inside(r, 99, 0.95) for r in a["rank"]]).all()


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
    # 199 draws: the derived coverage of the central 95% interval is exactly 0.95
    assert summary["expected_95"].eq(0.95).all()
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
    "family",
    ["normal-normal", "binomial-normal", "normal-arm", "exposure-response", "normal-multilevel"],
)
def test_every_family_is_calibrated(family):
    """200 replicates per family (about 1-2 minutes each on two cores)."""
    ranks = sbc(family, replicates=200, seed=0, scheduler="local")
    summary = sbc_summary(ranks, draws=99)
    assert sbc_passes(summary), summary
