"""Generate docs/ketamine.md and docs/figures/ketamine_*.png from the bundled ketamine analyses.

Run from the repository root:

    .venv/bin/python docs/make_ketamine_page.py

It fits the three specs in models/ (oud_abstinence, ow_withdrawal, sud_abstinence), plus
the refits that the page reports (the alcohol/opioid analysis without borrowing, and the
withdrawal analysis without its case reports), and writes every number on the page from
those fits or from the evidence tables. Nothing in the page is typed by hand: edit this
script, not the page. Takes about 1-2 minutes.
"""

from __future__ import annotations

import datetime as dt
import subprocess
import sys
import time
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import bayeskit as bk  # noqa: E402
from bayeskit.questions import answer_questions, borrowing_table, effect_draws  # noqa: E402
from bayeskit.spec import load_spec  # noqa: E402

DOCS = ROOT / "docs"
FIGS = DOCS / "figures"
PAGE = DOCS / "ketamine.md"
SCRIPT = "docs/make_ketamine_page.py"
DPI = 100
ROUTE_COLOURS = {
    "iv": "#1b6ca8",
    "im": "#c0392b",
    "sl": "#27ae60",
    "oral": "#8e44ad",
    "intranasal": "#7f8c8d",
}
OUTCOME_NAMES = {
    "peak_map": "peak mean arterial pressure",
    "peak_hr": "peak heart rate",
    "cows": "COWS score",
}
ROUTE_NAMES = {"iv": "IV", "im": "IM", "sl": "SL", "oral": "oral", "intranasal": "intranasal"}


# --------------------------------------------------------------------------- formatting


def pct(p: float, digits: int = 0) -> str:
    """A probability of an outcome as a percentage."""
    return f"{100 * p:.{digits}f}%"


def prob(p: float) -> str:
    """A posterior probability: whole percent, one decimal near 0 or 1."""
    if p > 0.995:
        return f"{100 * p:.1f}%" if p < 0.9995 else ">99.9%"
    if p < 0.005:
        return f"{100 * p:.1f}%" if p >= 0.0005 else "<0.1%"
    return f"{100 * p:.0f}%"


def sig(x: float, n: int = 2) -> str:
    """N significant figures, without scientific notation."""
    if x == 0 or not np.isfinite(x):
        return f"{x:g}"
    digits = max(n - 1 - int(np.floor(np.log10(abs(x)))), 0)
    return f"{x:.{digits}f}"


def num(x: float, d: int = 2) -> str:
    s = f"{x:.{d}f}"
    return "0" + s[2:] if s.startswith("-0") and float(s) == 0 else s


def ci(lo: str, hi: str) -> str:
    return f"95% CrI {lo} to {hi}"


def md_table(header: list[str], rows: list[list], align: str | None = None) -> str:
    align = align or "l" + "r" * (len(header) - 1)
    marks = {"l": "---", "r": "---:", "c": ":---:"}
    out = ["| " + " | ".join(header) + " |", "| " + " | ".join(marks[a] for a in align) + " |"]
    out += ["| " + " | ".join(str(c) for c in r) + " |" for r in rows]
    return "\n".join(out)


def study_name(s: str) -> str:
    """KRUPITSKY2002 -> Krupitsky 2002; HEENEY -> Heeney."""
    head = s.rstrip("0123456789")
    year = s[len(head) :]
    return head.capitalize() + (f" {year}" if year else "")


def words(n: int) -> str:
    return {0: "no", 1: "one", 2: "two", 3: "three", 4: "four", 5: "five", 6: "six"}.get(n, str(n))


def plural(n: int, one: str, many: str | None = None) -> str:
    return f"{words(n)} {one if n == 1 else (many or one + 's')}"


def dose(x: float) -> str:
    return f"{x:g}"


# --------------------------------------------------------------------------- fitting


def run_spec(name: str):
    spec = load_spec(ROOT / "models" / f"{name}.toml")
    t0 = time.perf_counter()
    fit = bk.fit(spec.data_files(), **spec.fit_kwargs())
    print(f"  {name}: {time.perf_counter() - t0:.0f} s", flush=True)
    return spec, fit


def q(table: pd.DataFrame, row, col: str = "q50") -> float:
    return float(table.loc[row, col])


def draws_q(x, qs=(0.025, 0.5, 0.975)) -> np.ndarray:
    return np.quantile(np.asarray(x).ravel(), qs)


def diag_value(c) -> str:
    if c.value is None or not np.isfinite(c.value):
        return "n/a"
    if c.name == "r_hat":
        return f"{c.value:.3f}"
    if c.name in ("ess_bulk", "ess_tail", "divergences", "tree_depth"):
        return f"{c.value:.0f}"
    return f"{c.value:.2f}"


def diag_table(fit) -> str:
    rows = [
        [
            f"`{c.name}`",
            f"**{c.verdict}**" if c.verdict != "pass" else c.verdict,
            diag_value(c),
            c.message.replace("|", "/"),
        ]
        for c in fit.checks
    ]
    return md_table(["check", "verdict", "worst value", "what it means"], rows, "llrl")


def diag_sentence(fit) -> str:
    """One line: the sampling verdict (Pareto k apart, as Fit.verdict does) and Pareto k."""
    sampling = [c for c in fit.checks if c.name != "pareto_k"]
    bad = [c for c in sampling if c.verdict != "pass"]
    out = f"sampling checks **{fit.verdict}**"
    if bad:
        out += " (" + ", ".join(f"`{c.name}` {c.verdict}: {diag_value(c)}" for c in bad) + ")"
    pk = next((c for c in fit.checks if c.name == "pareto_k"), None)
    if pk is not None:
        out += f"; Pareto k {pk.verdict} (max {diag_value(pk)})"
    return out


def data_rows_not_used(spec, fit) -> list[str]:
    """Rows of the spec's files that the fit did not use, by study, outcome and timepoint."""
    used = fit.data.table
    keys_used = set(
        zip(
            used["study"].astype(str),
            used["outcome"].astype(str),
            used["timepoint"].astype(str),
            strict=True,
        )
    )
    out = []
    for path in spec.data_files():
        raw = pd.read_csv(path)
        for (s, o, t), grp in raw.groupby(["study", "outcome", "timepoint"], sort=False):
            if (str(s), str(o), str(t)) not in keys_used:
                out.append(
                    f"{study_name(str(s))} ({grp['design'].iloc[0].replace('_', ' ')}): "
                    f"`{o}` at {t}"
                )
    return out


# --------------------------------------------------------------------------- main


