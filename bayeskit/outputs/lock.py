"""The claim on a destination: one writer at a time, and a dead writer's lock taken over.

The claim is a lock file ``.NAME.lock`` beside the destination, created with ``O_EXCL``
and held with ``flock``, so that the kernel releases it when its process dies however it
dies. :func:`writing_folder` claims a folder and stages its new contents.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import socket
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bayeskit.errors import UserError
from bayeskit.outputs.paths import check_destination
from bayeskit.outputs.staging import recover, staged_dir

_HELD: dict[str, int] = {}  # destinations this process has claimed: path -> depth


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
    >>> import tempfile
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


@contextmanager
def writing_folder(
    out: str | Path, *, kind: str, force: bool, what: str = "--out"
) -> Iterator[Path]:
    r"""Claim ``out`` (:func:`claim`); yield a staging folder that replaces it (:func:`staged_dir`).

    Examples
    --------
    >>> import tempfile
    >>> from bayeskit.outputs import folder_kind
    >>> out = Path(tempfile.mkdtemp()) / "teach"
    >>> with writing_folder(out, kind="teach", force=False) as tmp:
    ...     _ = (tmp / "pooling.csv").write_text("study\n")
    >>> folder_kind(out), sorted(p.name for p in out.iterdir())
    ('teach', ['manifest.json', 'pooling.csv'])
    """
    with claim(out, kind=kind, force=force, what=what) as out, staged_dir(out, kind=kind) as tmp:
        yield tmp
