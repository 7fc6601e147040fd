"""The compile cache: one compilation per model structure, reused with other data."""

import numpy as np
import pytest

import bayeskit as bk
from bayeskit.families import normal_normal
from bayeskit.families.data import study_data
from bayeskit.priors import parse_prior
from bayeskit.sampling import compiled

PRIORS = {"mu": "Normal(0, 5)", "tau": "HalfCauchy(5)"}
# the compile cache serves MCMC (the default, auto, would take the exact engine here)
FAST = {"method": "mcmc", "draws": 200, "tune": 200, "chains": 2, "seed": 3}


@pytest.fixture(scope="module")
def schools():
    return bk.load_evidence(bk.data_path("eight_schools.csv"))


def test_structure_key_ignores_data_values_but_not_shapes_or_priors(schools):
    d = study_data(schools)
    pri = {k: parse_prior(v) for k, v in PRIORS.items()}
    key = compiled.structure_key(normal_normal.build(d, pri))
    d.yi = d.yi * 2 + 1
    d.sei = d.sei + 1
    assert compiled.structure_key(normal_normal.build(d, pri)) == key
    fewer = study_data(schools.iloc[:5])
    assert compiled.structure_key(normal_normal.build(fewer, pri)) != key
    other = dict(pri, mu=parse_prior("Normal(0, 6)"))
    assert compiled.structure_key(normal_normal.build(d, other)) != key
    centred = normal_normal.build(d, pri, parametrization="centered")
    assert compiled.structure_key(centred) != key


def test_second_fit_reuses_the_compilation_and_matches_a_fresh_one(schools):
    compiled.clear()
    bk.fit(schools, priors=PRIORS, **FAST)
    assert compiled.STATS["misses"] == 1
    shifted = schools.assign(yi=schools["yi"] + 10, study=[s.lower() for s in schools["study"]])
    reused = bk.fit(shifted, priors=PRIORS, **FAST)
    assert (compiled.STATS["hits"], compiled.STATS["misses"]) == (1, 1)
    # the new data and labels, not the compiled model's
    post = reused.idata.posterior
    assert list(post["theta"].coords["study"].values) == list("abcdefgh")
    assert reused.idata.observed_data["y"].values.tolist() == (schools["yi"] + 10).tolist()
    assert float(post["mu"].mean()) > 8  # shifted by 10 from about 4.4
    compiled.clear()
    fresh = bk.fit(shifted, priors=PRIORS, **FAST)
    assert compiled.STATS["misses"] == 1
    np.testing.assert_array_equal(post["mu"].values, fresh.idata.posterior["mu"].values)
    np.testing.assert_array_equal(post["theta"].values, fresh.idata.posterior["theta"].values)


class _Compiled:
    """Stands in for a compiled sampler: the bound is about keys, not machine code."""

    shared_var_keys: dict = {}

    def with_data(self, **updates):
        return self


def test_cache_is_bounded_and_drops_the_least_recently_used(schools, monkeypatch):
    # models of four structures (4 to 7 studies); compiling is replaced by a stand-in
    monkeypatch.setattr(compiled, "MAX_ENTRIES", 3)
    monkeypatch.setattr(compiled, "_compile", lambda model, key: _Compiled())
    pri = {k: parse_prior(v) for k, v in PRIORS.items()}
    models = [normal_normal.build(study_data(schools.iloc[:k]), pri) for k in (4, 5, 6, 7)]
    keys = [compiled.structure_key(m) for m in models]
    assert len(set(keys)) == 4
    compiled.clear()
    for m in models[:3]:
        compiled.compiled_sampler(m)
    assert list(compiled._CACHE) == keys[:3]
    assert compiled.compiled_sampler(models[0])[1]  # a hit: now the most recently used
    compiled.compiled_sampler(models[3])  # past the bound: the least recently used goes
    assert list(compiled._CACHE) == [keys[2], keys[0], keys[3]]
    assert not compiled.compiled_sampler(models[1])[1]  # dropped, so compiled again
    assert len(compiled._CACHE) == 3 and keys[2] not in compiled._CACHE
    assert compiled.STATS["misses"] == 5 and compiled.STATS["hits"] == 1
    compiled.clear()
    assert compiled.STATS == {"hits": 0, "misses": 0, "disk_hits": 0, "compile_seconds": 0.0}


def test_a_failing_disk_cache_falls_back_to_nutpies_compiler(schools, tmp_path, monkeypatch):
    # what a nutpie release that changes the internals _cfunc builds on does to it
    import nutpie.compile_pymc

    from bayeskit.sampling import _cfunc

    def changed_internals(model, structure, *, root=None):
        raise ImportError("cannot import name '_make_functions' from 'nutpie.compile_pymc'")

    monkeypatch.setenv("BAYESKIT_CACHE_DIR", str(tmp_path))
    monkeypatch.setattr(_cfunc, "compile_model", changed_internals)
    compiled.clear()
    with pytest.warns(RuntimeWarning, match="disk cache unavailable .*ImportError"):
        fallback = bk.fit(schools, priors=PRIORS, **FAST)
    (sampler,) = compiled._CACHE.values()
    assert type(sampler) is nutpie.compile_pymc.CompiledPyMCModel  # nutpie's own
    assert not list(tmp_path.glob("compiled/*/bk_*.py"))
    assert compiled.STATS["disk_hits"] == 0
    post = fallback.idata.posterior
    assert post["mu"].shape == (2, 200)
    assert 0 < float(post["mu"].mean()) < 9  # eight schools: mu about 4.4
    compiled.clear()


