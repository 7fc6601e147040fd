"""Building the report: figures to PNG and SVG, then one HTML and one Markdown page.

The HTML page is self-contained (figures embedded as base64 PNG, styles inline, no
external fonts or scripts), so it can be mailed or archived as one file. Every text that
comes from data goes through Jinja2's autoescaping: a study called
``<script>alert(1)</script>`` is shown, never run. Each file is written to a temporary
file beside it and renamed into place (:func:`bayeskit.outputs.write_file`), so a report
rebuilt in place is never seen half written.
"""

from __future__ import annotations

import base64
import io
import os
import sys
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bayeskit.errors import UserError
from bayeskit.outputs import read_manifest, sha256, write_file, write_json
from bayeskit.report import figures as F
from bayeskit.report import forest, funnel
from bayeskit.report import heterogeneity as H
from bayeskit.report import robustness as R
from bayeskit.report import text as T
from bayeskit.report.described import DESCRIBED_CAPTION, described_figure
from bayeskit.report.methods import methods_text, priors_line
from bayeskit.report.run import Run, load_run

# the forest plot's caption lives beside the figure (bayeskit.report.forest)
_forest_caption = forest.forest_caption


#: The figures, in report order: name, title, function, caption (text or run -> text).
FIGURES: tuple[tuple[str, str, Callable, str | Callable[[Run], str]], ...] = (
    ("forest", "Forest plot", forest.forest_figure, forest.forest_caption),
    ("funnel", "Funnel plot", funnel.funnel_figure, funnel.funnel_caption),
    (
        "prior_posterior",
        "Prior and posterior",
        F.prior_posterior_figure,
        "Dashed: the prior; shaded: the posterior. Where the two look alike, the data said "
        "little about the parameter and the prior carries the result.",
    ),
    (
        "exposure_response",
        "Exposure-response",
        F.exposure_response_figure,
        "Posterior median and 95% band of the outcome against dose per session, one line "
        "per route (one session; bioavailability uncertainty included).",
    ),
    ("described", "Case reports beside the model", described_figure, DESCRIBED_CAPTION),
    (
        "ppc",
        "Posterior predictive check",
        F.ppc_figure,
        "Red diamonds: the observed data. Blue bars: the 50% and 95% intervals of data "
        "replicated from the fitted model. Observations far outside their bars are ones the "
        "model does not reproduce.",
    ),
    (
        "robustness",
        "Robustness",
        R.robustness_figure,
        "Each answer's estimate (dot) and 95% interval (line) as fitted and under each "
        "alternative assumption (one refit each). Green: the direction of the answer as "
        "fitted holds; red: it flips. Robust: green under every alternative.",
    ),
    (
        "rank",
        "Rank plots",
        F.rank_figure,
        "One line per chain: how far the distribution of its draws' ranks (among all "
        "chains) is from uniform. Lines that stay inside the grey band mean the chains "
        "sample the same distribution; a line leaving it marks a chain that disagrees.",
    ),
)

# Deterministic output: the same run gives byte-identical SVG files, and no hidden fonts
# are needed to view them (text is drawn as paths).
RC = {
    "svg.hashsalt": "bayeskit-report",
    "svg.fonttype": "path",
    "font.size": 9,
    "axes.spines.top": False,
    "axes.spines.right": False,
}
PNG_DPI = 110


@dataclass
class RenderedFigure:
    """A figure as written: its name, title, caption and the bytes of both formats.

    Examples
    --------
    >>> figure = RenderedFigure("forest", "Forest plot", "Each study.", b"PNG", b"<svg/>")
    >>> figure.png_base64
    'UE5H'
    """

    name: str
    title: str
    caption: str
    png: bytes
    svg: bytes

    @property
    def png_base64(self) -> str:
        """The PNG as base64, for a ``data:`` URI."""
        return base64.b64encode(self.png).decode("ascii")


def render_figures(run: Run, failed: list[tuple[str, str]] | None = None) -> list[RenderedFigure]:
    """Draw every figure the run has the data for, as PNG and SVG bytes.

    A figure that raises is left out with a ``RuntimeWarning``; ``failed``, when given,
    collects ``(title, reason)`` for each, for the report to say what is missing.

    Examples
    --------
    >>> import tempfile
    >>> import bayeskit as bk
    >>> from bayeskit.rundir import write_run
    >>> fit = bk.fit(bk.data_path("eight_schools.csv"), method="exact",
    ...              priors={"mu": "Normal(0, 5)", "tau": "HalfCauchy(5)"})
    >>> run = load_run(write_run(fit, Path(tempfile.mkdtemp()) / "run", report=False))
    >>> failed = []
    >>> figures = render_figures(run, failed)
    >>> [f.name for f in figures], figures[0].png[1:4], failed
    (['forest', 'funnel', 'prior_posterior'], b'PNG', [])
    """
    import matplotlib

    failed = [] if failed is None else failed
    out = []
    with matplotlib.rc_context(RC), warnings.catch_warnings():
        # A study name in a script the font lacks draws as boxes; that is no reason to
        # stop the report (and under `-W error` it would).
        warnings.filterwarnings("ignore", message="Glyph .* missing from", category=UserWarning)
        for name, title, draw, caption in FIGURES:
            fig = None
            try:
                fig = draw(run)
                if fig is None:
                    continue
                png, svg = io.BytesIO(), io.BytesIO()
                fig.savefig(png, format="png", dpi=PNG_DPI, metadata={"Software": None})
                fig.savefig(svg, format="svg", metadata={"Date": None, "Creator": None})
            except Exception as error:
                # `bayeskit fit` builds the report as it writes the run: one figure that
                # cannot be drawn must not throw away the fit. Say so, loudly, instead.
                reason = f"{type(error).__name__}: {error}"
                warnings.warn(
                    f"report: the {name} figure could not be drawn ({reason})",
                    RuntimeWarning,
                    stacklevel=2,
                )
                failed.append((title, reason))
                continue
            finally:
                if fig is not None:
                    _close(fig)
            words = caption(run) if callable(caption) else caption
            out.append(RenderedFigure(name, title, words, png.getvalue(), svg.getvalue()))
    return out


