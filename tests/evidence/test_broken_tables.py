"""Deliberately broken evidence tables: each must be rejected with exit code 2 and a
message naming the row (as a spreadsheet counts it, header = row 1) and the column."""

import pytest
from typer.testing import CliRunner

from bayeskit.cli import app
from bayeskit.evidence import check_table

HEADER = "study,arm,outcome,n,events,mean,sd,role,design,route,dose_mg_per_kg,timepoint"
GOOD = [
    "S1,ket,abstinence,35,8,,,experimental,rct,im,2.0,12 months",
    "S1,pbo,abstinence,35,2,,,control,rct,im,0.2,12 months",
    "S2,ket,abstinence,26,13,,,experimental,rct,im,2.0,12 months",
    "S2,one,abstinence,27,6,,,control,rct,im,2.0,12 months",
]


def table(*rows: str, header: str = HEADER) -> str:
    return "\n".join([header, *rows]) + "\n"


def replace(row: int, column: str, value: str) -> str:
    """The good table with one cell changed (row counted as a spreadsheet does)."""
    cols = HEADER.split(",")
    rows = [r.split(",") for r in GOOD]
    rows[row - 2][cols.index(column)] = value
    return table(*(",".join(r) for r in rows))


# (id, csv text, row, column, words the rule must contain)
BROKEN = [
    ("n-zero", replace(3, "n", "0"), 3, "n", "at least 1"),
    ("n-negative", replace(2, "n", "-4"), 2, "n", "at least 1"),
    ("n-fraction", replace(4, "n", "26.5"), 4, "n", "whole number"),
    ("n-text", replace(5, "n", "twenty"), 5, "n", "whole number"),
    ("n-empty", replace(2, "n", ""), 2, "n", "required"),
    ("events-above-n", replace(3, "events", "36"), 3, "events", "cannot exceed n"),
    ("events-negative", replace(2, "events", "-1"), 2, "events", "at least 0"),
    ("events-text", replace(2, "events", "8 (23%)"), 2, "events", "whole number"),
    ("events-nan", replace(2, "events", "nan"), 2, "events", "whole number"),
    ("route-unknown", replace(2, "route", "rectal"), 2, "route", "iv, im, sl, oral, intranasal"),
    ("design-unknown", replace(4, "design", "meta-analysis"), 4, "design", "case_report"),
    ("role-unknown", replace(2, "role", "treated"), 2, "role", "experimental, control, single"),
    ("dose-negative", replace(2, "dose_mg_per_kg", "-2"), 2, "dose_mg_per_kg", "at least 0"),
    ("dose-infinite", replace(2, "dose_mg_per_kg", "inf"), 2, "dose_mg_per_kg", "finite number"),
    ("dose-decimal-comma", replace(2, "dose_mg_per_kg", "0,5"), 2, None, "fields"),
    ("study-empty", replace(5, "study", ""), 5, "study", "required"),
    ("duplicate-key", table(*GOOD, GOOD[0]), 6, "arm", "duplicates row 2"),
    ("no-control", replace(3, "role", "experimental"), 2, "role", "exactly one arm"),
    ("two-controls", replace(2, "role", "control"), 2, "role", "exactly one must be"),
    ("single-in-two-arm-study", replace(2, "role", "single"), 2, "role", "single-arm"),
    ("sd-zero", table("S1,a,score,10,,5.0,0,single,cohort,iv,0.5,"), 2, "sd", "greater than 0"),
    ("sd-missing", table("S1,a,score,10,,5.0,,single,cohort,iv,0.5,"), 2, "sd", "needs an sd"),
    (
        "no-outcome-data",
        table("S1,a,score,10,,,,single,cohort,iv,0.5,"),
        2,
        "events",
        "either events",
    ),
    (
        "events-and-mean",
        table("S1,a,score,10,3,5.0,1.0,single,cohort,iv,0.5,"),
        2,
        "mean",
        "both events and a mean",
    ),
    (
        "mixed-outcome-type",
        table(
            "S1,a,score,10,3,,,single,cohort,iv,0.5,",
            "S2,a,score,10,,5.0,1.0,single,cohort,iv,0.5,",
        ),
        3,
        "outcome",
        "binary in row 2",
    ),
    (  # a column of numbers with one word in it is a slip, not a category
        "covariate-mixed-text",
        table(
            "S1,a,score,10,3,,,single,cohort,iv,0.5,,41",
            "S2,a,score,12,4,,,single,cohort,iv,0.5,,high",
            header=HEADER + ",age",
        ),
        3,
        "age",
        "other cells are numbers",
    ),
    ("ragged-row", table(GOOD[0] + ",extra", *GOOD[1:]), 2, None, "13 fields"),
    (
        "missing-required-column",
        table("S1,a,abstinence,,10", header="study,arm,outcome,events,x"),
        1,
        "n",
        "missing",
    ),
]


