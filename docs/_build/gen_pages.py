"""Pages made while the site builds (run by the mkdocs-gen-files plugin).

* ``reference/cli.md``: the command-line reference, walked from the Typer app
  ``bayeskit.cli:app``, so a new command or option appears without editing anything;
* ``priors/*.png``: the heterogeneity priors drawn from ``bayeskit.priors`` (the table
  of them is filled in by ``hooks.py``);
* ``tutorials/<name>.md``: each tutorial script (``docs/tutorials/*.py``, jupytext
  "percent" format) as a page: its Markdown cells as text, its code cells as code that
  markdown-exec runs while the site builds, with the output and figures below each;
* ``javascripts/mathjax/``: MathJax, copied from the ``django-static-mathjax`` package,
  so that the site renders its maths offline (no CDN);
* ``reference/data.md`` and ``reference/specs.md``: ``data/README.md`` and
  ``models/README.md`` with the bundled specs, so the site is complete without the
  repository beside it.

Everything is drawn from the installed package at build time; nothing here is committed
as output.
"""

from __future__ import annotations

import io
import re
import sys
from pathlib import Path

import mkdocs_gen_files

ROOT = Path(__file__).resolve().parents[2]
DOCS = ROOT / "docs"
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from links import outside_link, relative  # noqa: E402

# --------------------------------------------------------------------------- CLI


def _cli_page() -> str:
    import typer.main

    from bayeskit.cli import app

    root = typer.main.get_command(app)
    ctx = root.make_context("bayeskit", [], resilient_parsing=True)
    out = [
        "# Command line",
        "",
        "Generated from the Typer application `bayeskit.cli:app` each time the site is "
        "built, so it lists every command and option of the installed version. "
        "`bayeskit COMMAND --help` prints the same text in a terminal.",
        "",
        "Exit codes: `0` success; `1` a fit finished but failed its diagnostics (with "
        "`--strict`); `2` a user error (bad file, bad option), reported as a message "
        "without a traceback.",
        "",
    ]
    out += _command(root, ctx, "bayeskit", level=2, is_root=True)
    return "\n".join(out) + "\n"


def _command(cmd, ctx, path: str, *, level: int, is_root: bool = False) -> list[str]:
    import typer

    lines = [] if is_root else ["#" * level + f" `{path}`", ""]
    if cmd.help:
        lines += [_plain(cmd.help), ""]
    usage = " ".join(cmd.collect_usage_pieces(ctx))
    lines += ["```console", f"$ {path} {usage}".rstrip(), "```", ""]
    args, opts = [], []
    for param in cmd.get_params(ctx):
        record = param.get_help_record(ctx)
        if record is None or param.name == "help":
            continue
        (args if param.param_type_name == "argument" else opts).append(record)
    for title, rows in (("Arguments", args), ("Options", opts)):
        if rows:
            lines += [f"**{title}**", "", "| name | description |", "| --- | --- |"]
            lines += [f"| `{_cell(name)}` | {_cell(_plain(text))} |" for name, text in rows]
            lines.append("")
    if cmd.epilog:
        examples = [e.strip() for e in re.sub(r"^Example:\s*", "", cmd.epilog).split("  |  ")]
        lines += ["Example:" if len(examples) == 1 else "Examples:", "", "```sh"]
        lines += examples + ["```", ""]
    if hasattr(cmd, "list_commands"):
        for name in cmd.list_commands(ctx):
            sub = cmd.get_command(ctx, name)
            if sub is None or getattr(sub, "hidden", False):
                continue
            sub_ctx = typer.Context(sub, info_name=name, parent=ctx, resilient_parsing=True)
            lines += _command(sub, sub_ctx, f"{path} {name}", level=level + (not is_root))
    return lines


def _plain(text: str) -> str:
    """Help text without Rich markup, paragraphs kept."""
    text = re.sub(r"\[/?(bold|italic|dim|red|green|yellow|blue|cyan|magenta)\]", "", text)
    return re.sub(r"\n(?!\n)", " ", text.strip()).replace("\n\n", "<br>")


def _cell(text: str) -> str:
    return text.replace("|", "\\|")


# --------------------------------------------------------------------------- priors

TAU = "\u03c4"


