"""Fit a spec: the one path from an analysis spec to a fit, its summary and extra tables.

``bayeskit fit``, ``bayeskit batch`` (each task) and ``bayeskit sensitivity`` (the main
fit) go through :func:`fit_spec`; every refit and the SBC template of a spec-defined
family take the same :meth:`~bayeskit.spec.Spec.fit_kwargs`, so a spec means the same
thing everywhere.
"""

from __future__ import annotations

from typing import Any

import pandas as pd

#: Columns of ``described.csv`` (case reports and series shown, not pooled), where present.
DESCRIBED_COLUMNS = [
    "study", "design", "indication", "outcome", "arm", "n", "events", "baseline_mean",
    "mean", "yi", "sei", "dose_mg_per_kg", "route", "sessions", "timepoint",
]  # fmt: skip


def fit_spec(the_spec, *, progress: bool = False, tables: bool = True, **overrides: Any):
    """Fit a spec; return the fit, its summary (with question rows) and extra tables.

    Parameters
    ----------
    the_spec : Spec
        A validated spec (:func:`bayeskit.load_spec`).
    progress : bool
        Show the sampler's progress bar.
    tables : bool
        Also answer the spec's ``[[questions]]``, gather ``[data] descriptive`` rows
        (``descriptive`` table) and, for a fit that borrows between indications, refit
        without borrowing (``borrowing`` table).
    **overrides
        Keyword arguments of :func:`bayeskit.fit` replacing the spec's (``exclude``,
        ``priors``, ...).

    Examples
    --------
    >>> from bayeskit._resources import models_dir
    >>> from bayeskit.batches import Task, task_spec
    >>> task = Task("es", str(models_dir() / "eight_schools.toml"), seed=1, method="exact")
    >>> result, summary, extra = fit_spec(task_spec(task))
    >>> result.method, round(float(summary.loc["mu", "mean"]), 1), extra
    ('exact', 4.4, {})
    """
    from bayeskit.families import get_family
    from bayeskit.fitting import fit

    result = fit(the_spec.data_files(), **(the_spec.fit_kwargs() | overrides), progress=progress)
    summary = result.summary()
    extra = {}
    if not tables:
        return result, summary, extra
    if the_spec.questions and get_family(result.family).predict is not None:
        from bayeskit.questions import answer_questions

        extra["questions"] = answer_questions(result, the_spec)
        summary = _with_questions(summary, extra["questions"])
    # results in words and harms, shown beside the fit (never pooled)
    if the_spec.data.descriptive:
        from bayeskit.descriptive import descriptive_rows

        table = result.data.table.reset_index()  # a study-level table is indexed by study
        extra["descriptive"] = descriptive_rows(
            the_spec.descriptive_files(),
            table["study"].astype(str).unique(),
            table["indication"].dropna().astype(str).unique() if "indication" in table else [],
        )
    # case reports and series the model did not pool, shown beside its answers
    described = getattr(result.data, "described", None)
    if described is not None and len(described):
        extra["described"] = _described_beside(result, described)
    # the refits under other dose-response shapes only when the spec asks for them
    if the_spec.questions and the_spec.model.options().get("compare_forms"):
        from bayeskit.questions import shape_table

        extra["shapes"] = shape_table(result, the_spec)
    # one refit per reasonable alternative, only when the spec has a [robustness] section
    if "questions" in extra and getattr(the_spec, "robustness", None) is not None:
        from bayeskit.robustness import robustness_table

        extra["robustness"] = robustness_table(result, the_spec, extra["questions"])
    if "questions" in extra:  # the analyst's headline: one row per answer
        from bayeskit.robustness import headline_table

        extra["headline"] = headline_table(extra["questions"], extra.get("robustness"))
    # the refit without borrowing only when the spec asks for borrowing explicitly
    if the_spec.model.options().get("borrowing") and len(result.data.indication) > 1:
        from bayeskit.questions import borrowing_table

        extra["borrowing"] = borrowing_table(result, the_spec)
    return result, summary, extra


def _with_questions(summary: pd.DataFrame, questions: pd.DataFrame) -> pd.DataFrame:
    """Summary rows for each question's answers, named ``question[<label>].<quantity>``."""
    rows = questions.reset_index()
    rows.index = [f"question[{r.question}].{r.quantity}" for r in rows.itertuples()]
    # the labels (regimen, comparator, evidence, basis) are in the row name and questions.csv
    rows = rows.drop(columns=["question", "quantity"]).select_dtypes("number")
    rows.index.name = "parameter"
    return pd.concat([summary, rows])


def _described_beside(result, described: pd.DataFrame) -> pd.DataFrame:
    """Case reports and series as observed, beside the model's new-study prediction.

    ``predicted_*`` is the effect the fit predicts (against no ketamine, with tau) for a
    new study of that case's regimen: what the case would show if it were pooled and
    carried no bias. The gap between the two is the bias pooling would have to explain.
    """
    import numpy as np

    from bayeskit.questions import effect_draws

    out = described[[c for c in DESCRIBED_COLUMNS if c in described]].copy()
    mean, low, high = [], [], []
    for row in described.itertuples(index=False):
        sessions = getattr(row, "sessions", np.nan)
        draws = effect_draws(
            result,
            route=row.route,
            dose_mg_per_kg=float(row.dose_mg_per_kg),
            sessions=1.0 if pd.isna(sessions) else max(float(sessions), 1.0),
            indication=getattr(row, "indication", None),
        )["effect_new"].values.ravel()
        mean.append(float(draws.mean()))
        q = np.quantile(draws, [0.025, 0.975])
        low.append(float(q[0]))
        high.append(float(q[1]))
    out["predicted_mean"], out["predicted_low"], out["predicted_high"] = mean, low, high
    return out.set_index("study")
