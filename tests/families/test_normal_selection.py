"""The step-function selection model (``normal-selection``) and ``bk.publication_bias``.

Reference: metafor 3.8-1 on Hackshaw et al. (1997, BMJ 315:980), 37 studies of lung
cancer and environmental tobacco smoke (metadat's ``dat.hackshaw1998``, the example of
metafor's ``selmodel`` help page): ``tests/reference/selection_metafor.R`` wrote
``selection_metafor.json`` and the data rows ``hackshaw1998.csv``.
"""

import json

import numpy as np
import pandas as pd
import pytest
from scipy import integrate, stats
from typer.testing import CliRunner

import bayeskit as bk
from bayeskit.cli import app
from bayeskit.families.normal_selection import (
    interval_counts,
    selection_dist,
    selection_loglik,
    selection_logp,
)
from tests.conftest import REFERENCE

HACKSHAW = REFERENCE / "hackshaw1998.csv"
METAFOR = json.loads((REFERENCE / "selection_metafor.json").read_text())


def scipy_loglik(y, se, mu, tau, omega, steps, sign=1.0):
    """The weighted density written out with scipy, interval by interval (Vevea & Hedges
    1995, eq. 4): no cumulative-Dirichlet rearrangement, no log-CDF tricks."""
    sd = np.hypot(tau, se)
    p = stats.norm.sf(sign * y / se)
    edges = [0.0, *steps, 1.0]
    j = np.searchsorted(steps, p)
    # P(p in (a, b]) = P(sign*y in [se z_(1-b), se z_(1-a)))
    probs = [
        stats.norm.cdf(se * stats.norm.isf(a), sign * mu, sd)
        - stats.norm.cdf(se * stats.norm.isf(b), sign * mu, sd)
        for a, b in zip(edges[:-1], edges[1:], strict=True)
    ]
    a = sum(w * q for w, q in zip(omega, probs, strict=True))
    return np.log(omega[j]) + stats.norm.logpdf(sign * y, sign * mu, sd) - np.log(a)


def delta_of(omega):
    """Dirichlet increments of non-increasing weights with omega_1 = 1."""
    omega = np.asarray(omega, float)
    return omega - np.append(omega[1:], 0.0)


CASES = [  # y, se, mu, tau, omega, steps, alternative
    (0.5, 0.2, 0.1, 0.3, [1.0, 0.4], [0.025], "greater"),
    (0.1, 0.2, 0.1, 0.3, [1.0, 0.4], [0.025], "greater"),
    (-0.9, 0.3, -0.2, 0.1, [1.0, 0.7, 0.2], [0.025, 0.5], "less"),
    (0.0, 0.3, -0.2, 0.1, [1.0, 0.7, 0.2], [0.025, 0.5], "less"),
    (3.0, 0.1, 2.5, 0.0, [1.0, 1e-6], [0.025], "greater"),  # far in the upper tail
    (-2.0, 0.5, 1.5, 0.05, [1.0, 0.5, 0.5, 0.01], [0.01, 0.05, 0.5], "greater"),
]


@pytest.fixture(scope="module")
def graph_logp():
    """The model's log-density graph, compiled once without numba (fast to compile)."""
    import pytensor
    import pytensor.tensor as pt

    args = [pt.dvector("y"), pt.dscalar("mu"), pt.dvector("sd"), pt.dmatrix("cuts"),
            pt.dvector("delta"), pt.dscalar("sign")]  # fmt: skip
    return pytensor.function(args, selection_logp(*args), mode="FAST_COMPILE")


