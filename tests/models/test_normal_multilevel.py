"""normal-multilevel: the three-level model against brms and metafor, its data rules, rho.

References (tests/reference/multilevel_brms.R, run once, output committed in
multilevel_brms.json): Konstantopoulos (2011) school-calendar data, 56 effects in 11
districts (metadat::dat.konstantopoulos2011); brms 2.18 ``yi | se(sei) ~ 1 +
(1 | district/school)`` with mu ~ Normal(0, 1) and both SDs ~ HalfNormal(0.5), 4 x 10,000
draws, no divergences (ESS > 10,000: the reference's MCSE is below 0.01 posterior SD);
metafor 3.8 ``rma.mv(yi, vi, random = ~ 1 | district/school)`` REML and ML.
"""

import json

import numpy as np
import pandas as pd
import pytest
from scipy import optimize, stats
from typer.testing import CliRunner

import bayeskit as bk
from bayeskit.cli import app
from bayeskit.exact_multilevel import log_marginal, multilevel_posterior
from bayeskit.families import get_family
from bayeskit.families.normal_multilevel import (
    multilevel_data,
    rho_sensitivity,
    sampling_covariances,
)
from bayeskit.priors import parse_prior
from tests.conftest import REFERENCE

runner = CliRunner()
DATA = bk.data_path("konstantopoulos2011.csv")
REF = json.loads((REFERENCE / "multilevel_brms.json").read_text())
BRMS = REF["brms"]["posterior"]
#: our names for brms's: district is the study level, school the effect-size level
NAMES = {"mu": "mu", "tau_study": "tau_district", "tau_es": "tau_school"}
PRIORS = {"mu": "Normal(0, 1)", "tau_study": "HalfNormal(0.5)", "tau_es": "HalfNormal(0.5)"}
#: the acceptance bound of issue 17: posterior means within 0.15 posterior SD of brms
WITHIN_SD = 0.15


@pytest.fixture(scope="module")
def data():
    return multilevel_data(bk.load_evidence(DATA))


@pytest.fixture(scope="module")
def exact_fit():
    return bk.fit(DATA, "normal-multilevel", priors=PRIORS, seed=1)


def test_bundled_data_are_metadats(data):
    raw = pd.read_csv(REFERENCE / "konstantopoulos2011.csv")
    assert (len(data.effect), len(data.study)) == (56, 11)
    np.testing.assert_array_equal(data.yi, raw["yi"].to_numpy())
    np.testing.assert_allclose(data.sei**2, raw["vi"].to_numpy(), rtol=1e-12)
    assert data.effect[:2] == ["11:1", "11:2"]


def test_exact_engine_answers_by_default_and_matches_brms(exact_fit):
    # brms: mu 0.1815 (SD 0.0959), tau_district 0.2843 (0.0848), tau_school 0.1878 (0.0325);
    # the exact grid gives 0.1820, 0.2836, 0.1876: all within 0.01 SD
    assert exact_fit.method == "exact"
    table = exact_fit.summary()
    for ours, theirs in NAMES.items():
        ref = BRMS[theirs]
        gap = abs(table.loc[ours, "mean"] - ref["mean"]) / ref["sd"]
        assert gap < WITHIN_SD, (ours, gap)
        assert gap < 0.05, (ours, gap)  # what the grid achieves: well inside the bound
        assert table.loc[ours, "sd"] == pytest.approx(ref["sd"], rel=0.03)
        for q in ("q2.5", "q97.5"):
            assert abs(table.loc[ours, q] - ref[q]) / ref["sd"] < WITHIN_SD, (ours, q)


