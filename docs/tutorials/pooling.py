# %% [markdown]
# # Pooling sparse evidence from scratch: eight schools
#
# Eight schools ran the same SAT coaching experiment; each reports an estimated effect
# `yi` (SAT-V points) and its standard error `sei` (Rubin 1981; Gelman et al., *Bayesian
# Data Analysis*, 3rd ed., section 5.5). No school's estimate is precise, and they
# disagree. This tutorial fits the three ways of combining them, shows what partial
# pooling does to each school, and explains why the predictive interval, not the
# interval for the mean, answers "what will the next school see?".
#
# Everything here uses the **exact engine** (`method="exact"`): for the normal-normal
# model with a normal prior on `mu`, the posterior is computed by one-dimensional
# numerical integration over `tau`, in milliseconds, with no Monte Carlo error. One MCMC
# fit at the end shows that NUTS agrees.

# %%
import os

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from scipy import stats

import bayeskit as bk

DRAWS = int(os.environ.get("BAYESKIT_TUTORIAL_DRAWS", "1000"))
CHAINS = int(os.environ.get("BAYESKIT_TUTORIAL_CHAINS", "4"))

# %% [markdown]
# ## The data
#
# `load_evidence` validates the table (every rule is listed in
# [the evidence-table reference](../reference/data.md)); `effects` returns one row per
# study with `yi`, `vi` (the variance) and `sei`, as metafor's `escalc` does. The table is
# already study-level, so the effects are the table's own numbers.

# %%
evidence = bk.load_evidence(bk.data_path("eight_schools.csv"))
es = bk.effects(evidence)
print(es[["yi", "sei"]].T.to_string())

# %% [markdown]
# ## Three models for the same numbers
#
# With \(y_i \sim \mathrm{Normal}(\theta_i, s_i)\):
#
# * **no pooling**: every \(\theta_i\) has its own flat prior, so each school's posterior
#   is its own estimate, \(\theta_i \mid y \sim \mathrm{Normal}(y_i, s_i)\);
# * **complete pooling**: \(\theta_i = \mu\) for all schools (\(\tau = 0\));
# * **partial pooling**: \(\theta_i \sim \mathrm{Normal}(\mu, \tau)\), and the data decide
#   how large the between-school SD \(\tau\) is.
#
# Partial pooling needs priors on `mu` and `tau`. The raw-scale defaults are scaled to the
# typical standard error \(s = \sqrt{\overline{s_i^2}} \approx 12.9\) points:
# `mu ~ Normal(0, 10 s)` (vague) and `tau ~ HalfNormal(s)` (a between-school SD as large
# as a typical standard error is already substantial); see
# [the normal-normal page](../families/normal-normal.md).

# %%
fits = {
    "none": bk.fit(evidence, method="exact", pooling="none", priors={"mu": "Flat()"}),
    "full": bk.fit(evidence, method="exact", pooling="full"),
    "partial": bk.fit(evidence, method="exact", pooling="partial"),
}
partial = fits["partial"]
print({name: str(prior) for name, prior in partial.priors.items()})

theta = [f"theta[{s}]" for s in es.index]
table = es[["yi", "sei"]].copy()
for name, f in fits.items():
    table[f"{name}_mean"] = f.summary().loc[theta, "mean"].to_numpy()
print(table.round(1).to_string())

# %% [markdown]
# No pooling reproduces the data (school A keeps its 28 points). Complete pooling gives
# every school the precision-weighted mean, about 7.7 points. Partial pooling lands in
# between, and much closer to complete pooling: eight noisy estimates that disagree by
# no more than their standard errors suggest leave little evidence that the schools
# truly differ.
#
# ## Shrinkage
#
# Given \(\tau\), the posterior mean of \(\theta_i\) is a weighted average,
# \((1 - B_i)\, y_i + B_i\, \mu\), with shrinkage factor
# \(B_i = s_i^2 / (s_i^2 + \tau^2)\): the noisier the school, the more it borrows from
# the others. `fit.exact.shrinkage` averages \(B_i\) over the posterior of \(\tau\).

# %%
table["shrinkage"] = partial.exact.shrinkage
print(table[["yi", "sei", "partial_mean", "shrinkage"]].round(2).to_string())
most = table["shrinkage"].idxmax()
print(f"most shrunk: school {most} (se {table.loc[most, 'sei']:.0f})")

# %% [markdown]
# The same in a picture: each school's own estimate (left) joined to its partially
# pooled estimate (right); the dashed line is the complete-pooling mean.

