"""Writing outputs safely: complete or not at all, and never over what bayeskit did not write.

Every file and folder bayeskit writes goes through this module:

* :func:`write_file` writes one file through a temporary file beside it and a rename;
* :func:`staged_dir` writes a folder in a temporary folder beside it and swaps it into
  place, recording in its ``manifest.json`` bayeskit's marker (``"bayeskit": {"kind":
  ...}``) and the SHA-256 of every file it holds (``"outputs"``);
* :func:`claim` takes an exclusive claim on a destination (a lock file ``.NAME.lock``
  beside it, created with ``O_EXCL``), puts back a folder left aside by a crash, removes
  staging leftovers of a killed writer and applies the ``--force`` policy of
  :func:`check_destination`;
* :func:`write_json` and :func:`jsonable` turn results into JSON.

The ``--force`` policy: an existing destination is replaced only with ``--force``, and
then only when it is a regular file (single-file outputs) or a folder bayeskit wrote of
the same kind, holding no file bayeskit did not write. The root, the home folder, the
working folder and its ancestors, devices, pipes, sockets and symbolic links are never
replaced.
"""

from __future__ import annotations

import contextlib
import ctypes
import errno
import fcntl
import hashlib
import io
import json
import math
import os
import re
import shutil
import socket
import stat
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bayeskit.errors import UserError

#: The file whose ``"bayeskit"`` entry marks a folder as bayeskit's.
MARKER = "manifest.json"

#: The kinds of folder bayeskit writes, and who writes each.
KINDS = {
    "run": "a fit's run directory (bayeskit fit)",
    "batch": "a batch folder (bayeskit batch)",
    "sbc": "a calibration folder (bayeskit sbc)",
    "sensitivity": "a sensitivity folder (bayeskit sensitivity)",
    "teach": "a teaching folder (bayeskit teach)",
    "report": "a report folder (bayeskit report --out)",
}

#: The longest name a destination may have, in bytes: file systems allow 255, and the
#: staging name beside it (``.NAME.xxxxxxxx.tmp``) needs 14 more.
MAX_NAME_BYTES = 240

# Files of each kind of folder written before the marker existed (bayeskit 0.x): they
# are recognised, and replaced with --force, by these names.
_LEGACY_FILES = {
    "run": {
        "summary.csv",
        "posterior.nc",
        "diagnostics.json",
        "manifest.json",
        "data.csv",
        "questions.csv",
        "borrowing.csv",
        "report.html",
        "report.md",
    },
    "sbc": {"ranks.csv", "summary.csv", "manifest.json", "report.md", "figures/sbc.png"},
    "sensitivity": {"sensitivity.csv", "sensitivity.png", "psense.csv"},
    "teach": {"pooling.csv", "shrinkage.png", "shrinkage.svg", "narrative.md"},
    "batch": {"manifest.json", "batch.csv"},
}
_FIGURE = re.compile(r"^figures/[A-Za-z0-9_.-]+\.(png|svg)$")
_HELD: dict[str, int] = {}  # destinations this process has claimed: path -> depth


def _walk(folder: Path) -> list[tuple[str, int]]:
    """Every entry under ``folder`` as (relative path, lstat mode), never through a link."""
    # pathlib's rglob follows symbolic links to folders in Python 3.12: a link to / would
    # walk the whole disk
    found = []
    for root, dirs, files in os.walk(folder, followlinks=False):
        for name in sorted(dirs) + sorted(files):
            full = os.path.join(root, name)
            try:
                mode = os.lstat(full).st_mode
            except OSError:
                continue
            found.append((Path(full).relative_to(folder).as_posix(), mode))
    return sorted(found)


def _staging(name: str) -> re.Pattern:
    """Names of the temporary files and folders of a write of ``name``."""
    # mkstemp/mkdtemp add 8 characters from [a-z0-9_]
    return re.compile(rf"^\.{re.escape(name)}\.[a-z0-9_]{{8}}\.tmp$")


# ---------------------------------------------------------------- JSON


