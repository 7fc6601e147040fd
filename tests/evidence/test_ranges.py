"""Derived counts with a recorded range: the reader checks the ranges, and each data
variant differs from the entered data in exactly the rows with a range
(bayeskit.evidence.ranges, data/README.md)."""

import pandas as pd
import pytest

import bayeskit as bk
from bayeskit.errors import EvidenceError
from bayeskit.evidence import check_table
from bayeskit.evidence.ranges import VARIANTS, changed_rows, variant_table, variant_tables

HEADER = (
    "study,arm,outcome,n,events,role,design,dose_mg_per_kg,route,"
    "n_low,n_high,events_low,events_high"
)
GOOD = [
    "S1,hi,abstinence,35,8,experimental,rct,2.0,im,33,35,8,9",
    "S1,lo,abstinence,35,2,control,rct,0.2,im,31,35,,",
]


def write(tmp_path, rows, header=HEADER):
    path = tmp_path / "t.csv"
    path.write_text("\n".join([header, *rows]) + "\n")
    return path


def with_cell(row: int, column: str, value: str) -> list[str]:
    """The good rows with one cell changed (row counted as a spreadsheet does)."""
    cols = HEADER.split(",")
    rows = [r.split(",") for r in GOOD]
    rows[row - 2][cols.index(column)] = value
    return [",".join(r) for r in rows]


# (id, rows, row, column, words the rule must contain)
BROKEN = [
    ("events-low-above-events", 2, "events_low", "9", "cannot exceed events"),
    ("events-high-below-events", 2, "events_high", "7", "cannot be below events"),
    ("n-low-above-n", 3, "n_low", "36", "cannot exceed n"),
    ("n-high-below-n", 2, "n_high", "34", "cannot be below n"),
    ("events-high-above-n-low", 2, "n_low", "8", "every count in the range"),
    ("events-above-n-low-no-high", 3, "n_low", "1", "cannot exceed n_low"),
    ("n-low-fraction", 2, "n_low", "33.5", "whole number"),
    ("events-high-text", 2, "events_high", "9?", "whole number"),
    ("events-low-negative", 2, "events_low", "-1", "at least 0"),
    ("n-low-zero", 3, "n_low", "0", "at least 1"),
    ("range-without-value", 3, "events", "", "needs the value"),
]
#: the column each case's issue names (the changed cell's, unless the rule is about another)
NAMED = {"events-high-above-n-low": "events_high", "events-above-n-low-no-high": "events_high",
         "range-without-value": "events_low"}  # fmt: skip


def test_good_ranges_pass(tmp_path):
    table, shape, issues = check_table(write(tmp_path, GOOD))
    assert issues == [] and shape == "arm"
    assert table["n_low"].tolist() == [33, 31] and str(table["n_low"].dtype) == "Int64"


@pytest.mark.parametrize(("case", "row", "cell", "value", "words"), BROKEN,
                         ids=[b[0] for b in BROKEN])  # fmt: skip
def test_bad_range_is_refused_naming_file_row_column_and_rule(
    tmp_path, case, row, cell, value, words
):
    rows = with_cell(row, cell, value)
    column = NAMED.get(case, cell)
    if case == "range-without-value":  # an events range on the row whose events are gone
        rows = [rows[0], rows[1].replace(",31,35,,", ",31,35,1,2")]
    path = write(tmp_path, rows)
    with pytest.raises(EvidenceError) as err:
        bk.load_evidence(path)
    hits = [i for i in err.value.issues if i.row == row and i.column == column]
    assert any(words in i.rule for i in hits), [str(i) for i in err.value.issues]
    assert str(path) in str(err.value) and f"row {row}" in str(err.value)


def test_cli_check_exits_2_on_a_bad_range(tmp_path):
    from typer.testing import CliRunner

    from bayeskit.cli import app

    path = write(tmp_path, with_cell(2, "n_low", "36"))
    result = CliRunner().invoke(app, ["validate", str(path)])
    assert result.exit_code == 2, result.output
    assert "n_low" in result.output and "Traceback" not in result.output


# --- the variants of the bundled OUD data -------------------------------------------------

#: (study, arm, timepoint) -> (n, events) in each variant, where it differs from the data
EXPECTED = {
    "least favourable": {
        ("KRUPITSKY2002", "low_dose", "12 months"): (31, 2),
        ("KRUPITSKY2002", "low_dose", "24 months"): (35, 1),  # events_high = the entered 1
        ("KRUPITSKY2007", "three_sessions", "12 months"): (32, 13),
    },
    "most favourable": {
        ("KRUPITSKY2002", "high_dose", "12 months"): (33, 9),
        ("KRUPITSKY2002", "low_dose", "24 months"): (35, 0),
        ("KRUPITSKY2007", "one_session", "12 months"): (33, 6),
    },
    "completers denominators": {
        ("KRUPITSKY2002", "high_dose", "12 months"): (33, 8),
        ("KRUPITSKY2002", "low_dose", "12 months"): (31, 2),
    },
}


@pytest.mark.parametrize("variant", list(VARIANTS))
def test_variant_differs_from_the_data_exactly_in_the_derived_rows(variant):
    base = bk.load_evidence(bk.data_path("oud_abstinence.csv"))
    [new] = variant_tables([base], variant)
    key = ["study", "arm", "timepoint"]
    changed = changed_rows(base, new)
    got = {tuple(r[key]): (int(r["n"]), int(r["events"])) for _, r in changed.iterrows()}
    expected = {k: v for k, v in EXPECTED[variant].items() if v != _entered(base, k)}
    assert got == expected
    # every other cell is the entered one; changed rows say so in `derived`
    others = [c for c in base.columns if c not in ("n", "events", "derived")]
    pd.testing.assert_frame_equal(new[others], base[others])
    assert new.loc[changed.index, "derived"].str.contains(f"data variant '{variant}'").all()
    assert new.drop(index=changed.index)["derived"].equals(
        base.drop(index=changed.index)["derived"]
    )
    # a variant's counts are valid counts
    assert (new["events"] <= new["n"]).all()


def _entered(table, key):
    row = table[
        (table["study"] == key[0]) & (table["arm"] == key[1]) & (table["timepoint"] == key[2])
    ]
    return int(row["n"].iloc[0]), int(row["events"].iloc[0])


def test_variant_corners_keep_krupitsky2007_at_59_randomised():
    # the 6 randomised but not analysed go to one arm or the other, never to both
    base = bk.load_evidence(bk.data_path("oud_abstinence.csv"))
    for variant in ("least favourable", "most favourable"):
        [new] = variant_tables([base], variant)
        assert new.loc[new["study"] == "KRUPITSKY2007", "n"].sum() == 59


def test_lower_is_better_swaps_the_corners():
    t = pd.DataFrame({"study": "S", "role": ["experimental", "control"], "n": [35, 35],
                      "events": [8, 2], "n_low": [33, 31], "events_high": [9, 3]})  # fmt: skip
    harm = variant_table(t, "least favourable", better="lower")
    benefit = variant_table(t, "most favourable", better="higher")
    assert harm[["events", "n"]].values.tolist() == benefit[["events", "n"]].values.tolist()


def test_a_table_without_ranges_is_unchanged():
    ev = bk.load_evidence(bk.data_path("sud_abstinence.csv"))
    for variant in VARIANTS:
        [new] = variant_tables([ev], variant)
        pd.testing.assert_frame_equal(new, ev)
