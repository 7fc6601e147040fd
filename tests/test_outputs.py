"""bayeskit.outputs: one writer, the --force policy, the claim and the recovery after a crash."""

import json
import os
import subprocess
import sys
import textwrap

import pytest

from bayeskit import outputs
from bayeskit.errors import UserError
from bayeskit.outputs import (
    check_destination,
    claim,
    folder_kind,
    foreign_files,
    recover,
    replace_dir,
    staged_dir,
    verify_outputs,
    write_file,
    writing_folder,
)

needs_root = pytest.mark.skipif(os.geteuid() != 0, reason="mknod needs root")


def make_run(path, **files):
    """A folder as bayeskit writes it: files, then the marker and their hashes."""
    with writing_folder(path, kind="run", force=True) as tmp:
        for name, text in (files or {"summary.csv": "parameter,mean\nmu,1\n"}).items():
            (tmp / name).parent.mkdir(parents=True, exist_ok=True)
            (tmp / name).write_text(text)
    return path


def test_one_writer_and_one_jsonable():
    import bayeskit.diagnostics
    import bayeskit.report.render
    import bayeskit.rundir

    assert bayeskit.diagnostics._jsonable is outputs.jsonable
    assert bayeskit.rundir.staged_dir is outputs.staged_dir
    assert bayeskit.report.render.write_file is outputs.write_file
    assert not hasattr(bayeskit.report.render, "write_atomic")
    assert not hasattr(outputs, "write_text_atomic")


def test_write_file_writes_bytes_and_text_and_leaves_no_temporary(tmp_path):
    write_file(tmp_path / "a.bin", b"\x00\x01")
    write_file(tmp_path / "b.txt", "é\n")
    assert (tmp_path / "a.bin").read_bytes() == b"\x00\x01"
    assert (tmp_path / "b.txt").read_bytes() == "é\n".encode()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.bin", "b.txt"]
    assert oct((tmp_path / "a.bin").stat().st_mode & 0o777) == "0o644"


def test_staged_folder_records_marker_and_every_hash(tmp_path):
    out = make_run(tmp_path / "run", **{"summary.csv": "x\n", "figures/f.png": "png"})
    record = json.loads((out / "manifest.json").read_text())
    assert record["bayeskit"]["kind"] == "run"
    assert set(record["outputs"]) == {"summary.csv", "figures/f.png"}
    assert record["outputs"]["summary.csv"] == outputs.sha256(out / "summary.csv")
    assert verify_outputs(out) == []
    (out / "figures" / "f.png").unlink()
    (out / "summary.csv").write_text("y\n")
    assert sorted(verify_outputs(out)) == [
        "figures/f.png is missing",
        "summary.csv differs from the file written",
    ]


def test_folders_of_earlier_releases_are_recognised(tmp_path):
    run = tmp_path / "run"
    run.mkdir()
    (run / "manifest.json").write_text(
        '{"family": "normal-normal", "method": "exact", "versions": {}}'
    )
    (run / "summary.csv").write_text("x")
    sens = tmp_path / "sens"
    sens.mkdir()
    (sens / "sensitivity.csv").write_text("x")
    (sens / "sensitivity.png").write_text("x")
    assert (folder_kind(run), folder_kind(sens), folder_kind(tmp_path)) == (
        "run",
        "sensitivity",
        None,
    )
    (sens / "mine.txt").write_text("x")
    assert folder_kind(sens) is None  # no longer only the files bayeskit wrote
    (run / "figures").mkdir()
    (run / "figures" / "forest.png").write_text("x")
    (run / "notes.txt").write_text("x")
    assert foreign_files(run, "run") == ["notes.txt"]


def test_a_forged_or_broken_marker_is_not_bayeskit(tmp_path):
    for text in ["{", "[]", '{"bayeskit": {"kind": "anything"}}', '{"bayeskit": "run"}']:
        (tmp_path / "manifest.json").write_text(text)
        assert folder_kind(tmp_path) is None, text


def test_force_replaces_only_a_bayeskit_folder_of_the_same_kind(tmp_path):
    out = make_run(tmp_path / "run")
    with pytest.raises(UserError, match="already exists; use --force"):
        check_destination(out, kind="run", force=False)
    assert check_destination(out, kind="run", force=True) == out
    with pytest.raises(UserError, match="is a fit's run directory .*not a batch folder"):
        check_destination(out, kind="batch", force=True, resume=True)
    (out / "notes.txt").write_text("mine")
    with pytest.raises(UserError, match=r"holds files bayeskit did not write \(notes.txt\)"):
        check_destination(out, kind="run", force=True)
    with pytest.raises(UserError, match="holds files bayeskit did not write"):
        make_run(out)
    assert (out / "notes.txt").read_text() == "mine"


