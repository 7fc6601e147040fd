"""Writing a folder: staged beside its destination, then swapped into place whole.

:func:`staged_dir` yields a temporary folder ``.NAME.xxxxxxxx.tmp`` beside the
destination; on success it records bayeskit's marker (:func:`bayeskit.outputs.kinds.record_outputs`)
and replaces the destination (:func:`replace_dir`: one atomic ``renameat2`` exchange on
Linux, two renames elsewhere). :func:`recover` repairs what a killed replacement left.
"""

from __future__ import annotations

import ctypes
import errno
import os
import re
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from bayeskit.errors import UserError
from bayeskit.outputs.files import _write_error
from bayeskit.outputs.kinds import folder_kind, record_outputs


def _staging(name: str) -> re.Pattern:
    """Names of the temporary files and folders of a write of ``name``."""
    # mkstemp/mkdtemp add 8 characters from [a-z0-9_]
    return re.compile(rf"^\.{re.escape(name)}\.[a-z0-9_]{{8}}\.tmp$")


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
