"""The page's "what a reviewer would ask" section, answered from the robustness refits.

Each question a hostile reviewer asks of these analyses (does the bias term do anything,
does an arbitrary constant decide the answer, ...) is answered by the rows of
``robustness.csv`` that vary that assumption: the same questions refitted under each
reasonable alternative (:func:`bayeskit.robustness.robustness_table`). Nothing is typed
by hand; an assumption that has no alternative for a spec's data is said to have none.
"""

from __future__ import annotations

import pandas as pd

from bayeskit.robustness import AS_FITTED, robust_flags

from .fits import Analyses
from .fmt import md_table, num, prob
from .numbers import OudNumbers, OwNumbers, SudNumbers


def _points(x: float) -> str:
    """Write a difference in probability as percentage points."""
    return num(100 * x, 0)


def answer_cell(row: pd.Series, scale) -> str:
    """``median (lo to hi)`` of one robustness row, on the page's scale."""
    lo, mid, hi = (scale(float(row[c])) for c in ("q2.5", "q50", "q97.5"))
    return f"{mid} ({lo} to {hi})"


def pick(rob: pd.DataFrame, evidence: str, quantity: str, contains: str = "") -> str | None:
    """Return the first question of ``rob`` with this evidence label (and text), or None."""
    rows = rob[(rob["quantity"] == quantity) & (rob["evidence"] == evidence)]
    if contains:
        rows = rows[rows["question"].str.contains(contains, regex=False)]
    return None if rows.empty else str(rows["question"].iloc[0])


def alternative_table(
    rob: pd.DataFrame, questions: list[tuple[str, str, str]], assumptions: list[str], scale
) -> str | None:
    """Write a Markdown table: the fit as specified, then each alternative of ``assumptions``.

    ``questions`` are ``(column title, question, quantity)``; each cell is the median and
    95% interval with P(benefit), and a dagger where the direction does not hold.
    """
    keep = rob[rob["assumption"].isin([AS_FITTED, *assumptions])]
    if keep["assumption"].nunique() < 2:
        return None
    header = ["assumption", "alternative"] + [t for t, _, _ in questions]
    rows = []
    for (assumption, label), block in keep.groupby(["assumption", "alternative"], sort=False):
        cells = [assumption, label]
        for _, question, quantity in questions:
            r = block[(block["question"] == question) & (block["quantity"] == quantity)]
            if r.empty:
                cells.append("-")
                continue
            r = r.iloc[0]
            flag = "" if bool(r["holds"]) else " †"
            cells.append(f"{answer_cell(r, scale)}; P = {prob(float(r['prob_benefit']))}{flag}")
        rows.append(cells)
    return md_table(header, rows, "ll" + "r" * len(questions))


def spread(rob: pd.DataFrame, question: str, quantity: str, assumptions: list[str]) -> tuple:
    """Return the lowest and highest median of an answer across the fit and these alternatives."""
    r = rob[
        (rob["question"] == question)
        & (rob["quantity"] == quantity)
        & rob["assumption"].isin([AS_FITTED, *assumptions])
    ]
    return float(r["q50"].min()), float(r["q50"].max())


def _oud_questions(rob: pd.DataFrame) -> list[tuple[str, str, str]]:
    within = pick(rob, "within the evidence", "difference", "0.2 mg/kg")
    sessions = pick(rob, "within the evidence", "difference", "sessions")
    extrap = pick(rob, "extrapolated", "difference", "1 session")
    out = []
    if within:
        out.append(("2 vs 0.2 mg/kg IM (within the evidence), points", within, "difference"))
    if sessions:
        out.append(("3 vs 1 sessions (within the evidence), points", sessions, "difference"))
    if extrap:
        out.append(("2 mg/kg IM vs no ketamine (extrapolated), points", extrap, "difference"))
    return out


