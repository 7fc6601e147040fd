"""Heterogeneity summaries, fit.prob and the metafor-like Fit API (issue: what a
meta-analyst expects, items 1, 2 and 4).

Hand computations are written out here with plain loops and scipy, independent of
bayeskit.heterogeneity: the typical within-study variance of Higgins & Thompson (2002,
Stat Med 21:1539, eq. 9), I^2 = tau^2 / (tau^2 + s^2) over the exact engine's grid, and
the exact posterior's mixture CDF for probabilities and the prediction interval.
"""

import math

import numpy as np
import pandas as pd
import pytest
from hypothesis import given
from hypothesis import strategies as st
from scipy import special, stats

import bayeskit as bk
from bayeskit.errors import UserError
from bayeskit.heterogeneity import heterogeneity_summary, typical_variance
from bayeskit.probability import parse_event
from tests.conftest import REFERENCE

EIGHT_PRIORS = {"mu": "Normal(0, 5)", "tau": "HalfCauchy(5)"}
SEI = [15.0, 10.0, 16.0, 11.0, 9.0, 11.0, 10.0, 18.0]


@pytest.fixture(scope="module")
def eight():
    return bk.fit(bk.data_path("eight_schools.csv"), method="exact", priors=EIGHT_PRIORS, seed=1)


@pytest.fixture(scope="module")
def bcg(tmp_path_factory):
    """BCG vaccine trials (Colditz et al. 1994, metafor's dat.bcg) as arm-level counts."""
    table = pd.read_csv(REFERENCE / "escalc" / "bcg_OR.csv")
    rows = []
    for r in table.itertuples():
        rows.append([r.study, "vaccine", "tb", r.n1i, r.ai, "experimental"])
        rows.append([r.study, "control", "tb", r.n2i, r.ci, "control"])
    path = tmp_path_factory.mktemp("bcg") / "bcg.csv"
    columns = ["study", "arm", "outcome", "n", "events", "role"]
    pd.DataFrame(rows, columns=columns).to_csv(path, index=False)
    es = bk.effects(bk.load_evidence(path), "OR")  # escalc, then rma
    return bk.fit(es, method="exact", priors={"mu": "Normal(0, 4)", "tau": "HalfNormal(0.5)"})


def hand_typical_variance(sei):
    w = [1 / s**2 for s in sei]
    k = len(w)
    return (k - 1) * sum(w) / (sum(w) ** 2 - sum(x * x for x in w))


def mixture_cdf(post, mean, var, x):
    return float(np.sum(post.weight * stats.norm.cdf((x - mean) / np.sqrt(var))))


# ------------------------------------------------------------------------ I^2, H^2


def test_i2_on_eight_schools_matches_a_hand_computation(eight):
    s2 = hand_typical_variance(SEI)
    assert s2 == pytest.approx(136.0145712, rel=1e-9)
    rows = eight.summary()
    assert rows.loc["s2_typical", "mean"] == pytest.approx(s2, rel=1e-12)
    post = eight.exact
    tau_q = rows.loc["tau", ["q2.5", "q50", "q97.5"]].to_numpy(float)
    # quantiles: tau's quantiles pushed through the increasing map tau -> I^2
    expected_q = [t * t / (t * t + s2) for t in tau_q]
    assert rows.loc["I2", ["q2.5", "q50", "q97.5"]].tolist() == pytest.approx(expected_q, 1e-10)
    # mean: the sum over the grid of tau, cell by cell
    mean = sum(w * t * t / (t * t + s2) for w, t in zip(post.weight, post.tau, strict=True))
    assert rows.loc["I2", "mean"] == pytest.approx(mean, rel=1e-10)
    h2 = [1 / (1 - i) for i in expected_q]
    assert rows.loc["H2", ["q2.5", "q50", "q97.5"]].tolist() == pytest.approx(h2, 1e-10)
    assert rows.loc["tau2", "q50"] == pytest.approx(tau_q[1] ** 2, rel=1e-12)


def test_existing_summary_rows_are_unchanged(eight):
    before = eight.exact.summary()  # what summary.csv held before heterogeneity rows
    after = eight.summary()
    pd.testing.assert_frame_equal(after.iloc[: len(before)], before)
    assert list(after.index[len(before) :]) == ["tau2", "I2", "H2", "s2_typical"]


def test_i2_and_h2_on_bcg_match_metafors_published_output():
    """metafor's rma.uni example (dat.bcg, log risk ratios, REML) prints tau^2 = 0.3132,
    I^2 = 92.22% and H^2 = 12.86; with the same typical variance, that tau^2 gives them."""
    vi = pd.read_csv(REFERENCE / "escalc" / "bcg_RR.csv")["vi"].to_numpy()
    s2 = typical_variance(vi)
    assert 0.3132 / (0.3132 + s2) == pytest.approx(0.9222, abs=1e-4)
    assert (0.3132 + s2) / s2 == pytest.approx(12.86, abs=0.01)


