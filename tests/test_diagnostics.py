"""Tests for bayeskit.diagnostics.

Most tests build synthetic DataTrees with known defects, so that the truth is known and the
tests are fast; one test fits eight schools with PyMC + nutpie to check that the sampler's
real ``sample_stats`` names are read.
"""

import json
import math

import numpy as np
import pytest
from arviz_base import from_dict
from scipy import stats

from bayeskit.diagnostics import Check, diagnose, loo_table, to_json, verdict
from bayeskit.errors import UserError

CHAINS, DRAWS = 4, 500
STUDIES = ["A", "B", "C"]
ALL_CHECKS = {"r_hat", "ess_bulk", "ess_tail", "divergences", "tree_depth", "e_bfmi", "pareto_k"}


def by_name(checks: list[Check]) -> dict[str, Check]:
    return {c.name: c for c in checks}


def ar1(rng, phi: float, shape: tuple[int, ...]) -> np.ndarray:
    """Stationary AR(1) draws along axis 1 with unit marginal variance."""
    eps = rng.normal(size=shape) * math.sqrt(1 - phi**2)
    x = np.empty(shape)
    x[:, 0] = rng.normal(size=(shape[0], *shape[2:]))
    for t in range(1, shape[1]):
        x[:, t] = phi * x[:, t - 1] + eps[:, t]
    return x


def make_fit(
    rng,
    *,
    posterior=None,
    sample_stats=None,
    log_likelihood=None,
    dims=None,
):
    """A fit as a DataTree: iid draws of mu, tau, theta[study] unless replaced."""
    shape = (CHAINS, DRAWS)
    data = {
        "posterior": posterior
        or {
            "mu": rng.normal(size=shape),
            "tau": np.abs(rng.normal(size=shape)),
            "theta": rng.normal(size=(*shape, len(STUDIES))),
        }
    }
    if sample_stats is not None:
        data["sample_stats"] = sample_stats
    if log_likelihood is not None:
        data["log_likelihood"] = log_likelihood
    return from_dict(
        data,
        dims={"theta": ["study"], "theta_z": ["study"], "y": ["study"], **(dims or {})},
        coords={"study": STUDIES},
    )


def healthy_stats(rng) -> dict[str, np.ndarray]:
    """nutpie-named sample stats of a sampler with no problems."""
    shape = (CHAINS, DRAWS)
    return {
        "diverging": np.zeros(shape, dtype=bool),
        "depth": rng.integers(2, 5, size=shape),
        "maxdepth_reached": np.zeros(shape, dtype=bool),
        # Independent energies: E-BFMI = 2 E[(dE)^2]/2 / var(E) is about 2.
        "energy": rng.normal(size=shape),
    }


def normal_loglik(rng, y: np.ndarray, sd: float = 0.3) -> dict[str, np.ndarray]:
    """Log-likelihood of y[study] ~ Normal(mu, 1) with mu's draws centred at 0."""
    mu = rng.normal(0, sd, size=(CHAINS, DRAWS, 1))
    return {"y": stats.norm.logpdf(y, mu)}


# ---------------------------------------------------------------------------------------
# (a) a healthy fit passes everything


def test_well_mixed_iid_draws_pass_every_check():
    rng = np.random.default_rng(1)
    fit = make_fit(
        rng,
        sample_stats=healthy_stats(rng),
        log_likelihood=normal_loglik(rng, np.array([-0.4, 0.1, 0.5])),
    )
    checks = diagnose(fit)
    assert [c.name for c in checks] == [
        "r_hat",
        "ess_bulk",
        "ess_tail",
        "divergences",
        "tree_depth",
        "e_bfmi",
        "pareto_k",
    ]
    assert {c.name: c.verdict for c in checks} == dict.fromkeys(ALL_CHECKS, "pass")
    assert verdict(checks) == "pass"
    # Components are labelled by their coordinates.
    assert set(by_name(checks)["r_hat"].details["r_hat"]) == {
        "mu",
        "tau",
        "theta[A]",
        "theta[B]",
        "theta[C]",
    }
    # 2000 independent draws: ESS near 2000, E-BFMI near 2 (independent energies).
    assert by_name(checks)["ess_bulk"].value > 1500
    assert by_name(checks)["e_bfmi"].value == pytest.approx(2, abs=0.3)


