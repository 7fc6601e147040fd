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


def test_batch_force_onto_a_folder_with_a_foreign_file_keeps_it(manifest, tmp_path):
    keep = tmp_path / "keep"
    keep.mkdir()
    (keep / "notes.txt").write_text("mine")
    args = ["batch", str(manifest), "--out", str(keep), "--scheduler", "none", "--force"]
    result = runner.invoke(app, args)
    assert result.exit_code == 2
    assert "notes.txt" in result.output and "Traceback" not in result.output
    assert sorted(p.name for p in keep.iterdir()) == ["notes.txt"]
    assert (keep / "notes.txt").read_text() == "mine"
    # a batch folder that holds a foreign file as well: still refused, nothing deleted
    out = tmp_path / "out"
    batch(manifest, out, scheduler="none")
    (out / "fits" / "fit0" / "mine.txt").write_text("mine")
    result = runner.invoke(app, [*args[:3], str(out), *args[4:]])
    assert result.exit_code == 2
    assert "fits/fit0/mine.txt" in result.output
    assert (out / "fits" / "fit0" / "mine.txt").read_text() == "mine"


def test_batch_force_refits_everything_in_place(manifest, tmp_path):
    out = tmp_path / "out"
    first = batch(manifest, out, scheduler="none")
    summary = out / "fits" / "fit0" / "summary.csv"
    stamp = summary.stat().st_mtime_ns
    again = batch(manifest, out, scheduler="none", force=True)
    assert summary.stat().st_mtime_ns != stamp  # refitted
    pd.testing.assert_frame_equal(first, again)
    record = json.loads((out / "manifest.json").read_text())
    assert record["bayeskit"]["kind"] == "batch"


def test_a_run_folder_is_never_reused_as_a_batch_or_the_reverse(manifest, tmp_path):
    run = tmp_path / "run"
    fit = ["fit", "--data", str(tmp_path / "d0.csv"), "--method", "exact", "--quiet"]
    assert runner.invoke(app, [*fit, "--out", str(run)]).exit_code == 0
    before = (run / "manifest.json").read_bytes()
    for extra in ([], ["--force"]):
        result = runner.invoke(
            app, ["batch", str(manifest), "--out", str(run), "--scheduler", "none", *extra]
        )
        assert result.exit_code == 2
        assert "is a fit's run directory (bayeskit fit), not a batch folder" in result.output
    assert (run / "manifest.json").read_bytes() == before
    assert not (run / "fits").exists()
    batch_dir = tmp_path / "b"
    batch(manifest, batch_dir, scheduler="none")
    result = runner.invoke(app, [*fit, "--out", str(batch_dir), "--force"])
    assert result.exit_code == 2
    assert "is a batch folder (bayeskit batch), not a fit's run directory" in result.output


@pytest.mark.parametrize("damage", ["truncate", "delete", "change_manifest_list"])
def test_resume_refits_a_fit_whose_files_are_damaged(manifest, tmp_path, damage):
    out = tmp_path / "out"
    first = batch(manifest, out, scheduler="none")
    fit = out / "fits" / "fit2"
    record = json.loads((fit / "manifest.json").read_text())
    assert set(record["outputs"]) == {
        "summary.csv",
        "data.csv",
        "diagnostics.json",
        "posterior.nc",
        "small_study.csv",
    }
    if damage == "truncate":
        (fit / "summary.csv").write_bytes((fit / "summary.csv").read_bytes()[:40])
    elif damage == "delete":
        (fit / "summary.csv").unlink()
    else:  # a manifest that lists no hashes (an earlier release's) is not proof either
        del record["outputs"]
        (fit / "manifest.json").write_text(json.dumps(record))
    stamp = (out / "fits" / "fit1" / "summary.csv").stat().st_mtime_ns
    again = batch(manifest, out, scheduler="none")
    pd.testing.assert_frame_equal(first, again)  # every fit is in batch.csv again
    assert (out / "fits" / "fit1" / "summary.csv").stat().st_mtime_ns == stamp  # kept
    assert json.loads((fit / "manifest.json").read_text()).get("outputs") is not None


@pytest.mark.parametrize(
    ("option", "message"),
    [
        (["--retries", "-1"], "--retries must be 0 or more (got -1)"),
        (["--workers", "-1"], "--workers must be at least 1 (got -1)"),
        (["--workers", "0"], "--workers must be at least 1 (got 0)"),
    ],
)
def test_bad_run_options_are_refused_before_anything_runs(manifest, tmp_path, option, message):
    out = tmp_path / "out"
    result = runner.invoke(app, ["batch", str(manifest), "--out", str(out), *option])
    assert result.exit_code == 2
    assert message in result.output
    assert not out.exists()