def test_typical_variance_with_covariates_is_metafors_residual_form():
    rng = np.random.default_rng(4)
    v = rng.uniform(0.05, 0.5, size=9)
    x = rng.normal(size=(9, 2))
    W = np.diag(1 / v)
    Z = np.column_stack([np.ones(9), x])
    P = W - W @ Z @ np.linalg.inv(Z.T @ W @ Z) @ Z.T @ W
    assert typical_variance(v, x) == pytest.approx((9 - 3) / np.trace(P), rel=1e-10)
    # intercept only: the residual form is Higgins & Thompson's closed form
    assert typical_variance(v, np.zeros((9, 0))) == pytest.approx(
        hand_typical_variance(np.sqrt(v)), rel=1e-12
    )
    assert math.isnan(typical_variance([0.1, 0.2], x[:2, :1]))  # k = p: undefined


def test_no_heterogeneity_rows_without_a_between_study_sd():
    path = bk.data_path("eight_schools.csv")
    none = bk.fit(path, pooling="none", priors={"mu": "Normal(0, 50)"})
    full = bk.fit(path, pooling="full", priors=EIGHT_PRIORS)
    assert heterogeneity_summary(none) is None and heterogeneity_summary(full) is None
    assert "I2" not in none.summary().index and "I2" not in full.summary().index


# ------------------------------------------------------------- prediction interval


def test_prediction_interval_is_the_exact_mixture_quantile(eight):
    post = eight.exact
    mean, var = post.m[:, 0], post.V[:, 0, 0] + post.tau**2
    rows = eight.summary()
    for q in ("q2.5", "q97.5"):
        x = rows.loc["theta_new", q]
        assert mixture_cdf(post, mean, var, x) == pytest.approx(float(q[1:]) / 100, abs=1e-9)


def test_binary_prediction_interval_on_ratio_and_risk_scales(bcg):
    rows = bcg.summary()
    p0 = bcg.settings["baseline_risk"]
    assert 0 < p0 < 1
    theta_new = rows.loc["theta_new", ["q2.5", "q50", "q97.5"]].to_numpy(float)
    got = rows.loc["odds_ratio_new", ["q2.5", "q50", "q97.5"]].to_numpy(float)
    assert got == pytest.approx(np.exp(theta_new), rel=1e-10)
    p1 = special.expit(special.logit(p0) + theta_new)
    assert rows.loc["p_treatment_new", ["q2.5", "q50", "q97.5"]].tolist() == pytest.approx(p1)
    rd = rows.loc["risk_difference_new", ["q2.5", "q97.5"]].tolist()
    assert rd == pytest.approx([p1[0] - p0, p1[2] - p0])
    # the BCG trials are famously heterogeneous: I^2 well above one half
    assert rows.loc["I2", "q50"] > 0.5


def test_draws_give_the_exact_heterogeneity_within_monte_carlo_error(eight):
    """An MCMC-style fit (draws only) agrees with the exact engine within Monte Carlo error."""
    from bayeskit.fitting import Fit

    n = 4000
    drawn = Fit(eight.exact.draws(n, seed=2), None, "normal-normal", "mcmc", eight.data,
                eight.priors, dict(eight.settings))  # fmt: skip
    exact, approx = eight.summary(), drawn.summary()
    assert "r_hat" in approx.columns and approx.loc["I2", "ess_bulk"] > 1000
    i2_draws = drawn.idata["posterior"]["tau"].values.ravel() ** 2
    i2_draws = i2_draws / (i2_draws + exact.loc["s2_typical", "mean"])
    for q in ("q50", "q97.5"):
        share = np.mean(i2_draws <= exact.loc["I2", q])
        p = float(q[1:]) / 100
        assert abs(share - p) < 4 * math.sqrt(p * (1 - p) / n)


# --------------------------------------------------------------------------- prob


def test_prob_agrees_with_the_exact_posterior_to_1e6(eight):
    post = eight.exact
    mu_mean, mu_var = post.m[:, 0], post.V[:, 0, 0]
    new_var = mu_var + post.tau**2
    assert eight.prob("mu > 0") == pytest.approx(
        1 - mixture_cdf(post, mu_mean, mu_var, 0.0), abs=1e-6
    )
    assert eight.prob("theta_new < -0.2") == pytest.approx(
        mixture_cdf(post, mu_mean, new_var, -0.2), abs=1e-6
    )
    assert eight.prob("mu>0") + eight.prob("mu <= 0") == pytest.approx(1.0, abs=1e-12)
    median = eight.summary().loc["tau", "q50"]
    assert eight.prob(f"tau < {float(median)!r}") == pytest.approx(0.5, abs=1e-9)
    s2 = hand_typical_variance(SEI)
    # I^2 > 1/2 exactly when tau^2 > s^2
    assert eight.prob("I2 > 0.5") == pytest.approx(eight.prob(f"tau > {math.sqrt(s2)!r}"), 1e-9)
    # theta[A]: its own normal mixture, checked against the draws within Monte Carlo error
    draws = eight.idata["posterior"]["theta"].sel(study="A").values.ravel()
    assert abs(eight.prob("theta[A] > 10") - np.mean(draws > 10)) < 4 * math.sqrt(0.25 / draws.size)


