"""Borrowing across indications as an informative prior (borrowing = "prior").

Each knob is changed and the answer is checked against the amount the model implies. On
two contrasts at the anchor doses (one per indication, between-study SD held near 0 by
its prior) the model is conjugate: the source fit is Normal(0, 1) times one normal
likelihood, and the target's posterior under the mixture prior is a mixture of normal
posteriors with weights proportional to ``w_k x Normal(y; mu_k, sigma_k^2 + se^2)``.
"""

import numpy as np
import pytest

import bayeskit as bk
from bayeskit.errors import UserError
from bayeskit.families.exposure import borrow
from bayeskit.families.exposure.borrow import BorrowedPrior, elir_ess, informative_share

# one randomised contrast per indication, both at 1 mg/kg IV against no drug
CSV = """study,yi,sei,measure,outcome,design,indication,treatment,dose_mg_per_kg,route,sessions
SRC,1.0,0.4,OR,abstinence,rct,AUD,ketamine vs placebo,1.0,iv,1
TGT,0.2,0.5,OR,abstinence,rct,OUD,ketamine vs placebo,1.0,iv,1
"""
Y, SE = 0.2, 0.5  # the target's contrast
PRIORS = {"dose_contrast": "Normal(0, 1)", "tau": "HalfNormal(0.01)"}
SAMPLER = {"draws": 1000, "tune": 500, "chains": 2, "seed": 11, "target_accept": 0.9}
#: Monte Carlo tolerance on a posterior mean (SD about 0.4, effective draws >= 500)
MC = 0.06


def posterior(w, mu, sigma, y=Y, se=SE):
    """Mean and component weights of the conjugate mixture posterior."""
    w, mu, sigma = map(np.asarray, (w, mu, sigma))
    var = 1 / (1 / sigma**2 + 1 / se**2)
    means = var * (mu / sigma**2 + y / se**2)
    total = sigma**2 + se**2
    marginal = w * np.exp(-0.5 * (y - mu) ** 2 / total) / np.sqrt(total)
    weights = marginal / marginal.sum()
    return float(weights @ means), weights


NO_BORROWING = posterior([1.0], [0.0], [1.0])[0]  # the spec's own prior alone: 0.16


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    path = tmp_path_factory.mktemp("borrow") / "contrasts.csv"
    path.write_text(CSV)
    return path


def _mode(w, mu, sigma, y=Y, se=SE) -> float:
    """Mode of the conjugate mixture posterior (a fine grid)."""
    grid = np.linspace(-3, 3, 60001)
    w, mu, sigma = map(np.asarray, (w, mu, sigma))
    prior = (w * np.exp(-0.5 * ((grid[:, None] - mu) / sigma) ** 2) / sigma).sum(axis=1)
    return float(grid[np.argmax(np.log(prior) - 0.5 * ((y - grid) / se) ** 2)])


#: the source fit's summary in the fast tests: the conjugate posterior of SRC
SOURCE = (1.0 / 0.4**2 / (1 + 1 / 0.4**2), (1 + 1 / 0.4**2) ** -0.5)
KNOBS = {
    "weight 0": (0.0, 2.0, 0.0),
    "default": (0.5, 2.0, 0.0),
    "weight 1": (1.0, 1.0, 0.0),
    "inflate 1": (0.5, 1.0, 0.0),
    "inflate 50": (0.5, 50.0, 0.0),
    "shift +0.5": (0.5, 2.0, 0.5),
    "shift -0.5": (0.5, 2.0, -0.5),
    "weight 1, shift +0.5": (1.0, 1.0, 0.5),
    "weight 1, shift -0.5": (1.0, 1.0, -0.5),
}


@pytest.fixture(scope="module")
def modes(data):
    """Posterior mode of the target's contrast under each knob, and the mode implied.

    One model (the source summary given, the knobs swapped into its data containers).
    """
    import pymc as pm
    from pymc.blocking import DictToArrayBijection, RaveledVars
    from scipy.optimize import minimize

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(borrow, "source_fit", lambda *a: (*SOURCE, "pass", ["AUD"]))
        options = {"borrowing": "prior", "borrowing_target": "OUD", "slope_scale": "contrast"}
        model = bk.build_model(data, "exposure-response", priors=PRIORS, model_options=options)
    # the log density and its gradient compiled once; the knobs are data containers
    logp, dlogp = model.compile_logp(), model.compile_dlogp()
    start = DictToArrayBijection.map(model.initial_point())

    def point(x):
        return DictToArrayBijection.rmap(RaveledVars(x, start.point_map_info))

    out = {}
    for label, (w, inflate, shift) in KNOBS.items():
        prior = BorrowedPrior("OUD", ["AUD"], "", *SOURCE, weight=w, inflate=inflate,
                              shift=shift, robust_mean=0.0, robust_sd=1.0)  # fmt: skip
        comps = prior.components()
        with model:
            names = ("borrowed_weight", "borrowed_mu", "borrowed_sigma")
            pm.set_data(dict(zip(names, comps, strict=True)))
        best = minimize(
            lambda x: -logp(point(x)), start.data, jac=lambda x: -dlogp(point(x)), method="BFGS"
        )
        found = float(point(best.x)["dose_contrast_borrowed"])
        out[label] = (found, _mode(*comps))
    return out