def reviewer_questions(a: Analyses, o: OudNumbers, w: OwNumbers, s: SudNumbers) -> list[str]:
    """Write the section: one reviewer question at a time, each with the refits' numbers."""
    rob = a.robustness
    if not rob:
        return [
            "## 4. What a reviewer would ask\n",
            "*The robustness refits were skipped for this run of the page (`--no-robustness`)"
            "; re-run without it for this section.*\n",
        ]
    oud, ow, sud = rob["oud_abstinence"], rob["ow_withdrawal"], rob["sud_abstinence"]
    rs = a.specs["oud_abstinence"].robustness
    out = [
        "## 4. What a reviewer would ask\n",
        "Each answer below refits the analysis under the alternative a reviewer would try "
        f"({rs.chains} chains x {rs.draws} draws each: enough to see whether a conclusion's "
        "direction survives, not for its third digit) and answers the same questions "
        "again; these are the rows of the run directory's `robustness.csv`. Cells give the "
        "posterior median (95% CrI) and P = the posterior probability of benefit; † marks "
        "an answer whose direction (P above or below 50%) differs from the analysis as "
        "specified. Differences in abstinence are in percentage points.\n",
    ]
    oq = _oud_questions(oud)
    sud_q = pick(sud, "extrapolated", "difference")
    title = "OUD 2 mg/kg IM vs no ketamine (extrapolated), points"
    sq = [(title, sud_q, "difference")] if sud_q else []
    ow_q = pick(ow, "extrapolated", "effect") or pick(ow, "within the evidence", "effect")
    wq = [("SMD, 0.5 mg/kg IV (negative = less withdrawal)", ow_q, "effect")] if ow_q else []

    def block(title: str, text: str, tables: list[tuple[pd.DataFrame, list, list, object]]):
        out.append(f"**{title}** {text}\n")
        shown = False
        for table, questions, assumptions, scale in tables:
            md = alternative_table(table, questions, assumptions, scale) if questions else None
            if md:
                out.append(md + "\n")
                shown = True
        if not shown:
            out.append("*No alternative of this kind changes these analyses' models.*\n")

    block(
        "1. Does the design-bias term discount non-randomised evidence?",
        "Bias now enters the contrast of a non-randomised study (its experimental arm, or "
        "a single-arm change), with a directional prior mean, so it no longer cancels. "
        "Setting the means to zero, doubling them, or keeping only randomised trials "
        "changes the joint analysis's opioid answer (Krupitsky 1997, a non-randomised "
        "cohort, informs the alcohol slope) as follows; the withdrawal analysis is in "
        "question 6.",
        [(sud, sq, ["bias prior means", "non-randomised evidence"], _points)],
    )
    shapes = ["reference exposure", "dose-response shape"]
    nan2 = (float("nan"),) * 2
    lo, hi = spread(oud, oq[0][1], "difference", shapes) if oq else nan2
    extrap = [q for t, q, _ in oq if "extrapolated" in t]
    xlo, xhi = spread(oud, extrap[0], "difference", shapes) if extrap else nan2
    block(
        "2. Does an arbitrary constant decide the answer?",
        "The reference exposure is a parameter with a prior, and the shape (log-linear or "
        "Emax) is a choice shown beside the other. The within-evidence answer (2 vs 0.2 "
        f"mg/kg) has medians from {_points(lo)} to {_points(hi)} points across fixed "
        "reference exposures and shapes, the extrapolated answer against no ketamine from "
        f"{_points(xlo)} to {_points(xhi)}: with the slope's prior on the randomised dose "
        'contrast (`slope_scale = "contrast"`) these choices only move what no trial '
        "observed.",
        [(oud, oq, ["reference exposure", "dose-response shape"], _points)],
    )
    block(
        "3. Do sessions multiply the dose?",
        "By default sessions are their own term (`beta_sessions`); multiplying exposure by "
        "sessions is the alternative.",
        [(oud, oq, ["sessions"], _points)],
    )
    block(
        "4. Do random baselines let control arms inform the slope?",
        "By default each trial has its own fixed baseline (contrast-based), so only "
        "within-trial contrasts inform the dose-response; the arm-based model with random "
        "baselines is the alternative.",
        [(oud, oq, ["baseline model"], _points), (sud, sq, ["baseline model"], _points)],
    )
    out += _predictive(o, w)
    block(
        "6. Is the withdrawal answer a measured COWS effect?",
        "No: the randomised evidence is peak mean arterial pressure and heart rate under "
        "anaesthesia, re-expressed as COWS points by an assumed SD (section 2). The case "
        "reports are pooled only with a stated natural-course bias; describing them "
        "instead, or keeping only the RCT, gives the rows below. Jovaisa's dose is an "
        "hourly infusion rate (0.5 mg/kg/h, duration not retrieved) entered as a dose: "
        "the question at 0.5 mg/kg IV is that trial's own contrast, so its answer does "
        "not depend on the duration, but predictions at other doses read 0.5 mg/kg as "
        "one hour's infusion.",
        [(ow, wq, ["bias prior means", "non-randomised evidence", "tau prior"], num)],
    )
    derived = sorted({x for x in rob_all(rob)["assumption"] if "derived" in str(x)})
    block(
        "7. Do the counts derived from percentages matter?",
        "Krupitsky 2002's counts are rounded from percentages of a secondary source (data/"
        "README.md); each variant the sources allow is refitted.",
        [(oud, oq, derived, _points), (sud, sq, derived, _points)],
    )
    borrowing = sorted({x for x in sud["assumption"] if "borrow" in str(x)})
    block(
        "8. How much does the alcohol evidence move the opioid answer?",
        "With borrowing (exchangeable slopes across indications, as specified) against "
        "the alternatives:",
        [(sud, sq, borrowing, _points)],
    )
    block(
        "9. Why use one timepoint or one outcome of a trial?",
        "By default each trial enters once (Krupitsky 2002 at 12 months, Jovaisa 2006 with "
        'peak mean arterial pressure). With `repeated = "all"` every reported timepoint or '
        "outcome of a trial enters as a sub-study with its own baseline, sharing the trial's "
        "deviation and bias, each weighted 1/m so that the same patients count once:",
        [
            (oud, oq, ["repeated measurements"], _points),
            (ow, wq, ["repeated measurements"], num),
        ],
    )
    out += survivors(rob)
    return out


