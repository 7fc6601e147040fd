"""The report's words and tables: what the evidence says, in sentences and in rows.

Everything here returns plain strings (or :class:`Table` objects of strings); escaping is
the templates' job, so that HTML and Markdown each escape in their own way.
"""

from __future__ import annotations

import json
import math
import shlex
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

if TYPE_CHECKING:
    from bayeskit.report.run import Run

#: Evidence columns worth a reader's eye, in order; long free text (source, notes) is not.
EVIDENCE_COLUMNS = (
    "study", "arm", "role", "outcome", "timepoint", "n", "events", "mean", "sd",
    "ai", "n1i", "ci", "n2i", "yi", "sei", "measure", "unit", "design", "indication",
    "treatment", "dose_mg_per_kg", "route", "sessions", "systemic_dose_mg_per_kg",
    "control_treatment", "control_dose_mg_per_kg", "control_route", "control_sessions",
)  # fmt: skip

CHECK_NAMES = {
    "r_hat": "R-hat (do the chains agree?)",
    "ess_bulk": "Effective sample size, bulk",
    "ess_tail": "Effective sample size, tails",
    "divergences": "Divergent transitions",
    "tree_depth": "Tree depth",
    "e_bfmi": "Energy (E-BFMI)",
    "pareto_k": "PSIS-LOO Pareto k",
    "exact_agreement": "Agreement with the exact posterior",
}

#: Short names for sentences.
CHECK_SHORT = {
    "r_hat": "R-hat",
    "ess_bulk": "bulk ESS",
    "ess_tail": "tail ESS",
    "divergences": "divergences",
    "tree_depth": "tree depth",
    "e_bfmi": "E-BFMI",
    "pareto_k": "Pareto k",
    "exact_agreement": "agreement with the exact posterior",
}

VERDICT_WORDS = {"pass": "pass", "warn": "warning", "fail": "fail"}


@dataclass
class Table:
    """A table of display strings.

    Attributes
    ----------
    columns : list of str
    rows : list of list of str
    verdicts : list of str or None
        Per row, ``"pass"``, ``"warn"`` or ``"fail"`` to colour it; empty for none.
    numeric : list of bool
        Per column, whether to right-align it.

    Examples
    --------
    >>> Table(["parameter", "mean"], [["mu", "4.4"]], [], [False, True]).rows
    [['mu', '4.4']]
    """

    columns: list[str]
    rows: list[list[str]]
    verdicts: list[str | None] = field(default_factory=list)
    numeric: list[bool] = field(default_factory=list)


def num(x: Any, digits: int = 3) -> str:
    """Format a number for reading: ``digits`` significant digits, no needless exponent.

    Examples
    --------
    >>> [num(v) for v in (4.33406, -17.386, 0.01365, 1234.5, 2.0, float("nan"))]
    ['4.33', '-17.4', '0.0137', '1234', '2', '']
    """
    try:
        x = float(x)
    except (TypeError, ValueError):
        return "" if x is None else str(x)
    if not math.isfinite(x):
        return "" if math.isnan(x) else ("inf" if x > 0 else "-inf")
    if x != 0 and abs(x) >= 10**digits:
        return f"{x:.0f}"
    out = f"{x:.{digits}g}"
    return out


def pct(p: float) -> str:
    """Format a probability as a percentage.

    Examples
    --------
    >>> pct(0.2690), pct(0.0586), pct(0.004)
    ('27%', '5.9%', '0.4%')
    """
    return f"{100 * p:.0f}%" if abs(p) >= 0.095 else f"{100 * p:.1f}%"


def prob(p: float) -> str:
    """Format a posterior probability, without claiming certainty that draws cannot give.

    Examples
    --------
    >>> prob(0.8933), prob(1.0), prob(0.0)
    ('0.89', 'above 0.99', 'below 0.01')
    """
    if p > 0.99:
        return "above 0.99"
    if p < 0.01:
        return "below 0.01"
    return f"{p:.2f}"


def points(p: float) -> str:
    """Format a difference of probabilities in percentage points (without the unit).

    Examples
    --------
    >>> points(0.1996), points(-0.038)
    ('20', '-3.8')
    """
    return f"{100 * p:.0f}" if abs(p) >= 0.095 else f"{100 * p:.1f}"


