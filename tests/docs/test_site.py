"""The documentation site builds with ``mkdocs build --strict`` and has every page."""

import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
QUIET = {"NO_MKDOCS_2_WARNING": "1", "DISABLE_MKDOCS_2_WARNING": "true"}


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    out = tmp_path_factory.mktemp("site")
    proc = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(out)],
        capture_output=True, text=True, cwd=ROOT, env=os.environ | QUIET, timeout=300,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-5000:]
    return out


def _nav_pages(nav) -> list[str]:
    pages = []
    for item in nav:
        value = next(iter(item.values())) if isinstance(item, dict) else item
        pages += _nav_pages(value) if isinstance(value, list) else [value]
    return pages


def _html(site: Path, page: str) -> str:
    stem = page.removesuffix(".md")
    path = (
        site / (stem.removesuffix("index") if stem.endswith("index") else stem + "/") / "index.html"
    )
    assert path.exists(), f"{page} was not built"
    return path.read_text(encoding="utf-8")


def test_every_nav_page_is_built_and_ketamine_is_last(site):
    config = yaml.safe_load((ROOT / "mkdocs.yml").read_text(encoding="utf-8"))
    pages = _nav_pages(config["nav"])
    assert pages[-1] == "ketamine.md"
    for page in pages:
        _html(site, page)
    assert not list(site.rglob("*.py"))


def test_cli_reference_lists_every_command_and_option(site):
    import typer.main

    from bayeskit.cli import app

    html = _html(site, "reference/cli.md")
    root = typer.main.get_command(app)
    ctx = root.make_context("bayeskit", [], resilient_parsing=True)

    def walk(cmd, path):
        yield path, cmd
        if hasattr(cmd, "list_commands"):
            for name in cmd.list_commands(ctx):
                yield from walk(cmd.get_command(ctx, name), f"{path} {name}")

    commands = list(walk(root, "bayeskit"))
    assert len(commands) >= 8
    for path, cmd in commands:
        assert f"<code>{path}</code>" in html or path == "bayeskit", path
        for param in cmd.params:
            for opt in getattr(param, "opts", []):
                if opt.startswith("--"):
                    assert opt in html, f"{path}: {opt}"


def test_prior_plots_and_table(site):
    for name in ("half-normal", "defaults", "turner-outcomes", "turner-comparisons"):
        png = site / "priors" / f"{name}.png"
        assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    html = _html(site, "priors.md")
    assert "turner:general" in html and "rover:logor" in html
    assert "<!-- table: heterogeneity-priors -->" not in html


def test_tutorial_pages_show_code_and_text(site):
    for name in ("pooling", "designs", "dose-route", "extending"):
        html = _html(site, f"tutorials/{name}.md")
        assert 'class="highlight"' in html and '<span class="kn">import</span>' in html
        assert "bayeskit" in html and "<h2" in html
        assert "# %%" not in html


def test_api_reference_renders_docstrings(site):
    html = _html(site, "reference/api.md")
    for name in (
        "evidence.load_evidence",
        "measures.effects",
        "fitting.fit",
        "fitting.Fit",
        "priors.parse_prior",
        "priors.heterogeneity_prior",
        "families.exposure.model.build",
    ):
        assert f'id="bayeskit.{name}"' in html, name


def test_links_out_of_docs_point_at_site_pages(site):
    html = _html(site, "ketamine.md")
    assert "../data/README.md" not in html
    assert "reference/data/" in html and "reference/specs/#oud_abstinence" in html
