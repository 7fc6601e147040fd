"""The pooling explorer in a real browser: Debian's Chromium driven by Selenium.

Keys move the slider to three values of tau and the page must show the exact engine's
conditional means to 3 significant digits; an edited study must change them as the engine
says, and the page's recomputed posterior of tau must be the engine's for the edited
data; the page is captured at 1280 and 390 pixels wide and must fit both.

Needs Debian's ``chromium`` and ``chromium-driver`` (``.ci/run`` installs them) and the
``selenium`` package (the test extra). Selenium is given the system chromedriver and told
to stay offline, so nothing is downloaded. Without them the test is skipped on a
developer's machine and fails in CI, so CI never passes silently without running it.
"""

import math
import os
import shutil
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from bayeskit.cli import app
from bayeskit.exact import conditional_posterior, exact_posterior
from bayeskit.explorer import explorer_inputs

pytestmark = pytest.mark.browser

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
CHROMEDRIVER = shutil.which("chromedriver") or next(
    (p for p in ("/usr/lib/chromium/chromedriver",) if Path(p).exists()), None
)
PRIORS = {"mu": "Normal(0, 5)", "tau": "HalfCauchy(5)"}


def _missing() -> str | None:
    if CHROMIUM is None:
        return "chromium is not installed (apt-get install chromium)"
    if CHROMEDRIVER is None:
        return "chromedriver is not installed (apt-get install chromium-driver)"
    try:
        import selenium  # noqa: F401
    except ImportError:
        return "selenium is not installed (pip install -e '.[test]')"
    return None


@pytest.fixture(scope="module")
def page(tmp_path_factory):
    out = tmp_path_factory.mktemp("explore") / "explore.html"
    args = ["teach", "explore", "--out", str(out)]
    for name, dist in PRIORS.items():
        args += ["--prior", f"{name}={dist}"]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    return out


@pytest.fixture(scope="module")
def browser(tmp_path_factory):
    why = _missing()
    if why:
        if os.environ.get("CI"):
            pytest.fail(f"{why}: .ci/run must install it for this test")
        pytest.skip(why)
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in (
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-dev-shm-usage",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--hide-scrollbars",
        f"--user-data-dir={tmp_path_factory.mktemp('profile')}",
    ):
        options.add_argument(flag)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    with pytest.MonkeyPatch.context() as env:
        env.setenv("SE_OFFLINE", "true")  # Selenium Manager must never download a driver
        service = Service(executable_path=CHROMEDRIVER)
        driver = webdriver.Chrome(service=service, options=options)
        driver.set_page_load_timeout(30)
        yield driver
        driver.quit()


def set_width(driver, width: int, height: int = 900) -> None:
    driver.execute_cdp_cmd(
        "Emulation.setDeviceMetricsOverride",
        {"width": width, "height": height, "deviceScaleFactor": 1, "mobile": width < 600},
    )


def same_to_3_digits(shown: str, value: float) -> bool:
    """Whether the text shown is ``value`` to 3 significant digits."""
    half_unit = 0.5 * 10 ** (math.floor(math.log10(abs(value))) - 2) if value else 1e-12
    return abs(float(shown) - value) <= half_unit * (1 + 1e-9)


def shown(driver, element_id: str) -> str:
    return driver.find_element("id", element_id).text