def cell(value: Any) -> str:
    """Format a table cell: numbers to 4 significant digits, missing values empty.

    Examples
    --------
    >>> cell(3.14159265), cell(float("nan")), cell(None), cell("A")
    ('3.142', '', '', 'A')
    """
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return ""
    if isinstance(value, bool | np.bool_):
        return str(bool(value))
    if isinstance(value, int | np.integer):
        return str(int(value))
    if isinstance(value, float | np.floating):
        return num(value, 4)
    return str(value)


# --------------------------------------------------------------------------- headline


def _row(run: Run, name: str) -> pd.Series | None:
    return run.summary.loc[name] if name in run.summary.index else None


def _ci(row: pd.Series, f=lambda v: v, fmt=num) -> str:
    return f"{fmt(f(row['q2.5']))} to {fmt(f(row['q97.5']))}"


def _n_studies(run: Run) -> int | None:
    post = run.group("posterior")
    if post is not None and "study" in post.coords:
        return int(post.sizes["study"])
    if run.data is not None and "study" in run.data:
        return int(run.data["study"].nunique())
    return None


def headline(run: Run, *, table: bool = False) -> list[str]:
    """Sentences that say what the evidence says, from the summary and the posterior.

    With ``table`` (the report, when the run has ``headline.csv``), the answers to the
    spec's questions are left to the headline table instead of a sentence each.

    Examples
    --------
    >>> import tempfile
    >>> from pathlib import Path
    >>> import bayeskit as bk
    >>> from bayeskit.report.run import load_run
    >>> from bayeskit.rundir import write_run
    >>> fit = bk.fit(bk.data_path("eight_schools.csv"), method="exact",
    ...              priors={"mu": "Normal(0, 5)", "tau": "HalfCauchy(5)"})
    >>> run = load_run(write_run(fit, Path(tempfile.mkdtemp()) / "run", report=False))
    >>> print(headline(run)[0])
    Across 8 studies, the pooled effect (mu, mean difference) is 4.42 (95% credible
    interval -2.17 to 10.9).
    """
    k = _n_studies(run)
    lead = f"Across {k} {'study' if k == 1 else 'studies'}, " if k else ""
    family = run.model_family
    if family is not None and not family.pooled:  # no pooled mu: say what exposure does
        sentences = _exposure_sentences(run, lead, questions=not table)
    else:
        sentences = _pooled_sentences(run, lead)
    small = small_k_sentence(run)
    if small:
        sentences.append(small)
    return [s[:1].upper() + s[1:] for s in sentences]


def engine_sentence(run: Run) -> str:
    """Say which engine computed the posterior and why (from the manifest's settings).

    Examples
    --------
    >>> from pathlib import Path
    >>> from bayeskit.report.run import Run
    >>> settings = {"engine_reason": "MCMC: the binomial-normal family has no exact engine",
    ...             "attempts": [{"divergences": 4, "target_accept": 0.9},
    ...                          {"divergences": 0, "target_accept": 0.95}]}
    >>> print(engine_sentence(Run(Path("."), pd.DataFrame(), {"settings": settings})))
    MCMC: the binomial-normal family has no exact engine. The sampler was run 2 times: the
    first run had 4 divergent transitions, so it was refitted automatically (target
    acceptance 0.95 at the run kept, 0 divergences); the results are the last run's.
    """
    s = run.settings
    reason = str(s.get("engine_reason") or "")
    out = reason[:1].upper() + reason[1:] + "." if reason else ""
    attempts = s.get("attempts") or []
    if len(attempts) > 1:
        number = int(s.get("returned_attempt") or len(attempts))
        kept = attempts[number - 1]
        which = "the last run's" if number == len(attempts) else f"run {number}'s, the best"
        out += (
            f" The sampler was run {len(attempts)} times: the first run had "
            f"{attempts[0]['divergences']} divergent transitions, so it was refitted "
            f"automatically (target acceptance {kept['target_accept']:g} at the run kept"
            + (f", {kept['parametrization']} form" if kept.get("parametrization") else "")
            + f", {kept['divergences']} divergences); the results are {which}."
        )
    return out.strip()


