"""The examples run end to end with a few draws, and say what their fits say.

As numpyro's test/test_examples.py does: each example runs as a whole, with tiny
settings and a temporary output folder. The ketamine example has no exact engine (its
exposure-response models are sampled), so it runs with 2 chains x 50 draws; the compile
cache (~/.cache/bayeskit) makes reruns faster.
"""

import re
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest

from bayeskit.robustness import directions
from examples.ketamine import make_page
from tests.conftest import ROOT

TINY = {"draws": 50, "tune": 50, "chains": 2}
SECTIONS = [
    "## Bottom line",
    "## 1. Opioid use disorder: abstinence at 12 months (`oud_abstinence`)",
    "## 2. Opioid withdrawal (`ow_withdrawal`)",
    "## 3. Borrowing strength from alcohol use disorder (`sud_abstinence`)",
    "## 4. What a reviewer would ask",
]


@pytest.fixture(scope="module")
def ketamine(tmp_path_factory):
    out = tmp_path_factory.mktemp("ketamine") / "ketamine.md"
    # the ~25 robustness refits (cold compiles in CI) are left out here; the reviewer
    # section's tables are checked on a made-up robustness table below
    result = make_page(out, sampler=TINY, robustness=False)
    return result, out.read_text(encoding="utf-8")


def _probability_bounds(text: str) -> tuple[float, float]:
    """The interval of probabilities a page's '27%', '99.7%', '>99.9%' or '<0.1%' stands for."""
    if text == ">99.9%":
        return 0.9995, 1.0
    if text == "<0.1%":
        return 0.0, 0.0005
    value = float(text.rstrip("%"))
    half = 0.5 if "." not in text else 0.05
    return (value - half) / 100, (value + half) / 100


def _row(page: str, name: str, meaning: str) -> list[float]:
    """Median and 95% CrI of a parameter-table row, as written on the page."""
    pattern = rf"\| `{re.escape(name)}` \| {re.escape(meaning)} \| (\S+) \| (\S+) to (\S+) \|"
    (match,) = re.findall(pattern, page)
    return [float(x) for x in match]


def test_ketamine_page_and_figures_are_written(ketamine):
    result, page = ketamine
    assert result.page.is_file()
    names = sorted(p.name for p in result.figures)
    assert names == [
        "ketamine_borrowing.png",
        "ketamine_oud_dose_response.png",
        "ketamine_ow_withdrawal.png",
    ]
    for path in result.figures:
        assert path.parent == result.page.parent / "figures"
        assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and path.stat().st_size > 10_000
        assert f"](figures/{path.name})" in page  # the page shows each figure


def test_ketamine_page_has_its_sections_in_order(ketamine):
    _, page = ketamine
    positions = [page.index(s) for s in SECTIONS]
    assert positions == sorted(positions)
    assert page.count("### Diagnostics") == 3 and page.count("### Caveats") == 3
    # the settings it ran with, and how to regenerate it
    assert "Seeds (from the specs): `oud_abstinence` 20261123" in page
    assert "2 chains x 50 draws after 50 tuning steps" in page
    assert "python -m examples.ketamine" in page.splitlines()[-1]
    assert not re.search(r"\bnan\b", page, re.IGNORECASE)


def test_ketamine_page_states_the_fits_own_numbers(ketamine):
    result, page = ketamine
    fits = result.analyses.fits
    oud = fits["oud_abstinence"].summary()
    # the parameter table of section 1 is the OUD fit's summary, rounded to 2 decimals
    written = _row(page, "tau", "between-trial SD of the contrast (log-OR)")
    expected = oud.loc["tau", ["q50", "q2.5", "q97.5"]].to_numpy(float)
    np.testing.assert_allclose(written, expected, atol=0.005 + 1e-9)
    written = _row(page, "beta_dose[OUD]", "slope: log-OR per doubling")
    expected = oud.loc["beta_dose[OUD]", ["q50", "q2.5", "q97.5"]].to_numpy(float)
    np.testing.assert_allclose(written, expected, atol=0.005 + 1e-9)
    # P(slope > 0) in the bottom line, counted from the OUD fit's draws here
    (stated,) = re.findall(r"This is P\(slope > 0\) \(([<>]?[\d.]+%)\)", page)
    beta = fits["oud_abstinence"].idata.posterior["beta_dose"].sel(indication="OUD")
    lo, hi = _probability_bounds(stated)
    assert lo <= float((beta > 0).mean()) <= hi
    # the borrowing table's first row is the joint fit's OUD dose contrast
    sud = fits["sud_abstinence"].summary().loc["dose_contrast[OUD]"]
    (median, lo_, hi_) = re.findall(
        r"\| OUD \| with borrowing \(exchangeable\) \| (\S+) \| (\S+) to (\S+) \|", page
    )[0]
    np.testing.assert_allclose(
        [float(median), float(lo_), float(hi_)],
        sud[["q50", "q2.5", "q97.5"]].to_numpy(float),
        atol=0.005 + 1e-9,
    )


