"""The page's Markdown tables: data, parameters, questions and diagnostics."""

from __future__ import annotations

import numpy as np
import pandas as pd

from .fmt import ROUTE_NAMES, dose, md_table, num, pct, prob, q, sig, study_name


def diag_value(c) -> str:
    """Write a diagnostic check's worst value (``n/a`` when it has none)."""
    if c.value is None or not np.isfinite(c.value):
        return "n/a"
    if c.name == "r_hat":
        return f"{c.value:.3f}"
    if c.name in ("ess_bulk", "ess_tail", "divergences", "tree_depth"):
        return f"{c.value:.0f}"
    return f"{c.value:.2f}"


def diag_table(fit) -> str:
    """One row per diagnostic check of ``fit``: verdict, worst value, meaning."""
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


def _arm_row(r, show_indication: bool) -> list:
    row = [study_name(r.study)] + ([r.indication] if show_indication else [])
    derived = isinstance(r.derived, str) and "events" in r.derived
    return row + [
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


def arm_table(tab: pd.DataFrame, show_indication: bool = False) -> str:
    """Tabulate the binary arms: regimen, abstinent/n, timepoint; derived counts starred."""
    rows = [_arm_row(r, show_indication) for r in tab.itertuples()]
    head = ["study"] + (["indication"] if show_indication else [])
    head += ["design", "arm", "treatment", "dose (mg/kg)", "route", "sessions", "role"]
    head += ["abstinent/n", "%", "timepoint"]
    out = md_table(head, rows, "l" * (5 if show_indication else 4) + "rlrlrrl")
    if any(isinstance(d, str) and "events" in d for d in tab["derived"]):
        out += "\n\n\\* derived from a reported percentage (see Caveats)."
    return out


def _contrast_row(r, measure: str, show_indication: bool) -> list:
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
    row = [study_name(r.study)] + ([r.indication] if show_indication else [])
    return row + [
        r.design.replace("_", " "),
        n,
        f"`{r.outcome}`{pre_post}",
        dose(r.dose_mg_per_kg),
        ROUTE_NAMES.get(r.route, r.route),
        est,
        r.timepoint,
    ]


def contrast_table(tab: pd.DataFrame, measure: str, show_indication: bool = False) -> str:
    """Tabulate the study-level contrasts with their observed estimate and 95% CI."""
    rows = [_contrast_row(r, measure, show_indication) for r in tab.itertuples()]
    head = ["study"] + (["indication"] if show_indication else [])
    head += ["design", "n", "outcome", "dose (mg/kg)", "route"]
    head += [f"observed {measure} (95% CI)", "timepoint"]
    return md_table(head, rows, "l" * (5 if show_indication else 4) + "rlll")


def param_table(s: pd.DataFrame, rows) -> str:
    """Parameters of a summary: ``rows`` are (name, meaning, decimals or ``"s"``)."""
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
    head = ["parameter", "meaning", "median", "95% CrI", "R-hat", "ESS bulk"]
    return md_table(head, out, "llrrrr")


def _cell(t, row, fmt) -> str:
    return f"{fmt(q(t, row))} ({fmt(q(t, row, 'q2.5'))} to {fmt(q(t, row, 'q97.5'))})"


def _points(x: float) -> str:
    return f"{100 * x:.0f}"


def binary_question_table(qtab: pd.DataFrame, spec, alone=None) -> str:
    """Each question on abstinence; ``alone`` adds (label, answer without borrowing)."""
    blocks = [(lab, qtab.loc[lab], "") for lab in dict.fromkeys(qtab.index.get_level_values(0))]
    if alone is not None:
        blocks.append((alone[0], alone[1], " (without borrowing)"))
        blocks[0] = (blocks[0][0], blocks[0][1], " (with borrowing)")
    rows = [
        [
            lab + tag,
            _cell(t, "p_with", pct),
            _cell(t, "p_without", pct),
            _cell(t, "difference", _points),
            _cell(t, "odds_ratio", sig),
            prob(q(t, "effect", "prob")),
            prob(q(t, "difference", "prob")),
        ]
        for lab, t, tag in blocks
    ]
    threshold = spec.questions[0].threshold
    head = ["regimen", "abstinence with", "without (extrapolated)", "gain (percentage points)"]
    head += ["odds ratio", "P(gain > 0)", f"P(gain >= {100 * threshold:.0f} points)"]
    return md_table(head, rows, "lrrrrrr")


def smd_question_table(qtab: pd.DataFrame, spec, rct_only: pd.DataFrame, dropped) -> str:
    """Tabulate the withdrawal question with all studies and without ``dropped``."""
    units = list(spec.report.scales)
    blocks = [
        (lab, qtab.loc[lab], "all studies") for lab in dict.fromkeys(qtab.index.get_level_values(0))
    ]
    blocks.append((blocks[0][0], rct_only, "without " + ", ".join(study_name(s) for s in dropped)))
    columns = [("effect", 2)]
    columns += [(f"effect_{u}", 1 if spec.report.scales[u] < 8 else 0) for u in units]
    rows = []
    for lab, t, which in blocks:
        row = [lab, which]
        for name, d in columns:
            row.append(
                f"{num(q(t, name), d)} ({num(q(t, name, 'q2.5'), d)} to "
                f"{num(q(t, name, 'q97.5'), d)})"
            )
        rows.append(row + [prob(q(t, "effect", "prob"))])
    head = ["regimen", "evidence", "SMD"] + units + ["P(reduction)"]
    return md_table(head, rows, "ll" + "r" * (len(units) + 2))


def _slope_row(ind: str, label: str, b, p: float) -> list:
    return [
        ind,
        label,
        num(b["q50"]),
        f"{num(b['q2.5'])} to {num(b['q97.5'])}",
        sig(np.exp(b["q50"])),
        f"{sig(np.exp(b['q2.5']))} to {sig(np.exp(b['q97.5']))}",
        prob(p),
    ]


def borrow_table_md(borrow: pd.DataFrame, oud, ind_oud) -> str:
    """Each indication's dose contrast under each way of borrowing, and the OUD-only fit.

    The rows are bayeskit's borrowing table (:func:`bayeskit.questions.borrowing_table`);
    P(> 0) is its ``prob_positive``, and for the section 1 analysis counted here.
    """
    name = str(borrow["parameter"].iloc[0])
    rows = [_slope_row(ind, label, b, b["prob_positive"]) for (ind, label), b in borrow.iterrows()]
    s = oud.summary().loc[f"{name}[{ind_oud}]"]
    p_oud = float((oud.idata["posterior"][name].sel(indication=ind_oud) > 0).mean())
    rows.append(_slope_row(ind_oud, "opioid-only analysis (section 1)", s, p_oud))
    rows.sort(key=lambda r: r[0] != ind_oud)
    head = ["indication", "fit", f"`{name}` median (log-OR)", "95% CrI", "odds ratio", "95% CrI"]
    return md_table(head + ["P(> 0)"], rows, "llrrrrr")
