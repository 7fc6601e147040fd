"""Locate the curated data and analysis specs that ship with bayeskit.

In a wheel they are copied to ``bayeskit/_bundled/``; in a checkout (or an editable
install) they are the repository's top-level ``data/`` and ``models/`` folders.
"""

from __future__ import annotations

from pathlib import Path

_PACKAGE = Path(__file__).resolve().parent


def _root(kind: str) -> Path:
    bundled = _PACKAGE / "_bundled" / kind
    if bundled.is_dir():
        return bundled
    return _PACKAGE.parent / kind


def data_dir() -> Path:
    """Return the folder holding the bundled evidence tables."""
    return _root("data")


def models_dir() -> Path:
    """Return the folder holding the bundled analysis specs."""
    return _root("models")


def data_path(name: str) -> Path:
    """Return the path of a bundled data file, e.g. ``data_path("routes.csv")``."""
    path = data_dir() / name
    if not path.is_file():
        from bayeskit.errors import UserError

        known = sorted(p.name for p in data_dir().glob("*.csv"))
        raise UserError(f"no bundled data file {name!r}; bundled files: {', '.join(known)}")
    return path