def jsonable(value: Any) -> Any:
    """Return ``value`` as plain JSON types: numpy scalars and arrays, paths, non-finite floats.

    Non-finite floats become ``None`` (JSON has no NaN); anything else unknown becomes
    its text.

    Examples
    --------
    >>> import numpy as np
    >>> jsonable({"a": np.float64(1.5), 2: (np.int64(3), float("nan")), "p": Path("x")})
    {'a': 1.5, '2': [3, None], 'p': 'x'}
    """
    import numpy as np

    if isinstance(value, dict):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set | np.ndarray):
        return [jsonable(v) for v in value]
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if value is None or isinstance(value, bool | int | float | str):
        return value
    return str(value)


def write_json(path: str | Path, data: Any) -> Path:
    r"""Write ``data`` as indented JSON, atomically (:func:`write_file`).

    Examples
    --------
    >>> path = Path(tempfile.mkdtemp()) / "a.json"
    >>> _ = write_json(path, {"x": float("inf")})
    >>> path.read_text()
    '{\n  "x": null\n}\n'
    """
    return write_file(path, json.dumps(jsonable(data), indent=2, allow_nan=False) + "\n")


# ---------------------------------------------------------------- one file


def write_file(path: str | Path, data: bytes | str) -> Path:
    r"""Write ``data`` to ``path`` through a temporary file in the same folder, then rename.

    A reader never sees a half-written file: the rename is atomic on POSIX file systems,
    and an interrupted write leaves only the temporary file, which is removed. Text is
    written as UTF-8. No check is made here: destinations named by the user go through
    :func:`claim` first.

    Raises
    ------
    UserError
        When the disk is full, a file-size limit is reached or the folder is read-only.

    Examples
    --------
    >>> folder = Path(tempfile.mkdtemp())
    >>> write_file(folder / "out.csv", "study,yi\n").read_text()
    'study,yi\n'
    >>> [p.name for p in folder.iterdir()]  # no temporary file left behind
    ['out.csv']
    """
    path = Path(path)
    if isinstance(data, str):
        data = data.encode("utf-8")
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    except OSError as err:
        raise _write_error(path, err) from None
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(tmp, 0o644)  # mkstemp makes the file private; outputs are for reading
        os.replace(tmp, path)
    except BaseException as err:
        Path(tmp).unlink(missing_ok=True)
        if isinstance(err, OSError) and err.errno is not None:
            raise _write_error(path, err) from None
        raise
    return path


def netcdf_bytes(tree) -> bytes:
    r"""Return the netCDF (HDF5) bytes of a DataTree, made in memory.

    Written to memory first so that a full disk fails in :func:`write_file` with a clean
    ``OSError`` instead of inside HDF5, which then crashes the interpreter at exit.

    Examples
    --------
    >>> import numpy as np, xarray as xr
    >>> tree = xr.DataTree.from_dict({"posterior": xr.Dataset({"mu": ("draw", np.zeros(3))})})
    >>> netcdf_bytes(tree)[:4]
    b'\x89HDF'
    """
    import dask

    buffer = io.BytesIO()
    # inside a Dask worker xarray would take a cluster-wide lock named after the target,
    # which a BytesIO cannot name; the tree is in memory, so no scheduler is involved
    with dask.config.set(scheduler="synchronous"):
        tree.to_netcdf(buffer, engine="h5netcdf")
    return buffer.getvalue()


def _write_error(path: Path, err: OSError) -> UserError:
    code = errno.errorcode.get(err.errno or 0, "")
    why = err.strerror or str(err)
    return UserError(f"cannot write {path}: {why}" + (f" ({code})" if code else ""))


# ---------------------------------------------------------------- markers and hashes


def sha256(path: str | Path) -> str:
    """SHA-256 of a file's bytes, as hex.

    Examples
    --------
    >>> path = Path(tempfile.mkdtemp()) / "a.txt"
    >>> _ = path.write_bytes(b"abc")
    >>> sha256(path)[:12]
    'ba7816bf8f01'
    """
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def file_hashes(folder: str | Path) -> dict[str, str]:
    """SHA-256 of every file under ``folder`` except its ``manifest.json``, by relative path.

    Examples
    --------
    >>> folder = Path(tempfile.mkdtemp())
    >>> _ = (folder / "a.csv").write_text("x"); (folder / "f").mkdir()
    >>> _ = (folder / "f" / "b.png").write_text("y"); _ = (folder / MARKER).write_text("{}")
    >>> sorted(file_hashes(folder))
    ['a.csv', 'f/b.png']
    """
    folder = Path(folder)
    return {
        rel: sha256(folder / rel)
        for rel, mode in _walk(folder)
        if stat.S_ISREG(mode) and rel != MARKER
    }


