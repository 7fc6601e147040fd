"""bayeskit fit: spec files and flags, the run directory, reproducibility, user errors."""

import json

import pandas as pd
import pytest
import xarray as xr
from typer.testing import CliRunner

from bayeskit.cli import app
from tests.conftest import DATA, ROOT

runner = CliRunner()
SPEC = ROOT / "models" / "eight_schools.toml"
# MCMC is the point here (sample_stats, diagnostics): the default would be the exact engine
FAST = ["--method", "mcmc", "--draws", "300", "--tune", "300", "--chains", "2"]


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    out = tmp_path_factory.mktemp("runs") / "schools"
    result = runner.invoke(app, ["fit", str(SPEC), "--out", str(out), "--seed", "7", *FAST])
    assert result.exit_code == 0, result.output
    return out


def test_run_directory_holds_every_file(run_dir):
    assert {p.name for p in run_dir.iterdir()} >= {
        "summary.csv",
        "posterior.nc",
        "diagnostics.json",
        "manifest.json",
        "data.csv",
    }
    summary = pd.read_csv(run_dir / "summary.csv")
    assert summary.columns[0] == "parameter"
    assert {"mu", "tau", "theta[A]", "theta_new"} <= set(summary["parameter"])
    assert {
        "mean",
        "sd",
        "q2.5",
        "q50",
        "q97.5",
        "mcse_mean",
        "ess_bulk",
        "ess_tail",
        "r_hat",
    } <= set(summary.columns)


def test_posterior_nc_opens_with_arviz_and_xarray(run_dir):
    import arviz

    tree = xr.open_datatree(run_dir / "posterior.nc", engine="h5netcdf")
    assert {
        "posterior",
        "posterior_predictive",
        "log_likelihood",
        "sample_stats",
        "observed_data",
        "constant_data",
        "prior",
    } <= set(tree.children)
    again = arviz.from_netcdf(run_dir / "posterior.nc")
    assert again["posterior"]["theta"].sizes["study"] == 8


def test_manifest_records_versions_seed_spec_and_data_hash(run_dir):
    manifest = json.loads((run_dir / "manifest.json").read_text())
    assert manifest["seed"] == 7
    assert manifest["versions"]["pymc"].startswith("6.")
    assert manifest["spec"]["model"]["family"] == "normal-normal"
    assert manifest["priors"]["tau"] == "HalfCauchy(beta=5)"
    (digest,) = manifest["data"].values()
    assert len(digest) == 64
    diagnostics = json.loads((run_dir / "diagnostics.json").read_text())
    assert {c["name"] for c in diagnostics["checks"]} >= {"r_hat", "ess_bulk", "divergences"}


def test_same_seed_gives_identical_summary(run_dir, tmp_path):
    out = tmp_path / "again"
    result = runner.invoke(app, ["fit", str(SPEC), "--out", str(out), "--seed", "7", *FAST])
    assert result.exit_code == 0, result.output
    assert (out / "summary.csv").read_bytes() == (run_dir / "summary.csv").read_bytes()


def test_spec_and_equivalent_flags_give_identical_results(run_dir, tmp_path):
    out = tmp_path / "flags"
    args = [
        "fit",
        "--data",
        str(DATA / "eight_schools.csv"),
        "--model",
        "normal-normal",
        "--prior",
        "mu=Normal(0, 5)",
        "--prior",
        "tau=HalfCauchy(5)",
        "--seed",
        "7",
        "--target-accept",
        "0.9",
        "--out",
        str(out),
        *FAST,
    ]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    assert (out / "summary.csv").read_bytes() == (run_dir / "summary.csv").read_bytes()


def test_existing_run_directory_is_not_overwritten(run_dir):
    before = (run_dir / "summary.csv").read_bytes()
    result = runner.invoke(app, ["fit", str(SPEC), "--out", str(run_dir), "--method", "exact"])
    assert result.exit_code == 2
    assert "--force" in result.output
    assert (run_dir / "summary.csv").read_bytes() == before


def test_exact_method_from_flags_with_force(tmp_path):
    out = tmp_path / "exact"
    out.mkdir()
    (out / "stale.txt").write_text("old")
    args = [
        "fit",
        "--data",
        str(DATA / "eight_schools.csv"),
        "--method",
        "exact",
        "--prior",
        "mu=Normal(0, 5)",
        "--prior",
        "tau=HalfCauchy(5)",
        "--out",
        str(out),
        "--force",
        "--json",
    ]
    # --force replaces only what bayeskit wrote: a folder holding a foreign file is kept
    refused = runner.invoke(app, args)
    assert refused.exit_code == 2
    assert "stale.txt" in refused.output
    assert (out / "stale.txt").read_text() == "old"
    (out / "stale.txt").unlink()
    assert runner.invoke(app, args).exit_code == 0  # an empty folder may be replaced
    result = runner.invoke(app, args)  # and so may a run directory
    assert result.exit_code == 0, result.output
    payload = json.loads(result.stdout)
    mu = next(r for r in payload["summary"] if r["parameter"] == "mu")
    assert mu["mean"] == pytest.approx(4.3968, abs=1e-3)  # exact; JAGS gives 4.401 +- 0.006
    summary = pd.read_csv(out / "summary.csv", index_col="parameter")
    assert "r_hat" not in summary.columns