def _prior_figures() -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    from bayeskit.priors import (
        TURNER_COMPARISONS,
        TURNER_OUTCOMES,
        heterogeneity_prior,
        parse_prior,
    )

    grid = np.linspace(0.0005, 2.0, 800)

    def save(fig, name: str) -> None:
        buf = io.BytesIO()
        fig.tight_layout()
        fig.savefig(buf, format="png", dpi=90)
        plt.close(fig)
        with mkdocs_gen_files.open(f"priors/{name}.png", "wb") as f:
            f.write(buf.getvalue())

    def density(ax, prior, label, **style):
        ax.plot(grid, np.exp(prior.logpdf(grid)), label=label, **style)

    def finish(ax, title):
        ax.set_xlabel(f"between-study SD {TAU} (log odds ratio scale)")
        ax.set_ylabel("prior density")
        ax.set_xlim(0, 2)
        ax.set_ylim(bottom=0)
        for x, what in ((0.5, "fairly high"), (1.0, "fairly extreme")):
            ax.axvline(x, color="#999999", lw=0.8, ls=":")
            ax.text(x + 0.02, ax.get_ylim()[1] * 0.95, what, fontsize=7, color="#666666")
        ax.set_title(title, fontsize=10)
        ax.legend(fontsize=7, frameon=False)

    fig, ax = plt.subplots(figsize=(6.5, 3.4))
    for text, colour in (
        ("HalfNormal(0.25)", "#9ecae1"),
        ("HalfNormal(0.5)", "#2166ac"),
        ("HalfNormal(1)", "#08306b"),
        ("HalfCauchy(0.5)", "#b2182b"),
    ):
        density(ax, parse_prior(text), text, color=colour, lw=2 if "(0.5)" in text else 1.3)
    finish(ax, "Half-normal scales (and a half-Cauchy for comparison)")
    save(fig, "half-normal")

    fig, ax = plt.subplots(figsize=(6.5, 3.4))
    density(ax, heterogeneity_prior("rover:logor"), "rover:logor = HalfNormal(0.5)", lw=2)
    density(ax, heterogeneity_prior("turner:general"), "turner:general", lw=2, color="#b2182b")
    density(
        ax,
        heterogeneity_prior("turner:all-cause-mortality:pharma-vs-placebo"),
        "turner:all-cause-mortality:pharma-vs-placebo",
        color="#666666",
    )
    finish(ax, "The default against Turner et al.'s general and narrowest priors")
    save(fig, "defaults")

    fig, ax = plt.subplots(figsize=(6.5, 3.8))
    cmap = plt.get_cmap("viridis")
    for i, outcome in enumerate(TURNER_OUTCOMES):
        prior = heterogeneity_prior(f"turner:{outcome}:pharma-vs-placebo")
        density(ax, prior, outcome, color=cmap(i / (len(TURNER_OUTCOMES) - 1)), lw=1)
    finish(ax, "Turner et al. (2015): outcome types, pharmacological vs placebo")
    ax.legend(fontsize=6, frameon=False, ncol=2)
    save(fig, "turner-outcomes")

    fig, ax = plt.subplots(figsize=(6.5, 3.4))
    for comparison in TURNER_COMPARISONS:
        prior = heterogeneity_prior(f"turner:subjective:{comparison}")
        density(ax, prior, comparison, lw=1.5)
    finish(ax, "Turner et al. (2015): comparison types, subjective outcomes")
    save(fig, "turner-comparisons")


# --------------------------------------------------------------------------- tutorials


def executed_tutorials() -> set[str] | None:
    """The tutorials whose code runs while the site builds (None: every one).

    ``BAYESKIT_DOCS_EXECUTE`` narrows it: ``none``, or names separated by commas (the
    test suite executes one tutorial with tiny draws; ``tests/docs/test_site.py``).
    """
    import os

    value = os.environ.get("BAYESKIT_DOCS_EXECUTE", "all").strip()
    if value == "all":
        return None
    return {v.strip() for v in value.split(",") if v.strip() and v.strip() != "none"}


