"""The command line on the inputs of issue 12: filters on study-level tables, missing
files never replaced by bundled ones, pipes, duplicate priors, exact-engine limits."""

import hashlib
import json
import os
import threading

import pytest
from typer.testing import CliRunner

import bayeskit as bk
from bayeskit.cli import app

runner = CliRunner()
MIXED = (
    "study,yi,sei,measure,outcome\nA,0.5,0.2,OR,abstinence\nB,0.7,0.3,OR,abstinence\n"
    "C,8,10,MD,craving\nD,12,9,MD,craving\n"
)
SEED = ["--method", "exact", "--seed", "1", "--json"]


def _mu(result) -> dict:
    assert result.exit_code == 0, result.output
    rows = {r["parameter"]: r for r in json.loads(result.output)["summary"]}
    return rows


def test_fit_outcome_filter_pools_only_that_outcome(write_csv):
    mixed = write_csv(MIXED, "t.csv")
    only = write_csv(MIXED.split("C,")[0], "ab.csv")
    filtered = _mu(
        runner.invoke(app, ["fit", "--data", str(mixed), "--outcome", "abstinence", *SEED])
    )
    alone = _mu(runner.invoke(app, ["fit", "--data", str(only), *SEED]))
    assert set(filtered) == set(alone) and "theta[C]" not in filtered
    assert filtered["mu"]["mean"] == alone["mu"]["mean"]
    assert filtered["odds_ratio"]["q50"] == alone["odds_ratio"]["q50"]


def test_fit_refuses_a_table_that_mixes_measures(write_csv):
    result = runner.invoke(app, ["fit", "--data", str(write_csv(MIXED)), "--method", "exact"])
    assert result.exit_code == 2
    assert "mixes measures (MD, OR)" in result.output


def test_effects_measure_contradicting_the_table_is_refused(write_csv):
    path = write_csv(MIXED.split("C,")[0])
    result = runner.invoke(app, ["effects", str(path), "--measure", "SMD"])
    assert result.exit_code == 2
    assert "--measure SMD contradicts the table's measure column, which holds OR" in result.output
    assert "effect sizes" not in result.output
    ok = runner.invoke(app, ["effects", str(path)])
    assert ok.exit_code == 0 and "OR effect sizes (log odds ratio)" in ok.output


def test_filter_matching_nothing_names_the_values_present(write_csv):
    result = runner.invoke(app, ["effects", str(write_csv(MIXED)), "--outcome", "relapse"])
    assert result.exit_code == 2
    assert "no rows for outcome 'relapse'; the table has 'abstinence', 'craving'" in result.output