def test_a_foreign_folder_is_never_replaced(tmp_path):
    folder = tmp_path / "mine"
    folder.mkdir()
    (folder / "thesis.tex").write_text("years of work")
    with pytest.raises(UserError, match="not a run folder: it has no bayeskit manifest.json"):
        make_run(folder)
    assert (folder / "thesis.tex").read_text() == "years of work"


@pytest.mark.parametrize("kind", [None, "run"])
def test_a_file_is_replaced_only_as_a_file(tmp_path, kind):
    path = tmp_path / "table.csv"
    path.write_text("old")
    if kind is None:
        assert check_destination(path, kind=None, force=True) == path
    else:
        with pytest.raises(UserError, match="is a file, not a folder"):
            check_destination(path, kind=kind, force=True)
    with pytest.raises(UserError, match="is a folder; give the name of a file"):
        check_destination(tmp_path, kind=None, force=True)


@needs_root
@pytest.mark.parametrize("kind", [None, "run"])
def test_a_device_is_never_replaced(tmp_path, kind):
    device = tmp_path / "null"
    os.mknod(device, 0o666 | 0o020000, os.makedev(1, 3))
    with pytest.raises(UserError, match="device, pipe or socket"):
        check_destination(device, kind=kind, force=True)
    assert device.is_char_device()


def test_fifo_and_symlinks_are_refused(tmp_path):
    os.mkfifo(tmp_path / "pipe")
    with pytest.raises(UserError, match="not a regular file"):
        check_destination(tmp_path / "pipe", kind=None, force=True)
    (tmp_path / "real.csv").write_text("x")
    (tmp_path / "link.csv").symlink_to(tmp_path / "real.csv")
    with pytest.raises(UserError, match="is a symbolic link"):
        check_destination(tmp_path / "link.csv", kind=None, force=True)
    (tmp_path / "dangling").symlink_to(tmp_path / "nowhere")
    with pytest.raises(UserError, match="dangling symbolic link"):
        check_destination(tmp_path / "dangling", kind="run", force=True)
    with pytest.raises(UserError, match="dangling symbolic link"):
        check_destination(tmp_path / "dangling" / "run", kind="run", force=True)


def test_protected_folders_are_refused(tmp_path, monkeypatch):
    work = tmp_path / "a" / "b"
    work.mkdir(parents=True)
    monkeypatch.chdir(work)
    for path, why in [
        ("/", "the root folder"),
        (".", "the working folder"),
        ("..", "a folder holding the working folder"),
        (str(tmp_path / "a"), "a folder holding the working folder"),
        (str(work), "the working folder"),
        (os.path.expanduser("~"), "the home folder"),
    ]:
        with pytest.raises(UserError, match=f"refusing to write over {why}"):
            check_destination(path, kind="run", force=True)


def test_long_names_and_read_only_folders_are_refused(tmp_path):
    with pytest.raises(UserError, match="longer than 255 bytes"):
        check_destination(tmp_path / ("a" * 300), kind="run", force=False)
    with pytest.raises(UserError, match="at most 240 are allowed"):
        check_destination(tmp_path / ("é" * 125), kind="run", force=False)  # 250 bytes
    ro = tmp_path / "ro"
    ro.mkdir()
    ro.chmod(0o555)
    try:
        with pytest.raises(UserError, match=f"the folder {ro} is read-only"):
            check_destination(ro / "run", kind="run", force=False)
    finally:
        ro.chmod(0o755)
    assert list(ro.iterdir()) == []


HOLDER = """
import sys, time
from bayeskit.outputs import claim
with claim(sys.argv[1], kind="run", force=False):
    print("claimed", flush=True)
    time.sleep(60)
"""


def test_a_second_writer_is_refused_with_or_without_force(tmp_path):
    out = tmp_path / "run"
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLDER, str(out)], stdout=subprocess.PIPE, text=True
    )
    try:
        assert holder.stdout.readline().strip() == "claimed"
        for force in (False, True):
            with pytest.raises(
                UserError, match=f"being written by another bayeskit process \\(pid {holder.pid}"
            ):
                with claim(out, kind="run", force=force):
                    pass
    finally:
        holder.kill()
        holder.communicate(timeout=30)
    # its lock file outlived it (SIGKILL): the lock is stale and taken over
    assert (tmp_path / ".run.lock").exists()
    with claim(out, kind="run", force=False):
        assert json.loads((tmp_path / ".run.lock").read_text())["pid"] == os.getpid()
    assert not (tmp_path / ".run.lock").exists()