def tutorial_markdown(source: str, name: str, *, execute: bool = False) -> str:
    """Turn a jupytext percent-format script into Markdown: text cells, code cells.

    With ``execute``, each code cell runs while the site builds (markdown-exec, one
    session per tutorial) and its printed output and figures follow it on the page.
    """
    cells: list[tuple[str, list[str]]] = []
    kind, body = "code", []
    for line in source.splitlines():
        if line.startswith("# %%"):
            cells.append((kind, body))
            kind = "markdown" if "[markdown]" in line else "code"
            body = []
        else:
            body.append(line)
    cells.append((kind, body))
    out = []
    if execute:  # headless matplotlib, and the helper that shows the figures a cell drew
        out.append(
            f'```python exec="on" session="{name}"\n'
            "import matplotlib\nmatplotlib.use('Agg')\n"
            "from figures import figures_html as _figures_html\n```"
        )
    for kind, body in cells:
        while body and not body[0].strip():
            body = body[1:]
        while body and not body[-1].strip():
            body = body[:-1]
        if not body:
            continue
        if kind == "markdown":
            out.append("\n".join(re.sub(r"^# ?", "", b) for b in body))
        elif execute:
            fence = f'exec="on" source="above" session="{name}"'
            if any("print(" in line for line in body):  # else no empty output block
                fence += ' result="text"'
            out.append(f"```python {fence}\n" + "\n".join(body) + "\n```")
            out.append(
                f'```python exec="on" session="{name}" html="1"\nprint(_figures_html())\n```'
            )
        else:
            out.append("```python\n" + "\n".join(body) + "\n```")
    ran = (
        "the output and figures below each cell come from running it as the site was built"
        if execute
        else "this build of the site did not run it, so no output is shown"
    )
    footer = (
        f"*This page is the script `docs/tutorials/{name}.py` ({ran}); run it with "
        f"`.venv/bin/python docs/tutorials/{name}.py` (the test suite runs it with tiny "
        "draws: `tests/docs/test_tutorials.py`).*"
    )
    return "\n\n".join([*out, footer]) + "\n"


# --------------------------------------------------------------------------- repository READMEs


def _rewrite_links(text: str, source: Path) -> str:
    """Point a README's relative links at their pages on the site (or drop the link)."""

    def repl(match: re.Match) -> str:
        label, target = match.group(1), match.group(2)
        if re.match(r"[a-z]+:", target) or target.startswith("#"):
            return match.group(0)
        page = outside_link(ROOT, source.parent / target)
        return f"[{label}]({relative('reference', page)})" if page else label

    return re.sub(r"\[([^\]]+)\]\(([^)\s]+)\)", repl, text)


def _readme_page(source: Path, title: str) -> str:
    text = source.read_text(encoding="utf-8")
    rel = source.relative_to(ROOT).as_posix()
    note = f"*This page is `{rel}` from the repository.*\n\n"
    text = _rewrite_links(text, source)
    # the README's own title stays the page title; the note goes under it
    first, _, rest = text.partition("\n")
    return f"# {title}\n\n{note}{rest}" if first.startswith("# ") else f"# {title}\n\n{note}{text}"


def _specs_page() -> str:
    page = _readme_page(ROOT / "models" / "README.md", "Analysis specs")
    parts = [page, "\n## The bundled specs\n"]
    for spec in sorted((ROOT / "models").glob("*.toml")):
        parts.append(f"\n### {spec.stem}\n\n`models/{spec.name}`\n\n```toml\n")
        parts.append(spec.read_text(encoding="utf-8").rstrip() + "\n```\n")
    return "".join(parts)


# --------------------------------------------------------------------------- MathJax


def _mathjax() -> None:
    """Copy MathJax (SVG output, one file, and the TeX extensions it loads on demand).

    MathJax comes from the ``django-static-mathjax`` package, which ships its files
    unchanged (and needs no Django to be read): the site renders maths offline.
    """
    import mathjax

    es5 = Path(mathjax.__file__).parent / "static" / "mathjax" / "es5"
    files = [es5 / "tex-svg.js", *sorted((es5 / "input" / "tex" / "extensions").rglob("*.js"))]
    for path in files:
        with mkdocs_gen_files.open(f"javascripts/mathjax/{path.relative_to(es5).as_posix()}", "wb") as f:
            f.write(path.read_bytes())


def main() -> None:
    with mkdocs_gen_files.open("reference/cli.md", "w") as f:
        f.write(_cli_page())
    _prior_figures()
    _mathjax()
    chosen = executed_tutorials()
    for script in sorted((DOCS / "tutorials").glob("*.py")):
        page = f"tutorials/{script.stem}.md"
        execute = chosen is None or script.stem in chosen
        with mkdocs_gen_files.open(page, "w") as f:
            f.write(
                tutorial_markdown(
                    script.read_text(encoding="utf-8"), script.stem, execute=execute
                )
            )
        mkdocs_gen_files.set_edit_path(page, f"tutorials/{script.name}")
    with mkdocs_gen_files.open("reference/data.md", "w") as f:
        f.write(_readme_page(ROOT / "data" / "README.md", "Evidence tables"))
    with mkdocs_gen_files.open("reference/specs.md", "w") as f:
        f.write(_specs_page())


main()