def small_k_sentence(run: Run) -> str | None:
    """With five studies or fewer: one sentence on how much the tau prior drives the answer.

    Examples
    --------
    >>> from pathlib import Path
    >>> from bayeskit.report.run import Run
    >>> table = pd.DataFrame({"prior": ["as fitted", "rover:logor"],
    ...                       "tau_prior": ["HalfNormal(sigma=1)", "HalfNormal(sigma=0.5)"],
    ...                       "tau_overlap": [0.82, 0.9]})
    >>> run = Run(Path("."), pd.DataFrame(), {}, small_k=table)
    >>> print(small_k_sentence(run))
    With so few studies the prior on tau drives the answer: the prior and posterior
    densities of tau overlap by 82% (1 would mean the data say nothing about tau), so
    the table of alternative heterogeneity priors shows how mu and a new study's effect
    change under other published priors.
    """
    table = run.small_k
    if table is None or table.empty:
        return None
    overlap = float(table["tau_overlap"].iloc[0])
    if overlap >= 0.7:
        how = "drives the answer"
    elif overlap >= 0.4:
        how = "shapes the answer considerably"
    else:
        how = "matters less than the data"
    more = (
        "so the table of alternative heterogeneity priors shows how mu and a new study's "
        "effect change under other published priors"
        if len(table) > 1
        else "and no published heterogeneity prior is catalogued for this effect scale, so "
        "compare other priors on tau with bayeskit sensitivity"
    )
    return (
        f"With so few studies the prior on tau {how}: the prior and posterior densities of "
        f"tau overlap by {pct(overlap)} (1 would mean the data say nothing about tau), "
        f"{more}."
    )


def small_k_table(run: Run) -> Table | None:
    """``small_k.csv``: mu and theta_new (median, 95% interval) under each tau prior.

    Examples
    --------
    >>> from pathlib import Path
    >>> from bayeskit.report.run import Run
    >>> table = pd.DataFrame({"prior": ["as fitted"], "tau_prior": ["HalfNormal(sigma=1)"],
    ...     "tau_overlap": [0.8], "mu_q50": [0.1], "mu_q2.5": [-1.0], "mu_q97.5": [1.2],
    ...     "theta_new_q50": [0.1], "theta_new_q2.5": [-2.0], "theta_new_q97.5": [2.2]})
    >>> small_k_table(Run(Path("."), pd.DataFrame(), {}, small_k=table)).rows
    [['as fitted', 'HalfNormal(sigma=1)', '80%', '0.1 (-1 to 1.2)', '0.1 (-2 to 2.2)']]
    """
    table = run.small_k
    if table is None or table.empty or len(table) < 2 and "mu_q50" not in table:
        return None
    rows = []
    for r in table.to_dict(orient="records"):
        cells = [str(r["prior"]), str(r["tau_prior"]), pct(float(r["tau_overlap"]))]
        for name in ("mu", "theta_new"):
            cells.append(
                f"{num(r[f'{name}_q50'])} ({num(r[f'{name}_q2.5'])} to {num(r[f'{name}_q97.5'])})"
            )
        rows.append(cells)
    columns = ["tau prior", "", "tau overlap", "mu (95% CI)", "theta_new (95% PI)"]
    return Table(columns, rows, [], [False, False, True, True, True])


