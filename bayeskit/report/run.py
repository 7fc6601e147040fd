"""Reading a run directory back: the files ``bayeskit fit --out DIR`` wrote, and nothing else.

A report is built from these files alone, so that every number and figure in it can be
reproduced from the folder it sits in, long after the Python session that fitted the
model has gone.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from bayeskit.errors import UserError
from bayeskit.measures import MEASURE_LABELS, MEASURES, RATIO_MEASURES  # one table of names

#: Files without which there is nothing to report.
REQUIRED = ("summary.csv", "manifest.json")


def _read_csv(path: Path, **kwargs: Any) -> pd.DataFrame:
    # Only empty cells are missing: a study called "NA" or "None" keeps its name.
    return pd.read_csv(path, keep_default_na=False, na_values=[""], **kwargs)


@dataclass
class Run:
    """The contents of a run directory.

    Attributes
    ----------
    path : Path
    summary : DataFrame
        ``summary.csv``, indexed by ``parameter``.
    manifest, diagnostics : dict
    data : DataFrame or None
        ``data.csv``: the data as the model saw it.
    tree : xarray.DataTree or None
        ``posterior.nc``, loaded into memory (the file is closed again).
    questions, borrowing, small_k, descriptive : DataFrame or None
        ``small_k.csv``: the fit under alternative tau priors, for five studies or fewer
        (:mod:`bayeskit.smallk`).
    headline, robustness : DataFrame or None
        ``headline.csv`` and ``robustness.csv`` (:mod:`bayeskit.robustness`).

    Examples
    --------
    >>> run = Run(Path("."), pd.DataFrame(), {"family": "normal-normal", "method": "exact"})
    >>> run.family, run.method, run.data is None
    ('normal-normal', 'exact', True)
    """

    path: Path
    summary: pd.DataFrame
    manifest: dict
    diagnostics: dict = field(default_factory=dict)
    data: pd.DataFrame | None = None
    tree: Any = None
    questions: pd.DataFrame | None = None
    borrowing: pd.DataFrame | None = None
    small_k: pd.DataFrame | None = None
    descriptive: pd.DataFrame | None = None
    described: pd.DataFrame | None = None
    headline: pd.DataFrame | None = None
    robustness: pd.DataFrame | None = None

    @property
    def family(self) -> str:
        """The model family (``normal-normal``, ``exposure-response``, ...)."""
        return str(self.manifest.get("family") or "")

    @property
    def model_family(self):
        """The :class:`~bayeskit.families.Family` of the run, or None when unknown."""
        from bayeskit.errors import UserError
        from bayeskit.families import get_family

        try:
            return get_family(self.family) if self.family else None
        except UserError:  # a run of a family this version does not have
            return None

    @property
    def method(self) -> str:
        """``mcmc`` or ``exact``."""
        return str(self.manifest.get("method") or "")

    @property
    def settings(self) -> dict:
        """The fit's settings as recorded in the manifest."""
        return dict(self.manifest.get("settings") or {})

    @property
    def spec(self) -> dict:
        """The analysis spec recorded in the manifest (empty when there was none)."""
        return dict(self.manifest.get("spec") or {})

    @property
    def name(self) -> str:
        """The analysis name: the spec's, else one made from the family."""
        # not the folder's name: `bayeskit fit` builds the report in a temporary folder
        return str(self.spec.get("name") or f"{self.family or 'bayeskit'} analysis")

    def group(self, name: str):
        """Return a DataTree group as a Dataset, or None when the run has no such group."""
        if self.tree is None or name not in self.tree.children:
            return None
        ds = self.tree[name].to_dataset()
        return ds if ds.data_vars else None

    @property
    def measure(self) -> str | None:
        """The effect measure on which ``mu`` and ``theta`` live, or None when unknown."""
        family = self.model_family
        fixed = family.measure(self.settings) if family is not None else None
        if fixed is not None:  # the family's own scale (binomial-normal: OR, ...)
            return fixed
        if self.data is not None and "measure" in self.data:
            codes = self.data["measure"].dropna().astype(str).str.upper().unique()
            if len(codes) == 1:
                return str(codes[0])
        code = (self.spec.get("data") or {}).get("measure")
        if code:
            return str(code).upper()
        for code, m in MEASURES.items():
            if m.ratio_parameter and m.ratio_parameter in self.summary.index:
                return code
        return None

    @property
    def measure_label(self) -> str:
        """The measure's scale in words (``"log odds ratio"``), or ``"effect"``."""
        return MEASURE_LABELS.get(self.measure or "", "effect")

    @property
    def ratio(self) -> str | None:
        """``"odds ratio"`` or ``"risk ratio"`` when effects are reported on a ratio scale."""
        return RATIO_MEASURES.get(self.measure or "")

    def draws(self, name: str, group: str = "posterior") -> np.ndarray | None:
        """All draws of a scalar variable, flattened; None when absent."""
        ds = self.group(group)
        if ds is None or name not in ds or ds[name].ndim != 2:
            return None
        return np.asarray(ds[name].values, dtype=float).ravel()


