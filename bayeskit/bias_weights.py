"""Posterior probabilities of the publication-bias models, by quadrature.

The models of :func:`bayeskit.pubbias.publication_bias` (random effects without bias,
PET, PEESE and the selection model with one cutpoint) have two or three parameters
each, so their marginal likelihoods ``p(y | M) = int p(y | params) p(params)`` can be
computed on a grid, to a precision no sampler-based estimate (bridge sampling, as RoBMA
uses) reaches in the same time. The prior model probabilities are RoBMA-PSMA's
(Bartoš et al. 2023, Res Synth Methods 14:99, table 1, the bias component): one half to
no bias, one quarter to the selection model(s), one eighth each to PET and PEESE.

Each grid is a box around where the model's posterior lives (eight posterior SDs each
side of the mean of ``mu`` and the slope; ``tau`` from 0 to three times its 97.5%
quantile; the weight over (0, 1)), with the midpoint rule, which for smooth integrands
that vanish at the box's edges is accurate far beyond what the weights need. No library
integrates these models' evidence, hence the hand-written code.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy import special

#: RoBMA-PSMA's prior probabilities of the bias component, by model
PRIOR_WEIGHTS = {"none": 0.5, "selection": 0.25, "pet": 0.125, "peese": 0.125}
#: grid points per axis: mu, the slope or the weight, tau
POINTS = (80, 60, 50)
#: float64 elements per block of (grid points x studies)
BLOCK = 2**22


def _axis(low: float, high: float, n: int) -> tuple[np.ndarray, float]:
    width = (high - low) / n
    return low + width * (np.arange(n) + 0.5), width


def log_evidence(loglik, logprior, axes) -> float:
    """``log int exp(loglik + logprior)`` over the outer product of midpoint ``axes``.

    ``axes`` is a list of ``(points, width)``; ``loglik`` and ``logprior`` take one array
    per axis (the grid's points, flattened) and return one value per point.

    Examples
    --------
    >>> from scipy import stats
    >>> ax = _axis(-10, 10, 400)
    >>> round(log_evidence(lambda m: stats.norm.logpdf(1.0, m, 1.0),
    ...                    lambda m: stats.norm.logpdf(m, 0, 2), [ax]), 6)
    -1.823657
    >>> round(float(stats.norm.logpdf(1.0, 0, np.sqrt(5))), 6)  # y ~ Normal(0, sqrt(1 + 4))
    -1.823657
    """
    grids = np.meshgrid(*(a for a, _ in axes), indexing="ij")
    flat = [g.ravel() for g in grids]
    log_cell = float(np.sum(np.log([w for _, w in axes])))
    n = flat[0].size
    step = max(1, BLOCK // 64)
    parts = []
    for lo in range(0, n, step):
        point = [f[lo : lo + step] for f in flat]
        parts.append(special.logsumexp(loglik(*point) + logprior(*point)))
    return float(special.logsumexp(parts) + log_cell)


def _normal_loglik(yi, sei, x=None):
    yi, s2 = np.asarray(yi, float), np.asarray(sei, float) ** 2

    def loglik(mu, tau, beta=None):
        mean = mu[:, None] + (0.0 if beta is None else beta[:, None] * x[None, :])
        var = tau[:, None] ** 2 + s2[None, :]
        return np.sum(-0.5 * ((yi - mean) ** 2 / var + np.log(2 * np.pi * var)), axis=1)

    return loglik


def _box(summary: pd.Series, lower: float | None = None) -> tuple[float, float]:
    low = summary["mean"] - 8 * summary["sd"]
    return (max(low, lower) if lower is not None else low), summary["mean"] + 8 * summary["sd"]


def _tau_axis(summary: pd.Series):
    return _axis(0.0, 3 * float(summary["q97.5"]) + 1e-12, POINTS[2])


def model_log_evidence(prepared, priors: dict, summaries: dict, steps, alternative) -> dict:
    """Log marginal likelihood of each bias model (keys of :data:`PRIOR_WEIGHTS`).

    Parameters
    ----------
    prepared : StudyData
    priors : dict
        Proper priors: ``mu`` (any proper prior), ``tau``, ``pet`` and ``peese`` (the
        slopes' priors).
    summaries : dict
        Per model, the posterior summary (rows ``mu``, ``tau``, and ``slope`` for PET and
        PEESE) that places its grid.
    steps, alternative
        The selection model's one cutpoint and direction.
    """
    from bayeskit.families.normal_selection import selection_loglik

    yi, sei = prepared.yi, prepared.sei
    mu_prior, tau_prior = priors["mu"], priors["tau"]
    out = {}
    s = summaries["none"]
    out["none"] = log_evidence(
        _normal_loglik(yi, sei),
        lambda m, t: mu_prior.logpdf(m) + tau_prior.logpdf(t),
        [_axis(*_box(s.loc["mu"]), 4 * POINTS[0]), _tau_axis(s.loc["tau"])],
    )
    for name, power in (("pet", 1), ("peese", 2)):
        s = summaries[name]
        loglik = _normal_loglik(yi, sei, np.asarray(sei, float) ** power)
        slope = priors[name]
        out[name] = log_evidence(
            lambda m, b, t, f=loglik: f(m, t, b),
            lambda m, b, t, p=slope: mu_prior.logpdf(m) + p.logpdf(b) + tau_prior.logpdf(t),
            [_axis(*_box(s.loc["mu"]), POINTS[0]), _axis(*_box(s.loc["slope"]), POINTS[1]),
             _tau_axis(s.loc["tau"])],
        )  # fmt: skip
    s = summaries["selection"]

    def selection(m, w, t):
        delta = np.column_stack([1 - w, w])
        return selection_loglik(yi, sei, m, t, delta, steps, alternative).sum(axis=1)

    out["selection"] = log_evidence(
        selection,
        lambda m, w, t: mu_prior.logpdf(m) + tau_prior.logpdf(t),  # omega ~ Uniform(0, 1)
        [_axis(*_box(s.loc["mu"]), POINTS[0]), _axis(0.0, 1.0, POINTS[1]),
         _tau_axis(s.loc["tau"])],
    )  # fmt: skip
    return out


def posterior_weights(log_evidence_by_model: dict) -> dict:
    """Posterior model probabilities from the log evidence and :data:`PRIOR_WEIGHTS`.

    Examples
    --------
    >>> w = posterior_weights({"none": 0.0, "selection": 0.0, "pet": 0.0, "peese": 0.0})
    >>> {k: round(v, 12) for k, v in w.items()} == PRIOR_WEIGHTS  # equal evidence: the prior
    True
    """
    names = list(PRIOR_WEIGHTS)
    logs = np.array([np.log(PRIOR_WEIGHTS[n]) + log_evidence_by_model[n] for n in names])
    return dict(zip(names, np.exp(logs - special.logsumexp(logs)).tolist(), strict=True))