def _pooled_sentences(run: Run, lead: str) -> list[str]:
    out = []
    scale, ratio = run.measure_label, run.ratio
    pooling = run.settings.get("pooling", "partial")
    mu, tau, new = _row(run, "mu"), _row(run, "tau"), _row(run, "theta_new")
    if mu is None:
        if pooling == "none":
            out.append(
                f"{lead}each study is analysed on its own (no pooling): the forest plot and "
                "the summary table give each study's effect."
            )
        return out
    sentence = (
        f"{lead}the pooled effect (mu, {scale}) is {num(mu['q50'])} "
        f"(95% credible interval {_ci(mu)})"
    )
    if ratio:
        sentence += f", an {ratio} of {num(np.exp(mu['q50']))} ({_ci(mu, np.exp)})"
    out.append(sentence + ".")
    draws = run.draws("mu")
    if draws is not None:
        above = f"above zero (an {ratio} above 1)" if ratio else "above zero"
        out.append(f"The posterior probability that it is {above} is {prob(np.mean(draws > 0))}.")
    if any(name.startswith("beta[") for name in run.summary.index):
        out.append(
            "With covariates in the model, mu is the effect at their reference levels; "
            "the summary table gives each coefficient beta."
        )
    if pooling == "full":
        out.append("All studies are assumed to share one effect (complete pooling).")
    elif tau is not None:
        out.append(
            f"The true effects differ between studies with a standard deviation tau of "
            f"{num(tau['q50'])} (95% credible interval {_ci(tau)}, on the {scale} scale)."
        )
    if new is not None and pooling != "full":
        sentence = (
            f"A new study's true effect is predicted to lie between {num(new['q2.5'])} and "
            f"{num(new['q97.5'])} (95% prediction interval)"
        )
        if ratio:
            sentence += f", an {ratio} of {_ci(new, np.exp)}"
        out.append(sentence + ".")
    p1, rd = _row(run, "p_treatment"), _row(run, "risk_difference")
    p0 = run.settings.get("baseline_risk")
    if p1 is not None and rd is not None and p0:
        out.append(
            f"At a control-group risk of {pct(p0)}, the treated group's risk would be "
            f"{pct(p1['q50'])} ({_ci(p1, fmt=pct)}), a difference of {points(rd['q50'])} "
            f"percentage points ({_ci(rd, fmt=points)})."
        )
    return out


def _question_threshold(run: Run, label: str) -> float:
    for q in run.spec.get("questions") or []:
        if q.get("label") == label:
            return float(q.get("threshold", 0.1))
    return 0.1


def _exposure_sentences(run: Run, lead: str, *, questions: bool = True) -> list[str]:
    # The slope per doubling of (1 + exposure / E_ref) is in the summary table: it is a
    # parameter of one shape at one reference exposure, not a clinical answer, so the
    # text leads with the answers (or the largest effect of the Emax shape) instead.
    out = []
    post = run.group("posterior")
    indications = [str(i) for i in post["indication"].values] if post is not None else []
    for ind in indications:
        if (row := _row(run, f"emax[{ind}]")) is not None:
            out.append(
                f"{lead if not out else ''}in {ind}, the largest effect of the drug (emax) is "
                f"{num(row['q50'])} on the {run.measure_label} scale (95% credible interval "
                f"{_ci(row)})."
            )
    if not out and lead and indications:
        out.append(f"{lead}the model explains each trial's contrasts through exposure.")
    if (tau := _row(run, "tau")) is not None:
        out.append(
            f"Beyond dose and route, studies' contrasts differ with a standard deviation tau "
            f"of {num(tau['q50'])} (95% credible interval {_ci(tau)})."
        )
    if questions:
        out += _question_sentences(run)
    return out


def _question_sentences(run: Run) -> list[str]:
    q = run.questions
    if q is None or q.empty or not {"question", "quantity"} <= set(q.columns):
        return []
    better = (run.spec.get("report") or {}).get("better", "higher")
    out = []
    for label, rows in q.groupby("question", sort=False):
        r = rows.set_index("quantity")
        if {"p_with", "p_without", "difference"} <= set(r.index):
            thr = _question_threshold(run, str(label))
            word = "gain" if better == "higher" else "reduction"
            d = r.loc["difference"]
            comparator = str(rows["comparator"].iloc[0]) if "comparator" in rows else ""
            versus = "without" if comparator in ("", "nan", "no ketamine") else f"with {comparator}"
            sentence = (
                f"For {label}: the probability of the outcome is {pct(r.loc['p_with', 'q50'])} "
                f"with treatment against {pct(r.loc['p_without', 'q50'])} {versus}, a difference "
                f"of {points(d['q50'])} percentage points (95% credible interval "
                f"{_ci(d, fmt=points)})"
            )
            if pd.notna(d.get("prob")):
                sentence += (
                    f"; the probability of a {word} of at least {points(thr)} percentage points "
                    f"is {prob(d['prob'])}"
                )
            out.append(sentence + ".")
        elif "effect" in r.index:
            e = r.loc["effect"]
            sentence = (
                f"For {label}: the effect is {num(e['q50'])} on the {run.measure_label} scale "
                f"(95% credible interval {_ci(e)})"
            )
            units = [
                f"{num(r.loc[name, 'q50'])} {name.removeprefix('effect_')}"
                for name in r.index
                if name.startswith("effect_")
            ]
            if units:
                sentence += f", about {', '.join(units)}"
            if pd.notna(e.get("prob")):
                sentence += f"; the probability of benefit is {prob(e['prob'])}"
            out.append(sentence + ".")
    return out