def test_variance_components_and_i2_shares(exact_fit):
    table = exact_fit.summary()
    tau2 = table.loc["tau2_study", "mean"]
    assert tau2 == pytest.approx(
        table.loc["tau_study", "sd"] ** 2 + table.loc["tau_study", "mean"] ** 2, rel=1e-3
    )
    # typical sampling variance of the 56 effects (Higgins & Thompson eq. 9)
    w = 1 / pd.read_csv(DATA)["vi"].to_numpy()
    s2 = 55 * w.sum() / (w.sum() ** 2 - np.sum(w**2))
    assert table.loc["s2_typical", "mean"] == pytest.approx(s2)
    # at metafor's REML estimates the shares are 0.0651 / (0.0651 + 0.0327 + s2) etc.;
    # the posterior medians sit near those (the posterior of tau_study is right-skewed)
    reml = REF["rma_mv_reml"]
    total = reml["sigma2_district"] + reml["sigma2_school"] + s2
    assert table.loc["I2_study", "q50"] == pytest.approx(reml["sigma2_district"] / total, abs=0.05)
    assert table.loc["I2_es", "q50"] == pytest.approx(reml["sigma2_school"] / total, abs=0.05)
    i2 = table.loc[["I2_study", "I2_es", "I2_total"], "mean"]
    assert i2["I2_study"] + i2["I2_es"] == pytest.approx(i2["I2_total"], abs=1e-9)


def test_flat_prior_maximum_is_metafors_reml(data):
    # With mu flat the marginal likelihood of the two SDs is the restricted likelihood, so
    # its maximum is rma.mv's REML estimate; the optimiser's tolerance (1e-8 in the log
    # likelihood) leaves about 1e-3 in the SDs, so the bound is 2e-3.
    def negative(log_taus):
        ll, _, _ = log_marginal(data, 0.0, [np.exp(log_taus[0])], [np.exp(log_taus[1])])
        return -ll[0]

    best = optimize.minimize(negative, np.log([0.2, 0.2]), method="Nelder-Mead",
                             options={"xatol": 1e-8, "fatol": 1e-10})  # fmt: skip
    reml = REF["rma_mv_reml"]
    assert np.exp(best.x) == pytest.approx([reml["tau_district"], reml["tau_school"]], abs=2e-3)
    _, m, V = log_marginal(data, 0.0, [reml["tau_district"]], [reml["tau_school"]])
    assert m[0] == pytest.approx(reml["mu"], abs=1e-6)
    assert np.sqrt(V[0]) == pytest.approx(reml["se_mu"], abs=1e-6)


def test_near_flat_posterior_mode_is_near_reml(data):
    # HalfNormal(100) is flat to 1e-5 over [0, 1]; the grid's mode is within one grid step
    # (the refined grid's step here is about 0.01) of the REML estimate
    pri = {"mu": parse_prior("Normal(0, 100)"), "tau_study": parse_prior("HalfNormal(100)"),
           "tau_es": parse_prior("HalfNormal(100)")}  # fmt: skip
    post = multilevel_posterior(data, pri)
    step = np.diff(post.grids["tau_study"][0]).max()
    mode = post.mode()
    reml = REF["rma_mv_reml"]
    assert mode["tau_study"] == pytest.approx(reml["tau_district"], abs=max(step, 0.01))
    assert mode["tau_es"] == pytest.approx(reml["tau_school"], abs=0.01)


def test_within_study_correlation_in_the_exact_likelihood(data):
    # the block sums against one dense multivariate normal of all 56 effects, mu
    # integrated under Normal(0.1, 0.5): y ~ N(0.1, S + tau_s^2 J_blocks + tau_e^2 I + 0.25)
    rho, ts, te = 0.4, 0.3, 0.15
    from scipy.linalg import block_diag

    S = block_diag(*sampling_covariances(data, rho))
    same = data.study_idx[:, None] == data.study_idx[None, :]
    cov = S + ts**2 * same + te**2 * np.eye(len(data.yi)) + 0.5**2
    dense = stats.multivariate_normal(np.full(len(data.yi), 0.1), cov).logpdf(data.yi)
    ll, _, _ = log_marginal(data, rho, [ts], [te], m0=0.1, p0=0.5**-2)
    # log_marginal drops -n/2 log(2 pi) and the prior's normalising constant -1/2 log(p0)
    const = -0.5 * len(data.yi) * np.log(2 * np.pi) + 0.5 * np.log(0.5**-2)
    assert ll[0] + const == pytest.approx(dense, abs=1e-8)


