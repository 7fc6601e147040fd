import math
import re
import subprocess
import sys

import numpy as np
import pymc as pm
import pytest
from hypothesis import given
from hypothesis import strategies as st
from scipy import integrate, stats

from bayeskit.errors import UserError
from bayeskit.priors import (
    DEFAULT_PRIORS,
    FAMILIES,
    HalfStudentT,
    Prior,
    default_priors,
    heterogeneity_prior,
    list_heterogeneity_priors,
    parse_prior,
)

# --------------------------------------------------------------- parsing and printing


@pytest.mark.parametrize(
    ("text", "canonical"),
    [
        ("Normal(0, 4)", "Normal(mu=0, sigma=4)"),
        ("HalfNormal(0.5)", "HalfNormal(sigma=0.5)"),
        ("HalfCauchy(1)", "HalfCauchy(beta=1)"),
        ("StudentT(3, 0, 2.5)", "StudentT(nu=3, mu=0, sigma=2.5)"),
        ("HalfStudentT(3, 1)", "HalfStudentT(nu=3, sigma=1)"),
        ("LogNormal(-2.56, 1.74)", "LogNormal(mu=-2.56, sigma=1.74)"),
        ("Uniform(0, 50)", "Uniform(lower=0, upper=50)"),
        ("Exponential(2)", "Exponential(lam=2)"),
        ("Beta(2, 5)", "Beta(alpha=2, beta=5)"),
        ("Cauchy(0, 1)", "Cauchy(alpha=0, beta=1)"),
        ("LogNormalTau2(-2.56, 1.74)", "LogNormalTau2(mu=-2.56, sigma=1.74)"),
        ("  Normal( -1.5e-3 ,\t2E2 )  ", "Normal(mu=-0.0015, sigma=200)"),
        ("Normal(+1, 1e-09)", "Normal(mu=1, sigma=1e-09)"),
    ],
)
def test_canonical_text_and_round_trip(text, canonical):
    prior = parse_prior(text)
    assert str(prior) == canonical
    assert parse_prior(str(prior)) == prior
    assert parse_prior(prior) is prior  # a Prior passes through


def test_keyword_and_positional_forms_are_equal():
    assert parse_prior("Normal(mu=0, sigma=4)") == parse_prior("Normal(0, 4)")
    assert parse_prior("Normal(0, sigma=4)") == parse_prior("Normal(sigma=4, mu=0)")
    assert parse_prior("StudentT(3, sigma=2.5, mu=0)") == parse_prior("StudentT(3, 0, 2.5)")
    assert parse_prior("Uniform(upper=50, lower=0)") == Prior("Uniform", {"lower": 0, "upper": 50})
    assert hash(parse_prior("Normal(mu=0, sigma=4)")) == hash(parse_prior("Normal(0, 4)"))


def test_family_and_keyword_names_are_case_insensitive():
    # Users type "normal(0,4)" in YAML and on the command line; we map to PyMC's names.
    assert parse_prior("normal(0,4)") == parse_prior("Normal(0, 4)")
    assert parse_prior("HALFNORMAL(SIGMA=0.5)").family == "HalfNormal"
    assert str(parse_prior("halfstudentt(3, 1)")) == "HalfStudentT(nu=3, sigma=1)"


@given(
    mu=st.floats(min_value=-1e12, max_value=1e12),
    sigma=st.floats(min_value=1e-12, max_value=1e12),
)
def test_round_trip_is_exact_for_any_numbers_in_range(mu, sigma):
    prior = Prior("Normal", {"mu": mu, "sigma": sigma})
    assert parse_prior(str(prior)) == prior


@given(
    mu=st.floats(allow_nan=False, allow_infinity=False),
    sigma=st.floats(min_value=5e-324, max_value=1e308),
)
def test_numbers_out_of_range_are_refused_naming_the_parameter(mu, sigma):
    text = f"Normal({mu!r}, {sigma!r})"
    if abs(mu) <= 1e12 and 1e-12 <= sigma <= 1e12:
        assert parse_prior(text) == Prior("Normal", {"mu": mu, "sigma": sigma})
    else:
        with pytest.raises(UserError, match=r"Normal: (mu|sigma) must lie within"):
            parse_prior(text)