def rob_all(rob: dict[str, pd.DataFrame]) -> pd.DataFrame:
    """Return the three robustness tables as one."""
    return pd.concat(list(rob.values()), ignore_index=True)


def _predictive(o: OudNumbers, w: OwNumbers) -> list[str]:
    """Question 5: predictions for a new trial include tau (effect vs effect_new)."""
    rows = []
    for label, answers in (("OUD", o.answers), ("withdrawal", w.answers)):
        for question in dict.fromkeys(answers.index.get_level_values(0)):
            block = answers.loc[question]
            if {"effect", "effect_new"} <= set(block.index):
                e, n = block.loc["effect"], block.loc["effect_new"]
                rows.append(
                    [
                        f"{label}: {question}",
                        f"{num(e['q50'])} ({num(e['q2.5'])} to {num(e['q97.5'])})",
                        f"{num(n['q50'])} ({num(n['q2.5'])} to {num(n['q97.5'])})",
                        num((n["q97.5"] - n["q2.5"]) / (e["q97.5"] - e["q2.5"])),
                    ]
                )
                break
    out = [
        "**5. Do predictions include heterogeneity?** Yes: each answer has the average "
        "effect and the effect in a new trial, whose interval adds the between-trial SD "
        "`tau` (`effect_new` in `questions.csv`). On the model's scale (log odds ratio; "
        "SMD):\n"
    ]
    header = ["answer", "average effect", "effect in a new trial", "width ratio"]
    return out + [md_table(header, rows) + "\n"] if rows else out


def survivors(rob: dict[str, pd.DataFrame]) -> list[str]:
    """Write which conclusions keep their direction under every alternative, per analysis."""
    rows = []
    for name, table in rob.items():
        flags = robust_flags(table)
        for (question, quantity), flag in flags.items():
            if quantity == "effect" and (question, "difference") in flags:
                continue  # a binary answer: its difference in percentage points stands for it
            fitted = table[
                (table["question"] == question)
                & (table["quantity"] == quantity)
                & (table["assumption"] == AS_FITTED)
            ].iloc[0]
            others = table[
                (table["question"] == question)
                & (table["quantity"] == quantity)
                & (table["assumption"] != AS_FITTED)
            ]
            fails = others.loc[~others["holds"].astype(bool), "alternative"].tolist()
            rows.append(
                [
                    f"`{name}`",
                    f"{question} ({quantity})",
                    prob(float(fitted["prob_benefit"])),
                    f"{prob(others['prob_benefit'].min())} to {prob(others['prob_benefit'].max())}",
                    flag + (f" ({', '.join(fails)})" if fails else ""),
                ]
            )
    header = ["analysis", "answer", "P(benefit)", "range under alternatives", "verdict"]
    return [
        "**Which conclusions survive.** An answer is *robust* when its direction holds "
        "under every alternative above, *fragile* otherwise (the alternatives that turn "
        "it are named):\n",
        md_table(header, rows, "llrrl") + "\n",
    ]
