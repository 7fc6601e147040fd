"""Many independent fits: one per spec file, or one per row of a manifest.

``bayeskit batch 'models/*.toml' --out runs/all`` fits every spec;
``bayeskit batch fits.csv --out runs/many`` fits every row of a manifest, a CSV with
columns

* ``name`` (required): the fit's folder name, letters, digits, ``.``, ``_`` and ``-``;
* ``spec`` (required): an analysis spec, relative to the manifest's folder;
* ``data`` (optional): evidence file(s) replacing the spec's, ``;``-separated;
* ``seed`` (optional): replaces the spec's seed;
* ``method`` (optional): ``auto`` (the default: exact where it applies), ``mcmc`` or
  ``exact``.

The fits run as tasks on ``dask.distributed`` (:mod:`bayeskit.parallel`). ``OUT`` gets
``fits/<name>/`` (a run directory like ``bayeskit fit``'s, written atomically),
``batch.csv`` (every fit's summary in one table) and ``manifest.json``. A fit whose run
directory holds the same task (spec, data and settings hashed) and every file its
manifest lists with the SHA-256 recorded there is skipped, so a batch that was killed
resumes where it stopped. Each task is deterministic given its seed
(fits without a seed get one derived from the batch seed and the fit's name), so the
cluster and a plain loop (``--scheduler none``) give identical numbers.
"""

from __future__ import annotations

import csv
import glob
import hashlib
import json
import re
import shutil
import sys
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from bayeskit.errors import UserError
from bayeskit.workflow import fit_spec  # noqa: F401  (moved there; imported from here before)

NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$")
MANIFEST_COLUMNS = ("name", "spec", "data", "seed", "method")
SUMMARY_COLUMNS = ("mean", "sd", "q2.5", "q50", "q97.5", "r_hat", "ess_bulk")


@dataclass
class Task:
    """One fit of a batch.

    Attributes
    ----------
    name : str
        The fit's folder name under ``fits/``.
    spec : str
        Path of the analysis spec.
    data : list of str
        Evidence files replacing the spec's (empty: the spec's own).
    seed : int, optional
        Replaces the spec's seed.
    method : str, optional
        ``auto``, ``mcmc`` or ``exact``, replacing the spec's.

    Examples
    --------
    >>> from bayeskit._resources import models_dir
    >>> task = Task("es", str(models_dir() / "eight_schools.toml"), seed=1)
    >>> task.method is None, len(task.key())
    (True, 64)
    """

    name: str
    spec: str
    data: list[str] = field(default_factory=list)
    seed: int | None = None
    method: str | None = None

    def key(self) -> str:
        """Hash of what the fit depends on: spec and data bytes, seed, method, bayeskit."""
        from bayeskit.spec import load_spec

        digest = hashlib.sha256()
        digest.update(json.dumps(asdict(self), sort_keys=True).encode())
        spec = load_spec(self.spec)
        files = [Path(p) for p in self.data] or spec.data_files()
        for path in [Path(self.spec), *files]:
            digest.update(path.read_bytes())
        digest.update(_bayeskit_version().encode())
        return digest.hexdigest()


def _bayeskit_version() -> str:
    import bayeskit

    return bayeskit.__version__