@pytest.mark.parametrize(("y", "se", "mu", "tau", "omega", "steps", "alternative"), CASES)
def test_log_density_matches_scipy(graph_logp, y, se, mu, tau, omega, steps, alternative):
    from bayeskit.families.normal_selection import _z_steps

    sign = 1.0 if alternative == "greater" else -1.0
    expected = scipy_loglik(y, se, mu, tau, omega, steps, sign)
    delta = delta_of(omega)
    numpy = selection_loglik([y], [se], [mu], [tau], [delta], steps, alternative)[0, 0]
    cuts = se * _z_steps(steps)[None, :]
    graph = graph_logp([y], mu, [np.hypot(tau, se)], cuts, delta, sign)[0]
    assert numpy == pytest.approx(expected, abs=1e-9)
    # pytensor's log normal CDF is accurate to about 1e-8 relative
    assert graph == pytest.approx(expected, abs=1e-7)


@pytest.mark.parametrize("case", [CASES[0], CASES[2], CASES[5]])
def test_the_weighted_density_integrates_to_one(case):
    _, se, mu, tau, omega, steps, alternative = case
    delta = delta_of(omega)

    def density(y):
        return np.exp(selection_loglik([y], [se], [mu], [tau], [delta], steps, alternative)[0, 0])

    # integrate piecewise: the density jumps at each cutpoint
    sign = 1.0 if alternative == "greater" else -1.0
    cuts = sorted(sign * se * stats.norm.isf(np.asarray(steps)))
    edges = [-np.inf, *cuts, np.inf]
    total = sum(
        integrate.quad(density, a, b)[0] for a, b in zip(edges[:-1], edges[1:], strict=True)
    )
    assert total == pytest.approx(1.0, abs=1e-7)


def test_simulated_estimates_follow_the_weighted_density():
    import pymc as pm

    from bayeskit.families.normal_selection import _z_steps

    y, se, mu, tau, omega, steps, alternative = CASES[2]
    delta = delta_of(omega)
    sd = np.hypot(tau, se)
    cuts = se * _z_steps(steps)
    rv = pm.CustomDist.dist(
        mu, sd, cuts, delta, -1.0, dist=selection_dist, logp=selection_logp,
        signature="(),(),(c),(j),()->()",
    )  # fmt: skip
    n = 20000
    draws = pm.draw(rv, draws=n, random_seed=3)
    counts = interval_counts(draws, np.full(n, se), steps, alternative)
    # expected share of each interval: omega_j P_j / A
    edges = [0.0, *steps, 1.0]
    # 'less': p = Phi(y/se) in (a, b] when y lies in (-se z_(1-a), -se z_(1-b)]
    z = stats.norm.isf(edges)
    probs = stats.norm.cdf(-se * z[1:], mu, sd) - stats.norm.cdf(-se * z[:-1], mu, sd)
    expected = np.asarray(omega) * probs / np.sum(np.asarray(omega) * probs)
    assert stats.chisquare(counts, expected * n).pvalue > 0.001, (counts, expected * n)
    # within the least significant interval: the normal truncated to it (KS test)
    inside = draws[-draws / se < stats.norm.isf(0.5)]
    upper = -se * stats.norm.isf(0.5)
    a, b = (upper - mu) / sd, np.inf
    assert stats.kstest(inside, stats.truncnorm(a, b, loc=mu, scale=sd).cdf).pvalue > 0.001


# ---------------------------------------------------------------------------- options


@pytest.mark.parametrize(
    ("steps", "message"),
    [
        ([], "between 1 and 5"),
        ([0.0], "strictly between 0 and 1"),
        ([0.025, 1.0], "strictly between 0 and 1"),
        ([0.05, 0.025], "must increase"),
        ([0.05, 0.05], "must increase"),
        ([0.01, 0.02, 0.03, 0.04, 0.05, 0.06], "between 1 and 5"),
        ([float("nan")], "steps"),
        (["0.025"], "steps"),
        (0.025, "steps"),
    ],
)
def test_steps_are_refused_naming_the_option(steps, message):
    with pytest.raises(bk.UserError, match=message) as err:
        bk.get_family("normal-selection").options({"steps": steps})
    assert "option 'steps" in str(err.value)  # 'steps' or the element, 'steps.0'