def verdict_label(run: Run) -> tuple[str, str]:
    """Return the overall verdict as ``(css class, word)``: pass, warning, fail or n/a.

    Examples
    --------
    >>> from pathlib import Path
    >>> from bayeskit.report.run import Run
    >>> run = Run(Path("."), pd.DataFrame(), {"method": "mcmc"}, {"verdict": "warn", "checks": [
    ...     {"name": "r_hat", "verdict": "warn", "value": 1.02, "message": "chains disagree"},
    ...     {"name": "ess_bulk", "verdict": "pass", "value": 900, "message": ""}]})
    >>> verdict_label(run)
    ('warn', 'warning')
    """
    if run.method == "exact":
        return "none", "not applicable (exact)"
    verdict = str(run.diagnostics.get("verdict", "pass"))
    return verdict, VERDICT_WORDS.get(verdict, verdict)


def verdict_sentence(run: Run) -> str:
    """Say the diagnostics' overall verdict in words.

    Examples
    --------
    >>> from pathlib import Path
    >>> from bayeskit.report.run import Run
    >>> run = Run(Path("."), pd.DataFrame(), {"method": "mcmc"}, {"verdict": "warn", "checks": [
    ...     {"name": "r_hat", "verdict": "warn", "value": 1.02, "message": "chains disagree"},
    ...     {"name": "ess_bulk", "verdict": "pass", "value": 900, "message": ""}]})
    >>> print(verdict_sentence(run))
    Diagnostics raised warnings (R-hat): the estimates are usable with care; the
    diagnostics section says what to do.
    """
    if run.method == "exact":
        return (
            "The posterior was computed exactly by numerical integration (no sampling), so "
            "there are no sampling diagnostics to check."
        )
    checks = run.diagnostics.get("checks") or []
    verdict = run.diagnostics.get("verdict", "pass")
    if not checks:
        return "No diagnostics were recorded for this run."
    flagged = [c for c in checks if c.get("verdict") in ("warn", "fail")]
    names = ", ".join(CHECK_SHORT.get(c["name"], c["name"]) for c in flagged)
    if verdict == "pass":
        return (
            f"All {len(checks)} diagnostic checks passed: the sampler explored the posterior well."
        )
    if all(c["name"] == "pareto_k" for c in flagged):
        return (
            "The sampling diagnostics passed, but PSIS-LOO is unreliable for some observations "
            "(Pareto k): the fit leans heavily on them. See the LOO table."
        )
    if verdict == "warn":
        return (
            f"Diagnostics raised warnings ({names}): the estimates are usable with care; the "
            "diagnostics section says what to do."
        )
    return (
        f"Diagnostics failed ({names}): do not rely on these estimates until the problems "
        "in the diagnostics section are fixed."
    )


# --------------------------------------------------------------------------- tables


def frame_table(
    df: pd.DataFrame, *, index: bool = True, verdict_column: str | None = None
) -> Table:
    """Turn a DataFrame into a :class:`Table` of display strings.

    Examples
    --------
    >>> frame_table(pd.DataFrame({"a": [1.23456, 2.0], "b": ["x", None]}), index=False)
    Table(columns=['a', 'b'], rows=[['1.235', 'x'], ['2', '']], verdicts=[],
          numeric=[True, False])
    """
    frame = df.reset_index() if index else df
    columns = [str(c) for c in frame.columns]
    rows = [[cell(v) for v in values] for values in frame.itertuples(index=False, name=None)]
    numeric = [pd.api.types.is_numeric_dtype(frame[c]) for c in frame.columns]
    verdicts = [str(v) for v in frame[verdict_column]] if verdict_column in frame.columns else []
    return Table(columns, rows, verdicts, numeric)