def read_tasks(source: str | Path, *, seed: int = 0) -> list[Task]:
    """Return the fits a batch runs: every spec matching a glob, or every manifest row.

    Parameters
    ----------
    source : str or Path
        A glob of spec files (``models/*.toml``), or a manifest ``.csv``.
    seed : int
        Batch seed: a fit with no seed of its own gets one derived from it and its name.

    Examples
    --------
    >>> from bayeskit._resources import models_dir
    >>> tasks = read_tasks(str(models_dir() / "*.toml"))
    >>> [t.name for t in tasks]
    ['eight_schools', 'oud_abstinence', 'ow_withdrawal', 'sud_abstinence']
    """
    source = str(source)
    if source.lower().endswith(".csv"):
        tasks = _read_manifest(Path(source))
    else:
        paths = sorted(glob.glob(source, recursive=True))
        if not paths:
            raise UserError(f"no spec files match {source!r}")
        tasks = [Task(name=Path(p).stem, spec=str(Path(p).resolve())) for p in paths]
    names = [t.name for t in tasks]
    dup = sorted({n for n in names if names.count(n) > 1})
    if dup:
        raise UserError(f"{source}: fit names must be unique; repeated: {', '.join(dup)}")
    for t in tasks:
        if t.seed is None:
            t.seed = int(
                np.random.SeedSequence([seed, *t.name.encode()]).generate_state(1)[0] % 2**31
            )
    return tasks


def _read_manifest(path: Path) -> list[Task]:
    if not path.is_file():
        raise UserError(f"{path}: no such manifest file")
    try:
        text = path.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError:
        raise UserError(f"{path}: not UTF-8 text") from None
    rows = list(csv.DictReader(text.splitlines()))
    if not rows:
        raise UserError(f"{path}: the manifest has no fits")
    columns = list(rows[0].keys())
    for col in ("name", "spec"):
        if col not in columns:
            raise UserError(f"{path}: missing column {col!r} (columns: {', '.join(columns)})")
    unknown = [c for c in columns if c not in MANIFEST_COLUMNS]
    if unknown:
        raise UserError(
            f"{path}: unknown column {unknown[0]!r}; allowed: {', '.join(MANIFEST_COLUMNS)}"
        )
    base = path.resolve().parent
    tasks = []
    for i, row in enumerate(rows, start=2):  # spreadsheet row: the header is row 1
        where = f"{path}, row {i}"
        name = (row.get("name") or "").strip()
        if not NAME.match(name):
            raise UserError(
                f"{where}, column name: {name!r} is not a folder name (letters, digits, "
                "'.', '_' and '-', at most 100, starting with a letter or digit)"
            )
        spec = (row.get("spec") or "").strip()
        if not spec:
            raise UserError(f"{where}, column spec: a spec file is required")
        spec_path = (base / spec).resolve()
        if not spec_path.is_file():
            raise UserError(f"{where}, column spec: no such file {spec}")
        data = [s.strip() for s in (row.get("data") or "").split(";") if s.strip()]
        data_paths = []
        for d in data:
            p = (base / d).resolve()
            if not p.is_file():
                raise UserError(f"{where}, column data: no such file {d}")
            data_paths.append(str(p))
        seed_text = (row.get("seed") or "").strip()
        seed = None
        if seed_text:
            if not re.fullmatch(r"\d{1,10}", seed_text) or int(seed_text) >= 2**31:
                raise UserError(
                    f"{where}, column seed: {seed_text!r} is not a whole number in [0, 2^31)"
                )
            seed = int(seed_text)
        method = (row.get("method") or "").strip().lower() or None
        if method not in (None, "auto", "mcmc", "exact"):
            raise UserError(f"{where}, column method: {method!r} is not auto, mcmc or exact")
        tasks.append(Task(name, str(spec_path), data_paths, seed, method))
    return tasks


def task_spec(task: Task):
    """Return a task's spec: its spec file with the task's data, seed and method.

    A spec that names no method takes ``auto``, as everywhere: the exact engine (same
    posterior, no sampling) where it applies, unless the task asks for ``mcmc``.

    Examples
    --------
    >>> from bayeskit._resources import models_dir
    >>> task = Task("es", str(models_dir() / "eight_schools.toml"), seed=1, method="exact")
    >>> the_spec = task_spec(task)
    >>> the_spec.sampler.method, the_spec.sampler.seed
    ('exact', 1)
    """
    from bayeskit.spec import load_spec, spec_from_dict

    loaded = load_spec(task.spec)
    raw = loaded.model_dump(mode="json", exclude={"base_dir"})
    if task.data:
        raw["data"]["files"] = list(task.data)
    raw["sampler"]["seed"] = task.seed
    if task.method:
        raw["sampler"]["method"] = task.method
    return spec_from_dict(raw, source=task.spec, base_dir=loaded.base_dir)


