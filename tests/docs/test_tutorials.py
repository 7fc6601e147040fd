"""Run every tutorial in docs/tutorials/ with tiny draws and check what it computes.

Each script runs in its own interpreter (as a reader would run it), with warnings as
errors; afterwards the runner prints, as JSON, expressions evaluated in the script's
namespace, and the tests assert on those values. The exact-engine numbers are
deterministic; MCMC numbers get tolerances of several Monte Carlo standard errors for
2 chains x 200 draws.
"""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
TUTORIALS = ROOT / "docs" / "tutorials"
TINY = {"BAYESKIT_TUTORIAL_DRAWS": "200", "BAYESKIT_TUTORIAL_CHAINS": "2"}

RUNNER = """
import json, runpy, sys
ns = runpy.run_path(sys.argv[1], run_name="__main__")
values = {key: eval(expr, ns) for key, expr in json.loads(sys.argv[2]).items()}
print("RESULTS " + json.dumps(values))
"""


def run_tutorial(name: str, expressions: dict[str, str]) -> tuple[dict, str]:
    """Run docs/tutorials/NAME.py; return the evaluated expressions and its stdout."""
    env = os.environ | TINY | {"MPLBACKEND": "Agg"}
    proc = subprocess.run(
        [sys.executable, "-W", "error", "-W", "ignore::DeprecationWarning", "-c", RUNNER,
         str(TUTORIALS / f"{name}.py"), json.dumps(expressions)],
        capture_output=True, text=True, cwd=ROOT, env=env, timeout=300,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    line = next(s for s in proc.stdout.splitlines() if s.startswith("RESULTS "))
    return json.loads(line.removeprefix("RESULTS ")), proc.stdout


def test_every_tutorial_is_tested():
    tested = {"pooling", "designs", "dose-route", "extending"}
    assert {p.stem for p in TUTORIALS.glob("*.py")} == tested


def test_pooling_eight_schools():
    values, out = run_tutorial(
        "pooling",
        {
            "none": "table['none_mean'].tolist()",
            "full": "table['full_mean'].tolist()",
            "partial": "table['partial_mean'].tolist()",
            "yi": "table['yi'].tolist()",
            "sei": "table['sei'].tolist()",
            "most": "most",
            "p_mu": "p_mu",
            "p_new": "p_new",
            "mu": "summary.loc['mu', ['q2.5', 'q97.5']].tolist()",
            "new": "summary.loc['theta_new', ['q2.5', 'q97.5']].tolist()",
            "exact": "summary.loc[['mu', 'tau'], 'mean'].tolist()",
            "mcmc": "mcmc.summary().loc[['mu', 'tau'], 'mean'].tolist()",
            "mcmc_sd": "mcmc.summary().loc[['mu', 'tau'], 'mcse_mean'].tolist()",
        },
    )
    # no pooling reproduces the data; complete pooling is (nearly, under the wide prior)
    # the precision-weighted mean, 7.685 (BDA3 section 5.5)
    assert values["none"] == pytest.approx(values["yi"], abs=1e-6)
    w = [1 / s**2 for s in values["sei"]]
    weighted = sum(wi * y for wi, y in zip(w, values["yi"], strict=True)) / sum(w)
    assert weighted == pytest.approx(7.685, abs=1e-3)
    assert values["full"] == pytest.approx([weighted] * 8, abs=0.05)
    for lo_hi in zip(values["none"], values["full"], values["partial"], strict=True):
        none, full, partial = lo_hi
        assert min(none, full) - 1e-9 <= partial <= max(none, full) + 1e-9
    assert values["most"] == "H"  # the largest standard error
    # exact-engine tail probabilities (deterministic; the numbers the page quotes)
    assert values["p_mu"] == pytest.approx(0.953, abs=0.001)
    assert values["p_new"] == pytest.approx(0.874, abs=0.001)
    mu_lo, mu_hi = values["mu"]
    new_lo, new_hi = values["new"]
    assert new_lo < mu_lo and new_hi > mu_hi
    assert "most shrunk: school H" in out
    # MCMC agrees with the exact engine within 5 Monte Carlo standard errors
    for est, ref, mcse in zip(values["mcmc"], values["exact"], values["mcmc_sd"], strict=True):
        assert abs(est - ref) < 5 * mcse + 0.1


def test_designs_bias_terms():
    values, _ = run_tutorial(
        "designs",
        {
            "rows": "table.index.tolist()",
            "median": "table['smd_0.5_iv'].tolist()",
            "width": "(table['q97.5'] - table['q2.5']).tolist()",
            "prob": "table['P(reduction)'].tolist()",
            "bias": "s.loc[['bias[HAILOZIAN2021]', 'bias[CHRISTIAN2023]'], 'mean'].tolist()",
            "rct_bias": "s.loc['bias[JOVAISA2006]', ['q2.5', 'q97.5']].tolist()",
            "studies": "[rct.data.study, mixed.data.study, more.data.study]",
        },
    )
    assert values["rows"] == ["RCT only", "RCT + 2 case reports", "+ hypothetical case series"]
    assert values["studies"][0] == ["JOVAISA2006"]
    assert set(values["studies"][1]) == {"JOVAISA2006", "HAILOZIAN2021", "CHRISTIAN2023"}
    assert "HYPOTHETICAL" in values["studies"][2]
    rct, mixed, series = values["median"]
    # every fit expects a reduction (negative SMD); the trial alone: about -1.2
    assert -2.0 < rct < -0.5
    assert all(p > 0.9 for p in values["prob"])
    # the case reports (raw "SMD" -4 and -4.5) move the estimate towards a larger
    # reduction, but much less than their own numbers: the bias terms take the rest
    assert mixed < rct + 0.05 and mixed > -2.5
    # the series (raw SMD -2, less a stated natural-course bias of 0.5) moves the
    # estimate towards a larger reduction, by less than its own debiased -1.5
    assert -1.5 < series < rct
    assert values["width"][1] < values["width"][0]
    assert all(b < -0.5 for b in values["bias"])
    assert values["rct_bias"] == [0.0, 0.0]  # randomised: no bias term


def test_dose_and_route():
    values, _ = run_tutorial(
        "dose-route",
        {
            "exposure": "by_route['exposure'].to_dict()",
            "gain": "by_route['gain (points)'].to_dict()",
            "sd": "[float(uncertain.std()), float(fixed.std())]",
            "ratio": "[lo, mid, hi]",
            "sessions": "[float(one.loc['p_with', 'q50']), float(three.loc['p_with', 'q50'])]",
            "beta": "s.loc['beta_dose[OUD]', ['q2.5', 'q97.5']].tolist()",
        },
    )
    e = values["exposure"]
    assert e["iv"] == pytest.approx(0.5)  # IV bioavailability is 1 by definition
    assert e["im"] == pytest.approx(0.5 * 0.93, abs=0.03)
    assert e["sl"] == pytest.approx(0.5 * 0.32, abs=0.03)
    assert e["oral"] == pytest.approx(0.5 * 0.17, abs=0.02)
    g = values["gain"]
    assert g["iv"] > g["sl"] > g["oral"] > 0
    # uncertainty in bioavailability can only add spread to the SL prediction
    assert values["sd"][0] >= values["sd"][1] * 0.99
    lo, mid, hi = values["ratio"]
    assert mid == pytest.approx(2 * 0.93 / 0.32, rel=0.15)
    assert lo < mid < hi
    one, three = values["sessions"]
    assert three > one
    assert values["beta"][1] > 0


def test_extending_in_pymc():
    values, _ = run_tutorial(
        "extending",
        {
            "original": "sorted(fit.model.named_vars)",
            "extended": "sorted(extended.named_vars)",
            "posterior": "sorted(idata['posterior'].data_vars)",
            "mu": "[float(before.loc['mu', 'mean']), float(after.loc['mu', 'mean'])]",
            "mcse": "float(after.loc['mu', 'mcse_mean'])",
            "bound": "after.loc['theta_bound[I]', ['q2.5', 'q97.5']].tolist()",
        },
    )
    # the fit keeps its own model; the copy has the new term
    assert "theta_bound_z" not in values["original"]
    assert {"theta_bound_z", "theta_bound", "y_bound"} <= set(values["extended"])
    assert {"mu", "tau", "theta", "theta_bound"} <= set(values["posterior"])
    before, after = values["mu"]
    assert after > before - 2 * values["mcse"]  # a bound above the mean pulls it up
    lo, hi = values["bound"]
    assert lo < 10 < hi
