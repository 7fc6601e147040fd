"""The exact engine against brute-force numerical integration and JAGS.

Brute force: the joint posterior p(mu, tau | y) of the normal-normal model is integrated
with scipy's adaptive quadrature over both mu and tau (the engine integrates mu
analytically and tau on a grid, so the two share no code). JAGS references:
tests/reference/jags (independent Gibbs sampler, ESS >= 20,000 per quantity).
"""

import json

import numpy as np
import pandas as pd
import pytest
from scipy import integrate

import bayeskit as bk
from bayeskit.exact import exact_posterior
from bayeskit.families.data import StudyData
from bayeskit.priors import parse_prior
from tests.conftest import REFERENCE

Y8 = np.array([28, 8, -3, 7, -1, 1, 18, 12.0])
S8 = np.array([15, 10, 16, 11, 9, 11, 10, 18.0])


def study(y, s, X=None, measure=None):
    labels = [f"S{i}" for i in range(len(y))]
    X = pd.DataFrame(index=labels) if X is None else X
    return StudyData(
        labels,
        np.asarray(y, float),
        np.asarray(s, float),
        X,
        measure,
        pd.DataFrame({"yi": y}, index=labels),
    )


QUADRATURE = json.loads((REFERENCE / "quadrature" / "reference.json").read_text())["cases"]
PRIORS = {
    "eight_schools_normal5_halfcauchy5": ("Normal(0, 5)", "HalfCauchy(5)"),
    "eight_schools_normal100_halfnormal5": ("Normal(0, 100)", "HalfNormal(5)"),
}


def assert_matches_quadrature(got, ref):
    assert got.loc["mu", "mean"] == pytest.approx(ref["mu_mean"], rel=1e-5, abs=1e-6)
    assert got.loc["mu", "sd"] == pytest.approx(ref["mu_sd"], rel=1e-5)
    assert got.loc["tau", "mean"] == pytest.approx(ref["tau_mean"], rel=1e-4)
    assert got.loc["tau", "sd"] == pytest.approx(ref["tau_sd"], rel=1e-4)
    assert got.loc["tau", "q50"] == pytest.approx(ref["tau_median"], rel=1e-5)


@pytest.mark.parametrize("case", PRIORS)
def test_eight_schools_matches_brute_force_integration(case):
    mu_text, tau_text = PRIORS[case]
    post = exact_posterior(
        study(Y8, S8), {"mu": parse_prior(mu_text), "tau": parse_prior(tau_text)}
    )
    assert_matches_quadrature(post.summary(), QUADRATURE[case])


@pytest.mark.slow
@pytest.mark.filterwarnings("ignore::scipy.integrate.IntegrationWarning")
def test_stored_quadrature_reference_is_reproducible():
    from tests.reference.quadrature.make_quadrature_reference import CASES, brute_force

    for name, (mu_prior, tau_prior) in CASES.items():
        fresh = brute_force(Y8, S8, mu_prior, tau_prior)
        for key, value in QUADRATURE[name].items():
            assert fresh[key] == pytest.approx(value, rel=1e-9), (name, key)


def jags(case):
    ref = json.loads((REFERENCE / "jags" / "reference.json").read_text())
    return (
        ref[case]
        if isinstance(ref, dict) and case in ref
        else next(c for c in ref["cases"] if c["case"] == case)
    )


def test_full_pooling_is_the_conjugate_normal():
    # tau = 0: mu | y ~ N with precision 1/5^2 + sum(1/s^2)
    post = exact_posterior(
        study(Y8, S8),
        {"mu": parse_prior("Normal(0, 5)"), "tau": parse_prior("HalfNormal(5)")},
        pooling="full",
    )
    prec = 1 / 25 + np.sum(1 / S8**2)
    mean = np.sum(Y8 / S8**2) / prec
    got = post.summary()
    assert got.loc["mu", "mean"] == pytest.approx(mean, rel=1e-12)
    assert got.loc["mu", "sd"] == pytest.approx(prec**-0.5, rel=1e-12)
    assert got.loc["mu", "q97.5"] == pytest.approx(mean + 1.959963984540054 * prec**-0.5, rel=1e-8)
    assert got.loc["tau", "mean"] == 0
    assert got.loc["theta[S3]", "mean"] == pytest.approx(mean, rel=1e-12)


def test_no_pooling_gives_each_study_its_own_posterior():
    post = exact_posterior(study(Y8, S8), {"mu": parse_prior("Normal(0, 1000)")}, pooling="none")
    got = post.summary()
    assert "mu" not in got.index
    prec = 1 / 1000**2 + 1 / S8[0] ** 2
    assert got.loc["theta[S0]", "mean"] == pytest.approx(Y8[0] / S8[0] ** 2 / prec, rel=1e-12)
    assert got.loc["theta[S0]", "sd"] == pytest.approx(prec**-0.5, rel=1e-12)


