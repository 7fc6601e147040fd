"""The page's header paragraphs: the bottom line of each analysis, and its computation."""

from __future__ import annotations

import numpy as np
import pandas as pd

from .fits import Analyses
from .fmt import (
    ROUTE_NAMES,
    ci,
    dose,
    interval,
    num,
    outcome_list,
    pct,
    plural,
    prob,
    q,
    route_list,
    sig,
    study_name,
)
from .numbers import WITHOUT, OudNumbers, OwNumbers, SudNumbers
from .tables import diag_sentence


def oud_contrast_phrases(tab: pd.DataFrame) -> list[str]:
    """'0.2 vs 2 mg/kg IM (Krupitsky 2002)', '1 vs 3 sessions of 2 mg/kg IM (...)'."""
    out = []
    for s, g in tab.groupby("study", sort=False):
        e = g[g["role"] == "experimental"].iloc[0]
        c = g[g["role"] == "control"].iloc[0]
        route = ROUTE_NAMES.get(e["route"], e["route"])
        if e["dose_mg_per_kg"] != c["dose_mg_per_kg"]:
            out.append(
                f"{dose(c['dose_mg_per_kg'])} vs {dose(e['dose_mg_per_kg'])} mg/kg "
                f"{route} ({study_name(s)})"
            )
        else:
            out.append(
                f"{c['sessions']:g} vs {e['sessions']:g} sessions of "
                f"{dose(e['dose_mg_per_kg'])} mg/kg {route} ({study_name(s)})"
            )
    return out


def bottom_line_oud(o: OudNumbers) -> list[str]:
    """Write the OUD paragraph: P(gain), P(relevant gain), predictions, the gain."""
    r1, r3, q1, q3, tab = o.r1, o.r3, o.q1, o.q3, o.tab
    studies = list(dict.fromkeys(tab["study"]))
    intro = (
        f"**Opioid use disorder, abstinence at {o.spec.data.timepoint}.** The evidence is "
        f"{plural(len(studies), 'small randomised trial')} ({int(tab['n'].sum())} patients in "
        f"{len(tab)} arms, all {route_list(o.routes)}), and "
        + ("every arm received ketamine: " if o.all_on_ketamine else "")
        + f"{' and '.join(oud_contrast_phrases(tab))}. Under the dose-response model:\n"
    )

    def band(r, col):
        return ci(pct(q(r, col, "q2.5")), pct(q(r, col, "q97.5")))

    gain = [f"{100 * q(r1, 'difference', c):.0f}" for c in ("q50", "q2.5", "q97.5")]
    return [
        intro,
        f"- {q1.label}, against no ketamine: P(any gain in abstinence) = "
        f"**{prob(q(r1, 'effect', 'prob'))}**. This is P(slope > 0) "
        f"({prob(o.p_slope_pos)}), which the dose and session contrasts test directly.",
        f"- P(gain of at least {100 * q1.threshold:.0f} percentage points) = "
        f"**{prob(q(r1, 'difference', 'prob'))}** for {q1.label}, "
        f"{prob(q(r3, 'difference', 'prob'))} for {q3.label}. These depend on the "
        "extrapolation to no ketamine (next point).",
        f"- Predicted abstinence with {q1.label}: **{pct(q(r1, 'p_with'))}** "
        f"({band(r1, 'p_with')}); with {q3.label}: **{pct(q(r3, 'p_with'))}** "
        f"({band(r3, 'p_with')}). Without ketamine: {pct(q(r1, 'p_without'))} "
        f"({band(r1, 'p_without')}), an extrapolation: no trial had a no-ketamine arm, and "
        f"{100 * o.share_below:.0f}% of the modelled effect of {dose(q1.dose_mg_per_kg)} mg/kg "
        f"lies below the lowest dose studied ({dose(o.lowest)} mg/kg).",
        f"- Gain in abstinence, {q1.label}: {gain[0]} percentage points "
        f"({ci(gain[1], gain[2])}).\n",
    ]