def evidence_table(run: Run) -> Table | None:
    """Tabulate the data as the model saw it: the columns that matter, no empty ones.

    Examples
    --------
    >>> import tempfile
    >>> from pathlib import Path
    >>> import bayeskit as bk
    >>> from bayeskit.report.run import load_run
    >>> from bayeskit.rundir import write_run
    >>> fit = bk.fit(bk.data_path("eight_schools.csv"), method="exact",
    ...              priors={"mu": "Normal(0, 5)", "tau": "HalfCauchy(5)"})
    >>> run = load_run(write_run(fit, Path(tempfile.mkdtemp()) / "run", report=False))
    >>> table = evidence_table(run)
    >>> table.columns[:4], table.rows[0][:4]
    (['study', 'outcome', 'yi', 'sei'], ['A', 'sat_coaching', '28', '15'])
    """
    data = run.data
    if data is None or data.empty:
        return None
    covariates = _covariates(run)
    keep = [c for c in EVIDENCE_COLUMNS if c in data] + [
        c for c in covariates if c in data and c not in EVIDENCE_COLUMNS
    ]
    keep = [c for c in keep if data[c].notna().any()]
    if not keep:
        return None
    return frame_table(data[keep], index=False)


def _covariates(run: Run) -> list[str]:
    model = run.spec.get("model") or {}
    value = model.get("covariates") or []
    return [value] if isinstance(value, str) else [str(v) for v in value]


SUMMARY_FORMATS = {"ess_bulk": "{:.0f}", "ess_tail": "{:.0f}", "r_hat": "{:.3f}", "prob": "{:.3f}"}


def summary_table(run: Run) -> Table:
    """Tabulate the full posterior summary, formatted for reading.

    Examples
    --------
    >>> import tempfile
    >>> from pathlib import Path
    >>> import bayeskit as bk
    >>> from bayeskit.report.run import load_run
    >>> from bayeskit.rundir import write_run
    >>> fit = bk.fit(bk.data_path("eight_schools.csv"), method="exact",
    ...              priors={"mu": "Normal(0, 5)", "tau": "HalfCauchy(5)"})
    >>> run = load_run(write_run(fit, Path(tempfile.mkdtemp()) / "run", report=False))
    >>> table = summary_table(run)
    >>> table.columns, table.rows[0]
    (['parameter', 'mean', 'sd', 'q2.5', 'q50', 'q97.5'],
     ['mu', '4.4', '3.32', '-2.17', '4.42', '10.9'])
    """
    s = run.summary
    rows = []
    for name, values in s.iterrows():
        row = [str(name)]
        for col in s.columns:
            v = values[col]
            if pd.isna(v):
                row.append("")
            elif col in SUMMARY_FORMATS:
                row.append(SUMMARY_FORMATS[col].format(float(v)))
            else:
                row.append(num(v, 2 if col.startswith("mcse") else 3))
        rows.append(row)
    return Table(["parameter", *map(str, s.columns)], rows, [], [False] + [True] * len(s.columns))


def diagnostics_table(run: Run) -> Table | None:
    """One row per check: what was checked, its verdict, the worst value and the advice.

    Examples
    --------
    >>> from pathlib import Path
    >>> from bayeskit.report.run import Run
    >>> run = Run(Path("."), pd.DataFrame(), {"method": "mcmc"}, {"verdict": "warn", "checks": [
    ...     {"name": "r_hat", "verdict": "warn", "value": 1.02, "message": "chains disagree"},
    ...     {"name": "ess_bulk", "verdict": "pass", "value": 900, "message": ""}]})
    >>> table = diagnostics_table(run)
    >>> table.rows[0], table.verdicts
    (['R-hat (do the chains agree?)', 'warning', '1.02', 'chains disagree'], ['warn', 'pass'])
    """
    checks = run.diagnostics.get("checks") or []
    if not checks:
        return None
    rows, verdicts = [], []
    for c in checks:
        value = c.get("value")
        rows.append(
            [
                CHECK_NAMES.get(c["name"], str(c["name"])),
                VERDICT_WORDS.get(c.get("verdict"), str(c.get("verdict"))),
                num(value) if isinstance(value, int | float) else cell(value),
                str(c.get("message") or ""),
            ]
        )
        verdicts.append(c.get("verdict"))
    return Table(["check", "verdict", "worst value", "what it means"], rows, verdicts,
                 [False, False, True, False])  # fmt: skip


