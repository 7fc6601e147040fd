# %% [markdown]
# # Mixing an RCT with case series and case reports
#
# The evidence for ketamine in opioid withdrawal is one small randomised trial and a few
# single-patient reports. Dropping the reports wastes what they say; pooling them as if
# they were trials lets two uncontrolled patients outweigh fifty randomised ones. The
# `exposure-response` family does neither: every non-randomised study gets a **design
# bias term** whose spread is set per design, so such evidence moves the result only as
# much as that extra variance allows (Welton et al. 2009, JRSS-A 172:119; Prevost,
# Abrams & Jones 2000, Stat Med 19:3359).
#
# This tutorial fits the bundled withdrawal analysis (`models/ow_withdrawal.toml`) three
# times: the RCT alone, the RCT with the two case reports, and (for illustration only) the
# same with a **hypothetical** case series added, to see what each design contributes.

# %%
import os

import pandas as pd

import bayeskit as bk
from bayeskit.spec import load_spec

DRAWS = int(os.environ.get("BAYESKIT_TUTORIAL_DRAWS", "1000"))
CHAINS = int(os.environ.get("BAYESKIT_TUTORIAL_CHAINS", "4"))

# %% [markdown]
# ## The evidence
#
# One RCT (Jovaisa 2006: 50 patients, ketamine 0.5 mg/kg IV against placebo during
# rapid opioid detoxification, peak mean arterial pressure) and two case reports
# (Hailozian 2021, Christian 2023: one patient each, COWS before and after a ketamine
# infusion). The spec lists the outcomes that measure the same construct, in order of
# preference, so that each study contributes once.

# %%
spec = load_spec(bk.models_dir() / "ow_withdrawal.toml")
evidence = bk.load_evidence(spec.data_files())
# each study's first outcome in the spec's order of preference
rank = evidence["outcome"].map({o: i for i, o in enumerate(spec.data.outcome)})
used = evidence[rank == rank.groupby(evidence["study"]).transform("min")]
cols = ["study", "arm", "design", "outcome", "n", "mean", "sd", "baseline_mean"]
print(used[cols].to_string(index=False))

# %% [markdown]
# Everything is put on the scale of a standardised mean difference (SMD; negative = less
# withdrawal). The trial gives a between-arm SMD. A case report gives only one patient's
# change, standardised by an SD of COWS assumed in the spec (4 points, `outcome_sd`):
# Hailozian's drop from 18 to 2 points becomes an "SMD" of -4, three times the trial's.
# Such a change also contains the natural course of withdrawal and the buprenorphine
# given with ketamine: that is the bias the model must allow for.
#
# ## The model, in one line per design
#
# For study \(i\) with contrast \(y_i\) and standard error \(s_i\),
#
# \[
# y_i \sim \mathrm{Normal}\big(f(E_i) + \delta_i + b_i,\ s_i\big), \qquad
# \delta_i \sim \mathrm{Normal}(0, \tau),
# \]
#
# where \(f(E) = \beta \log_2(1 + E / E_{ref})\) is the effect of systemic exposure \(E\)
# (dose times bioavailability of the route), and the bias is
#
# * \(b_i = 0\) for a randomised trial;
# * \(b_i \sim \mathrm{Normal}(\bar b_{d}, \sigma_{d})\) for a study of design \(d\), on
#   the relative effect (never on both arms), with the mean bias \(\bar b_d\) favouring
#   ketamine (0.37 on the log-odds scale, Wood et al. 2008, times \(\sqrt 3/\pi\) for
#   SMDs; `benefit = "lower"` points it at less withdrawal) and the SD \(\sigma_d\) set
#   in the spec: `bias_sd = { case_report = 2.0, case_series = 1.0, cohort = 0.5 }`.
#
# A case report therefore carries at least \(\sigma_d = 2\) SMD units of extra
# uncertainty: it can shift `beta_dose` only a little, however large its change.

# %%
print(spec.model.bias_sd)
base = spec.fit_kwargs() | {"draws": DRAWS, "tune": DRAWS, "chains": CHAINS}


