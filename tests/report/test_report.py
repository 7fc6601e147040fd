"""bayeskit.report: reports built from real (small) run directories.

Run directories come from the CLI, as users make them, with few draws: normal-normal by
MCMC and by the exact engine, binomial-normal on arm-level counts, exposure-response
with questions, and a study-level table whose study names are hostile text.
"""

import base64
import re

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

import bayeskit as bk
from bayeskit.cli import app
from bayeskit.errors import UserError
from bayeskit.report import build_report, load_run
from bayeskit.report.figures import observed_effects
from tests.conftest import DATA, ROOT

runner = CliRunner()
FAST = ["--draws", "200", "--tune", "300", "--chains", "2", "--seed", "11", "--quiet"]
HOSTILE = ["<script>alert(1)</script>", "=cmd|' /C calc'!A0", "Smith & $Jones$"]

RUNS = {
    "normal-mcmc": ["fit", str(ROOT / "models" / "eight_schools.toml"), "--method", "mcmc", *FAST],
    "exact": ["fit", str(ROOT / "models" / "eight_schools.toml"), "--method", "exact", "--quiet"],
    "binomial": [
        "fit", "--data", str(DATA / "oud_abstinence.csv"), "--model", "binomial-normal",
        "--timepoint", "12 months", *FAST,
    ],
    # robustness.csv's refits: tests/cli/test_ketamine_specs.py (slow)
    "exposure": ["fit", str(ROOT / "models" / "oud_abstinence.toml"), "--no-robustness", *FAST],
}  # fmt: skip
FIGURES = {
    "normal-mcmc": {"forest", "funnel", "prior_posterior", "ppc", "rank"},
    "exact": {"forest", "funnel", "prior_posterior"},
    "binomial": {"forest", "prior_posterior", "ppc", "rank"},
    "exposure": {"forest", "prior_posterior", "exposure_response", "ppc", "rank"},
    "hostile": {"forest", "funnel", "prior_posterior"},
}


@pytest.fixture(scope="module")
def reports(tmp_path_factory):
    """Fit every run once, build its report into a separate folder: name -> (run, out, files)."""
    root = tmp_path_factory.mktemp("report-runs")
    hostile_csv = root / "hostile.csv"
    rows = [f'"{name.replace(chr(34), chr(34) * 2)}",{y},{s}' for name, y, s in
            zip(HOSTILE, (0.5, 0.1, 0.3), (0.2, 0.3, 0.25), strict=True)]  # fmt: skip
    hostile_csv.write_text("study,yi,sei\n" + "\n".join(rows) + "\n", encoding="utf-8")
    commands = RUNS | {
        "hostile": ["fit", "--data", str(hostile_csv), "--method", "exact", "--quiet"]
    }
    out = {}
    for name, args in commands.items():
        run = root / name
        result = runner.invoke(app, [*args, "--out", str(run)])
        assert result.exit_code == 0, result.output
        report = root / f"{name}-report"
        out[name] = (run, report, build_report(run, out_dir=report))
    return out


@pytest.fixture(params=sorted(FIGURES))
def report(request, reports):
    return request.param, *reports[request.param]


def test_every_file_is_written_and_returned(report):
    name, _, out, files = report
    figures = FIGURES[name]
    expected = {"report.html", "report.md", "methods.md"} | {
        f"figures/{f}.{ext}" for f in figures for ext in ("png", "svg")
    }
    assert set(files) == expected
    for key, path in files.items():
        assert path == out / key
        assert path.is_file() and path.stat().st_size > 0
    # written through temporary files: none may be left behind
    assert not [p for p in out.rglob(".*")]


def test_figures_are_not_blank(report):
    import matplotlib.image

    name, _, out, _ = report
    for fig in FIGURES[name]:
        pixels = matplotlib.image.imread(out / "figures" / f"{fig}.png")
        assert pixels.ndim == 3 and pixels.shape[0] > 100 and pixels.shape[1] > 100
        assert pixels[..., :3].var() > 0, fig
        svg = (out / "figures" / f"{fig}.svg").read_text(encoding="utf-8")
        assert svg.lstrip().startswith("<?xml") and "<path" in svg, fig


def test_html_is_self_contained_and_embeds_every_figure(report):
    name, _, out, _ = report
    html = (out / "report.html").read_text(encoding="utf-8")
    for external in ('src="http', "src='http", 'href="http', "href='http", "<link", "@import"):
        assert external not in html
    assert "<script" not in html
    embedded = re.findall(r'src="data:image/png;base64,([A-Za-z0-9+/=]+)"', html)
    assert len(embedded) == len(FIGURES[name])
    for fig in FIGURES[name]:
        png = (out / "figures" / f"{fig}.png").read_bytes()
        assert base64.b64encode(png).decode("ascii") in embedded, fig


def test_html_names_every_study(report):
    from markupsafe import escape

    name, run, out, _ = report
    html = (out / "report.html").read_text(encoding="utf-8")
    studies = pd.read_csv(run / "data.csv", keep_default_na=False)["study"].unique()
    for study in studies:
        assert str(escape(study)) in html


