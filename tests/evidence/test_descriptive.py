"""Descriptive tables (results in words, harms): validated, shown in the report, never pooled."""

import pandas as pd
import pytest
from typer.testing import CliRunner

from bayeskit.cli import app
from bayeskit.evidence import check_table
from tests.conftest import DATA

runner = CliRunner()
HEADER = "study,indication,design,event,n,events,direction,reported,source"
GOOD = "S1,OW,rct,serious_adverse_events,8,0,none,no serious adverse events,seed 000"


@pytest.mark.parametrize(
    "row, column, words",
    [
        ("S1,OW,rct,sae,8,9,none,nine of eight,seed", "events", "at most n"),
        ("S1,OW,rct,sae,8,0,none,   ,seed", "reported", "required"),
        ("S1,OW,rct,sae,8,0,none,,seed", "reported", "required"),
        ("S1,OW,rct,sae,8,0,better,said so,seed", "direction", "must be one of"),
        ("S1,OW,trial,sae,8,0,none,said so,seed", "design", "must be one of"),
        ("S1,OW,rct,sae,8,-1,none,said so,seed", "events", "at least 0"),
        ("S1,OW,rct,sae,8.5,0,none,said so,seed", "n", "whole number"),
        ("S1,OW,rct,sae,8,0,none,said so,", "source", "required"),
    ],
)
def test_broken_descriptive_rows_are_named(tmp_path, row, column, words):
    path = tmp_path / "harms.csv"
    path.write_text(f"{HEADER}\n{GOOD}\n{row}\n", encoding="utf-8")
    _, shape, issues = check_table(path)
    assert shape == "descriptive"
    assert [(i.row, i.column) for i in issues] == [(3, column)], issues
    assert words in issues[0].rule or words in str(issues[0]), issues[0]


SPEC = """
name = "contrasts"
[data]
files = ["{data}/sud_contrasts.csv"]
measure = "OR"
{extra}
[model]
family = "normal-normal"
[priors]
mu = "Normal(0, 2)"
tau = "HalfNormal(0.5)"
[sampler]
method = "exact"
seed = 1
"""


def _fit(tmp_path, name, extra):
    spec = tmp_path / f"{name}.toml"
    spec.write_text(SPEC.format(data=DATA.as_posix(), extra=extra), encoding="utf-8")
    out = tmp_path / name
    result = runner.invoke(app, ["fit", str(spec), "--out", str(out), "--quiet"])
    return result, out


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("descriptive")
    files = f'descriptive = ["{DATA.as_posix()}/narrative.csv", "{DATA.as_posix()}/harms.csv"]'
    return _fit(tmp, "with", files), _fit(tmp, "without", "")


def test_descriptive_rows_are_shown_and_not_pooled(runs):
    (with_rows, out), (plain, out_plain) = runs
    assert with_rows.exit_code == 0 and plain.exit_code == 0, with_rows.output + plain.output
    rows = pd.read_csv(out / "descriptive.csv")
    # the AUD contrasts: only the AUD harms row (Wong 2015) concerns them; no OW/OUD rows
    assert rows[["kind", "study", "what"]].values.tolist() == [
        ["harm", "WONG2015", "alcohol_withdrawal_complications"]
    ]
    assert not (out_plain / "descriptive.csv").exists()
    report = (out / "report.md").read_text(encoding="utf-8")
    assert "## Reported in words, and harms (not pooled)" in report
    assert "WONG2015" in report and "No harms row names GRABSKI2022" in report
    # the likelihood is the same: the posterior does not move by a digit
    a = pd.read_csv(out / "summary.csv", index_col=0)
    b = pd.read_csv(out_plain / "summary.csv", index_col=0)
    pd.testing.assert_frame_equal(a.loc[["mu", "tau"]], b.loc[["mu", "tau"]])


def test_a_pooled_table_listed_as_descriptive_is_refused(tmp_path):
    extra = f'descriptive = ["{DATA.as_posix()}/oud_abstinence.csv"]'
    result, _ = _fit(tmp_path, "wrong", extra)
    assert result.exit_code == 2
    assert "[data] descriptive" in result.output and "arm-level" in result.output
