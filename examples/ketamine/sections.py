"""The page's three sections (data, model, results, diagnostics, caveats), one per spec."""

from __future__ import annotations

import pandas as pd

from .figures import BORROW_FIGURE, OUD_FIGURE, OW_FIGURE
from .fits import Analyses
from .fmt import (
    ROUTE_NAMES,
    ci,
    dose,
    num,
    outcome_list,
    pct,
    plural,
    q,
    ref_text,
    sig,
    study_name,
)
from .numbers import OudNumbers, OwNumbers, SudNumbers
from .tables import (
    arm_table,
    binary_question_table,
    borrow_table_md,
    contrast_table,
    data_rows_not_used,
    diag_table,
    diag_value,
    param_table,
    smd_question_table,
)


def oud_model(o: OudNumbers) -> list[str]:
    """Describe the OUD model in words, its priors and the bioavailability posteriors."""
    m, summ = o.spec.model, o.fit.summary()
    return [
        "### Model\n",
        "Each arm's systemic exposure is E = dose x bioavailability(route)"
        + (" x sessions" if m.sessions == "multiplier" else "")
        + f"; the log-odds of abstinence rise by `beta_dose` per doubling of "
        f"(1 + E / {ref_text(o.spec)}) ({m.form}), with "
        + (
            "a random baseline per trial (arm-based: baselines of trials at different "
            "exposures inform the slope too)"
            if m.options().get("likelihood") == "arm"
            else "a separate baseline per trial (contrast-based: only within-trial "
            "contrasts inform the slope)"
        )
        + ", sessions "
        + ("as a multiplier of exposure" if m.sessions == "multiplier" else f"`{m.sessions}`")
        + " and a between-trial SD `tau` of the contrast. Priors: "
        + ", ".join(f"`{k}` ~ {v}" for k, v in o.spec.priors.items())
        + ". Bioavailability has Beta priors from `data/routes.csv` (posterior medians: "
        + ", ".join(
            f"{ROUTE_NAMES[r]} {num(q(summ, f'bioavailability[{r}]'), 2)}"
            for r in ("iv", "im", "sl", "oral")
        )
        + ").\n",
    ]


def oud_results(o: OudNumbers) -> list[str]:
    """Tabulate the OUD parameters and questions; show and the dose-response figure."""
    ind = o.indication
    params = [
        (f"beta_dose[{ind}]", "slope: log-OR per doubling", 2),
        (f"or_per_doubling[{ind}]", "odds ratio per doubling", "s"),
        ("tau", "between-trial SD of the contrast (log-OR)", 2),
        (f"alpha_mu[{ind}]", "baseline log-odds without ketamine", 2),
    ]
    return [
        "### Results\n",
        param_table(o.fit.summary(), params),
        "",
        binary_question_table(o.answers, o.spec),
        "",
        f"![Predicted abstinence by dose and route](figures/{OUD_FIGURE})\n",
        f"*Predicted abstinence at {o.spec.data.timepoint} (posterior median and 95% band, "
        "for a trial population with the average baseline) against dose per session. Left: "
        "each route, one session; only the IM curve is anchored by trial data, the others are "
        f"it shifted by bioavailability. Right: IM, one session and {o.q3.sessions:g} sessions "
        "(dashed), with the observed arms (95% Wilson intervals). Grey zone: below the lowest "
        "dose any trial used.*\n",
    ]


def oud_caveats(o: OudNumbers) -> list[str]:
    """Few trials, derived counts, the sessions assumption, routes, Pareto k."""
    m, tab = o.spec.model, o.tab
    n_studies = len(dict.fromkeys(tab["study"]))
    out = [
        "### Caveats\n",
        f"- {plural(n_studies, 'trial').capitalize()}, {int(tab['n'].sum())} patients, one "
        "research group; "
        + (
            "both comparisons are ketamine against ketamine (a lower dose, or fewer sessions), "
            if o.all_on_ketamine
            else ""
        )
        + "so every statement against no ketamine, including the baseline "
        f"{pct(q(o.r1, 'p_without'))}, is a model extrapolation below {dose(o.lowest)} mg/kg.",
    ]
    derived = [
        (study_name(r.study), r.arm, r.derived)
        for r in tab.itertuples()
        if isinstance(r.derived, str) and r.derived.strip()
    ]
    if derived:
        out.append(
            "- Abstinence counts derived from reported percentages, not reported: "
            + "; ".join(f"{s} `{arm}`: `{d}`" for s, arm, d in derived)
            + ". [data/README.md](../data/README.md) (section 2) explains why the reported "
            "percentages cannot all come from the randomised denominators."
        )
    how = (
        "the exposure of one times the number of sessions"
        if m.sessions == "multiplier"
        else f"`sessions = {m.sessions}`"
    )
    out.append(
        f"- Several sessions are modelled as {how} "
        f'(`sessions = "{m.sessions}"`): an assumption, tested by one contrast in one '
        "trial."
    )
    out.append(
        f"- IV, SL and oral curves are not observed: they are the IM curve shifted by the "
        f"bioavailability priors (`route_effect = {str(m.route_effect).lower()}`)."
    )
    pk = next((c for c in o.fit.checks if c.name == "pareto_k"), None)
    if pk is not None and pk.verdict != "pass":
        out.append(
            f"- Pareto k is {diag_value(pk)}: with {len(tab)} arms, each arm carries much of "
            "the fit, so leave-one-out predictive checks are unreliable (not a sampling "
            "problem)."
        )
    return out + [""]