def load_run(run_dir: str | Path) -> Run:
    """Read a run directory.

    Parameters
    ----------
    run_dir : path
        A folder written by ``bayeskit fit --out``.

    Returns
    -------
    Run

    Raises
    ------
    UserError
        If the folder does not exist or lacks ``summary.csv`` or ``manifest.json``.

    Examples
    --------
    >>> import tempfile
    >>> import bayeskit as bk
    >>> from bayeskit.rundir import write_run
    >>> fit = bk.fit(bk.data_path("eight_schools.csv"), method="exact",
    ...              priors={"mu": "Normal(0, 5)", "tau": "HalfCauchy(5)"})
    >>> run = load_run(write_run(fit, Path(tempfile.mkdtemp()) / "run", report=False))
    >>> run.method, run.summary.index[:2].tolist(), run.data.shape
    ('exact', ['mu', 'tau'], (8, 19))
    >>> load_run(tempfile.mkdtemp())
    Traceback (most recent call last):
    ...
    bayeskit.errors.UserError: ... is not a complete run directory: summary.csv, ... missing ...
    """
    path = Path(run_dir)
    if not path.is_dir():
        raise UserError(f"{path} is not a folder: give the run directory of `bayeskit fit --out`")
    missing = [name for name in REQUIRED if not (path / name).is_file()]
    if missing:
        raise UserError(
            f"{path} is not a complete run directory: {', '.join(missing)} missing "
            "(rerun `bayeskit fit --out`)"
        )
    try:
        summary = _read_csv(path / "summary.csv", index_col=0, dtype={0: str})
    except (ValueError, UnicodeDecodeError, pd.errors.ParserError) as err:
        raise UserError(f"{path / 'summary.csv'} cannot be read ({err}): rerun the fit") from None
    summary.index = summary.index.astype(str)
    summary.index.name = "parameter"
    run = Run(path=path, summary=summary, manifest=read_json_object(path / "manifest.json"))
    if (path / "diagnostics.json").is_file():
        run.diagnostics = read_json_object(path / "diagnostics.json")
    if (path / "data.csv").is_file():
        run.data = _read_csv(path / "data.csv", dtype={"study": str, "arm": str})
    if (path / "posterior.nc").is_file():
        run.tree = read_posterior(path / "posterior.nc")
    if (path / "questions.csv").is_file():
        run.questions = _read_csv(path / "questions.csv", dtype={"question": str})
    if (path / "borrowing.csv").is_file():
        run.borrowing = _read_csv(path / "borrowing.csv")
    if (path / "small_k.csv").is_file():
        run.small_k = _read_csv(path / "small_k.csv")
    if (path / "described.csv").is_file():
        run.described = _read_csv(path / "described.csv", dtype={"study": str})
    if (path / "descriptive.csv").is_file():
        run.descriptive = _read_csv(path / "descriptive.csv", dtype={"study": str})
    if (path / "headline.csv").is_file():
        run.headline = _read_csv(path / "headline.csv", dtype={"answer": str, "question": str})
    if (path / "robustness.csv").is_file():
        run.robustness = _read_csv(path / "robustness.csv", dtype={"question": str})
    return run


def read_json_object(path: Path) -> dict:
    """Return the JSON object in a file of a run directory; a damaged file is a UserError.

    Examples
    --------
    >>> import tempfile
    >>> path = Path(tempfile.mkdtemp()) / "manifest.json"
    >>> _ = path.write_text('{"seed": 1')  # cut short
    >>> read_json_object(path)
    Traceback (most recent call last):
    ...
    bayeskit.errors.UserError: ...manifest.json is not valid JSON (line 1, column 11): ...
    """
    try:
        found = json.loads(path.read_text(encoding="utf-8"))
    except UnicodeDecodeError:
        raise UserError(f"{path} is not UTF-8 text: rerun the fit to rewrite it") from None
    except json.JSONDecodeError as err:
        raise UserError(
            f"{path} is not valid JSON (line {err.lineno}, column {err.colno}): "
            "rerun the fit to rewrite it"
        ) from None
    except OSError as err:
        raise UserError(f"{path} cannot be read: {err.strerror}") from None
    if not isinstance(found, dict):
        raise UserError(f"{path} does not hold a JSON object: rerun the fit to rewrite it")
    return found


def read_posterior(path: Path):
    r"""Load ``posterior.nc`` into memory and close it; a damaged file is the user's to fix.

    Examples
    --------
    >>> import tempfile
    >>> path = Path(tempfile.mkdtemp()) / "posterior.nc"
    >>> _ = path.write_bytes(b"\x89HDF\r\n")  # a truncated file
    >>> read_posterior(path)
    Traceback (most recent call last):
    ...
    bayeskit.errors.UserError: ...posterior.nc cannot be read as netCDF (...): rerun the fit ...
    """
    import xarray as xr

    try:
        tree = xr.open_datatree(path, engine="h5netcdf")
        try:
            return tree.load()
        finally:
            tree.close()  # so that a rebuild in place can replace the folder
    except (OSError, ValueError, RuntimeError, KeyError) as err:
        reason = str(err).splitlines()[0][:200] if str(err) else type(err).__name__
        raise UserError(
            f"{path} cannot be read as netCDF ({reason}): rerun the fit to rewrite it"
        ) from None