def test_each_knob_moves_the_posterior_mode_by_the_amount_the_model_implies(modes):
    for label, (found, implied) in modes.items():
        assert found == pytest.approx(implied, abs=0.01), (label, modes)
    found = {k: v[0] for k, v in modes.items()}
    assert found["weight 0"] == pytest.approx(_mode([1.0], [0.0], [1.0]), abs=0.01)  # 0.16
    assert found["weight 0"] < found["default"] < found["weight 1"]
    # more inflation: closer to the answer without borrowing
    gap = {k: found[k] - found["weight 0"] for k in ("inflate 1", "inflate 50")}
    assert 0 < gap["inflate 50"] < gap["inflate 1"], gap
    # a shift moves the informative component; at full weight the answer follows it. At
    # half weight the posterior weights move too (a component shifted away from the data
    # loses weight), so the mode need not follow: the implied modes above say by how much
    assert found["weight 1, shift -0.5"] < found["weight 1"] < found["weight 1, shift +0.5"]


@pytest.fixture(scope="module")
def fits(data):
    """Fits under several knob settings: one source fit and one compiled model for all."""
    settings = {
        "default": {},
        "weight 0": {"borrowing_weight": 0.0},
        "weight 1, inflate 1": {"borrowing_weight": 1.0, "borrowing_inflate": 1.0},
        "inflate 1": {"borrowing_inflate": 1.0},
        "inflate 50": {"borrowing_inflate": 50.0},
        "shift +0.5": {"borrowing_shift": 0.5},
        "shift -0.5": {"borrowing_shift": -0.5},
        "weight 1, inflate 1, shift +0.5": {
            "borrowing_weight": 1.0, "borrowing_inflate": 1.0, "borrowing_shift": 0.5,
        },
    }  # fmt: skip
    out = {
        "no borrowing": bk.fit(
            data,
            "exposure-response",
            priors=PRIORS,
            **SAMPLER,
            model_options={"borrowing": False, "slope_scale": "contrast"},
        )  # fmt: skip
    }
    for label, knobs in settings.items():
        options = {"borrowing": "prior", "borrowing_target": "OUD", "slope_scale": "contrast"}
        out[label] = bk.fit(
            data, "exposure-response", priors=PRIORS, model_options=options | knobs, **SAMPLER
        )
    return out


def _target(fit) -> np.ndarray:
    return fit.idata["posterior"]["dose_contrast"].sel(indication="OUD").values.ravel()


def _implied(fit):
    return posterior(*fit.data.borrowed.components())


@pytest.mark.slow  # MCMC under each knob: about a minute
def test_source_fit_is_the_conjugate_posterior_of_the_other_indication(fits):
    prior = fits["default"].data.borrowed
    precision = 1 + 1 / 0.4**2
    assert prior.mean == pytest.approx(1.0 / 0.4**2 / precision, abs=MC)  # 0.862
    assert prior.sd == pytest.approx(precision**-0.5, abs=0.04)  # 0.371
    assert prior.sources == ["AUD"] and prior.anchor == "1 vs 0 mg/kg iv"
    recorded = fits["default"].settings["borrowed_prior"]
    assert recorded["weight"] == 0.5 and recorded["inflate"] == 2.0 and recorded["ess"] > 0


@pytest.mark.slow  # MCMC under each knob: about a minute
@pytest.mark.parametrize("label", ["default", "weight 1, inflate 1", "inflate 50", "shift +0.5"])
def test_target_posterior_mean_is_the_amount_the_mixture_implies(fits, label):
    expected, _ = _implied(fits[label])
    assert _target(fits[label]).mean() == pytest.approx(expected, abs=MC)


@pytest.mark.slow  # MCMC under each knob: about a minute
def test_weight_zero_is_the_answer_without_borrowing(fits):
    assert _target(fits["weight 0"]).mean() == pytest.approx(NO_BORROWING, abs=MC)
    # and the fit with borrowing = false, draw for draw up to Monte Carlo error
    alone = _target(fits["no borrowing"])
    assert alone.mean() == pytest.approx(NO_BORROWING, abs=MC)
    assert _target(fits["weight 0"]).mean() == pytest.approx(alone.mean(), abs=MC)
    assert _target(fits["weight 0"]).std() == pytest.approx(alone.std(), rel=0.1)
    # full weight moves it most of the way to the source's 0.86
    assert _target(fits["weight 1, inflate 1"]).mean() > NO_BORROWING + 0.2


@pytest.mark.slow  # MCMC under each knob: about a minute
def test_larger_inflation_is_closer_to_no_borrowing(fits):
    gap = {k: abs(_target(fits[k]).mean() - NO_BORROWING) for k in ("inflate 1", "inflate 50")}
    assert gap["inflate 50"] < gap["inflate 1"] - 0.05, gap
    implied = {k: abs(_implied(fits[k])[0] - NO_BORROWING) for k in gap}
    assert implied["inflate 50"] < implied["inflate 1"]


