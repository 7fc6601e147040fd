"""Leave-one-study-out LOO: each family's marginal log-likelihood, checked independently.

The per-study log-likelihood with the study's random effects integrated out is compared
with computations that share no code with bayeskit: ``scipy.stats.norm.logpdf`` for
normal-normal, ``scipy.integrate.quad`` (a fine trapezoid grid in two dimensions) of
the binomial likelihood times the normal densities for binomial-normal, on a table of
hostile cases (zero cells, all events, large trials, single arms), and the
multivariate normal of the arm means for normal-arm. Then the acceptance: Pareto k
below 0.7 on eight schools and on a consistent four-study table, by MCMC.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import xarray as xr
from scipy import integrate, stats
from scipy.special import expit

import bayeskit as bk
from bayeskit.diagnostics import loo_table
from bayeskit.families import get_family
from bayeskit.families.data import ArmData, StudyData
from bayeskit.priors import parse_prior


def posterior(**variables) -> xr.Dataset:
    """A one-chain posterior from arrays whose first axis is the draw."""
    data = {}
    for name, values in variables.items():
        values = np.asarray(values, float)[None]
        dims = ("chain", "draw", *(["study"] if values.ndim == 3 else []))
        if name == "beta":
            dims = ("chain", "draw", "term")
        data[name] = (dims, values)
    return xr.Dataset(data)


def arms(rows, covariate=None) -> ArmData:
    """ArmData from (study, treat, events or mean, n or se) rows."""
    study = list(dict.fromkeys(r[0] for r in rows))
    idx = np.array([study.index(r[0]) for r in rows])
    X = pd.DataFrame(index=study) if covariate is None else pd.DataFrame({"x": covariate})
    binary = isinstance(rows[0][2], int)
    return ArmData(
        study=study,
        arm=[f"{r[0]}:{i}" for i, r in enumerate(rows)],
        study_idx=idx,
        treat=np.array([r[1] for r in rows], float),
        outcome_type="binary" if binary else "continuous",
        events=np.array([r[2] for r in rows], float) if binary else None,
        n=np.array([r[3] for r in rows], float) if binary else np.full(len(rows), 50.0),
        mean=None if binary else np.array([r[2] for r in rows], float),
        se=None if binary else np.array([r[3] for r in rows], float),
        X=X,
        table=pd.DataFrame(),
    )


# ------------------------------------------------------------------- normal-normal


def test_normal_normal_marginal_matches_scipy_with_covariates():
    rng = np.random.default_rng(0)
    yi, sei, x = np.array([0.3, -0.1, 0.8, 0.2]), np.array([0.2, 0.3, 0.25, 0.5]), [0, 1, 2, 3]
    data = StudyData(list("ABCD"), yi, sei, pd.DataFrame({"x": x}), "SMD", pd.DataFrame())
    mu, tau, beta = rng.normal(size=5), rng.gamma(2, 0.2, size=5), rng.normal(size=(5, 1))
    ll = get_family("normal-normal").marginal_log_likelihood(
        data, posterior(mu=mu, tau=tau, beta=beta)
    )
    assert ll.attrs["loo"] == "leave-one-study-out"
    for s in range(5):
        for i in range(4):
            expected = stats.norm.logpdf(
                yi[i], mu[s] + beta[s, 0] * x[i], np.sqrt(tau[s] ** 2 + sei[i] ** 2)
            )
            assert ll["y"].values[0, s, i] == pytest.approx(expected, rel=1e-12)


def test_normal_normal_without_pooling_keeps_the_conditional_loglik_and_says_why():
    yi, sei = np.array([0.3, -0.1]), np.array([0.2, 0.3])
    data = StudyData(["A", "B"], yi, sei, pd.DataFrame(index=["A", "B"]), None, pd.DataFrame())
    theta = np.array([[0.25, 0.0], [0.4, -0.2]])
    ll = get_family("normal-normal").marginal_log_likelihood(data, posterior(theta=theta))
    assert ll.attrs["loo"] == "conditional"
    assert "no population" in ll.attrs["loo_note"]
    assert ll["y"].values[0] == pytest.approx(stats.norm.logpdf(yi, theta, sei))


# ----------------------------------------------------------------- binomial-normal


def quad_binomial(rows, alpha, m, tau):
    """log of the integral of prod Binomial(e | n, expit(alpha + t theta)) N(theta; m, tau)."""

    def log_integrand(theta):
        p = expit(alpha + np.array([r[1] for r in rows]) * theta)
        like = stats.binom.logpmf([r[2] for r in rows], [r[3] for r in rows], p)
        return like.sum() + stats.norm.logpdf(theta, m, tau)

    # scale by the largest value on a fine grid: the integrand may be 1e-300
    lo, hi = min(m - 12 * tau, -8), max(m + 12 * tau, 8)
    grid = np.linspace(lo, hi, 4001)
    top = max(log_integrand(t) for t in grid)
    peak = grid[np.argmax([log_integrand(t) for t in grid])]
    value, _ = integrate.quad(
        lambda t: np.exp(log_integrand(t) - top),
        lo, hi, points=[peak], limit=400, epsabs=1e-13, epsrel=1e-11,
    )  # fmt: skip
    return np.log(value) + top


def grid_binomial(rows, a_mean, a_sd, m, tau):
    """As :func:`quad_binomial` with the baseline alpha ~ N(a_mean, a_sd) integrated too.

    A trapezoid rule on a fine 2-D grid (errors far below 1e-6 for integrands this
    smooth; scipy's dblquad loses digits on the narrow peaks of large trials).
    """
    logits = [np.log((r[2] + 0.5) / (r[3] - r[2] + 0.5)) for r in rows]
    # wide enough for the integrand's peak, which lies between the prior and the data
    theta = np.linspace(min(m - 10 * tau, -6), max(m + 10 * tau, 6), 1201)
    alpha = np.linspace(
        min(min(logits) - 4, a_mean - 8 * a_sd), max(max(logits) + 4, a_mean + 8 * a_sd), 1201
    )
    T, A = np.meshgrid(theta, alpha, indexing="ij")
    log_f = stats.norm.logpdf(T, m, tau) + stats.norm.logpdf(A, a_mean, a_sd)
    for _, treat, events, n in rows:
        log_f += stats.binom.logpmf(events, n, expit(A + treat * T))
    top = log_f.max()
    inner = integrate.trapezoid(np.exp(log_f - top), alpha, axis=1)
    return np.log(integrate.trapezoid(inner, theta)) + top


#: study tables: (study, treat, events, n); hostile cases named
TABLES = {
    "ordinary": [("A", 0.5, 12, 40), ("A", -0.5, 6, 40)],
    "zero cells": [("A", 0.5, 0, 25), ("A", -0.5, 3, 30)],
    "all events": [("A", 0.5, 50, 50), ("A", -0.5, 41, 50)],
    "large trial": [("A", 0.5, 900, 3000), ("A", -0.5, 700, 3000)],
    "single arm": [("A", 0.5, 7, 20)],
    "three arms": [("A", 0.5, 9, 30), ("A", 0.5, 14, 30), ("A", -0.5, 5, 30)],
}
#: draws of (mu, tau, alpha)
DRAWS = [(0.3, 0.4, -1.0), (-0.5, 0.05, 0.2), (1.2, 1.5, -0.3)]


@pytest.mark.parametrize("rows", TABLES.values(), ids=TABLES.keys())
def test_binomial_normal_marginal_matches_quadrature_with_baselines_at_their_draws(rows):
    # a non-normal baseline prior keeps the fixed baselines at their draws
    data = arms(rows)
    mu, tau, alpha = (np.array(v) for v in zip(*DRAWS, strict=True))
    post = posterior(mu=mu, tau=tau, alpha=alpha[:, None])
    priors = {"baseline": parse_prior("StudentT(3, 0, 5)")}
    ll = get_family("binomial-normal").marginal_log_likelihood(data, post, priors)
    assert ll["events"].dims == ("chain", "draw", "study")
    for s, (m, t, a) in enumerate(DRAWS):
        assert ll["events"].values[0, s, 0] == pytest.approx(quad_binomial(rows, a, m, t), abs=1e-6)


@pytest.mark.parametrize("rows", TABLES.values(), ids=TABLES.keys())
def test_binomial_normal_marginal_integrates_a_fixed_baseline_against_its_prior(rows):
    data = arms(rows)
    mu, tau, alpha = (np.array(v) for v in zip(*DRAWS, strict=True))
    post = posterior(mu=mu, tau=tau, alpha=alpha[:, None])
    priors = {"baseline": parse_prior("Normal(-0.5, 2)")}
    ll = get_family("binomial-normal").marginal_log_likelihood(data, post, priors)
    assert ll.attrs["loo"] == "leave-one-study-out"
    for s, (m, t, _) in enumerate(DRAWS):
        expected = grid_binomial(rows, -0.5, 2.0, m, t)
        assert ll["events"].values[0, s, 0] == pytest.approx(expected, abs=1e-5)


def test_binomial_normal_random_baselines_and_covariates_are_integrated_per_study():
    rows = TABLES["ordinary"] + [("B", 0.5, 20, 60), ("B", -0.5, 11, 60)]
    rows = [(("A" if r[0] == "A" else "B"), *r[1:]) for r in rows]
    data = arms(rows, covariate=[0.0, 1.0])
    post = posterior(
        mu=[0.2, -0.1],
        tau=[0.3, 0.6],
        beta=[[0.5], [-0.2]],
        alpha_mu=[-1.0, -0.6],
        alpha_sigma=[0.4, 0.9],
        alpha_z=[[0.0, 0.0], [0.0, 0.0]],
    )
    ll = get_family("binomial-normal").marginal_log_likelihood(data, post)
    for s, (m, t, b, am, asd) in enumerate(
        [(0.2, 0.3, 0.5, -1.0, 0.4), (-0.1, 0.6, -0.2, -0.6, 0.9)]
    ):
        for i, study in enumerate(["A", "B"]):
            study_rows = [r for r in rows if r[0] == study]
            expected = grid_binomial(study_rows, am, asd, m + b * i, t)
            assert ll["events"].values[0, s, i] == pytest.approx(expected, abs=1e-5)


def test_binomial_normal_without_pooling_sums_the_arms_given_theta():
    rows = TABLES["ordinary"]
    data = arms(rows)
    post = posterior(theta=[[0.4]], alpha=[[-1.0]])
    ll = get_family("binomial-normal").marginal_log_likelihood(data, post)
    p = expit(-1.0 + np.array([0.5, -0.5]) * 0.4)
    assert ll.attrs["loo"] == "conditional"
    assert ll["events"].values[0, 0, 0] == pytest.approx(stats.binom.logpmf([12, 6], 40, p).sum())


# ---------------------------------------------------------------------- normal-arm


def test_normal_arm_marginal_is_the_multivariate_normal_of_the_arm_means():
    rows = [("A", 0.5, 12.0, 1.5), ("A", -0.5, 15.0, 1.2), ("A", 0.5, 10.0, 2.0)]
    data = arms(rows)
    mu, tau = np.array([-2.0, -4.0]), np.array([1.0, 3.0])
    priors = {"baseline": parse_prior("Normal(10, 20)")}
    ll = get_family("normal-arm").marginal_log_likelihood(
        data, posterior(mu=mu, tau=tau, alpha=[[0.0], [0.0]]), priors
    )
    t, y, se = np.array([0.5, -0.5, 0.5]), np.array([12.0, 15.0, 10.0]), np.array([1.5, 1.2, 2.0])
    for s in range(2):
        cov = np.diag(se**2) + 20.0**2 + tau[s] ** 2 * np.outer(t, t)
        expected = stats.multivariate_normal.logpdf(y, 10.0 + t * mu[s], cov)
        assert ll["mean"].values[0, s, 0] == pytest.approx(expected, rel=1e-9)


def test_exposure_response_keeps_the_conditional_loglik_labelled():
    assert get_family("exposure-response").marginal_log_likelihood(None, None) is None
    assert "conditional" in get_family("exposure-response").conditional_loo_note


# ------------------------------------------------------------- acceptance by MCMC


CONSISTENT_STUDIES = "study,yi,sei,measure\nS1,0.30,0.12,SMD\nS2,0.32,0.15,SMD\n" + (
    "S3,0.28,0.10,SMD\nS4,0.31,0.20,SMD\n"
)
CONSISTENT_ARMS = "study,arm,outcome,n,events,mean,sd,role,timepoint\n" + "".join(
    f"S{i},treated,outcome,{n},{e1},,,experimental,end\nS{i},control,outcome,{n},{e0},,,control,end\n"
    for i, (n, e1, e0) in enumerate([(100, 30, 20), (120, 37, 25), (80, 24, 16), (150, 44, 30)], 1)
)
FAST = {"method": "mcmc", "draws": 500, "tune": 500, "chains": 4, "seed": 1}


def max_k(fit) -> float:
    table = loo_table(fit.idata)
    assert table.attrs["loo"] == "leave-one-study-out"
    return float(table["pareto_k"].max())


def test_pareto_k_is_small_on_eight_schools():
    fit = bk.fit(bk.data_path("eight_schools.csv"), priors={"tau": "HalfCauchy(5)"}, **FAST)
    assert max_k(fit) < 0.7


@pytest.mark.parametrize(
    "family, table",
    [("normal-normal", CONSISTENT_STUDIES), ("binomial-normal", CONSISTENT_ARMS)],
)
def test_pareto_k_is_small_on_a_consistent_four_study_table(tmp_path, family, table):
    path = tmp_path / "four.csv"
    path.write_text(table)
    fit = bk.fit(path, family, **FAST)
    assert max_k(fit) < 0.7
    check = next(c for c in fit.checks if c.name == "pareto_k")
    assert check.verdict == "pass" and "leave-one-study-out" in check.message


# ------------------------------------------------------------ compare and advice


def hand_made_run(path, loglik, kind=None):
    """A run directory with a one-chain posterior and a labelled log-likelihood."""
    from arviz_base import from_dict

    tree = from_dict(
        {"posterior": {"mu": np.zeros((1, 50))}, "log_likelihood": {"y": loglik}},
        dims={"y": ["study"]},
    )
    if kind is not None:
        ds = tree.log_likelihood.to_dataset()
        ds.attrs["loo"] = kind
        tree["log_likelihood"] = ds
    path.mkdir()
    tree.to_netcdf(path / "posterior.nc", engine="h5netcdf")
    (path / "manifest.json").write_text('{"data": {}}')
    return path


def test_compare_says_leave_one_study_out_and_refuses_to_mix_kinds(tmp_path):
    from bayeskit.compare import compare_runs
    from bayeskit.errors import UserError

    rng = np.random.default_rng(3)
    ll = stats.norm.logpdf(rng.normal(size=4), rng.normal(0, 0.1, size=(1, 50, 1)), 1.0)
    a = hand_made_run(tmp_path / "a", ll, "leave-one-study-out")
    b = hand_made_run(tmp_path / "b", ll - 0.1, "leave-one-study-out")
    old = hand_made_run(tmp_path / "old", ll)  # written before the label: conditional
    assert compare_runs([a, b]).attrs["loo"] == "leave-one-study-out"
    with pytest.raises(UserError, match="different questions.*old: conditional"):
        compare_runs([a, old])


def test_pareto_k_advice_points_to_the_data_and_sensitivity_not_a_missing_model():
    from arviz_base import from_dict

    from bayeskit.diagnostics import diagnose

    rng = np.random.default_rng(14)
    mu = rng.normal(0, 0.3, size=(4, 500, 1))
    ll = stats.norm.logpdf(np.array([-0.4, 0.1, 15.0]), mu, 1.0)
    tree = from_dict(
        {"posterior": {"mu": mu[..., 0]}, "log_likelihood": {"y": ll}},
        dims={"y": ["study"]},
        coords={"study": ["A", "B", "C"]},
    )
    ds = tree.log_likelihood.to_dataset()
    ds.attrs["loo"] = "leave-one-study-out"
    tree["log_likelihood"] = ds
    check = next(c for c in diagnose(tree) if c.name == "pareto_k")
    assert check.verdict == "fail" and check.details["flagged"] == ["C"]
    assert "Student" not in check.message and "heavier-tailed" not in check.message
    assert "bayeskit sensitivity" in check.message and "Check its data" in check.message
    assert "leave-one-study-out" in check.message


def test_a_conditional_loo_warns_but_never_fails_the_fit():
    # the same influential study, its LOO labelled conditional (as exposure-response and
    # no pooling are): a high k is expected there and says nothing about the posterior
    from arviz_base import from_dict

    from bayeskit.diagnostics import diagnose

    rng = np.random.default_rng(14)
    mu = rng.normal(0, 0.3, size=(4, 500, 1))
    ll = stats.norm.logpdf(np.array([-0.4, 0.1, 15.0]), mu, 1.0)
    verdicts = {}
    for kind in ("leave-one-study-out", "conditional"):
        tree = from_dict(
            {"posterior": {"mu": mu[..., 0]}, "log_likelihood": {"y": ll}},
            dims={"y": ["study"]},
            coords={"study": ["A", "B", "C"]},
        )
        ds = tree.log_likelihood.to_dataset()
        ds.attrs["loo"] = kind
        tree["log_likelihood"] = ds
        check = next(c for c in diagnose(tree) if c.name == "pareto_k")
        assert check.value > 1 and check.details["flagged"] == ["C"]
        verdicts[kind] = check.verdict
    assert verdicts == {"leave-one-study-out": "fail", "conditional": "warn"}
