"""The pooling explorer's numbers (without a browser) and bayeskit teach explore.

The page's script computes the posterior given tau and, after an edit, the posterior of
tau; here the same formulas, as the exact engine states them, are checked against the
engine's own posterior, so that the browser test only has to show that the page agrees
with them.
"""

import json
import re

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

import bayeskit as bk
from bayeskit.cli import app
from bayeskit.errors import UserError
from bayeskit.exact import conditional_posterior, exact_posterior
from bayeskit.explorer import explorer_html, explorer_inputs, explorer_state
from tests.conftest import DATA, ROOT

runner = CliRunner()
CLASSIC = {"mu": "Normal(0, 5)", "tau": "HalfCauchy(5)"}


@pytest.fixture(scope="module")
def schools():
    d, priors, label = explorer_inputs(priors=CLASSIC)
    return d, priors, explorer_state(d, priors, label=label)


def embedded(page: str) -> dict:
    text = page.split('id="explorer-data">')[1].split("</script>")[0]
    return json.loads(text)


def test_given_tau_mixes_into_the_exact_posterior(schools):
    # averaging the conditional means over the engine's posterior of tau gives the
    # engine's marginal means: the two paths through the model agree
    d, priors, _ = schools
    post = exact_posterior(d, priors)
    keep = post.weight > 1e-12
    given = [conditional_posterior(d, priors, t)["mean"] for t in post.tau[keep]]
    mixed = (pd.concat(given, axis=1) @ (post.weight[keep] / post.weight[keep].sum())).drop(
        "theta_new"
    )
    marginal = post.summary().loc[mixed.index, "mean"]
    np.testing.assert_allclose(mixed.to_numpy(), marginal.to_numpy(), rtol=0, atol=1e-6)


def test_given_tau_zero_is_complete_pooling_and_large_tau_no_pooling(schools):
    d, priors, _ = schools
    full = exact_posterior(d, priors, pooling="full").summary()
    at0 = conditional_posterior(d, priors, 0.0)
    np.testing.assert_allclose(at0.loc["mu"], full.loc["mu", ["mean", "sd"]], rtol=1e-12)
    far = conditional_posterior(d, priors, 1e6)
    thetas = far.loc[[f"theta[{s}]" for s in d.study]]
    np.testing.assert_allclose(thetas["mean"], d.yi, atol=1e-6)
    np.testing.assert_allclose(thetas["sd"], d.sei, rtol=1e-6)


def test_given_tau_refuses_a_negative_tau(schools):
    d, priors, _ = schools
    with pytest.raises(UserError, match="tau must be a finite number of at least 0"):
        conditional_posterior(d, priors, -1.0)


def test_the_page_recomputation_of_tau_matches_the_engine(schools):
    # the page's recomputation after an edit: log prior + log p(y | tau) on its grid,
    # normalised there; on the data as loaded it must reproduce the embedded density
    d, priors, state = schools
    tau = np.array(state["tau"])
    logpost = np.array(state["log_prior"]) + [
        conditional_posterior(d, priors, t).attrs["log_likelihood"] for t in tau
    ]
    mine = np.exp(logpost - logpost.max())
    engine = np.array(state["density"])
    mine, engine = mine / np.trapezoid(mine, tau), engine / np.trapezoid(engine, tau)
    np.testing.assert_allclose(mine, engine, rtol=0, atol=2e-3 * engine.max())


def test_state_grid_prior_and_start(schools):
    d, priors, state = schools
    tau = np.array(state["tau"])
    assert tau[0] == 0 and state["tau_max"] == tau[-1] >= 3 * d.sei.max()
    assert np.allclose(np.diff(tau), tau[1])
    np.testing.assert_allclose(state["log_prior"][1:], priors["tau"].logpdf(tau[1:]))
    post = exact_posterior(d, priors)
    median = float(post.tau_quantile(np.array([0.5]))[0])
    assert abs(tau[state["start"]] - median) <= tau[1] / 2
    assert state["prior_mu"] == {"mean": 0.0, "sd": 5.0}
    assert state["prior_text"] == {"mu": "Normal(mu=0, sigma=5)", "tau": "HalfCauchy(beta=5)"}
    # mass under the page's grid: the tail beyond tau_max is small
    assert 0.99 < np.trapezoid(state["density"], tau) <= 1.001


def test_a_flat_prior_on_mu_reaches_the_page():
    d, priors, label = explorer_inputs(priors={"mu": "Flat()", "tau": "HalfCauchy(5)"})
    state = explorer_state(d, priors, label=label)
    assert state["prior_mu"] is None and state["prior_text"]["mu"] == "Flat()"


