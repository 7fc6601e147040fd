"""Simulation-based calibration of the exact normal-normal engine."""

import numpy as np
import pytest

from bayeskit.priors import parse_prior
from bayeskit.sbc import sbc_normal_normal, sbc_summary


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


def test_sbc_detects_a_miscalibrated_posterior():
    # fitting with a prior other than the one that generated the data must show up
    gen = {"mu": parse_prior("Normal(0, 2)"), "tau": parse_prior("HalfNormal(1)")}
    ranks = sbc_normal_normal(priors=gen, studies=5, replicates=200, draws=199, seed=3)
    # shift every rank of mu up, as a posterior biased low would
    ranks.loc[ranks["parameter"] == "mu", "rank"] = np.minimum(
        ranks.loc[ranks["parameter"] == "mu", "rank"] + 60, 199
    )
    summary = sbc_summary(ranks, draws=199)
    assert summary.loc["mu", "p_uniform"] < 1e-6
