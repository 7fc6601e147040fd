"""The bundled ketamine specs run from the CLI with clean diagnostics and answer the
clinical questions (the acceptance check of the ketamine analyses)."""

import json

import pandas as pd
import pytest
from typer.testing import CliRunner

from bayeskit.cli import app
from tests.conftest import ROOT

runner = CliRunner()
SPECS = ["oud_abstinence", "ow_withdrawal", "sud_abstinence"]


@pytest.fixture(scope="module", params=SPECS)
def run(request, tmp_path_factory):
    out = tmp_path_factory.mktemp("ketamine") / request.param
    result = runner.invoke(
        app,
        [
            "fit",
            str(ROOT / "models" / f"{request.param}.toml"),
            "--out",
            str(out),
            "--quiet",
            "--strict",
            # the refits of robustness.csv: test_oud_spec_writes_the_robustness_table (slow)
            "--no-robustness",
        ],
    )
    assert result.exit_code == 0, result.output
    return request.param, out


def _check_headline(name, out):
    """headline.csv: the values of questions.csv, every answer labelled, at the report's top."""
    head = pd.read_csv(out / "headline.csv", index_col="answer")
    questions = pd.read_csv(out / "questions.csv", index_col=["question", "quantity"])
    assert len(head) == questions.index.get_level_values("question").nunique(), name
    for answer, r in head.iterrows():
        q = questions.loc[r["question"]]
        row = q.loc[r["quantity"]]
        assert (r["estimate"], r["q2.5"], r["q97.5"]) == (row["q50"], row["q2.5"], row["q97.5"])
        assert r["p_benefit"] == q.loc["effect", "prob"]
        assert r["evidence"] == row["evidence"] and r["question"].endswith(f"({r['evidence']})")
        assert r["quantity"] == ("difference" if "difference" in q.index else "effect")
        assert answer == f"{row['regimen']} vs {row['comparator']}"
    against_none = head[head.index.str.endswith("vs no ketamine")]
    assert len(against_none) >= 1, name
    if name == "ow_withdrawal":  # Jovaisa 2006 randomised 0.5 mg/kg IV against placebo
        assert (against_none["evidence"] == "within the evidence").all()
    else:  # no OUD arm went without ketamine
        assert (against_none["evidence"] == "extrapolated").all()
    report = (out / "report.md").read_text(encoding="utf-8")
    first = report.split("## What the evidence says")[1].split("\n## ")[0]
    assert "| answer | estimate (95% interval) | P(benefit) | evidence | robustness |" in first
    assert "each doubling" not in first and "exposure / " not in first
    return head


def test_headline_table_holds_the_answers_with_their_labels(run):
    name, out = run
    head = _check_headline(name, out)
    assert set(head["robustness"]) == {"not checked"}  # --no-robustness


@pytest.mark.slow
def test_oud_spec_writes_the_robustness_table(tmp_path):
    # the acceptance run: the spec as bundled, its [robustness] refits included (~2 min)
    out = tmp_path / "oud"
    spec = ROOT / "models" / "oud_abstinence.toml"
    result = runner.invoke(app, ["fit", str(spec), "--out", str(out), "--strict"])
    assert result.exit_code == 0, result.output
    assert "headline: differences in percentage points" in result.output
    from bayeskit.robustness import robust_flags

    table = pd.read_csv(out / "robustness.csv")
    alternatives = set(zip(table["assumption"], table["alternative"], strict=True))
    assert alternatives == {
        ("as fitted", "as fitted"),
        ("dose-response shape", "Emax"),
        ("reference exposure", "0.1 mg/kg"),
        ("reference exposure", "1 mg/kg"),
        ("sessions", "multiply exposure"),
        ("baseline model", "arm-based, random baselines"),
        ("tau prior", "HalfNormal(0.25)"),
        ("tau prior", "HalfNormal(1)"),
        # Krupitsky 2002's counts derived from percentages, 2007's completers denominators
        ("derived counts", "lowest effect within the recorded ranges"),
        ("derived counts", "highest effect within the recorded ranges"),
        ("derived counts", "completers denominators (n_low)"),
    }
    base = table[table["assumption"] == "as fitted"].set_index(["question", "quantity"])
    for (assumption, label), rows in table.groupby(["assumption", "alternative"]):
        if assumption == "as fitted":
            continue
        moved = (rows.set_index(["question", "quantity"])["q50"] - base["q50"]).abs()
        # every alternative moves some answer beyond Monte Carlo error (a few tenths of a
        # percentage point at 1,000 draws): a knob that moves nothing is a bug
        assert moved.max() > 0.005, (assumption, label)
    head = _check_headline("oud_abstinence", out)
    flags = robust_flags(table)
    for r in head.itertuples():
        assert r.robustness == flags[(r.question, r.quantity)]
    report = (out / "report.md").read_text(encoding="utf-8")
    assert "## Robustness" in report and (out / "figures" / "robustness.png").is_file()


def test_spec_runs_with_clean_sampling_diagnostics(run):
    name, out = run
    checks = {c["name"]: c for c in json.loads((out / "diagnostics.json").read_text())["checks"]}
    assert checks["divergences"]["value"] == 0, name
    assert checks["r_hat"]["value"] < 1.01, name
    summary = pd.read_csv(out / "summary.csv", index_col="parameter")
    assert summary.filter(like="beta_dose[", axis=0).shape[0] >= 1


