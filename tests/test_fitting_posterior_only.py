"""``bk.fit(..., posterior_only=True)``: the posterior draws of a full fit, nothing more."""

import numpy as np

import bayeskit as bk

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