def test_prob_on_a_ratio_scale_is_the_log_scale_probability(bcg):
    assert bcg.prob("odds_ratio < 1") == pytest.approx(bcg.prob("mu < 0"), abs=1e-12)
    assert bcg.prob("odds_ratio_new > 0") == pytest.approx(1.0)


HOSTILE_EVENTS = [
    "",
    "mu",
    "> 0",
    "mu > ",
    "mu = 0",
    "mu == 0",
    "mu >> 0",
    "mu > 0 and tau < 1",
    "mu > 0; import os",
    "__import__('os').system('true') > 0",
    "mu > 0x10",
    "mu > nan",
    "mu > inf",
    "mu > 1e999",
    "mu.real > 0",
    "theta[A]] > 0",
    "theta[[A] > 0",
    "mu > (0)",
    "0 < mu",
    "m" * 300 + " > 0",
]


@pytest.mark.parametrize("event", HOSTILE_EVENTS)
def test_prob_refuses_anything_but_name_op_number(eight, event):
    with pytest.raises(UserError, match="event|NAME OP NUMBER"):
        eight.prob(event)


def test_prob_names_what_the_fit_has(eight):
    with pytest.raises(UserError, match=r"no quantity 'sigma' in this fit; it has .*mu"):
        eight.prob("sigma > 0")
    with pytest.raises(UserError, match="event must be text"):
        eight.prob(0.5)


@given(st.text(max_size=60))
def test_parse_event_reads_or_refuses_any_text(text):
    try:
        event = parse_event(text)
    except UserError:
        return
    assert event.op in ("<", "<=", ">", ">=") and math.isfinite(event.value)


# ---------------------------------------------------------------------- Fit API


def test_effects_then_fit_reads_like_metafor(bcg):
    assert bcg.data.measure == "OR" and len(bcg.data.study) == 13


def test_printed_fit_is_compact(eight):
    text = repr(eight)
    lines = text.splitlines()
    assert len(lines) < 20 and max(map(len, lines)) <= 80
    assert [line.split()[0] for line in lines[3:9]] == [
        "mu",
        "tau",
        "tau2",
        "I2",
        "H2",
        "theta_new",
    ]
    assert "prediction interval" in text and lines[-1].startswith("Diagnostics: pass")
    assert "theta[A]" not in text  # per-study rows are for fit.summary()


def test_plots_and_save(eight, tmp_path):
    forest = eight.plot_forest()
    labels = [t.get_text() for t in forest.axes[0].get_yticklabels()]
    assert labels[:8] == list("ABCDEFGH") and labels[-2:] == ["pooled mu", "new study (95% PI)"]
    numbers = [t.get_text() for t in forest.axes[1].texts]
    assert "28.00 [-1.40, 57.40]" in numbers  # school A: 28 +- 1.96 x 15
    funnel = eight.plot_funnel()
    assert funnel.axes[0].yaxis_inverted()
    out = eight.save(tmp_path / "run")
    html = (out / "report.html").read_text(encoding="utf-8")
    assert 'id="fig-funnel"' in html and '<section id="heterogeneity">' in html
    summary = pd.read_csv(out / "summary.csv", index_col=0)
    assert summary.loc["I2", "q50"] == pytest.approx(eight.summary().loc["I2", "q50"], rel=1e-9)


def test_funnel_is_refused_for_a_family_without_standard_errors(eight, monkeypatch):
    from bayeskit.families import get_family

    monkeypatch.setattr(type(get_family("normal-normal")), "funnel", False)
    with pytest.raises(UserError, match="funnel plot is drawn for study-level effect sizes"):
        eight.plot_funnel()


# ------------------------------------------------------------- small-study check


def _studies(yi, sei):
    return pd.DataFrame({"study": [f"S{i}" for i in range(len(yi))], "yi": yi, "sei": sei})


def test_small_study_check_finds_effects_that_grow_with_the_standard_error():
    from bayeskit.smallstudy import small_study_table

    sei = np.linspace(0.05, 0.6, 12)
    biased = bk.fit(_studies(0.1 + 2.0 * sei, sei), priors={"mu": "Normal(0, 2)",
                    "tau": "HalfNormal(0.5)", "beta": "Normal(0, 5)"})  # fmt: skip
    table = small_study_table(biased)
    assert table.loc["beta[sei]", "prob_positive"] > 0.99
    assert table.loc["beta[sei]", "q2.5"] > 0.5
    flat = bk.fit(_studies(np.zeros(12), sei), priors={"mu": "Normal(0, 2)",
                  "tau": "HalfNormal(0.5)", "beta": "Normal(0, 5)"})  # fmt: skip
    b = small_study_table(flat).loc["beta[sei]"]
    assert b["q2.5"] < 0 < b["q97.5"] and 0.3 < b["prob_positive"] < 0.7
