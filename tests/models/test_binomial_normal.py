"""binomial-normal against JAGS (an independent Gibbs sampler) on data with zero cells and a
double-zero study (Niel-Weise et al. 2007), and its log-density against scipy."""

import numpy as np
import pandas as pd
import pytest
from scipy import stats
from scipy.special import expit

import bayeskit as bk
from tests.models.conftest import assert_matches_jags, jags_case

NIEL = jags_case("nielweise_binomial_normal")
PRIORS = {"mu": "Normal(0, 4)", "tau": "HalfNormal(0.5)", "baseline": "Normal(0, 10)"}


def arm_table(d) -> pd.DataFrame:
    rows = []
    for i, study in enumerate(d["labels"]):
        rows.append(
            {
                "study": study,
                "arm": "treatment",
                "outcome": "infection",
                "n": d["n_treatment"][i],
                "events": d["r_treatment"][i],
                "role": "experimental",
            }
        )
        rows.append(
            {
                "study": study,
                "arm": "control",
                "outcome": "infection",
                "n": d["n_control"][i],
                "events": d["r_control"][i],
                "role": "control",
            }
        )
    return pd.DataFrame(rows)


@pytest.fixture(scope="module")
def niel_fit():
    return bk.fit(
        arm_table(NIEL["data"]),
        "binomial-normal",
        priors=PRIORS,
        draws=2000,
        tune=1000,
        chains=4,
        seed=5,
        target_accept=0.95,
    )


def test_data_have_zero_cells_and_a_double_zero_study():
    d = NIEL["data"]
    zero = (np.array(d["r_treatment"]) == 0) | (np.array(d["r_control"]) == 0)
    both = (np.array(d["r_treatment"]) == 0) & (np.array(d["r_control"]) == 0)
    assert zero.sum() >= 5 and both.sum() == 1


def test_binomial_normal_matches_jags(niel_fit):
    names = {
        "mu": "mu",
        "tau": "tau",
        "theta_new": "theta_new",
        "theta[Bach 1996]": "theta[Bach 1996]",
        "theta[Yucel 2004]": "theta[Yucel 2004]",
    }
    assert_matches_jags(niel_fit.idata, NIEL["parameters"], names)
    assert niel_fit.verdict in ("pass", "warn")  # sampling checks only


def test_binomial_normal_reports_odds_ratio_and_absolute_risk(niel_fit):
    s = niel_fit.summary()
    assert s.loc["odds_ratio", "q50"] == pytest.approx(np.exp(s.loc["mu", "q50"]), rel=1e-6)
    p0 = niel_fit.settings["baseline_risk"]
    d = NIEL["data"]
    assert p0 == pytest.approx(np.median(np.array(d["r_control"]) / np.array(d["n_control"])))
    assert s.loc["p_treatment", "q50"] == pytest.approx(
        expit(np.log(p0 / (1 - p0)) + s.loc["mu", "q50"]), rel=1e-6
    )
    assert {"events"} <= set(niel_fit.idata["log_likelihood"].data_vars)


def test_binomial_normal_logp_matches_scipy_over_a_grid(niel_fit):
    from bayeskit.families.binomial_normal import build

    model = build(niel_fit.data, niel_fit.priors, parametrization="centered")
    logp = model.compile_logp(jacobian=False)
    d = niel_fit.data
    rng = np.random.default_rng(1)
    for mu in (-3.0, -1.3, 0.0, 2.0):
        for tau in (0.05, 0.5, 2.0):
            alpha = rng.normal(-3, 1, size=len(d.study))
            theta = rng.normal(mu, tau, size=len(d.study))
            point = {
                "mu": mu,
                "tau_log__": np.log(tau),
                "alpha": alpha,
                "theta": theta,
                "theta_new_z": -0.2,
            }
            p = expit(alpha[d.study_idx] + d.treat * theta[d.study_idx])
            expected = (
                stats.norm.logpdf(mu, 0, 4)
                + stats.halfnorm.logpdf(tau, scale=0.5)
                + stats.norm.logpdf(alpha, 0, 10).sum()
                + stats.norm.logpdf(theta, mu, tau).sum()
                + stats.norm.logpdf(-0.2)
                + stats.binom.logpmf(d.events, d.n.astype(int), p).sum()
            )
            # PyMC rounds the normal log-density constant to about 3e-8 per term
            assert logp(point) == pytest.approx(
                expected, rel=1e-12, abs=5e-8 * (2 * len(d.study) + 3)
            )


def test_single_arm_study_leaves_mu_alone_with_fixed_baselines():
    table = arm_table(NIEL["data"])
    extra = pd.DataFrame(
        [
            {
                "study": "CaseSeries",
                "arm": "ketamine",
                "outcome": "infection",
                "n": 10,
                "events": 0,
                "role": "single",
            }
        ]
    )
    with_single = pd.concat([table, extra], ignore_index=True)
    a = bk.fit(table, "binomial-normal", priors=PRIORS, draws=500, tune=500, chains=2, seed=1)
    b = bk.fit(with_single, "binomial-normal", priors=PRIORS, draws=500, tune=500, chains=2, seed=1)
    assert "theta[CaseSeries]" in b.summary().index
    sa, sb = a.summary().loc["mu"], b.summary().loc["mu"]
    assert abs(sa["mean"] - sb["mean"]) < 4 * np.hypot(sa["mcse_mean"], sb["mcse_mean"]) + 0.02


@pytest.mark.parametrize("pooling", ["partial", "full"])
def test_meta_regression_on_arm_level_counts(pooling):
    table = arm_table(NIEL["data"])
    table["year"] = table["study"].str.extract(r"(\d{4})").astype(float)[0] - 2000
    f = bk.fit(
        table,
        "binomial-normal",
        priors=PRIORS,
        covariates="~ year",
        pooling=pooling,
        draws=400,
        tune=500,
        chains=2,
        seed=2,
    )
    s = f.summary()
    assert "beta[year]" in s.index
    assert f.data.X.loc["Bach 1996", "year"] == -4
    if pooling == "full":
        assert s.loc["tau", "sd"] == 0
    # the study effects are the regression line (plus heterogeneity)
    theta = f.idata["posterior"]["theta"].sel(study="Osma 2006").values.ravel()
    line = f.idata["posterior"]["mu"] + 6 * f.idata["posterior"]["beta"].sel(term="year")
    if pooling == "full":
        np.testing.assert_allclose(theta, line.values.ravel())


def test_no_pooling_rejects_covariates():
    with pytest.raises(bk.UserError, match="pooled model"):
        table = arm_table(NIEL["data"])
        bk.fit(
            table.assign(x=np.arange(len(table), dtype=float)),
            "binomial-normal",
            pooling="none",
            covariates=["x"],
            draws=10,
            tune=10,
            chains=1,
        )
