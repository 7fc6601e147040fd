"""The ``--force`` policy: which destinations may be written, and which never.

An existing destination is replaced only with ``--force``, and then only when it is a
regular file (single-file outputs) or a folder bayeskit wrote of the same kind, holding
no file bayeskit did not write (:func:`check_destination`). The root, the home folder,
the working folder and its ancestors, devices, pipes, sockets and symbolic links are
never replaced (:func:`check_path`).
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

from bayeskit.errors import UserError
from bayeskit.outputs.kinds import KINDS, MARKER, folder_kind, foreign_files

#: The longest name a destination may have, in bytes: file systems allow 255, and the
#: staging name beside it (``.NAME.xxxxxxxx.tmp``) needs 14 more.
MAX_NAME_BYTES = 240


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
    >>> import tempfile
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
    >>> import tempfile
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