def test_an_empty_interval_is_refused_with_the_counts():
    # eight schools: no study has a one-sided p below 0.025
    with pytest.raises(bk.UserError, match=r"p <= 0\.025 .* holds none of the 8 studies") as err:
        bk.build_model(bk.data_path("eight_schools.csv"), "normal-selection")
    assert "[0, 8]" in str(err.value)
    # metafor's selmodel refuses these cutpoints on the ETS studies too
    with pytest.raises(bk.UserError, match=r"0\.025 < p <= 0\.05 .* \[7, 0, 24, 6\]"):
        bk.build_model(HACKSHAW, "normal-selection", steps=[0.025, 0.05, 0.5])
    with pytest.raises(bk.UserError, match="at least 3 studies"):
        bk.build_model(bk.data_path("eight_schools.csv"), "normal-selection", steps=[0.05],
                       exclude=["C", "D", "E", "F", "H", "B"])  # fmt: skip


def test_the_direction_of_significance_is_an_option():
    ev = bk.load_evidence(HACKSHAW)
    greater = interval_counts(ev["yi"], ev["sei"], [0.025], "greater")
    less = interval_counts(ev["yi"], ev["sei"], [0.025], "less")
    assert greater.tolist() == [7, 30]  # metafor's selmodel: k = 7 and 30
    assert less.tolist() == [0, 37]
    with pytest.raises(bk.UserError, match="holds none of the 37"):
        bk.build_model(HACKSHAW, "normal-selection", alternative="less")


def test_cli_refuses_an_empty_interval_with_exit_2():
    data = bk.data_path("eight_schools.csv")
    result = CliRunner().invoke(app, ["fit", "--data", str(data), "--model", "normal-selection"])
    assert result.exit_code == 2, result.output
    assert "option 'steps'" in result.output and "Traceback" not in result.output


# ------------------------------------------------------- acceptance: metafor, Hackshaw


def quadrature_mean_mu(yi, sei, n_mu=81, n_tau=41, n_omega=30):
    """Posterior mean of mu under the selection model at steps [0.025], by quadrature.

    The family's default priors on a log odds ratio: mu ~ Normal(0, 4), tau ~
    HalfNormal(0.5), omega ~ Uniform(0, 1) (cumulative Dirichlet(1, 1)); a grid over
    the region where the likelihood lives (checked: the edges carry no mass).
    """
    mu = np.linspace(-0.4, 0.7, n_mu)
    tau = np.linspace(0.0, 0.6, n_tau)
    omega = (np.arange(n_omega) + 0.5) / n_omega
    M, T, W = (g.ravel() for g in np.meshgrid(mu, tau, omega, indexing="ij"))
    delta = np.column_stack([1 - W, W])
    ll = selection_loglik(yi, sei, M, T, delta, [0.025]).sum(axis=1)
    lp = ll + stats.norm.logpdf(M, 0, 4) + stats.halfnorm.logpdf(T, scale=0.5)
    w = np.exp(lp - lp.max())
    w /= w.sum()
    edge = w.reshape(n_mu, n_tau, n_omega)
    assert edge[[0, -1]].sum() < 1e-6 and edge[:, -1].sum() < 1e-6
    return float(np.sum(w * M)), float(np.sqrt(np.sum(w * M**2) - np.sum(w * M) ** 2))