@pytest.mark.parametrize(
    ("text", "words"),
    [
        ("Normal(0, 1e-300)", r"prior for mu 'Normal\(0, 1e-300\)'.*sigma must lie within 1e-12"),
        ("HalfNormal(1e300)", r"prior for mu 'HalfNormal\(1e300\)'.*sigma must lie within"),
        ("Normal(-1e13, 1)", r"mu must lie within ±1e\+12"),
        ("Exponential(1e-13)", r"lam must lie within"),
    ],
)
def test_prior_scales_outside_the_sane_range_are_refused(text, words):
    with pytest.raises(UserError, match=words):
        parse_prior(text, what="prior for mu")


def test_flat_only_where_allowed():
    with pytest.raises(UserError, match=r"improper Flat\(\).*not allowed.*Normal\(0, 10\)"):
        parse_prior("Flat()")
    flat = parse_prior("Flat()", allow_flat=True)
    assert str(flat) == "Flat()"
    assert flat.is_normal and not flat.is_positive
    np.testing.assert_array_equal(flat.logpdf([-1e6, 0.0, 3.0]), [0.0, 0.0, 0.0])
    with pytest.raises(UserError, match="improper"):
        flat.scipy()
    with pytest.raises(UserError, match="improper"):
        flat.ppf(0.5)


def test_positive_requirement_for_standard_deviations():
    with pytest.raises(UserError, match=r"prior_tau 'Normal\(0, 1\)' must be .*\[0, inf\)"):
        parse_prior("Normal(0, 1)", positive=True, what="prior_tau")
    for text in ["HalfNormal(0.5)", "Uniform(0, 2)", "turner:general", "rover:logor"]:
        assert parse_prior(text, positive=True).is_positive


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("__import__('os').system('x')", r"exactly one distribution call.*not allowed"),
        ("Normal(0, 4).logp", r"exactly one distribution call"),
        ("Normal(0, sigma)", r"plain numbers .* found 'sigma'"),
        ("Normal(0, 'x')", r"plain numbers .* found \"'x'\""),
        ("Normal(0, Normal(0, 1))", r"plain numbers .* found 'Normal\(0, 1\)'"),
        ("Normal(0, True)", r"plain numbers .* found 'True'"),
        ("Normal(0, 1j)", r"plain numbers .* found '1j'"),
        ("Normal(0, --1)", r"plain numbers .* found '--1'"),
        ("Normal(0, 2*2)", r"plain numbers .* found '2\*2'"),
        ("Normal(0, -1)", r"invalid prior 'Normal\(0, -1\)': Normal: sigma must be > 0, found -1"),
        ("Normal(0, 0)", r"sigma must be > 0, found 0"),
        ("Normal(0, 4", r"cannot read prior 'Normal\(0, 4': write a distribution call"),
        ("Normal(0, 1e400)", r"1e400 is not a finite number"),
        ("Normal(0, 1" + "0" * 400 + ")", r"at most 200"),
        ("Normal(0, nan)", r"plain numbers .* found 'nan'"),
        ("Normal(0, inf)", r"plain numbers .* found 'inf'"),
        ("Foo(1)", r"unknown distribution 'Foo'.*Normal, HalfNormal, HalfCauchy, StudentT"),
        ("Nromal(0, 1)", r"did you mean Normal\?"),
        ("Normal(0, 4) + 1", r"exactly one distribution call"),
        ("Normal", r"exactly one distribution call"),
        ("", r"prior is empty; write a distribution call such as 'Normal\(0, 4\)'"),
        ("   ", r"prior is empty"),
        ("Normal(0)", r"lacks sigma; write Normal\(mu, sigma\)"),
        ("Normal(0, 1, 2)", r"has 3 arguments but Normal\(mu, sigma\) takes 2"),
        ("Normal(0, mu=1)", r"gives mu twice"),
        ("Normal(0, sd=1)", r"Normal has no parameter 'sd'; write Normal\(mu, sigma\)"),
        ("Normal(0, **{'sigma': 1})", r"has no parameter '\*\*'"),
        ("Normal(*[0, 1])", r"plain numbers"),
        ("StudentT(0, 0, 1)", r"nu must be > 0"),
        ("Uniform(5, 5)", r"lower must be < upper, found lower=5, upper=5"),
        ("Beta(2, -5)", r"Beta: beta must be > 0"),
        ("Exponential(-2)", r"lam must be > 0"),
        ("HalfCauchy(0)", r"beta must be > 0"),
        ("LogNormal(800, 1)", r"mu is on the log scale and must lie within \[-700, 700\]"),
        ("lambda: 0", r"exactly one distribution call"),
        ("Normal(0, 1)\x00", r"cannot read prior"),
        ("turner:all-cause-mortality:pharma-vs-nothing", r"comparison 'pharma-vs-nothing'"),
        ("rover:smd", r"unknown heterogeneity prior 'rover:smd'; known: rover:logor"),
    ],
)
def test_bad_priors_are_refused_with_a_helpful_message(text, message):
    with pytest.raises(UserError, match=message):
        parse_prior(text)


