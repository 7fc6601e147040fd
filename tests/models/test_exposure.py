"""exposure-response: identification from dose contrasts alone, designs switched off,
predictions, bioavailability uncertainty, power-prior weights and (slow) coverage; the
contrast-based likelihood, bias on the relative effect, the reference exposure and shape
against within-evidence answers, and new-study predictions."""

import numpy as np
import pandas as pd
import pytest
import xarray as xr
from scipy.special import expit

import bayeskit as bk
from bayeskit.spec import load_spec
from tests.conftest import ROOT

FAST = {"draws": 500, "tune": 700, "chains": 2, "target_accept": 0.95}
#: the simulation's truth: log-odds rise by beta per doubling of 1 + E / 0.1
TRUE_REF = {"exposure_ref": 0.1}


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
    return bk.fit(
        table, "exposure-response", outcome="abstinence", seed=3, model_options=TRUE_REF, **FAST
    )


def test_slope_is_identified_from_dose_contrasts_alone(contrast_fit):
    s = contrast_fit.summary().loc["beta_dose[OUD]"]
    assert contrast_fit.settings["likelihood"] == "contrast"
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
            bk.fit(
                table,
                "exposure-response",
                outcome="abstinence",
                seed=rep,
                model_options=TRUE_REF,
                **FAST,
            )
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


# ------------------------------------------------------------ modelling choices (MAP)
# The posterior mode of a small model is found in a few seconds, and where the model is
# linear in the quantity asked about it moves exactly by what the model implies; the
# MCMC versions of the same checks are marked slow.


def _arms(studies):
    """Arm rows from ``(study, design, [(arm, dose, role, n, events), ...])``."""
    rows = [
        {
            "study": study, "arm": arm, "outcome": "abstinence", "n": n, "events": events,
            "role": role, "design": design, "indication": "OUD", "dose_mg_per_kg": dose,
            "route": "iv" if dose > 0 else None, "sessions": 1,
        }
        for study, design, arms in studies
        for arm, dose, role, n, events in arms
    ]  # fmt: skip
    table = pd.DataFrame(rows)
    table.attrs = {"shape": "arm"}
    return table


def _mode(table, options=None, priors=None):
    """The posterior mode as a one-draw posterior, with the fit's settings and data."""
    import pymc as pm

    from bayeskit.evidence import load_routes
    from bayeskit.families import get_family
    from bayeskit.families.exposure.model import exposure_data

    family = get_family("exposure-response")
    data = exposure_data(table, None, routes=load_routes())
    opts = family.options({"exposure_ref": 2.0} | (options or {}))
    wide = {"beta_dose": "Normal(0, 10)", "emax": "Normal(0, 20)", "tau": "HalfNormal(0.01)"}
    model = family.build(data, family.resolve_priors(data, wide | (priors or {})), opts)
    tree = pm.find_MAP(model=model, progressbar=False, return_inferencedata=True, jitter=False)
    return family, tree.posterior.to_dataset(), family.settings(data, opts), model


# one large two-arm study: its log odds ratio (900 vs 500 of 2000) fixes the contrast
LARGE = [("hi", 2.0, "experimental", 2000, 900), ("lo", 0.0, "control", 2000, 500)]


def test_recoding_a_non_randomised_study_as_an_rct_moves_the_effect_by_the_bias_mean():
    """Issue: the old bias term was added to both arms and cancelled from the contrast.

    Against IV placebo at E_ref = 2 the treatment effect of 2 mg/kg is beta_dose. The
    cohort's additive bias has prior Normal(0.37, 0.3), so with a flat slope prior the
    effect read as a cohort is the RCT's minus 0.37 (times the prior's shrinkage,
    100 / (100 + 0.09)).
    """
    rct = _mode(_arms([("A", "rct", LARGE)]))[1]["beta_dose"].item()
    cohort = _mode(_arms([("A", "cohort", LARGE)]))[1]["beta_dose"].item()
    assert rct - cohort == pytest.approx(0.37 * 100 / 100.09, abs=2e-3)


