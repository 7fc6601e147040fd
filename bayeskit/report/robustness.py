"""The report's headline table and robustness section (``headline.csv``, ``robustness.csv``).

The headline table puts each answer on one line: estimate, 95% interval, probability of
benefit, whether the evidence contains it or it is extrapolated, and whether its
direction survives every alternative of :mod:`bayeskit.robustness`. The robustness
figure shows, one panel per answer, its estimate and interval under each alternative,
marked where the direction flips.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from bayeskit.report.text import Table, num, points, prob

if TYPE_CHECKING:
    from matplotlib.figure import Figure

    from bayeskit.report.run import Run

#: the robustness figure's colours: direction as fitted, and flipped
HOLDS, FLIPS = "#1b5e20", "#b71c1c"


def _estimate(quantity: str, est: float, lo: float, hi: float, unit: bool = True) -> str:
    if quantity == "difference":  # probabilities: in percentage points
        return f"{points(est)}{' points' if unit else ''} ({points(lo)} to {points(hi)})"
    return f"{num(est)} ({num(lo)} to {num(hi)})"


def headline_table(run: Run) -> Table | None:
    """``headline.csv`` as the report's first table.

    Examples
    --------
    >>> from pathlib import Path
    >>> from bayeskit.report.run import Run
    >>> head = pd.DataFrame({"answer": ["a vs no ketamine"], "quantity": ["difference"],
    ...     "estimate": [0.13], "q2.5": [-0.11], "q97.5": [0.29], "p_benefit": [0.887],
    ...     "evidence": ["extrapolated"], "robustness": ["robust"]})
    >>> headline_table(Run(Path("."), pd.DataFrame(), {}, headline=head)).rows
    [['a vs no ketamine', '13 points (-11 to 29)', '0.89', 'extrapolated', 'robust']]
    """
    table = run.headline
    if table is None or table.empty:
        return None
    cells = headline_cells(table)
    return Table(list(cells.columns), cells.values.tolist(), [], [False, True, True, False, False])


def headline_cells(table: pd.DataFrame, *, short: bool = False) -> pd.DataFrame:
    """``headline.csv`` as display strings (the report's table, and ``bayeskit fit``'s).

    ``short`` (the terminal's 80 columns): no unit after a difference in percentage
    points, which the title states, and ``within`` for within the evidence.

    Examples
    --------
    >>> head = pd.DataFrame({"answer": ["a vs b"], "quantity": ["effect"],
    ...     "estimate": [-0.31], "q2.5": [-0.9], "q97.5": [0.2], "p_benefit": [0.15],
    ...     "evidence": ["within the evidence"], "robustness": ["fragile"]})
    >>> headline_cells(head).values.tolist()
    [['a vs b', '-0.31 (-0.9 to 0.2)', '0.15', 'within the evidence', 'fragile']]
    """
    table = table.reset_index() if "answer" not in table.columns else table
    rows = [
        [
            str(r["answer"]),
            _estimate(str(r["quantity"]), r["estimate"], r["q2.5"], r["q97.5"], not short),
            prob(float(r["p_benefit"])),
            "within" if short and r["evidence"] == "within the evidence" else str(r["evidence"]),
            str(r["robustness"]),
        ]
        for r in table.to_dict(orient="records")
    ]
    columns = ["answer", "estimate (95% interval)", "P(benefit)", "evidence", "robustness"]
    return pd.DataFrame(rows, columns=columns)


def _answers(run: Run) -> pd.DataFrame | None:
    """Return the robustness rows of each answer's headline quantity, with its short name."""
    table, head = run.robustness, run.headline
    if table is None or table.empty:
        return None
    if head is not None and {"question", "quantity", "answer"} <= set(head.columns):
        keep = pd.MultiIndex.from_frame(head[["question", "quantity"]])
        rows = table[pd.MultiIndex.from_frame(table[["question", "quantity"]]).isin(keep)]
        names = dict(zip(head["question"], head["answer"], strict=True))
    else:
        rows, names = table[table["quantity"] == "effect"], {}
    return rows.assign(answer=rows["question"].map(lambda q: names.get(q, q)))


def robustness_table(run: Run) -> Table | None:
    """``robustness.csv``: each headline answer under each alternative.

    Examples
    --------
    >>> from pathlib import Path
    >>> from bayeskit.report.run import Run
    >>> rob = pd.DataFrame({"question": ["a"] * 2, "quantity": ["effect"] * 2,
    ...     "assumption": ["as fitted", "tau prior"], "alternative": ["as fitted", "HN(1)"],
    ...     "q50": [0.5, -0.1], "q2.5": [0.1, -0.5], "q97.5": [0.9, 0.3],
    ...     "prob_benefit": [0.99, 0.4], "holds": [True, False]})
    >>> robustness_table(Run(Path("."), pd.DataFrame(), {}, robustness=rob)).rows[1]
    ['a', 'tau prior: HN(1)', '-0.1 (-0.5 to 0.3)', '0.40', 'no', '']
    """
    rows = _answers(run)
    if rows is None:
        return None
    out = [
        [
            str(r["answer"]),
            "as fitted"
            if r["assumption"] == "as fitted"
            else f"{r['assumption']}: {r['alternative']}",
            _estimate(str(r["quantity"]), r["q50"], r["q2.5"], r["q97.5"]),
            prob(float(r["prob_benefit"])),
            "yes" if bool(r["holds"]) else "no",
            str(r.get("refit_verdict", "")),
        ]
        for r in rows.to_dict(orient="records")
    ]
    columns = [
        "answer", "assumption", "estimate (95% interval)", "P(benefit)", "direction holds",
        "diagnostics",
    ]  # fmt: skip
    return Table(columns, out, [], [False, False, True, True, False, False])


def robustness_figure(run: Run) -> Figure | None:
    """One panel per answer: its estimate and 95% interval under each alternative.

    Green where the direction of the answer as fitted holds, red where it flips; the
    panel's title says ``robust`` or ``fragile``. None without ``robustness.csv``.

    Examples
    --------
    >>> from pathlib import Path
    >>> from bayeskit.report.run import Run
    >>> rob = pd.DataFrame({"question": ["a"] * 2, "quantity": ["effect"] * 2,
    ...     "assumption": ["as fitted", "tau prior"], "alternative": ["as fitted", "HN(1)"],
    ...     "q50": [0.5, -0.1], "q2.5": [0.1, -0.5], "q97.5": [0.9, 0.3],
    ...     "prob_benefit": [0.99, 0.4], "holds": [True, False]})
    >>> fig = robustness_figure(Run(Path("."), pd.DataFrame(), {}, robustness=rob))
    >>> [ax.get_title(loc="left") for ax in fig.axes]
    ['a: fragile']
    """
    from bayeskit.report.figures import _figure, text

    rows = _answers(run)
    if rows is None or rows.empty:
        return None
    from bayeskit.robustness import robust_flags

    flags = robust_flags(rows)
    answers = list(dict.fromkeys(rows["answer"]))
    n_alt = rows.groupby("answer", sort=False).size().max()
    fig = _figure(7.2, 0.6 + len(answers) * (0.55 + 0.2 * n_alt))
    axes = fig.subplots(len(answers), 1, squeeze=False)[:, 0]
    for ax, answer in zip(axes, answers, strict=True):
        r = rows[rows["answer"] == answer].reset_index(drop=True)
        scale = 100.0 if (r["quantity"] == "difference").all() else 1.0
        y = np.arange(len(r))[::-1]
        holds = r["holds"].astype(bool).to_numpy()
        colours = np.where(holds, HOLDS, FLIPS)
        for yi, (_, row), colour in zip(y, r.iterrows(), colours, strict=True):
            ax.plot([scale * row["q2.5"], scale * row["q97.5"]], [yi, yi], color=colour, lw=1.4)
            ax.plot(scale * row["q50"], yi, "o", color=colour, ms=4)
        labels = [
            "as fitted" if a == "as fitted" else f"{a}: {b}"
            for a, b in zip(r["assumption"], r["alternative"], strict=True)
        ]
        ax.set_yticks(y, [text(v) for v in labels], fontsize="small")
        ax.axvline(0, color="0.5", ls="--", lw=0.8)
        flag = flags[(r["question"].iloc[0], r["quantity"].iloc[0])]
        ax.set_title(f"{text(answer)}: {flag}", fontsize="medium", loc="left")
        ax.set_xlabel("difference (percentage points)" if scale == 100 else "effect")
        ax.grid(axis="x", color="0.92")
    return fig