def test_methods_md_states_model_priors_and_sampler(run):
    name, out = run
    text = " ".join((out / "methods.md").read_text(encoding="utf-8").split())
    spec = (ROOT / "models" / f"{name}.toml").read_text(encoding="utf-8")
    assert "Model (exposure-response): Each study's arms" in text, name
    assert "No-U-Turn sampler" in text and "seed 20261123" in text, name
    assert "R-hat" in text and "## Results" in text, name
    # every prior the spec sets is named, as given for this analysis
    for line in spec.split("[priors]")[1].split("[")[0].splitlines():
        if "=" in line and not line.lstrip().startswith("#"):
            parameter = line.split("=")[0].strip()
            assert f"{parameter} ~ " in text and "(as given for this analysis" in text, name


def test_run_directory_answers_the_questions(run):
    name, out = run
    questions = pd.read_csv(out / "questions.csv", index_col=["question", "quantity"])
    summary = pd.read_csv(out / "summary.csv", index_col="parameter")
    first = questions.index.get_level_values("question")[0]
    assert f"question[{first}].effect" in summary.index
    prob = questions.loc[(first, "effect"), "prob"]
    assert 0 <= prob <= 1
    # every answer is labelled; against no ketamine it is extrapolated unless a trial of
    # the indication randomised that regimen against no ketamine
    answers = questions.reset_index()
    assert set(answers["evidence"]) <= {"within the evidence", "extrapolated"}
    assert all(
        q.endswith(f"({e})") for q, e in zip(answers["question"], answers["evidence"], strict=True)
    )
    within = answers[answers["evidence"] == "within the evidence"]
    assert within["basis"].str.startswith("randomised in ").all()
    if name in ("oud_abstinence", "sud_abstinence"):  # no OUD arm went without ketamine
        none = answers[answers["comparator"] == "no ketamine"]
        assert (none["evidence"] == "extrapolated").all()
        assert none["basis"].str.contains("no arm without ketamine").all()
    if name == "oud_abstinence":
        one = "2 mg/kg IM, 1 session vs no ketamine (extrapolated)"
        three = "2 mg/kg IM, 3 sessions vs no ketamine (extrapolated)"
        assert 0 <= questions.loc[(one, "difference"), "prob"] <= 1
        assert set(within["question"]) == {
            "2 mg/kg IM, 1 session vs 0.2 mg/kg im, 1 session (within the evidence)",
            "2 mg/kg IM, 3 sessions vs 2 mg/kg im, 1 session (within the evidence)",
        }
        # a new study's answer carries tau: wider than the average effect's
        for label in (one, three):
            assert (
                questions.loc[(label, "effect_new"), "sd"] > questions.loc[(label, "effect"), "sd"]
            )
        shapes = pd.read_csv(out / "shapes.csv", index_col=["question", "shape", "quantity"])
        assert set(shapes.index.get_level_values("shape")) == {"loglinear", "emax", "stacked"}
    if name == "ow_withdrawal":
        # Jovaisa 2006 randomised 0.5 mg/kg IV against placebo: within the evidence
        label = "0.5 mg/kg IV vs no ketamine (within the evidence)"
        assert (label, "effect_COWS points") in questions.index
        assert (label, "effect_mmHg") in questions.index
    if name == "sud_abstinence":
        borrowing = pd.read_csv(out / "borrowing.csv", index_col=["indication", "fit"])
        assert {
            ("OUD", "with borrowing (exchangeable)"),
            ("OUD", "without borrowing"),
            ("OUD", "informative prior (robust mixture)"),
        } <= set(borrowing.index)
        informative = borrowing.loc[("OUD", "informative prior (robust mixture)")]
        assert informative["prior_ess"] > 0 and 0 <= informative["posterior_weight"] <= 1


def test_sensitivity_command_writes_table_and_plot(tmp_path):
    spec = tmp_path / "small.toml"
    text = (ROOT / "models" / "oud_abstinence.toml").read_text(encoding="utf-8")
    text = text.replace("draws = 2000", "draws = 200").replace("tune = 2000", "tune = 400")
    # the data and descriptive files, named relative to models/, from the copy's folder
    text = text.replace('"../data/', f'"{(ROOT / "data").as_posix()}/')
    spec.write_text(text, encoding="utf-8")
    out = tmp_path / "sens"
    result = runner.invoke(app, ["sensitivity", str(spec), "--out", str(out), "--quiet"])
    assert result.exit_code == 0, result.output
    table = pd.read_csv(out / "sensitivity.csv")
    scenarios = set(table["scenario"])
    assert {"main", "without KRUPITSKY2002", "without KRUPITSKY2007"} <= scenarios
    # the spec's slope prior sits on Krupitsky 2002's dose contrast (slope_scale)
    assert any(s.startswith("prior: dose_contrast") for s in scenarios)
    main = table[(table["scenario"] == "main") & (table["parameter"] == "dose_contrast[OUD]")]
    assert main["shift_sd"].iloc[0] == 0
    assert (out / "sensitivity.png").stat().st_size > 10_000
    again = runner.invoke(app, ["sensitivity", str(spec), "--out", str(out)])
    assert again.exit_code == 2 and "--force" in again.output


def test_spec_reports_heterogeneity_and_a_forest_plot_with_pooled_and_prediction_rows(run):
    from bayeskit.report import load_run
    from bayeskit.report.forest import forest_rows

    name, out = run
    summary = pd.read_csv(out / "summary.csv", index_col="parameter")
    for row in ("tau2", "I2", "H2", "s2_typical", "delta_new"):
        assert row in summary.index, (name, row)
    assert 0 <= summary.loc["I2", "q2.5"] < summary.loc["I2", "q97.5"] < 1
    studies, pooled = forest_rows(load_run(out))
    assert studies and all(r["model"] is not None for r in studies), name
    assert {"pooled", "predictive"} <= {p["kind"] for p in pooled}, name
    html = (out / "report.html").read_text(encoding="utf-8")
    assert '<section id="heterogeneity">' in html and 'id="fig-forest"' in html
    assert 'id="fig-funnel"' not in html  # exposure-response: no study-level funnel