def loo_tables(run: Run) -> list[tuple[str, Table, float]]:
    """PSIS-LOO per observation, one table per log-likelihood: ``(name, table, good_k)``.

    Empty for a run without a ``log_likelihood`` group. Both engines write one: each
    study's effect integrated out, so that the study is predicted from the others.

    Examples
    --------
    >>> import tempfile
    >>> from pathlib import Path
    >>> import bayeskit as bk
    >>> from bayeskit.report.run import load_run
    >>> from bayeskit.rundir import write_run
    >>> fit = bk.fit(bk.data_path("eight_schools.csv"), method="exact", seed=1,
    ...              priors={"mu": "Normal(0, 5)", "tau": "HalfCauchy(5)"})
    >>> run = load_run(write_run(fit, Path(tempfile.mkdtemp()) / "run", report=False))
    >>> name, table, good_k = loo_tables(run)[0]
    >>> name, len(table.rows), set(table.verdicts)
    ('y', 8, {'pass'})
    """
    ll = run.group("log_likelihood")
    if ll is None or run.group("posterior") is None:
        return []
    from bayeskit.diagnostics import loo_table

    out = []
    for name in ll.data_vars:
        table = loo_table(run.tree, var_name=str(name))
        out.append((str(name), frame_table(table, verdict_column="verdict"), table.attrs["good_k"]))
    return out


def questions_table(run: Run) -> Table | None:
    """``questions.csv``: the answer to each regimen question.

    Examples
    --------
    >>> from pathlib import Path
    >>> from bayeskit.report.run import Run
    >>> answers = pd.DataFrame({"question": ["iv 0.5"], "quantity": ["effect"],
    ...                         "mean": [0.5], "prob": [0.93]})
    >>> questions_table(Run(Path("."), pd.DataFrame(), {}, questions=answers)).rows
    [['iv 0.5', 'effect', '0.5', '0.93']]
    """
    if run.questions is None or run.questions.empty:
        return None
    return frame_table(run.questions, index=False)


def borrowing_table(run: Run) -> Table | None:
    """``borrowing.csv``: each indication's slope with and without borrowing.

    Examples
    --------
    >>> from pathlib import Path
    >>> from bayeskit.report.run import Run
    >>> slopes = pd.DataFrame({"indication": ["OUD", "OUD"],
    ...                        "fit": ["with borrowing", "without borrowing"],
    ...                        "mean": [0.41, 0.52]})
    >>> borrowing_table(Run(Path("."), pd.DataFrame(), {}, borrowing=slopes)).rows
    [['OUD', 'with borrowing', '0.41'], ['OUD', 'without borrowing', '0.52']]
    """
    if run.borrowing is None or run.borrowing.empty:
        return None
    return frame_table(run.borrowing, index=False)


def described_table(run: Run) -> Table | None:
    """``described.csv``: case reports and series as observed, beside the prediction.

    Examples
    --------
    >>> from pathlib import Path
    >>> from bayeskit.report.run import Run
    >>> cases = pd.DataFrame({"study": ["C1"], "design": ["case_report"], "yi": [-4.5],
    ...     "sei": [1.0], "predicted_mean": [-0.9], "predicted_low": [-2.1],
    ...     "predicted_high": [0.3]})
    >>> described_table(Run(Path("."), pd.DataFrame(), {}, described=cases)).rows
    [['C1', 'case_report', '-4.5', '1', '-0.9', '-2.1', '0.3']]
    """
    if run.described is None or run.described.empty:
        return None
    cols = ["study", "design", "outcome", "dose_mg_per_kg", "route", "yi", "sei",
            "n", "events", "predicted_mean", "predicted_low", "predicted_high"]  # fmt: skip
    d = run.described
    return frame_table(d[[c for c in cols if c in d]], index=False)


