"""exposure-response: identification from dose contrasts alone, designs switched off,
predictions, bioavailability uncertainty, power-prior weights and (slow) coverage."""

import numpy as np
import pandas as pd
import pytest
from scipy.special import expit

import bayeskit as bk
from bayeskit.spec import load_spec
from tests.conftest import ROOT

FAST = {"draws": 500, "tune": 700, "chains": 2, "target_accept": 0.95}


def simulate(rng, *, beta=0.5, alpha=-1.5, tau=0.1, n=300, placebo=False, studies=6):
    """RCTs of ketamine at two doses (or vs placebo); log-odds rise by beta per doubling."""
    rows = []
    for i in range(studies):
        lo, hi = sorted(rng.choice([0.2, 0.5, 1.0, 2.0, 4.0], size=2, replace=False))
        if placebo:
            lo = 0.0
        a = alpha + rng.normal(0, 0.3)
        d = rng.normal(0, tau)
        for arm, dose, role, c in (("low", lo, "control", -0.5), ("high", hi, "experimental", 0.5)):
            eff = beta * np.log2(1 + dose / 0.1)
            p = expit(a + eff + c * d)
            rows.append(
                {
                    "study": f"S{i}",
                    "arm": arm,
                    "outcome": "abstinence",
                    "n": n,
                    "events": rng.binomial(n, p),
                    "role": role,
                    "design": "rct",
                    "indication": "OUD",
                    "dose_mg_per_kg": dose,
                    "route": "iv",
                    "sessions": 1,
                }
            )
    table = pd.DataFrame(rows)
    table.attrs = {"shape": "arm"}
    return table


@pytest.fixture(scope="module")
def contrast_fit():
    table = simulate(np.random.default_rng(42))
    assert (table["dose_mg_per_kg"] > 0).all()  # no placebo arm anywhere
    return bk.fit(table, "exposure-response", outcome="abstinence", seed=3, **FAST)


def test_slope_is_identified_from_dose_contrasts_alone(contrast_fit):
    s = contrast_fit.summary().loc["beta_dose[OUD]"]
    assert s["q2.5"] < 0.5 < s["q97.5"]
    assert s["q2.5"] > 0.2  # clearly away from no effect
    assert s["sd"] < 0.15
    assert contrast_fit.verdict in ("pass", "warn")


def test_predictions_follow_from_the_posterior_draws(contrast_fit):
    table = bk.predict(contrast_fit, route="iv", dose_mg_per_kg=1.0)
    post = contrast_fit.idata["posterior"]
    beta = post["beta_dose"].sel(indication="OUD").values.ravel()
    base = post["alpha_mu"].sel(indication="OUD").values.ravel()
    p_with = expit(base + beta * np.log2(1 + 1.0 / 0.1))
    assert table.loc["p_with", "mean"] == pytest.approx(p_with.mean(), rel=1e-10)
    diff = p_with - expit(base)
    assert table.loc["difference", "prob"] == pytest.approx(np.mean(diff >= 0.10))
    assert table.loc["exposure", "sd"] == 0  # IV bioavailability is 1 by definition


def test_bioavailability_uncertainty_reaches_the_exposure(contrast_fit):
    im = bk.predict(contrast_fit, route="im", dose_mg_per_kg=2.0)
    oral = bk.predict(contrast_fit, route="oral", dose_mg_per_kg=2.0)
    assert im.loc["exposure", "mean"] == pytest.approx(2.0 * 0.93, rel=0.03)
    assert im.loc["exposure", "sd"] == pytest.approx(2.0 * 0.05, rel=0.15)
    assert oral.loc["exposure", "mean"] == pytest.approx(2.0 * 0.17, rel=0.05)
    assert oral.loc["effect", "mean"] < im.loc["effect", "mean"]