def read_manifest(folder: str | Path) -> dict | None:
    """Return a folder's ``manifest.json`` as a dict; None when absent or not a JSON object.

    Examples
    --------
    >>> folder = Path(tempfile.mkdtemp())
    >>> read_manifest(folder) is None
    True
    >>> _ = (folder / MARKER).write_text('{"bayeskit": {"kind": "run"}}')
    >>> read_manifest(folder)
    {'bayeskit': {'kind': 'run'}}
    """
    path = Path(folder) / MARKER
    try:
        if not stat.S_ISREG(os.lstat(path).st_mode):
            return None
        record = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return record if isinstance(record, dict) else None


def folder_kind(folder: str | Path) -> str | None:
    """Return the kind of bayeskit folder ``folder`` is (``run``, ``batch``, ...), or None.

    A folder is bayeskit's when its ``manifest.json`` carries ``"bayeskit": {"kind":
    ...}``; folders of earlier releases are recognised by their manifest's fields, or
    (sensitivity and teaching folders, which had no manifest) by their file names.

    Examples
    --------
    >>> folder = Path(tempfile.mkdtemp())
    >>> folder_kind(folder) is None
    True
    >>> _ = (folder / MARKER).write_text('{"bayeskit": {"kind": "batch"}}')
    >>> folder_kind(folder)
    'batch'
    """
    folder = Path(folder)
    record = read_manifest(folder)
    if record is not None:
        mark = record.get("bayeskit")
        if isinstance(mark, dict) and mark.get("kind") in KINDS:
            return str(mark["kind"])
        if {"family", "method", "versions"} <= record.keys():
            return "run"
        if {"fits", "source", "versions"} <= record.keys():
            return "batch"
        settings = record.get("settings")
        if isinstance(settings, dict) and "replicates" in settings and "versions" in record:
            return "sbc"
        return None
    entries = _walk(folder)
    if any(not stat.S_ISREG(mode) for _, mode in entries):
        return None  # these folders hold files only
    names = {rel for rel, _ in entries}
    for kind, first in (("sensitivity", "sensitivity.csv"), ("teach", "pooling.csv")):
        if first in names and names <= _LEGACY_FILES[kind]:
            return kind
    return None


def foreign_files(folder: str | Path, kind: str) -> list[str]:
    """Entries under a bayeskit folder that bayeskit did not write, by relative path.

    A folder with an ``outputs`` map in its manifest may hold exactly those files (and
    the manifest); one from an earlier release, the files its kind writes. A batch
    folder may hold run directories under ``fits/`` and the staging leftovers of fits.

    Examples
    --------
    >>> folder = Path(tempfile.mkdtemp())
    >>> _ = (folder / MARKER).write_text('{"bayeskit": {"kind": "run"}, "outputs": {"a.csv": "0"}}')
    >>> _ = (folder / "a.csv").write_text("x"); _ = (folder / "notes.txt").write_text("mine")
    >>> foreign_files(folder, "run")
    ['notes.txt']
    """
    folder = Path(folder)
    record = read_manifest(folder) or {}
    listed = record.get("outputs")
    foreign = []
    for rel, mode in _walk(folder):
        path = folder / rel
        if stat.S_ISDIR(mode):
            if kind == "batch" and rel == "fits":
                continue
            if kind == "batch" and rel.startswith("fits/"):
                if rel.count("/") == 1:  # fits/<name>: a run directory, checked whole
                    name = rel.split("/")[1]
                    if _is_staging_name(name, folder / "fits"):
                        continue
                    if folder_kind(path) != "run":
                        foreign.append(rel)
                    else:
                        foreign += [f"{rel}/{f}" for f in foreign_files(path, "run")]
                continue
            continue
        if kind == "batch" and rel.startswith("fits/"):
            name = rel.split("/")[1]
            if rel.count("/") == 1 and not _is_staging_name(name, folder / "fits"):
                foreign.append(rel)
            continue
        if not stat.S_ISREG(mode):
            foreign.append(rel)
        elif rel == MARKER:
            continue
        elif isinstance(listed, dict):
            if rel not in listed:
                foreign.append(rel)
        elif rel not in _LEGACY_FILES.get(kind, set()) and not (
            kind == "run" and _FIGURE.match(rel)
        ):
            foreign.append(rel)
    return foreign