def test_slider_edit_and_both_widths(browser, page, tmp_path):
    from selenium.webdriver.common.keys import Keys

    driver = browser
    d, priors, _ = explorer_inputs(priors=PRIORS)
    set_width(driver, 1280)
    driver.get(page.as_uri())
    assert driver.execute_script("return performance.getEntriesByType('resource').length") == 0

    slider = driver.find_element("id", "tau")
    grid = driver.execute_script(
        "return JSON.parse(document.getElementById('explorer-data').textContent).tau"
    )
    # the keyboard moves the slider: Home, seven steps right, End
    checked = []
    for keys in (Keys.HOME, Keys.ARROW_RIGHT * 7, Keys.END):
        slider.send_keys(keys)
        tau = grid[int(slider.get_attribute("value"))]
        assert same_to_3_digits(shown(driver, "tau-value"), tau) or tau == 0
        want = conditional_posterior(d, priors, tau)
        for i, study in enumerate(d.study):
            text = shown(driver, f"est-{i}")
            assert same_to_3_digits(text, want.loc[f"theta[{study}]", "mean"]), (tau, study, text)
        assert same_to_3_digits(shown(driver, "pooled-mean"), want.loc["mu", "mean"])
        lo, hi = shown(driver, "prediction-interval").split(" to ")
        new = want.loc["theta_new"]
        assert same_to_3_digits(lo, new["mean"] - 1.959964 * new["sd"])
        assert same_to_3_digits(hi, new["mean"] + 1.959964 * new["sd"])
        assert slider.get_attribute("aria-valuetext") == f"tau {shown(driver, 'tau-value')}"
        checked.append(tau)
    assert checked[0] == 0 and 0 < checked[1] < checked[2] == grid[-1]

    # the pooling toggles: no pooling shows each study's own estimate
    driver.find_element("css selector", 'input[value="none"]').click()
    assert [float(shown(driver, f"est-{i}")) for i in range(len(d.study))] == list(d.yi)
    driver.find_element("css selector", 'input[value="partial"]').click()

    # edit school A's estimate: its estimate, the pooled mean and tau's posterior follow
    before = shown(driver, "est-0")
    box = driver.find_element("id", "y-0")
    box.send_keys(Keys.CONTROL + "a" + Keys.NULL + "60")  # select all, type over it
    assert box.get_property("value") == "60"
    edited = type(d)(d.study, d.yi.copy(), d.sei, d.X, d.measure, d.table)
    edited.yi[0] = 60.0
    want = conditional_posterior(edited, priors, checked[2])
    assert shown(driver, "est-0") != before
    assert same_to_3_digits(shown(driver, "est-0"), want.loc["theta[A]", "mean"])
    assert same_to_3_digits(shown(driver, "pooled-mean"), want.loc["mu", "mean"])
    assert "recomputed" in shown(driver, "tau-note")
    page_density = np.array(driver.execute_script("return window.bayeskitExplorer.density()"))
    engine = exact_posterior(edited, priors).tau_density()
    engine = np.interp(grid, engine.index.to_numpy(), engine.to_numpy(), right=0.0)
    engine /= np.trapezoid(engine, grid)
    np.testing.assert_allclose(page_density, engine, rtol=0, atol=2e-3 * engine.max())

    # readable at both widths: nothing wider than the window, text no smaller than 12 px
    keep = os.environ.get("BAYESKIT_EXPLORER_SCREENSHOTS")
    for width in (1280, 390):
        set_width(driver, width)
        fits = driver.execute_script(
            "return document.documentElement.scrollWidth <= window.innerWidth"
        )
        assert fits, width
        smallest = driver.execute_script(
            "return Math.min(...[...document.querySelectorAll('td, th, label, p, svg text')]"
            ".map(e => parseFloat(getComputedStyle(e).fontSize)))"
        )
        assert smallest >= 12, (width, smallest)
        height = driver.execute_script("return document.documentElement.scrollHeight")
        set_width(driver, width, height)
        shot = tmp_path / f"explore-{width}.png"
        driver.save_screenshot(str(shot))
        import matplotlib.image

        pixels = matplotlib.image.imread(shot)
        assert pixels.shape[1] == width and pixels.shape[0] >= 1000
        assert float(np.var(pixels[..., :3])) > 1e-3  # not a blank page
        if keep:
            shutil.copy(shot, Path(keep) / shot.name)

    severe = [e for e in driver.get_log("browser") if e["level"] == "SEVERE"]
    assert not severe, severe