def test_non_text_is_refused():
    with pytest.raises(UserError, match="must be text"):
        parse_prior(4.0)
    with pytest.raises(UserError, match=r"Normal takes parameters \(mu, sigma\); missing: sigma"):
        Prior("Normal", {"mu": 0})
    with pytest.raises(UserError, match="sigma must be a finite number"):
        Prior("Normal", {"mu": 0, "sigma": math.inf})


def test_error_message_names_the_offending_text():
    with pytest.raises(UserError) as info:
        parse_prior("Normal(0, -1)", what="prior_mu")
    assert "prior_mu 'Normal(0, -1)'" in str(info.value)


# ------------------------------------------------- densities against SciPy and PyMC

T = stats.make_distribution(stats.t)

# (prior text, independent SciPy counterpart, PyMC counterpart); LogNormalTau2 has no
# PyMC family of its own: tau = sqrt(tau^2) is LogNormal(mu/2, sigma/2).
DENSITY_TABLE = [
    ("Normal(0.5, 4)", stats.norm(0.5, 4), lambda: pm.Normal.dist(mu=0.5, sigma=4)),
    ("HalfNormal(0.5)", stats.halfnorm(scale=0.5), lambda: pm.HalfNormal.dist(sigma=0.5)),
    ("HalfCauchy(1.5)", stats.halfcauchy(scale=1.5), lambda: pm.HalfCauchy.dist(beta=1.5)),
    (
        "StudentT(3, -1, 2.5)",
        stats.t(3, loc=-1, scale=2.5),
        lambda: pm.StudentT.dist(nu=3, mu=-1, sigma=2.5),
    ),
    (
        "HalfStudentT(3, 2)",
        stats.truncate(2 * T(df=3.0), lb=0),
        lambda: pm.HalfStudentT.dist(nu=3, sigma=2),
    ),
    (
        "LogNormal(-2.56, 1.74)",
        stats.lognorm(s=1.74, scale=math.exp(-2.56)),
        lambda: pm.LogNormal.dist(mu=-2.56, sigma=1.74),
    ),
    ("Uniform(-1, 50)", stats.uniform(-1, 51), lambda: pm.Uniform.dist(lower=-1, upper=50)),
    ("Exponential(2)", stats.expon(scale=0.5), lambda: pm.Exponential.dist(lam=2)),
    ("Beta(2, 5)", stats.beta(2, 5), lambda: pm.Beta.dist(alpha=2, beta=5)),
    ("Cauchy(1, 0.5)", stats.cauchy(1, 0.5), lambda: pm.Cauchy.dist(alpha=1, beta=0.5)),
    (
        "LogNormalTau2(-2.56, 1.74)",
        stats.lognorm(s=0.87, scale=math.exp(-1.28)),
        lambda: pm.LogNormal.dist(mu=-1.28, sigma=0.87),
    ),
]


def grid(prior: Prior) -> np.ndarray:
    """Points inside, on the edges of and outside the support, as pymc's check_logp."""
    lower, upper = prior.support
    inner = list(prior.ppf([0.001, 0.1, 0.5, 0.9, 0.999]))
    below = [lower - 1, lower, lower + 1e-9] if math.isfinite(lower) else [-1e3, -7.0]
    above = [upper - 1e-9, upper, upper + 1] if math.isfinite(upper) else [1e3]
    return np.array(below + inner + above)