def test_within_study_correlation_in_the_mcmc_likelihood(data):
    family = get_family("normal-multilevel")
    options = family.options({"rho": 0.5})
    priors = family.resolve_priors(data, PRIORS)
    model = family.build(data, priors, options)
    theta = np.full(len(data.yi), 0.2)
    from scipy.linalg import block_diag

    S = block_diag(*sampling_covariances(data, 0.5))
    import pymc as pm

    got = pm.logp(model["y"], data.yi).eval({model["theta"]: theta})
    assert float(np.sum(got)) == pytest.approx(stats.multivariate_normal(theta, S).logpdf(data.yi))


def test_rho_widens_mu_and_is_checked():
    table = rho_sensitivity(DATA, [0.0, 0.5], method="exact", priors=PRIORS)
    assert table.loc[0.5, "mu_sd"] > table.loc[0.0, "mu_sd"]
    family = get_family("normal-multilevel")
    with pytest.raises(bk.UserError, match="option 'rho'"):
        family.options({"rho": 1.0})
    # 11 effects in the largest district: rho must exceed -1/10
    with pytest.raises(bk.UserError, match=r"rho' = -0.2 is not a correlation of 11 effects"):
        bk.fit(DATA, "normal-multilevel", model_options={"rho": -0.2})


def _write(tmp_path, text):
    path = tmp_path / "ml.csv"
    path.write_text(text)
    return str(path)


HEADER = "study,es_id,yi,sei\n"


@pytest.mark.parametrize(
    ("rows", "where", "rule"),
    [
        ("A,1,0.1,0.2\nA,1,0.3,0.2\n", "row 3, column 'es_id'", "es_id repeats within its study"),
        ("A,1,0.1,0.2\nA,,0.3,0.2\n", "row 3, column 'es_id'", "each row needs an es_id"),
    ],
    ids=["repeated", "missing"],
)
def test_validate_names_a_bad_es_id(tmp_path, rows, where, rule):
    result = runner.invoke(app, ["validate", _write(tmp_path, HEADER + rows)])
    assert result.exit_code == 2 and "Traceback" not in result.output
    assert where in result.output and rule in result.output


def test_validate_says_a_repeated_study_needs_es_id(tmp_path):
    result = runner.invoke(
        app, ["validate", _write(tmp_path, "study,yi,sei\nA,0.1,0.2\nA,0.3,0.2\n")]
    )
    assert result.exit_code == 2
    assert "row 3, column 'study'" in result.output and "'es_id' column" in result.output


def test_validate_refuses_a_study_in_two_clusters(tmp_path):
    text = "study,es_id,cluster,yi,sei\nA,1,g1,0.1,0.2\nA,2,g2,0.3,0.2\nB,1,g2,0.2,0.2\n"
    result = runner.invoke(app, ["validate", _write(tmp_path, text)])
    assert result.exit_code == 2
    assert "row 3, column 'cluster'" in result.output and "same cluster" in result.output


def test_clusters_are_a_fourth_level_left_to_mcmc(tmp_path):
    text = HEADER.replace("es_id", "es_id,cluster") + "".join(
        f"S{i},{j},g{i % 2},{0.1 * i - 0.05 * j:.2f},0.2\n" for i in range(4) for j in range(2)
    )
    path = _write(tmp_path, text)
    model = bk.build_model(path, "normal-multilevel", priors=PRIORS)
    assert [rv.name for rv in model.free_RVs][:4] == ["mu", "tau_cluster", "w_z", "tau_study"]
    from bayeskit.fitting import _setup, choose_engine

    family = get_family("normal-multilevel")
    prepared, chosen, options = _setup(family, path, PRIORS, {}, None, None, None, ())
    assert prepared.cluster == ["g0", "g1"] and prepared.cluster_idx.tolist() == [0, 1, 0, 1]
    engine, reason, _ = choose_engine(family, prepared, chosen, options, "auto")
    assert engine == "mcmc" and "three" in reason


