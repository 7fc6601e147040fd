"""The documentation site builds with ``mkdocs build --strict`` and has every page."""

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
QUIET = {"NO_MKDOCS_2_WARNING": "1", "DISABLE_MKDOCS_2_WARNING": "true"}
# the build runs one tutorial (with tiny draws) to check that executed pages show their
# output and figures; tests/docs/test_tutorials.py runs every tutorial
EXECUTE = {
    "BAYESKIT_DOCS_EXECUTE": "pooling",
    "BAYESKIT_TUTORIAL_DRAWS": "200",
    "BAYESKIT_TUTORIAL_CHAINS": "2",
    "MPLBACKEND": "Agg",
}


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    out = tmp_path_factory.mktemp("site")
    proc = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(out)],
        capture_output=True, text=True, cwd=ROOT, env=os.environ | QUIET | EXECUTE, timeout=300,
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


def test_executed_tutorial_shows_its_output_and_figure(site):
    html = _html(site, "tutorials/pooling.md")
    # printed by the tutorial's cells as the site was built (exact engine: deterministic)
    assert "most shrunk: school H (se 18)" in html
    assert re.search(r"P\(mu &gt; 0\) = 0\.9[0-9]{2}", html), "P(mu > 0) not shown"
    figures = re.findall(
        r'<img class="tutorial-figure" alt="figure" src="data:image/png;base64,', html
    )
    assert len(figures) == 1
    assert "this build of the site did not run it" in _html(site, "tutorials/designs.md")


def test_maths_renders_offline(site):
    for page in ("models.md", "families/normal-normal.md", "tutorials/pooling.md"):
        html = _html(site, page)
        assert 'class="arithmatex"' in html, page
        assert "cdn.jsdelivr" not in html and "mathjax@" not in html, page
        assert "javascripts/mathjax/tex-svg.js" in html, page
    mathjax = (site / "javascripts" / "mathjax" / "tex-svg.js").read_text(encoding="utf-8")
    assert len(mathjax) > 1_000_000 and "MathJax" in mathjax
    assert (site / "javascripts/mathjax/input/tex/extensions/boldsymbol.js").is_file()


def test_coming_from_page_maps_the_calls(site):
    html = _html(site, "coming-from.md")
    for call in ("escalc(", "rma(", "bayesmeta(", "TurnerEtAlPrior", "brm(", "adapt_delta"):
        assert call in html, call
    for ours in ("bk.effects(", "bk.fit(", "turner:general", "target_accept"):
        assert ours in html, ours


@pytest.mark.browser
def test_maths_is_typeset_in_a_browser(site, tmp_path):
    import shutil

    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    if chromium is None:
        if os.environ.get("CI"):
            pytest.fail("chromium is not installed: .ci/run must install it for this test")
        pytest.skip("chromium is not installed (apt-get install chromium)")
    page = site / "families" / "normal-normal" / "index.html"
    assert "\\(" in page.read_text(encoding="utf-8")  # raw TeX before MathJax runs
    flags = ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
             "--disable-background-networking", "--disable-component-update",
             f"--user-data-dir={tmp_path / 'profile'}", "--virtual-time-budget=15000",
             "--dump-dom"]  # fmt: skip
    result = subprocess.run(
        [chromium, *flags, page.as_uri()], capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stderr[-2000:]
    dom = result.stdout
    assert "<mjx-container" in dom, "MathJax typeset nothing"
    text = re.sub(r"<[^>]+>", " ", re.sub(r"<(script|style)\b.*?</\1>", "", dom, flags=re.S))
    assert "\\(" not in text and "\\[" not in text, "raw TeX left in the page text"
