"""bayeskit's marker: which folders are bayeskit's, of what kind, and what they hold.

A folder is bayeskit's when its ``manifest.json`` carries ``"bayeskit": {"kind": ...}``
(one of :data:`KINDS`) and, under ``"outputs"``, the SHA-256 of every file it holds
(:func:`record_outputs`). :func:`folder_kind` and :func:`foreign_files` tell the
``--force`` policy (:mod:`bayeskit.outputs.paths`) what a destination is;
:func:`verify_outputs` checks a folder's files against their recorded hashes.
"""

from __future__ import annotations

import json
import os
import re
import stat
from datetime import UTC, datetime
from pathlib import Path

from bayeskit.outputs.files import _walk, sha256, write_json

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
        # written since: a run folder whose manifest lost its list of outputs may hold them
        "small_k.csv",
        "small_study.csv",
        "methods.md",
        "shapes.csv",
        "descriptive.csv",
        "described.csv",
        "robustness.csv",
        "headline.csv",
    },
    "sbc": {"ranks.csv", "summary.csv", "manifest.json", "report.md", "figures/sbc.png"},
    "sensitivity": {"sensitivity.csv", "sensitivity.png", "psense.csv"},
    "teach": {"pooling.csv", "shrinkage.png", "shrinkage.svg", "narrative.md"},
    "batch": {"manifest.json", "batch.csv"},
}
_FIGURE = re.compile(r"^figures/[A-Za-z0-9_.-]+\.(png|svg)$")


def file_hashes(folder: str | Path) -> dict[str, str]:
    """SHA-256 of every file under ``folder`` except its ``manifest.json``, by relative path.

    Examples
    --------
    >>> import tempfile
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
    >>> import tempfile
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
    >>> import tempfile
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
    >>> import tempfile
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
    >>> import tempfile
    >>> from bayeskit.outputs import staged_dir
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
    >>> import tempfile
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