def test_cli_fit_with_a_spec_and_rho(tmp_path):
    spec = tmp_path / "ml.toml"
    spec.write_text(
        f'[data]\nfiles = ["{DATA}"]\n[model]\nfamily = "normal-multilevel"\nrho = 0.5\n'
        '[priors]\nmu = "Normal(0, 1)"\n'
    )
    result = runner.invoke(app, ["fit", str(spec), "--json"])
    assert result.exit_code == 0, result.output
    assert "tau_study" in result.output and "I2_es" in result.output
    direct = bk.fit(DATA, "normal-multilevel", priors={"mu": "Normal(0, 1)"},
                    model_options={"rho": 0.5})  # fmt: skip
    assert direct.settings["rho"] == 0.5
    assert f"{direct.summary().loc['mu', 'mean']:.4f}"[:5] in result.output


@pytest.mark.slow
def test_mcmc_matches_brms_and_the_exact_engine():
    fit = bk.fit(DATA, "normal-multilevel", priors=PRIORS, method="mcmc", draws=2500,
                 chains=4, seed=7)  # fmt: skip
    table = fit.summary()
    exact = bk.fit(DATA, "normal-multilevel", priors=PRIORS).summary()
    for ours, theirs in NAMES.items():
        ref = BRMS[theirs]
        assert abs(table.loc[ours, "mean"] - ref["mean"]) / ref["sd"] < WITHIN_SD, ours
        # MCMC vs exact within 4 Monte Carlo standard errors
        assert (
            abs(table.loc[ours, "mean"] - exact.loc[ours, "mean"])
            < 4 * table.loc[ours, "mcse_mean"]
        ), ours
    agreement = next(c for c in fit.checks if c.name == "exact_agreement")
    assert agreement.verdict == "pass"


def test_sensitivity_sweeps_rho_from_the_spec(tmp_path):
    from bayeskit.sensitivity import sensitivity
    from bayeskit.spec import load_spec

    path = tmp_path / "ml.toml"
    path.write_text(
        f'[data]\nfiles = ["{DATA}"]\n[model]\nfamily = "normal-multilevel"\n'
        '[priors]\nmu = "Normal(0, 1)"\n'
        "[sensitivity]\nleave_one_out = false\noptions = [{ rho = 0.5 }, { rho = 0.9 }]\n"
    )
    table = sensitivity(load_spec(path), scheduler="none")["table"]
    mu = table[table["parameter"] == "mu"].set_index("scenario")
    assert mu.index.tolist() == ["main", "option: rho = 0.5", "option: rho = 0.9"]
    assert mu["sd"].is_monotonic_increasing  # correlated errors carry less information
    assert sorted(table["parameter"].unique()) == ["mu", "tau_es", "tau_study"]


def test_arm_level_outcomes_are_computed_one_at_a_time_and_nested():
    # Jovaisa 2006 reports peak MAP and peak heart rate on the same patients: two SMDs of
    # one study, each equal to the effect computed for its outcome alone
    ev = bk.load_evidence(bk.data_path("opioid_withdrawal.csv"))
    jovaisa = ev[ev["study"] == "JOVAISA2006"]
    d = multilevel_data(jovaisa, measure="SMD")
    assert d.effect == ["JOVAISA2006:peak_map", "JOVAISA2006:peak_hr"]
    assert d.study == ["JOVAISA2006"] and d.measure == "SMD"
    for i, outcome in enumerate(("peak_map", "peak_hr")):
        alone = bk.effects(jovaisa, "SMD", outcome=outcome)
        assert d.yi[i] == pytest.approx(alone["yi"].iloc[0])
        assert d.sei[i] == pytest.approx(alone["sei"].iloc[0])
