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
    """Return the folder holding the bundled evidence tables.

    Returns
    -------
    pathlib.Path
        ``data/`` of a checkout, or its copy inside an installed package.

    Examples
    --------
    >>> from bayeskit import data_dir
    >>> sorted(p.name for p in data_dir().glob("*.csv"))[:2]
    ['eight_schools.csv', 'harms.csv']
    """
    return _root("data")


def models_dir() -> Path:
    """Return the folder holding the bundled analysis specs.

    Returns
    -------
    pathlib.Path
        ``models/`` of a checkout, or its copy inside an installed package.

    Examples
    --------
    >>> from bayeskit import models_dir
    >>> (models_dir() / "eight_schools.toml").is_file()
    True
    """
    return _root("models")


def data_path(name: str) -> Path:
    """Return the path of a bundled data file, e.g. ``data_path("routes.csv")``.

    Parameters
    ----------
    name : str
        File name inside the bundled ``data/`` folder.

    Returns
    -------
    pathlib.Path

    Raises
    ------
    UserError
        When there is no such file; the message lists the bundled ones.

    Examples
    --------
    >>> from bayeskit import data_path
    >>> data_path("routes.csv").name
    'routes.csv'
    >>> data_path("nope.csv")
    Traceback (most recent call last):
    ...
    bayeskit.errors.UserError: no bundled data file 'nope.csv'; bundled files: ...
    """
    path = data_dir() / name
    if not path.is_file():
        from bayeskit.errors import UserError

        known = sorted(p.name for p in data_dir().glob("*.csv"))
        raise UserError(f"no bundled data file {name!r}; bundled files: {', '.join(known)}")
    return path