@pytest.mark.parametrize("answer", [b"HTTP/1.1 400 Bad Request\r\n\r\n" * 4, b"", None])
def test_a_scheduler_address_that_is_not_dask_is_refused(manifest, tmp_path, answer, monkeypatch):
    """A plain TCP server that answers garbage, nothing, or closes at once (bounded in time)."""
    import socket
    import threading
    import time

    import bayeskit.parallel

    monkeypatch.setattr(bayeskit.parallel, "PROBE_TIMEOUT", 1.0)
    server = socket.create_server(("127.0.0.1", 0))
    port = server.getsockname()[1]
    stop = threading.Event()

    def serve():
        server.settimeout(0.2)
        while not stop.is_set():
            try:
                conn, _ = server.accept()
            except TimeoutError:
                continue
            with conn:
                if answer is not None:
                    conn.sendall(answer)
                    stop.wait(3)

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    start = time.monotonic()
    try:
        args = ["batch", str(manifest), "--out", str(tmp_path / "out")]
        result = runner.invoke(app, [*args, "--scheduler", f"tcp://127.0.0.1:{port}"])
    finally:
        stop.set()
        thread.join(timeout=5)
        server.close()
    assert result.exit_code == 2, result.output
    assert f"--scheduler tcp://127.0.0.1:{port}" in result.output
    assert "does not answer as a Dask scheduler" in result.output
    assert time.monotonic() - start < 20


CTRL_C = """
import os, signal, subprocess, sys, time
from pathlib import Path
out = Path(sys.argv[2])
p = subprocess.Popen([sys.executable, "-m", "bayeskit", "batch", sys.argv[1], "--out", str(out),
                      "--workers", "1", "--quiet"], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                     text=True, start_new_session=True)
t0 = time.time()
while not (out / "fits").exists() or not os.listdir(out / "fits"):  # the first fit has started
    if time.time() - t0 > 90 or p.poll() is not None:
        break
    time.sleep(0.05)
os.killpg(p.pid, signal.SIGINT)  # as a terminal's Ctrl-C: every process of the group
try:
    so, se = p.communicate(timeout=60)
except subprocess.TimeoutExpired:
    os.killpg(p.pid, signal.SIGKILL)
    so, se = p.communicate()
print(p.returncode)
print(se)
"""


def test_ctrl_c_during_a_dask_batch_exits_130_without_tracebacks(manifest, tmp_path):
    import subprocess
    import sys

    result = subprocess.run(
        [sys.executable, "-c", CTRL_C, str(manifest), str(tmp_path / "out")],
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )
    code, _, stderr = result.stdout.partition("\n")
    assert code == "130", result.stdout + result.stderr
    assert "Traceback" not in stderr and "KeyboardInterrupt" not in stderr
    assert "interrupted" in stderr


def test_the_scheduler_probe_accepts_a_real_dask_scheduler():
    from distributed import LocalCluster

    from bayeskit.parallel import probe_scheduler, run_tasks

    with LocalCluster(
        n_workers=1, processes=False, protocol="tcp", dashboard_address=":0"
    ) as cluster:
        address = cluster.scheduler_address
        assert address.startswith("tcp://")
        probe_scheduler(address)
        done = sorted(run_tasks(pow, [(2, 3), (3, 2)], scheduler=address, progress=False))
    assert done == [(0, 8), (1, 9)]


MCMC_SPEC = SPEC.replace("draws = 500", 'method = "mcmc"\ndraws = 100\ntune = 100')


@pytest.mark.slow  # 30 s: a Dask cluster killed and restarted; the loop-vs-cluster test stays
def test_a_killed_and_resumed_dask_batch_gives_the_bytes_of_an_uninterrupted_one(
    manifest, tmp_path, monkeypatch
):
    # MCMC, so that compiled samplers are involved: Dask workers compile (or load from the
    # disk cache) in their own processes, the resumed loop compiles in this one. The
    # workers start with empty PyTensor and bayeskit caches, as on a fresh clone (with
    # fastmath on, this failed there and passed with warm caches)
    monkeypatch.setenv("PYTENSOR_FLAGS", f"base_compiledir={tmp_path / 'pytensor'}")
    monkeypatch.setenv("BAYESKIT_CACHE_DIR", str(tmp_path / "cache"))
    (tmp_path / "spec.toml").write_text(MCMC_SPEC)
    lines = manifest.read_text().splitlines()
    manifest.write_text("\n".join(lines[:4]) + "\n")  # three fits keep it short
    whole = tmp_path / "whole"
    batch(manifest, whole, scheduler="local", workers=2)
    cut = tmp_path / "cut"
    batch(manifest, cut, scheduler="local", workers=2)
    # killed at half: one fit gone, one half-staged, then resumed in a plain loop
    shutil.rmtree(cut / "fits" / "fit1")
    shutil.rmtree(cut / "fits" / "fit2")
    (cut / "fits" / ".fit2.abc.tmp").mkdir()
    batch(manifest, cut, scheduler="none")
    assert (cut / "batch.csv").read_bytes() == (whole / "batch.csv").read_bytes()
    for name in ("fit0", "fit1", "fit2"):
        a = (whole / "fits" / name / "summary.csv").read_bytes()
        assert (cut / "fits" / name / "summary.csv").read_bytes() == a, name
    assert "r_hat" in (whole / "fits" / "fit0" / "summary.csv").read_text()  # MCMC ran
