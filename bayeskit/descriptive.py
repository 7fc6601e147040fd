"""Results reported only in words, and adverse events: shown beside a fit, never pooled.

A *descriptive* evidence table (a ``reported`` column; ``data/narrative.csv`` and
``data/harms.csv``) holds what a source says without numbers a likelihood could use: a
"no significant difference" at 4 months, "no serious adverse events". A spec names such
files in ``[data] descriptive``; the fit writes the rows that concern its studies or
indications to ``descriptive.csv`` and the report shows them as reported.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

import pandas as pd

from bayeskit.errors import UserError

#: Columns of ``descriptive.csv``, in order (``what`` is the outcome or the event).
COLUMNS = [
    "kind", "study", "indication", "design", "what", "timepoint", "n", "events",
    "direction", "reported", "file",
]  # fmt: skip


_WANTED = ("study", "indication", "design", "event", "outcome", "timepoint", "n", "events",
           "direction", "reported")  # fmt: skip


def descriptive_rows(
    files: Iterable[str | Path], studies: Iterable[str], indications: Iterable[str]
) -> pd.DataFrame:
    """Rows of descriptive tables about these studies or indications, as reported.

    Parameters
    ----------
    files : paths
        Descriptive evidence tables (a ``reported`` column).
    studies, indications : str
        The analysed studies and indications: a row is kept when its study is one of
        them or its indication is (a review's statement, a study not pooled).

    Returns
    -------
    DataFrame
        Indexed by ``study``; ``kind`` is ``harm`` for a row with an ``event`` and
        ``result`` otherwise. Rows keep their files' order.

    Raises
    ------
    UserError
        When a file is not a descriptive table or breaks one of its rules.

    Examples
    --------
    >>> from bayeskit._resources import data_path
    >>> rows = descriptive_rows([data_path("narrative.csv")], ["JOVAISA2006"], ["OW"])
    >>> rows.loc["JOVAISA2006", ["what", "timepoint", "direction"]].iloc[0].tolist()
    ['abstinence', '4 months', 'no_difference']
    >>> descriptive_rows([data_path("oud_abstinence.csv")], [], ["OUD"])
    Traceback (most recent call last):
    ...
    bayeskit.errors.UserError: [data] descriptive: .../oud_abstinence.csv is an arm-level ...
    """
    from bayeskit.evidence import check_table
    from bayeskit.evidence.schema import SHAPES

    studies, indications = set(map(str, studies)), set(map(str, indications))
    out = []
    for path in files:
        table, shape, issues = check_table(path)
        if issues:
            first = issues[0]
            raise UserError(
                f"[data] descriptive: {path} row {first.row}, column {first.column}: "
                f"{first.rule} ({len(issues)} issue(s); run `bayeskit validate {path}`)"
            )
        if shape != "descriptive":
            what = SHAPES[shape].description if shape in SHAPES else "not an evidence table"
            raise UserError(
                f"[data] descriptive: {path} is {what}; list only tables with a "
                "'reported' column here (results in words, harms), and pooled data in "
                "[data] files"
            )
        t = table.reset_index(drop=True)
        t = t.reindex(columns=list(dict.fromkeys([*t.columns, *_WANTED])))
        get = t.__getitem__
        keep = get("study").astype(str).isin(studies) | get("indication").astype(str).isin(
            indications
        )
        harm = t["event"].notna().any()
        rows = pd.DataFrame({
            "kind": "harm" if harm else "result",
            "study": get("study"), "indication": get("indication"), "design": get("design"),
            "what": get("event") if harm else get("outcome"),
            "timepoint": get("timepoint"), "n": get("n"), "events": get("events"),
            "direction": get("direction"), "reported": get("reported"),
            "file": Path(path).name,
        })[keep]  # fmt: skip
        out.append(rows)
    frame = pd.concat(out, ignore_index=True) if out else pd.DataFrame(columns=COLUMNS)
    return frame[COLUMNS].set_index("study")
