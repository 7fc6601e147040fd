"""Writing outputs safely: complete or not at all, and never over a file without consent."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from bayeskit.errors import UserError


def check_writable(path: str | Path, *, force: bool) -> Path:
    """Refuse to replace an existing output unless ``force`` is set.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> from bayeskit.outputs import check_writable
    >>> folder = pathlib.Path(tempfile.mkdtemp())
    >>> check_writable(folder / "es.csv", force=False).name
    'es.csv'
    >>> check_writable(folder, force=False)
    Traceback (most recent call last):
    ...
    bayeskit.errors.UserError: ... already exists; use --force to replace it
    """
    path = Path(path)
    if path.exists() and not force:
        raise UserError(f"{path} already exists; use --force to replace it")
    if not path.parent.exists():
        raise UserError(f"cannot write {path}: the folder {path.parent} does not exist")
    return path


def write_text_atomic(path: str | Path, text: str, *, force: bool = False) -> Path:
    r"""Write ``text`` to ``path`` through a temporary file in the same folder, then rename.

    A reader never sees a half-written file: the rename is atomic on POSIX file systems,
    and an interrupted write leaves only the temporary file, which is removed.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> p = pathlib.Path(tempfile.mkdtemp()) / "out.csv"
    >>> _ = write_text_atomic(p, "study,yi\\n")
    >>> p.read_text()
    'study,yi\\n'
    """
    path = check_writable(path, force=force)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(tmp, 0o644)  # mkstemp makes the file private; outputs are for reading
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path
