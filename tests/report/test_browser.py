"""report.html in a real browser: headless Chromium renders it, every figure loads, and
the console stays free of errors.

Needs Debian's ``chromium`` (``.ci/run`` installs it). Without it the test is skipped on a
developer's machine and fails in CI, so CI never passes silently without running it.
"""

import os
import shutil
import subprocess

import numpy as np
import pytest
from typer.testing import CliRunner

from bayeskit.cli import app
from tests.conftest import DATA

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--hide-scrollbars",
]
CHECK = """
<script>
window.addEventListener("load", () => {
  const imgs = Array.from(document.images);
  const broken = imgs.filter(i => !i.complete || i.naturalWidth === 0).length;
  const svgs = document.querySelectorAll("svg").length;
  const shown = id => {
    const el = document.getElementById(id);
    return el !== null && el.getBoundingClientRect().height > 0;
  };
  const sections = ["heterogeneity", "fig-forest", "fig-funnel"].filter(shown);
  const rows = Array.from(document.querySelectorAll("#heterogeneity td:first-child"))
    .map(td => td.textContent);
  const out = document.createElement("pre");
  out.id = "browser-check";
  out.textContent = JSON.stringify(
    {images: imgs.length, broken: broken, svgs: svgs, sections: sections, rows: rows});
  document.body.appendChild(out);
});
</script>
"""

pytestmark = pytest.mark.browser


@pytest.fixture(scope="module")
def chromium():
    if CHROMIUM is None:
        if os.environ.get("CI"):
            pytest.fail("chromium is not installed: .ci/run must install it for this test")
        pytest.skip("chromium is not installed (apt-get install chromium)")
    return CHROMIUM


@pytest.fixture(scope="module")
def report(tmp_path_factory):
    out = tmp_path_factory.mktemp("browser") / "run"
    args = [
        "fit",
        "--method",
        "mcmc",  # the sampler's figures (trace, rank, energy) are part of what renders
        "--data",
        str(DATA / "eight_schools.csv"),
        "--prior",
        "mu=Normal(0, 5)",
        "--prior",
        "tau=HalfCauchy(5)",
        "--draws",
        "300",
        "--tune",
        "300",
        "--chains",
        "2",
        "--seed",
        "3",
        "--out",
        str(out),
        "--quiet",
    ]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    return out / "report.html"


def run_chromium(chromium, *args, tmp_path):
    profile = tmp_path / "profile"
    cmd = [chromium, *FLAGS, f"--user-data-dir={profile}", *args]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=120, check=False)


def test_every_figure_renders_without_console_errors(chromium, report, tmp_path):
    import json

    checked = tmp_path / "checked.html"
    checked.write_text(
        report.read_text(encoding="utf-8").replace("</body>", CHECK + "</body>"), encoding="utf-8"
    )
    result = run_chromium(
        chromium,
        "--enable-logging=stderr",
        "--v=0",
        "--virtual-time-budget=5000",
        "--dump-dom",
        checked.as_uri(),
        tmp_path=tmp_path,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    marker = result.stdout.split('id="browser-check">')[1].split("</pre>")[0]
    found = json.loads(marker.replace("&quot;", '"'))
    assert found["images"] + found["svgs"] >= 5, found
    assert found["broken"] == 0, found
    # the heterogeneity section and the forest and funnel figures are laid out, not hidden
    assert found["sections"] == ["heterogeneity", "fig-forest", "fig-funnel"], found
    assert found["rows"][:4] == ["tau", "tau^2", "I^2", "H^2"], found
    assert "prediction interval" in found["rows"], found
    console_errors = [
        line
        for line in result.stderr.splitlines()
        if "CONSOLE" in line and ("Uncaught" in line or "rror" in line)
    ]
    assert not console_errors, console_errors


def test_screenshot_is_not_blank(chromium, report, tmp_path):
    import matplotlib.image

    shot = tmp_path / "report.png"
    result = run_chromium(
        chromium,
        f"--screenshot={shot}",
        "--window-size=1280,2400",
        "--virtual-time-budget=5000",
        report.as_uri(),
        tmp_path=tmp_path,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    pixels = matplotlib.image.imread(shot)
    assert pixels.shape[0] >= 2000 and pixels.shape[1] >= 1200
    assert float(np.var(pixels[..., :3])) > 1e-3  # not a blank page
    keep = os.environ.get("BAYESKIT_SCREENSHOT")
    if keep:
        shutil.copy(shot, keep)