# ---------------------------------------------------------------------------------------
# (b) R-hat


def test_shifted_chain_fails_rhat_and_names_the_parameter():
    rng = np.random.default_rng(2)
    fit = make_fit(rng)
    # One chain stuck at a different mode of tau only.
    fit.posterior["tau"][3] += 2.0
    check = by_name(diagnose(fit))["r_hat"]
    assert check.verdict == "fail"
    assert check.value > 1.05
    assert check.value == max(check.details["r_hat"].values())
    assert "for tau:" in check.message
    assert check.details["r_hat"]["mu"] < 1.01


def test_small_shift_warns_rhat():
    rng = np.random.default_rng(3)
    mu = rng.normal(size=(CHAINS, DRAWS))
    # Shifting one chain of four by half an sd gives R-hat near 1 + 0.11 * 0.5**2 = 1.03
    # (split R-hat with 8 half-chains): between the two thresholds.
    mu[0] += 0.5
    check = diagnose(make_fit(rng, posterior={"mu": mu}))[0]
    assert 1.01 <= check.value < 1.05
    assert check.verdict == "warn"


def test_single_chain_rhat_compares_its_halves():
    rng = np.random.default_rng(4)
    drift = rng.normal(size=(1, 1000)) + np.linspace(0, 3, 1000)
    steady = rng.normal(size=(1, 1000))
    fit = from_dict({"posterior": {"drift": drift, "steady": steady}})
    check = diagnose(fit)[0]
    assert check.details["split_single_chain"] is True
    assert check.verdict == "fail"
    assert "for drift:" in check.message
    assert check.details["r_hat"]["steady"] < 1.01


def test_constant_component_is_reported_not_computed_without_warning():
    rng = np.random.default_rng(5)
    fit = make_fit(
        rng,
        posterior={"mu": rng.normal(size=(CHAINS, DRAWS)), "fixed": np.ones((CHAINS, DRAWS))},
    )
    check = diagnose(fit)[0]
    assert check.verdict == "pass"
    assert check.details["not_computed"] == ["fixed"]
    assert "fixed" in check.message


# ---------------------------------------------------------------------------------------
# (c) ESS


def test_strongly_autocorrelated_draws_fail_ess():
    rng = np.random.default_rng(6)
    # AR(1) with phi = 0.99: ESS per chain is about 500 * (1 - phi) / (1 + phi) = 2.5.
    fit = make_fit(rng, posterior={"mu": ar1(rng, 0.99, (CHAINS, DRAWS))})
    checks = by_name(diagnose(fit))
    for name in ("ess_bulk", "ess_tail"):
        assert checks[name].verdict == "fail"
        assert checks[name].value < 100
        assert "for mu" in checks[name].message
        assert "--draws" in checks[name].message


def test_moderately_autocorrelated_draws_warn_ess():
    rng = np.random.default_rng(7)
    # phi = 0.8: ESS about 2000 * 0.2 / 1.8 = 222, between 100 and 400.
    fit = make_fit(rng, posterior={"mu": ar1(rng, 0.8, (CHAINS, DRAWS))})
    check = by_name(diagnose(fit))["ess_bulk"]
    assert 100 <= check.value < 400
    assert check.verdict == "warn"
    assert check.details["target"] == 400


# ---------------------------------------------------------------------------------------
# (d) divergences


