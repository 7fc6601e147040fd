"""Reports of a fit: one self-contained HTML page and one Markdown page per run directory.

:func:`build_report` reads a run directory written by ``bayeskit fit --out DIR`` (and
nothing else) and writes ``report.html``, ``report.md`` and ``figures/<name>.png`` /
``.svg``: a plain-language summary, the evidence table, forest plot, prior and
posterior densities, the exposure-response curve, posterior predictive check, rank
plots, diagnostics, PSIS-LOO, questions and the full summary, and the manifest that
makes the run reproducible.

Matplotlib, arviz-plots and Jinja2 are imported only when a report is built.
"""

from __future__ import annotations

from bayeskit.report.render import build_report
from bayeskit.report.run import Run, load_run

__all__ = ["Run", "build_report", "load_run"]
