"""Run directories: what ``bayeskit fit --out DIR`` leaves on disk.

``DIR`` holds ``summary.csv``, ``posterior.nc`` (the ArviZ DataTree, readable with
``arviz.from_netcdf`` and ``xarray.open_datatree``), ``diagnostics.json``,
``manifest.json`` (versions, seed, spec, data hashes) and ``data.csv`` (the data as the
model saw it). Everything is written into a temporary folder beside ``DIR`` and renamed
into place only when complete, so an interrupted run leaves the previous results intact;
``manifest.json`` records the SHA-256 of every other file (``outputs``) and marks the
folder as bayeskit's (``"bayeskit": {"kind": "run"}``). See :mod:`bayeskit.outputs`.
"""

from __future__ import annotations

import platform
import sys
import tempfile  # noqa: F401 (the examples use it)
from datetime import UTC, datetime
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

from bayeskit.outputs import (
    check_destination,
    netcdf_bytes,
    staged_dir,
    write_file,
    write_json,
    writing_folder,
)

__all__ = ["check_out_dir", "manifest", "staged_dir", "versions", "write_run"]

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


def check_out_dir(out: str | Path, *, force: bool, kind: str = "run") -> Path:
    """Refuse a run directory that may not be written (:func:`bayeskit.outputs.check_destination`).

    Examples
    --------
    >>> base = Path(tempfile.mkdtemp())
    >>> check_out_dir(base / "runs" / "first", force=False) == base / "runs" / "first"
    True
    >>> (base / "runs").is_dir()  # the parent folder is made
    True
    >>> (base / "runs" / "first").mkdir()
    >>> check_out_dir(base / "runs" / "first", force=False)
    Traceback (most recent call last):
    ...
    bayeskit.errors.UserError: --out ... already exists; use --force to replace it
    """
    return check_destination(out, kind=kind, force=force)


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
        The run directory to create (replaced only with ``force``, and only when it is a
        run directory holding nothing bayeskit did not write).
    spec : dict, optional
        The spec the fit came from, recorded in the manifest.
    summary : DataFrame, optional
        The summary to write (default ``fit.summary()``), e.g. with question rows added.
    tables : dict of DataFrame, optional
        Further tables to write as ``<name>.csv`` (questions, borrowing, ...). A fit of
        five studies or fewer also gets ``small_k.csv``
        (:func:`bayeskit.smallk.small_k_table`); a normal-normal fit of three studies or
        more ``small_study.csv``, the funnel plot's small-study check
        (:func:`bayeskit.smallstudy.small_study_table`); a ``normal-selection`` fit
        ``publication_bias.csv`` (:func:`bayeskit.pubbias.run_table`).
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
    ['data.csv', 'diagnostics.json', 'manifest.json', 'posterior.nc', 'small_study.csv',
     'summary.csv']
    >>> import json
    >>> record = json.loads((out / "manifest.json").read_text())
    >>> record["bayeskit"]["kind"], sorted(record["outputs"])[:2]
    ('run', ['data.csv', 'diagnostics.json'])
    """
    from bayeskit.diagnostics import to_json
    from bayeskit.smallk import small_k_table

    tables = dict(tables or {})
    if "small_study" not in tables:  # normal-normal: the funnel plot's small-study check
        from bayeskit.smallstudy import small_study_table

        small_study = small_study_table(fit)
        if small_study is not None:
            tables["small_study"] = small_study
    if "publication_bias" not in tables:  # a selection model: beside PET, PEESE, unadjusted
        from bayeskit.pubbias import run_table

        bias = run_table(fit)
        if bias is not None:
            tables["publication_bias"] = bias
    if "small_k" not in tables:  # five studies or fewer: how much the tau prior matters
        small = small_k_table(fit)
        if small is not None:
            tables["small_k"] = small.set_index("prior")
    with writing_folder(out, kind="run", force=force) as tmp:
        summary = fit.summary() if summary is None else summary
        write_file(tmp / "summary.csv", summary.to_csv(float_format="%.10g"))
        for name, table in tables.items():
            write_file(tmp / f"{name}.csv", table.to_csv(float_format="%.10g"))
        index = fit.data.table.index.name is not None
        write_file(tmp / "data.csv", fit.data.table.to_csv(index=index))
        write_file(tmp / "posterior.nc", netcdf_bytes(fit.idata))
        diag = (
            to_json(fit.checks)
            if fit.checks
            else {"verdict": "pass", "checks": [], "note": "exact engine: no sampling"}
        )
        write_json(tmp / "diagnostics.json", diag)
        hashes = fit.data.table.attrs.get("sha256", {})
        record = manifest(fit, spec=spec, data_hashes=hashes, command=command or sys.argv)
        write_json(tmp / "manifest.json", record | (extra or {}))
        if report:
            from bayeskit.report import build_report

            build_report(tmp)  # from the files just written, as `bayeskit report` would
    return Path(out)