def _is_staging_name(name: str, parent: Path) -> bool:
    """Whether ``name`` is a lock, staging or set-aside entry of a bayeskit write."""
    if not name.startswith("."):
        return False
    for suffix in (".lock", ".old"):
        if name.endswith(suffix) and len(name) > len(suffix) + 1:
            return True
    return bool(re.match(r"^\..+\.[a-z0-9_]{8}\.tmp$", name))


def verify_outputs(folder: str | Path) -> list[str]:
    r"""List what is wrong with a bayeskit folder's files against its ``outputs`` map.

    Returns an empty list when every recorded file is there with its recorded SHA-256.

    Examples
    --------
    >>> folder = Path(tempfile.mkdtemp()) / "run"
    >>> with staged_dir(folder, kind="run") as tmp:
    ...     _ = (tmp / "summary.csv").write_text("parameter,mean\nmu,1\n")
    >>> verify_outputs(folder)
    []
    >>> _ = (folder / "summary.csv").write_text("parameter,mean\n")  # truncated
    >>> verify_outputs(folder)
    ['summary.csv differs from the file written']
    """
    folder = Path(folder)
    record = read_manifest(folder)
    if record is None:
        return [f"{MARKER} is missing or not JSON"]
    listed = record.get("outputs")
    if not isinstance(listed, dict):
        return [f"{MARKER} records no output hashes"]
    problems = []
    for rel, digest in listed.items():
        path = folder / rel
        if not path.is_file():
            problems.append(f"{rel} is missing")
        elif sha256(path) != digest:
            problems.append(f"{rel} differs from the file written")
    return problems


def record_outputs(folder: str | Path, kind: str) -> dict:
    """Add bayeskit's marker and the hashes of every file to ``folder/manifest.json``.

    Examples
    --------
    >>> folder = Path(tempfile.mkdtemp())
    >>> _ = (folder / "a.csv").write_text("x")
    >>> record = record_outputs(folder, "teach")
    >>> record["bayeskit"]["kind"], list(record["outputs"])
    ('teach', ['a.csv'])
    """
    from bayeskit import __version__

    folder = Path(folder)
    record = read_manifest(folder) or {"created": datetime.now(UTC).isoformat(timespec="seconds")}
    record.pop("bayeskit", None)
    record.pop("outputs", None)
    full = {"bayeskit": {"kind": kind, "version": __version__}, **record}
    full["outputs"] = file_hashes(folder)
    write_json(folder / MARKER, full)
    return full


# ---------------------------------------------------------------- the --force policy


def _resolve(path: Path, label: str) -> Path:
    try:
        return path.resolve()
    except (OSError, RuntimeError) as err:  # a symbolic link loop, a name too long
        raise UserError(f"{label}: cannot follow this path ({err})") from None


def _protected(resolved: Path) -> str | None:
    """Why ``resolved`` may never be written over, or None."""
    cwd = Path.cwd().resolve()
    if resolved == Path(resolved.anchor):
        return "the root folder"
    try:
        home = Path.home().resolve()
    except (KeyError, RuntimeError, OSError):  # no HOME and no passwd entry
        home = None
    if resolved == home:
        return "the home folder"
    if resolved == cwd:
        return "the working folder"
    if resolved in cwd.parents:
        return "a folder holding the working folder"
    return None


