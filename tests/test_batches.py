"""bayeskit batch: manifests, resuming, and the same numbers on Dask as in a loop."""

import json
import shutil

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from bayeskit.batches import batch, read_tasks
from bayeskit.cli import app
from bayeskit.errors import UserError

runner = CliRunner()

SPEC = """name = "nn"
[data]
files = ["d0.csv"]
[model]
family = "normal-normal"
[priors]
mu = "Normal(0, 2)"
tau = "HalfNormal(0.5)"
[sampler]
draws = 500
chains = 2
"""


@pytest.fixture
def manifest(tmp_path):
    """Six small data sets, one spec, a manifest of six fits (the exact engine)."""
    rng = np.random.default_rng(1)
    rows = ["name,spec,data,seed"]
    for i in range(6):
        k = 4 + i
        sei = rng.uniform(0.1, 0.5, k)
        yi = rng.normal(0.3, 0.2, k) + rng.normal(0, sei)
        lines = ["study,yi,sei,measure"] + [f"S{j},{yi[j]:.4f},{sei[j]:.4f},SMD" for j in range(k)]
        (tmp_path / f"d{i}.csv").write_text("\n".join(lines) + "\n")
        rows.append(f"fit{i},spec.toml,d{i}.csv,{100 + i}")
    (tmp_path / "spec.toml").write_text(SPEC)
    path = tmp_path / "fits.csv"
    path.write_text("\n".join(rows) + "\n")
    return path


def test_manifest_rows_become_tasks(manifest):
    tasks = read_tasks(manifest)
    assert [t.name for t in tasks] == [f"fit{i}" for i in range(6)]
    assert [t.seed for t in tasks] == list(range(100, 106))
    assert tasks[2].data[0].endswith("d2.csv")


@pytest.mark.parametrize(
    ("row", "message"),
    [
        ("bad name!,spec.toml,,", "row 2, column name"),
        ("ok,missing.toml,,", "row 2, column spec: no such file missing.toml"),
        ("ok,spec.toml,nope.csv,", "row 2, column data: no such file nope.csv"),
        ("ok,spec.toml,,-4", "row 2, column seed"),
        ("ok,spec.toml,,1e3", "row 2, column seed"),
    ],
)
def test_bad_manifest_rows_name_the_row_and_column(manifest, row, message):
    manifest.write_text("name,spec,data,seed\n" + row + "\n")
    with pytest.raises(UserError, match=message.replace("(", r"\(")):
        read_tasks(manifest)


def test_unknown_column_and_duplicate_names_are_refused(manifest):
    manifest.write_text("name,spec,colour\nA,spec.toml,red\n")
    with pytest.raises(UserError, match="unknown column 'colour'"):
        read_tasks(manifest)
    manifest.write_text("name,spec\nA,spec.toml\nA,spec.toml\n")
    with pytest.raises(UserError, match="repeated: A"):
        read_tasks(manifest)


def test_batch_uses_the_exact_engine_and_resumes(manifest, tmp_path):
    out = tmp_path / "out"
    table = batch(manifest, out, scheduler="none")
    assert set(table["status"]) == {"done"}
    assert table["name"].nunique() == 6
    mu = table.set_index(["name", "parameter"])["mean"]
    # normal-normal with no method named: the exact engine (no r_hat, nothing sampled)
    assert json.loads((out / "fits" / "fit0" / "manifest.json").read_text())["method"] == "exact"
    # simulate a batch killed part-way: one fit missing, one half-staged folder left behind
    shutil.rmtree(out / "fits" / "fit3")
    (out / "fits" / ".fit4.abc.tmp").mkdir()
    stamp = (out / "fits" / "fit0" / "summary.csv").stat().st_mtime_ns
    again = batch(manifest, out, scheduler="none")
    assert (out / "fits" / "fit0" / "summary.csv").stat().st_mtime_ns == stamp  # skipped
    assert (out / "fits" / "fit3" / "summary.csv").exists()  # refitted
    assert not list((out / "fits").glob(".*.tmp"))
    pd.testing.assert_series_equal(again.set_index(["name", "parameter"])["mean"], mu)


def test_changed_data_is_refitted(manifest, tmp_path):
    out = tmp_path / "out"
    batch(manifest, out, scheduler="none")
    first = pd.read_csv(out / "fits" / "fit1" / "summary.csv", index_col=0)
    data = tmp_path / "d1.csv"
    data.write_text(data.read_text().replace("SMD", "SMD", 1) + "S99,2.0,0.2,SMD\n")
    batch(manifest, out, scheduler="none")
    second = pd.read_csv(out / "fits" / "fit1" / "summary.csv", index_col=0)
    assert "theta[S99]" in second.index and "theta[S99]" not in first.index


def test_dask_local_cluster_gives_the_loop_numbers(manifest, tmp_path):
    loop = batch(manifest, tmp_path / "loop", scheduler="none")
    dask = batch(manifest, tmp_path / "dask", scheduler="local", workers=2)
    pd.testing.assert_frame_equal(loop, dask)


def test_cli_batch_refuses_a_foreign_folder_and_reports_fit_errors(manifest, tmp_path):
    foreign = tmp_path / "foreign"
    foreign.mkdir()
    (foreign / "keep.txt").write_text("mine")
    result = runner.invoke(app, ["batch", str(manifest), "--out", str(foreign)])
    assert result.exit_code == 2
    assert "not a batch folder" in result.output
    assert (foreign / "keep.txt").read_text() == "mine"
    # a fit whose data break a rule is recorded as an error; the others complete
    (tmp_path / "d2.csv").write_text("study,yi,sei,measure\nS0,0.1,-1,SMD\n")
    out = tmp_path / "out"
    result = runner.invoke(app, ["batch", str(manifest), "--out", str(out), "--scheduler", "none"])
    assert result.exit_code == 1
    assert "fit2" in result.output and "sei" in result.output
    table = pd.read_csv(out / "batch.csv")
    assert table.loc[table["name"] == "fit2", "status"].tolist() == ["error"]
    assert set(table.loc[table["name"] != "fit2", "status"]) == {"done"}
