"""bayeskit teach pooling and bayeskit compare; atomic run directories under a crash."""

import pandas as pd
import pytest
from typer.testing import CliRunner

import bayeskit.rundir
from bayeskit.cli import app
from tests.conftest import DATA

runner = CliRunner()


def test_teach_pooling_defaults_to_eight_schools(tmp_path):
    out = tmp_path / "teach"
    result = runner.invoke(app, ["teach", "pooling", "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert "Partial pooling lets the data decide" in result.output
    table = pd.read_csv(out / "pooling.csv", index_col="study")
    assert list(table.index) == list("ABCDEFGH")
    # no pooling is each school's own estimate; partial pooling lies between it and the
    # complete-pooling mean
    pd.testing.assert_series_equal(
        table["none_mean"], table["yi"], check_names=False, atol=1e-9, rtol=0
    )
    lo = table[["none_mean", "full_mean"]].min(axis=1)
    hi = table[["none_mean", "full_mean"]].max(axis=1)
    assert ((table["partial_mean"] >= lo - 1e-9) & (table["partial_mean"] <= hi + 1e-9)).all()
    assert (out / "shrinkage.png").stat().st_size > 5000
    assert (out / "shrinkage.svg").exists()


def test_teach_pooling_on_ketamine_data():
    result = runner.invoke(
        app,
        [
            "teach",
            "pooling",
            "--data",
            str(DATA / "oud_abstinence.csv"),
            "--measure",
            "OR",
            "--timepoint",
            "12 months",
        ],
    )
    assert result.exit_code == 0, result.output
    assert "KRUPITSKY2007" in result.output


def test_teach_pooling_user_error():
    result = runner.invoke(
        app, ["teach", "pooling", "--data", str(DATA / "oud_abstinence.csv"), "--measure", "OR"]
    )
    assert result.exit_code == 2
    assert "--timepoint" in result.output


@pytest.fixture(scope="module")
def two_runs(tmp_path_factory):
    root = tmp_path_factory.mktemp("cmp")
    for pooling in ("partial", "full"):
        args = [
            "fit",
            "--data",
            str(DATA / "eight_schools.csv"),
            "--pooling",
            pooling,
            "--method",
            "mcmc",  # compare needs the pointwise log-likelihood of MCMC fits
            "--prior",
            "mu=Normal(0, 5)",
            "--prior",
            "tau=HalfCauchy(5)",
            "--draws",
            "300",
            "--tune",
            "300",
            "--chains",
            "2",
            "--seed",
            "1",
            "--out",
            str(root / pooling),
            "--quiet",
        ]
        assert runner.invoke(app, args).exit_code == 0
    return root


def test_compare_gives_loo_table_and_plot(two_runs):
    out, plot = two_runs / "cmp.csv", two_runs / "cmp.png"
    result = runner.invoke(
        app,
        [
            "compare",
            str(two_runs / "partial"),
            str(two_runs / "full"),
            "--out",
            str(out),
            "--plot",
            str(plot),
        ],
    )
    assert result.exit_code == 0, result.output
    table = pd.read_csv(out, index_col="run")
    assert set(table.index) == {"partial", "full"}
    assert table["weight"].sum() == pytest.approx(1.0)
    assert (table["elpd"] < 0).all() and (table["se"] > 0).all()
    assert plot.stat().st_size > 5000


def test_compare_refuses_different_data(two_runs, tmp_path):
    other = tmp_path / "other"
    csv = tmp_path / "schools.csv"
    csv.write_text((DATA / "eight_schools.csv").read_text().replace("28,", "29,", 1))
    args = [
        "fit",
        "--data",
        str(csv),
        "--method",
        "mcmc",
        "--draws",
        "200",
        "--tune",
        "200",
        "--chains",
        "2",
        "--out",
        str(other),
        "--quiet",
    ]
    assert runner.invoke(app, args).exit_code == 0
    result = runner.invoke(app, ["compare", str(two_runs / "partial"), str(other)])
    assert result.exit_code == 2
    assert "different data" in result.output


def test_compare_user_errors(two_runs, tmp_path):
    assert runner.invoke(app, ["compare", str(two_runs / "partial")]).exit_code == 2
    result = runner.invoke(app, ["compare", str(two_runs / "partial"), str(tmp_path)])
    assert result.exit_code == 2 and "not a run directory" in result.output


def test_crash_while_writing_leaves_previous_results_intact(two_runs, monkeypatch):
    run = two_runs / "partial"

    def files(folder):
        return {p.relative_to(folder): p.read_bytes() for p in folder.rglob("*") if p.is_file()}

    before = files(run)

    def crash(*args, **kwargs):
        raise KeyboardInterrupt  # as if Ctrl-C arrived halfway through the writing

    monkeypatch.setattr(bayeskit.rundir, "write_json", crash)
    args = [
        "fit",
        "--data",
        str(DATA / "eight_schools.csv"),
        "--method",
        "exact",
        "--out",
        str(run),
        "--force",
        "--quiet",
    ]
    result = runner.invoke(app, args)
    assert result.exit_code != 0
    assert files(run) == before
    leftovers = [p.name for p in two_runs.iterdir() if p.name.startswith(".")]
    assert leftovers == []


def test_report_command_rebuilds_the_report(two_runs):
    run = two_runs / "full"
    (run / "report.html").unlink()
    result = runner.invoke(app, ["report", str(run)])
    assert result.exit_code == 0, result.output
    html = (run / "report.html").read_text(encoding="utf-8")
    assert "<img" in html or "<svg" in html
    assert "http://" not in html.split("<body", 1)[1].replace("http://www.w3.org", "")


@pytest.mark.parametrize("make", ["missing", "not_a_run"])
def test_report_command_user_errors(tmp_path, make):
    target = tmp_path / "nope" if make == "missing" else tmp_path
    result = runner.invoke(app, ["report", str(target)])
    assert result.exit_code == 2
    assert "Traceback" not in result.output