def test_disk_cache_is_loaded_by_a_later_compile_and_matches_nutpies_compiler(
    schools, tmp_path, monkeypatch
):
    monkeypatch.setenv("BAYESKIT_CACHE_DIR", str(tmp_path))
    compiled.clear()
    first = bk.fit(schools, priors=PRIORS, **FAST)
    assert (compiled.STATS["misses"], compiled.STATS["disk_hits"]) == (1, 0)
    written = list(tmp_path.glob("compiled/*/bk_*.py"))
    assert len(written) == 1
    assert list(written[0].parent.glob("__pycache__/*.nbc"))  # numba's machine code
    compiled.clear()  # as a new process would: nothing compiled in memory
    again = bk.fit(schools, priors=PRIORS, **FAST)
    assert (compiled.STATS["misses"], compiled.STATS["disk_hits"]) == (1, 1)
    np.testing.assert_array_equal(
        first.idata.posterior["mu"].values, again.idata.posterior["mu"].values
    )
    # the same draws as nutpie's own compiler
    monkeypatch.setenv("BAYESKIT_DISK_CACHE", "0")
    compiled.clear()
    plain = bk.fit(schools, priors=PRIORS, **FAST)
    assert compiled.STATS["disk_hits"] == 0
    np.testing.assert_array_equal(
        first.idata.posterior["mu"].values, plain.idata.posterior["mu"].values
    )
    np.testing.assert_array_equal(
        first.idata.posterior["theta"].values, plain.idata.posterior["theta"].values
    )
    compiled.clear()


_DRAWS = """
import hashlib, sys, warnings
warnings.simplefilter("ignore")
import bayeskit as bk
schools = bk.load_evidence(bk.data_path("eight_schools.csv"))
SAMPLER = sys.argv[2] if len(sys.argv) > 2 else "nutpie"
def digest(table):
    fit = bk.fit(table, priors={PRIORS!r}, sampler=SAMPLER, **{FAST!r})
    post = fit.idata.posterior
    h = hashlib.sha256()
    for name in sorted(post.data_vars):
        h.update(post[name].values.tobytes())
    return h.hexdigest()
print(digest(schools))
if sys.argv[1] == "reuse":  # data swapped into the cached sampler, twice
    digest(schools.assign(yi=schools["yi"] * 3 - 7))
    print(digest(schools))
"""


def _draws_in_a_new_process(tmp_path, cache: str, *args: str, **env: str) -> list[str]:
    import os
    import subprocess
    import sys

    code = _DRAWS.format(PRIORS=PRIORS, FAST=FAST)
    env = os.environ | {"BAYESKIT_CACHE_DIR": str(tmp_path / cache)} | env
    # a PyTensor compile folder of its own: nothing compiled before, as on a fresh clone
    env["PYTENSOR_FLAGS"] = f"base_compiledir={tmp_path / 'pytensor'}"
    done = subprocess.run(
        [sys.executable, "-c", code, *args], env=env, capture_output=True, text=True, check=True
    )
    return done.stdout.split()


# 38-115 s (three fresh processes, the first compiling PyTensor's code from nothing); the
# default suite keeps test_disk_cache_is_loaded_by_a_later_compile_and_matches_nutpies_compiler
@pytest.mark.slow
def test_fresh_compile_disk_cache_in_process_reuse_and_nutpies_compiler_give_one_set_of_draws(
    tmp_path,
):
    # fresh processes, as users run them: the first compiles everything (PyTensor's and
    # bayeskit's caches empty) and then reuses its sampler for other data and back
    fresh, reused = _draws_in_a_new_process(tmp_path, "a", "reuse")
    (loaded,) = _draws_in_a_new_process(tmp_path, "a", "once")  # wrappers from the disk
    # nutpie's own compiler: bayeskit's cache off (its empty folder "b" is the second
    # empty cache folder a fresh process meets)
    (plain,) = _draws_in_a_new_process(tmp_path, "b", "once", BAYESKIT_DISK_CACHE="0")
    assert list(tmp_path.glob("a/compiled/*/__pycache__/*.nbc"))
    assert not (tmp_path / "b").exists()
    assert fresh == reused == loaded == plain


@pytest.mark.slow  # 19 s: two fresh processes; the nutpie compile-path test stays default
def test_pymc_sampler_gives_the_same_draws_in_a_fresh_and_a_later_process(tmp_path):
    # the first process compiles PyTensor's numba code, the second loads it from disk
    (cold,) = _draws_in_a_new_process(tmp_path, "a", "once", "pymc")
    (warm,) = _draws_in_a_new_process(tmp_path, "a", "once", "pymc")
    assert cold == warm


def test_pymc_sampler_gives_the_same_draws_twice(schools):
    a = bk.fit(schools, priors=PRIORS, sampler="pymc", method="mcmc", draws=100, tune=100,
               chains=2, seed=5)  # fmt: skip
    b = bk.fit(schools, priors=PRIORS, sampler="pymc", method="mcmc", draws=100, tune=100,
               chains=2, seed=5)  # fmt: skip
    for name in ("mu", "tau", "theta"):
        np.testing.assert_array_equal(
            a.idata.posterior[name].values, b.idata.posterior[name].values
        )
