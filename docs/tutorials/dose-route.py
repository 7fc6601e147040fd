# %% [markdown]
# # Dose and route: bioavailability as an uncertain covariate
#
# The two opioid use disorder trials gave ketamine intramuscularly (IM); clinicians ask
# about intravenous (IV), sublingual (SL) and oral regimens. A route changes how much of
# a dose reaches the circulation, its **bioavailability** \(F\), which is known only
# approximately (IM about 0.93, SL about 0.32, oral about 0.17, each from a few small
# pharmacokinetic studies: `data/routes.csv`). The `exposure-response` family treats
# \(F\) as a parameter with a Beta prior rather than a fixed number, so a prediction for
# another route carries the uncertainty of its bioavailability.
#
# This tutorial fits the bundled analysis `models/oud_abstinence.toml` once and asks it
# about regimens by four routes.

# %%
import os

import numpy as np
import pandas as pd
from scipy import stats

import bayeskit as bk
from bayeskit.families import get_family
from bayeskit.families.exposure.model import beta_params
from bayeskit.questions import effect_draws
from bayeskit.spec import load_spec

DRAWS = int(os.environ.get("BAYESKIT_TUTORIAL_DRAWS", "1000"))
CHAINS = int(os.environ.get("BAYESKIT_TUTORIAL_CHAINS", "4"))

# %% [markdown]
# ## Exposure
#
# Each arm's systemic exposure is \(E = \text{dose} \times F_{route} \times
# \text{sessions}\) (mg/kg), and the log-odds of abstinence rise by \(\beta\) per doubling
# of \(1 + E / E_{ref}\), with the reference exposure \(E_{ref}\) a parameter (prior
# `LogNormal(-1.6, 1.2)`, median 0.2 mg/kg). Each trial has its own baseline
# \(\alpha_{study}\), the logit of its control arm, so only the contrast within a trial
# informs \(\beta\) (\(t_{arm} = 1\) for the experimental arm, 0 for the control):
#
# \[
# \operatorname{logit} p_{arm} = \alpha_{study} + t_{arm} \big[\beta \log_2\tfrac{1 +
# E_{arm} / E_{ref}}{1 + E_{control} / E_{ref}} + \delta_{study}\big], \qquad F_{route}
# \sim \mathrm{Beta}(a_r, b_r).
# \]
#
# The Beta parameters match the table's mean and SD (IV is 1 by definition):

# %%
routes = bk.load_routes()
for route, row in routes.iterrows():
    if row["bioavailability_sd"] > 0:
        a, b = beta_params(row["bioavailability"], row["bioavailability_sd"])
        print(f"{route:>10}: F ~ Beta({a:.1f}, {b:.1f})  (mean {row['bioavailability']:.2f})")

# %% [markdown]
# ## One fit
#
# The spec's sampler settings (4 chains of 2000 draws) are reduced here so the tutorial
# runs quickly; set `BAYESKIT_TUTORIAL_DRAWS` to run it longer.

# %%
spec = load_spec(bk.models_dir() / "oud_abstinence.toml")
fit = bk.fit(
    spec.data_files(), **spec.fit_kwargs() | {"draws": DRAWS, "tune": DRAWS, "chains": CHAINS}
)
s = fit.summary()
print(s.loc[["beta_dose[OUD]", "or_per_doubling[OUD]", "tau"], ["mean", "q2.5", "q97.5"]].round(2))
# with the tutorial's tiny draws this may say "fail" (too few effective draws); with the
# spec's own settings every sampling check passes
print(f"diagnostics: {fit.verdict}")

# %% [markdown]
# Every arm was IM, so the data say almost nothing about the other routes'
# bioavailability: their posteriors are their priors.

# %%
prior_f = routes[["bioavailability", "bioavailability_sd"]].set_axis(
    ["prior mean", "prior sd"], axis=1
)
post_f = s.loc[[f"bioavailability[{r}]" for r in routes.index], ["mean", "sd"]]
print(pd.concat([prior_f, post_f.set_axis(routes.index)], axis=1).round(3).to_string())

# %% [markdown]
# ## The same dose by four routes
#
# `bk.predict` turns the posterior into the answer for one regimen: the exposure, the
# effect against no ketamine (log odds ratio), the probability of abstinence with and
# without it and their difference.