@pytest.mark.parametrize(
    "args",
    [
        ["fit", "--data", "/nowhere/oud_abstinence.csv", "--measure", "OR"],
        ["fit", "/nowhere/eight_schools.toml"],
        ["fit", "eight_schools.toml"],
        ["effects", "/nowhere/eight_schools.csv"],
    ],
)
def test_missing_paths_are_never_replaced_by_bundled_files(args, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    result = runner.invoke(app, args)
    assert result.exit_code == 2
    assert "no such file" in result.output
    named = next(a for a in args[1:] if a.endswith((".csv", ".toml")) and a != "--data")
    assert named in result.output


def test_spec_data_file_missing_is_not_replaced_by_the_bundled_one(tmp_path):
    spec = tmp_path / "s.toml"
    spec.write_text('[data]\nfiles = ["mydata/eight_schools.csv"]\n')
    result = runner.invoke(app, ["fit", str(spec), "--method", "exact"])
    assert result.exit_code == 2
    assert "data file 'mydata/eight_schools.csv': no such file" in result.output


def test_bare_name_still_finds_a_bundled_spec(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    rows = _mu(runner.invoke(app, ["fit", "eight_schools", *SEED]))
    assert round(rows["mu"]["mean"], 1) == 4.4


def test_bundled_specs_find_their_data_when_installed(tmp_path, monkeypatch):
    # a wheel copies data/ and models/ into bayeskit/_bundled/: the specs' relative
    # '../data/NAME.csv' must resolve there, not to a checkout
    import shutil

    from bayeskit import _resources
    from bayeskit.spec import load_spec

    bundled = tmp_path / "_bundled"
    shutil.copytree(bk.data_dir(), bundled / "data")
    shutil.copytree(bk.models_dir(), bundled / "models")
    monkeypatch.setattr(_resources, "_PACKAGE", tmp_path)
    assert bk.models_dir() == bundled / "models"
    for name in ("eight_schools", "oud_abstinence", "ow_withdrawal", "sud_abstinence"):
        files = load_spec(name).data_files()
        assert files and all(f.resolve().parent == (bundled / "data").resolve() for f in files)


def test_pipe_data_is_hashed_as_read(tmp_path):
    text = MIXED.split("C,")[0]
    read, write = os.pipe()

    def feed():
        with os.fdopen(write, "wb") as handle:
            handle.write(text.encode())

    threading.Thread(target=feed).start()
    out = tmp_path / "run"
    try:
        result = runner.invoke(
            app, ["fit", "--data", f"/dev/fd/{read}", "--method", "exact", "--out", str(out)]
        )
    finally:
        os.close(read)
    assert result.exit_code == 0, result.output
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["data"] == {f"/dev/fd/{read}": hashlib.sha256(text.encode()).hexdigest()}
    assert hashlib.sha256(b"").hexdigest() not in json.dumps(manifest)


def test_duplicate_prior_is_refused_naming_both(write_csv):
    result = runner.invoke(
        app,
        ["fit", "--data", str(write_csv("study,yi,sei\nA,1,1\nB,2,1\n")), "--method", "exact",
         "--prior", "tau=HalfNormal(1)", "--prior", " tau = HalfCauchy(2)"],
    )  # fmt: skip
    assert result.exit_code == 2
    assert "'tau=HalfNormal(1)' and 'tau=HalfCauchy(2)'" in result.output


@pytest.mark.parametrize(
    ("prior", "words"),
    [("mu=Normal(0, 1e-300)", "priors.mu"), ("tau=HalfNormal(1e300)", "priors.tau")],
)
def test_absurd_prior_scales_exit_2_naming_the_prior(write_csv, prior, words):
    path = write_csv("study,yi,sei\nA,1,1\nB,2,1\n")
    result = runner.invoke(app, ["fit", "--data", str(path), "--method", "exact", "--prior", prior])
    assert result.exit_code == 2, result.output
    assert words in result.output and "must lie within" in result.output


@pytest.mark.parametrize("yi", ["1e308", "1e200", "-5e15"])
def test_huge_effects_exit_2_in_the_exact_engine(write_csv, yi):
    path = write_csv(f"study,yi,sei\nA,{yi},1\nB,1,1\n")
    result = runner.invoke(app, ["fit", "--data", str(path), "--method", "exact"])
    assert result.exit_code == 2, result.output
    assert "study A" in result.output and "rescale" in result.output


def test_case_control_and_a_text_moderator_fit(write_csv):
    path = write_csv(
        "study,yi,sei,onset,design\nA,0.5,0.2,early,case-control\nB,0.7,0.3,late,case_control\n"
        "C,0.1,0.25,early,non_randomised\nD,0.9,0.3,late,rct\n"
    )
    for covariate in ("~ C(onset)", "onset"):
        rows = _mu(
            runner.invoke(app, ["fit", "--data", str(path), "--covariate", covariate, *SEED])
        )
        assert "beta[onset[late]]" in rows  # 'early' is the reference: first alphabetically
    direct = bk.fit(path, covariates="~ C(onset)", method="exact", seed=1)
    assert direct.data.X.columns.tolist() == ["onset[late]"]
    assert direct.data.X["onset[late]"].tolist() == [0.0, 1.0, 0.0, 1.0]
