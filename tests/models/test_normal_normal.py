"""normal-normal: eight schools against JAGS and the exact engine; exact vs MCMC on four
data sets (including one with two studies and one meta-regression); model log-density
against scipy over a grid."""

import numpy as np
import pytest
from scipy import stats

import bayeskit as bk
from tests.models.conftest import assert_matches_jags, jags_case, study_table

EIGHT = jags_case("eight_schools_nn")
BCG = jags_case("bcg_nn")
TWO = jags_case("two_study_nn")
REG = jags_case("bcg_nn_meta_regression")


def eight_schools():
    d = EIGHT["data"]
    return study_table(d["labels"], d["y"], sei=d["sigma"])


@pytest.fixture(scope="module")
def eight_mcmc():
    return bk.fit(
        eight_schools(),
        method="mcmc",
        priors={"mu": "Normal(0, 5)", "tau": "HalfCauchy(5)"},
        parametrization="noncentered",
        draws=2000,
        tune=1000,
        chains=4,
        seed=11,
        target_accept=0.95,
    )


def test_eight_schools_mcmc_matches_jags(eight_mcmc):
    names = {
        "mu": "mu",
        "tau": "tau",
        "theta_new": "theta_new",
        **{f"theta[{s}]": f"theta[{s}]" for s in "ABCDEFGH"},
    }
    assert_matches_jags(eight_mcmc.idata, EIGHT["parameters"], names)


def test_eight_schools_exact_matches_jags():
    ex = bk.fit(
        eight_schools(), method="exact", priors={"mu": "Normal(0, 5)", "tau": "HalfCauchy(5)"}
    ).summary()
    for name in ("mu", "tau", "theta[A]", "theta_new"):
        ref = EIGHT["parameters"][name]
        assert abs(ex.loc[name, "mean"] - ref["mean"]) < 4 * ref["mcse_mean"], name
        assert ex.loc[name, "sd"] == pytest.approx(ref["sd"], rel=0.01), name


def test_eight_schools_fit_has_every_group_and_quantity(eight_mcmc):
    groups = set(eight_mcmc.idata.children)
    assert {
        "posterior",
        "posterior_predictive",
        "log_likelihood",
        "sample_stats",
        "observed_data",
        "constant_data",
        "prior",
    } <= groups
    summary = eight_mcmc.summary()
    assert {"mu", "tau", "theta[A]", "theta[H]", "theta_new"} <= set(summary.index)
    assert list(summary.columns) == [
        "mean",
        "sd",
        "q2.5",
        "q50",
        "q97.5",
        "mcse_mean",
        "ess_bulk",
        "ess_tail",
        "r_hat",
    ]
    assert eight_mcmc.model is not None and "theta" in eight_mcmc.model.named_vars


def exact_vs_mcmc(table, priors, covariates=None, seed=3):
    kwargs = {"priors": priors, "covariates": covariates}
    ex = bk.fit(table, method="exact", **kwargs).summary()
    fit = bk.fit(
        table,
        method="mcmc",
        draws=4000,
        tune=1500,
        chains=4,
        seed=seed,
        target_accept=0.95,
        **kwargs,
    )
    return ex, with_tail_mcse(fit)


def with_tail_mcse(fit):
    """The fit's summary with ArviZ's Monte Carlo SEs of the 2.5% and 97.5% points."""
    import arviz_stats as azs

    summary = fit.summary()
    post = fit.idata.posterior
    for name in summary.index:
        var, _, label = name.partition("[")
        if var not in post:
            continue
        draws = post[var]
        if label:
            dim = next(d for d in draws.dims if d not in ("chain", "draw"))
            draws = draws.sel({dim: label.rstrip("]")})
        for q, p in (("q2.5", 0.025), ("q97.5", 0.975)):
            summary.loc[name, f"mcse_{q}"] = float(azs.mcse(draws, method="quantile", prob=p))
    return summary


def assert_agree(ex, mc, names):
    """Means within 0.1 exact SD; tail points within 0.15 SD or 3 Monte Carlo SEs.

    At 16,000 draws the MCSE of a 2.5% or 97.5% point is 0.03-0.06 SD, but on two or
    three studies the tail of tau (and so of mu and theta_new) is heavy and it reaches
    0.05-0.1 SD: a flat 0.15 SD would fail correct fits by chance.
    """
    for name in names:
        sd = ex.loc[name, "sd"]
        assert abs(mc.loc[name, "mean"] - ex.loc[name, "mean"]) < 0.1 * sd, name
        for q in ("q2.5", "q97.5"):
            tolerance = max(0.15 * sd, 3 * mc.loc[name].get(f"mcse_{q}", 0.0))
            assert abs(mc.loc[name, q] - ex.loc[name, q]) < tolerance, (name, q)


def test_exact_and_mcmc_agree_on_eight_schools(eight_mcmc):
    ex = bk.fit(
        eight_schools(), method="exact", priors={"mu": "Normal(0, 5)", "tau": "HalfCauchy(5)"}
    ).summary()
    assert_agree(ex, eight_mcmc.summary(), ["mu", "tau", "theta[A]", "theta[C]", "theta_new"])


def test_exact_and_mcmc_agree_on_bcg():
    d = BCG["data"]
    ex, mc = exact_vs_mcmc(
        study_table(d["labels"], d["yi"], d["vi"]), {"mu": "Normal(0, 4)", "tau": "HalfNormal(0.5)"}
    )
    assert_agree(ex, mc, ["mu", "tau", "theta_new"])
    assert (
        abs(ex.loc["mu", "mean"] - BCG["parameters"]["mu"]["mean"])
        < 4 * BCG["parameters"]["mu"]["mcse_mean"]
    )