def test_ketamine_spec_gives_the_four_abstinence_contrasts():
    d, priors, label = explorer_inputs(ROOT / "models" / "sud_abstinence.toml")
    assert d.study == ["KRUPITSKY2002", "KRUPITSKY2007", "KRUPITSKY1997", "GRABSKI2022"]
    oud = bk.effects(bk.load_evidence(DATA / "oud_abstinence.csv"), "OR", timepoint="12 months")
    np.testing.assert_allclose(d.yi[:2], oud["yi"], rtol=1e-12)
    assert d.yi[3] == pytest.approx(0.2231) and d.measure == "OR"
    assert str(priors["tau"]) == "HalfNormal(sigma=0.5)"  # the spec's tau prior
    assert label == "sud_abstinence.toml: 4 studies, OR"


def test_arm_level_table_with_a_measure_as_teach_pooling_takes():
    d, _, _ = explorer_inputs(DATA / "oud_abstinence.csv", measure="OR", timepoint="12 months")
    assert d.study == ["KRUPITSKY2002", "KRUPITSKY2007"]


@pytest.mark.parametrize(
    ("data", "options", "message"),
    [
        (DATA / "oud_abstinence.csv", {"measure": "OR"}, "--timepoint"),
        (DATA / "oud_abstinence.csv", {}, "needs an effect measure"),
        (DATA / "sud_contrasts.csv", {"measure": "OR"}, "at least 2 studies to pool"),
        (DATA / "eight_schools.csv", {"priors": {"beta": "Normal(0, 1)"}}, "mu and tau only"),
        (DATA / "eight_schools.csv", {"priors": {"mu": "HalfNormal(1)"}}, "Normal .or Flat"),
        (ROOT / "models" / "sud_abstinence.toml", {"timepoint": "99 months"}, "99 months"),
        (ROOT / "models" / "ow_withdrawal.toml", {}, "several outcomes .*--outcome"),
    ],
)
def test_user_mistakes_are_named(data, options, message):
    with pytest.raises(UserError, match=message):
        d, priors, _ = explorer_inputs(data, **options)
        explorer_state(d, priors)


@pytest.mark.parametrize(
    "name",
    [
        "</script><script>alert(1)</script>",
        "<!--",
        "A & B \u2028 \u00e9",
        '"; window.x = 1; "',
    ],
)
def test_hostile_study_names_stay_text(name):
    table = bk.load_evidence(DATA / "eight_schools.csv")
    table.loc[table.index[0], "study"] = name
    d, priors, label = explorer_inputs(table, priors=CLASSIC)
    page = explorer_html(explorer_state(d, priors, label=label))
    assert embedded(page)["study"][0] == name
    assert page.count("</script>") == 2  # the data's and the script's own, nothing more
    assert "<!--" not in page.split('id="explorer-data">')[1].split("</script>")[0]


def test_cli_writes_once_and_replaces_only_with_force(tmp_path):
    out = tmp_path / "explore.html"
    result = runner.invoke(app, ["teach", "explore", "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert "eight_schools.csv: 8 studies" in result.output
    page = out.read_text(encoding="utf-8")
    assert embedded(page)["yi"] == [28.0, 8.0, -3.0, 7.0, -1.0, 1.0, 18.0, 12.0]
    assert not re.search(r"(?:src|href) *=", page)  # nothing to fetch
    again = runner.invoke(
        app, ["teach", "explore", "--out", str(out), "--prior", "tau=HalfCauchy(5)"]
    )
    assert again.exit_code == 2 and "--force" in again.output
    assert out.read_text(encoding="utf-8") == page
    forced = runner.invoke(
        app, ["teach", "explore", "--out", str(out), "--prior", "tau=HalfCauchy(5)", "--force"]
    )
    assert forced.exit_code == 0, forced.output
    assert embedded(out.read_text(encoding="utf-8"))["prior_text"]["tau"] == "HalfCauchy(beta=5)"
    assert [p.name for p in tmp_path.iterdir()] == ["explore.html"]  # no leftovers


def test_cli_keeps_a_foreign_folder_and_names_bad_input(tmp_path):
    folder = tmp_path / "mine"
    folder.mkdir()
    (folder / "notes.txt").write_text("mine")
    result = runner.invoke(app, ["teach", "explore", "--out", str(folder), "--force"])
    assert result.exit_code == 2 and "Traceback" not in result.output
    assert (folder / "notes.txt").read_text() == "mine"
    missing = runner.invoke(
        app,
        ["teach", "explore", "--data", str(tmp_path / "no.csv"), "--out", str(tmp_path / "x.html")],
    )
    assert missing.exit_code == 2 and "no.csv" in missing.output
    assert not (tmp_path / "x.html").exists()


def test_cli_on_the_ketamine_spec(tmp_path):
    out = tmp_path / "ketamine.html"
    spec = ROOT / "models" / "sud_abstinence.toml"
    result = runner.invoke(app, ["teach", "explore", "--data", str(spec), "--out", str(out)])
    assert result.exit_code == 0, result.output
    state = embedded(out.read_text(encoding="utf-8"))
    assert state["scale"] == "log odds ratio" and len(state["study"]) == 4