def section_oud(o: OudNumbers) -> list[str]:
    """Section 1: opioid use disorder, data to caveats."""
    out = [
        f"## 1. Opioid use disorder: abstinence at {o.spec.data.timepoint} (`{o.spec.name}`)\n",
        "### Data\n",
        arm_table(o.tab),
        "",
    ]
    unused = data_rows_not_used(o.spec, o.fit)
    if unused:
        out.append("Not used (other timepoint or outcome): " + "; ".join(unused) + ".\n")
    out += oud_model(o) + oud_results(o)
    out += ["### Diagnostics\n", diag_table(o.fit), ""]
    return out + oud_caveats(o)


def infusion_rate_note(spec, studies) -> str:
    """Return the `derived` clause that says a study's dose is an infusion rate, if there is one."""
    for path in spec.data_files():
        raw = pd.read_csv(path)
        for d in raw.loc[raw["study"].isin(studies), "derived"].dropna():
            for clause in str(d).split(";"):
                if "rate" in clause and "dose" in clause:
                    return clause.strip()
    return ""


def ow_data_and_model(w: OwNumbers) -> list[str]:
    """Describe the withdrawal data, rows left out, the choice of outcome, the model."""
    spec, fit = w.spec, w.fit
    outcome_sd = dict(spec.data.outcome_sd or {})
    out = ["### Data\n", contrast_table(w.tab, measure="SMD"), ""]
    unused = data_rows_not_used(spec, fit)
    if unused:
        out.append(
            "In the file but not in this analysis (binary outcomes, or a second measure of "
            "a study already counted): " + "; ".join(unused) + ".\n"
        )
    out.append(
        f"Outcomes, in order of preference: {', '.join(f'`{o}`' for o in spec.data.outcome)}; "
        "a study contributes its first. Case reports (one patient, pre/post COWS) are put on "
        "the SMD scale with an assumed COWS SD of "
        + ", ".join(f"{v:g} ({k})" for k, v in outcome_sd.items())
        + f" and a change SD of {spec.data.sd_change:g}.\n"
    )
    out.append("### Model\n")
    out.append(
        f"SMD (negative = less withdrawal) = `beta_dose` x log2(1 + E / "
        f"{ref_text(spec)}) + between-study deviation (`tau`) + for "
        "non-randomised designs a bias on the relative effect ~ Normal(design mean, design SD), "
        "favouring ketamine on average, with design SDs "
        + ", ".join(f"{k.replace('_', ' ')} {v:g}" for k, v in (spec.model.bias_sd or {}).items())
        + ". Priors: "
        + ", ".join(f"`{k}` ~ {v}" for k, v in spec.priors.items())
        + ".\n"
    )
    return out


def ow_results(w: OwNumbers) -> list[str]:
    """Tabulate the withdrawal parameters and question; show the figure."""
    ind = w.fit.data.indication[0]
    rows = [(f"beta_dose[{ind}]", "slope: SMD per doubling", 2), ("tau", "between-study SD", 2)]
    rows += [(f"bias[{s}]", f"bias of {study_name(s)}", 2) for s in w.case_reports]
    return [
        "### Results\n",
        param_table(w.fit.summary(), rows),
        "",
        smd_question_table(w.answers, w.spec, w.rct_only, w.case_reports),
        "",
        f"![Withdrawal effect by IV dose](figures/{OW_FIGURE})\n",
        "*Withdrawal effect (SMD; right axis in COWS points) against IV dose, median and 95% "
        "band. Points: the studies' own contrasts with 95% intervals; for the case reports "
        "the thin bar adds the design-bias SD the model gives them.*\n",
    ]


