"""The compile cache: one compilation per model structure, reused with other data."""

import numpy as np
import pytest

import bayeskit as bk
from bayeskit import compiled
from bayeskit.families import normal_normal
from bayeskit.families.data import study_data
from bayeskit.priors import parse_prior

PRIORS = {"mu": "Normal(0, 5)", "tau": "HalfCauchy(5)"}
FAST = {"draws": 200, "tune": 200, "chains": 2, "seed": 3}


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


def test_cache_is_bounded():
    assert compiled.MAX_ENTRIES >= 1
    compiled.clear()
    assert compiled.STATS == {"hits": 0, "misses": 0, "disk_hits": 0, "compile_seconds": 0.0}


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