def headline(fit, label):
    """The slope and the predicted SMD of 0.5 mg/kg IV, as one row."""
    s = fit.summary()
    pred = bk.predict(fit, route="iv", dose_mg_per_kg=0.5, better="lower")
    smd = pred.loc["effect"]
    return pd.Series(
        {
            "beta_dose": s.loc["beta_dose[OW]", "mean"],
            "beta_dose_sd": s.loc["beta_dose[OW]", "sd"],
            "smd_0.5_iv": smd["q50"],
            "q2.5": smd["q2.5"],
            "q97.5": smd["q97.5"],
            "P(reduction)": smd["prob"],
        },
        name=label,
    )


# %% [markdown]
# ## The RCT alone, then with the case reports
#
# `designs` keeps only the listed designs: switching a design off is the simplest way to
# see its influence.

# %%
options = base["model_options"]
rct = bk.fit(spec.data_files(), **base | {"model_options": options | {"designs": ["rct"]}})
mixed = bk.fit(spec.data_files(), **base)
rows = [headline(rct, "RCT only"), headline(mixed, "RCT + 2 case reports")]
print(pd.DataFrame(rows).round(2).to_string())

# %% [markdown]
# The case reports pull the estimate towards a larger reduction (with the spec's full
# draws, an SMD of about -1.4 instead of -1.2 for 0.5 mg/kg IV) and narrow the interval so
# that it no longer crosses zero, but far less than their raw changes (SMD -4 and -4.5)
# would suggest. The bias term
# absorbs most of the difference between what they report and what the trial implies:

# %%
s = mixed.summary()
print(s.loc[[i for i in s.index if i.startswith("bias")], ["mean", "q2.5", "q97.5"]].round(2))

# %% [markdown]
# The mean bias of a design is fixed from meta-epidemiology, not learnt: two reports
# against one trial could not identify it. The per-study `bias[...]` terms are where the
# reports' excess goes. This is the honest answer: with this little evidence, the model
# cannot learn how biased case reports are; it can only be told (by `bias_sd`) how much
# to distrust them, and the sensitivity analysis (`bayeskit sensitivity`) should vary
# that.
#
# ## What a case series would add (hypothetical data)
#
# The bundled evidence has no continuous case series for this outcome, so here is an
# **invented** one, for illustration only: 12 patients, COWS from 15 (SD 4) to 7 (SD 4)
# after 0.5 mg/kg IV. A case series estimates its change from many patients, so its
# standard error is smaller than a case report's; its design SD (1.0) is half a case
# report's (2.0). It should count for more than one case report and still less than the
# trial.

# %%
template = evidence[(evidence["study"] == "HAILOZIAN2021") & (evidence["outcome"] == "cows")]
series = template.assign(
    study="HYPOTHETICAL",
    arm="ketamine",
    n=12,
    mean=7.0,
    sd=4.0,
    baseline_mean=15.0,
    baseline_sd=4.0,
    design="case_series",
    dose_mg_per_kg=0.5,
    source="invented for the tutorial",
)
with_series = pd.concat([evidence, series], ignore_index=True)
with_series.attrs = evidence.attrs
# pooling a case series needs a stated natural-course bias mean for its design: here an
# SMD of 0.5 (2 COWS points) of the series' fall is put down to buprenorphine and time
series_options = options | {"bias_mean": options.get("bias_mean", {}) | {"case_series": 0.5}}
more = bk.fit(with_series, **base | {"model_options": series_options})
rows.append(headline(more, "+ hypothetical case series"))
table = pd.DataFrame(rows)
print(table.round(2).to_string())

# %% [markdown]
# Reading the table from top to bottom shows what each design contributes. The trial
# sets the estimate; the case reports move it a little and narrow it a little; a case
# series, with its smaller design SD and its many patients, moves it more, towards its
# own change less the natural-course bias stated for it (an observed SMD of -2 less 0.5).
# None of them can move it as much as its own numbers would on their own, and what they
# add hinges on the stated bias: `bayeskit`'s robustness table varies it.
#
# ## Alternatives
#
# * Change how far each design is trusted: `bias_sd = { case_report = 1.0 }` in the spec
#   (or `model_options={"bias_sd": {...}}`).
# * A power prior instead of a bias term: `design_weight = { case_report = 0.2 }` multiplies
#   that design's log-likelihood by 0.2 (Ibrahim & Chen 2000, Stat Sci 15:46).
# * Drop a design: `designs = ["rct", "case_series"]`.
#
# See [the exposure-response family](../families/exposure-response.md) for every option.