def check_path(path: str | Path, *, what: str = "--out", make_parent: bool = True) -> Path:
    """Refuse a destination that can never be written, whatever ``--force`` says.

    Refused: ``/``, ``.``, ``..``, the home and working folders and the working folder's
    ancestors; names over :data:`MAX_NAME_BYTES` bytes; paths under a file or through a
    dangling symbolic link; symbolic links; folders bayeskit may not write in. The
    parent folder is made when missing and ``make_parent`` is set.

    Examples
    --------
    >>> base = Path(tempfile.mkdtemp())
    >>> check_path(base / "runs" / "first") == base / "runs" / "first"
    True
    >>> check_path(".")
    Traceback (most recent call last):
    ...
    bayeskit.errors.UserError: --out .: refusing to write over the working folder; ...
    """
    path = Path(path)
    label = _label(path, what)
    if "\x00" in str(path):
        raise UserError(f"{label!r}: a file name cannot hold a NUL character")
    if path.name in ("", ".", ".."):
        why = _protected(_resolve(path, label)) or f"{path.name or path}, which names nothing"
        raise UserError(f"{label}: refusing to write over {why}; give a new folder or file name")
    for part in path.parts:
        if len(os.fsencode(part)) > 255:
            raise UserError(f"{label}: the name {part[:40]}... is longer than 255 bytes")
    if len(os.fsencode(path.name)) > MAX_NAME_BYTES:
        raise UserError(
            f"{label}: the name is {len(os.fsencode(path.name))} bytes long; at most "
            f"{MAX_NAME_BYTES} are allowed (the temporary name beside it needs the rest)"
        )
    why = _protected(_resolve(path, label))
    if why:
        raise UserError(f"{label}: refusing to write over {why}; give a new folder or file name")
    try:
        mode = os.lstat(path).st_mode
    except FileNotFoundError:
        mode = None
    except NotADirectoryError:
        raise UserError(f"{label}: {_file_ancestor(path)} is a file, not a folder") from None
    except OSError as err:
        raise UserError(f"{label}: {err.strerror}") from None
    if mode is not None and stat.S_ISLNK(mode):
        if not path.exists():
            raise UserError(f"{label} is a dangling symbolic link; give another name")
        raise UserError(f"{label} is a symbolic link; give the folder or file it points to")
    parent = path.parent
    missing = []
    while not parent.exists():
        if os.path.lexists(parent):
            raise UserError(f"{label}: {parent} is a dangling symbolic link")
        missing.append(parent)
        if parent == parent.parent:
            break
        parent = parent.parent
    if parent.exists() and not parent.is_dir():
        raise UserError(f"{label}: {parent} is a file, not a folder")
    if missing and not make_parent:
        raise UserError(f"{label}: the folder {path.parent} does not exist")
    _check_writable_folder(parent, label)
    if missing:
        try:  # `--out runs/NAME` on a fresh checkout: make runs/
            path.parent.mkdir(parents=True)
        except OSError as err:
            raise UserError(
                f"{label}: cannot create the folder {path.parent}: {err.strerror}"
            ) from None
    return path


def _label(path: Path, what: str) -> str:
    text = str(path)
    if len(text) > 100:  # a hostile name is shown, not pasted whole
        text = f"{text[:60]}...{text[-20:]}"
    return f"{what} {text}" if what else text


def _file_ancestor(path: Path) -> Path:
    for parent in reversed(path.parents):
        if parent.exists() and not parent.is_dir():
            return parent
    return path.parent


def _check_writable_folder(folder: Path, label: str) -> None:
    # root may write anywhere; a folder with no write permission bits was still meant
    # to be read-only, so it is refused for everyone
    mode = folder.stat().st_mode
    if not os.access(folder, os.W_OK | os.X_OK) or not mode & 0o222:
        raise UserError(f"{label}: the folder {folder} is read-only")