@pytest.mark.parametrize(("text", "reference", "pymc_dist"), DENSITY_TABLE, ids=lambda v: v)
def test_logpdf_matches_scipy_and_pymc(text, reference, pymc_dist):
    prior = parse_prior(text)
    x = grid(prior)
    got = prior.logpdf(x)
    lower, upper = prior.support
    outside = (x < lower) | (x > upper)
    assert np.all(got[outside] == -np.inf)
    np.testing.assert_allclose(got, reference.logpdf(x), rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(got, pm.logp(pymc_dist(), x).eval(), rtol=1e-6, atol=1e-8)
    q = np.array([0.01, 0.3, 0.5, 0.97])
    # SciPy's new-style distributions (the truncated t) call the quantile function icdf
    reference_ppf = getattr(reference, "ppf", None) or reference.icdf
    np.testing.assert_allclose(prior.ppf(q), reference_ppf(q), rtol=1e-8)
    np.testing.assert_allclose(prior.cdf(prior.ppf(q)), q, rtol=1e-8)


def test_every_family_is_in_the_density_table():
    tested = {parse_prior(text).family for text, _, _ in DENSITY_TABLE} | {"Flat"}
    assert tested == set(FAMILIES)


def test_half_student_t_moments_match_numerical_integration():
    dist = HalfStudentT(5, 1.5)
    mean, _ = integrate.quad(lambda x: x * dist.pdf(x), 0, np.inf)
    second, _ = integrate.quad(lambda x: x**2 * dist.pdf(x), 0, np.inf)
    assert dist.mean() == pytest.approx(mean, rel=1e-7)
    assert dist.std() == pytest.approx(math.sqrt(second - mean**2), rel=1e-7)
    assert HalfStudentT(1, 1).mean() == math.inf
    assert HalfStudentT(2, 1).std() == math.inf
    draws = dist.rvs(size=1000, random_state=1)
    assert draws.min() >= 0


def test_to_pymc_creates_named_variable_with_dims_and_matching_logp():
    prior = parse_prior("HalfStudentT(3, 2)")
    with pm.Model(coords={"study": ["a", "b", "c"]}) as model:
        tau = prior.to_pymc("tau", dims="study")
    assert model.named_vars["tau"] is tau
    assert model.named_vars_to_dims["tau"] == ("study",)
    x = np.array([0.1, 1.0, 7.5])
    np.testing.assert_allclose(pm.logp(tau, x).eval(), prior.logpdf(x), rtol=1e-6)
    # the model's own log-density, with the log transform's Jacobian taken out
    logp = model.compile_logp(jacobian=False, sum=False)
    value_name = model.rvs_to_values[tau].name
    np.testing.assert_allclose(logp({value_name: np.log(x)})[0], prior.logpdf(x), rtol=1e-6)


def test_to_pymc_on_the_variance_scale():
    with pm.Model() as model:
        tau = parse_prior("turner:general").to_pymc("tau")
        sd = parse_prior("Exponential(1)").to_pymc("sd", transform_scale="variance")
    assert set(model.named_vars) == {"tau", "tau_sq", "sd", "sd_sq"}
    assert [v.name for v in model.deterministics] == ["tau", "sd"]
    assert model.named_vars["tau_sq"].owner.op.name == "lognormal"
    t = 0.3
    # p_tau(t) = p_tau2(t^2) * 2t, with the tau^2 density from PyMC's own LogNormal
    logp_tau2 = pm.logp(model.named_vars["tau_sq"], t**2).eval()
    assert float(logp_tau2 + math.log(2 * t)) == pytest.approx(
        float(parse_prior("turner:general").logpdf(t)), rel=1e-9
    )
    assert tau.eval({model.named_vars["tau_sq"]: 0.09}) == pytest.approx(0.3)
    assert sd is model.named_vars["sd"]
    with pm.Model(), pytest.raises(UserError, match=r"variance must live on \[0, inf\)"):
        parse_prior("Normal(0, 1)").to_pymc("x", transform_scale="variance")
    with pm.Model(), pytest.raises(UserError, match="already a prior on tau"):
        parse_prior("turner:general").to_pymc("tau", transform_scale="variance")
    with pm.Model(), pytest.raises(UserError, match="unknown transform_scale 'log'"):
        parse_prior("Normal(0, 1)").to_pymc("x", transform_scale="log")


def test_importing_priors_does_not_import_pymc_or_scipy_stats():
    code = (
        "import sys, bayeskit.priors\n"
        "print(sorted(m for m in ('pymc', 'pytensor', 'scipy.stats', 'pandas') "
        "if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


# ------------------------------------------------------------------ named priors

# Turner RM et al. (2015) Stat Med 34:984-998, Table IV: log-normal predictive
# distributions for tau^2 (log odds ratios), printed as LN(mean, SD^2) of log(tau^2).
# Transcription cross-checked against bayesmeta 3.4 (TurnerEtAlParameters) and rnmamod.
TURNER_TABLE_IV = [
    # row "All-cause mortality", column "Pharmacological vs placebo/control"
    ("turner:all-cause-mortality:pharma-vs-placebo", -3.95, 1.34),
    # row "Subjective outcomes (various)", column "Non-pharmacological vs pharmacological"
    ("turner:subjective:nonpharma-vs-pharma", -1.67, 1.25),
    # row "Pain", column "Pharmacological vs pharmacological"
    ("turner:pain:pharma-vs-pharma", -2.06, 1.58),
    # general healthcare setting, p. 993
    ("turner:general", -2.56, 1.74),
]


@pytest.mark.parametrize(("name", "mu", "sigma"), TURNER_TABLE_IV)
def test_turner_priors_match_the_published_table(name, mu, sigma):
    prior = heterogeneity_prior(name)
    assert prior == Prior("LogNormalTau2", {"mu": mu, "sigma": sigma})
    assert parse_prior(name) == prior
    assert "Turner" in prior.source
    assert prior.is_positive and prior.support == (0.0, math.inf)


@pytest.mark.parametrize(("name", "mu", "sigma"), TURNER_TABLE_IV)
def test_turner_tau_density_is_the_change_of_variables(name, mu, sigma):
    prior = heterogeneity_prior(name)
    total, error = integrate.quad(lambda t: math.exp(prior.logpdf(t)), 0, np.inf, limit=200)
    assert total == pytest.approx(1.0, abs=1e-7) and error < 1e-6
    # tau^2 ~ LN(mu, sigma) has median exp(mu), so tau has median sqrt(exp(mu))
    assert float(prior.ppf(0.5)) == pytest.approx(math.sqrt(math.exp(mu)), rel=1e-12)
    for t in [0.05, 0.3, 1.2]:
        mass, _ = integrate.quad(lambda u: math.exp(prior.logpdf(u)), 0, t)
        assert float(prior.cdf(t)) == pytest.approx(mass, rel=1e-7)
        tau2_cdf = stats.lognorm(s=sigma, scale=math.exp(mu)).cdf(t**2)
        assert float(prior.cdf(t)) == pytest.approx(tau2_cdf, rel=1e-12)
    assert prior.logpdf(0.0) == -np.inf and prior.logpdf(-1.0) == -np.inf


def test_heterogeneity_names_are_forgiving_but_unknown_names_list_the_choices():
    assert heterogeneity_prior("Turner: All cause mortality : pharma_vs_placebo") == (
        heterogeneity_prior("turner:all-cause-mortality:pharma-vs-placebo")
    )
    assert heterogeneity_prior("röver:logor") == heterogeneity_prior("rover:logor")
    assert str(heterogeneity_prior("rover:logor")) == "HalfNormal(sigma=0.5)"
    assert str(heterogeneity_prior("rover:logor-conservative")) == "HalfNormal(sigma=1)"
    with pytest.raises(UserError, match=r"outcome 'deaths' is not one of all-cause-mortality"):
        heterogeneity_prior("turner:deaths:pharma-vs-placebo")
    with pytest.raises(UserError, match=r"write turner:<outcome>:<comparison>"):
        heterogeneity_prior("turner:pain")


def test_rover_half_normal_tail_probabilities_stated_in_the_docs():
    assert 1 - float(heterogeneity_prior("rover:logor").cdf(1.0)) == pytest.approx(0.0455, abs=1e-4)
    assert float(heterogeneity_prior("rover:logor").ppf(0.5)) == pytest.approx(0.337, abs=1e-3)
    conservative = heterogeneity_prior("rover:logor-conservative")
    assert 1 - float(conservative.cdf(1.0)) == pytest.approx(0.317, abs=1e-3)


def test_list_heterogeneity_priors():
    table = list_heterogeneity_priors()
    assert len(table) == 16 * 5 + 1 + 2
    assert table.index.is_unique
    assert list(table.columns) == [
        "prior", "family", "params", "median_tau", "measure", "setting", "citation",
    ]  # fmt: skip
    row = table.loc["turner:all-cause-mortality:pharma-vs-placebo"]
    assert row["params"] == "mu=-3.95, sigma=1.34"
    assert row["median_tau"] == pytest.approx(math.exp(-3.95 / 2))
    assert "Table IV" in row["citation"]
    assert row["setting"] == "all-cause mortality; pharmacological vs placebo / control"
    for name, prior_text in table["prior"].items():
        assert parse_prior(name) == parse_prior(prior_text)


# ------------------------------------------------------------------ default priors


@pytest.mark.parametrize("measure", ["OR", "or", "logor", "RR", "PLO"])
def test_default_priors_for_log_scale_binary_measures(measure):
    priors = default_priors(measure)
    assert {k: str(v) for k, v in priors.items()} == {
        "mu": "Normal(mu=0, sigma=4)",
        "tau": "HalfNormal(sigma=0.5)",
        "beta": "Normal(mu=0, sigma=1)",
        "baseline": "Normal(mu=0, sigma=5)",
    }
    priors["mu"] = None  # a fresh dict: the table itself is untouched
    assert DEFAULT_PRIORS["OR"]["mu"] == parse_prior("Normal(0, 4)")


def test_default_priors_for_smd():
    assert {k: str(v) for k, v in default_priors("SMD").items()} == {
        "mu": "Normal(mu=0, sigma=2)",
        "tau": "HalfNormal(sigma=0.5)",
        "beta": "Normal(mu=0, sigma=1)",
    }


def test_default_priors_for_raw_scale_data_are_scaled_to_the_standard_errors():
    # Eight schools (Rubin 1981): sei = 15, 10, 16, 11, 9, 11, 10, 18, so
    # mean(sei^2) = 1328 / 8 = 166 and s = sqrt(166) = 12.884...
    yi = [28, 8, -3, 7, -1, 1, 18, 12]
    sei = [15, 10, 16, 11, 9, 11, 10, 18]
    expected = {
        "mu": "Normal(mu=0, sigma=129)",
        "tau": "HalfNormal(sigma=12.9)",
        "beta": "Normal(mu=0, sigma=129)",
    }
    for measure in ["MD", "PREPOST", None]:
        assert {k: str(v) for k, v in default_priors(measure, yi=yi, sei=sei).items()} == expected
    small = default_priors("MD", sei=[0.0123456, 0.0123456])
    assert small["tau"].params["sigma"] == 0.0123
    assert small["mu"].params["sigma"] == 0.123


def test_default_priors_refuse_what_they_cannot_scale():
    with pytest.raises(UserError, match=r"measure MD .* need the standard errors \(sei\)"):
        default_priors("MD")
    with pytest.raises(UserError, match="finite and > 0"):
        default_priors(None, sei=[1.0, 0.0])
    with pytest.raises(UserError, match="yi has 3 values but sei has 2"):
        default_priors("MD", yi=[1, 2, 3], sei=[1, 2])
    with pytest.raises(UserError, match="unknown effect measure 'XYZ'"):
        default_priors("XYZ")


def test_messages_quote_user_text_verbatim():
    text = "HalfNormal(-0.5)"
    with pytest.raises(UserError, match=re.escape(repr(text))):
        parse_prior(text)
