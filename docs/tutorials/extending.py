# %% [markdown]
# # Extending a bayeskit model in raw PyMC
#
# bayeskit's families cover the common cases; a statistician will sooner or later want a
# term they do not have. Every MCMC fit returns its PyMC model (`fit.model`), built with
# named dims and data containers, so the model can be extended with ordinary PyMC code
# and sampled again with the same machinery (`bayeskit.sampling.sample`), diagnostics
# (`bayeskit.diagnostics.diagnose`) and summaries (`bayeskit.summary.summarize`).
#
# The example: the eight-schools data, plus a ninth school that reported its result only
# as a bound, "a coaching effect of more than 10 points" (standard error 12). Such bounds
# occur in real evidence (`data/README.md` enters "over 36" as its bound); entering the
# bound as if it were the estimate would bias the pooled mean, while a **censored**
# likelihood term uses exactly what was reported. The ninth school is hypothetical.

# %%
import os

import pandas as pd
import pymc as pm
from pymc.model.fgraph import clone_model

import bayeskit as bk
from bayeskit.diagnostics import diagnose, verdict
from bayeskit.sampling import sample
from bayeskit.summary import summarize

DRAWS = int(os.environ.get("BAYESKIT_TUTORIAL_DRAWS", "1000"))
CHAINS = int(os.environ.get("BAYESKIT_TUTORIAL_CHAINS", "4"))
SAMPLING = {"draws": DRAWS, "tune": DRAWS, "chains": CHAINS, "seed": 11}

# %% [markdown]
# ## The fitted model
#
# `bk.fit` returns a `Fit`; `fit.model` is the `pymc.Model` it sampled (the exact engine
# has none, so use MCMC here).

# %%
fit = bk.fit(bk.data_path("eight_schools.csv"), method="mcmc", **SAMPLING)
model = fit.model
print("coords:", dict(model.coords))
print("free:", [v.name for v in model.free_RVs])
print("observed:", [v.name for v in model.observed_RVs])
print("deterministic:", [v.name for v in model.deterministics])

# %% [markdown]
# The normal-normal family is non-centred: `theta = mu + tau * theta_z` with
# `theta_z ~ Normal(0, 1)` per study, the likelihood `y ~ Normal(theta, sei)` on the data
# containers `yi` and `sei`, and `theta_new = mu + tau * theta_new_z` for a new study
# (see [normal-normal](../families/normal-normal.md)). Every name is one you can use.
#
# ## Add a term
#
# Work on a copy (`clone_model`), so the fit keeps the model that produced it. Inside the
# copy's context, PyMC looks variables up by name: the new school's effect is drawn from
# the same population distribution, and its report enters as a right-censored normal
# likelihood: \(\log P(y_9 > 10 \mid \theta_9) = \log \Phi((\theta_9 - 10) / 12)\).

# %%
extended = clone_model(model)
extended.add_coord("reported_as_bound", ["I"])  # named dims, like every bayeskit model
with extended:
    mu, tau = extended["mu"], extended["tau"]
    z9 = pm.Normal("theta_bound_z", 0.0, 1.0, dims="reported_as_bound")
    theta9 = pm.Deterministic("theta_bound", mu + tau * z9, dims="reported_as_bound")
    pm.Censored(
        "y_bound",
        pm.Normal.dist(mu=theta9, sigma=12.0),
        lower=None,
        upper=10.0,
        observed=[10.0],
        dims="reported_as_bound",
    )
print("free:", [v.name for v in extended.free_RVs])

# %% [markdown]
# ## Refit
#
# `sample` runs NUTS (nutpie) and gathers the prior, the posterior, both predictive
# distributions and the pointwise log-likelihood into one ArviZ DataTree, seeded
# reproducibly; `diagnose` and `summarize` are what `bk.fit` itself uses.

# %%
idata = sample(extended, **SAMPLING)
checks = diagnose(idata)
print("diagnostics:", verdict([c for c in checks if c.name != "pareto_k"]))
after = summarize(idata, var_names=["mu", "tau", "theta_bound"])
before = fit.summary()
comparison = pd.DataFrame(
    {
        "8 schools": before.loc[["mu", "tau"], "mean"],
        "+ school I (bound)": after.loc[["mu", "tau"], "mean"],
    }
)
print(comparison.round(2).to_string())
print(after.loc[["theta_bound[I]"], ["mean", "q2.5", "q97.5"]].round(1).to_string())

# %% [markdown]
# The bound pulls the pooled mean up: "more than 10 points" is evidence of an effect
# larger than most schools saw. Entering the bound as though it were the estimate
# (`yi = 10`) would understate it, since all the school reported is that its effect
# exceeded 10. School I's own effect is shrunk, like every school's, towards the
# population mean, and its interval is wide because a bound says little.
#
# ## Other extensions in the same way
#
# * **Change the data without rebuilding**: the data containers can be swapped,
#   `pm.set_data({"yi": new_yi}, model=clone)`, and sampled again without recompiling
#   the model's structure.
# * **A derived quantity**: `pm.Deterministic("share_between", tau**2 / (tau**2 + 12.9**2))`
#   inside the model's context is recorded with the posterior.
# * **A different random-effects distribution** (e.g. Student-t) changes `theta` itself:
#   build it from the family's builder (`bayeskit.families.normal_normal.build`) as a
#   template and write the new model in full, keeping the names (`mu`, `tau`, `theta`,
#   `theta_new`) so that bayeskit's summaries, reports and diagnostics still apply.
