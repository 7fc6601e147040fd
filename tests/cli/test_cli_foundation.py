"""The first CLI commands (validate, effects); what every command does with --out and options."""

import json
import os
import shutil
import stat
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


# --------------------------------------------------------------- outputs and options

ES = str(DATA / "eight_schools.csv")
FIT = ["fit", "--data", ES, "--method", "exact", "--quiet"]


def _hostile_out(kind, tmp_path):
    if kind == "root":
        return "/", "root folder"
    if kind == "dot":
        return ".", "working folder"
    if kind == "dotdot":
        return "..", "holding the working folder"
    if kind == "long":
        return str(tmp_path / ("n" * 300)), "longer than 255 bytes"
    if kind == "under_file":
        (tmp_path / "afile").write_text("x")
        return str(tmp_path / "afile" / "run"), "afile is a file, not a folder"
    if kind == "dangling":
        (tmp_path / "dangling").symlink_to(tmp_path / "nowhere")
        return str(tmp_path / "dangling"), "dangling symbolic link"
    if kind == "read_only":
        (tmp_path / "ro").mkdir(mode=0o555)
        return str(tmp_path / "ro" / "run"), "is read-only"
    raise AssertionError(kind)


@pytest.mark.parametrize(
    "kind", ["root", "dot", "dotdot", "long", "under_file", "dangling", "read_only"]
)
@pytest.mark.parametrize("force", [False, True])
def test_fit_refuses_hostile_out_before_fitting(tmp_path, monkeypatch, kind, force):
    work = tmp_path / "work"
    work.mkdir()
    (work / "precious.txt").write_text("mine")
    monkeypatch.chdir(work)
    out, words = _hostile_out(kind, tmp_path)
    import bayeskit.workflow

    def no_fit(*args, **kwargs):  # refused BEFORE any fitting starts
        raise AssertionError("fitted")

    monkeypatch.setattr(bayeskit.workflow, "fit_spec", no_fit)
    result = runner.invoke(app, [*FIT, "--out", out, *(["--force"] if force else [])])
    assert result.exit_code == 2, result.output
    assert words in result.output and "--out" in result.output
    assert "Traceback" not in result.output
    assert (work / "precious.txt").read_text() == "mine"
    if kind == "read_only":
        assert list((tmp_path / "ro").iterdir()) == []


@pytest.mark.parametrize(
    "command",
    [
        ["effects", ES],
        FIT,
        ["teach", "pooling"],
        ["sbc", "--method", "exact", "--replicates", "50", "--draws", "9"],
        ["sensitivity", str(ROOT / "models" / "eight_schools.toml")],
    ],
)
def test_every_writing_command_keeps_a_foreign_folder(tmp_path, command):
    folder = tmp_path / "mine"
    folder.mkdir()
    (folder / "notes.txt").write_text("mine")
    result = runner.invoke(app, [*command, "--out", str(folder), "--force"])
    assert result.exit_code == 2, result.output
    assert "Traceback" not in result.output
    assert (folder / "notes.txt").read_text() == "mine"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["mine"]


@pytest.mark.skipif(os.geteuid() != 0, reason="mknod needs root")
@pytest.mark.parametrize("command", [["effects", ES], FIT])
def test_force_never_replaces_a_device(tmp_path, command):
    device = tmp_path / "null"
    os.mknod(device, 0o666 | stat.S_IFCHR, os.makedev(1, 3))
    result = runner.invoke(app, [*command, "--out", str(device), "--force"])
    assert result.exit_code == 2
    assert "device, pipe or socket" in result.output
    assert device.is_char_device()


def test_effects_out_folder_with_force_is_refused(tmp_path):
    result = runner.invoke(app, ["effects", ES, "--out", str(tmp_path), "--force"])
    assert result.exit_code == 2
    assert "is a folder; give the name of a file" in result.output
    assert list(tmp_path.iterdir()) == []


@pytest.fixture(scope="module")
def exact_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("runs") / "run"
    assert runner.invoke(app, [*FIT, "--out", str(out)]).exit_code == 0
    return out