def descriptive_tables(run: Run) -> dict[str, Any] | None:
    """``descriptive.csv``: results reported in words and harms, as reported.

    Returns the two tables (``results``, ``harms``; None when empty) and ``silent``, the
    analysed studies no harms row names, so that the sources' silence shows.

    Examples
    --------
    >>> from pathlib import Path
    >>> from bayeskit.report.run import Run
    >>> rows = pd.DataFrame({"kind": ["result", "harm"], "study": ["A", "R"],
    ...     "indication": ["OW", "OW"], "design": ["rct", None], "what": ["abstinence", "sae"],
    ...     "timepoint": ["4 months", None], "n": [None, 8.0], "events": [None, 0.0],
    ...     "direction": ["no_difference", None], "reported": ["no difference", "none"],
    ...     "file": ["narrative.csv", "harms.csv"]})
    >>> data = pd.DataFrame({"study": ["A", "A", "B"]})
    >>> t = descriptive_tables(Run(Path("."), pd.DataFrame(), {}, data=data,
    ...                            descriptive=rows))
    >>> t["results"].rows, t["harms"].rows, t["silent"]
    ([['A', 'OW', 'rct', 'abstinence', '4 months', 'no_difference', 'no difference']],
     [['R', 'OW', '', 'sae', '8', '0', 'none']], 'A, B')
    """
    d = run.descriptive
    if d is None or d.empty:
        return None
    results = d[d["kind"] == "result"]
    harms = d[d["kind"] == "harm"]
    res_cols = ["study", "indication", "design", "what", "timepoint", "direction", "reported"]
    harm_cols = ["study", "indication", "design", "what", "n", "events", "reported"]

    def table(frame: pd.DataFrame, cols: list[str]) -> Table | None:
        if frame.empty:
            return None
        t = frame[cols].rename(columns={"what": "outcome" if "timepoint" in cols else "event"})
        for c in ("n", "events"):
            if c in t:  # counts print as whole numbers; a missing one stays empty
                t[c] = t[c].map(lambda v: "" if pd.isna(v) else str(int(v)))
        return frame_table(t, index=False)

    analysed = [] if run.data is None else list(dict.fromkeys(run.data["study"].astype(str)))
    named = set(harms["study"].astype(str))
    return {
        "results": table(results, res_cols),
        "harms": table(harms, harm_cols),
        "silent": ", ".join(s for s in analysed if s not in named),
    }


def manifest_context(run: Run) -> dict[str, Any]:
    """Return the manifest as tables and pretty text, for the reproducibility section.

    Examples
    --------
    >>> import tempfile
    >>> from pathlib import Path
    >>> import bayeskit as bk
    >>> from bayeskit.report.run import load_run
    >>> from bayeskit.rundir import write_run
    >>> fit = bk.fit(bk.data_path("eight_schools.csv"), method="exact",
    ...              priors={"mu": "Normal(0, 5)", "tau": "HalfCauchy(5)"})
    >>> run = load_run(write_run(fit, Path(tempfile.mkdtemp()) / "run", report=False))
    >>> context = manifest_context(run)
    >>> context["priors"].rows[:2]
    [['mu', 'Normal(mu=0, sigma=5)'], ['tau', 'HalfCauchy(beta=5)']]
    """
    m = run.manifest

    def pairs(d: dict | None, key: str, value: str) -> Table | None:
        if not d:
            return None
        rows = [[str(k), _plain(v)] for k, v in d.items()]
        return Table([key, value], rows, [], [False, False])

    command = m.get("command")
    return {
        "created": str(m.get("created") or ""),
        "command": shlex.join(map(str, command)) if isinstance(command, list) else "",
        "platform": str(m.get("platform") or ""),
        "seed": str(m.get("seed")),
        "settings": pairs(m.get("settings"), "setting", "value"),
        "priors": pairs(m.get("priors"), "parameter", "prior"),
        "versions": pairs(m.get("versions"), "package", "version"),
        "data": pairs(m.get("data"), "file", "SHA-256"),
        "spec": json.dumps(m.get("spec"), indent=2, ensure_ascii=False) if m.get("spec") else "",
    }


def _plain(value: Any) -> str:
    if isinstance(value, dict | list):
        return json.dumps(value, ensure_ascii=False)
    return "" if value is None else str(value)