def ow_case_report_caveat(w: OwNumbers) -> str:
    """Say what the case reports add, how much the model calls bias, their influence."""
    bias_sd = dict(w.spec.model.bias_sd or {})
    outcome_sd = dict(w.spec.data.outcome_sd or {})
    summ = w.fit.summary()
    bias_med = [q(summ, f"bias[{s}]") for s in w.case_reports]
    falls = w.tab.loc[w.tab["design"] == "case_report", "yi"]
    excludes = not q(w.rct_only, "effect", "q2.5") < 0 < q(w.rct_only, "effect", "q97.5")
    return (
        f"- The {plural(len(w.case_reports), 'case report')} "
        f"({', '.join(study_name(s) for s in w.case_reports)}) enter with a design-bias SD of "
        f"{bias_sd.get('case_report', 1.0):g} SMD. Their pre/post falls "
        f"({', '.join(num(v, 1) for v in falls)} "
        f"SMD, assumed COWS SD {outcome_sd.get('cows', float('nan')):g}) include buprenorphine "
        "and the natural course; the model attributes "
        f"{', '.join(num(b, 1) for b in bias_med)} SMD of them to bias (posterior medians). "
        f"Still, they move the estimate: without them the expected reduction at "
        f"{w.question.label} is {num(w.sign * q(w.rct_only, 'effect'), 2)} instead of "
        f"{num(w.sign * q(w.row, 'effect'), 2)} SMD, and its 95% CrI "
        + ("excludes" if excludes else "includes")
        + " zero."
    )


def ow_caveats(w: OwNumbers) -> list[str]:
    """List caveats: the RCT's outcome, dose and arm sizes, case reports, natural scales."""
    rcts = ", ".join(study_name(s) for s in w.rct_studies)
    jov = w.randomised
    out = [
        "### Caveats\n",
        f"- The only RCT ({rcts}) measured "
        f"{outcome_list(jov['outcome'])} (`{jov['outcome'].iloc[0]}`, "
        f"{jov['timepoint'].iloc[0]}): a "
        "haemodynamic sign of "
        "antagonist-precipitated withdrawal in patients under general anaesthesia, not a "
        "COWS score during buprenorphine induction.",
    ]
    rate = infusion_rate_note(w.spec, w.rct_studies)
    if rate:
        out.append(
            f"- Its dose is an infusion rate, entered as a dose: `{rate}`. For this study the "
            f"figure's x-axis and the {dose(w.question.dose_mg_per_kg)} mg/kg question are in "
            "mg/kg/h."
        )
    out.append(
        f"- The arm sizes of {rcts} were assigned "
        "by list order from a Cochrane table and need checking against the full text "
        "([data/README.md](../data/README.md))."
    )
    out.append(ow_case_report_caveat(w))
    out.append(
        "- COWS points, mmHg and beats per minute are one SMD multiplied by assumed SDs ("
        + ", ".join(f"{u} {s:g}" for u, s in w.spec.report.scales.items())
        + "), not three independent findings."
    )
    return out + [""]


def section_ow(w: OwNumbers) -> list[str]:
    """Section 2: opioid withdrawal, data to caveats."""
    out = [f"## 2. Opioid withdrawal (`{w.spec.name}`)\n"]
    out += ow_data_and_model(w) + ow_results(w)
    out += ["### Diagnostics\n", diag_table(w.fit), ""]
    return out + ow_caveats(w)


def _sud_tables(s: SudNumbers) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Split the joint analysis's data into binary arms and study-level contrasts."""
    tab = s.fit.data.table
    arms = tab[tab["n"].notna() & tab["events"].notna()]
    contrasts = tab[tab["yi"].notna()] if "yi" in tab else tab.iloc[0:0]
    return arms, contrasts


def sud_data_and_model(s: SudNumbers) -> list[str]:
    """Describe the joint analysis's data, rows left out, and the borrowing model."""
    arms, contrasts = _sud_tables(s)
    out = ["### Data\n", arm_table(arms, show_indication=True), ""]
    if len(contrasts):
        out += [contrast_table(contrasts, measure="OR", show_indication=True), ""]
    unused = data_rows_not_used(s.spec, s.fit)
    if unused:
        out.append("Not used: " + "; ".join(unused) + ".\n")
    priors = s.spec.priors
    out += [
        "### Model\n",
        f"As in section 1, with one slope per indication, put on the scale of the dose "
        f"contrast {s.anchor} (`dose_contrast`). With borrowing (as specified) the slopes "
        f"are exchangeable: `dose_contrast[indication]` ~ Normal(common mean, "
        f"`indication_sd`), `indication_sd` ~ {priors.get('indication_sd', 'default')}; "
        f"without borrowing each gets its own `dose_contrast` ~ "
        f"{priors.get('dose_contrast')} (the trial-level SDs and the bias terms are still "
        "shared, so the no-borrowing OUD contrast is not identical to section 1). The third "
        'way (`borrowing = "prior"`) fits the other indications alone and uses their '
        f"posterior for the {s.focus} contrast as an informative robust mixture prior "
        "(a weight on it, its variance inflated, the spec's own prior as the robust "
        "component), with its effective sample size (RBesT's ELIR method). Non-randomised "
        "studies get a bias with SD "
        + ", ".join(f"{k} {v:g}" for k, v in (s.spec.model.bias_sd or {}).items())
        + ".\n",
    ]
    return out


