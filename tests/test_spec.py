"""Spec files: keys and types are checked strictly, errors name the file and the key."""

import pytest

import bayeskit as bk
from bayeskit.errors import UserError
from bayeskit.spec import load_spec, spec_from_dict

DATA = '[data]\nfiles = ["d.csv"]\n'


@pytest.fixture
def spec_file(tmp_path):
    (tmp_path / "d.csv").write_text("study,yi,sei\nA,1,1\nB,2,1\n")

    def write(text: str) -> str:
        path = tmp_path / "s.toml"
        path.write_text(text)
        return str(path)

    return write


@pytest.mark.parametrize(
    ("extra", "key", "words"),
    [
        ("[sampler]\nchains = true\n", "sampler.chains", "valid integer (found True)"),
        ("[sampler]\nseed = 1.7\n", "sampler.seed", "valid integer (found 1.7)"),
        ('[sampler]\ndraws = "10"\n', "sampler.draws", "valid integer (found '10')"),
        ("[sampler]\ntarget_accept = true\n", "sampler.target_accept", "valid number"),
        ('[data]\ndrop00 = "yes"\n', "data.drop00", "valid boolean (found 'yes')"),
        ("[data]\nadd = nan\n", "data.add", "finite number"),
        ('[model]\ncovariates = "~ log(dose"\n', "model.covariates", "cannot read the covariate"),
        ('[model]\ncovariates = "~ dose * 2"\n', "model.covariates", "cannot read the term"),
    ],
)
def test_wrong_types_and_formulas_name_file_and_key(spec_file, extra, key, words):
    text = DATA + extra if not extra.startswith("[data]") else extra.replace(
        "[data]\n", DATA
    )  # fmt: skip
    path = spec_file(text)
    with pytest.raises(UserError) as err:
        load_spec(path)
    assert str(err.value).startswith(path)
    assert f"key '{key}'" in str(err.value) and words in str(err.value)


def test_base_dir_cannot_be_set_by_a_spec(spec_file):
    path = spec_file('base_dir = "/"\n' + DATA)
    with pytest.raises(UserError, match=r"(?s)s.toml: .*key 'base_dir': unknown key"):
        load_spec(path)


def test_deeply_nested_toml_is_refused_not_a_recursion_error(spec_file):
    path = spec_file("a = " + "[" * 100_000 + "]" * 100_000 + "\n")
    with pytest.raises(UserError, match=r"s.toml: nested too deeply"):
        load_spec(path)


def test_oversized_spec_is_refused_unread(spec_file):
    path = spec_file(DATA + "#" * (2 * 1024 * 1024) + "\n")
    with pytest.raises(UserError, match=r"spec .*s.toml: longer than 1048576 bytes"):
        load_spec(path)


def test_only_a_bare_name_finds_a_bundled_spec(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert load_spec("eight_schools").name == load_spec(bk.models_dir() / "eight_schools.toml").name
    for path in ("eight_schools.toml", "nowhere/eight_schools", "/nowhere/eight_schools.toml"):
        with pytest.raises(UserError, match=rf"{path}: no such file"):
            load_spec(path)
    with pytest.raises(UserError, match=r"no bundled spec of that name"):
        load_spec("nope")


def test_designs_in_a_spec_include_case_control_and_the_fallback():
    spec = spec_from_dict(
        {"data": {"files": ["x.csv"]}, "model": {"family": "exposure-response",
         "designs": ["rct", "case_control", "non_randomised"]}}
    )  # fmt: skip
    assert spec.model.designs == ["rct", "case_control", "non_randomised"]


def test_design_tables_agree():
    from bayeskit.evidence.schema import DESIGNS
    from bayeskit.families.exposure.model import DEFAULT_BIAS_SD, RANDOMISED

    # every non-randomised design has a default bias SD; case-control is an analytic
    # design like a cohort, the fallback is as wary as a case series
    assert set(DEFAULT_BIAS_SD) == set(DESIGNS) - set(RANDOMISED)
    assert DEFAULT_BIAS_SD["case_control"] == DEFAULT_BIAS_SD["cohort"] == 0.3
    assert DEFAULT_BIAS_SD["non_randomised"] == DEFAULT_BIAS_SD["case_series"] == 0.5


@pytest.mark.parametrize("seed", [1.7, "1", True])
def test_library_seed_must_be_an_int(seed):
    with pytest.raises(TypeError, match=r"seed must be a whole number \(int\) or None"):
        bk.fit(bk.data_path("eight_schools.csv"), method="exact", seed=seed)


def test_library_seed_out_of_range_is_a_value_error():
    with pytest.raises(ValueError, match=r"seed must lie in \[0, 2\*\*32\)"):
        bk.fit(bk.data_path("eight_schools.csv"), method="exact", seed=-1)