def run_task(task: dict, fits_dir: str, report: bool) -> dict:
    """Fit one task into ``fits_dir/<name>`` and return its summary rows (a Dask task).

    Examples
    --------
    >>> import tempfile
    >>> from dataclasses import asdict
    >>> from bayeskit._resources import models_dir
    >>> task = Task("es", str(models_dir() / "eight_schools.toml"), seed=1, method="exact")
    >>> done = run_task(asdict(task), tempfile.mkdtemp(), False)
    >>> done["status"], done["method"], done["rows"][0]["parameter"]
    ('done', 'exact', 'mu')
    """
    import time

    from bayeskit.fitting import quiet_pymc
    from bayeskit.rundir import write_run

    quiet_pymc()
    t = Task(**task)
    start = time.perf_counter()
    try:
        the_spec = task_spec(t)
        result, summary, tables = fit_spec(the_spec)
        write_run(
            result,
            Path(fits_dir) / t.name,
            spec=the_spec.to_toml_dict(),
            force=True,
            summary=summary,
            tables=tables,
            report=report,
            extra={"batch_task": t.key()},
        )
    except UserError as err:  # the user's mistake: recorded, not retried
        return {"name": t.name, "status": "error", "message": str(err), "rows": []}
    return {
        "name": t.name,
        "status": "done",
        "verdict": result.verdict,
        "method": result.method,
        "seconds": time.perf_counter() - start,
        "rows": _summary_columns(summary).to_dict(orient="records"),
    }


def finished(task: Task, fits_dir: Path) -> bool:
    r"""Whether ``fits_dir/<name>`` already holds this exact task's complete results.

    Examples
    --------
    >>> import tempfile
    >>> from dataclasses import asdict
    >>> from bayeskit._resources import models_dir
    >>> fits_dir = Path(tempfile.mkdtemp())
    >>> task = Task("es", str(models_dir() / "eight_schools.toml"), seed=1, method="exact")
    >>> finished(task, fits_dir)
    False
    >>> run_task(asdict(task), str(fits_dir), False)["status"]
    'done'
    >>> finished(task, fits_dir), finished(Task(**{**asdict(task), "seed": 2}), fits_dir)
    (True, False)
    >>> _ = (fits_dir / "es" / "summary.csv").write_text("parameter,mean\n")  # damaged
    >>> finished(task, fits_dir)
    False
    """
    from bayeskit.outputs import read_manifest, verify_outputs

    folder = fits_dir / task.name
    recorded = (read_manifest(folder) or {}).get("batch_task")
    # the manifest alone is not proof: every file it lists must be there, unchanged
    return recorded == task.key() and not verify_outputs(folder)