@pytest.mark.parametrize(
    ("args", "words"),
    [
        (["fit"], "say what to fit"),
        (["fit", "--data", "nope.csv"], "no such file"),
        (
            ["fit", "--data", str(DATA / "eight_schools.csv"), "--model", "poisson"],
            "is not one of",
        ),
        (["fit", "--data", str(DATA / "eight_schools.csv"), "--prior", "tau"], "NAME=DIST"),
        (["fit", "--data", str(DATA / "eight_schools.csv"), "--prior", "tau=Normal(0, -1)"], "tau"),
        (
            [
                "fit",
                "--data",
                str(DATA / "eight_schools.csv"),
                "--prior",
                "tau=__import__('os').system('echo hi')",
            ],
            "tau",
        ),
        (
            ["fit", "--data", str(DATA / "eight_schools.csv"), "--prior", "kappa=Normal(0, 1)"],
            "no prior called",
        ),
        (
            [
                "fit",
                "--data",
                str(DATA / "oud_abstinence.csv"),
                "--model",
                "binomial-normal",
                "--method",
                "exact",
            ],
            "exact engine",
        ),
        (
            ["fit", "--data", str(DATA / "eight_schools.csv"), "--covariate", "latitude"],
            "not a column",
        ),
        (["fit", "--data", str(DATA / "eight_schools.csv"), "--chains", "0"], "chains"),
        (["fit", str(SPEC), "--data", str(DATA / "eight_schools.csv")], "not both"),
    ],
)
def test_fit_user_errors_exit_2(args, words):
    result = runner.invoke(app, args)
    assert result.exit_code == 2, result.output
    assert words in result.output
    assert "Traceback" not in result.output


def test_bad_spec_names_the_key(tmp_path):
    spec = tmp_path / "bad.toml"
    spec.write_text(
        '[data]\nfiles = ["x.csv"]\n[model]\npooling = "some"\nfamly = "x"\n'
        '[sampler]\ndraws = -5\n[priors]\ntau = "HalfNormal(-1)"\n'
    )
    result = runner.invoke(app, ["fit", str(spec)])
    assert result.exit_code == 2
    for key in ("model.pooling", "model.famly", "sampler.draws"):
        assert f"key '{key}'" in result.output, result.output
    broken = tmp_path / "broken.toml"
    broken.write_text("[data\nfiles = 3")
    result = runner.invoke(app, ["fit", str(broken)])
    assert result.exit_code == 2 and "not valid TOML" in result.output


def test_pooling_flag_overrides_the_spec_and_out_parents_are_created(tmp_path):
    out = tmp_path / "runs" / "none"
    result = runner.invoke(
        app,
        ["fit", str(SPEC), "--method", "exact", "--pooling", "none", "--out", str(out), "--quiet"],
    )
    assert result.exit_code == 0, result.output
    summary = pd.read_csv(out / "summary.csv", index_col="parameter")
    assert "mu" not in summary.index and "theta[A]" in summary.index
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["settings"]["pooling"] == "none"


def test_bundled_spec_by_name_from_any_folder(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    out = tmp_path / "r"
    result = runner.invoke(
        app, ["fit", "eight_schools", "--method", "exact", "--out", str(out), "--quiet"]
    )
    assert result.exit_code == 0, result.output
    assert (out / "summary.csv").exists()
    missing = runner.invoke(app, ["fit", "no_such_spec"])
    assert missing.exit_code == 2 and "bundled specs: eight_schools" in missing.output


def _manifest(out):
    return json.loads((out / "manifest.json").read_text())


def test_without_method_the_exact_engine_answers_and_the_report_says_why(tmp_path):
    out = tmp_path / "auto"
    result = runner.invoke(app, ["fit", str(SPEC), "--out", str(out), "--quiet"])
    assert result.exit_code == 0, result.output
    settings = _manifest(out)["settings"]
    assert _manifest(out)["method"] == "exact"
    assert (settings["method"], settings["engine"]) == ("auto", "exact")
    reason = "exact engine: normal-normal with known within-study variances"
    assert settings["engine_reason"].startswith(reason)
    assert reason in (out / "report.md").read_text().replace("\n", " ").lower()


# the centred eight schools, hardly tuned at a low target acceptance, diverges
DIVERGING = [
    *("--method", "mcmc", "--parametrization", "centered", "--target-accept", "0.6"),
    *("--tune", "60", "--draws", "150", "--chains", "2", "--seed", "3", "--quiet"),
]


def test_no_refit_keeps_one_attempt_and_refit_records_several(tmp_path):
    off, on = tmp_path / "off", tmp_path / "on"
    assert (
        runner.invoke(
            app, ["fit", str(SPEC), *DIVERGING, "--no-refit", "--out", str(off)]
        ).exit_code
        == 0
    )
    assert runner.invoke(app, ["fit", str(SPEC), *DIVERGING, "--out", str(on)]).exit_code == 0
    (single,) = _manifest(off)["settings"]["attempts"]
    assert single["divergences"] > 0 and _manifest(off)["settings"]["auto_refit"] is False
    attempts = _manifest(on)["settings"]["attempts"]
    assert len(attempts) >= 2 and attempts[1]["target_accept"] == 0.95
    assert _manifest(on)["settings"]["auto_refit"] is True
    assert "refitted automatically" in (on / "report.md").read_text().replace("\n", " ")


@pytest.mark.parametrize("form", ["centered", "noncentered"])
def test_parametrization_flag_reaches_the_model(tmp_path, form):
    out = tmp_path / form
    args = ["fit", str(SPEC), "--out", str(out), "--parametrization", form, "--no-refit", *FAST]
    result = runner.invoke(app, [*args, "--seed", "2", "--quiet"])
    assert result.exit_code == 0, result.output
    assert _manifest(out)["settings"]["parametrization"] == form
    posterior = xr.open_datatree(out / "posterior.nc", engine="h5netcdf")["posterior"]
    assert ("theta_z" in posterior.data_vars) == (form == "noncentered")


def test_parametrization_is_refused_by_a_family_without_one(tmp_path):
    result = runner.invoke(app, ["fit", "oud_abstinence", "--parametrization", "centered"])
    assert result.exit_code == 2 and "parametrization" in result.output