def test_selection_moves_the_hackshaw_estimate_the_way_metafor_does():
    """metafor: mu 0.2171 (random effects, ML) -> 0.1944 (selmodel, steps 0.025), down
    0.023. bayeskit (quadrature of the family's likelihood, default priors): the
    random-effects posterior mean 0.2182 (exact engine) -> 0.1795, down 0.039; more than
    metafor's because the cumulative Dirichlet prior keeps omega <= 1 where metafor's
    estimate, 0.76 (SE 0.60), may exceed 1."""
    ev = bk.load_evidence(HACKSHAW)
    unadjusted = bk.fit(ev, method="exact").summary().loc["mu", "mean"]
    adjusted, sd = quadrature_mean_mu(ev["yi"].to_numpy(), ev["sei"].to_numpy())
    ref = METAFOR
    metafor_shift = (
        ref["selection_stepfun_0.025"]["estimate"] - ref["random_effects_ml"]["estimate"]
    )
    assert metafor_shift == pytest.approx(-0.0227, abs=1e-4)
    assert unadjusted == pytest.approx(0.2182, abs=5e-4)
    # 0.1795 on grids 2, 4 and 12 times finer (0.17940, 0.17947, 0.17954)
    assert adjusted == pytest.approx(0.1795, abs=0.001)
    assert np.sign(adjusted - unadjusted) == np.sign(metafor_shift)
    # the adjusted estimate is within one metafor SE of metafor's
    assert (
        abs(adjusted - ref["selection_stepfun_0.025"]["estimate"])
        < ref["selection_stepfun_0.025"]["se"]
    )


@pytest.fixture(scope="module")
def flat_bias_table():
    return bk.publication_bias(HACKSHAW, priors={"mu": "Flat()", "beta": "Flat()"}, selection=False)


@pytest.mark.parametrize(
    ("row", "key"), [("PET (mu at sei = 0)", "pet"), ("PEESE (mu at sei = 0)", "peese")]
)
def test_pet_and_peese_intercepts_agree_with_metafor_at_flat_priors(flat_bias_table, row, key):
    """metafor (REML): PET 0.0216 (SE 0.1016), PEESE 0.1405 (SE 0.0618). bayeskit
    (exact engine, Flat mu and slope, tau ~ HalfNormal(0.5)): 0.0220 and 0.1399. The
    posterior mean averages over tau where REML plugs in its estimate: agreement within
    a tenth of metafor's SE."""
    ref = METAFOR[key]
    got = flat_bias_table.loc[row]
    assert abs(got["mean"] - ref["estimate"]) < 0.1 * ref["se"]
    assert got["sd"] == pytest.approx(ref["se"], rel=0.1)
    assert got["bias_parameter"] == pytest.approx(ref["slope"], abs=0.1 * ref["slope_se"])
    # both move the estimate down from the unadjusted one, as in metafor
    assert got["shift"] < 0
    assert flat_bias_table.attrs["k"] == 37 and "37 studies" in flat_bias_table.attrs["note"]


def test_publication_bias_refuses_what_it_cannot_adjust():
    with pytest.raises(bk.UserError, match="at least 3 studies"):
        bk.publication_bias(pd.read_csv(HACKSHAW).head(2), selection=False)
    fit = bk.fit(bk.data_path("eight_schools.csv"), pooling="full")
    with pytest.raises(bk.UserError, match="partial pooling"):
        bk.publication_bias(fit, selection=False)
    from bayeskit.families.data import arm_data

    ev = bk.load_evidence(bk.data_path("oud_abstinence.csv"))
    d = arm_data(ev, outcome_type="binary", timepoint="12 months")
    arms = bk.Fit(None, None, "binomial-normal", "mcmc", d, {}, {})  # what it holds is enough
    with pytest.raises(bk.UserError, match="study-level effects"):
        bk.publication_bias(arms, selection=False)


def test_few_studies_are_said_to_say_little():
    table = bk.publication_bias(bk.data_path("eight_schools.csv"), selection=False)
    assert table.attrs["note"].startswith("With 8 studies the data say little")
    # a wide slope prior on 8 studies: PET moves far, with a wide interval
    pet = table.loc["PET (mu at sei = 0)"]
    assert pet["sd"] > 2 * table.loc["random effects (unadjusted)", "sd"]


# ------------------------------------------------------------------------- slow: MCMC