def reduction(w: OwNumbers, row: pd.DataFrame, unit_row: str, d: int) -> str:
    """Write a withdrawal reduction as a positive number: **median** (95% CrI)."""
    lo, mid, hi = (w.sign * q(row, unit_row, c) for c in ("q97.5", "q50", "q2.5"))
    return f"**{num(mid, d)}** ({ci(num(lo, d), num(hi, d))})"


def _unit_digits(w: OwNumbers) -> dict[str, int]:
    return {u: (1 if abs(s) < 8 else 0) for u, s in w.spec.report.scales.items()}


def bottom_line_ow(w: OwNumbers) -> list[str]:
    """Write the withdrawal paragraph: SMD, natural scales, with and without case reports."""
    rw, jov, digits = w.row, w.randomised, _unit_digits(w)
    jov_n = int((jov["n1i"] + jov["n2i"]).sum())
    return [
        f"**Opioid withdrawal.** Expected reduction in withdrawal from {w.question.label} "
        f"(one infusion): SMD {reduction(w, rw, 'effect', 2)}; P(any reduction) = "
        f"{prob(q(rw, 'effect', 'prob'))}. Re-expressed on natural scales (the same SMD times "
        "an assumed SD, not separate measurements): "
        + "; ".join(f"{reduction(w, rw, f'effect_{u}', digits[u])} {u}" for u in digits)
        + f". The only randomised evidence is {plural(len(w.rct_studies), 'RCT')} "
        f"({', '.join(study_name(s) for s in w.rct_studies)}, {jov_n} patients, outcome "
        f"{outcome_list(w.randomised['outcome'])}, {jov['timepoint'].iloc[0]}); without the "
        f"{plural(len(w.case_reports), 'case report')} the expected reduction is SMD "
        f"{reduction(w, w.rct_only, 'effect', 2)}, P(any reduction) = "
        f"{prob(q(w.rct_only, 'effect', 'prob'))}.\n"
    ]


def borrow_sentence(s: SudNumbers) -> str:
    """Say, from the numbers, which way borrowing moved the contrast and what followed."""
    ind, w, a = s.focus, s.b_with, s.b_alone
    other = [s.borrow.loc[(o, WITHOUT)]["q50"] for o in s.others if (o, WITHOUT) in s.borrow.index]
    names = "/".join(s.others)
    what = "dose contrast"
    if other and w["q50"] < a["q50"] and max(other) < a["q50"]:
        parts = [f"Borrowing pulls the {ind} {what} down, towards the smaller {names} one,"]
    elif other and w["q50"] > a["q50"] and min(other) > a["q50"]:
        parts = [f"Borrowing pulls the {ind} {what} up, towards the larger {names} one,"]
    else:
        parts = [
            f"Borrowing moves the {ind} median log odds ratio from {num(a['q50'])} to "
            f"{num(w['q50'])}"
        ]
    narrower = (w["q97.5"] - w["q2.5"]) < (a["q97.5"] - a["q2.5"])
    parts.append("and narrows its interval" if narrower else "and widens its interval")
    pw, pa = q(s.pred_with, "difference", "prob"), q(s.pred_alone, "difference", "prob")
    if abs(pw - pa) < 0.03:
        tail = "; the probability of a clinically relevant gain hardly changes" + (
            ", because the lower median offsets the narrower interval"
            if narrower and w["q50"] < a["q50"]
            else ""
        )
    else:
        tail = (
            f"; the probability of a clinically relevant gain "
            f"{'rises' if pw > pa else 'falls'} from {prob(pa)} to {prob(pw)}"
        )
    return " ".join(parts) + tail + "."


def orpd(b) -> str:
    """Odds ratio from a log odds ratio's summary row: **median** (95% CrI)."""
    return interval(b, np.exp, sig)


