"""Run directories: what ``bayeskit fit --out DIR`` leaves on disk.

``DIR`` holds ``summary.csv``, ``posterior.nc`` (the ArviZ DataTree, readable with
``arviz.from_netcdf`` and ``xarray.open_datatree``), ``diagnostics.json``,
``manifest.json`` (versions, seed, spec, data hashes) and ``data.csv`` (the data as the
model saw it). Everything is written into a temporary folder beside ``DIR`` and renamed
into place only when complete, so an interrupted run leaves the previous results intact.
"""

from __future__ import annotations

import json
import os
import platform
import shutil
import sys
import tempfile
from contextlib import contextmanager
from datetime import UTC, datetime
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

from bayeskit.errors import UserError

PACKAGES = (
    "bayeskit",
    "pymc",
    "pytensor",
    "nutpie",
    "arviz",
    "arviz-base",
    "arviz-stats",
    "arviz-plots",
    "xarray",
    "numpy",
    "scipy",
    "pandas",
    "pandera",
    "h5netcdf",
)


def versions() -> dict[str, str]:
    """Versions of Python and of the packages a result depends on.

    Examples
    --------
    >>> found = versions()
    >>> list(found)[:3], found["python"] == platform.python_version()
    (['python', 'bayeskit', 'pymc'], True)
    """
    out = {"python": platform.python_version()}
    for name in PACKAGES:
        try:
            out[name] = version(name)
        except PackageNotFoundError:
            out[name] = "not installed"
    return out


def check_out_dir(out: str | Path, *, force: bool) -> Path:
    """Refuse to replace an existing run directory without ``force``.

    Examples
    --------
    >>> base = Path(tempfile.mkdtemp())
    >>> check_out_dir(base / "runs" / "first", force=False) == base / "runs" / "first"
    True
    >>> (base / "runs").is_dir()  # the parent folder is made
    True
    >>> check_out_dir(base, force=False)
    Traceback (most recent call last):
    ...
    bayeskit.errors.UserError: ... already exists; use --force to replace it
    """
    out = Path(out)
    if out.exists() and not force:
        raise UserError(f"{out} already exists; use --force to replace it")
    if out.exists() and not out.is_dir():
        raise UserError(f"{out} exists and is not a folder")
    if not out.parent.exists():
        try:  # `--out runs/NAME` on a fresh checkout: make runs/
            out.parent.mkdir(parents=True)
        except OSError as err:
            raise UserError(f"cannot create the folder {out.parent}: {err.strerror}") from None
    return out


def manifest(fit, *, spec: dict | None, data_hashes: dict[str, str], command: list[str]) -> dict:
    """Return the record that makes a run reproducible.

    Examples
    --------
    >>> import bayeskit as bk
    >>> fit = bk.fit(bk.data_path("eight_schools.csv"), method="exact",
    ...              priors={"mu": "Normal(0, 5)", "tau": "HalfCauchy(5)"})
    >>> record = manifest(fit, spec=None, data_hashes={}, command=["bayeskit", "fit"])
    >>> record["family"], record["method"], record["priors"]["mu"]
    ('normal-normal', 'exact', 'Normal(mu=0, sigma=5)')
    """
    return {
        "created": datetime.now(UTC).isoformat(timespec="seconds"),
        "command": command,
        "versions": versions(),
        "platform": platform.platform(),
        "seed": fit.settings.get("seed"),
        "family": fit.family,
        "method": fit.method,
        "settings": fit.settings,
        "priors": {k: str(v) for k, v in fit.priors.items()},
        "spec": spec,
        "data": data_hashes,
    }