def test_markdown_has_the_summary_table_and_links_figures(report):
    name, run, out, _ = report
    md = (out / "report.md").read_text(encoding="utf-8")
    assert "| parameter | mean | sd | q2.5 | q50 | q97.5 |" in md
    summary = pd.read_csv(run / "summary.csv", keep_default_na=False)
    for parameter in summary["parameter"]:
        if "<" not in parameter and "|" not in parameter:  # those are escaped; see below
            assert f"| {parameter} |" in md
    for fig in FIGURES[name]:
        assert f"](figures/{fig}.png)" in md


def test_hostile_study_names_are_shown_as_text(reports):
    _, out, _ = reports["hostile"]
    html = (out / "report.html").read_text(encoding="utf-8")
    md = (out / "report.md").read_text(encoding="utf-8")
    assert "<script>alert(1)</script>" not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert "=cmd|&#39; /C calc&#39;!A0" in html
    assert "Smith &amp; $Jones$" in html
    assert "<script>" not in md
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in md
    assert r"=cmd\|' /C calc'!A0" in md  # a raw pipe would split the table cell


def test_headline_speaks_the_scale_of_the_measure(reports):
    def headline(name):
        html = (reports[name][1] / "report.html").read_text(encoding="utf-8")
        return re.search(r'<div class="headline">(.*?)</div>', html, re.S).group(1)

    assert "odds ratio of" in headline("binomial")
    assert "prediction interval" in headline("normal-mcmc")
    assert "computed exactly" in headline("exact")
    # exposure-response: the headline table, one row per answer, in place of a sentence
    # per answer and of the slope per doubling of (1 + exposure / E_ref)
    exposure = headline("exposure")
    assert "each doubling" not in exposure and "For 2 mg/kg" not in exposure
    for label in ("2 mg/kg IM, 1 session", "2 mg/kg IM, 3 sessions", "0.5 mg/kg IV, 1 session"):
        assert f"<td>{label} vs no ketamine</td>" in exposure
    assert "<td>extrapolated</td>" in exposure and "<td>not checked</td>" in exposure


def test_sections_follow_the_run(reports):
    html = {k: (v[1] / "report.html").read_text(encoding="utf-8") for k, v in reports.items()}
    # both engines carry the leave-one-study-out log-likelihood, so both reports have LOO
    assert 'id="loo"' in html["normal-mcmc"] and 'id="loo"' in html["exact"]
    assert 'id="questions"' in html["exposure"] and 'id="questions"' not in html["binomial"]
    assert 'class="verdict none"' in html["exact"]
    for page in html.values():
        assert 'id="posterior-summary"' in page and 'id="manifest"' in page


def test_binomial_forest_uses_metafor_log_odds_ratios(reports):
    run = load_run(reports["binomial"][0])
    ours = observed_effects(run).set_index("study")
    evidence = bk.load_evidence(DATA / "oud_abstinence.csv")
    reference = bk.effects(evidence, measure="OR", timepoint="12 months")
    assert list(ours.index) == list(reference.index)
    np.testing.assert_allclose(ours["yi"], reference["yi"], rtol=1e-12)
    np.testing.assert_allclose(ours["sei"], reference["sei"], rtol=1e-12)


def test_rebuild_in_place_replaces_the_report(reports, tmp_path):
    import shutil

    run = tmp_path / "run"
    shutil.copytree(reports["exact"][0], run)
    first = build_report(run)
    assert first["report.html"] == run / "report.html"
    before = {p.name for p in run.iterdir()}
    second = build_report(run)
    assert set(second) == set(first)
    assert {p.name for p in run.iterdir()} == before
    # the figures are deterministic: the same run gives the same bytes
    for key in first:
        if key.endswith(".svg"):
            assert first[key].read_bytes() == second[key].read_bytes()


def test_a_folder_that_is_not_a_run_is_a_user_error(tmp_path):
    with pytest.raises(UserError, match="not a folder"):
        build_report(tmp_path / "missing")
    with pytest.raises(UserError, match="summary.csv, manifest.json missing"):
        build_report(tmp_path)


def test_family_predict_refuses_unknown_routes(reports):
    # the report's dose-response figure predicts through the family (one mean function;
    # tests/families/test_families.py checks it against the model)
    run = load_run(reports["exposure"][0])
    with pytest.raises(UserError, match="route 'rectal' is not in this fit"):
        run.model_family.predict(
            run.group("posterior"), run.settings, route="rectal", dose_mg_per_kg=1
        )


def test_loaded_run_keeps_names_that_look_missing(tmp_path, reports):
    import shutil

    run = tmp_path / "run"
    shutil.copytree(reports["exact"][0], run)
    data = pd.read_csv(run / "data.csv")
    data.loc[0, "study"] = "NA"
    data.to_csv(run / "data.csv", index=False)
    assert load_run(run).data["study"].iloc[0] == "NA"


