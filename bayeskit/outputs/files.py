"""Writing one file: complete or not at all; JSON, netCDF bytes and SHA-256 hashes.

:func:`write_file` writes through a temporary file beside the destination and a rename,
so a reader never sees half a file; :func:`write_json` and :func:`jsonable` turn results
into JSON; :func:`sha256` is the hash recorded in a folder's manifest.
"""

from __future__ import annotations

import errno
import hashlib
import io
import json
import math
import os
import tempfile
from pathlib import Path
from typing import Any

from bayeskit.errors import UserError


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
    import contextlib
    import sys

    buffer = io.BytesIO()
    # inside a Dask worker xarray would take a cluster-wide lock named after the target,
    # which a BytesIO cannot name; the tree is in memory, so no scheduler is involved.
    # Outside Dask (dask not imported) there is nothing to switch off.
    dask = sys.modules.get("dask")
    synchronous = dask.config.set(scheduler="synchronous") if dask else contextlib.nullcontext()
    with synchronous:
        tree.to_netcdf(buffer, engine="h5netcdf")
    return buffer.getvalue()


def _write_error(path: Path, err: OSError) -> UserError:
    code = errno.errorcode.get(err.errno or 0, "")
    why = err.strerror or str(err)
    return UserError(f"cannot write {path}: {why}" + (f" ({code})" if code else ""))


# ---------------------------------------------------------------- hashes


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