def batch(
    source: str | Path,
    out: str | Path,
    *,
    scheduler: str | None = "auto",
    workers: int | None = None,
    retries: int = 2,
    seed: int = 0,
    force: bool = False,
    report: bool = False,
    progress: bool = False,
) -> pd.DataFrame:
    """Run many fits and gather their summaries into one table.

    Parameters
    ----------
    source : str or Path
        A glob of spec files or a manifest CSV (see :func:`read_tasks`).
    out : str or Path
        The batch folder: ``fits/<name>/`` per fit, ``batch.csv``, ``manifest.json``.
    scheduler, workers, retries
        Where and how the fits run (:func:`bayeskit.parallel.run_tasks`; ``"auto"``, the
        default, runs a plain loop on two cores or for a few fits). The manifest records
        the choice and why (``scheduler``, ``scheduler_reason``).
    seed : int
        Seeds the fits that have no seed of their own.
    force : bool
        Refit everything (otherwise finished fits are kept and skipped). ``out`` must be
        a batch folder or new: a folder of another kind, or one holding files bayeskit
        did not write, is refused with or without ``force``; nothing is deleted.
    report : bool
        Also write each fit's HTML report and figures (slower).
    progress : bool

    Returns
    -------
    DataFrame
        One row per fit and parameter: ``name``, ``status``, ``parameter`` and the
        summary columns; fits that failed have ``status`` ``error`` and a ``message``.

    Examples
    --------
    >>> import bayeskit as bk, tempfile
    >>> from bayeskit._resources import models_dir
    >>> out = tempfile.mkdtemp()
    >>> table = bk.batch(str(models_dir() / "eight_schools.toml"), out, scheduler="none")
    >>> table.set_index("parameter").loc["mu", "mean"].round(0)
    np.float64(4.0)
    >>> sorted(p.name for p in (Path(out) / "fits" / "eight_schools").iterdir())
    ['data.csv', 'diagnostics.json', 'manifest.json', 'posterior.nc', 'small_study.csv',
     'summary.csv']
    """
    from bayeskit.outputs import claim

    tasks = read_tasks(source, seed=seed)
    with claim(out, kind="batch", force=force, resume=True) as out:
        return _run_batch(
            tasks,
            out,
            source=source,
            seed=seed,
            force=force,
            run_options={
                "scheduler": scheduler,
                "workers": workers,
                "retries": retries,
                "progress": progress,
            },
            report=report,
        )


def _run_batch(tasks, out: Path, *, source, seed, force, run_options, report) -> pd.DataFrame:
    """Fit the tasks not finished yet into ``out`` (claimed) and write ``batch.csv``."""
    from bayeskit import __version__
    from bayeskit.outputs import sha256, write_file, write_json
    from bayeskit.parallel import run_tasks
    from bayeskit.rundir import versions

    fits_dir = out / "fits"
    fits_dir.mkdir(parents=True, exist_ok=True)
    for stale in fits_dir.glob(".*.tmp"):  # staging folders of a killed run
        shutil.rmtree(stale, ignore_errors=True)
    record = {
        "bayeskit": {"kind": "batch", "version": __version__},
        "command": sys.argv,
        "source": str(source),
        "seed": seed,
        "versions": versions(),
        "fits": [asdict(t) for t in tasks],
    }
    write_json(out / "manifest.json", record)
    # --force refits everything; otherwise a fit whose files are intact is kept
    todo = [t for t in tasks if force or not finished(t, fits_dir)]
    results, where = {}, {}
    for i, result in run_tasks(
        run_task,
        [(asdict(t), str(fits_dir), report) for t in todo],
        label="fits",
        record=where,
        **run_options,
    ):
        results[todo[i].name] = result
    record |= where
    frames = []
    for t in tasks:
        res = results.get(t.name)
        if res is None:  # finished in an earlier run: read its summary back
            summary = pd.read_csv(fits_dir / t.name / "summary.csv", index_col=0)
            rows = _summary_columns(summary)
        elif res["status"] == "error":
            frames.append(pd.DataFrame([{"name": t.name, "status": "error", **res}]))
            continue
        else:
            rows = pd.DataFrame(res["rows"])
        frames.append(rows.assign(name=t.name, status="done")[["name", "status", *rows.columns]])
    table = pd.concat(frames, ignore_index=True).drop(columns=["rows"], errors="ignore")
    write_file(out / "batch.csv", table.to_csv(index=False, float_format="%.10g"))
    write_json(
        out / "manifest.json", record | {"outputs": {"batch.csv": sha256(out / "batch.csv")}}
    )
    return table


def _summary_columns(summary: pd.DataFrame) -> pd.DataFrame:
    """Return a summary as batch rows: ``parameter`` and the summary columns it has."""
    rows = summary.reset_index().rename(columns={summary.index.name or "index": "parameter"})
    return rows[["parameter", *[c for c in SUMMARY_COLUMNS if c in rows.columns]]]