def test_a_lock_of_a_dead_process_is_taken_over(tmp_path):
    dead = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True
    )
    lock = tmp_path / ".run.lock"
    lock.write_text(json.dumps({"pid": int(dead.stdout), "host": "x", "started": "then"}))
    with claim(tmp_path / "run", kind="run", force=False) as out:
        assert out == tmp_path / "run"


def test_a_crash_between_the_two_renames_is_recovered(tmp_path, monkeypatch):
    out = make_run(tmp_path / "run", **{"summary.csv": "first\n"})
    monkeypatch.setattr(outputs.staging, "_renameat2_exchange", lambda a, b: False)
    real_rename = os.rename
    calls = []

    def crash_on_second(src, dst):
        calls.append((src, dst))
        if len(calls) >= 2:  # killed between the renames: no `run`, only `.run.old`
            raise KeyboardInterrupt
        real_rename(src, dst)

    monkeypatch.setattr(outputs.staging.os, "rename", crash_on_second)
    staged = tmp_path / ".run.abcd1234.tmp"
    staged.mkdir()
    with pytest.raises(KeyboardInterrupt):
        replace_dir(staged, out)
    monkeypatch.setattr(outputs.staging.os, "rename", real_rename)
    assert not out.exists() and (tmp_path / ".run.old").is_dir()
    with claim(out, kind="run", force=True):  # the next writer puts it back first
        assert (out / "summary.csv").read_text() == "first\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["run"]  # staging leftover removed


def test_replacement_swaps_atomically_and_leaves_nothing_beside(tmp_path):
    out = make_run(tmp_path / "run", **{"summary.csv": "first\n"})
    make_run(out, **{"summary.csv": "second\n"})
    assert (out / "summary.csv").read_text() == "second\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["run"]


def test_recover_keeps_a_complete_folder_and_drops_its_set_aside_copy(tmp_path):
    make_run(tmp_path / "run")
    make_run(tmp_path / ".run.old")  # a swap finished, its cleanup did not
    (tmp_path / ".run.zz99zz99.tmp").write_text("half a file")
    (tmp_path / ".runner.abcd1234.tmp").mkdir()  # another destination's: left alone
    recover(tmp_path / "run")
    assert sorted(p.name for p in tmp_path.iterdir()) == [".runner.abcd1234.tmp", "run"]


def test_disk_errors_become_user_errors_and_remove_the_staging_folder(tmp_path, monkeypatch):
    def full(*args, **kwargs):
        raise OSError(28, "No space left on device")

    with pytest.raises(UserError, match=r"cannot write .*run.*No space left on device \(ENOSPC\)"):
        with staged_dir(tmp_path / "run") as tmp:
            monkeypatch.setattr(outputs.files.os, "fsync", full)
            write_file(tmp / "posterior.nc", b"x")
    assert list(tmp_path.iterdir()) == []


FILE_SIZE_LIMIT = """
import resource, signal, sys
signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
resource.setrlimit(resource.RLIMIT_FSIZE, (20000, 20000))
from bayeskit.cli import app
app(["fit", "--data", sys.argv[1], "--method", "exact", "--quiet", "--out", sys.argv[2]])
"""


def test_a_file_size_limit_while_writing_posterior_is_exit_2(tmp_path):
    from tests.conftest import DATA

    result = subprocess.run(
        [
            sys.executable,
            "-c",
            FILE_SIZE_LIMIT,
            str(DATA / "eight_schools.csv"),
            str(tmp_path / "run"),
        ],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 2, result.stderr  # not a traceback, not a segfault (-11)
    assert "File too large (EFBIG)" in result.stderr
    assert str(tmp_path / "run") in result.stderr and ".tmp" not in result.stderr
    assert "Traceback" not in result.stderr
    assert list(tmp_path.iterdir()) == []


def test_claim_makes_missing_parents_and_refuses_paths_under_a_file(tmp_path):
    with claim(tmp_path / "runs" / "a" / "run", kind="run", force=False) as out:
        assert out.parent.is_dir()
    (tmp_path / "file").write_text("x")
    with pytest.raises(UserError, match="file is a file, not a folder"):
        with claim(tmp_path / "file" / "run", kind="run", force=False):
            pass
    assert textwrap.dedent((tmp_path / "file").read_text()) == "x"


def test_links_inside_a_folder_are_foreign_and_never_followed(tmp_path):
    out = make_run(tmp_path / "run")
    (out / "root").symlink_to("/")  # walking through it would visit the whole disk
    assert foreign_files(out, "run") == ["root"]
    with pytest.raises(UserError, match=r"did not write \(root\)"):
        check_destination(out, kind="run", force=True)
    (tmp_path / "loop").symlink_to(tmp_path / "loop")
    with pytest.raises(UserError, match="loop"):
        check_destination(tmp_path / "loop" / "run", kind="run", force=True)