def main() -> None:
    t_start = time.perf_counter()
    started = dt.datetime.now(dt.UTC)
    FIGS.mkdir(parents=True, exist_ok=True)
    import arviz
    import pymc

    print("fitting:", flush=True)
    oud_spec, oud = run_spec("oud_abstinence")
    ow_spec, ow = run_spec("ow_withdrawal")
    sud_spec, sud = run_spec("sud_abstinence")

    # alcohol/opioid: the library's borrowing table (a refit without borrowing) ...
    t0 = time.perf_counter()
    borrow = borrowing_table(sud, sud_spec)
    # ... and the same refit kept here, for draws (probabilities and predictions)
    kw = sud_spec.fit_kwargs()
    kw["model_options"] = kw["model_options"] | {"borrowing": False}
    sud_alone = bk.fit(sud_spec.data_files(), **kw)
    print(f"  sud_abstinence without borrowing (x2): {time.perf_counter() - t0:.0f} s", flush=True)

    # the joint fit again with a higher target_accept, when the main fit had divergences
    check = None
    div = next((c for c in sud.checks if c.name == "divergences"), None)
    if div is not None and div.value and div.value > 0:
        t0 = time.perf_counter()
        ta = 0.99
        kw2 = sud_spec.fit_kwargs() | {"target_accept": ta}
        sud_ta = bk.fit(sud_spec.data_files(), **kw2)
        d2 = next(c for c in sud_ta.checks if c.name == "divergences")
        focus = sud_spec.questions[0].indication
        check = (ta, int(d2.value), sud_ta.summary().loc[f"beta_dose[{focus}]"])
        print(f"  sud_abstinence, target_accept {ta}: {time.perf_counter() - t0:.0f} s", flush=True)

    # withdrawal without the case reports
    ow_tab = ow.data.table
    ow_study_design = ow_tab.drop_duplicates("study").set_index("study")["design"]
    case_reports = [s for s, d in ow_study_design.items() if d == "case_report"]
    t0 = time.perf_counter()
    ow_rct = bk.fit(ow_spec.data_files(), **ow_spec.fit_kwargs(), exclude=case_reports)
    print(f"  ow_withdrawal without case reports: {time.perf_counter() - t0:.0f} s", flush=True)

    # ------------------------------------------------------------------ OUD numbers
    oud_q = answer_questions(oud, oud_spec)
    # the 1- and 3-session questions at the trial dose and route
    im_qs = [qq for qq in oud_spec.questions if qq.route == "im"]
    q1 = min(im_qs, key=lambda qq: qq.sessions)
    q3 = max(im_qs, key=lambda qq: qq.sessions)
    r1 = oud_q.loc[q1.label]
    r3 = oud_q.loc[q3.label]
    threshold = q1.threshold
    oud_tab = oud.data.table
    oud_studies = list(dict.fromkeys(oud_tab["study"]))
    oud_n = int(oud_tab["n"].sum())
    oud_routes = sorted(set(oud_tab["route"].dropna()))
    oud_doses = sorted(set(oud_tab["dose_mg_per_kg"]))
    lowest = min(d for d in oud_doses if d > 0)
    all_on_ketamine = bool((oud_tab["dose_mg_per_kg"] > 0).all())
    low_route = oud_tab.loc[oud_tab["dose_mg_per_kg"] == lowest, "route"].iloc[0]
    # share of the modelled effect of the question dose that lies below the lowest dose
    e_low = effect_draws(oud, route=low_route, dose_mg_per_kg=lowest, sessions=1)["effect"]
    e_hi = effect_draws(oud, route=q1.route, dose_mg_per_kg=q1.dose_mg_per_kg, sessions=1)["effect"]
    share_below = float(np.median((e_low / e_hi).values))
    oud_sum = oud.summary()
    ind_oud = oud.data.indication[0]
    p_slope_pos = float((oud.idata["posterior"]["beta_dose"].sel(indication=ind_oud) > 0).mean())

    # ------------------------------------------------------------------ OW numbers
    ow_q = answer_questions(ow, ow_spec)
    owq = ow_spec.questions[0]
    rw = ow_q.loc[owq.label]
    ow_scales = ow_spec.report.scales
    pw_rct = bk.predict(
        ow_rct,
        route=owq.route,
        dose_mg_per_kg=owq.dose_mg_per_kg,
        sessions=owq.sessions,
        scales=ow_scales,
        better=ow_spec.report.better,
    )
    ow_sum = ow.summary()
    ind_ow = ow.data.indication[0]
    rct_studies = [s for s, d in ow_study_design.items() if d in ("rct", "crossover_rct")]
    bias_sd = dict(ow_spec.model.bias_sd or {})
    outcome_sd = dict(ow_spec.data.outcome_sd or {})

    # ------------------------------------------------------------------ SUD numbers
    sud_q = answer_questions(sud, sud_spec)
    sq = sud_spec.questions[0]
    ind_focus = sq.indication
    others = [i for i in sud.data.indication if i != ind_focus]
    pred_alone = bk.predict(
        sud_alone,
        route=sq.route,
        dose_mg_per_kg=sq.dose_mg_per_kg,
        sessions=sq.sessions,
        indication=ind_focus,
        threshold=sq.threshold,
        better=sud_spec.report.better,
    )
    pred_with = sud_q.loc[sq.label]

    def p_pos(f, ind):
        return float((f.idata["posterior"]["beta_dose"].sel(indication=ind) > 0).mean())

    # ------------------------------------------------------------------ figures
    fig_oud(oud, oud_tab, q1, q3, str(oud_spec.data.timepoint))
    fig_ow(ow, ow_tab, ow_spec, owq)
    fig_borrow(borrow, oud, ind_oud, sud_spec.model.exposure_ref)
    for p in sorted(FIGS.glob("ketamine_*.png")):
        print(f"  {p.relative_to(ROOT)}: {p.stat().st_size / 1024:.0f} KB")

    # ------------------------------------------------------------------ page
    elapsed = time.perf_counter() - t_start
    L: list[str] = []
    add = L.append
    seeds = ", ".join(f"`{s.name}` {s.sampler.seed}" for s in (oud_spec, ow_spec, sud_spec))
    samp = oud_spec.sampler
    add("# Ketamine for opioid use disorder and opioid withdrawal: what the evidence supports\n")
    add(
        f"> Generated by `{SCRIPT}` on {started:%Y-%m-%d %H:%M} UTC in {elapsed:.0f} s, "
        f"with bayeskit {bk.__version__}{git_note()}, PyMC {pymc.__version__}, "
        f"ArviZ {arviz.__version__}. Seeds (from the specs): {seeds}; "
        f"{samp.chains} chains x {samp.draws} draws after {samp.tune} tuning steps "
        f"(NUTS, {samp.sampler}). Every number on this page comes from those fits or from "
        "the evidence tables; do not edit the page by hand, re-run the script.\n"
    )
    add(
        "Provenance of every data row (sources, derived numbers, coding choices): "
        "[data/README.md](../data/README.md). The spec keys are described in "
        "[models/README.md](../models/README.md); the specs are "
        "[`oud_abstinence.toml`](../models/oud_abstinence.toml), "
        "[`ow_withdrawal.toml`](../models/ow_withdrawal.toml) and "
        "[`sud_abstinence.toml`](../models/sud_abstinence.toml).\n"
    )
    add(
        "Intervals are 95% posterior credible intervals (CrI); point estimates are posterior "
        'medians. "P(...)" is a posterior probability under the model and its priors.\n'
    )

    # ---------------- bottom line
    add("## Bottom line\n")
    n_arms = len(oud_tab)
    contrasts_desc = oud_contrast_phrases(oud_tab)
    add(
        f"**Opioid use disorder, abstinence at {oud_spec.data.timepoint}.** The evidence is "
        f"{plural(len(oud_studies), 'small randomised trial')} ({oud_n} patients in "
        f"{n_arms} arms, all {', '.join(ROUTE_NAMES[r] for r in oud_routes)}), and "
        + ("every arm received ketamine: " if all_on_ketamine else "")
        + f"{' and '.join(contrasts_desc)}. Under the dose-response model:\n"
    )
    add(
        f"- {q1.label}, against no ketamine: P(any gain in abstinence) = "
        f"**{prob(q(r1, 'effect', 'prob'))}**. This is P(slope > 0) "
        f"({prob(p_slope_pos)}), which the dose and session contrasts test directly."
    )
    add(
        f"- P(gain of at least {100 * threshold:.0f} percentage points) = "
        f"**{prob(q(r1, 'difference', 'prob'))}** for {q1.label}, "
        f"{prob(q(r3, 'difference', 'prob'))} for {q3.label}. These depend on the "
        "extrapolation to no ketamine (next point)."
    )
    add(
        f"- Predicted abstinence with {q1.label}: **{pct(q(r1, 'p_with'))}** "
        f"({ci(pct(q(r1, 'p_with', 'q2.5')), pct(q(r1, 'p_with', 'q97.5')))}); with "
        f"{q3.label}: **{pct(q(r3, 'p_with'))}** "
        f"({ci(pct(q(r3, 'p_with', 'q2.5')), pct(q(r3, 'p_with', 'q97.5')))}). "
        f"Without ketamine: {pct(q(r1, 'p_without'))} "
        f"({ci(pct(q(r1, 'p_without', 'q2.5')), pct(q(r1, 'p_without', 'q97.5')))}), "
        "an extrapolation: no trial had a no-ketamine arm, and "
        f"{100 * share_below:.0f}% of the modelled effect of {dose(q1.dose_mg_per_kg)} mg/kg "
        f"lies below the lowest dose studied ({dose(lowest)} mg/kg)."
    )
    gain = [f"{100 * q(r1, 'difference', c):.0f}" for c in ("q50", "q2.5", "q97.5")]
    add(
        f"- Gain in abstinence, {q1.label}: {gain[0]} percentage points ({ci(gain[1], gain[2])}).\n"
    )

    red = -1 if ow_spec.report.better == "lower" else 1

    def reduction(row, unit_row, d):
        lo, mid, hi = (red * q(row, unit_row, c) for c in ("q97.5", "q50", "q2.5"))
        return f"**{num(mid, d)}** ({ci(num(lo, d), num(hi, d))})"

    unit_digits = {u: (1 if abs(s) < 8 else 0) for u, s in ow_scales.items()}
    jov = ow_tab[ow_tab["design"].isin(["rct", "crossover_rct"])]
    jov_n = int((jov["n1i"] + jov["n2i"]).sum())
    jov_outcomes = ", ".join(OUTCOME_NAMES.get(o, f"`{o}`") for o in jov["outcome"])
    add(
        f"**Opioid withdrawal.** Expected reduction in withdrawal from {owq.label} "
        f"(one infusion): SMD {reduction(rw, 'effect', 2)}; P(any reduction) = "
        f"{prob(q(rw, 'effect', 'prob'))}. Re-expressed on natural scales (the same SMD times "
        "an assumed SD, not separate measurements): "
        + "; ".join(f"{reduction(rw, f'effect_{u}', unit_digits[u])} {u}" for u in ow_scales)
        + f". The only randomised evidence is {plural(len(rct_studies), 'RCT')} "
        f"({', '.join(study_name(s) for s in rct_studies)}, {jov_n} patients, outcome "
        f"{jov_outcomes}, {jov['timepoint'].iloc[0]}); without the "
        f"{plural(len(case_reports), 'case report')} the expected reduction is SMD "
        f"{reduction(pw_rct, 'effect', 2)}, P(any reduction) = "
        f"{prob(q(pw_rct, 'effect', 'prob'))}.\n"
    )

    b_with = borrow.loc[(ind_focus, "with borrowing")]
    b_alone = borrow.loc[(ind_focus, "without borrowing")]
    w_with = np.exp(b_with["q97.5"]) / np.exp(b_with["q2.5"])
    w_alone = np.exp(b_alone["q97.5"]) / np.exp(b_alone["q2.5"])
    other_studies = sud.data.table.loc[sud.data.table["indication"].isin(others)]
    other_desc = ", ".join(
        f"{study_name(s)} ({g['design'].iloc[0].replace('_', ' ')})"
        for s, g in other_studies.groupby("study", sort=False)
    )
    add(
        f"**How much the alcohol evidence moves the opioid estimate.** In the joint "
        f"{'/'.join(sud.data.indication)} analysis ({other_desc} added), the {ind_focus} "
        f"odds ratio per doubling of exposure (strictly, of 1 + E / "
        f"{dose(sud_spec.model.exposure_ref)} mg/kg) is {orpd(b_with)} with borrowing and "
        f"{orpd(b_alone)} without; the interval is "
        f"{100 * (1 - np.log(w_with) / np.log(w_alone)):.0f}% "
        f"narrower on the log scale. P({ind_focus} slope > 0): {prob(p_pos(sud_alone, ind_focus))} "
        f"without, {prob(p_pos(sud, ind_focus))} with borrowing. P({sq.label.split(': ')[-1]} "
        f"raises {ind_focus} abstinence by at least {100 * sq.threshold:.0f} percentage points): "
        f"{prob(q(pred_alone, 'difference', 'prob'))} without, "
        f"{prob(q(pred_with, 'difference', 'prob'))} with borrowing. "
        + borrow_sentence(borrow, ind_focus, others, pred_alone, pred_with)
        + "\n"
    )

    add(
        "**What the evidence does not support.** A precise effect size: every interval "
        "above is wide. A direct comparison with no ketamine in opioid use disorder: it "
        "exists only through the model. Routes and regimens no trial used: for opioid use "
        f"disorder all data are {', '.join(ROUTE_NAMES[r] for r in oud_routes)}, for "
        f"withdrawal {', '.join(ROUTE_NAMES[r] for r in sorted(set(ow_tab['route'])))}; "
        "predictions for other routes rest on bioavailability alone."
        + (
            ""
            if "cows" in set(jov["outcome"])
            else f" A measured COWS effect during buprenorphine induction: the randomised evidence "
            f"is {jov_outcomes} under anaesthesia, and COWS enters only through "
            f"{plural(len(case_reports), 'case report')}."
        )
        + "\n"
    )
    add(
        f"**Computation.** {oud_spec.name}: {diag_sentence(oud)}. {ow_spec.name}: "
        f"{diag_sentence(ow)}. {sud_spec.name}: {diag_sentence(sud)}"
        + (
            f"; a check refit with `target_accept` = {check[0]} had "
            f"{plural(check[1], 'divergent transition')} and {ind_focus} slope median "
            f"{num(check[2]['q50'])} (main fit {num(b_with['q50'])})"
            if check is not None
            else ""
        )
        + ". Pareto k flags influential arms for leave-one-out, not a sampling problem. "
        "Details per analysis below.\n"
    )

    # ---------------- section 1: OUD
    add(f"## 1. Opioid use disorder: abstinence at {oud_spec.data.timepoint} (`{oud_spec.name}`)\n")
    add("### Data\n")
    add(arm_table(oud_tab))
    add("")
    unused = data_rows_not_used(oud_spec, oud)
    if unused:
        add("Not used (other timepoint or outcome): " + "; ".join(unused) + ".\n")
    derived = [
        (study_name(r.study), r.arm, r.derived)
        for r in oud_tab.itertuples()
        if isinstance(r.derived, str) and r.derived.strip()
    ]
    add("### Model\n")
    m = oud_spec.model
    add(
        "Each arm's systemic exposure is E = dose x bioavailability(route)"
        + (" x sessions" if m.sessions == "multiplier" else "")
        + f"; the log-odds of abstinence rise by `beta_dose` per doubling of "
        f"(1 + E / {dose(m.exposure_ref)} mg/kg) ({m.form}), with a random baseline per "
        f"trial and a between-trial SD `tau` of the contrast. Priors: "
        + ", ".join(f"`{k}` ~ {v}" for k, v in oud_spec.priors.items())
        + ". Bioavailability has Beta priors from `data/routes.csv` (posterior medians: "
        + ", ".join(
            f"{ROUTE_NAMES[r]} {num(q(oud_sum, f'bioavailability[{r}]'), 2)}"
            for r in ("iv", "im", "sl", "oral")
        )
        + ").\n"
    )
    add("### Results\n")
    add(
        param_table(
            oud_sum,
            [
                (f"beta_dose[{ind_oud}]", "slope: log-OR per doubling", 2),
                (f"or_per_doubling[{ind_oud}]", "odds ratio per doubling", "s"),
                ("tau", "between-trial SD of the contrast (log-OR)", 2),
                (f"alpha_mu[{ind_oud}]", "baseline log-odds without ketamine", 2),
            ],
        )
    )
    add("")
    add(binary_question_table(oud_q, oud_spec))
    add("")
    add("![Predicted abstinence by dose and route](figures/ketamine_oud_dose_response.png)\n")
    add(
        f"*Predicted abstinence at {oud_spec.data.timepoint} (posterior median and 95% band, "
        "for a trial population with the average baseline) against dose per session. Left: "
        "each route, one session; only the IM curve is anchored by trial data, the others are "
        f"it shifted by bioavailability. Right: IM, one session and {q3.sessions:g} sessions "
        "(dashed), with the observed arms (95% Wilson intervals). Grey zone: below the lowest "
        "dose any trial used.*\n"
    )
    add("### Diagnostics\n")
    add(diag_table(oud))
    add("")
    add("### Caveats\n")
    add(
        f"- {plural(len(oud_studies), 'trial').capitalize()}, {oud_n} patients, one research "
        "group; "
        + (
            "both comparisons are ketamine against ketamine (a lower dose, or fewer sessions), "
            if all_on_ketamine
            else ""
        )
        + "so every statement against no ketamine, including the baseline "
        f"{pct(q(r1, 'p_without'))}, is a model extrapolation below {dose(lowest)} mg/kg."
    )
    if derived:
        add(
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
    add(
        f"- Several sessions are modelled as {how} "
        f'(`sessions = "{m.sessions}"`): an assumption, tested by one contrast in one '
        "trial."
    )
    add(
        f"- IV, SL and oral curves are not observed: they are the IM curve shifted by the "
        f"bioavailability priors (`route_effect = {str(m.route_effect).lower()}`)."
    )
    pk = next((c for c in oud.checks if c.name == "pareto_k"), None)
    if pk is not None and pk.verdict != "pass":
        add(
            f"- Pareto k is {diag_value(pk)}: with {n_arms} arms, each arm carries much of "
            "the fit, so leave-one-out predictive checks are unreliable (not a sampling "
            "problem)."
        )
    add("")

    # ---------------- section 2: OW
    add(f"## 2. Opioid withdrawal (`{ow_spec.name}`)\n")
    add("### Data\n")
    add(contrast_table(ow_tab, measure="SMD"))
    add("")
    unused = data_rows_not_used(ow_spec, ow)
    if unused:
        add(
            "In the file but not in this analysis (binary outcomes, or a second measure of "
            "a study already counted): " + "; ".join(unused) + ".\n"
        )
    add(
        f"Outcomes, in order of preference: {', '.join(f'`{o}`' for o in ow_spec.data.outcome)}; "
        "a study contributes its first. Case reports (one patient, pre/post COWS) are put on "
        "the SMD scale with an assumed COWS SD of "
        + ", ".join(f"{v:g} ({k})" for k, v in outcome_sd.items())
        + f" and a change SD of {ow_spec.data.sd_change:g}.\n"
    )
    add("### Model\n")
    mo = ow_spec.model
    add(
        f"SMD (negative = less withdrawal) = `beta_dose` x log2(1 + E / "
        f"{dose(mo.exposure_ref)} mg/kg) + between-study deviation (`tau`) + for "
        "non-randomised designs a bias ~ Normal(`bias_mean`, design SD) with design SDs "
        + ", ".join(f"{k.replace('_', ' ')} {v:g}" for k, v in bias_sd.items())
        + ". Priors: "
        + ", ".join(f"`{k}` ~ {v}" for k, v in ow_spec.priors.items())
        + ".\n"
    )
    add("### Results\n")
    rows = [(f"beta_dose[{ind_ow}]", "slope: SMD per doubling", 2), ("tau", "between-study SD", 2)]
    rows += [(f"bias_mean[{d}]", f"mean bias, {d.replace('_', ' ')}", 2) for d in ow.data.design]
    rows += [(f"bias[{s}]", f"bias of {study_name(s)}", 2) for s in case_reports]
    add(param_table(ow_sum, rows))
    add("")
    add(smd_question_table(ow_q, ow_spec, pw_rct, case_reports))
    add("")
    add("![Withdrawal effect by IV dose](figures/ketamine_ow_withdrawal.png)\n")
    add(
        "*Withdrawal effect (SMD; right axis in COWS points) against IV dose, median and 95% "
        "band. Points: the studies' own contrasts with 95% intervals; for the case reports "
        "the thin bar adds the design-bias SD the model gives them.*\n"
    )
    add("### Diagnostics\n")
    add(diag_table(ow))
    add("")
    add("### Caveats\n")
    rate = infusion_rate_note(ow_spec, rct_studies)
    add(
        f"- The only RCT ({', '.join(study_name(s) for s in rct_studies)}) measured "
        f"{jov_outcomes} (`{jov['outcome'].iloc[0]}`, {jov['timepoint'].iloc[0]}): a "
        "haemodynamic sign of "
        "antagonist-precipitated withdrawal in patients under general anaesthesia, not a "
        "COWS score during buprenorphine induction."
    )
    if rate:
        add(
            f"- Its dose is an infusion rate, entered as a dose: `{rate}`. For this study the "
            f"figure's x-axis and the {dose(owq.dose_mg_per_kg)} mg/kg question are in "
            "mg/kg/h."
        )
    add(
        f"- The arm sizes of {', '.join(study_name(s) for s in rct_studies)} were assigned "
        "by list order from a Cochrane table and need checking against the full text "
        "([data/README.md](../data/README.md))."
    )
    bias_med = [q(ow_sum, f"bias[{s}]") for s in case_reports]
    add(
        f"- The {plural(len(case_reports), 'case report')} "
        f"({', '.join(study_name(s) for s in case_reports)}) enter with a design-bias SD of "
        f"{bias_sd.get('case_report', 1.0):g} SMD. Their pre/post falls "
        f"({', '.join(num(v, 1) for v in ow_tab.loc[ow_tab['design'] == 'case_report', 'yi'])} "
        f"SMD, assumed COWS SD {outcome_sd.get('cows', float('nan')):g}) include buprenorphine "
        "and the natural course; the model attributes "
        f"{', '.join(num(b, 1) for b in bias_med)} SMD of them to bias (posterior medians). "
        f"Still, they move the estimate: without them the expected reduction at "
        f"{owq.label} is {num(red * q(pw_rct, 'effect'), 2)} instead of "
        f"{num(red * q(rw, 'effect'), 2)} SMD, and its 95% CrI "
        + (
            "includes"
            if q(pw_rct, "effect", "q2.5") < 0 < q(pw_rct, "effect", "q97.5")
            else "excludes"
        )
        + " zero."
    )
    add(
        "- COWS points, mmHg and beats per minute are one SMD multiplied by assumed SDs ("
        + ", ".join(f"{u} {s:g}" for u, s in ow_scales.items())
        + "), not three independent findings."
    )
    add("")

    # ---------------- section 3: SUD
    add(f"## 3. Borrowing strength from alcohol use disorder (`{sud_spec.name}`)\n")
    add("### Data\n")
    sud_tab = sud.data.table
    sud_arms = sud_tab[sud_tab["n"].notna() & sud_tab["events"].notna()]
    sud_con = sud_tab[sud_tab["yi"].notna()] if "yi" in sud_tab else sud_tab.iloc[0:0]
    add(arm_table(sud_arms, show_indication=True))
    add("")
    if len(sud_con):
        add(contrast_table(sud_con, measure="OR", show_indication=True))
        add("")
    unused = data_rows_not_used(sud_spec, sud)
    if unused:
        add("Not used: " + "; ".join(unused) + ".\n")
    ms = sud_spec.model
    add("### Model\n")
    add(
        f"As in section 1, with one slope per indication. With borrowing the slopes are "
        f"exchangeable: `beta_dose[indication]` ~ Normal(`beta_dose_mu`, `indication_sd`), "
        f"`indication_sd` ~ {sud_spec.priors.get('indication_sd', 'default')}; without "
        f"borrowing each gets its own `beta_dose` ~ {sud_spec.priors.get('beta_dose')} (the "
        "trial-level SDs and the bias terms are still shared, so the no-borrowing OUD slope "
        "is not identical to section 1). Non-randomised studies get a bias with SD "
        + ", ".join(f"{k} {v:g}" for k, v in (ms.bias_sd or {}).items())
        + ".\n"
    )
    add("### Results\n")
    add(borrow_table_md(borrow, sud, sud_alone, oud, ind_oud))
    add("")
    add(binary_question_table(sud_q, sud_spec, alone=(sq.label, pred_alone)))
    add("")
    add("![Slopes with and without borrowing](figures/ketamine_borrowing.png)\n")
    add(
        f"*Odds ratio per doubling of (1 + E / {dose(ms.exposure_ref)} mg/kg), median and 95% "
        "CrI, per indication, with and without borrowing, and from the opioid-only analysis "
        "of section 1.*\n"
    )
    add("### Diagnostics\n")
    add(diag_table(sud))
    add("")
    add("### Caveats\n")
    k97 = sud_arms[sud_arms["design"] != "rct"]
    for s, g in k97.groupby("study", sort=False):
        notes = " ".join(str(n) for n in g["notes"].dropna())
        ctl = ", ".join(t.replace("_", " ") for t in g.loc[g["dose_mg_per_kg"] == 0, "treatment"])
        e, c = g[g["role"] == "experimental"].iloc[0], g[g["role"] == "control"].iloc[0]
        obs_or = (e.events / (e.n - e.events)) / (c.events / (c.n - c.events))
        add(
            f"- {study_name(s)} is non-randomised ({g['design'].iloc[0]}; ketamine vs {ctl}), "
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
            + f". The bias term (SD {dict(ms.bias_sd or {}).get(g['design'].iloc[0], 0.3):g}) "
            "discounts that difference; it does not remove it."
        )
    for r in sud_con.itertuples():
        add(
            f"- {study_name(r.study)} enters as a published odds ratio at {r.timepoint}, not "
            f"{sud_spec.data.timepoint[0]}; `{r.derived}`."
        )
    div = next((c for c in sud.checks if c.name == "divergences"), None)
    if div is not None and div.verdict != "pass":
        add(
            f"- The main fit had {plural(int(div.value), 'divergent transition')} out of "
            f"{sud_spec.sampler.chains * sud_spec.sampler.draws} draws."
        )
    if check is not None:
        add(
            f"- A check refit with `target_accept` = {check[0]} had "
            f"{plural(check[1], 'divergent transition')}; {ind_focus} slope (with borrowing) "
            f"{num(check[2]['q50'])} "
            f"({ci(num(check[2]['q2.5']), num(check[2]['q97.5']))}) against "
            f"{num(b_with['q50'])} ({ci(num(b_with['q2.5']), num(b_with['q97.5']))}) in the "
            "main fit."
        )
    add(
        f"- How much is borrowed is set by the prior on `indication_sd` "
        f"({sud_spec.priors.get('indication_sd')}); the spec's sensitivity section varies it "
        "(`bayeskit sensitivity models/sud_abstinence.toml`)."
    )
    add("")
    add("---\n")
    add(
        f"*Run `.venv/bin/python {SCRIPT}` from the repository root to regenerate this page "
        "and its figures.*"
    )

    PAGE.write_text("\n".join(L) + "\n", encoding="utf-8")
    print(f"wrote {PAGE.relative_to(ROOT)} in {time.perf_counter() - t_start:.0f} s")


# --------------------------------------------------------------------------- page pieces


def git_note() -> str:
    try:
        sha = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"],
            cwd=ROOT,
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--", "bayeskit", "models", "data"],
            cwd=ROOT,
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return ""
    return f" (git {sha}{', with uncommitted changes' if dirty else ''})"


def borrow_sentence(borrow, ind, others, pred_alone, pred_with) -> str:
    """Say, from the numbers, which way borrowing moved the slope and what followed."""
    w, a = borrow.loc[(ind, "with borrowing")], borrow.loc[(ind, "without borrowing")]
    other = [
        borrow.loc[(o, "without borrowing")]["q50"]
        for o in others
        if (o, "without borrowing") in borrow.index
    ]
    names = "/".join(others)
    parts = []
    if other and w["q50"] < a["q50"] and max(other) < a["q50"]:
        parts.append(f"Borrowing pulls the {ind} slope down, towards the smaller {names} slope,")
    elif other and w["q50"] > a["q50"] and min(other) > a["q50"]:
        parts.append(f"Borrowing pulls the {ind} slope up, towards the larger {names} slope,")
    else:
        parts.append(
            f"Borrowing moves the {ind} median slope from {num(a['q50'])} to {num(w['q50'])}"
        )
    narrower = (w["q97.5"] - w["q2.5"]) < (a["q97.5"] - a["q2.5"])
    parts.append("and narrows its interval" if narrower else "and widens its interval")
    pw, pa = q(pred_with, "difference", "prob"), q(pred_alone, "difference", "prob")
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


def infusion_rate_note(spec, studies) -> str:
    """The `derived` clause that says a study's dose is an infusion rate, if there is one."""
    for path in spec.data_files():
        raw = pd.read_csv(path)
        for d in raw.loc[raw["study"].isin(studies), "derived"].dropna():
            for clause in str(d).split(";"):
                if "rate" in clause and "dose" in clause:
                    return clause.strip()
    return ""


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


def arm_table(tab: pd.DataFrame, show_indication: bool = False) -> str:
    rows = []
    for r in tab.itertuples():
        row = [study_name(r.study)]
        if show_indication:
            row.append(r.indication)
        derived = isinstance(r.derived, str) and "events" in r.derived
        row += [
            r.design.replace("_", " "),
            f"`{r.arm}`",
            r.treatment.replace("_", " "),
            dose(r.dose_mg_per_kg),
            ROUTE_NAMES.get(r.route, "-") if isinstance(r.route, str) else "-",
            f"{r.sessions:g}",
            r.role,
            f"{int(r.events)}/{int(r.n)}" + ("*" if derived else ""),
            pct(r.events / r.n),
            r.timepoint,
        ]
        rows.append(row)
    head = (
        ["study"]
        + (["indication"] if show_indication else [])
        + [
            "design",
            "arm",
            "treatment",
            "dose (mg/kg)",
            "route",
            "sessions",
            "role",
            "abstinent/n",
            "%",
            "timepoint",
        ]
    )
    out = md_table(head, rows, "l" * (5 if show_indication else 4) + "rlrlrrl")
    if any(isinstance(d, str) and "events" in d for d in tab["derived"]):
        out += "\n\n\\* derived from a reported percentage (see Caveats)."
    return out


def contrast_table(tab: pd.DataFrame, measure: str, show_indication: bool = False) -> str:
    rows = []
    for r in tab.itertuples():
        n = (
            f"{int(r.n1i)} vs {int(r.n2i)}"
            if pd.notna(getattr(r, "n1i", np.nan))
            else (f"{int(r.n)}" if pd.notna(getattr(r, "n", np.nan)) else "-")
        )
        lo, hi = r.yi - 1.959964 * r.sei, r.yi + 1.959964 * r.sei
        if measure == "OR":
            est = f"OR {sig(np.exp(r.yi))} ({sig(np.exp(lo))} to {sig(np.exp(hi))})"
        else:
            est = f"{num(r.yi)} ({num(lo)} to {num(hi)})"
        pre_post = ""
        if pd.notna(getattr(r, "baseline_mean", np.nan)):
            pre_post = f"; {r.baseline_mean:g} to {r.mean:g} {r.unit}"
        row = [study_name(r.study)]
        if show_indication:
            row.append(r.indication)
        row += [
            r.design.replace("_", " "),
            n,
            f"`{r.outcome}`{pre_post}",
            dose(r.dose_mg_per_kg),
            ROUTE_NAMES.get(r.route, r.route),
            est,
            r.timepoint,
        ]
        rows.append(row)
    head = (
        ["study"]
        + (["indication"] if show_indication else [])
        + [
            "design",
            "n",
            "outcome",
            "dose (mg/kg)",
            "route",
            f"observed {measure} (95% CI)",
            "timepoint",
        ]
    )
    return md_table(head, rows, "l" * (5 if show_indication else 4) + "rlll")


def param_table(s: pd.DataFrame, rows) -> str:
    out = []
    for name, what, d in rows:
        if name not in s.index:
            continue
        r = s.loc[name]
        f = sig if d == "s" else (lambda x, d=d: num(x, d))
        out.append(
            [
                f"`{name}`",
                what,
                f(r["q50"]),
                f"{f(r['q2.5'])} to {f(r['q97.5'])}",
                f"{r['r_hat']:.3f}" if pd.notna(r.get("r_hat")) else "-",
                f"{r['ess_bulk']:.0f}" if pd.notna(r.get("ess_bulk")) else "-",
            ]
        )
    return md_table(
        ["parameter", "meaning", "median", "95% CrI", "R-hat", "ESS bulk"], out, "llrrrr"
    )


def binary_question_table(qtab: pd.DataFrame, spec, alone=None) -> str:
    rows = []
    blocks = [(lab, qtab.loc[lab], "") for lab in dict.fromkeys(qtab.index.get_level_values(0))]
    if alone is not None:
        blocks.append((alone[0], alone[1], " (without borrowing)"))
        blocks[0] = (blocks[0][0], blocks[0][1], " (with borrowing)")
    thr = {qq.label: qq.threshold for qq in spec.questions}

    def cell(t, row, fmt):
        return f"{fmt(q(t, row))} ({fmt(q(t, row, 'q2.5'))} to {fmt(q(t, row, 'q97.5'))})"

    def pp(x):
        return f"{100 * x:.0f}"

    for lab, t, tag in blocks:
        rows.append(
            [
                lab + tag,
                cell(t, "p_with", pct),
                cell(t, "p_without", pct),
                cell(t, "difference", pp),
                cell(t, "odds_ratio", sig),
                prob(q(t, "effect", "prob")),
                prob(q(t, "difference", "prob")),
            ]
        )
    t0 = next(iter(thr.values()))
    return md_table(
        [
            "regimen",
            "abstinence with",
            "without (extrapolated)",
            "gain (percentage points)",
            "odds ratio",
            "P(gain > 0)",
            f"P(gain >= {100 * t0:.0f} points)",
        ],
        rows,
        "lrrrrrr",
    )


def smd_question_table(qtab: pd.DataFrame, spec, rct_only: pd.DataFrame, dropped) -> str:
    rows = []
    units = list(spec.report.scales)
    blocks = [
        (lab, qtab.loc[lab], "all studies") for lab in dict.fromkeys(qtab.index.get_level_values(0))
    ]
    blocks.append((blocks[0][0], rct_only, "without " + ", ".join(study_name(s) for s in dropped)))
    for lab, t, which in blocks:
        row = [lab, which]
        for name, d in [("effect", 2)] + [
            (f"effect_{u}", 1 if spec.report.scales[u] < 8 else 0) for u in units
        ]:
            row.append(
                f"{num(q(t, name), d)} ({num(q(t, name, 'q2.5'), d)} to "
                f"{num(q(t, name, 'q97.5'), d)})"
            )
        row.append(prob(q(t, "effect", "prob")))
        rows.append(row)
    return md_table(
        ["regimen", "evidence", "SMD"] + units + ["P(reduction)"],
        rows,
        "ll" + "r" * (len(units) + 2),
    )


def orpd(b) -> str:
    return f"**{sig(np.exp(b['q50']))}** ({ci(sig(np.exp(b['q2.5'])), sig(np.exp(b['q97.5'])))})"


def borrow_table_md(borrow: pd.DataFrame, sud, sud_alone, oud, ind_oud) -> str:
    rows = []
    for (ind, label), b in borrow.iterrows():
        f = sud if label == "with borrowing" else sud_alone
        p = float((f.idata["posterior"]["beta_dose"].sel(indication=ind) > 0).mean())
        rows.append(
            [
                ind,
                label,
                num(b["q50"]),
                f"{num(b['q2.5'])} to {num(b['q97.5'])}",
                sig(np.exp(b["q50"])),
                f"{sig(np.exp(b['q2.5']))} to {sig(np.exp(b['q97.5']))}",
                prob(p),
            ]
        )
    s = oud.summary().loc[f"beta_dose[{ind_oud}]"]
    p = float((oud.idata["posterior"]["beta_dose"].sel(indication=ind_oud) > 0).mean())
    rows.append(
        [
            ind_oud,
            "opioid-only analysis (section 1)",
            num(s["q50"]),
            f"{num(s['q2.5'])} to {num(s['q97.5'])}",
            sig(np.exp(s["q50"])),
            f"{sig(np.exp(s['q2.5']))} to {sig(np.exp(s['q97.5']))}",
            prob(p),
        ]
    )
    rows.sort(key=lambda r: r[0] != ind_oud)
    return md_table(
        [
            "indication",
            "fit",
            "`beta_dose` median",
            "95% CrI",
            "OR per doubling",
            "95% CrI",
            "P(slope > 0)",
        ],
        rows,
        "llrrrrr",
    )


# --------------------------------------------------------------------------- figures


def wilson(k: float, n: float, z: float = 1.959964) -> tuple[float, float]:
    p = k / n
    den = 1 + z**2 / n
    mid = (p + z**2 / (2 * n)) / den
    half = z * np.sqrt(p * (1 - p) / n + z**2 / (4 * n**2)) / den
    return mid - half, mid + half


def curve(fit, route, doses, sessions=1, var="p_with", indication=None):
    out = np.empty((len(doses), 3))
    for i, d in enumerate(doses):
        ds = effect_draws(
            fit, route=route, dose_mg_per_kg=float(d), sessions=sessions, indication=indication
        )
        out[i] = draws_q(ds[var].values)
    return out


def fig_oud(fit, tab, q1, q3, timepoint: str) -> None:
    doses = np.linspace(0, 3, 61)
    lowest = tab.loc[tab["dose_mg_per_kg"] > 0, "dose_mg_per_kg"].min()
    post = fit.idata["posterior"]
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(11, 4.8), sharey=True)
    for ax in (ax1, ax2):
        ax.axvspan(0, lowest, color="0.88", zorder=0)
        for d in sorted(set(tab["dose_mg_per_kg"])):
            ax.axvline(d, ymin=0, ymax=0.03, color="k", lw=2.5)
    # left: every route, one session; bands drawn as outlines so they stay readable
    curves = {}
    for r in ("iv", "im", "sl", "oral"):
        c = curve(fit, r, doses)
        curves[r] = c
        F = float(post["bioavailability"].sel(route=r).median())
        col = ROUTE_COLOURS[r]
        ax1.fill_between(doses, c[:, 0], c[:, 2], color=col, alpha=0.07, lw=0)
        ax1.plot(doses, c[:, 0], color=col, lw=0.8, ls=":")
        ax1.plot(doses, c[:, 2], color=col, lw=0.8, ls=":")
        ax1.plot(
            doses, c[:, 1], color=col, lw=2.2, label=f"{ROUTE_NAMES[r]} (bioavailability {F:.2f})"
        )
    ax1.set_title("By route, one session (dotted: 95% band)", fontsize=11)
    ax1.legend(fontsize=8.5, loc="upper left", framealpha=0.9)
    # right: the trial route, 1 vs 3 sessions, with the observed arms
    col = ROUTE_COLOURS[q1.route]
    c1 = curves.get(q1.route) if q1.route in curves else curve(fit, q1.route, doses)
    c3 = curve(fit, q3.route, doses, sessions=q3.sessions)
    ax2.fill_between(doses, c1[:, 0], c1[:, 2], color=col, alpha=0.15, lw=0)
    ax2.plot(
        doses,
        c1[:, 1],
        color=col,
        lw=2.2,
        label=f"{ROUTE_NAMES[q1.route]}, {q1.sessions:g} session",
    )
    ax2.fill_between(doses, c3[:, 0], c3[:, 2], color="#e67e22", alpha=0.12, lw=0)
    ax2.plot(
        doses,
        c3[:, 1],
        color="#e67e22",
        lw=2.2,
        ls="--",
        label=f"{ROUTE_NAMES[q3.route]}, {q3.sessions:g} sessions",
    )
    markers = ["o", "s", "^", "D"]
    for k, (s, g) in enumerate(tab.groupby("study", sort=False)):
        for r in g.itertuples():
            lo, hi = wilson(r.events, r.n)
            x = r.dose_mg_per_kg + (0.05 if k else -0.05)
            p = r.events / r.n
            one = r.sessions <= 1
            ax2.errorbar(
                x,
                p,
                yerr=[[p - lo], [hi - p]],
                fmt=markers[k % 4],
                color="k" if one else "#e67e22",
                mfc="k" if one else "white",
                mew=1.5,
                ms=6,
                capsize=2,
                lw=1,
                zorder=5,
            )
        ax2.plot([], [], markers[k % 4], color="k", label=f"{study_name(s)}: observed arms")
    ax2.plot(
        [],
        [],
        "s",
        color="#e67e22",
        mfc="white",
        mew=1.5,
        label=f"observed, {q3.sessions:g} sessions",
    )
    ax2.set_title(
        f"{ROUTE_NAMES[q1.route]} (the trials' route): 1 vs {q3.sessions:g} sessions", fontsize=11
    )
    ax2.legend(fontsize=8.5, loc="upper left", framealpha=0.9)
    ax2.annotate(
        "no trial had a no-ketamine arm:\nvalues at dose 0 (and in the\ngrey zone) "
        "are extrapolations",
        xy=(0.02, float(c1[0, 1])),
        xytext=(0.3, 0.655),
        fontsize=8.5,
        va="top",
        color="0.2",
        bbox=dict(boxstyle="round", fc="white", ec="0.7", alpha=0.85),
        arrowprops=dict(arrowstyle="->", color="0.3"),
    )
    for ax in (ax1, ax2):
        ax.set_xlim(0, 3)
        ax.set_ylim(0, 1)
        ax.set_xlabel("ketamine dose per session (mg/kg)")
        ax.grid(alpha=0.3)
        ax.yaxis.set_major_formatter(matplotlib.ticker.PercentFormatter(1.0))
    ax1.set_ylabel(f"P(abstinent at {timepoint}), typical trial")
    fig.suptitle(
        f"Opioid use disorder: predicted abstinence at {timepoint} (median, 95% band); "
        "ticks on the x-axis: doses the trials used",
        fontsize=11,
    )
    fig.tight_layout()
    fig.savefig(FIGS / "ketamine_oud_dose_response.png", dpi=DPI)
    plt.close(fig)