def test_switching_off_case_reports_moves_withdrawal_estimate_toward_the_rct():
    spec = load_spec(ROOT / "models" / "ow_withdrawal.toml")
    kwargs = spec.fit_kwargs() | FAST
    all_designs = bk.fit(spec.data_files(), **kwargs).summary()
    rct_only = bk.fit(
        spec.data_files(),
        **(kwargs | {"model_options": kwargs["model_options"] | {"designs": ["rct"]}}),
    ).summary()
    assert "bias[HAILOZIAN2021]" in all_designs.index
    assert not any(i.startswith("bias[") for i in rct_only.index)
    # the case reports show large pre/post falls in COWS: with them the slope is steeper
    assert all_designs.loc["beta_dose[OW]", "mean"] < rct_only.loc["beta_dose[OW]", "mean"]
    # ... but only a little, because their bias SD is large
    shift = rct_only.loc["beta_dose[OW]", "mean"] - all_designs.loc["beta_dose[OW]", "mean"]
    assert shift < rct_only.loc["beta_dose[OW]", "sd"]


def test_power_prior_weight_scales_the_log_likelihood():
    from bayeskit.evidence import load_routes
    from bayeskit.families import get_family
    from bayeskit.families.exposure.model import build, exposure_data

    arms = simulate(np.random.default_rng(1), studies=2)
    arms.loc[arms["study"] == "S1", "design"] = "cohort"
    data = exposure_data(arms, None, routes=load_routes())
    priors = get_family("exposure-response").default_priors(data)
    point = None
    values = {}
    for w in (1.0, 0.5, 0.0):
        model = build(data, priors, design_weight={"cohort": w})
        logp = model.compile_logp()
        if point is None:
            point = model.initial_point()
        values[w] = logp(point)
    # log p is linear in the weight of the cohort's log-likelihood
    assert values[0.5] == pytest.approx((values[1.0] + values[0.0]) / 2, rel=1e-10)
    assert values[1.0] != pytest.approx(values[0.0])


@pytest.mark.slow
def test_interval_coverage_over_repeated_simulations():
    """Recovery of the slope: 95% intervals cover the truth in about 95% of 40 data sets."""
    rng = np.random.default_rng(2026)
    hits = []
    for rep in range(40):
        beta = rng.normal(0.3, 0.2)
        table = simulate(rng, beta=beta, n=150, tau=0.2, placebo=bool(rep % 2))
        s = (
            bk.fit(table, "exposure-response", outcome="abstinence", seed=rep, **FAST)
            .summary()
            .loc["beta_dose[OUD]"]
        )
        hits.append(s["q2.5"] <= beta <= s["q97.5"])
    # 40 replicates at 95%: fewer than 34 hits has probability < 1% under calibration
    assert sum(hits) >= 34, sum(hits)


def test_emax_form_route_effect_and_sessions_term(contrast_fit):
    table = simulate(np.random.default_rng(7), placebo=True)
    table.loc[table["study"].isin(["S0", "S1"]), "route"] = "im"
    table.loc[table["study"] == "S2", "sessions"] = 3
    f = bk.fit(
        table,
        "exposure-response",
        outcome="abstinence",
        seed=4,
        model_options={"form": "emax", "route_effect": True, "sessions": "term"},
        **FAST,
    )
    s = f.summary()
    assert {"emax[OUD]", "ed50", "beta_sessions", "route_effect[im]"} <= set(s.index)
    post = f.idata["posterior"]
    one = bk.predict(f, route="im", dose_mg_per_kg=1.0, sessions=1)
    three = bk.predict(f, route="im", dose_mg_per_kg=1.0, sessions=3)
    F = post["bioavailability"].sel(route="im").values.ravel()
    emax, ed50 = post["emax"].sel(indication="OUD").values.ravel(), post["ed50"].values.ravel()
    route = post["route_effect"].sel(route="im").values.ravel()
    expected = emax * F / (ed50 + F) + route
    assert one.loc["effect", "mean"] == pytest.approx(expected.mean(), rel=1e-10)
    gain = np.log2(3) * post["beta_sessions"].values.ravel()
    assert three.loc["effect", "mean"] - one.loc["effect", "mean"] == pytest.approx(
        gain.mean(), rel=1e-8
    )