def check_destination(
    path: str | Path,
    *,
    kind: str | None,
    force: bool,
    resume: bool = False,
    what: str = "--out",
) -> Path:
    """Refuse to write ``path`` unless it is new, or ``force`` is set and it may be replaced.

    Parameters
    ----------
    path : path
        The destination named by the user.
    kind : str or None
        The kind of folder to write (a key of :data:`KINDS`), or None for one file.
    force : bool
        Replace an existing destination: a regular file, or a bayeskit folder of the same
        kind that holds nothing bayeskit did not write.
    resume : bool
        An existing folder of the same kind may be written into without ``force`` (a
        batch resuming).
    what : str
        The option that named ``path``, for messages.

    Examples
    --------
    >>> base = Path(tempfile.mkdtemp())
    >>> check_destination(base / "es.csv", kind=None, force=False).name
    'es.csv'
    >>> _ = (base / "keep.txt").write_text("mine")
    >>> check_destination(base / "run", kind="run", force=True).name
    'run'
    >>> check_destination(base, kind="run", force=True)
    Traceback (most recent call last):
    ...
    bayeskit.errors.UserError: --out ...: not a run folder: it has no bayeskit manifest.json ...
    """
    path = check_path(path, what=what, make_parent=kind is not None)
    label = _label(path, what)
    try:
        mode = os.lstat(path).st_mode
    except FileNotFoundError:
        return path
    if kind is None:
        if stat.S_ISDIR(mode):
            raise UserError(f"{label} is a folder; give the name of a file to write")
        if not stat.S_ISREG(mode):
            raise UserError(
                f"{label} exists and is not a regular file (a device, pipe or socket); "
                "refusing to replace it"
            )
        if not force:
            raise UserError(f"{label} already exists; use --force to replace it")
        return path
    if not stat.S_ISDIR(mode):
        what_it_is = "a file" if stat.S_ISREG(mode) else "a device, pipe or socket"
        raise UserError(f"{label} exists and is {what_it_is}, not a folder; refusing to replace it")
    entries = sorted(p.name for p in path.iterdir())
    if not entries:
        if force or resume:
            return path
        raise UserError(f"{label} already exists; use --force to replace it")
    found = folder_kind(path)
    if found is None:
        shown = ", ".join(entries[:3]) + (", ..." if len(entries) > 3 else "")
        raise UserError(
            f"{label}: not a {kind} folder: it has no bayeskit {MARKER} and holds {shown}; "
            "bayeskit replaces only folders it wrote: give a new --out"
        )
    if found != kind:
        raise UserError(
            f"{label} is {KINDS[found]}, not {KINDS[kind]}; a bayeskit folder is never "
            "reused as another kind: give a new --out"
        )
    if resume and not force:
        return path
    if not force:
        raise UserError(f"{label} already exists; use --force to replace it")
    foreign = foreign_files(path, kind)
    if foreign:
        shown = ", ".join(foreign[:3]) + (", ..." if len(foreign) > 3 else "")
        raise UserError(
            f"{label} holds files bayeskit did not write ({shown}); refusing to replace it "
            "even with --force: move them away or give a new --out"
        )
    return path


# ---------------------------------------------------------------- the claim


def _lock_path(out: Path) -> Path:
    return out.with_name(f".{out.name}.lock")


@contextmanager
def claim(
    out: str | Path,
    *,
    kind: str | None,
    force: bool,
    resume: bool = False,
    what: str = "--out",
) -> Iterator[Path]:
    """Hold an exclusive claim on a destination while it is checked, computed and written.

    The claim is a lock file ``.NAME.lock`` beside ``out``, created with ``O_EXCL`` and
    holding the writer's pid, host and start time; a second writer is refused with
    exit code 2, with or without ``--force``. A lock whose process has died is taken
    over. Under the claim, a folder set aside by a crash between the two renames of a
    replacement (``.NAME.old`` with no ``NAME``) is put back, staging leftovers of a
    killed writer are removed, and :func:`check_destination` decides whether ``out``
    may be written. Claims are re-entrant within a process.

    Examples
    --------
    >>> base = Path(tempfile.mkdtemp())
    >>> with claim(base / "run", kind="run", force=False) as out:
    ...     sorted(p.name for p in base.iterdir())
    ['.run.lock']
    >>> with claim(base / "run", kind="run", force=False):  # the same process: re-entrant
    ...     with claim(base / "run", kind="run", force=False):
    ...         pass
    >>> sorted(p.name for p in base.iterdir())  # the lock is gone
    []
    """
    out = check_destination(out, kind=kind, force=force, resume=resume, what=what)
    key = os.path.abspath(out)
    if key in _HELD:
        _HELD[key] += 1
        try:
            yield out
        finally:
            _HELD[key] -= 1
        return
    fd = _take_lock(_lock_path(out), out, force=force, what=what)
    _HELD[key] = 1
    try:
        recover(out)
        check_destination(out, kind=kind, force=force, resume=resume, what=what)
        yield out
    finally:
        del _HELD[key]
        with contextlib.suppress(OSError):
            _lock_path(out).unlink()
        os.close(fd)