def _bias_at(options, z=0.0):
    """The bias term of a two-arm cohort at ``bias_z = z``, and the built model."""
    from bayeskit.evidence import load_routes
    from bayeskit.families import get_family
    from bayeskit.families.exposure.model import exposure_data

    family = get_family("exposure-response")
    table = _arms([("A", "cohort", LARGE)])
    data = exposure_data(table, None, routes=load_routes())
    model = family.build(data, family.default_priors(data), family.options(options))
    fn = model.compile_fn(
        model.replace_rvs_by_values([model["bias"]])[0],
        inputs=model.value_vars,
        on_unused_input="ignore",
        point_fn=True,
    )
    values = [
        fn(model.initial_point() | {"bias_z": np.array([v])}).item() for v in np.atleast_1d(z)
    ]
    return (values[0] if np.ndim(z) == 0 else values), model


def test_bias_options_set_its_direction_size_and_form():
    """benefit flips the mean bias, bias_mean and bias_sd set it, on the SMD scale times
    sqrt(3) / pi; a proportional bias multiplies the relative effect by exp(bias)."""
    assert _bias_at({}, z=[0.0, 1.0])[0] == pytest.approx([0.37, 0.37 + 0.3])
    assert _bias_at({"benefit": "lower"})[0] == pytest.approx(-0.37)
    custom = {"bias_mean": {"cohort": 0.8}, "bias_sd": {"cohort": 0.5}}
    assert _bias_at(custom, z=1.0)[0] == pytest.approx(1.3)
    value, model = _bias_at({"bias_form": "proportional"})
    assert value == pytest.approx(0.2)
    # the experimental arm's log-odds: baseline + beta x g(E) x exp(bias)
    point = model.initial_point() | {
        "bias_z": np.array([0.0]),
        "beta_dose_mu": np.array(0.5),
        "alpha": np.zeros(1),
        "delta_z": np.zeros(1),
    }
    p = model["events"].owner.inputs[-1]
    outs = model.replace_rvs_by_values([p])
    fn = model.compile_fn(outs, inputs=model.value_vars, on_unused_input="ignore", point_fn=True)
    prob = np.asarray(fn(point)[0])
    logit = np.log(prob / (1 - prob))
    ref = float(np.exp(point["exposure_ref_log__"]))
    g = np.log2(1 + 2.0 / ref)
    assert logit.tolist() == pytest.approx([0.5 * g * np.exp(0.2), 0.0], abs=1e-8)
    from bayeskit.evidence import load_routes
    from bayeskit.families import get_family
    from bayeskit.families.exposure.model import exposure_data

    family = get_family("exposure-response")
    data = exposure_data(_arms([("A", "rct", LARGE)]), None, routes=load_routes())
    rct = family.build(data, family.default_priors(data), family.options({}))
    assert "bias_z" not in rct.named_vars and "bias" not in rct.named_vars


def test_a_research_group_shares_one_bias_across_its_studies():
    table = _arms([("A", "rct", LARGE), ("B", "rct", LARGE), ("C", "rct", LARGE)])
    table["group"] = table["study"].map({"A": "G1", "B": "G1", "C": "G2"})
    from bayeskit.evidence import load_routes
    from bayeskit.families import get_family
    from bayeskit.families.exposure.model import exposure_data

    family = get_family("exposure-response")
    data = exposure_data(table, None, routes=load_routes())
    model = family.build(data, family.default_priors(data), family.options({}))
    assert list(model.coords["group"]) == ["G1"]  # a group of one study adds nothing
    point = model.initial_point() | {"group_z": np.array([1.5]), "group_sd_log__": np.log(0.2)}
    fn = model.compile_fn(
        model.replace_rvs_by_values([model["bias"]])[0],
        inputs=model.value_vars,
        on_unused_input="ignore",
        point_fn=True,
    )
    bias = fn(point)
    assert np.asarray(bias).tolist() == pytest.approx([0.3, 0.3, 0.0])
    off = family.build(data, family.default_priors(data), family.options({"group_effect": False}))
    assert "group_effect" not in off.named_vars
    table.loc[0, "group"] = "G2"
    with pytest.raises(bk.UserError, match="column group: study A has rows in several"):
        exposure_data(table, None, routes=load_routes())


