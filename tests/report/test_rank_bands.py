"""The rank plot's simultaneous band is kept on disk and gives the band arviz-stats gives."""

import json

import numpy as np
from arviz_stats import ecdf_utils

from bayeskit.report.figures import _remembered_bands


def band(vals, **kwargs):
    return ecdf_utils.ecdf_pit(vals, 0.99, 100, n_chains=2, **kwargs)


def test_the_remembered_band_is_the_simulated_one(tmp_path, monkeypatch):
    monkeypatch.setenv("BAYESKIT_CACHE_DIR", str(tmp_path))
    vals = np.random.default_rng(0).uniform(size=60)
    fresh = band(vals)
    with _remembered_bands():
        first = band(vals)
    stored = json.loads((tmp_path / "rank_bands.json").read_text())
    assert len(stored) == 1 and " 60 2 0.99 100" in next(iter(stored))
    calls = []
    monkeypatch.setattr(ecdf_utils, "simulate_confidence_bands", lambda *a: calls.append(a))
    with _remembered_bands():
        again = band(vals)  # from the file: the simulation is not run
    assert calls == []
    for a, b, c in zip(fresh, first, again, strict=True):
        assert np.array_equal(a, b) and np.array_equal(a, c)


def test_a_band_of_another_seed_is_simulated_and_not_stored(tmp_path, monkeypatch):
    monkeypatch.setenv("BAYESKIT_CACHE_DIR", str(tmp_path))
    vals = np.random.default_rng(0).uniform(size=40)
    with _remembered_bands():
        got = band(vals, rng=np.random.default_rng(5))
    want = band(vals, rng=np.random.default_rng(5))
    assert all(np.array_equal(a, b) for a, b in zip(got, want, strict=True))
    assert not (tmp_path / "rank_bands.json").exists()
    assert ecdf_utils.simulate_confidence_bands.__module__ == "arviz_stats.ecdf_utils"