def test_three_divergences_fail_and_mention_tau():
    rng = np.random.default_rng(8)
    sample_stats = healthy_stats(rng)
    sample_stats["diverging"][0, [10, 20]] = True
    sample_stats["diverging"][2, 30] = True
    check = by_name(diagnose(make_fit(rng, sample_stats=sample_stats)))["divergences"]
    assert check.verdict == "fail"
    assert check.value == 3
    assert "3 divergent" in check.message
    assert "tau" in check.message
    assert "--target-accept" in check.message
    assert check.details["per_chain"] == [2, 0, 1, 0]


def test_divergence_message_without_tau():
    rng = np.random.default_rng(9)
    sample_stats = healthy_stats(rng)
    sample_stats["diverging"][1, 5] = True
    fit = make_fit(
        rng, posterior={"mu": rng.normal(size=(CHAINS, DRAWS))}, sample_stats=sample_stats
    )
    check = by_name(diagnose(fit))["divergences"]
    assert "1 divergent transition " in check.message
    assert "tau" not in check.message


# ---------------------------------------------------------------------------------------
# (e) tree depth


@pytest.mark.parametrize(
    ("depth_name", "flag_name"),
    [("depth", "maxdepth_reached"), ("tree_depth", "reached_max_treedepth")],
    ids=["nutpie", "pymc"],
)
def test_hitting_max_treedepth_warns_with_either_samplers_names(depth_name, flag_name):
    rng = np.random.default_rng(10)
    depth = rng.integers(2, 5, size=(CHAINS, DRAWS))
    depth[1, :7] = 10
    sample_stats = {depth_name: depth, flag_name: depth >= 10}
    check = by_name(diagnose(make_fit(rng, sample_stats=sample_stats)))["tree_depth"]
    assert check.verdict == "warn"
    assert check.value == 7
    assert check.details["per_chain"] == [0, 7, 0, 0]
    assert "not biased" in check.message


def test_max_treedepth_argument_overrides_the_flag():
    rng = np.random.default_rng(11)
    depth = np.full((CHAINS, DRAWS), 3)
    depth[0, 0] = 5
    sample_stats = {"depth": depth, "maxdepth_reached": np.zeros((CHAINS, DRAWS), dtype=bool)}
    fit = make_fit(rng, sample_stats=sample_stats)
    assert by_name(diagnose(fit))["tree_depth"].verdict == "pass"
    check = by_name(diagnose(fit, max_treedepth=5))["tree_depth"]
    assert (check.verdict, check.value, check.details["max_treedepth"]) == ("warn", 1, 5)


def test_depth_without_flag_uses_default_maximum_of_10():
    rng = np.random.default_rng(12)
    depth = np.full((CHAINS, DRAWS), 9)
    depth[2, 3] = 10
    check = by_name(diagnose(make_fit(rng, sample_stats={"depth": depth})))["tree_depth"]
    assert (check.verdict, check.value, check.details["max_treedepth"]) == ("warn", 1, 10)


# ---------------------------------------------------------------------------------------
# (f) E-BFMI


def test_slowly_wandering_energy_warns_ebfmi():
    rng = np.random.default_rng(13)
    sample_stats = healthy_stats(rng)
    # A random walk: successive energies barely change relative to their spread, so
    # E-BFMI = mean((dE)^2) / var(E) is far below 0.3 (about 1 / 80 here).
    sample_stats["energy"][1] = np.cumsum(rng.normal(size=DRAWS))
    check = by_name(diagnose(make_fit(rng, sample_stats=sample_stats)))["e_bfmi"]
    assert check.verdict == "warn"
    assert check.value < 0.3
    assert check.value == min(check.details["per_chain"])
    assert "chain 1:" in check.message
    assert [v < 0.3 for v in check.details["per_chain"]] == [False, True, False, False]


# ---------------------------------------------------------------------------------------
# (g) Pareto k