def _take_lock(lock: Path, out: Path, *, force: bool, what: str) -> int:
    info = {
        "pid": os.getpid(),
        "host": socket.gethostname(),
        "started": datetime.now(UTC).isoformat(timespec="seconds"),
    }
    for _ in range(3):
        try:
            fd = os.open(lock, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o644)
        except FileExistsError:
            if _take_over_stale(lock):
                continue
            holder = _read_lock(lock)
            advice = " (--force does not interrupt a write in progress)" if force else ""
            raise UserError(
                f"{what} {out} is being written by another bayeskit process "
                f"(pid {holder.get('pid', '?')} on {holder.get('host', '?')}, since "
                f"{holder.get('started', '?')}){advice}; wait for it to finish, or remove "
                f"{lock} if no such process is running"
            ) from None
        except OSError as err:
            raise UserError(f"{what} {out}: cannot write in {out.parent}: {err.strerror}") from None
        # the kernel drops this lock when the process dies, however it dies: that is how
        # a later writer knows the lock file is stale
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        os.write(fd, json.dumps(info).encode())
        return fd
    raise UserError(f"{what} {out}: could not take the lock {lock}; try again")


def _read_lock(lock: Path) -> dict:
    try:
        found = json.loads(lock.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return found if isinstance(found, dict) else {}


def _take_over_stale(lock: Path) -> bool:
    """Remove ``lock`` when the process that made it has gone; return whether it was."""
    try:
        fd = os.open(lock, os.O_RDONLY | os.O_NOFOLLOW)
    except FileNotFoundError:
        return True  # released meanwhile: try again
    except OSError:
        return False
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return False  # its writer holds it: alive
        holder = _read_lock(lock)
        if holder.get("host") == socket.gethostname() and _alive(holder.get("pid")):
            return False  # made a moment ago, not yet flocked
        try:  # unlink only the file we hold, not one made since by another writer
            if os.stat(lock).st_ino != os.fstat(fd).st_ino:
                return True
            lock.unlink()
        except FileNotFoundError:
            pass
        return True
    finally:
        os.close(fd)


def _alive(pid: Any) -> bool:
    if not isinstance(pid, int) or pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def recover(out: str | Path) -> None:
    """Repair what a killed replacement of ``out`` left: call only under :func:`claim`.

    A ``.NAME.old`` folder with no ``NAME`` (a crash between the two renames of a
    replacement) is put back; one beside a complete ``NAME`` is removed when bayeskit
    wrote it; staging files and folders ``.NAME.xxxxxxxx.tmp`` are removed.

    Examples
    --------
    >>> base = Path(tempfile.mkdtemp())
    >>> (base / ".run.old").mkdir(); (base / ".run.abcd1234.tmp").mkdir()
    >>> recover(base / "run")
    >>> sorted(p.name for p in base.iterdir())
    ['run']
    """
    out = Path(out)
    old = out.with_name(f".{out.name}.old")
    if os.path.lexists(old) and old.is_dir() and not old.is_symlink():
        if not os.path.lexists(out):
            os.rename(old, out)
        elif folder_kind(old) is not None:
            shutil.rmtree(old, ignore_errors=True)
    pattern = _staging(out.name)
    try:
        entries = list(out.parent.iterdir())
    except OSError:
        return
    for entry in entries:
        if pattern.match(entry.name):
            if entry.is_dir() and not entry.is_symlink():
                shutil.rmtree(entry, ignore_errors=True)
            else:
                entry.unlink(missing_ok=True)


# ---------------------------------------------------------------- a folder


@contextmanager
def staged_dir(out: str | Path, *, kind: str | None = None) -> Iterator[Path]:
    """Yield an empty temporary folder beside ``out`` that replaces ``out`` when complete.

    Whatever is written inside the ``with`` block appears at ``out`` all at once on
    success; on any error (Ctrl-C included) the temporary folder is removed and ``out``
    keeps its previous contents. With ``kind``, the folder's ``manifest.json`` gets
    bayeskit's marker and the SHA-256 of every file (:func:`record_outputs`). A full
    disk or a file-size limit becomes a :class:`UserError` naming the errno.

    Examples
    --------
    >>> out = Path(tempfile.mkdtemp()) / "run"
    >>> with staged_dir(out) as tmp:
    ...     _ = (tmp / "a.txt").write_text("done")
    ...     out.exists()
    False
    >>> (out / "a.txt").read_text()
    'done'
    >>> with staged_dir(out) as tmp:
    ...     _ = (tmp / "b.txt").write_text("half")
    ...     raise ValueError("interrupted")
    Traceback (most recent call last):
    ...
    ValueError: interrupted
    >>> sorted(p.name for p in out.iterdir())  # the previous contents are kept
    ['a.txt']
    """
    out = Path(out)
    try:
        tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.", suffix=".tmp", dir=out.parent))
    except OSError as err:
        raise _write_error(out, err) from None
    try:
        yield tmp
        if kind is not None:
            record_outputs(tmp, kind)
        tmp.chmod(0o755)  # mkdtemp makes it private; outputs are for reading
        replace_dir(tmp, out)
    except BaseException as err:
        shutil.rmtree(tmp, ignore_errors=True)
        if isinstance(err, OSError) and err.errno in _WRITE_ERRNOS:
            raise _write_error(out, err) from None
        if isinstance(err, UserError) and str(tmp) in str(err):  # name what the user named
            raise UserError(str(err).replace(str(tmp), str(out))) from None
        raise


_WRITE_ERRNOS = {errno.ENOSPC, errno.EFBIG, errno.EDQUOT, errno.EROFS, errno.EACCES, errno.EIO}


@contextmanager
def writing_folder(
    out: str | Path, *, kind: str, force: bool, what: str = "--out"
) -> Iterator[Path]:
    r"""Claim ``out`` (:func:`claim`); yield a staging folder that replaces it (:func:`staged_dir`).

    Examples
    --------
    >>> out = Path(tempfile.mkdtemp()) / "teach"
    >>> with writing_folder(out, kind="teach", force=False) as tmp:
    ...     _ = (tmp / "pooling.csv").write_text("study\n")
    >>> folder_kind(out), sorted(p.name for p in out.iterdir())
    ('teach', ['manifest.json', 'pooling.csv'])
    """
    with claim(out, kind=kind, force=force, what=what) as out, staged_dir(out, kind=kind) as tmp:
        yield tmp


def _renameat2_exchange(a: Path, b: Path) -> bool:
    """Swap two paths atomically with Linux's renameat2(RENAME_EXCHANGE); False if unavailable."""
    # no Python API offers an atomic exchange of two directories; glibc >= 2.28 does
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        func = libc.renameat2
    except (OSError, AttributeError):
        return False
    at_fdcwd, rename_exchange = -100, 2
    func.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_int, ctypes.c_char_p, ctypes.c_uint]
    if func(at_fdcwd, os.fsencode(a), at_fdcwd, os.fsencode(b), rename_exchange) == 0:
        return True
    code = ctypes.get_errno()
    if code in (errno.EINVAL, errno.ENOSYS, errno.ENOTSUP):
        return False  # the file system cannot exchange: fall back to two renames
    raise OSError(code, os.strerror(code), str(b))