def fig_ow(fit, tab, spec, owq) -> None:
    doses = np.linspace(0, 1, 51)
    c = curve(fit, "iv", doses, var="effect")
    scales = spec.report.scales
    cows = scales.get("COWS points")
    bias_sd = dict(spec.model.bias_sd or {})
    fig, ax = plt.subplots(figsize=(8, 5.2))
    ax.fill_between(
        doses,
        c[:, 0],
        c[:, 2],
        color=ROUTE_COLOURS["iv"],
        alpha=0.2,
        lw=0,
        label="model, IV: 95% band",
    )
    ax.plot(doses, c[:, 1], color=ROUTE_COLOURS["iv"], lw=2, label="model, IV: median")
    ax.axhline(0, color="0.4", lw=0.8)
    styles = {
        "rct": dict(fmt="o", color="k", ms=7),
        "case_report": dict(fmt="s", color="#d35400", mfc="white", ms=7),
    }
    seen = set()
    cr = tab[tab["design"] == "case_report"]
    offsets = {s: (i - (len(cr) - 1) / 2) * 0.03 for i, s in enumerate(cr["study"])}
    for r in tab.itertuples():
        st = styles.get(r.design, dict(fmt="^", color="0.3", ms=7))
        x = r.dose_mg_per_kg + offsets.get(r.study, 0.0)
        if r.design in bias_sd:
            tot = 1.959964 * np.sqrt(r.sei**2 + bias_sd[r.design] ** 2)
            ax.errorbar(
                x, r.yi, yerr=tot, fmt="none", ecolor=st["color"], lw=0.8, alpha=0.5, capsize=0
            )
        lab = r.design.replace("_", " ") if r.design not in seen else None
        seen.add(r.design)
        ax.errorbar(x, r.yi, yerr=1.959964 * r.sei, capsize=3, lw=1.6, label=lab, zorder=5, **st)
        left = offsets.get(r.study, 0.0) < 0
        ax.annotate(
            f"{study_name(r.study)}\n({r.outcome})",
            (x, r.yi),
            xytext=(-8 if left else 8, -4),
            ha="right" if left else "left",
            textcoords="offset points",
            fontsize=8,
        )
    ax.set_xlim(0, 1)
    ax.set_xlabel("IV ketamine dose (mg/kg; Jovaisa: infusion rate mg/kg/h)")
    ax.set_ylabel("effect on withdrawal (SMD; negative = less)")
    ax.set_title("Opioid withdrawal: effect by IV dose")
    if cows:
        sec = ax.secondary_yaxis("right", functions=(lambda x: x * cows, lambda y: y / cows))
        sec.set_ylabel(f"COWS points (SMD x {cows:g})")
    ax.grid(alpha=0.3)
    ax.legend(
        fontsize=8,
        loc="lower left",
        framealpha=0.9,
        title="bars: 95% CI; thin: + design bias SD",
        title_fontsize=8,
    )
    fig.tight_layout()
    fig.savefig(FIGS / "ketamine_ow_withdrawal.png", dpi=DPI)
    plt.close(fig)