@pytest.mark.slow
def test_mcmc_fit_on_hackshaw_matches_quadrature_and_metafors_direction(tmp_path):
    import time

    ev = bk.load_evidence(HACKSHAW)
    start = time.perf_counter()
    fit = bk.fit(ev, "normal-selection", draws=1000, tune=1000, chains=4, seed=7)
    seconds = time.perf_counter() - start
    assert fit.verdict != "fail", fit.checks
    s = fit.summary()
    exact, _ = quadrature_mean_mu(ev["yi"].to_numpy(), ev["sei"].to_numpy())
    mcse = s.loc["mu", "sd"] / np.sqrt(s.loc["mu", "ess_bulk"])
    assert abs(s.loc["mu", "mean"] - exact) < 4 * mcse + 0.002, (s.loc["mu"], exact)
    table = bk.publication_bias(fit)
    assert table.index[3] == "selection: step function at p = 0.025 (greater)"
    assert table.loc[table.index[3], "shift"] < 0  # metafor: 0.2171 -> 0.1944
    # model weights: 'no bias' 0.5 -> 0.63; the average lies between the models' means
    assert table["posterior_weight"].iloc[:4].sum() == pytest.approx(1.0)
    assert table["posterior_weight"].iloc[0] == pytest.approx(0.63, abs=0.02)
    average = table.loc["model average (posterior weights)", "mean"]
    assert table["mean"].iloc[:4].min() < average < table["mean"].iloc[:4].max()
    assert seconds < 600
    # through the pipeline: the run directory and report carry the adjusted estimates
    from bayeskit.rundir import write_run

    out = write_run(fit, tmp_path / "run")
    written = pd.read_csv(out / "publication_bias.csv", index_col=0)
    assert list(written.index) == list(table.index)
    report = (out / "report.md").read_text()
    assert "Bias-adjusted estimates" in report and "PEESE" in report


@pytest.mark.slow
def test_sbc_of_the_selection_model_is_uniform():
    """200 replicates of 10 studies (about 1.5 minutes on two cores, compiled once):
    every parameter's ranks uniform at 1% and 95% coverage within 3 MCSE."""
    from bayeskit.calibration import sbc, sbc_passes, sbc_summary

    ranks = sbc("normal-selection", replicates=200, studies=10, iterations=100, tune=200,
                chains=2, seed=0, scheduler="none")  # fmt: skip
    summary = sbc_summary(ranks, draws=99)
    assert list(summary.index) == ["mu", "tau", "omega", "theta", "theta_new"]
    assert sbc_passes(summary), summary


def test_spec_keys_reach_the_family(tmp_path):
    spec = tmp_path / "ets.toml"
    spec.write_text(
        f'[data]\nfiles = ["{HACKSHAW}"]\n[model]\nfamily = "normal-selection"\n'
        'steps = [0.025, 0.05, 0.5]\nalternative = "greater"\n'
    )
    result = CliRunner().invoke(app, ["fit", str(spec)])
    assert result.exit_code == 2, result.output
    assert "[7, 0, 24, 6]" in " ".join(result.output.split())
    spec.write_text(spec.read_text().replace('"greater"', '"both"'))
    result = CliRunner().invoke(app, ["fit", str(spec)])
    assert result.exit_code == 2 and "alternative" in result.output, result.output


# --------------------------------------------------------------------- model weights


def bias_evidence(data):
    """Each bias model's log marginal likelihood, default priors, and the data and priors."""
    from bayeskit.bias_weights import model_log_evidence
    from bayeskit.pubbias import PEESE, PET, UNADJUSTED, _inputs, _regression

    _, d, chosen = _inputs(data, None, None)
    exact = {n: _regression(d, chosen, p) for n, p in ((UNADJUSTED, None), (PET, 1), (PEESE, 2))}
    summaries = {"none": exact[UNADJUSTED][1].summary()}
    summaries["selection"] = summaries["none"]  # its box covers the selection posterior
    for key, name in (("pet", PET), ("peese", PEESE)):
        summaries[key] = exact[name][1].summary().rename(index={"beta[bias]": "slope"})
    priors = {"mu": chosen["mu"], "tau": chosen["tau"], "pet": exact[PET][2]["beta"],
              "peese": exact[PEESE][2]["beta"]}  # fmt: skip
    return model_log_evidence(d, priors, summaries, [0.025], "greater"), d, priors