@pytest.mark.slow  # MCMC under each knob: about a minute
def test_shift_moves_the_answer_in_its_direction_by_the_implied_amount(fits):
    # at full weight the answer follows the shift, by the conjugate shrinkage factor
    full, shifted = (
        _target(fits[k]).mean() for k in ("weight 1, inflate 1", "weight 1, inflate 1, shift +0.5")
    )
    implied = (
        _implied(fits["weight 1, inflate 1, shift +0.5"])[0]
        - _implied(fits["weight 1, inflate 1"])[0]
    )
    assert implied > 0.3 and shifted - full == pytest.approx(implied, abs=1.5 * MC)
    # at half weight a shift also moves the posterior weights (a component shifted away
    # from the data loses weight): toward the data it pulls the answer down by 0.11,
    # away from it the answer barely moves (0.34 either way); each as implied
    for label in ("shift +0.5", "shift -0.5"):
        assert _target(fits[label]).mean() == pytest.approx(_implied(fits[label])[0], abs=MC)
    assert _target(fits["shift -0.5"]).mean() < _target(fits["default"]).mean() - 0.05


@pytest.mark.slow  # MCMC under each knob: about a minute
def test_posterior_share_of_the_informative_component(fits):
    for label in ("default", "shift -0.5"):
        _, weights = _implied(fits[label])
        share = informative_share(_target(fits[label]), fits[label].data.borrowed)
        assert share == pytest.approx(weights[0], abs=0.05), label
    assert informative_share(_target(fits["weight 0"]), fits["weight 0"].data.borrowed) == 0


def test_ess_falls_with_inflation_and_weight_and_matches_a_normal_prior():
    def ess(w, inflate, risk=0.2):
        p = BorrowedPrior("OUD", ["AUD"], "", 0.8, 0.3, weight=w, inflate=inflate, shift=0.0,
                          robust_mean=0.0, robust_sd=1.0, control_risk=risk)  # fmt: skip
        return p.ess()

    # less weight or more inflation: less information (a mixture of distant components
    # can carry less than either alone, so the robust component is not a floor)
    assert ess(0.8, 1.0) > ess(0.8, 4.0) > ess(0.3, 4.0) > 0
    # one normal component: the unit variance of a log OR at the null over the prior's
    unit = 2 / (0.2 * 0.8)
    assert elir_ess([1.0], [0.0], [0.05], control_risk=0.2) == pytest.approx(
        unit / 0.05**2, rel=0.01
    )
    assert ess(0.0, 1.0, risk=0.5) == pytest.approx(elir_ess([1.0], [0.0], [1.0], control_risk=0.5))


@pytest.mark.parametrize(
    ("options", "words"),
    [
        ({"borrowing_target": "CUD"}, "borrowing_target"),
        ({"borrowing_target": "OUD", "slope_scale": "doubling"}, 'slope_scale = "contrast"'),
    ],
)
def test_bad_borrowing_options_are_refused(data, options, words):
    with pytest.raises(UserError, match=words):
        options = {"borrowing": "prior", "slope_scale": "contrast"} | options
        bk.build_model(data, "exposure-response", priors=PRIORS, model_options=options)


def test_weight_outside_zero_one_is_refused(data):
    with pytest.raises(UserError, match="borrowing_weight"):
        bk.build_model(data, "exposure-response", model_options={"borrowing_weight": 1.5})


@pytest.mark.slow  # MCMC under each knob: about a minute
def test_source_fit_is_reused_for_other_knobs(fits):
    # every knob setting above reused one source fit (keyed by data, priors and options)
    means = {round(f.data.borrowed.mean, 12) for k, f in fits.items() if k != "no borrowing"}
    assert len(means) == 1 and len(borrow._SOURCE_CACHE) >= 1


@pytest.mark.slow  # four fits of the bundled joint spec with short chains: about a minute
def test_borrowing_table_shows_the_three_ways_side_by_side():
    from bayeskit.questions import BORROWING_FITS, borrowing_table
    from bayeskit.spec import load_spec, spec_from_dict

    loaded = load_spec("sud_abstinence")
    raw = loaded.model_dump(mode="json", exclude={"base_dir"})
    raw["sampler"] |= {"draws": 300, "tune": 500, "chains": 2}
    spec = spec_from_dict(raw, source="test", base_dir=loaded.base_dir)
    fit = bk.fit(spec.data_files(), **spec.fit_kwargs())
    table = borrowing_table(fit, spec)
    assert table.loc["OUD"].index.tolist() == list(BORROWING_FITS.values())
    assert (table["parameter"] == "dose_contrast").all()
    # the exchangeable row is this fit's own posterior
    own = fit.summary().loc["dose_contrast[OUD]", "q50"]
    assert table.loc[("OUD", BORROWING_FITS[True]), "q50"] == own
    row = table.loc[("OUD", BORROWING_FITS["prior"])]
    assert row["prior_ess"] > 0 and row["prior_weight"] == 0.5
    assert 0 < row["posterior_weight"] < 1 and "control risk 0.129" in row["ess_unit"]
    assert np.isnan(table.loc[("AUD", BORROWING_FITS["prior"]), "prior_ess"])