def test_shrinkage_grows_with_the_standard_error():
    post = exact_posterior(
        study(Y8, S8), {"mu": parse_prior("Normal(0, 5)"), "tau": parse_prior("HalfCauchy(5)")}
    )
    shrink = post.shrinkage
    assert ((shrink > 0) & (shrink < 1)).all()
    order = np.argsort(S8)
    assert np.all(np.diff(shrink.to_numpy()[order]) >= -1e-12)


def test_exact_draws_reproduce_the_exact_summary():
    post = exact_posterior(
        study(Y8, S8), {"mu": parse_prior("Normal(0, 5)"), "tau": parse_prior("HalfCauchy(5)")}
    )
    dt = post.draws(40000, seed=1)
    exact = post.summary()
    mu = dt["posterior"]["mu"].values.ravel()
    theta_a = dt["posterior"]["theta"].sel(study="S0").values.ravel()
    se = exact.loc["mu", "sd"] / np.sqrt(len(mu))
    assert abs(mu.mean() - exact.loc["mu", "mean"]) < 4 * se
    assert (
        abs(theta_a.mean() - exact.loc["theta[S0]", "mean"])
        < 4 * exact.loc["theta[S0]", "sd"] / 200
    )
    tau = dt["posterior"]["tau"].values.ravel()
    assert np.quantile(tau, 0.5) == pytest.approx(exact.loc["tau", "q50"], rel=0.03)


def test_tau_density_integrates_to_one():
    post = exact_posterior(
        study(Y8, S8), {"mu": parse_prior("Normal(0, 5)"), "tau": parse_prior("HalfNormal(5)")}
    )
    dens = post.tau_density()
    assert integrate.trapezoid(dens.to_numpy(), dens.index.to_numpy()) == pytest.approx(1, abs=2e-3)


def test_exact_engine_refuses_non_normal_mu_prior():
    with pytest.raises(bk.UserError, match="mcmc"):
        exact_posterior(
            study(Y8, S8),
            {"mu": parse_prior("StudentT(3, 0, 5)"), "tau": parse_prior("HalfNormal(5)")},
        )


def test_odds_ratio_scale_is_exp_of_mu_quantiles():
    post = exact_posterior(
        study([0.5, 0.2, 0.9], [0.3, 0.4, 0.5], measure="OR"),
        {"mu": parse_prior("Normal(0, 4)"), "tau": parse_prior("HalfNormal(0.5)")},
        baseline_risk=0.2,
    )
    got = post.summary()
    for q in ("q2.5", "q50", "q97.5"):
        assert got.loc["odds_ratio", q] == pytest.approx(np.exp(got.loc["mu", q]), rel=1e-10)
        p1 = 1 / (1 + np.exp(-(np.log(0.25) + got.loc["mu", q])))
        assert got.loc["p_treatment", q] == pytest.approx(p1, rel=1e-10)
        assert got.loc["risk_difference", q] == pytest.approx(p1 - 0.2, rel=1e-9)


# Published: bayesmeta 3.4 vignette (Röver 2020, J Stat Softw 93(6)), "A simple example":
# eight schools with Rubin's unrounded data, mu ~ N(0, 50), tau ~ HalfCauchy(25); printed
# by bayesmeta's own numerical integration (tests/reference/published/README.md, section 1a).
RUBIN_Y = [28.39, 7.94, -2.75, 6.82, -0.64, 0.63, 18.01, 12.16]
RUBIN_S = [14.9, 10.2, 16.3, 11.0, 9.4, 11.4, 10.4, 17.6]


def test_eight_schools_matches_bayesmeta_vignette():
    post = exact_posterior(
        study(RUBIN_Y, RUBIN_S),
        {"mu": parse_prior("Normal(0, 50)"), "tau": parse_prior("HalfCauchy(25)")},
    )
    got = post.summary()
    published = {
        ("tau", "mean"): 5.884511,
        ("tau", "q50"): 4.758539,
        ("tau", "sd"): 4.869904,
        ("mu", "mean"): 7.985729,
        ("mu", "q50"): 7.962961,
        ("mu", "sd"): 4.995762,
        ("theta_new", "mean"): 7.985729,
        ("theta_new", "sd"): 9.126767,
        ("tau", "q2.5"): 0.2199559,
        ("tau", "q97.5"): 18.0531718,
    }
    for (name, col), value in published.items():
        assert got.loc[name, col] == pytest.approx(value, rel=1e-4), (name, col)
    assert post.tau_quantile(np.array([0.95]))[0] == pytest.approx(15.16589, rel=1e-4)


@pytest.mark.parametrize(("y", "s"), [([1e308, 1.0], [1.0, 1.0]), ([1.0, 2.0], [1e200, 1.0])])
def test_overflowing_data_is_a_user_error_not_an_index_error(y, s):
    # bk.effects refuses such data before a fit; the engine guards library callers too
    data = study(np.array(y), np.array(s))
    priors = {"mu": parse_prior("Normal(0, 1)"), "tau": parse_prior("HalfNormal(1)")}
    with pytest.raises(bk.UserError, match="overflow double precision; rescale"):
        exact_posterior(data, priors)