def informative_prior_clause(s: SudNumbers) -> str:
    """', and X with the informative prior (ESS ...; weight ... -> ...)', or ''."""
    b = s.b_prior
    if b is None:
        return ""
    return (
        f"; {orpd(b)} with the {'/'.join(s.others)} posterior as an informative robust "
        f"mixture prior (effective sample size {b['prior_ess']:.0f} {b['ess_unit']}; its "
        f"weight {b['prior_weight']:.2f} before the data, {b['posterior_weight']:.2f} after)"
    )


def bottom_line_borrowing(s: SudNumbers) -> list[str]:
    """How much the alcohol evidence moves the opioid dose contrast and question."""
    ind, sq, w, a = s.focus, s.question, s.b_with, s.b_alone
    narrowing = 1 - (w["q97.5"] - w["q2.5"]) / (a["q97.5"] - a["q2.5"])
    table = s.fit.data.table
    other_desc = ", ".join(
        f"{study_name(st)} ({g['design'].iloc[0].replace('_', ' ')})"
        for st, g in table.loc[table["indication"].isin(s.others)].groupby("study", sort=False)
    )
    return [
        f"**How much the alcohol evidence moves the opioid estimate.** In the joint "
        f"{'/'.join(s.fit.data.indication)} analysis ({other_desc} added), the {ind} "
        f"odds ratio of abstinence for {s.anchor} is {orpd(w)} with borrowing "
        f"(exchangeable slopes) and {orpd(a)} without"
        f"{informative_prior_clause(s)}; the exchangeable interval is "
        f"{100 * narrowing:.0f}% narrower on the log scale than without. P(odds ratio > 1): "
        f"{prob(a['prob_positive'])} without, {prob(w['prob_positive'])} with borrowing. "
        f"P({sq.label.split(': ')[-1]} raises {ind} abstinence by at least "
        f"{100 * sq.threshold:.0f} percentage points): "
        f"{prob(q(s.pred_alone, 'difference', 'prob'))} without, "
        f"{prob(q(s.pred_with, 'difference', 'prob'))} with borrowing. " + borrow_sentence(s) + "\n"
    ]


def not_supported(o: OudNumbers, w: OwNumbers) -> list[str]:
    """Say what the evidence does not support: precision, no-ketamine, routes, COWS."""
    ow_routes = route_list(sorted(set(w.tab["route"])))
    outcomes = outcome_list(w.randomised["outcome"])
    cows = (
        ""
        if "cows" in set(w.randomised["outcome"])
        else f" A measured COWS effect during buprenorphine induction: the randomised evidence "
        f"is {outcomes} under anaesthesia, and COWS enters only through "
        f"{plural(len(w.case_reports), 'case report')}."
    )
    return [
        "**What the evidence does not support.** A precise effect size: every interval "
        "above is wide. A direct comparison with no ketamine in opioid use disorder: it "
        "exists only through the model. Routes and regimens no trial used: for opioid use "
        f"disorder all data are {route_list(o.routes)}, for withdrawal {ow_routes}; "
        "predictions for other routes rest on bioavailability alone." + cows + "\n"
    ]


def computation(a: Analyses, s: SudNumbers) -> list[str]:
    """Give the sampling verdict of each analysis, and the divergence check refit if any."""
    sentences = [f"{name}: {diag_sentence(a.fits[name])}" for name in a.specs]
    check = ""
    if a.check is not None:
        ta, divergences, row = a.check
        check = (
            f"; a check refit with `target_accept` = {ta} had "
            f"{plural(divergences, 'divergent transition')} and {s.focus} `{s.parameter}` median "
            f"{num(row['q50'])} (main fit {num(s.b_with['q50'])})"
        )
    return [
        f"**Computation.** {'. '.join(sentences)}{check}. Pareto k flags influential arms "
        "for leave-one-out, not a sampling problem. Details per analysis below.\n"
    ]