def test_influential_study_fails_pareto_k_and_is_named():
    rng = np.random.default_rng(14)
    # Study C lies 50 likelihood sds from the posterior of mu: leaving it out moves the
    # posterior far, and importance sampling cannot recover that (k > 1).
    fit = make_fit(rng, log_likelihood=normal_loglik(rng, np.array([-0.4, 0.1, 15.0])))
    ds = fit.log_likelihood.to_dataset()
    ds.attrs["loo"] = "leave-one-study-out"  # a conditional LOO only warns
    fit["log_likelihood"] = ds
    check = by_name(diagnose(fit))["pareto_k"]
    assert check.verdict == "fail"
    assert check.value > 1
    assert check.details["flagged"] == ["C"]
    assert "for C" in check.message
    assert "the fit depends strongly on this study" in check.message.lower()
    assert "unreliable" in check.message


def test_loo_table_is_indexed_by_study_and_applies_sample_size_threshold():
    rng = np.random.default_rng(15)
    fit = make_fit(
        rng,
        log_likelihood=normal_loglik(rng, np.array([0.0, 8.0, 15.0])),
    )
    table = loo_table(fit)
    assert table.index.name == "study"
    assert list(table.index) == STUDIES
    assert list(table.columns) == ["elpd_loo_i", "pareto_k", "verdict"]
    # Vehtari et al. (2024), JMLR 25:72: k_S = min(1 - 1/log10(S), 0.7);
    # for S = 2000 draws that is 0.697.
    good_k = min(1 - 1 / math.log10(CHAINS * DRAWS), 0.7)
    assert table.attrs["good_k"] == pytest.approx(good_k)
    assert table.attrs["good_k"] == pytest.approx(0.697, abs=5e-4)
    expected = ["fail" if k > 1 else "warn" if k > good_k else "pass" for k in table["pareto_k"]]
    assert list(table["verdict"]) == expected
    # The three studies cover the three verdicts.
    assert list(table["verdict"]) == ["pass", "warn", "fail"]


def test_pareto_k_warns_when_worst_k_is_between_threshold_and_one():
    rng = np.random.default_rng(15)
    fit = make_fit(rng, log_likelihood=normal_loglik(rng, np.array([0.0, 8.0, 0.3])))
    check = by_name(diagnose(fit))["pareto_k"]
    assert check.verdict == "warn"
    assert check.details["flagged"] == ["B"]


def test_loo_table_with_two_observation_dims_has_a_multiindex():
    rng = np.random.default_rng(16)
    mu = rng.normal(0, 0.3, size=(CHAINS, DRAWS, 1, 1))
    y = np.array([[0.1, -0.2], [0.3, 0.0]])
    fit = from_dict(
        {"posterior": {"mu": mu[..., 0, 0]}, "log_likelihood": {"y": stats.norm.logpdf(y, mu)}},
        dims={"y": ["study", "arm"]},
        coords={"study": ["A", "B"], "arm": ["control", "treated"]},
    )
    table = loo_table(fit)
    assert table.index.names == ["study", "arm"]
    assert set(by_name(diagnose(fit))["pareto_k"].details["pareto_k"]) == {
        "A, control",
        "A, treated",
        "B, control",
        "B, treated",
    }


def test_loo_table_refuses_ambiguous_or_missing_log_likelihood():
    rng = np.random.default_rng(17)
    with pytest.raises(UserError, match="no log_likelihood group"):
        loo_table(make_fit(rng))
    loglik = normal_loglik(rng, np.array([0.0, 0.1, 0.2]))
    fit = make_fit(
        rng, log_likelihood={"y": loglik["y"], "y2": loglik["y"]}, dims={"y2": ["study"]}
    )
    with pytest.raises(UserError, match=r"several log-likelihoods \(y, y2\)"):
        loo_table(fit)
    assert list(loo_table(fit, var_name="y2").index) == STUDIES
    with pytest.raises(UserError, match="no log-likelihood named 'z'"):
        loo_table(fit, var_name="z")
    # diagnose() checks every log-likelihood and says which one an observation belongs to.
    assert "y2[B]" in by_name(diagnose(fit))["pareto_k"].details["pareto_k"]


# ---------------------------------------------------------------------------------------
# (h) missing groups, variable selection