def test_ketamine_diagnostics_tables_are_the_fits_checks(ketamine):
    result, page = ketamine
    for name, fit in result.analyses.fits.items():
        section = page.split(f"(`{name}`)")[1].split("### Diagnostics")[1].split("###")[0]
        for check in fit.checks:
            assert re.search(rf"\| `{check.name}` \| \**{check.verdict}\** \|", section), (
                name,
                check.name,
            )


def test_ketamine_command_line_help():
    result = subprocess.run(
        [sys.executable, "-m", "examples.ketamine", "--help"],
        capture_output=True,
        text=True,
        cwd=ROOT,
        check=True,
    )
    assert "--out" in result.stdout and "--draws" in result.stdout


def _robustness_rows() -> pd.DataFrame:
    within = "2 mg/kg IM, 1 session vs 0.2 mg/kg im, 1 session (within the evidence)"
    rows = [
        # question, quantity, assumption, alternative, q2.5, q50, q97.5, P(benefit)
        (within, "difference", "as fitted", "as fitted", -0.07, 0.08, 0.26, 0.88),
        (within, "difference", "reference exposure", "0.1 mg/kg", -0.05, 0.11, 0.23, 0.94),
        (within, "difference", "dose-response shape", "Emax", -0.2, -0.01, 0.2, 0.45),
        (within, "difference", "tau prior", "HalfNormal(1)", -0.1, 0.09, 0.3, 0.8),
        (within, "effect", "as fitted", "as fitted", -0.5, 0.6, 1.9, 0.88),
        (within, "effect", "tau prior", "HalfNormal(1)", -0.6, 0.6, 2.0, 0.8),
    ]
    table = pd.DataFrame(
        rows,
        columns=["question", "quantity", "assumption", "alternative", "q2.5", "q50", "q97.5",
                 "prob_benefit"],
    )  # fmt: skip
    table["evidence"] = "within the evidence"
    return directions(table)


def test_reviewer_tables_show_each_alternative_and_mark_a_turned_direction():
    from examples.ketamine.reviewer import _points, alternative_table, pick, spread, survivors

    rob = _robustness_rows()
    question = pick(rob, "within the evidence", "difference", "0.2 mg/kg")
    assert question.startswith("2 mg/kg IM, 1 session vs 0.2")
    md = alternative_table(
        rob, [("2 vs 0.2", question, "difference")], ["reference exposure", "dose-response shape"],
        _points,
    )  # fmt: skip
    lines = md.splitlines()
    assert lines[0] == "| assumption | alternative | 2 vs 0.2 |"
    assert lines[2] == "| as fitted | as fitted | 8 (-7 to 26); P = 88% |"
    assert lines[3] == "| reference exposure | 0.1 mg/kg | 11 (-5 to 23); P = 94% |"
    assert lines[4] == "| dose-response shape | Emax | -1 (-20 to 20); P = 45% † |"
    assert len(lines) == 5  # the tau prior row belongs to another question of the section
    assert spread(rob, question, "difference", ["reference exposure"]) == (0.08, 0.11)
    # an assumption with no rows gives no table, so the page says there is none
    assert alternative_table(rob, [("x", question, "difference")], ["sessions"], _points) is None
    (intro, table) = survivors({"oud_abstinence": rob})
    (row,) = [r for r in table.splitlines() if r.startswith("| `oud")]  # difference only
    assert row == (
        f"| `oud_abstinence` | {question} (difference) | 88% | 45% to 94% | fragile (Emax) |"
    )


def test_page_without_robustness_says_its_reviewer_section_was_skipped(ketamine):
    _, page = ketamine
    section = page.split("## 4. What a reviewer would ask")[1]
    assert "robustness refits were skipped" in section.split("---")[0]
