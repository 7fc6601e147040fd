"""The exact engine at scale: vectorised forms agree with the one-at-a-time computations.

The quantiles of normal mixtures are checked against scipy's ``brentq`` on the mixture
CDF (what the engine used before it solved every quantity at once), on generated hostile
mixtures: two humps, heavy tails, near point masses, tiny and huge scales. The
many-data-set form (:func:`bayeskit.exact.exact_posteriors`) is checked row by row
against :func:`bayeskit.exact.exact_posterior`, and the block size against no blocks.
"""

import numpy as np
import pandas as pd
import pytest
from scipy import optimize, stats

import bayeskit.exact as exact
from bayeskit.exact import exact_posterior, exact_posteriors, mixture_quantiles
from bayeskit.families.data import StudyData
from bayeskit.priors import parse_prior

QS = (0.025, 0.5, 0.975)


def brentq_quantiles(w, mean, sd, qs=QS):
    """The engine's former quantiles: brentq on the mixture CDF, one quantile at a time."""
    keep = w > 1e-16 * w.max()
    w, mean, sd = w[keep] / w[keep].sum(), mean[keep], sd[keep]
    lo, hi = np.min(mean - 12 * sd), np.max(mean + 12 * sd)

    def cdf(x):
        return np.sum(w * stats.norm.cdf((x - mean) / sd))

    return [optimize.brentq(lambda x, q=q: cdf(x) - q, lo, hi, xtol=1e-12) for q in qs]


def hostile_mixtures(rng, n):
    """Yield ``(w, mean, sd)``: mixtures of the shapes that break naive root finders."""
    for i in range(n):
        g = int(rng.integers(1, 60))
        w = rng.dirichlet(np.full(g, rng.choice([0.05, 1.0, 20.0])))
        scale = 10.0 ** rng.uniform(-4, 4)
        kind = i % 5
        if kind == 0:  # two separated humps
            mean = np.where(rng.uniform(size=g) < 0.5, -1.0, 1.0) * scale * 8
            sd = np.full(g, scale)
        elif kind == 1:  # heavy tail: widths over six orders of magnitude
            mean = rng.normal(0, scale, g)
            sd = scale * 10.0 ** rng.uniform(-3, 3, g)
        elif kind == 2:  # near point masses beside a wide component
            mean = rng.normal(0, scale, g)
            sd = np.where(rng.uniform(size=g) < 0.8, scale * 1e-7, scale)
        elif kind == 3:  # smooth, like theta over a grid of tau
            t = np.linspace(0, 1, g)
            mean, sd = scale * (1 + 0.3 * t), scale * (0.5 + t)
        else:  # tiny weights beside large ones
            w = np.where(rng.uniform(size=g) < 0.5, w * 1e-14, w)
            w /= w.sum()
            mean, sd = rng.normal(0, scale, g), scale * rng.uniform(0.1, 2, g)
        yield w, mean + rng.normal(0, 1) * scale * 100, sd


def test_mixture_quantiles_match_brentq_on_hostile_mixtures():
    rng = np.random.default_rng(20261202)
    for w, mean, sd in hostile_mixtures(rng, 250):
        got = mixture_quantiles(w, mean[:, None], sd[:, None] ** 2, QS)[0]
        want = brentq_quantiles(w, mean, sd)
        span = np.max(mean + 12 * sd) - np.min(mean - 12 * sd)
        # brentq stops at an absolute 1e-12 (plus a few ulps of the bracket)
        np.testing.assert_allclose(got, want, rtol=0, atol=2e-12 + 1e-14 * span)


def test_many_mixtures_at_once_equal_each_alone():
    rng = np.random.default_rng(7)
    w = rng.dirichlet(np.ones(40))
    mean, var = rng.normal(0, 3, (40, 25)), rng.uniform(0.01, 4, (40, 25))
    together = mixture_quantiles(w, mean, var)
    alone = np.vstack([mixture_quantiles(w, mean[:, j], var[:, j]) for j in range(25)])
    np.testing.assert_allclose(together, alone, rtol=0, atol=1e-12)


def studies(y, s):
    labels = [f"S{i}" for i in range(len(y))]
    table = pd.DataFrame({"yi": y}, index=labels)
    return StudyData(
        labels, np.asarray(y, float), np.asarray(s, float), pd.DataFrame(index=labels), None, table
    )


@pytest.mark.parametrize("tau", ["HalfCauchy(0.5)", "turner:general", "Uniform(0, 3)"])
def test_many_data_sets_at_once_equal_each_alone(tau):
    rng = np.random.default_rng(3)
    priors = {"mu": parse_prior("Normal(0, 2)"), "tau": parse_prior(tau)}
    for k, shared in ((1, False), (3, True), (9, False)):
        y = rng.normal(0, 1, (5, k)) * rng.uniform(0.1, 5, (5, 1))
        s = rng.uniform(0.1, 2, k) if shared else rng.uniform(0.1, 2, (5, k))
        many = exact_posteriors(y, s, priors)
        for i, post in enumerate(many):
            alone = exact_posterior(studies(y[i], np.broadcast_to(s, y.shape)[i]), priors)
            np.testing.assert_allclose(post.summary(), alone.summary(), rtol=1e-11, atol=1e-12)
            np.testing.assert_allclose(post.weight, alone.weight, rtol=1e-10, atol=1e-15)


def test_blocks_do_not_change_the_answer(monkeypatch):
    rng = np.random.default_rng(11)
    s = rng.uniform(0.1, 0.5, 300)
    data = studies(rng.normal(0.3, 0.2, 300) + rng.normal(0, s), s)
    priors = {"mu": parse_prior("Normal(0, 10)"), "tau": parse_prior("HalfNormal(1)")}
    whole = exact_posterior(data, priors)
    monkeypatch.setattr(exact, "BLOCK", 4096)  # two grid points, or a study, per block
    blocked = exact_posterior(data, priors)
    np.testing.assert_allclose(blocked.weight, whole.weight, rtol=1e-12, atol=1e-16)
    np.testing.assert_allclose(blocked.summary(), whole.summary(), rtol=1e-12, atol=1e-13)
    np.testing.assert_allclose(blocked.shrinkage, whole.shrinkage, rtol=1e-13)


def test_a_thousand_studies_agree_with_their_conjugate_limit():
    # with many precise studies tau is pinned down and each theta is nearly its
    # conditional normal at the posterior mean of tau
    rng = np.random.default_rng(5)
    s = rng.uniform(0.05, 0.1, 1000)
    theta = rng.normal(0.3, 0.2, 1000)
    data = studies(theta + rng.normal(0, s), s)
    post = exact_posterior(
        data, {"mu": parse_prior("Normal(0, 10)"), "tau": parse_prior("HalfNormal(1)")}
    )
    table = post.summary()
    tau = table.loc["tau", "mean"]
    assert tau == pytest.approx(0.2, abs=0.02)
    B = s**2 / (s**2 + tau**2)
    mean = (1 - B) * data.yi + B * table.loc["mu", "mean"]
    got = table.loc[[f"theta[S{i}]" for i in range(1000)], "mean"].to_numpy()
    np.testing.assert_allclose(got, mean, atol=2e-4)