def _close(fig) -> None:
    # arviz-plots draws through pyplot, which keeps a reference to every figure it made
    pyplot = sys.modules.get("matplotlib.pyplot")
    if pyplot is not None:
        pyplot.close(fig)


def _environment():
    import jinja2

    return jinja2.Environment(
        loader=jinja2.PackageLoader("bayeskit.report", "templates"),
        # Escape everything in the HTML page; the Markdown page escapes with its own filter.
        autoescape=lambda name: bool(name) and name.endswith(".html.j2"),
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )


def markdown_escape(value: Any) -> str:
    r"""Escape text for a Markdown table cell or paragraph.

    Pipes would split a table cell and a raw ``<`` could open an HTML tag in renderers
    that allow inline HTML; newlines would end the row.

    Examples
    --------
    >>> markdown_escape("<script>a|b</script>")
    '&lt;script&gt;a\\|b&lt;/script&gt;'
    """
    s = "" if value is None else str(value)
    s = s.replace("\\", "\\\\").replace("|", "\\|").replace("<", "&lt;").replace(">", "&gt;")
    return " ".join(s.splitlines())


def markdown_fence(value: str, info: str = "") -> str:
    """Wrap text in a code fence longer than any run of backticks inside it.

    Examples
    --------
    >>> print(markdown_fence('{"a": 1}', "json"))
    ```json
    {"a": 1}
    ```
    """
    longest, run = 0, 0
    for ch in value:
        run = run + 1 if ch == "`" else 0
        longest = max(longest, run)
    fence = "`" * max(3, longest + 1)
    return f"{fence}{info}\n{value}\n{fence}"


def report_context(run: Run, rendered: list[RenderedFigure]) -> dict[str, Any]:
    """Everything the templates show, as strings, tables and figures.

    Examples
    --------
    >>> import tempfile
    >>> import bayeskit as bk
    >>> from bayeskit.rundir import write_run
    >>> fit = bk.fit(bk.data_path("eight_schools.csv"), method="exact",
    ...              priors={"mu": "Normal(0, 5)", "tau": "HalfCauchy(5)"})
    >>> run = load_run(write_run(fit, Path(tempfile.mkdtemp()) / "run", report=False))
    >>> context = report_context(run, rendered=[])
    >>> context["title"], context["subtitle"], context["verdict_label"]
    ('normal-normal analysis', 'normal-normal, exact', 'not applicable (exact)')
    """
    spec = run.spec
    subtitle = [run.family or "unknown family", run.method or "unknown method"]
    return {
        "title": run.name,
        "description": str(spec.get("description") or ""),
        "subtitle": ", ".join(subtitle),
        "headline": T.headline(run, table=run.headline is not None),
        "engine": T.engine_sentence(run),
        "small_k": T.small_k_table(run),
        "publication_bias": funnel.publication_bias_table(run),
        "publication_bias_note": funnel.publication_bias_note(run),
        "verdict": T.verdict_label(run)[0],
        "verdict_label": T.verdict_label(run)[1],
        "verdict_sentence": T.verdict_sentence(run),
        "evidence": T.evidence_table(run),
        "figures": {f.name: f for f in rendered},
        "diagnostics": T.diagnostics_table(run),
        "diagnostics_note": str(run.diagnostics.get("note") or ""),
        "loo": T.loo_tables(run),
        **_loo_words(run),
        "questions": T.questions_table(run),
        "headline_table": R.headline_table(run),
        "robustness": R.robustness_table(run),
        "borrowing": T.borrowing_table(run),
        "descriptive": T.descriptive_tables(run),
        "described": T.described_table(run),
        "summary": T.summary_table(run),
        "heterogeneity": H.heterogeneity_table(run),
        "heterogeneity_note": H.heterogeneity_note(run),
        "manifest": T.manifest_context(run),
        "methods": methods_text(run),
        "priors_line": priors_line(run),
    }