def test_posterior_only_gets_rhat_and_ess_without_crashing():
    rng = np.random.default_rng(18)
    checks = diagnose(make_fit(rng))
    assert [c.name for c in checks] == ["r_hat", "ess_bulk", "ess_tail"]


def test_scalar_only_posterior():
    rng = np.random.default_rng(19)
    checks = diagnose(from_dict({"posterior": {"tau": np.abs(rng.normal(size=(2, 300)))}}))
    assert {c.verdict for c in checks} == {"pass"}
    assert checks[0].details["r_hat"].keys() == {"tau"}
    # Two chains: the target ESS is 200.
    assert checks[1].details["target"] == 200


def test_auxiliary_variables_are_skipped_by_default():
    rng = np.random.default_rng(20)
    shape = (CHAINS, DRAWS)
    stuck = rng.normal(size=shape)
    stuck[0] += 5
    fit = make_fit(
        rng,
        posterior={
            "mu": rng.normal(size=shape),
            "theta_z": np.repeat(stuck[..., None], len(STUDIES), axis=-1),
            "tau_raw": stuck,
            "_lp": stuck,
        },
    )
    check = diagnose(fit)[0]
    assert check.details["r_hat"].keys() == {"mu"}
    assert check.verdict == "pass"
    assert diagnose(fit, var_names=["tau_raw"])[0].verdict == "fail"


def test_unknown_var_names_is_a_user_error():
    rng = np.random.default_rng(21)
    with pytest.raises(UserError, match="no posterior variable named 'sigma'"):
        diagnose(make_fit(rng), var_names=["mu", "sigma"])
    with pytest.raises(UserError, match="no posterior group"):
        diagnose(from_dict({"observed_data": {"y": np.zeros(3)}}))


# ---------------------------------------------------------------------------------------
# (i) JSON, (j) verdict


def test_to_json_round_trips_through_strict_json():
    rng = np.random.default_rng(22)
    sample_stats = healthy_stats(rng)
    sample_stats["diverging"][0, 0] = True
    fit = make_fit(
        rng,
        posterior={"mu": rng.normal(size=(CHAINS, DRAWS)), "fixed": np.ones((CHAINS, DRAWS))},
        sample_stats=sample_stats,
        log_likelihood=normal_loglik(rng, np.array([0.0, 0.2, 15.0])),
    )
    checks = diagnose(fit)
    report = to_json(checks)
    # allow_nan=False: strict JSON, so the report is readable by any JSON parser.
    back = json.loads(json.dumps(report, allow_nan=False))
    assert back == report
    assert back["verdict"] == "fail"
    assert [c["name"] for c in back["checks"]] == [c.name for c in checks]
    assert set(back["checks"][0]) == {"name", "verdict", "value", "message", "details"}
    assert back["checks"][0]["details"]["r_hat"]["fixed"] is None  # NaN became null


def test_to_json_replaces_nan_value_by_null():
    report = to_json([Check("r_hat", "warn", math.nan, "could not be computed", {"x": [np.nan]})])
    assert json.loads(json.dumps(report, allow_nan=False))["checks"][0]["value"] is None
    assert report["checks"][0]["details"] == {"x": [None]}


@pytest.mark.parametrize(
    ("verdicts", "expected"),
    [
        ([], "pass"),
        (["pass"], "pass"),
        (["pass", "warn"], "warn"),
        (["warn", "pass", "warn"], "warn"),
        (["pass", "fail", "warn"], "fail"),
        (["fail", "warn"], "fail"),
    ],
)
def test_verdict_is_the_worst(verdicts, expected):
    assert verdict([Check("x", v, 0.0, "") for v in verdicts]) == expected


# ---------------------------------------------------------------------------------------
# A real PyMC + nutpie fit: are nutpie's sample_stats names read?


