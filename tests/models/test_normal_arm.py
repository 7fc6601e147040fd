"""normal-arm against JAGS on Normand (1999) length-of-stay data, and its log-density."""

import numpy as np
import pandas as pd
import pytest
from scipy import stats

import bayeskit as bk
from tests.models.conftest import assert_matches_jags, jags_case

NORMAND = jags_case("normand_normal_arm")
PRIORS = {"mu": "Normal(0, 50)", "tau": "HalfNormal(25)", "baseline": "Normal(0, 1000)"}


def arm_table(d) -> pd.DataFrame:
    rows = []
    for i, study in enumerate(d["labels"]):
        for arm, role in (("treatment", "experimental"), ("control", "control")):
            rows.append(
                {
                    "study": study,
                    "arm": arm,
                    "outcome": "length_of_stay",
                    "n": d[f"n_{arm}"][i],
                    "mean": d[f"m_{arm}"][i],
                    "sd": d[f"sd_{arm}"][i],
                    "role": role,
                }
            )
    return pd.DataFrame(rows)


@pytest.fixture(scope="module")
def normand_fit():
    return bk.fit(
        arm_table(NORMAND["data"]),
        "normal-arm",
        priors=PRIORS,
        draws=2000,
        tune=1000,
        chains=4,
        seed=9,
        target_accept=0.95,
    )


def test_normal_arm_matches_jags(normand_fit):
    assert_matches_jags(
        normand_fit.idata,
        NORMAND["parameters"],
        {"mu": "mu", "tau": "tau", "theta_new": "theta_new"},
    )


def test_normal_arm_logp_matches_scipy(normand_fit):
    from bayeskit.families.normal_arm import build

    model = build(normand_fit.data, normand_fit.priors, parametrization="centered")
    logp = model.compile_logp(jacobian=False)
    d = normand_fit.data
    rng = np.random.default_rng(2)
    for mu in (-40.0, -14.5, 0.0, 30.0):
        for tau in (1.0, 27.0, 80.0):
            alpha = rng.normal(50, 20, size=len(d.study))
            theta = rng.normal(mu, tau, size=len(d.study))
            point = {
                "mu": mu,
                "tau_log__": np.log(tau),
                "alpha": alpha,
                "theta": theta,
                "theta_new_z": 0.1,
            }
            expected = (
                stats.norm.logpdf(mu, 0, 50)
                + stats.halfnorm.logpdf(tau, scale=25)
                + stats.norm.logpdf(alpha, 0, 1000).sum()
                + stats.norm.logpdf(theta, mu, tau).sum()
                + stats.norm.logpdf(0.1)
                + stats.norm.logpdf(
                    d.mean, alpha[d.study_idx] + d.treat * theta[d.study_idx], d.se
                ).sum()
            )
            # PyMC rounds the normal log-density constant to about 3e-8 per term
            assert logp(point) == pytest.approx(
                expected, rel=1e-12, abs=5e-8 * (3 * len(d.study) + 3 + len(d.arm))
            )