@pytest.mark.parametrize(
    ("damage", "words"),
    [
        ("manifest_not_json", "manifest.json is not valid JSON (line 1, column"),
        ("manifest_a_list", "manifest.json does not hold a JSON object"),
        ("posterior_truncated", "posterior.nc cannot be read as netCDF"),
    ],
)
@pytest.mark.parametrize("command", ["report", "compare"])
def test_report_and_compare_on_a_damaged_run_exit_2(tmp_path, exact_run, damage, words, command):
    run = tmp_path / "run"
    shutil.copytree(exact_run, run)
    if damage == "manifest_not_json":
        (run / "manifest.json").write_text('{"family": "norm')
    elif damage == "manifest_a_list":
        (run / "manifest.json").write_text("[1, 2]")
    else:
        (run / "posterior.nc").write_bytes((run / "posterior.nc").read_bytes()[:500])
    args = [command, str(run)] + ([str(exact_run)] if command == "compare" else [])
    result = runner.invoke(app, args)
    assert result.exit_code == 2, result.output
    assert str(run) in result.output and words in result.output
    assert "Traceback" not in result.output


def test_report_on_a_read_only_run_is_refused_and_out_writes_elsewhere(tmp_path, exact_run):
    run = tmp_path / "run"
    shutil.copytree(exact_run, run)
    (run / "report.html").unlink()
    run.chmod(0o555)
    try:
        result = runner.invoke(app, ["report", str(run)])
        assert result.exit_code == 2
        assert f"{run} is read-only" in result.output and "--out" in result.output
        elsewhere = tmp_path / "report"
        result = runner.invoke(app, ["report", str(run), "--out", str(elsewhere)])
        assert result.exit_code == 0, result.output
    finally:
        run.chmod(0o755)
    assert not (run / "report.html").exists()
    assert {"report.html", "report.md", "manifest.json"} <= {p.name for p in elsewhere.iterdir()}


def test_report_rebuilt_in_place_keeps_the_output_hashes_true(tmp_path, exact_run):
    from bayeskit.outputs import verify_outputs

    run = tmp_path / "run"
    shutil.copytree(exact_run, run)
    (run / "report.md").write_text("edited")
    assert verify_outputs(run) == ["report.md differs from the file written"]
    assert runner.invoke(app, ["report", str(run)]).exit_code == 0
    assert verify_outputs(run) == []


@pytest.mark.parametrize(
    ("args", "words"),
    [
        (["sbc", "--method", "exact", "--replicates", "1"], "--replicates must be at least 50"),
        (["sbc", "--method", "exact", "--draws", "999999999"], "--draws 999999999"),
        (["sbc", "--workers", "0"], "--workers must be at least 1"),
        ([*FIT, "--draws", "1000000000"], "--draws 1000000000: 4 chains of 3 parameters"),
        (
            ["sensitivity", str(ROOT / "models" / "eight_schools.toml"), "--workers", "-1"],
            "--workers",
        ),
    ],
)
def test_impossible_options_exit_2_before_anything_runs(tmp_path, args, words):
    result = runner.invoke(app, [*args, "--out", str(tmp_path / "out")])
    assert result.exit_code == 2, result.output
    assert words in result.output
    assert not (tmp_path / "out").exists()


def test_fit_cleans_staging_leftovers_and_restores_a_set_aside_run(tmp_path, exact_run):
    (tmp_path / ".run.ab12cd34.tmp").mkdir()  # a fit killed while writing
    shutil.copytree(exact_run, tmp_path / ".run.old")  # killed between the two renames
    result = runner.invoke(app, [*FIT, "--out", str(tmp_path / "run")])
    assert result.exit_code == 2  # the run was put back, so it exists: --force is needed
    assert "already exists" in result.output
    assert sorted(p.name for p in tmp_path.iterdir()) == ["run"]
    assert (tmp_path / "run" / "manifest.json").read_bytes() == (
        exact_run / "manifest.json"
    ).read_bytes()


def test_two_fits_into_one_new_out_at_once_exactly_one_succeeds(tmp_path):
    out = tmp_path / "race"
    cmd = [sys.executable, "-m", "bayeskit", *FIT, "--out", str(out)]
    # started together, both pass their checks while the other is still importing
    procs = [
        subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        for _ in range(2)
    ]
    results = [(p.wait(timeout=120), p.communicate()[1]) for p in procs]
    codes = sorted(code for code, _ in results)
    assert codes == [0, 2], results
    loser = next(err for code, err in results if code == 2)
    assert "being written by another bayeskit process" in loser or "already exists" in loser
    assert "Traceback" not in loser
    assert sorted(p.name for p in tmp_path.iterdir()) == ["race"]
    assert json.loads((out / "manifest.json").read_text())["bayeskit"]["kind"] == "run"
