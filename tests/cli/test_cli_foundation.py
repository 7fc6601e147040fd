"""The first CLI commands: validate and effects (success and user-error paths)."""

import subprocess
import sys

import pandas as pd
import pytest
from typer.testing import CliRunner

from bayeskit.cli import app
from tests.conftest import DATA, ROOT

runner = CliRunner()


def test_validate_bundled_data_exits_zero():
    files = sorted(str(p) for p in DATA.glob("*.csv"))
    assert len(files) >= 5
    result = runner.invoke(app, ["validate", *files])
    assert result.exit_code == 0, result.output
    assert result.output.count(": ok (") == len(files)


def test_effects_prints_a_table():
    result = runner.invoke(
        app,
        [
            "effects",
            str(DATA / "oud_abstinence.csv"),
            "--measure",
            "OR",
            "--outcome",
            "abstinence",
            "--timepoint",
            "12 months",
        ],
    )
    assert result.exit_code == 0, result.output
    assert "KRUPITSKY2007" in result.output
    assert "yi" in result.output


def test_effects_writes_csv_and_refuses_to_overwrite(tmp_path):
    out = tmp_path / "or.csv"
    args = [
        "effects",
        str(DATA / "oud_abstinence.csv"),
        "-m",
        "OR",
        "--timepoint",
        "12 months",
        "--out",
        str(out),
    ]
    assert runner.invoke(app, args).exit_code == 0
    table = pd.read_csv(out)
    assert list(table.columns[:4]) == ["study", "yi", "vi", "sei"]
    assert "route" in table.columns and "dose_mg_per_kg" in table.columns
    before = out.read_bytes()
    again = runner.invoke(app, args)
    assert again.exit_code == 2
    assert "--force" in again.output
    assert out.read_bytes() == before
    assert runner.invoke(app, [*args, "--force"]).exit_code == 0
    assert not [p for p in tmp_path.iterdir() if p.name.endswith(".tmp")]


@pytest.mark.parametrize(
    ("args", "words"),
    [
        (["-m", "HR"], "is not one of"),
        (["-m", "OR", "--outcome", "craving"], "no rows for outcome"),
        (["-m", "OR"], "--timepoint"),
        (["-m", "OR", "--timepoint", "5 years"], "no rows for timepoint"),
        (["-m", "SMD", "--timepoint", "12 months"], "continuous"),
        (["-m", "OR", "--timepoint", "12 months", "--to", "some"], "--to"),
        (["-m", "PREPOST", "--ri", "1.5"], "--ri"),
        ([], "needs an effect measure"),
    ],
)
def test_effects_user_errors_exit_2(args, words):
    result = runner.invoke(app, ["effects", str(DATA / "oud_abstinence.csv"), *args])
    assert result.exit_code == 2, result.output
    assert words in result.output
    assert "Traceback" not in result.output


def test_effects_on_broken_table_names_row_and_column(write_csv):
    path = write_csv("study,arm,outcome,n,events\nS,a,y,10,11\n")
    result = runner.invoke(app, ["effects", str(path), "-m", "PLO"])
    assert result.exit_code == 2
    assert "row 2, column 'events'" in result.output


@pytest.mark.parametrize("command", ["validate", "effects", "fit", "sensitivity"])
def test_help_shows_an_example(command):
    result = runner.invoke(app, [command, "--help"])
    assert result.exit_code == 0
    assert f"Example: bayeskit {command}" in result.output


def test_root_cli_py_runs_the_same_app():
    result = subprocess.run(
        [sys.executable, str(ROOT / "cli.py"), "--version"],
        capture_output=True,
        text=True,
        cwd=ROOT,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("bayeskit ")


def test_console_script_reports_user_error_without_traceback(tmp_path):
    bad = tmp_path / "bad.csv"
    bad.write_text("study,arm,outcome,n,events\nS,a,y,0,1\n")
    result = subprocess.run(
        [sys.executable, "-m", "bayeskit", "validate", str(bad)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 2
    assert "row 2, column 'n'" in result.stderr
    assert "Traceback" not in result.stderr