def test_diagnose_reads_a_real_nutpie_fit_of_eight_schools():
    import pymc as pm

    # Rubin (1981), Table 2: the eight schools coaching experiments.
    y = np.array([28, 8, -3, 7, -1, 1, 18, 12], dtype=float)
    sigma = np.array([15, 10, 16, 11, 9, 11, 10, 18], dtype=float)
    schools = list("ABCDEFGH")
    with pm.Model(coords={"study": schools}) as model:
        mu = pm.Normal("mu", 0, 5)
        tau = pm.HalfCauchy("tau", 5)
        theta_z = pm.Normal("theta_z", 0, 1, dims="study")
        theta = pm.Deterministic("theta", mu + tau * theta_z, dims="study")
        pm.Normal("y", theta, sigma=sigma, observed=y, dims="study")
    fit = pm.sample(
        model=model,
        nuts_sampler="nutpie",
        draws=300,
        tune=300,
        chains=2,
        random_seed=1,
        progressbar=False,
    )
    # PyMC 6 deprecates idata_kwargs={"log_likelihood": True} (FutureWarning) in favour of:
    fit = pm.compute_log_likelihood(fit, model=model, progressbar=False)

    checks = by_name(diagnose(fit))
    assert set(checks) == ALL_CHECKS
    assert set(checks["r_hat"].details["r_hat"]) == {"mu", "tau", *(f"theta[{s}]" for s in schools)}
    # nutpie records its maximum depth (10 by default) in the sample_stats attributes.
    assert checks["tree_depth"].details["max_treedepth"] == 10
    assert len(checks["e_bfmi"].details["per_chain"]) == 2
    assert checks["divergences"].details["n_transitions"] == 600
    assert list(checks["pareto_k"].details["pareto_k"]) == schools
    assert checks["pareto_k"].details["good_k"] == pytest.approx(1 - 1 / math.log10(600))
    json.dumps(to_json(list(checks.values())), allow_nan=False)


def test_loo_table_of_a_single_observation_without_dims():
    import numpy as np
    from arviz_base import from_dict
    from scipy import stats

    from bayeskit.diagnostics import loo_table

    rng = np.random.default_rng(2)
    mu = rng.normal(0, 0.3, size=(2, 400))
    idata = from_dict(
        {"posterior": {"mu": mu}, "log_likelihood": {"y": stats.norm.logpdf(0.2, mu)}}
    )
    table = loo_table(idata)
    assert table.index.tolist() == ["y"]
    assert table["verdict"].iloc[0] == "pass"
    assert table["elpd_loo_i"].iloc[0] < 0


@pytest.mark.parametrize(
    ("forms", "target_accept", "advised", "not_advised"),
    [
        (None, 0.9, ["--target-accept 0.99", "non-centred study effects"], []),
        ("noncentered", 0.9, ["--target-accept 0.99", "--parametrization centered"],
         ["non-centred study effects", "--parametrization noncentered"]),
        ("centered", 0.95, ["--target-accept 0.99", "--parametrization noncentered"],
         ["--parametrization centered"]),
        ("noncentered", 0.99, ["--parametrization centered", "already ran in the non-centred"],
         ["--target-accept 0.99", "non-centred study effects"]),
        (["centered", "noncentered"], 0.99, ["informative priors", "--method exact"],
         ["--target-accept", "--parametrization", "reparameterise"]),
    ],
)  # fmt: skip
def test_divergence_advice_never_repeats_what_was_done(forms, target_accept, advised, not_advised):
    import xarray as xr

    stats = xr.Dataset({"diverging": (("chain", "draw"), np.eye(2, 40, dtype=bool))})
    idata = from_dict({"posterior": {"tau": np.abs(np.random.default_rng(0).normal(size=(2, 40)))}})
    idata["sample_stats"] = xr.DataTree(stats)
    (check,) = [
        c
        for c in diagnose(idata, parametrization=forms, target_accept=target_accept)
        if c.name == "divergences"
    ]
    text = " ".join(check.message.split())
    for words in advised:
        assert words in text, (words, text)
    for words in not_advised:
        assert words not in text, (words, text)