def test_exact_and_mcmc_agree_on_two_studies():
    d = TWO["data"]
    ex, mc = exact_vs_mcmc(
        study_table(d["labels"], d["yi"], d["vi"]), {"mu": "Normal(0, 4)", "tau": "HalfNormal(0.5)"}
    )
    assert len(ex.filter(like="theta[", axis=0)) == 2
    assert_agree(ex, mc, ["mu", "tau", "theta_new"])
    for name in ("mu", "tau", "theta_new"):
        ref = TWO["parameters"][name]
        assert abs(ex.loc[name, "mean"] - ref["mean"]) < 4 * ref["mcse_mean"], name


def test_meta_regression_slope_agrees_with_exact_engine_and_jags():
    d = REG["data"]
    table = study_table(d["labels"], d["yi"], d["vi"], ablat=d["ablat"])
    ex, mc = exact_vs_mcmc(
        table,
        {"mu": "Normal(0, 10)", "beta": "Normal(0, 1)", "tau": "HalfNormal(0.5)"},
        covariates=["ablat"],
    )
    assert_agree(ex, mc, ["mu", "beta[ablat]", "tau"])
    for ours, theirs in (("mu", "b0"), ("beta[ablat]", "b1"), ("tau", "tau")):
        ref = REG["parameters"][theirs]
        assert abs(ex.loc[ours, "mean"] - ref["mean"]) < 4 * ref["mcse_mean"] + 1e-4, ours
        assert ex.loc[ours, "sd"] == pytest.approx(ref["sd"], rel=0.02), ours


def test_model_logp_matches_scipy_over_a_grid():
    table = eight_schools()
    f = bk.fit(table, method="exact", priors={"mu": "Normal(0, 5)", "tau": "HalfCauchy(5)"})
    from bayeskit.families.normal_normal import build

    model = build(f.data, f.priors, parametrization="centered")
    logp = model.compile_logp(jacobian=False)
    y, s = np.array(EIGHT["data"]["y"], float), np.array(EIGHT["data"]["sigma"], float)
    rng = np.random.default_rng(0)
    for mu in (-10.0, 0.0, 4.4, 25.0):
        for tau in (0.01, 1.0, 3.5, 40.0):
            theta = rng.normal(mu, tau, size=8)
            point = {"mu": mu, "tau_log__": np.log(tau), "theta": theta, "theta_new_z": 0.3}
            expected = (
                stats.norm.logpdf(mu, 0, 5)
                + stats.halfcauchy.logpdf(tau, scale=5)
                + stats.norm.logpdf(theta, mu, tau).sum()
                + stats.norm.logpdf(y, theta, s).sum()
                + stats.norm.logpdf(0.3)
            )
            # PyMC rounds the normal log-density constant to about 3e-8 per term
            assert logp(point) == pytest.approx(expected, rel=1e-12, abs=5e-8 * (len(y) * 2 + 4))


def test_full_and_no_pooling_bracket_partial_pooling():
    table = eight_schools()
    pri = {"mu": "Normal(0, 20)", "tau": "HalfCauchy(5)"}
    none = bk.fit(table, method="exact", pooling="none", priors={"mu": "Normal(0, 20)"}).summary()
    part = bk.fit(table, method="exact", priors=pri).summary()
    full = bk.fit(table, method="exact", pooling="full", priors=pri).summary()
    # school A: its own estimate (28) > partial pooling > complete pooling
    a = [none.loc["theta[A]", "mean"], part.loc["theta[A]", "mean"], full.loc["theta[A]", "mean"]]
    assert a[0] > a[1] > a[2]
    assert full.loc["tau", "mean"] == 0


@pytest.mark.parametrize("sampler", ["pymc", "nutpie"])
def test_the_named_sampler_draws_the_posterior(sampler):
    f = bk.fit(
        eight_schools(), method="mcmc", sampler=sampler, draws=100, tune=100, chains=2, seed=1
    )
    assert f.idata["sample_stats"].attrs["inference_library"] == sampler
    assert f.settings["sampler"] == sampler


def test_residual_tau2_is_the_dersimonian_laird_estimate():
    from bayeskit.families.data import study_data
    from bayeskit.families.normal_normal import auto_parametrization, residual_tau2_dl

    d = REG["data"]
    table = study_table(d["labels"], d["yi"], d["vi"], ablat=d["ablat"])
    # metafor: rma(yi, vi, data=dat.bcg, method="DL") gives tau^2 = 0.3088
    assert residual_tau2_dl(study_data(table)) == pytest.approx(0.3088, abs=5e-5)
    with_ablat = study_data(table, covariates=["ablat"])
    # latitude explains most of the heterogeneity: the residual tau^2 is much smaller, and
    # the centred form (which diverges here, tau's lower tail 0.05 against the exact 0.09)
    # is no longer chosen
    assert residual_tau2_dl(with_ablat) < 0.1
    assert auto_parametrization(study_data(table)) == "centered"
    assert auto_parametrization(with_ablat) == "noncentered"
    # a covariate that explains the effects exactly leaves no residual heterogeneity
    exact = study_table(
        ["a", "b", "c", "d"], [1.0, 2.0, 3.0, 4.0], [0.1, 0.2, 0.1, 0.3], x=[0, 1, 2, 3]
    )
    assert residual_tau2_dl(study_data(exact, covariates=["x"])) == pytest.approx(0, abs=1e-12)