def write_run(
    fit,
    out: str | Path,
    *,
    spec: dict | None = None,
    force: bool = False,
    command: list[str] | None = None,
    summary=None,
    tables: dict | None = None,
    report: bool = True,
    extra: dict | None = None,
) -> Path:
    """Write a fit's run directory atomically.

    Parameters
    ----------
    fit : Fit
    out : path
        The run directory to create (replaced only with ``force``).
    spec : dict, optional
        The spec the fit came from, recorded in the manifest.
    summary : DataFrame, optional
        The summary to write (default ``fit.summary()``), e.g. with question rows added.
    tables : dict of DataFrame, optional
        Further tables to write as ``<name>.csv`` (questions, borrowing, ...).
    report : bool
        Also write ``report.html``, ``report.md`` and ``figures/`` (default True).
    extra : dict, optional
        Further entries for ``manifest.json`` (a batch records its task key there).

    Returns
    -------
    Path
        The run directory.

    Examples
    --------
    >>> import bayeskit as bk
    >>> fit = bk.fit(bk.data_path("eight_schools.csv"), method="exact",
    ...              priors={"mu": "Normal(0, 5)", "tau": "HalfCauchy(5)"})
    >>> out = write_run(fit, Path(tempfile.mkdtemp()) / "run", report=False)
    >>> sorted(p.name for p in out.iterdir())
    ['data.csv', 'diagnostics.json', 'manifest.json', 'posterior.nc', 'summary.csv']
    """
    from bayeskit.diagnostics import to_json

    out = check_out_dir(out, force=force)
    with staged_dir(out) as tmp:
        summary = fit.summary() if summary is None else summary
        summary.to_csv(tmp / "summary.csv", float_format="%.10g")
        for name, table in (tables or {}).items():
            table.to_csv(tmp / f"{name}.csv", float_format="%.10g")
        fit.data.table.to_csv(tmp / "data.csv", index=fit.data.table.index.name is not None)
        fit.idata.to_netcdf(tmp / "posterior.nc", engine="h5netcdf")
        diag = (
            to_json(fit.checks)
            if fit.checks
            else {"verdict": "pass", "checks": [], "note": "exact engine: no sampling"}
        )
        _write_json(tmp / "diagnostics.json", diag)
        hashes = fit.data.table.attrs.get("sha256", {})
        record = manifest(fit, spec=spec, data_hashes=hashes, command=command or sys.argv)
        _write_json(tmp / "manifest.json", record | (extra or {}))
        if report:
            from bayeskit.report import build_report

            build_report(tmp)  # from the files just written, as `bayeskit report` would
    return out


@contextmanager
def staged_dir(out: Path):
    """Yield an empty temporary folder beside ``out`` that replaces ``out`` when complete.

    Whatever is written inside the ``with`` block appears at ``out`` all at once on
    success; on any error (Ctrl-C included) the temporary folder is removed and ``out``
    keeps its previous contents.

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
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.", suffix=".tmp", dir=out.parent))
    try:
        yield tmp
        tmp.chmod(0o755)  # mkdtemp makes it private; outputs are for reading
        replace_dir(tmp, out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def _write_json(path: Path, data: dict) -> None:
    path.write_text(
        json.dumps(data, indent=2, sort_keys=False, default=_jsonable) + "\n", encoding="utf-8"
    )


def _jsonable(value):
    if hasattr(value, "item"):
        return value.item()
    return str(value)


def replace_dir(new: Path, out: Path) -> None:
    """Move ``new`` to ``out``; an existing ``out`` is swapped out first and removed after.

    Examples
    --------
    >>> base = Path(tempfile.mkdtemp())
    >>> (base / "old").mkdir(); _ = (base / "old" / "a.txt").write_text("old")
    >>> (base / "new").mkdir(); _ = (base / "new" / "b.txt").write_text("new")
    >>> replace_dir(base / "new", base / "old")
    >>> sorted(p.name for p in base.iterdir()), [p.name for p in (base / "old").iterdir()]
    (['old'], ['b.txt'])
    """
    if not out.exists():
        os.replace(new, out)
        return
    old = out.with_name(f".{out.name}.old")
    shutil.rmtree(old, ignore_errors=True)
    os.replace(out, old)
    try:
        os.replace(new, out)
    except BaseException:
        os.replace(old, out)  # put the previous results back
        raise
    shutil.rmtree(old, ignore_errors=True)