def sud_results(s: SudNumbers, o: OudNumbers) -> list[str]:
    """Tabulate the slopes with and without borrowing and the question; show the figure."""
    return [
        "### Results\n",
        borrow_table_md(s.borrow, o.fit, o.indication),
        "",
        binary_question_table(s.answers, s.spec, alone=(s.question.label, s.pred_alone)),
        "",
        f"![Slopes with and without borrowing](figures/{BORROW_FIGURE})\n",
        f"*Odds ratio of abstinence for {s.anchor}, median and 95% CrI, per indication: "
        "with borrowing (exchangeable slopes), with the informative prior, without "
        "borrowing, and from the opioid-only analysis of section 1.*\n",
    ]


def non_randomised_caveat(s: SudNumbers, study: str, g: pd.DataFrame) -> str:
    """Describe a non-randomised study: comparison, observed odds ratio, bias term."""
    notes = " ".join(str(n) for n in g["notes"].dropna())
    ctl = ", ".join(t.replace("_", " ") for t in g.loc[g["dose_mg_per_kg"] == 0, "treatment"])
    e, c = g[g["role"] == "experimental"].iloc[0], g[g["role"] == "control"].iloc[0]
    obs_or = (e.events / (e.n - e.events)) / (c.events / (c.n - c.events))
    design = g["design"].iloc[0]
    return (
        f"- {study_name(study)} is non-randomised ({design}; ketamine vs {ctl}), "
        f"with an observed odds ratio of {sig(obs_or)}"
        + (
            f"; its timepoint {g['timepoint'].iloc[0]} is a lower bound ('more than one year')"
            if "lower bound" in notes
            else ""
        )
        + (
            "; its dose, route and number of sessions come from a secondary source only"
            if "seed 004 only" in notes
            else ""
        )
        + f". Its bias term acts on the relative effect (ketamine arm only; SD "
        f"{dict(s.spec.model.bias_sd or {}).get(design, 0.3):g}, mean favouring ketamine): "
        "it shifts that difference towards no effect and widens it; it does not remove it."
    )


def sud_caveats(a: Analyses, s: SudNumbers) -> list[str]:
    """Non-randomised studies, other timepoints, divergences, the borrowing prior."""
    arms, contrasts = _sud_tables(s)
    out = ["### Caveats\n"]
    for study, g in arms[arms["design"] != "rct"].groupby("study", sort=False):
        out.append(non_randomised_caveat(s, study, g))
    for r in contrasts.itertuples():
        out.append(
            f"- {study_name(r.study)} enters as a published odds ratio at {r.timepoint}, not "
            f"{s.spec.data.timepoint[0]}; `{r.derived}`."
        )
    div = next((c for c in s.fit.checks if c.name == "divergences"), None)
    if div is not None and div.verdict != "pass":
        out.append(
            f"- The main fit had {plural(int(div.value), 'divergent transition')} out of "
            f"{s.spec.sampler.chains * s.spec.sampler.draws} draws."
        )
    if a.check is not None:
        ta, divergences, row = a.check
        w = s.b_with
        out.append(
            f"- A check refit with `target_accept` = {ta} had "
            f"{plural(divergences, 'divergent transition')}; {s.focus} `{s.parameter}` "
            "(with borrowing) "
            f"{num(row['q50'])} ({ci(num(row['q2.5']), num(row['q97.5']))}) against "
            f"{num(w['q50'])} ({ci(num(w['q2.5']), num(w['q97.5']))}) in the main fit."
        )
    out.append(
        f"- How much is borrowed is set by the prior on `indication_sd` "
        f"({s.spec.priors.get('indication_sd')}); the spec's sensitivity section varies it "
        "(`bayeskit sensitivity models/sud_abstinence.toml`)."
    )
    return out + [""]


def section_sud(a: Analyses, s: SudNumbers, o: OudNumbers) -> list[str]:
    """Section 3: borrowing strength from alcohol use disorder, data to caveats."""
    out = [f"## 3. Borrowing strength from alcohol use disorder (`{s.spec.name}`)\n"]
    out += sud_data_and_model(s) + sud_results(s, o)
    out += ["### Diagnostics\n", diag_table(s.fit), ""]
    return out + sud_caveats(a, s)