@pytest.mark.slow
def test_study_baselines_do_not_inform_the_slope_in_the_contrast_likelihood():
    """Issue problem 4: with random baselines, levels at different exposures inform it.

    Two single-arm studies, one at a low dose with few events and one at a high dose
    with many, say nothing about a within-study contrast: the contrast model's slope
    stays where the trial puts it, the arm-based model's rises.
    """
    trial = [("lo", 0.2, "control", 60, 12), ("hi", 2.0, "experimental", 60, 20)]
    singles = [
        ("S1", "rct", [("only", 0.2, "single", 900, 90)]),
        ("S2", "rct", [("only", 2.0, "single", 900, 700)]),
    ]
    priors = {"baseline": "Normal(0, 10)", "baseline_sd": "HalfNormal(0.5)"}

    def slope(studies, likelihood):
        table = _arms([("A", "rct", trial), *studies])
        return _mode(table, {"likelihood": likelihood}, priors)[1]["beta_dose"].item()

    assert slope(singles, "contrast") == pytest.approx(slope([], "contrast"), abs=0.01)
    assert slope(singles, "arm") - slope([], "arm") > 0.2  # 0.28 at the mode


def _within_and_extrapolated(options, n=4000, priors=None):
    from bayeskit.families.exposure.evidence import Regimen, classify

    # one trial of 2.0 vs 0.2 mg/kg IV: the only contrast the data randomised
    trial = [("lo", 0.2, "control", n, n // 5), ("hi", 2.0, "experimental", n, n * 7 // 20)]
    table = _arms([("A", "rct", trial)])
    family, post, settings, model = _mode(table, options, priors)
    data = family.prepare(
        [table], family.options(settings), outcome="abstinence", timepoint=None,
        effect_options={},
    )  # fmt: skip
    within = classify(data, "OUD", Regimen(2.0, "iv", 1), Regimen(0.2, "iv", 1))
    outside = classify(data, "OUD", Regimen(2.0, "iv", 1), Regimen(0.0, None, 0))
    assert (within[0], outside[0]) == ("within the evidence", "extrapolated")
    vs = {"dose_mg_per_kg": 0.2, "route": "iv", "sessions": 1}
    one = family.predict(post, settings, route="iv", dose_mg_per_kg=2.0, versus=vs)
    none = family.predict(post, settings, route="iv", dose_mg_per_kg=2.0)
    return one["effect"].item(), none["effect"].item()


@pytest.mark.slow
def test_reference_exposure_and_shape_leave_the_within_evidence_answer_alone():
    answers = {
        "E_ref 1": _within_and_extrapolated({"exposure_ref": 1.0}),
        "E_ref 0.01": _within_and_extrapolated({"exposure_ref": 0.01}),
        "emax": _within_and_extrapolated({"form": "emax"}),
    }
    within = [w for w, _ in answers.values()]
    extrapolated = [x for _, x in answers.values()]
    # the trial's log odds ratio, 1400/4000 vs 800/4000: the mode reproduces it whatever
    # the shape (the slope's prior is flat on the scale of this contrast), to less than
    # the Monte Carlo error of a fit's mean (3 x posterior SD 0.05 / sqrt(1000 draws))
    observed = np.log(1400 / 2600) - np.log(800 / 3200)
    mc_error = 3 * np.sqrt(1 / 1400 + 1 / 2600 + 1 / 800 + 1 / 3200) / np.sqrt(1000)
    assert within == pytest.approx([observed] * 3, abs=mc_error)
    # ... while the answer against no ketamine is set by the shape: 2 mg/kg at E_ref 1
    # is log2(3) / log2(1.2) = 6.0 times the contrast; at E_ref 0.01 1.001 times
    assert extrapolated[0] / within[0] == pytest.approx(np.log(3) / np.log(3 / 1.2), rel=1e-3)
    assert extrapolated[1] / within[1] == pytest.approx(np.log(201) / np.log(201 / 21), rel=1e-3)
    assert max(extrapolated) - min(extrapolated) > 0.5


@pytest.mark.slow
def test_with_the_prior_on_the_randomised_contrast_small_trials_give_one_answer_too():
    """A small trial (40 per arm): a prior per doubling is a different prior on the
    trial's contrast under each shape, so the within-evidence answer moves with the
    shape; with ``slope_scale = "contrast"`` the prior sits on that contrast and it
    does not (to the optimiser's tolerance, far below Monte Carlo error)."""
    shapes = [{"exposure_ref": 1.0}, {"exposure_ref": 0.01}, {"form": "emax"}]
    doubling = {"beta_dose": "Normal(0, 0.5)", "emax": "Normal(0, 2)"}
    moved = [_within_and_extrapolated(o, n=40, priors=doubling)[0] for o in shapes]
    assert max(moved) - min(moved) > 0.1
    fixed = [_within_and_extrapolated(o | {"slope_scale": "contrast"}, n=40)[0] for o in shapes]
    assert fixed == pytest.approx([fixed[0]] * 3, abs=2e-3)


def test_new_study_predictions_widen_with_tau():
    """effect_new adds Normal(0, tau): its SD is sqrt(var(effect) + E[tau^2])."""
    from bayeskit.families import get_family

    family = get_family("exposure-response")
    rng = np.random.default_rng(5)
    beta = rng.normal(0.3, 0.05, size=(2, 4000, 1))
    settings = {"form": "loglinear", "sessions": "term", "exposure_ref": 0.1}
    sds = {}
    for tau in (0.0, 0.2, 0.8):
        post = xr.Dataset(
            {
                "bioavailability": (("chain", "draw", "route"), np.ones((2, 4000, 1))),
                "beta_dose": (("chain", "draw", "indication"), beta),
                "tau": (("chain", "draw"), np.full((2, 4000), tau)),
            },
            coords={"route": ["iv"], "indication": ["OUD"]},
        )
        d = family.predict(post, settings, route="iv", dose_mg_per_kg=0.7)
        avg, new = d["effect"].values.ravel(), d["effect_new"].values.ravel()
        assert new.mean() == pytest.approx(avg.mean(), abs=4 * np.hypot(avg.std(), tau) / 90)
        assert new.std() == pytest.approx(np.hypot(avg.std(), tau), rel=0.04)
        sds[tau] = new.std()
    assert sds[0.0] < sds[0.2] < sds[0.8]
    assert sds[0.0] == pytest.approx(3 * 0.05, rel=0.04)  # no tau: the average's own SD


def test_leave_one_study_out_likelihood_matches_the_model_when_tau_vanishes():
    """With tau ~ 0 and randomised studies nothing is integrated: the per-study LOO
    log-likelihood is the sum of the model's own arm log-likelihoods at that point."""
    from scipy import stats

    from bayeskit.evidence import load_routes
    from bayeskit.families import get_family
    from bayeskit.families.exposure.model import exposure_data

    family = get_family("exposure-response")
    table = simulate(np.random.default_rng(8), studies=3, n=100)
    table.loc[table["study"] == "S2", "sessions"] = 3
    data = exposure_data(table, None, routes=load_routes())
    options = family.options({"exposure_ref": 0.1})
    model = family.build(data, family.default_priors(data), options)
    names = ["bioavailability", "beta_dose", "beta_sessions", "alpha", "tau"]
    p = model["events"].owner.inputs[-1]
    outs = model.replace_rvs_by_values([p, *(model[v] for v in names)])
    fn = model.compile_fn(outs, inputs=model.value_vars, on_unused_input="ignore", point_fn=True)
    rng = np.random.default_rng(2)
    point = {k: v + rng.normal(0, 0.5, size=np.shape(v)) for k, v in model.initial_point().items()}
    point |= {"tau_log__": np.log(1e-9), "delta_z": np.zeros(3)}
    prob, *values = fn(point)
    dims = model.named_vars_to_dims
    post = xr.Dataset(
        {
            v: (("chain", "draw", *dims.get(v, ())), np.asarray(x)[None, None])
            for v, x in zip(names, values, strict=True)
        },
        coords={d: list(model.coords[d]) for v in names for d in dims.get(v, ())},
    )
    loo = family.marginal_log_likelihood(data, post)
    arms = data.arms
    each = stats.binom.logpmf(arms["events"], arms["n"], prob)
    expected = pd.Series(each).groupby(arms["study_idx"].to_numpy()).sum().to_numpy()
    assert loo.attrs["loo"] == "leave-one-study-out"
    assert loo["y"].values.ravel() == pytest.approx(expected, rel=1e-8)
