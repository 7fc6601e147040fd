"""Writing outputs safely: complete or not at all, and never over what bayeskit did not write.

Every file and folder bayeskit writes goes through this package:

* :func:`write_file` writes one file through a temporary file beside it and a rename
  (:mod:`bayeskit.outputs.files`, with :func:`write_json`, :func:`jsonable` and
  :func:`sha256`);
* :func:`staged_dir` writes a folder in a temporary folder beside it and swaps it into
  place (:mod:`bayeskit.outputs.staging`), recording in its ``manifest.json`` bayeskit's
  marker (``"bayeskit": {"kind": ...}``) and the SHA-256 of every file it holds
  (``"outputs"``; :mod:`bayeskit.outputs.kinds`);
* :func:`claim` takes an exclusive claim on a destination (a lock file ``.NAME.lock``
  beside it, created with ``O_EXCL``; :mod:`bayeskit.outputs.lock`), puts back a folder
  left aside by a crash, removes staging leftovers of a killed writer and applies the
  ``--force`` policy of :func:`check_destination` (:mod:`bayeskit.outputs.paths`).

The ``--force`` policy: an existing destination is replaced only with ``--force``, and
then only when it is a regular file (single-file outputs) or a folder bayeskit wrote of
the same kind, holding no file bayeskit did not write. The root, the home folder, the
working folder and its ancestors, devices, pipes, sockets and symbolic links are never
replaced.
"""

from bayeskit.outputs.files import (
    jsonable,
    netcdf_bytes,
    sha256,
    write_file,
    write_json,
)
from bayeskit.outputs.kinds import (
    KINDS,
    MARKER,
    file_hashes,
    folder_kind,
    foreign_files,
    read_manifest,
    record_outputs,
    verify_outputs,
)
from bayeskit.outputs.lock import claim, writing_folder
from bayeskit.outputs.paths import MAX_NAME_BYTES, check_destination, check_path
from bayeskit.outputs.staging import recover, replace_dir, staged_dir

__all__ = [
    "KINDS",
    "MARKER",
    "MAX_NAME_BYTES",
    "check_destination",
    "check_path",
    "claim",
    "file_hashes",
    "folder_kind",
    "foreign_files",
    "jsonable",
    "netcdf_bytes",
    "read_manifest",
    "record_outputs",
    "recover",
    "replace_dir",
    "sha256",
    "staged_dir",
    "verify_outputs",
    "write_file",
    "write_json",
    "writing_folder",
]