@pytest.mark.parametrize(
    ("text", "row", "column", "words"), [b[1:] for b in BROKEN], ids=[b[0] for b in BROKEN]
)
def test_broken_table_is_reported_with_row_and_column(write_csv, text, row, column, words):
    path = write_csv(text)
    _, _, issues = check_table(path)
    assert issues, "the broken table was accepted"
    hits = [
        i
        for i in issues
        if i.row == row
        and i.column == column
        and words in i.rule
        or i.row == row
        and column is None
        and words in i.rule
    ]
    assert hits, f"no issue at row {row}, column {column} saying {words!r}: {issues}"

    result = CliRunner().invoke(app, ["validate", str(path)])
    assert result.exit_code == 2
    assert "Traceback" not in result.output
    assert f"row {row}" in result.output
    if column is not None:
        assert f"column '{column}'" in result.output
    assert str(path) in result.output


def test_there_are_at_least_twenty_broken_tables():
    assert len(BROKEN) >= 20


def test_every_error_in_a_file_is_reported_at_once(write_csv):
    rows = [r.split(",") for r in GOOD]
    rows[0][3] = "0"  # row 2: n
    rows[1][4] = "99"  # row 3: events > n
    rows[2][9] = "nasal"  # row 4: route
    rows[3][2] = ""  # row 5: outcome
    _, _, issues = check_table(write_csv(table(*(",".join(r) for r in rows))))
    found = {(i.row, i.column) for i in issues}
    assert {(2, "n"), (3, "events"), (4, "route"), (5, "outcome")} <= found


def test_one_bad_cell_gives_one_message(write_csv):
    _, _, issues = check_table(write_csv(replace(2, "n", "abc")))
    assert [(i.row, i.column) for i in issues] == [(2, "n")]


@pytest.mark.parametrize(
    ("content", "words"),
    [
        (b"", "empty"),
        (b"   \n\n", "empty"),
        (HEADER.encode() + b"\n", "no data rows"),
        (table(*GOOD).replace(",", ";").encode(), "semicolons"),
        (table(*GOOD).replace(",", "\t").encode(), "tabs"),
        (table("S\xe9,a,x,10,1,,,single,cohort,iv,1,").encode("latin-1"), "not UTF-8"),
        (table(*GOOD).encode("utf-16"), "UTF-8"),
        (b"name,value\nx,1\n", "cannot tell what this table holds"),
        (b"study,arm,,n\n", "no name"),
        (b"study,arm,arm,n\nS,a,a,1\n", "appears twice"),
    ],
    ids=[
        "empty",
        "blank",
        "header-only",
        "semicolons",
        "tabs",
        "latin1",
        "utf16",
        "unknown-shape",
        "unnamed-column",
        "duplicate-column",
    ],
)
def test_unreadable_files_are_explained(tmp_path, content, words):
    path = tmp_path / "bad.csv"
    path.write_bytes(content)
    result = CliRunner().invoke(app, ["validate", str(path)])
    assert result.exit_code == 2
    assert words in result.output
    assert "Traceback" not in result.output


def test_missing_file_is_a_user_error(tmp_path):
    result = CliRunner().invoke(app, ["validate", str(tmp_path / "nope.csv")])
    assert result.exit_code == 2
    assert "no such file" in result.output


def test_categories_are_case_insensitive_and_normalised(write_csv):
    values, shape, issues = check_table(write_csv(replace(2, "route", "IM")))
    assert issues == []
    assert shape == "arm"
    assert values.loc[2, "route"] == "im"


def test_single_patient_may_omit_sd(write_csv):
    text = (
        "study,arm,outcome,n,mean,baseline_mean,role,design\nC1,a,cows,1,2,18,single,case_report\n"
    )
    _, _, issues = check_table(write_csv(text))
    assert issues == []


def test_study_level_rules(write_csv):
    text = "study,yi,sei,vi\nA,0.1,0.5,0.25\nB,0.2,-1,\nC,x,0.2,\nD,0.3,,\nE,0.1,0.5,0.3\nA,0,1,\n"
    _, shape, issues = check_table(write_csv(text))
    assert shape == "study"
    found = {(i.row, i.column) for i in issues}
    assert {(3, "sei"), (4, "yi"), (5, "sei"), (6, "vi"), (7, "study")} <= found
