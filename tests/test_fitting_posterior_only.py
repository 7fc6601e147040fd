"""``bk.fit(..., posterior_only=True)``: the posterior draws of a full fit, nothing more."""

import numpy as np

import bayeskit as bk
from bayeskit.fitting import add_log_likelihood

PRIORS = {"mu": "Normal(0, 5)", "tau": "HalfCauchy(5)"}
SETTINGS = {"method": "mcmc", "draws": 200, "tune": 200, "chains": 2, "seed": 7}


def test_posterior_only_keeps_the_draws_and_drops_the_other_groups():
    data = bk.data_path("eight_schools.csv")
    full = bk.fit(data, priors=PRIORS, **SETTINGS)
    lean = bk.fit(data, priors=PRIORS, posterior_only=True, **SETTINGS)
    for name in ("mu", "tau", "theta"):  # the same seed gives the same draws, to the bit
        np.testing.assert_array_equal(
            lean.idata.posterior[name].values, full.idata.posterior[name].values
        )
    assert {"log_likelihood", "posterior_predictive", "prior"} <= set(full.idata.children)
    dropped = {"log_likelihood", "posterior_predictive", "prior", "prior_predictive"}
    assert set(lean.idata.children) == set(full.idata.children) - dropped
    assert lean.settings["posterior_only"] is True and "posterior_only" not in full.settings
    # the verdict judges convergence only: no LOO check without a log-likelihood
    names = {c.name for c in lean.checks}
    assert "divergences" in names and not any("pareto" in n for n in names)
    assert any("pareto" in c.name for c in full.checks)


def _full_and_lean():
    data = bk.data_path("eight_schools.csv")
    full = bk.fit(data, priors=PRIORS, **SETTINGS)
    lean = bk.fit(data, priors=PRIORS, posterior_only=True, **SETTINGS)
    return full, add_log_likelihood(lean)


def test_added_log_likelihood_is_the_one_a_full_fit_has():
    # the family's leave-one-study-out log-likelihood (normal-normal integrates theta out)
    full, lean = _full_and_lean()
    got, want = lean.idata.log_likelihood, full.idata.log_likelihood
    assert got.attrs["loo"] == want.attrs["loo"] == "leave-one-study-out"
    np.testing.assert_array_equal(got["y"].values, want["y"].values)


def test_added_log_likelihood_falls_back_to_pymcs_conditional_one(monkeypatch):
    # a family without a marginal log-likelihood: PyMC's, given each study's theta
    from bayeskit.families import get_family

    monkeypatch.setattr(type(get_family("normal-normal")), "marginal_log_likelihood",
                        lambda *args, **kwargs: None)  # fmt: skip
    full, lean = _full_and_lean()
    got, want = lean.idata.log_likelihood, full.idata.log_likelihood
    assert got.attrs["loo"] == want.attrs["loo"] == "conditional"
    np.testing.assert_array_equal(got["y"].values, want["y"].values)