def fig_borrow(borrow: pd.DataFrame, oud, ind_oud, ref: float) -> None:
    rows = []
    for (ind, label), b in borrow.iterrows():
        rows.append((ind, label, b["q2.5"], b["q50"], b["q97.5"]))
    s = oud.summary().loc[f"beta_dose[{ind_oud}]"]
    rows.append((ind_oud, "opioid-only analysis", s["q2.5"], s["q50"], s["q97.5"]))
    order = {"with borrowing": 0, "without borrowing": 1, "opioid-only analysis": 2}
    inds = list(dict.fromkeys([ind_oud] + [r[0] for r in rows]))
    rows.sort(key=lambda r: (inds.index(r[0]), order[r[1]]))
    colours = {
        "with borrowing": "#1b6ca8",
        "without borrowing": "#c0392b",
        "opioid-only analysis": "0.35",
    }
    fig, ax = plt.subplots(figsize=(8, 3.8))
    y, ticks, labels = 0.0, [], []
    prev = None
    for ind, label, lo, mid, hi in rows:
        if prev is not None and ind != prev:
            y -= 0.6
        ax.plot([np.exp(lo), np.exp(hi)], [y, y], color=colours[label], lw=2.5)
        ax.plot(np.exp(mid), y, "o", color=colours[label], ms=8)
        ax.annotate(
            f"{np.exp(mid):.2f} ({np.exp(lo):.2f} to {np.exp(hi):.2f})",
            (np.exp(hi), y),
            xytext=(6, -3),
            textcoords="offset points",
            fontsize=8,
        )
        ticks.append(y)
        labels.append(f"{ind}: {label}")
        prev = ind
        y -= 1
    ax.axvline(1, color="0.4", lw=1, ls=":")
    ax.set_xscale("log")
    ax.set_yticks(ticks, labels)
    ax.set_xlabel(
        f"odds ratio of abstinence per doubling of (1 + exposure / {ref:g} mg/kg), log scale"
    )
    ax.set_title("Slope per indication, with and without borrowing", fontsize=11)
    ax.xaxis.set_major_formatter(matplotlib.ticker.FormatStrFormatter("%g"))
    ax.xaxis.set_minor_formatter(matplotlib.ticker.NullFormatter())
    ax.set_xticks([0.8, 1, 1.25, 1.5, 2, 2.5, 3])
    xmax = np.exp(max(r[4] for r in rows))
    ax.set_xlim(min(0.8, np.exp(min(r[2] for r in rows)) * 0.95), xmax * 1.6)
    ax.grid(alpha=0.3, axis="x")
    fig.tight_layout()
    fig.savefig(FIGS / "ketamine_borrowing.png", dpi=DPI)
    plt.close(fig)


if __name__ == "__main__":
    main()
