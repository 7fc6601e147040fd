"""Evidence tables: reading, validating and enriching the studies a synthesis pools.

Two shapes are accepted (documented in ``data/README.md``):

* **arm level**, one row per arm per outcome per timepoint (``study, arm, outcome, n`` and
  ``events`` or ``mean``/``sd``);
* **study level**, one row per study (``study, yi`` and ``sei`` or ``vi``).

A third shape, the **route table** (``route, bioavailability, bioavailability_sd``), holds
the bioavailability of each route of administration. A fourth, the **descriptive**
table (``study, reported, source``), holds results reported only in words and adverse
events as reported: a report shows them, and no likelihood reads them.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

import pandas as pd

from bayeskit._resources import data_path
from bayeskit.errors import EvidenceError, Issue
from bayeskit.evidence.read import read_table
from bayeskit.evidence.schema import (
    DESIGNS,
    ROLES,
    ROUTES,
    SHAPES,
    detect_shape,
    to_values,
    validate_cells,
    validate_values,
)

__all__ = [
    "DESIGNS",
    "ROLES",
    "ROUTES",
    "check_table",
    "load_evidence",
    "load_routes",
]


def check_table(path: str | Path) -> tuple[pd.DataFrame | None, str | None, list[Issue]]:
    """Validate one file and return its converted table, its shape and every issue found.

    Parameters
    ----------
    path : str or Path
        A CSV file of any accepted shape.

    Returns
    -------
    table : DataFrame or None
        The converted table (numbers as numbers, categories lower-cased), or None when the
        file could not be read at all.
    shape : str or None
        ``"arm"``, ``"study"`` or ``"routes"``; None when it could not be told.
    issues : list of Issue
        Every broken rule; empty when the table is valid.

    Examples
    --------
    >>> from bayeskit._resources import data_path
    >>> table, shape, issues = check_table(data_path("eight_schools.csv"))
    >>> shape, len(table), issues
    ('study', 8, [])
    """
    file = str(path)
    raw, issues = read_table(path)
    digest = raw.attrs.get("sha256")
    if issues:
        return None, None, issues
    shape = detect_shape(raw.columns)
    if shape is None:
        need = "; ".join(
            f"{s.description} needs columns {', '.join(s.required)}" for s in SHAPES.values()
        )
        return (
            None,
            None,
            [Issue(file, 1, None, None, f"cannot tell what this table holds: {need}")],
        )
    missing = [c for c in shape.required if c not in raw.columns]
    if missing:
        return (
            None,
            shape.name,
            [
                Issue(file, 1, c, None, f"{shape.description} needs this column; it is missing")
                for c in missing
            ],
        )
    issues = validate_cells(raw, shape, file)
    bad = {(i.row, i.column) for i in issues if i.row is not None and i.column is not None}
    values = to_values(raw, bad)
    issues += validate_values(values, raw, shape, file)
    issues.sort(key=lambda i: (i.row or 0, i.column or ""))
    values.attrs = {"sha256": digest}  # of the bytes read, so a pipe is hashed right
    return values, shape.name, issues


def load_evidence(
    paths: str | Path | Iterable[str | Path],
    *,
    routes: str | Path | pd.DataFrame | None = None,
) -> pd.DataFrame:
    """Read, validate and enrich one or more evidence tables of the same shape.

    Parameters
    ----------
    paths : str, Path or list of them
        CSV files, all arm level or all study level.
    routes : str, Path or DataFrame, optional
        The route table used to derive ``bioavailability`` and
        ``systemic_dose_mg_per_kg = dose_mg_per_kg x bioavailability``; the bundled
        ``data/routes.csv`` by default.

    Returns
    -------
    DataFrame
        The validated rows of all files. ``attrs`` records ``shape`` (``"arm"`` or
        ``"study"``), ``files`` and ``sha256`` (one digest per file).

    Raises
    ------
    EvidenceError
        Listing every broken rule in every file, each with file, row and column.

    Examples
    --------
    >>> import bayeskit as bk
    >>> ev = bk.load_evidence(bk.data_path("oud_abstinence.csv"))
    >>> ev.attrs["shape"]
    'arm'
    >>> bool((ev["systemic_dose_mg_per_kg"] <= ev["dose_mg_per_kg"]).all())
    True
    """
    paths = _paths(paths, "load_evidence")
    if not paths:
        raise EvidenceError([Issue("(no file)", None, None, None, "no evidence file was given")])
    tables, shapes, issues, digests = [], {}, [], {}
    for path in paths:
        table, shape, found = check_table(path)
        issues += found
        if shape is not None:
            shapes[str(path)] = shape
        if table is not None and not found:
            digests[str(path)] = table.attrs["sha256"]
            tables.append(table.reset_index().assign(file=str(path)))
    kinds = set(shapes.values())
    if "routes" in kinds:
        issues += [
            Issue(f, None, None, None, "this is a route table, not an evidence table")
            for f, s in shapes.items()
            if s == "routes"
        ]
    if len(kinds - {"routes"}) > 1:
        issues.append(
            Issue(
                ", ".join(shapes),
                None,
                None,
                None,
                "the files mix arm-level and study-level tables; analyse each shape on its own",
            )
        )
    if issues:
        raise EvidenceError(issues)
    table = pd.concat(tables, ignore_index=True)
    shape = next(iter(kinds))
    if shape == "arm":
        _check_across_files(table)
    if "route" in table.columns:
        table = _add_exposure(table, load_routes(routes))
    table.attrs = {
        "shape": shape,
        "files": [str(p) for p in paths],
        "sha256": digests,
    }
    return table


def _paths(paths: object, caller: str) -> list[str | Path]:
    """Return ``paths`` as a list of paths, or raise a TypeError saying what was expected."""
    if isinstance(paths, (str, Path)):
        return [paths]
    if isinstance(paths, pd.DataFrame):
        raise TypeError(
            f"{caller} reads CSV files: give a path or a list of paths, not a DataFrame "
            "(bk.fit and bk.effects take a loaded table directly)"
        )
    try:
        items = list(paths)  # type: ignore[call-overload]
    except TypeError:
        raise TypeError(
            f"{caller} takes a path (str or pathlib.Path) or a list of paths; "
            f"got {type(paths).__name__}"
        ) from None
    for item in items:
        if not isinstance(item, (str, Path)):
            raise TypeError(
                f"{caller} takes paths (str or pathlib.Path); got {type(item).__name__} {item!r}"
            )
    return items


def _check_across_files(table: pd.DataFrame) -> None:
    if table["file"].nunique() < 2:
        return
    tp = table.get("timepoint", pd.Series("", index=table.index)).fillna("")
    key = pd.DataFrame(
        {"study": table["study"], "arm": table["arm"], "outcome": table["outcome"], "timepoint": tp}
    )
    dup = key.duplicated(keep=False)
    if dup.any():
        issues = [
            Issue(
                r.file,
                int(r.row),
                "arm",
                r.arm,
                "the same study, arm, outcome and timepoint also appear in another file",
            )
            for r in table[dup].itertuples()
        ]
        raise EvidenceError(issues)


def load_routes(routes: str | Path | pd.DataFrame | None = None) -> pd.DataFrame:
    """Return the route table indexed by ``route``.

    Parameters
    ----------
    routes : str, Path or DataFrame, optional
        A route table; the bundled ``data/routes.csv`` (figures from the scoping review)
        by default.

    Returns
    -------
    DataFrame
        Indexed by ``route`` with columns ``bioavailability`` and ``bioavailability_sd``.

    Examples
    --------
    >>> load_routes().loc["iv", "bioavailability"]
    np.float64(1.0)
    """
    if isinstance(routes, pd.DataFrame):
        table = routes.copy()
    else:
        path = data_path("routes.csv") if routes is None else Path(routes)
        table, shape, issues = check_table(path)
        if shape != "routes" and not issues:
            issues = [
                Issue(
                    str(path),
                    None,
                    None,
                    None,
                    "expected a route table with columns "
                    "route, bioavailability, bioavailability_sd",
                )
            ]
        if issues:
            raise EvidenceError(issues)
    if "bioavailability_sd" not in table.columns:
        table["bioavailability_sd"] = 0.0
    return table.set_index("route")[["bioavailability", "bioavailability_sd"]]


def _add_exposure(table: pd.DataFrame, routes: pd.DataFrame) -> pd.DataFrame:
    known = table["route"].dropna()
    unknown = sorted(set(known) - set(routes.index))
    if unknown:
        rows = table[table["route"].isin(unknown)]
        raise EvidenceError(
            [
                Issue(
                    r.file,
                    int(r.row),
                    "route",
                    r.route,
                    "the route table has no "
                    f"bioavailability for this route (it has {', '.join(routes.index)})",
                )
                for r in rows.itertuples()
            ]
        )
    table = table.copy()
    table["bioavailability"] = table["route"].map(routes["bioavailability"]).astype(float)
    if "dose_mg_per_kg" in table.columns:
        dose = table["dose_mg_per_kg"].astype(float)
        # No drug given (dose 0, e.g. placebo) means no exposure, whatever the route.
        table["systemic_dose_mg_per_kg"] = (dose * table["bioavailability"]).where(dose != 0, 0.0)
    return table
