"""Fit, answer, draw and write: the ketamine page from the bundled specs."""

from __future__ import annotations

import datetime as dt
import time
from dataclasses import dataclass
from pathlib import Path

import bayeskit as bk

from . import figures
from .fits import Analyses, fit_all, load_specs
from .numbers import OudNumbers, OwNumbers, SudNumbers, oud_numbers, ow_numbers, sud_numbers
from .page import render


@dataclass
class Result:
    """What :func:`make_page` made, and the fits and numbers it made it from."""

    page: Path
    figures: list[Path]
    analyses: Analyses
    oud: OudNumbers
    ow: OwNumbers
    sud: SudNumbers


def draw_figures(o: OudNumbers, w: OwNumbers, s: SudNumbers, folder: Path) -> list[Path]:
    """Draw the three figures into ``folder``."""
    return [
        figures.oud_figure(o.fit, o.tab, o.q1, o.q3, str(o.spec.data.timepoint), folder),
        figures.ow_figure(w.fit, w.tab, w.spec, folder),
        figures.borrow_figure(s.borrow, o.fit, o.indication, s.anchor, folder),
    ]


def versions() -> dict[str, str]:
    """Return the versions the page names: bayeskit, PyMC, ArviZ."""
    import arviz
    import pymc

    return {"bayeskit": bk.__version__, "pymc": pymc.__version__, "arviz": arviz.__version__}


def make_page(out: str | Path, *, sampler: dict | None = None, robustness: bool = True) -> Result:
    """Fit the ketamine specs and write the page to ``out``, its figures beside it.

    Parameters
    ----------
    out : path
        The Markdown page; figures go to ``figures/`` in its folder.
    sampler : dict, optional
        Replaces keys of the specs' ``[sampler]`` tables (``draws``, ``tune``, ``chains``,
        ...): the tests use a few draws, the documentation the specs' own settings.
    robustness : bool
        Refit each spec under every alternative for the page's reviewer section (the
        slowest part: about 25 refits); without it that section says it was skipped.
    """
    start, started = time.perf_counter(), dt.datetime.now(dt.UTC)
    out = Path(out)
    analyses = fit_all(load_specs(sampler), robustness=robustness)
    o, w, s = oud_numbers(analyses), ow_numbers(analyses), sud_numbers(analyses)
    drawn = draw_figures(o, w, s, out.parent / "figures")
    text = render(analyses, o, w, s, started, time.perf_counter() - start, versions())
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(text, encoding="utf-8")
    print(f"wrote {out} in {time.perf_counter() - start:.0f} s")
    return Result(out, drawn, analyses, o, w, s)