# %%
rows = {}
for route in ["iv", "im", "sl", "oral"]:
    p = bk.predict(fit, route=route, dose_mg_per_kg=0.5)
    rows[route] = {
        "exposure": p.loc["exposure", "q50"],
        "gain (points)": 100 * p.loc["difference", "q50"],
        "gain q2.5": 100 * p.loc["difference", "q2.5"],
        "gain q97.5": 100 * p.loc["difference", "q97.5"],
        "P(gain >= 10 points)": p.loc["difference", "prob"],
    }
by_route = pd.DataFrame(rows).T
print("0.5 mg/kg, one session:")
print(by_route.round(2).to_string())

# %% [markdown]
# The same milligrams give less exposure, and so a smaller expected gain, by the routes
# with lower bioavailability. These predictions for IV, SL and oral rest on the
# pharmacokinetics alone (no trial used those routes for this indication), which is
# what `route_effect = false` in the spec assumes; `route_effect = true` would add a
# route effect beyond pharmacokinetics, with a prior but (here) no data to learn it.
#
# ## What the uncertainty in F adds
#
# Treating \(F_{SL}\) as exactly 0.32 would understate the uncertainty of an SL
# prediction. `effect_draws` gives the posterior draws of exposure and effect; recompute
# the effect averaged over \(F\) at each draw and compare the spread: by the law of
# total variance the difference is what the uncertainty in \(F\) adds.

# %%
dose = 1.5
draws = effect_draws(fit, route="sl", dose_mg_per_kg=dose)
# the model's own mean function on the same draws, averaged over 40 values of F_SL from
# its Beta prior: the effect each draw expects once F_SL is averaged out
post = fit.idata["posterior"].to_dataset()
a_sl, b_sl = beta_params(
    routes.loc["sl", "bioavailability"], routes.loc["sl", "bioavailability_sd"]
)
family = get_family(fit.family)
fixed = np.mean(
    [
        family.predict(
            post.assign(bioavailability=post["bioavailability"].where(post["route"] != "sl", f)),
            fit.settings,
            route="sl",
            dose_mg_per_kg=dose,
        )["effect"].values.ravel()
        for f in stats.beta(a_sl, b_sl).ppf((np.arange(40) + 0.5) / 40)
    ],
    axis=0,
)
uncertain = draws["effect"].values.ravel()
print(
    f"SL {dose} mg/kg, SD of the log-OR: F uncertain {uncertain.std():.3f}, "
    f"F averaged out {fixed.std():.3f}"
)
print(f"SD of exposure: {draws['exposure'].values.std():.3f} mg/kg")

# %% [markdown]
# Here the extra spread is modest, because the dose-response is log-linear: an error of
# 20% in \(F\) moves \(\log_2(1 + E/E_{ref})\) by about a quarter of a doubling at most,
# while the slope itself is uncertain by a factor of two. It matters more for routes with
# wider bioavailability (intranasal, SD 0.10 on a mean of 0.45) and for the question
# "which SL dose matches 2 mg/kg IM?":

# %%
f_draws = fit.idata["posterior"]["bioavailability"]
ratio = (2.0 * f_draws.sel(route="im") / f_draws.sel(route="sl")).values.ravel()
lo, mid, hi = np.quantile(ratio, [0.025, 0.5, 0.975])
print(f"SL dose matching the exposure of 2 mg/kg IM: {mid:.1f} mg/kg (95% {lo:.1f} to {hi:.1f})")

# %% [markdown]
# ## Sessions
#
# With `sessions = "term"` (the default, and the bundled spec's choice) sessions add their
# own coefficient, `beta_sessions * log2(sessions)`, learnt from the 2007 trial's one
# contrast (three sessions against one, with their psychotherapy). `sessions =
# "multiplier"` would instead give three sessions three times the exposure of one.

# %%
three = bk.predict(fit, route="im", dose_mg_per_kg=2.0, sessions=3)
one = bk.predict(fit, route="im", dose_mg_per_kg=2.0, sessions=1)
print(
    f"abstinence, 2 mg/kg IM: 1 session {one.loc['p_with', 'q50']:.0%}, "
    f"3 sessions {three.loc['p_with', 'q50']:.0%}"
)
