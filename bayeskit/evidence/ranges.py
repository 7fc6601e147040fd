"""Counts derived from percentages, their recorded ranges, and the data variants they give.

Where a count was derived from a percentage (``derived`` says how), an arm-level table
may record the range the sources support in ``events_low``/``events_high`` and
``n_low``/``n_high`` (for example denominators from the completers analysed to the
number randomised; the reader checks that each range contains its value and that every
count in it fits every denominator in it). An analysis does not pick one reading: it
reports each variant (:data:`VARIANTS`) beside the fit, as rows of ``robustness.csv``.

* ``least favourable``: each study's experimental arms at their fewest events and
  largest denominator, its control arm at the most events and smallest denominator (the
  lowest relative effect the ranges allow, when more events are benefit);
* ``most favourable``: the opposite corner;
* ``completers denominators``: every denominator at ``n_low``, the counts as entered.
"""

from __future__ import annotations

from collections.abc import Sequence

import pandas as pd

from bayeskit.errors import UserError

#: the data variants an analysis reports, each with the sentence a table shows
VARIANTS = {
    "least favourable": "lowest effect within the recorded ranges",
    "most favourable": "highest effect within the recorded ranges",
    "completers denominators": "completers denominators (n_low)",
}


def has_ranges(table: pd.DataFrame) -> bool:
    """Whether a table records a range for any count.

    Examples
    --------
    >>> has_ranges(pd.DataFrame({"n": [3], "n_low": [None]})), has_ranges(pd.DataFrame())
    (False, False)
    """
    cols = [c for c in ("n_low", "n_high", "events_low", "events_high") if c in table]
    return bool(cols) and bool(table[cols].notna().to_numpy().any())


def variant_table(table: pd.DataFrame, variant: str, better: str = "higher") -> pd.DataFrame:
    """Return an arm-level table with its derived counts set to one variant's values.

    Rows without a recorded range, and tables without range columns, are unchanged;
    ``derived`` of a changed row says which variant it is.

    Parameters
    ----------
    table : DataFrame
        An arm-level evidence table (``n``, ``events``, ``role`` and the range columns).
    variant : str
        A key of :data:`VARIANTS`.
    better : {"higher", "lower"}
        Whether more events are benefit (abstinence) or harm: which corner is least
        favourable.

    Examples
    --------
    >>> t = pd.DataFrame({"study": "S", "role": ["experimental", "control"],
    ...     "n": [35, 35], "events": [8, 2], "n_low": [33, 31], "events_high": [9, None]})
    >>> v = variant_table(t, "least favourable")
    >>> v[["events", "n"]].values.tolist()
    [[8, 35], [2, 31]]
    >>> variant_table(t, "most favourable")[["events", "n"]].values.tolist()
    [[9, 33], [2, 35]]
    >>> variant_table(t, "completers denominators")["n"].tolist()
    [33, 31]
    """
    if variant not in VARIANTS:
        raise UserError(f"unknown data variant {variant!r}; known: {', '.join(VARIANTS)}")
    if better not in ("higher", "lower"):
        raise UserError("better must be 'higher' or 'lower'")
    out = table.copy()
    if not has_ranges(table) or "events" not in table:
        return out

    def col(name: str, default: str) -> pd.Series:
        value = table[default]
        return table[name].fillna(value) if name in table else value

    if variant == "completers denominators":
        n, events = col("n_low", "n"), table["events"]
    else:
        control = table.get("role", pd.Series("", index=table.index)).eq("control")
        # the relative effect is lowest with the experimental arm at its worst
        low = (variant == "least favourable") == (better == "higher")
        exp_events = col("events_low" if low else "events_high", "events")
        ctl_events = col("events_high" if low else "events_low", "events")
        exp_n, ctl_n = col("n_high", "n"), col("n_low", "n")
        if not low:
            exp_n, ctl_n = ctl_n, exp_n
        events = exp_events.where(~control, ctl_events)
        n = exp_n.where(~control, ctl_n)
    changed = (n != table["n"]) | (events.fillna(-1) != table["events"].fillna(-1))
    changed = changed.fillna(False).astype(bool)
    out["n"] = n.astype(table["n"].dtype)
    out["events"] = events.astype(table["events"].dtype)
    if changed.any():
        note = f"data variant '{variant}': events and n set within the recorded range"
        old = out.get("derived", pd.Series(None, index=out.index, dtype=object))
        out["derived"] = old.where(~changed, old.fillna("").astype(str) + f"; {note}")
    return out


def variant_tables(
    tables: Sequence[pd.DataFrame], variant: str, better: str = "higher"
) -> list[pd.DataFrame]:
    """Apply :func:`variant_table` to every arm-level table (others are kept as they are).

    Each table keeps its ``attrs`` (shape, files) and records ``variant`` in them.

    Examples
    --------
    >>> import bayeskit as bk
    >>> ev = bk.load_evidence(bk.data_path("oud_abstinence.csv"))
    >>> [v] = variant_tables([ev], "least favourable")
    >>> v.attrs["variant"], v.loc[v["study"] == "KRUPITSKY2007", "n"].tolist()
    ('least favourable', [32, 27])
    """
    out = []
    for table in tables:
        if table.attrs.get("shape", "arm") == "arm" and "arm" in table:
            new = variant_table(table, variant, better)
            new.attrs = dict(table.attrs) | {"variant": variant}
        else:
            new = table
        out.append(new)
    return out


def changed_rows(base: pd.DataFrame, variant: pd.DataFrame) -> pd.DataFrame:
    """Rows of a variant whose ``events`` or ``n`` differ from the base table's.

    Examples
    --------
    >>> t = pd.DataFrame({"study": ["S", "S"], "n": [35, 35], "events": [8, 2]})
    >>> changed_rows(t, t.assign(n=[35, 31]))["n"].tolist()
    [31]
    """
    diff = (variant["n"] != base["n"]) | (variant["events"].fillna(-1) != base["events"].fillna(-1))
    return variant[diff.fillna(False).astype(bool)]