def _loo_words(run) -> dict[str, str]:
    """Return the LOO section's title and its sentence on what was left out (bayeskit.loo)."""
    from bayeskit.loo import LEAVE_ONE_STUDY_OUT, loo_kind, loo_note

    if run.tree is None or "log_likelihood" not in run.tree.children:
        return {"loo_title": "", "loo_note": "", "loo_unit": "observation"}
    kind, note = loo_kind(run.tree), loo_note(run.tree)
    if kind == LEAVE_ONE_STUDY_OUT:
        title = "Leave-one-study-out cross-validation (PSIS-LOO)"
        unit = "study"
        lead = "Each study left out in turn and predicted from the others"
    else:
        title = "Leave-one-out cross-validation, conditional on each study's effects (PSIS-LOO)"
        unit = "observation"
        lead = "Each observation left out given its study's own effects"
    return {"loo_title": title, "loo_note": f"{lead}: {note}." if note else "", "loo_unit": unit}


def build_report(run_dir: str | Path, *, out_dir: str | Path | None = None) -> dict[str, Path]:
    """Write an HTML and a Markdown report, with their figures, for a run directory.

    Only the files of the run directory are read, so every number and figure can be
    reproduced from the files beside it.

    Parameters
    ----------
    run_dir : path
        A run directory written by ``bayeskit fit --out``.
    out_dir : path, optional
        Where to write (default: ``run_dir``); created if needed.

    Returns
    -------
    dict of str to Path
        The written files, keyed by their path relative to ``out_dir``: ``report.html``,
        ``report.md``, ``methods.md`` (:mod:`bayeskit.report.methods`), and
        ``figures/<name>.png`` and ``figures/<name>.svg`` for each figure (``forest``,
        ``funnel``, ``prior_posterior``, ``exposure_response``, ``ppc``, ``rank``, as far
        as the run has what each needs).

    Raises
    ------
    UserError
        If ``run_dir`` is not a run directory, or the report is to be written into a
        read-only run directory (give ``out_dir`` then).

    Notes
    -----
    Rebuilt in place, the report's files get their new SHA-256 in the run's
    ``manifest.json`` (``outputs``), so that a batch still recognises the run as complete.

    Examples
    --------
    >>> import tempfile
    >>> from typer.testing import CliRunner
    >>> import bayeskit as bk
    >>> from bayeskit.cli import app
    >>> run = tempfile.mkdtemp() + "/run"
    >>> _ = CliRunner().invoke(app, ["fit", str(bk.models_dir() / "eight_schools.toml"),
    ...                               "--method", "exact", "--out", run, "--quiet"])
    >>> sorted(build_report(run))  # doctest: +NORMALIZE_WHITESPACE
    ['figures/forest.png', 'figures/forest.svg', 'figures/funnel.png',
     'figures/funnel.svg', 'figures/prior_posterior.png', 'figures/prior_posterior.svg',
     'methods.md', 'report.html', 'report.md']
    """
    run = load_run(run_dir)
    out = Path(out_dir) if out_dir is not None else run.path
    if out_dir is None and not _writable(out):
        raise UserError(
            f"{out} is read-only: the report cannot be rebuilt there; write it elsewhere "
            "with --out FOLDER (bayeskit report RUN --out FOLDER)"
        )
    out.mkdir(parents=True, exist_ok=True)
    failed: list[tuple[str, str]] = []
    rendered = render_figures(run, failed)
    written: dict[str, Path] = {}
    if rendered:
        (out / "figures").mkdir(exist_ok=True)
    for fig in rendered:
        for ext, data in (("png", fig.png), ("svg", fig.svg)):
            key = f"figures/{fig.name}.{ext}"
            written[key] = write_file(out / key, data)
    env = _environment()
    env.filters["md"] = markdown_escape
    env.filters["fence"] = markdown_fence
    context = report_context(run, rendered) | {"failed_figures": failed}
    for name in ("report.html", "report.md"):
        page = env.get_template(f"{name}.j2").render(**context)
        written[name] = write_file(out / name, page.encode("utf-8"))
    # the methods and results as a journal prints them, to paste into a manuscript
    page = context["methods"].markdown(run.name)
    written["methods.md"] = write_file(out / "methods.md", page.encode("utf-8"))
    if out_dir is None:
        _update_outputs(out, written)
    return written


def _writable(folder: Path) -> bool:
    # root may write anywhere; a folder with no write bits was still meant to be read-only
    return os.access(folder, os.W_OK | os.X_OK) and bool(folder.stat().st_mode & 0o222)


def _update_outputs(folder: Path, written: dict[str, Path]) -> None:
    """Record the new hashes of rebuilt report files in a finished run's manifest."""
    record = read_manifest(folder)
    if record is None or not isinstance(record.get("outputs"), dict):
        return  # a run being staged (hashed when complete) or one from an earlier release
    record["outputs"] |= {key: sha256(path) for key, path in written.items()}
    record["outputs"] = dict(sorted(record["outputs"].items()))
    write_json(folder / "manifest.json", record)