# %%
fig, ax = plt.subplots(figsize=(5, 3.2))
for school, row in table.iterrows():
    ax.plot([0, 1], [row["yi"], row["partial_mean"]], "o-", color="#1f4e79", alpha=0.7)
    ax.annotate(school, (0, row["yi"]), xytext=(-12, 0), textcoords="offset points")
ax.axhline(table["full_mean"].iloc[0], ls="--", color="#b2182b", lw=1)
ax.set_xticks([0, 1], ["no pooling", "partial pooling"])
ax.set_ylabel("effect (SAT-V points)")
fig.tight_layout()

# %% [markdown]
# School H, with the largest standard error (18), is shrunk most; school E (9), least.
#
# ## The pooled mean and the predictive interval
#
# `mu` is the average effect over the population of schools. `theta_new` is the effect
# in a *new* school drawn from that population: \(\theta_{new} \sim
# \mathrm{Normal}(\mu, \tau)\). Its interval adds the between-school spread to the
# uncertainty about the mean, so it is always wider.

# %%
summary = partial.summary()
print(summary.loc[["mu", "tau", "theta_new"], ["mean", "q2.5", "q97.5"]].round(1).to_string())

# %% [markdown]
# The exact posterior is a mixture of normals over a grid of \(\tau\) values (weights
# `exact.weight`, conditional means `exact.m` and covariances `exact.V`), so tail
# probabilities are exact sums, with no sampling error:

# %%
post = partial.exact
m, v = post.m[:, 0], post.V[:, 0, 0]
p_mu = float(np.sum(post.weight * stats.norm.sf(0, m, np.sqrt(v))))
p_new = float(np.sum(post.weight * stats.norm.sf(0, m, np.sqrt(v + post.tau**2))))
print(f"P(mu > 0) = {p_mu:.3f}")
print(f"P(theta_new > 0) = {p_new:.3f}")

# %% [markdown]
# The average coaching effect is very probably positive, but a new school has a
# noticeably smaller probability of seeing any gain, and its 95% interval runs from a
# clear loss to a large gain. The interval for `mu` answers "does coaching work on
# average?"; the predictive interval answers "what should this school expect?". With few
# studies and real heterogeneity the two can lead to different decisions, which is why
# bayeskit reports `theta_new` beside `mu` in every summary and report (Riley, Higgins &
# Deeks 2011, BMJ 342:d549).
#
# ## The prior on tau matters when studies are few
#
# Eight studies carry little information about a standard deviation, so its prior
# carries real weight. Gelman's (2006) half-Cauchy with scale 5 puts more of its mass
# below 5 points than the default `HalfNormal(12.9)` does (though it has a heavier far
# tail): the posterior of `tau` moves down and the predictive interval narrows, from
# about -9 to 25 points to about -5 to 21; the mean hardly moves. Report such a
# comparison (`bayeskit sensitivity` automates it) rather than pick the prior that suits.

# %%
cauchy = bk.fit(evidence, method="exact", priors={"tau": "HalfCauchy(5)"})
print(cauchy.summary().loc[["mu", "tau", "theta_new"], ["mean", "q2.5", "q97.5"]].round(1))

# %% [markdown]
# ## The same model by MCMC
#
# `method="mcmc"` samples the same PyMC model with NUTS (the default, `method="auto"`,
# takes the exact engine wherever it applies, as here). Up to Monte Carlo
# error it agrees with the exact engine; the exact engine is the reference the test
# suite checks MCMC against.

# %%
mcmc = bk.fit(evidence, method="mcmc", draws=DRAWS, tune=DRAWS, chains=CHAINS, seed=1)
both = pd.concat(
    {
        "mcmc": mcmc.summary().loc[["mu", "tau"], ["mean", "sd"]],
        "exact": summary.loc[["mu", "tau"], ["mean", "sd"]],
    },
    axis=1,
)
print(both.round(1).to_string())
print(f"MCMC diagnostics: {mcmc.verdict}")

# %% [markdown]
# From the command line, `bayeskit teach pooling` prints the same three-way comparison
# with a plain-language narrative, and `bayeskit fit models/eight_schools.toml --out
# runs/schools` writes a full run directory with a report. For a lesson,
# `bayeskit teach explore --out explore.html` writes one page to open in any browser,
# offline: tau is a slider, the estimates move with it over the exact posterior of tau,
# and students can edit a school's estimate or standard error and watch what follows.