@pytest.fixture(scope="module")
def ets_evidence():
    """Each bias model's log marginal likelihood on the 37 ETS studies."""
    return bias_evidence(HACKSHAW)


@pytest.mark.parametrize("model", ["none", "pet", "peese"])
def test_evidence_of_the_normal_models_matches_the_closed_form(ets_evidence, model):
    """Given tau, y ~ MultivariateNormal(0, diag(s^2 + tau^2) + 4^2 J + sb^2 x x'): mu and
    the slope integrated analytically, tau by scipy's adaptive quadrature."""
    logz, d, priors = ets_evidence
    s2 = d.sei**2
    cov0 = 16.0 * np.ones((len(s2), len(s2)))
    if model != "none":
        x = d.sei ** (1 if model == "pet" else 2)
        cov0 = cov0 + priors[model].params["sigma"] ** 2 * np.outer(x, x)
    logpdf = [stats.multivariate_normal(np.zeros(len(s2)), cov0 + np.diag(s2 + t**2)).logpdf(d.yi)
              for t in (0.15,)]  # fmt: skip
    shift = logpdf[0]

    def integrand(t):
        cov = cov0 + np.diag(s2 + t**2)
        lp = stats.multivariate_normal(np.zeros(len(s2)), cov).logpdf(d.yi) - shift
        return np.exp(lp) * stats.halfnorm.pdf(t, scale=0.5)

    expected = np.log(integrate.quad(integrand, 0, 3, points=[0.15], limit=200)[0]) + shift
    assert logz[model] == pytest.approx(expected, abs=2e-3)


def test_evidence_of_the_selection_model_is_converged(ets_evidence, monkeypatch):
    """A coarser grid over another box (the unadjusted posterior's) gives the same."""
    from bayeskit import bias_weights
    from bayeskit.pubbias import _regression

    logz, d, priors = ets_evidence
    summary = _regression(d, priors, None)[1].summary()
    slope = pd.concat([summary, summary.loc[["mu"]].rename(index={"mu": "slope"})])
    summaries = {"none": summary, "selection": summary, "pet": slope, "peese": slope}
    monkeypatch.setattr(bias_weights, "POINTS", (50, 40, 35))
    coarse = bias_weights.model_log_evidence(d, priors, summaries, [0.025], "greater")
    assert coarse["selection"] == pytest.approx(logz["selection"], abs=5e-3)


def test_model_weights_on_the_ets_studies(ets_evidence):
    """RoBMA-PSMA's prior weights (no bias 1/2, selection 1/4, PET and PEESE 1/8): on
    37 studies the data move 'no bias' from 0.5 to 0.63 with these priors."""
    from bayeskit.bias_weights import PRIOR_WEIGHTS, posterior_weights

    logz, _, _ = ets_evidence
    w = posterior_weights(logz)
    assert sum(w.values()) == pytest.approx(1.0)
    assert w["none"] == pytest.approx(0.63, abs=0.02)
    assert w["none"] > PRIOR_WEIGHTS["none"] and w["pet"] < PRIOR_WEIGHTS["pet"]


def test_few_studies_move_the_weights_by_the_occam_factor_and_say_so():
    """Six of the ETS studies (every sixth): 'no bias' 0.5 -> 0.71, the price of the
    bias models' extra parameter, which the sentence says."""
    from bayeskit.bias_weights import PRIOR_WEIGHTS, posterior_weights
    from bayeskit.pubbias import weights_sentence

    logz, _, _ = bias_evidence(pd.read_csv(HACKSHAW).iloc[::6][:6])
    w = posterior_weights(logz)
    assert w["none"] == pytest.approx(0.71, abs=0.02)
    table = pd.DataFrame({"prior_weight": PRIOR_WEIGHTS, "posterior_weight": w})
    assert "Occam factor" in weights_sentence(table, k=6)
    assert "Occam" not in weights_sentence(table, k=37)
