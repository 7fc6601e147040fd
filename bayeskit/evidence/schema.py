"""The rules an evidence table must follow, expressed as pandera schemas.

Validation runs in two passes so that one bad cell yields one message:

1. *cells*: every cell is checked as text (is it a number, a whole number, an allowed
   category, present when required);
2. *values*: cells that passed are converted and checked against value rules
   (``n >= 1``, ``events <= n``, ``sd > 0``), row rules (binary or continuous outcome)
   and table rules (duplicate keys, which arm is the control).

Every failure becomes an :class:`~bayeskit.errors.Issue` naming the row and column.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass

import numpy as np
import pandas as pd
import pandera.pandas as pa

from bayeskit.errors import Issue

ROUTES = ("iv", "im", "sl", "oral", "intranasal")
#: The plausible range of a count derived from a percentage (data/README.md): the value
#: column each bounds, e.g. ``n_low`` (completers) to ``n_high`` (randomised)
RANGE_COLUMNS = {
    "n_low": "n", "n_high": "n", "events_low": "events", "events_high": "events",
}  # fmt: skip
#: Study designs. ``non_randomised`` is the fallback for a non-randomised design that none
#: of the others names; every design but ``rct`` and ``crossover_rct`` is non-randomised.
DESIGNS = (
    "rct", "crossover_rct", "cohort", "case_control", "case_series", "case_report",
    "non_randomised",
)  # fmt: skip
#: Other spellings of category values (after lower-casing and turning '-' and ' ' into '_').
SPELLINGS = {"non_randomized": "non_randomised", "nonrandomised": "non_randomised",
             "nonrandomized": "non_randomised"}  # fmt: skip
ROLES = ("experimental", "control", "single")
OUTCOME_TYPES = ("binary", "continuous")
#: What a descriptive row says of the comparison, in words the source supports.
DIRECTIONS = ("favours_ketamine", "no_difference", "favours_control", "none")
CATEGORIES = {
    "route": ROUTES, "design": DESIGNS, "role": ROLES, "outcome_type": OUTCOME_TYPES,
    "direction": DIRECTIONS,
}  # fmt: skip

#: Text columns bayeskit knows. Any other column is a numeric covariate when every cell is
#: a number, a text column (carried along; categorical in a formula) when none is, and an
#: error when it mixes the two (a typing slip in a numeric column).
TEXT_COLUMNS = frozenset({
    "study", "arm", "outcome", "role", "design", "indication", "treatment", "route",
    "timepoint", "unit", "measure", "outcome_type", "source", "derived", "notes",
    "citation", "value_status", "group", "event", "reported", "direction", "scope",
    "es_id", "cluster",
})  # fmt: skip
INTEGER_COLUMNS = frozenset({"n", "events", "sessions", *RANGE_COLUMNS})

ARM_REQUIRED = ("study", "arm", "outcome", "n")
STUDY_REQUIRED = ("study", "yi")
ROUTES_REQUIRED = ("route", "bioavailability")
DESCRIPTIVE_REQUIRED = ("study", "reported", "source")

#: Lower bounds of numeric columns: (bound, strict).
LOWER_BOUNDS = {
    "n": (1, False), "events": (0, False), "sd": (0, True), "baseline_sd": (0, True),
    "sei": (0, True), "vi": (0, True), "dose_mg_per_kg": (0, False), "sessions": (0, False),
    "followup_months": (0, False), "bioavailability": (0, True), "bioavailability_sd": (0, False),
    "n_low": (1, False), "n_high": (1, False), "events_low": (0, False), "events_high": (0, False),
}  # fmt: skip


@dataclass(frozen=True)
class Shape:
    """What kind of table a file holds.

    Examples
    --------
    >>> shape = SHAPES["study"]
    >>> shape.name, shape.required
    ('study', ('study', 'yi'))
    """

    name: str  # "arm", "study", "routes" or "descriptive"
    required: tuple[str, ...]
    description: str


SHAPES = {
    "arm": Shape("arm", ARM_REQUIRED, "an arm-level table (one row per arm per outcome)"),
    "study": Shape(
        "study", STUDY_REQUIRED, "a study-level table (one row per study: yi, sei or vi)"
    ),
    "routes": Shape("routes", ROUTES_REQUIRED, "a route table (bioavailability per route)"),
    # Results reported only in words (no arm-level numbers) and adverse events: shown in
    # the report as reported, never entered into a likelihood.
    "descriptive": Shape(
        "descriptive",
        DESCRIPTIVE_REQUIRED,
        "a descriptive table (results and harms as reported, with a 'reported' column)",
    ),
}


def detect_shape(columns: pd.Index) -> Shape | None:
    """Return the table's shape from its columns, or None when it matches none.

    Examples
    --------
    >>> import pandas as pd
    >>> from bayeskit.evidence.schema import detect_shape
    >>> detect_shape(pd.Index(["study", "yi", "sei", "measure"])).name
    'study'
    >>> detect_shape(pd.Index(["study", "event", "reported", "source"])).name
    'descriptive'
    >>> detect_shape(pd.Index(["foo"])) is None
    True
    """
    if "reported" in columns:
        return SHAPES["descriptive"]
    if "arm" in columns:
        return SHAPES["arm"]
    if "yi" in columns:
        return SHAPES["study"]
    if "bioavailability" in columns:
        return SHAPES["routes"]
    return None


# --- pass 1: cells as text ---------------------------------------------------------------


# Only ASCII decimal notation is a number: float() would also take '1_5', '١٢' (Arabic-
# Indic digits), '１２' (full-width), 'inf' and 'nan', none of which a study reports.
_NUMBER = re.compile(r"[+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][+-]?[0-9]+)?", re.ASCII)


def _is_number(cell: object) -> bool:
    """Whether a cell is a finite number written in ASCII decimal notation.

    Examples
    --------
    >>> [_is_number(c) for c in ("1.5", "-2e-3", ".5", "1_5", "١٢", "１２", "0x1", "inf", "1e999")]
    [True, True, True, False, False, False, False, False, False]
    """
    if not isinstance(cell, str) or not _NUMBER.fullmatch(cell):
        return False
    return math.isfinite(float(cell))


def category(cell: str) -> str:
    """Return a category value in its canonical spelling.

    Examples
    --------
    >>> category("Case-Control"), category("non-randomized"), category("RCT")
    ('case_control', 'non_randomised', 'rct')
    """
    key = re.sub(r"[-\s]+", "_", cell.strip().lower())
    return SPELLINGS.get(key, key)


def _text_column(values: pd.Series) -> bool:
    """Whether a column bayeskit does not know holds text: no cell of it is a number."""
    present = values.dropna()
    return len(present) > 0 and not present.map(_is_number).any()


MAX_COUNT = 10**9  # no trial has a billion patients; larger counts are typing slips


def _is_whole(cell: object) -> bool:
    return _is_number(cell) and float(cell).is_integer() and abs(float(cell)) <= MAX_COUNT


def _cell_schema(columns: pd.Index, shape: Shape, text: set[str]) -> pa.DataFrameSchema:
    cols = {}
    for col in columns:
        checks = []
        if col in CATEGORIES:
            allowed = CATEGORIES[col]
            checks.append(pa.Check(
                lambda s, allowed=allowed: s.map(category).isin(allowed), ignore_na=True,
                error=f"must be one of {', '.join(allowed)} (any letter case; '-' for '_')",
            ))  # fmt: skip
        elif col in INTEGER_COLUMNS:
            checks.append(
                pa.Check(
                    lambda s: s.map(_is_whole),
                    ignore_na=True,
                    error=f"must be a whole number (at most {MAX_COUNT:.0e})",
                )
            )
        elif col not in TEXT_COLUMNS and col not in text:
            what = (
                "a finite number in decimal notation"
                if col in LOWER_BOUNDS or col in _KNOWN_NUMERIC
                else "a finite number in decimal notation (the column's other cells are "
                "numbers; a column of text alone would be read as a category)"
            )
            checks.append(
                pa.Check(lambda s: s.map(_is_number), ignore_na=True, error=f"must be {what}")
            )
        required = col in shape.required
        cols[col] = pa.Column(object, checks=checks, nullable=not required, required=False)
    return pa.DataFrameSchema(cols)


_KNOWN_NUMERIC = frozenset({
    "n", "events", "mean", "sd", "dose_mg_per_kg", "sessions", "followup_months", "baseline_mean",
    "baseline_sd", "yi", "sei", "vi", "bioavailability", "bioavailability_sd", *RANGE_COLUMNS,
})  # fmt: skip


# --- pass 2: values ----------------------------------------------------------------------


def _value_schema(table: pd.DataFrame, shape: Shape) -> pa.DataFrameSchema:
    cols = {}
    for col, (bound, strict) in LOWER_BOUNDS.items():
        if col in table.columns:
            word = "greater than" if strict else "at least"
            make = pa.Check.gt if strict else pa.Check.ge
            check = make(bound, error=f"must be {word} {bound}", ignore_na=True)
            cols[col] = pa.Column(None, check, nullable=True, required=False)
    if shape.name == "routes" and "bioavailability" in table.columns:
        cols["bioavailability"].checks.append(
            pa.Check.le(1, error="must be at most 1 (a fraction, not a percentage)")
        )
    return pa.DataFrameSchema(cols)


def to_values(table: pd.DataFrame, bad: set[tuple[int, str]]) -> pd.DataFrame:
    """Convert validated text cells to numbers and lower-case categories.

    Cells listed in ``bad`` (row, column) failed pass 1 and become missing.

    Examples
    --------
    >>> raw = pd.DataFrame({"study": ["A", "B"], "yi": ["0.5", "oops"], "sei": ["0.2", "-1"]},
    ...                    index=pd.Index([2, 3], name="row"), dtype=object)  # as read_table
    >>> values = to_values(raw, {(3, "yi")})
    >>> values["yi"].tolist(), values["sei"].tolist()
    ([0.5, nan], [0.2, -1.0])
    """
    text = text_columns(table)
    out = table.copy()
    for row, col in bad:
        out.loc[row, col] = None
    for col in out.columns:
        if col in CATEGORIES:
            out[col] = out[col].map(category, na_action="ignore")
        elif col in INTEGER_COLUMNS:
            out[col] = _floats(out[col]).astype("Int64")
        elif col not in TEXT_COLUMNS and col not in text:
            out[col] = _floats(out[col])
    return out


def _floats(cells: pd.Series) -> pd.Series:
    # float() rounds correctly; pd.to_numeric's fast parser can miss by an ulp
    # ('0.10e37' becomes 9.999999999999999e+35), and a value must be what was written
    return cells.map(float, na_action="ignore").astype(float)


def text_columns(table: pd.DataFrame) -> set[str]:
    """Columns bayeskit does not know that hold text only: carried along, not numbers.

    Examples
    --------
    >>> raw = pd.DataFrame({"study": ["A", "B"], "onset": ["early", "late"],
    ...                     "age": ["30", None]}, dtype=object)
    >>> text_columns(raw)
    {'onset'}
    """
    return {
        str(c)
        for c in table.columns
        if c not in TEXT_COLUMNS
        and c not in CATEGORIES
        and c not in INTEGER_COLUMNS
        and c not in _KNOWN_NUMERIC
        and c not in LOWER_BOUNDS
        and _text_column(table[c])
    }


def _issues_from(err: pa.errors.SchemaErrors, file: str, raw: pd.DataFrame) -> list[Issue]:
    issues = []
    for case in err.failure_cases.itertuples(index=False):
        row = None if pd.isna(case.index) else int(case.index)
        col = case.column if isinstance(case.column, str) else None
        if case.check == "not_nullable":
            rule, value = "is required but empty", None
        else:
            rule = str(case.check)
            value = None if row is None or col is None else raw.loc[row, col]
        issues.append(Issue(file, row, col, value, rule))
    return issues


def validate_cells(raw: pd.DataFrame, shape: Shape, file: str) -> list[Issue]:
    """Pass 1: check every cell as text.

    Examples
    --------
    >>> raw = pd.DataFrame({"study": ["A", "B"], "yi": ["0.5", "oops"], "sei": ["0.2", "-1"]},
    ...                    index=pd.Index([2, 3], name="row"), dtype=object)  # as read_table
    >>> [(i.row, i.column, i.value, i.rule)
    ...  for i in validate_cells(raw, SHAPES["study"], "t.csv")]
    [(3, 'yi', 'oops', 'must be a finite number in decimal notation')]
    """
    try:
        _cell_schema(raw.columns, shape, text_columns(raw)).validate(raw, lazy=True)
    except pa.errors.SchemaErrors as err:
        return _issues_from(err, file, raw)
    return []


def validate_values(
    values: pd.DataFrame, raw: pd.DataFrame, shape: Shape, file: str
) -> list[Issue]:
    """Pass 2: check value, row and table rules on converted cells.

    Examples
    --------
    >>> raw = pd.DataFrame({"study": ["A", "B"], "yi": ["0.5", "oops"], "sei": ["0.2", "-1"]},
    ...                    index=pd.Index([2, 3], name="row"), dtype=object)  # as read_table
    >>> values = to_values(raw, {(3, "yi")})  # the cell pass 1 rejected
    >>> [(i.row, i.column, i.value, i.rule)
    ...  for i in validate_values(values, raw, SHAPES["study"], "t.csv")]
    [(3, 'sei', '-1', 'must be greater than 0')]
    """
    issues = []
    try:
        _value_schema(values, shape).validate(values, lazy=True)
    except pa.errors.SchemaErrors as err:
        issues += _issues_from(err, file, raw)
    rules = {
        "arm": _arm_rules, "study": _study_rules, "routes": _route_rules,
        "descriptive": _descriptive_rules,
    }[shape.name]  # fmt: skip
    issues += rules(values, raw, file)
    return issues


# Row and table rules compare several cells or rows: pandas does the work as vector
# operations, and each failing row becomes an Issue.


def _flag(mask, raw: pd.DataFrame, file: str, column: str, rule: str) -> list[Issue]:
    mask = pd.Series(np.asarray(mask, dtype=bool), index=raw.index)
    value = raw[column] if column in raw.columns else pd.Series(None, index=raw.index)
    return [Issue(file, int(r), column, value[r], rule) for r in mask[mask].index]


def _col(values: pd.DataFrame, col: str) -> pd.Series:
    if col in values.columns:
        return values[col]
    if col in TEXT_COLUMNS:
        return pd.Series(None, index=values.index, dtype=object)
    return pd.Series(np.nan, index=values.index, dtype=float)


def _arm_rules(values: pd.DataFrame, raw: pd.DataFrame, file: str) -> list[Issue]:
    issues = []
    n, events, mean, sd = (_col(values, c) for c in ("n", "events", "mean", "sd"))
    has_events, has_mean, has_sd = events.notna(), mean.notna(), sd.notna()

    issues += _flag(
        (events > n).fillna(False).astype(bool), raw, file, "events", "events cannot exceed n"
    )
    issues += _range_rules(values, raw, file)
    kind = _col(values, "outcome_type")
    stated = kind.notna()
    binary = (kind == "binary").fillna(False).astype(bool) | (~stated & has_events)
    continuous = (kind == "continuous").fillna(False).astype(bool) | (
        ~stated & ~has_events & has_mean
    )
    issues += _flag(
        binary & ~has_events, raw, file, "events", "a binary outcome needs the number of events"
    )
    issues += _flag(
        ~stated & has_events & has_mean,
        raw,
        file,
        "mean",
        "the row has both events and a mean: put a binary and a continuous "
        "outcome on separate rows (or state outcome_type)",
    )
    issues += _flag(continuous & ~has_mean, raw, file, "mean", "a continuous outcome needs a mean")
    single = (n == 1).fillna(False).astype(bool)
    issues += _flag(
        continuous & has_mean & ~has_sd & ~single,
        raw,
        file,
        "sd",
        "a continuous outcome needs an sd (only a single patient, n = 1, may leave it empty)",
    )
    neither = ~stated & ~has_events & ~has_mean & ~has_sd
    issues += _flag(
        neither,
        raw,
        file,
        "events",
        "each row needs either events (binary outcome) or mean and sd (continuous outcome)",
    )
    issues += _flag(
        ~stated & ~has_events & ~has_mean & has_sd,
        raw,
        file,
        "mean",
        "a continuous outcome needs a mean",
    )

    # An outcome is binary or continuous throughout the file.
    kind_of = pd.Series(
        np.where(binary, "binary", np.where(continuous, "continuous", "")), index=values.index
    )
    for outcome, kinds in kind_of.groupby(values["outcome"]):
        found = set(kinds) - {""}
        if len(found) > 1:
            first = kinds[kinds == "binary"].index[0]
            mixed = kinds[(kinds == "continuous")]
            issues += _flag(
                values.index.isin(mixed.index),
                raw,
                file,
                "outcome",
                f"outcome {outcome!r} is binary in row {first} but continuous here",
            )

    timepoint = _col(values, "timepoint").fillna("")
    keys = pd.DataFrame(
        {
            "study": values["study"],
            "arm": values["arm"],
            "outcome": values["outcome"],
            "timepoint": timepoint,
        }
    ).fillna("")  # a missing key cell is reported on its own; here it is just text
    dup = keys.duplicated(keep="first")
    for row in dup[dup].index:
        same = keys.eq(keys.loc[row]).all(axis=1)
        first = int(same[same].index[0])
        issues.append(
            Issue(
                file,
                int(row),
                "arm",
                raw.loc[row, "arm"],
                f"duplicates row {first}: the same study, arm, outcome and timepoint",
            )
        )

    role = _col(values, "role")
    groups = keys.drop(columns="arm").assign(role=role)
    for (study, outcome, tp), grp in groups.groupby(["study", "outcome", "timepoint"]):
        if len(grp) < 2:
            continue
        where = f"study {study!r} has {len(grp)} arms on outcome {outcome!r}" + (
            f" at {tp!r}" if tp else ""
        )
        controls = (grp["role"] == "control").sum()
        if controls == 0:
            issues += _flag(
                values.index.isin(grp.index),
                raw,
                file,
                "role",
                f"{where}: mark exactly one arm's role as 'control'",
            )
        elif controls > 1:
            issues += _flag(
                values.index.isin(grp.index[grp["role"] == "control"]),
                raw,
                file,
                "role",
                f"{where} and {controls} of them are 'control': exactly one must be",
            )
        issues += _flag(
            values.index.isin(grp.index[grp["role"] == "single"]),
            raw,
            file,
            "role",
            f"{where}: 'single' is for single-arm studies",
        )
    return issues


def _range_rules(values: pd.DataFrame, raw: pd.DataFrame, file: str) -> list[Issue]:
    """Check that each range brackets its value and every count in it fits every n in it.

    Examples
    --------
    >>> values = pd.DataFrame({"n": [35, 35], "events": [8, 8], "n_low": [33, 36],
    ...                        "events_high": [9, 9]}, index=pd.Index([2, 3], name="row"))
    >>> [(i.row, i.column, i.rule) for i in _range_rules(values, values.astype(str), "t.csv")]
    [(3, 'n_low', 'n_low cannot exceed n (the range must contain the value)')]
    """
    issues = []
    for col, of in RANGE_COLUMNS.items():
        if col not in values.columns:
            continue
        bound, value = _col(values, col), _col(values, of)
        issues += _flag(
            bound.notna() & value.isna(),
            raw,
            file,
            col,
            f"a range needs the value it brackets: fill {of} (or leave {col} empty)",
        )
        outside = bound > value if col.endswith("_low") else bound < value
        word = "exceed" if col.endswith("_low") else "be below"
        issues += _flag(
            outside.fillna(False).astype(bool),
            raw,
            file,
            col,
            f"{col} cannot {word} {of} (the range must contain the value)",
        )
    if {"events_high", "n_low"} & set(values.columns):
        # the widest count against the smallest denominator: every corner is a count
        most = _col(values, "events_high").fillna(_col(values, "events"))
        fewest = _col(values, "n_low").fillna(_col(values, "n"))
        col = "events_high" if "events_high" in values.columns else "n_low"
        issues += _flag(
            (most > fewest).fillna(False).astype(bool),
            raw,
            file,
            col,
            "events_high (or events) cannot exceed n_low (or n): every count in the range "
            "must fit every denominator in it",
        )
    return issues


def _study_rules(values: pd.DataFrame, raw: pd.DataFrame, file: str) -> list[Issue]:
    if "sei" not in values.columns and "vi" not in values.columns:
        return [
            Issue(
                file,
                None,
                "sei",
                None,
                "a study-level table needs a 'sei' (standard "
                "error) or 'vi' (sampling variance) column",
            )
        ]
    sei, vi = _col(values, "sei"), _col(values, "vi")
    issues = _flag(
        sei.isna() & vi.isna(),
        raw,
        file,
        "sei" if "sei" in values else "vi",
        "each study needs its standard error (sei) or sampling variance (vi)",
    )
    both = sei.notna() & vi.notna()
    if both.any():
        s, v = sei[both].astype(float), vi[both].astype(float)
        off = pd.Series(False, index=values.index)
        off[both] = ~np.isclose(s**2, v, rtol=1e-6, atol=0)
        issues += _flag(off, raw, file, "vi", "vi must equal sei squared when both are given")
    if "es_id" in values.columns:
        return issues + _effect_size_rules(values, raw, file)
    keys = [c for c in ("study", "outcome", "timepoint") if c in values.columns]
    dup = values[keys].fillna("").duplicated(keep="first")
    issues += _flag(
        dup,
        raw,
        file,
        "study",
        f"duplicate {' / '.join(keys)}: each study appears once per outcome "
        "(several effect sizes of one study need an 'es_id' column)",
    )
    return issues


def _effect_size_rules(values: pd.DataFrame, raw: pd.DataFrame, file: str) -> list[Issue]:
    """Several effect sizes per study: each labelled by an es_id unique within its study."""
    issues = _flag(
        values["es_id"].isna(),
        raw,
        file,
        "es_id",
        "each row needs an es_id (the effect size's label within its study) when the "
        "table has an es_id column",
    )
    labelled = values["es_id"].notna()
    dup = values[["study", "es_id"]].astype(str).duplicated(keep="first") & labelled
    issues += _flag(dup, raw, file, "es_id", "es_id repeats within its study: each effect "
                    "size of a study needs its own es_id")  # fmt: skip
    if "cluster" in values.columns:
        issues += _flag(
            values["cluster"].isna(),
            raw,
            file,
            "cluster",
            "each row needs a cluster when the table has a cluster column",
        )
        clusters = values.groupby("study")["cluster"].transform(lambda c: c.dropna().nunique())
        issues += _flag(
            (clusters > 1) & values["cluster"].notna(),
            raw,
            file,
            "cluster",
            "a study's rows must all name the same cluster (studies nest in clusters)",
        )
    return issues


def _route_rules(values: pd.DataFrame, raw: pd.DataFrame, file: str) -> list[Issue]:
    return _flag(
        values["route"].duplicated(keep="first") & values["route"].notna(),
        raw,
        file,
        "route",
        "each route appears once",
    )


def _descriptive_rules(values: pd.DataFrame, raw: pd.DataFrame, file: str) -> list[Issue]:
    # 'reported' and 'source' are required (pass 1; a blank cell reads as empty)
    issues = []
    if "events" in values and "n" in values:
        over = (_col(values, "events") > _col(values, "n")).fillna(False)
        issues += _flag(over, raw, file, "events", "must be at most n")
    return issues
