"""How a fit prints: a compact summary in the manner of metafor's ``print.rma``.

The estimate with its 95% interval, tau and the heterogeneity summaries, the prediction
interval and the diagnostics verdict, in well under 80 columns; per-study rows are left
to ``fit.summary()``.
"""

from __future__ import annotations

import math

#: per-study or nuisance dimensions: their rows are in fit.summary(), not in the print
PER_STUDY_DIMS = ("study", "arm", "contrast", "route")
MAX_ROWS = 16
LABEL = 21  # risk_difference_new fits
NOTES = {
    "theta_new": "theta_new: where a new study's true effect lies (95% prediction interval).",
    "delta_new": "delta_new: how far a new study's contrast may lie from the fitted "
    "dose-response (95% prediction interval).",
}


def _number(x: float) -> str:
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return ""
    return f"{x:#.4g}".rstrip(".") if abs(x) < 1e5 else f"{x:.3g}"


def shown_rows(fit, summary) -> list[str]:
    """Return the summary rows a printed fit shows: population quantities, not per-study ones.

    Examples
    --------
    >>> import bayeskit as bk
    >>> fit = bk.fit(bk.data_path("eight_schools.csv"))
    >>> shown_rows(fit, fit.summary())
    ['mu', 'tau', 'tau2', 'I2', 'H2', 'theta_new']
    """
    post = fit.idata["posterior"]
    per_study = {
        str(name)
        for name, da in post.data_vars.items()
        if any(d in da.dims for d in PER_STUDY_DIMS)
    }
    rows = []
    for label in summary.index:
        base = str(label).split("[")[0]
        if base in per_study or label == "s2_typical" or str(label).startswith("question["):
            continue
        rows.append(str(label))
    spread = [r for r in ("tau2", "I2", "H2") if r in rows]
    if "tau" in rows and spread:  # heterogeneity reads best beside tau
        rows = [r for r in rows if r not in spread]
        at = rows.index("tau") + 1
        rows[at:at] = spread
    return rows[:MAX_ROWS]


def compact_summary(fit) -> str:
    """Return the text ``print(fit)`` shows.

    Examples
    --------
    >>> import bayeskit as bk
    >>> fit = bk.fit(bk.data_path("eight_schools.csv"), pooling="none",
    ...              priors={"mu": "Normal(0, 50)"})
    >>> print(compact_summary(fit).splitlines()[0])
    Bayesian meta-analysis: normal-normal, 8 studies, exact engine, no pooling
    """
    summary = fit.summary()
    k = len(getattr(fit.data, "study", []) or [])
    engine = "exact engine" if fit.method == "exact" else "MCMC"
    pooling = fit.settings.get("pooling")
    head = f"Bayesian meta-analysis: {fit.family}, {k} studies, {engine}"
    if pooling in ("none", "full"):
        head += ", no pooling" if pooling == "none" else ", complete pooling"
    lines = [head, "", f"{'':<{LABEL}}{'median':>9}{'sd':>9}{'2.5%':>10}{'97.5%':>10}"]
    rows = shown_rows(fit, summary) or list(summary.index[:MAX_ROWS])
    for name in rows:
        r = summary.loc[name]
        scale, label = (100.0, "I2 (%)") if name == "I2" else (1.0, name)
        cells = [r["q50"] * scale, r["sd"] * scale, r["q2.5"] * scale, r["q97.5"] * scale]
        label = label if len(label) < LABEL else label[: LABEL - 2] + "~"
        lines.append(
            f"{label:<{LABEL}}{_number(cells[0]):>9}{_number(cells[1]):>9}"
            f"{_number(cells[2]):>10}{_number(cells[3]):>10}"
        )
    lines.append("")
    lines += [note for name, note in NOTES.items() if name in rows]
    if "s2_typical" in summary.index:
        s2 = float(summary.loc["s2_typical", "mean"])
        lines.append(
            f"I2, H2: typical within-study variance s2 = {s2:.3g} (Higgins & Thompson 2002)."
        )
    lines.append(_verdict_line(fit))
    return "\n".join(lines)


def _verdict_line(fit) -> str:
    if fit.method == "exact":
        return "Diagnostics: pass (exact engine: no sampling)."
    failing = [c for c in fit.checks if c.verdict != "pass" and c.name != "pareto_k"]
    line = f"Diagnostics: {fit.verdict}"
    if failing:
        line += f" ({', '.join(c.name for c in failing[:4])}; see fit.checks)"
    return line + "."
