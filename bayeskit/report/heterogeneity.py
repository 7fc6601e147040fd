"""The report's heterogeneity section: tau, tau^2, I^2, H^2 and the prediction interval.

Read from the rows :mod:`bayeskit.heterogeneity` adds to ``summary.csv``; nothing is
recomputed, so the section shows what the run directory holds.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from bayeskit.report.text import Table, num

if TYPE_CHECKING:
    from bayeskit.report.run import Run

#: rows of the section: summary row, label, what it is, scale factor, unit suffix
ROWS = (
    ("tau", "tau", "between-study SD", 1.0, ""),
    ("tau2", "tau^2", "between-study variance", 1.0, ""),
    ("I2", "I^2", "share of the variation in the estimates due to heterogeneity", 100.0, "%"),
    ("H2", "H^2", "total variation relative to sampling variation alone", 1.0, ""),
    ("theta_new", "prediction interval", "a new study's true effect", 1.0, ""),
    ("odds_ratio_new", "prediction interval, odds ratio", "a new study's odds ratio", 1.0, ""),
    ("risk_ratio_new", "prediction interval, risk ratio", "a new study's risk ratio", 1.0, ""),
    ("p_treatment_new", "prediction interval, risk with treatment",
     "a new study's risk with treatment, at the baseline risk", 1.0, ""),
    ("risk_difference_new", "prediction interval, risk difference",
     "a new study's risk difference, at the baseline risk", 1.0, ""),
    ("delta_new", "prediction interval, deviation",
     "a new study's contrast, off the fitted dose-response", 1.0, ""),
)  # fmt: skip


def heterogeneity_table(run: Run) -> Table | None:
    """Posterior median and 95% interval of each heterogeneity quantity in the run.

    None when ``summary.csv`` has no ``I2`` row (no between-study SD, no pooling).

    Examples
    --------
    >>> import tempfile
    >>> from pathlib import Path
    >>> import bayeskit as bk
    >>> from bayeskit.report.run import load_run
    >>> from bayeskit.rundir import write_run
    >>> fit = bk.fit(bk.data_path("eight_schools.csv"),
    ...              priors={"mu": "Normal(0, 5)", "tau": "HalfCauchy(5)"})
    >>> run = load_run(write_run(fit, Path(tempfile.mkdtemp()) / "run", report=False))
    >>> table = heterogeneity_table(run)
    >>> [row[0] + " " + row[2] for row in table.rows]
    ['tau 2.75', 'tau^2 7.56', 'I^2 5.26%', 'H^2 1.06', 'prediction interval 4.49']
    """
    s = run.summary
    if "I2_total" in s.index:
        return _component_table(s)
    if "I2" not in s.index:
        return None
    rows = []
    for name, label, what, scale, unit in ROWS:
        if name not in s.index:
            continue
        r = s.loc[name]
        cells = [num(float(r[c]) * scale) + unit for c in ("q50", "q2.5", "q97.5")]
        rows.append([label, what, *cells])
    columns = ["quantity", "what it is", "median", "2.5%", "97.5%"]
    return Table(columns, rows, [], [False, False, True, True, True])


#: levels of a multilevel model, outermost first: summary suffix and label
LEVELS = (("cluster", "cluster"), ("study", "study"), ("es", "effect size"))


def _component_table(s) -> Table:
    """One row per variance component of a multilevel fit: SD, variance and I^2 share.

    Examples
    --------
    >>> import bayeskit as bk
    >>> fit = bk.fit(bk.data_path("konstantopoulos2011.csv"), "normal-multilevel")
    >>> table = _component_table(fit.summary())
    >>> [f"{row[0]}: {row[1]}" for row in table.rows][:3]
    ['study: SD tau_study', 'study: I^2 share', 'effect size: SD tau_es']
    >>> table.rows[4][1:3]
    ['I^2 total', '95.7%']
    """
    rows = []

    def cells(name, scale=1.0, unit=""):
        return [num(float(s.loc[name, c]) * scale) + unit for c in ("q50", "q2.5", "q97.5")]

    for level, label in LEVELS:
        if f"I2_{level}" not in s.index:
            continue
        rows.append([label, f"SD tau_{level}", *cells(f"tau_{level}")])
        rows.append([label, "I^2 share", *cells(f"I2_{level}", 100.0, "%")])
    rows.append(["all levels", "I^2 total", *cells("I2_total", 100.0, "%")])
    if "theta_new" in s.index:
        rows.append(["prediction interval", "a new effect size in a new study",
                     *cells("theta_new")])  # fmt: skip
    columns = ["level", "quantity", "median", "2.5%", "97.5%"]
    return Table(columns, rows, [], [False, False, True, True, True])


def heterogeneity_note(run: Run) -> str:
    """Return the sentence under the table: how I^2 was computed, and the baseline risk used.

    Examples
    --------
    >>> from pathlib import Path
    >>> import pandas as pd
    >>> from bayeskit.report.run import Run
    >>> s = pd.DataFrame({"mean": [136.0]}, index=["s2_typical"])
    >>> heterogeneity_note(Run(Path("."), s, {}))[:60]
    'I^2 = tau^2 / (tau^2 + s^2) and H^2 = 1 / (1 - I^2) are post'
    """
    s = run.summary
    if "I2_total" in s.index:
        return (
            "Variance components of the multilevel model: each level's SD and its I^2 "
            "share, tau_level^2 / (sum of the tau^2 + s^2) (Cheung 2014, Psychol "
            "Methods 19:211), with s^2 the typical sampling variance of all effect sizes "
            f"(Higgins & Thompson 2002), here {num(float(s.loc['s2_typical', 'mean']))}; "
            "'I^2 total' is the share of all the levels together."
        )
    parts = [
        "I^2 = tau^2 / (tau^2 + s^2) and H^2 = 1 / (1 - I^2) are posteriors, tau's "
        "posterior pushed through each function, with s^2 the typical within-study "
        "variance of Higgins & Thompson (2002, Stat Med 21:1539)"
    ]
    if "s2_typical" in s.index:
        parts[0] += f", here {num(float(s.loc['s2_typical', 'mean']))}"
    parts[0] += "."
    risk = run.settings.get("baseline_risk")
    if risk is not None and "p_treatment_new" in s.index:
        parts.append(f"Risks are stated at a baseline (control) risk of {num(float(risk))}.")
    if "delta_new" in s.index:
        parts.append(
            "This model has no single pooled effect: tau is the between-study SD of each "
            "contrast around the fitted dose-response, and I^2 the share of the residual "
            "variation it explains."
        )
    return " ".join(parts)


__all__ = ["heterogeneity_note", "heterogeneity_table"]