def test_a_figure_that_fails_is_reported_not_fatal(reports, tmp_path, monkeypatch):
    from bayeskit.report import render

    def broken(run):
        raise ValueError("no ink")

    figures = tuple(
        (name, title, broken if name == "forest" else draw, caption)
        for name, title, draw, caption in render.FIGURES
    )
    monkeypatch.setattr(render, "FIGURES", figures)
    with pytest.warns(RuntimeWarning, match="the forest figure could not be drawn"):
        files = build_report(reports["exact"][0], out_dir=tmp_path)
    assert "figures/forest.png" not in files and "figures/prior_posterior.png" in files
    html = (tmp_path / "report.html").read_text(encoding="utf-8")
    assert "Forest plot: ValueError: no ink" in html


@pytest.mark.parametrize(
    ("family", "noted"),
    [("exposure-response", True), ("normal-normal", False), ("unknown-family", False)],
)
def test_forest_caption_adds_the_family_note(family, noted):
    from pathlib import Path

    from bayeskit.report.render import _forest_caption
    from bayeskit.report.run import Run

    caption = _forest_caption(Run(Path("."), pd.DataFrame(), {"family": family, "method": "exact"}))
    assert caption.startswith("Black squares: each study's observed estimate")
    assert ("Contrasts compare each study's arms as randomised" in caption) is noted


# ------------------------------------------------------------ heterogeneity, forest, funnel


def test_every_family_reports_heterogeneity(report):
    """tau^2, I^2, H^2 in summary.csv and a Heterogeneity section in both pages."""
    name, run, out, _ = report
    summary = load_run(run).summary
    for row in ("tau2", "I2", "H2", "s2_typical"):
        assert row in summary.index, (name, row)
    i2, tau = summary.loc["I2"], summary.loc["tau"]
    assert 0 <= i2["q2.5"] <= i2["q50"] <= i2["q97.5"] < 1
    s2 = summary.loc["s2_typical", "mean"]
    # I^2 is an increasing function of tau: its median is tau's median pushed through it
    # (MCMC quantiles of a monotone function commute with it up to interpolation)
    assert np.isclose(i2["q50"], tau["q50"] ** 2 / (tau["q50"] ** 2 + s2), rtol=0.02)
    html = (out / "report.html").read_text(encoding="utf-8")
    assert '<section id="heterogeneity">' in html and "Higgins &amp; Thompson" in html
    assert "## Heterogeneity" in (out / "report.md").read_text(encoding="utf-8")


def test_binary_prediction_interval_is_stated_on_the_risk_scale(reports):
    summary = load_run(reports["binomial"][0]).summary
    new = summary.loc["theta_new"]
    assert np.allclose(
        summary.loc["odds_ratio_new", ["q2.5", "q50", "q97.5"]].astype(float),
        np.exp(new[["q2.5", "q50", "q97.5"]].astype(float)),
        rtol=0.02,
    )
    p = summary.loc["p_treatment_new"]
    assert 0 < p["q2.5"] < p["q50"] < p["q97.5"] < 1
    assert "delta_new" in load_run(reports["exposure"][0]).summary.index


@pytest.mark.parametrize("name", ["normal-mcmc", "exact", "binomial", "exposure", "hostile"])
def test_forest_has_numbers_weights_pooled_and_prediction_rows(reports, name):
    from bayeskit.report.forest import forest_rows

    run = load_run(reports[name][0])
    studies, pooled = forest_rows(run)
    kinds = [p["kind"] for p in pooled]
    assert "pooled" in kinds and "predictive" in kinds, kinds
    assert all(r["obs"] is not None and r["model"] is not None for r in studies)
    weights = [r["weight"] for r in studies]
    assert np.isclose(sum(weights), 1.0) and min(weights) > 0
    for r in studies:  # the model's interval is a 95% interval around its median
        mid, lo, hi = r["model"]
        assert lo < mid < hi


def test_exposure_forest_shows_each_contrast_fitted_at_its_doses(reports):
    from bayeskit.report.forest import forest_rows

    run = load_run(reports["exposure"][0])
    studies, pooled = forest_rows(run)
    # Krupitsky 2002 compares 2.0 against 0.2 mg/kg IM, Krupitsky 2007 three sessions
    # against one: with a positive dose slope both fitted differences are positive
    assert [r["label"] for r in studies] == ["KRUPITSKY2002", "KRUPITSKY2007"]
    post = run.group("posterior")
    assert float(post["beta_dose"].median()) > 0
    assert all(r["model"][0] > 0 for r in studies)
    labels = [p["label"] for p in pooled if p["kind"] == "pooled"]
    assert labels == [f"{q['label']} vs no drug" for q in run.spec["questions"]]


def test_funnel_caption_states_the_small_study_check_as_a_posterior(reports):
    from bayeskit.report.funnel import funnel_caption

    run = load_run(reports["exact"][0])
    check = pd.read_csv(run.path / "small_study.csv", index_col=0)
    assert list(check.index) == ["beta[sei]", "mu_at_sei_0"]
    caption = funnel_caption(run)
    assert "P(slope > 0) = " in caption and "p-value" not in caption
    assert not (load_run(reports["binomial"][0]).path / "small_study.csv").exists()