def replace_dir(new: Path, out: Path) -> None:
    """Move ``new`` to ``out``; an existing ``out`` is exchanged with it, then removed.

    On Linux the exchange is one atomic ``renameat2`` call. Elsewhere ``out`` is first
    renamed to ``.NAME.old``; a crash before the second rename leaves that folder, which
    :func:`recover` puts back on the next write.

    Examples
    --------
    >>> base = Path(tempfile.mkdtemp())
    >>> (base / "old").mkdir(); _ = (base / "old" / "a.txt").write_text("old")
    >>> (base / "new").mkdir(); _ = (base / "new" / "b.txt").write_text("new")
    >>> replace_dir(base / "new", base / "old")
    >>> sorted(p.name for p in base.iterdir()), [p.name for p in (base / "old").iterdir()]
    (['old'], ['b.txt'])
    """
    if not os.path.lexists(out):
        os.rename(new, out)
        return
    if _renameat2_exchange(new, out):
        shutil.rmtree(new, ignore_errors=True)  # now holds the previous contents
        return
    old = out.with_name(f".{out.name}.old")
    shutil.rmtree(old, ignore_errors=True)
    os.rename(out, old)
    try:
        os.rename(new, out)
    except BaseException:
        os.rename(old, out)  # put the previous results back
        raise
    shutil.rmtree(old, ignore_errors=True)
