"""Per-study likelihoods with the study's random effects integrated out, for LOO.

Leave-one-study-out cross-validation asks how well the model predicts a new study from
the others: the population parameters (``mu``, ``tau``, ``beta``, fixed baselines) stay
at their posterior draws, and the left-out study's own effects are drawn from the
population afresh. Its pointwise log-likelihood is therefore the study's likelihood
with those effects integrated out, one value per study and draw.

For the arm-level families (a binomial or normal likelihood per arm, linear in the
study's latent effects on the link scale) :func:`arm_marginal` integrates by adaptive
Gauss-Hermite quadrature (Liu & Pierce 1994, Biometrika 81:624; lme4's ``nAGQ``): the
nodes are centred at the mode of each study's integrand and scaled by its curvature,
found by a few Newton steps, vectorised over draws. Plain Gauss-Hermite places its
nodes on the population distribution and misses a study whose likelihood is much
narrower than ``tau`` (a large trial); the adaptive rule is exact for a normal
likelihood and accurate to many digits for binomial counts. scipy and numpy have
Gauss-Hermite nodes but no adaptive rule over a batch of integrands, so it is written
here.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
from scipy.special import gammaln, logsumexp

#: Gauss-Hermite nodes per latent dimension
NODES = 24
#: Newton steps to the mode of each study's integrand (it is concave: few are needed)
NEWTON_STEPS = 30


def binomial_terms(events: np.ndarray, n: np.ndarray) -> Callable:
    """Return ``f(eta, arms) -> (log p, d/deta, d2/deta2)`` of ``Binomial(n, expit(eta))``.

    ``eta`` has the arms ``arms`` (indices) on its last axis.

    Examples
    --------
    >>> from scipy import stats
    >>> f = binomial_terms(np.array([3.0]), np.array([10.0]))
    >>> value, d1, d2 = f(np.array([0.2]), [0])
    >>> bool(np.isclose(value[0], stats.binom.logpmf(3, 10, 1 / (1 + np.exp(-0.2)))))
    True
    """
    log_choose = gammaln(n + 1) - gammaln(events + 1) - gammaln(n - events + 1)

    def f(eta, arms):
        e, size = events[arms], n[arms]
        p = 1 / (1 + np.exp(-eta))
        value = log_choose[arms] + e * eta - size * np.logaddexp(0, eta)
        return value, e - size * p, -size * p * (1 - p)

    return f


def normal_terms(y: np.ndarray, se: np.ndarray) -> Callable:
    """Return ``f(eta, arms) -> (log p, d/deta, d2/deta2)`` of ``Normal(eta, se)`` at ``y``.

    Examples
    --------
    >>> f = normal_terms(np.array([1.0]), np.array([2.0]))
    >>> [round(float(v[0]), 4) for v in f(np.array([1.0]), [0])]
    [-1.6121, 0.0, -0.25]
    """

    def f(eta, arms):
        sd = se[arms]
        r = (y[arms] - eta) / sd
        value = -0.5 * r**2 - np.log(sd) - 0.5 * np.log(2 * np.pi)
        return value, r / sd, np.broadcast_to(-1 / sd**2, np.shape(eta))

    return f


def arm_marginal(
    terms: Callable,
    offset: np.ndarray,
    loadings: np.ndarray,
    study_idx: np.ndarray,
    mean: np.ndarray,
    sd: np.ndarray,
    *,
    nodes: int = NODES,
) -> np.ndarray:
    """Log of each study's likelihood with its latent effects integrated out, per draw.

    Each arm ``a`` has linear predictor ``offset[s, a] + loadings[a] @ u[s, study(a)]``
    and log-likelihood ``terms(eta, [a])``; the study's latent effects ``u`` (``d`` of them)
    are independent ``Normal(mean, sd)`` given the draw ``s``. Returns
    ``log integral prod_a p(y_a | eta_a) N(u; mean, sd) du`` per draw and study by
    adaptive Gauss-Hermite quadrature with ``nodes`` nodes per dimension (``d`` is 0,
    1 or 2; with ``d = 0`` the sum of the arms' log-likelihoods).

    Parameters
    ----------
    terms : callable
        ``terms(eta, arms)`` with ``eta`` of shape ``(..., len(arms))``: value, first and second
        derivative of each arm's log-likelihood (:func:`binomial_terms`,
        :func:`normal_terms`).
    offset : array (draws, arms)
    loadings : array (arms, d)
    study_idx : array (arms,)
    mean, sd : arrays (draws, studies, d)

    Returns
    -------
    numpy.ndarray of shape (draws, studies)

    Examples
    --------
    One normal arm with a normal latent effect: the marginal is Normal(m, sqrt(se^2 + s^2)).

    >>> from scipy import stats
    >>> f = normal_terms(np.array([1.0]), np.array([0.5]))
    >>> out = arm_marginal(f, np.zeros((1, 1)), np.ones((1, 1)), np.array([0]),
    ...                    np.full((1, 1, 1), 0.2), np.full((1, 1, 1), 0.8))
    >>> bool(np.isclose(out[0, 0], stats.norm.logpdf(1.0, 0.2, np.hypot(0.5, 0.8))))
    True
    """
    offset = np.asarray(offset, float)
    loadings = np.asarray(loadings, float).reshape(len(study_idx), -1)
    draws, studies, d = mean.shape
    out = np.empty((draws, studies))
    if d:
        z, w = np.polynomial.hermite.hermgauss(nodes)
        grid = np.stack(np.meshgrid(*[z] * d, indexing="ij"), -1).reshape(-1, d)  # (Q, d)
        log_w = np.log(np.meshgrid(*[w] * d, indexing="ij")).sum(0).ravel() + (grid**2).sum(1)
    for i in range(studies):
        arms = np.flatnonzero(study_idx == i)

        def f(u, arms=arms):  # u (draws, ..., d): each arm's log-likelihood and derivatives
            base = offset[:, arms].reshape((len(u),) + (1,) * (u.ndim - 2) + (len(arms),))
            return terms(base + u @ loadings[arms].T, arms)

        if d == 0:
            out[:, i] = f(np.zeros((draws, 0)))[0].sum(-1)
            continue
        m = mean[:, i, :]
        s = np.maximum(sd[:, i, :], 1e-10)  # a zero scale (full pooling) is the limit
        u, chol = _mode(f, loadings[arms], m, s)
        # nodes u + sqrt(2) L z, with L L' the inverse of minus the Hessian at the mode
        points = u[:, None, :] + np.sqrt(2) * np.einsum("sij,qj->sqi", chol, grid)
        log_prior = -0.5 * (((points - m[:, None, :]) / s[:, None, :]) ** 2).sum(-1)
        log_prior -= np.log(s).sum(-1)[:, None] + 0.5 * d * np.log(2 * np.pi)
        g = f(points)[0].sum(-1) + log_prior
        log_det = np.log(np.abs(np.diagonal(chol, axis1=1, axis2=2))).sum(-1)
        out[:, i] = logsumexp(g + log_w, axis=1) + log_det + 0.5 * d * np.log(2)
    return out


def _mode(f: Callable, loadings: np.ndarray, m: np.ndarray, s: np.ndarray):
    """Newton's method to the mode of each draw's log integrand; its Cholesky factor too.

    The integrand (log-likelihood plus the normal log-density of the latent effects) is
    concave in ``u`` for binomial and normal arms, so damped Newton steps converge from
    the population mean.
    """
    u = m.copy()

    def objective(u):
        value, d1, d2 = f(u)
        g = value.sum(-1) - 0.5 * (((u - m) / s) ** 2).sum(-1)
        grad = d1 @ loadings - (u - m) / s**2
        hess = np.einsum("sa,ai,aj->sij", d2, loadings, loadings)
        hess -= np.einsum("si,ij->sij", 1 / s**2, np.eye(u.shape[-1]))
        return g, grad, hess

    g, grad, hess = objective(u)
    for _ in range(NEWTON_STEPS):
        step = -np.linalg.solve(hess, grad[..., None])[..., 0]
        scale = np.ones(len(u))
        for _ in range(20):  # halve a step that does not increase the objective
            trial = u + scale[:, None] * step
            g_new = objective(trial)[0]
            worse = ~(g_new >= g - 1e-12 * np.abs(g))
            if not worse.any():
                break
            scale[worse] /= 2
        u = u + scale[:, None] * step
        g, grad, hess = objective(u)
        if np.all(np.abs(step * scale[:, None]) < 1e-10 * (1 + np.abs(u))):
            break
    cov = np.linalg.inv(-hess)
    return u, np.linalg.cholesky((cov + np.swapaxes(cov, 1, 2)) / 2)


#: what a ``log_likelihood`` group's values are, in its ``loo`` attribute
LEAVE_ONE_STUDY_OUT = "leave-one-study-out"
CONDITIONAL = "conditional"


def flat(posterior, name: str) -> np.ndarray:
    """Return a posterior variable as ``(draws, ...)`` with chains and draws stacked.

    Examples
    --------
    >>> import xarray as xr
    >>> post = xr.Dataset({"mu": (("chain", "draw"), np.arange(6.0).reshape(2, 3))})
    >>> flat(post, "mu").tolist()
    [0.0, 1.0, 2.0, 3.0, 4.0, 5.0]
    """
    values = posterior[name].transpose("chain", "draw", ...).to_numpy()
    return values.reshape((-1,) + values.shape[2:])


def population_mean(posterior, X) -> np.ndarray:
    """``mu + X beta`` per draw and study: where a left-out study's effect is centred.

    Examples
    --------
    >>> import pandas as pd
    >>> import xarray as xr
    >>> post = xr.Dataset({"mu": (("chain", "draw"), [[1.0, 2.0]]),
    ...                    "beta": (("chain", "draw", "term"), [[[0.5], [1.0]]])})
    >>> population_mean(post, pd.DataFrame({"dose": [0.0, 2.0]})).tolist()
    [[1.0, 2.0], [2.0, 4.0]]
    """
    mu = flat(posterior, "mu")[:, None]
    if X.shape[1]:
        return mu + flat(posterior, "beta") @ X.to_numpy(float).T
    return mu + np.zeros(len(X))


def study_dataset(name: str, values: np.ndarray, posterior, study, kind: str, note: str):
    """Return the ``log_likelihood`` group: ``name`` per (chain, draw, study), labelled.

    Examples
    --------
    >>> import xarray as xr
    >>> post = xr.Dataset({"mu": (("chain", "draw"), np.zeros((2, 3)))})
    >>> ds = study_dataset("y", np.zeros((6, 2)), post, ["A", "B"], CONDITIONAL, "why")
    >>> ds["y"].dims, ds.attrs["loo"]
    (('chain', 'draw', 'study'), 'conditional')
    """
    import xarray as xr

    chains, draws = posterior.sizes["chain"], posterior.sizes["draw"]
    data = xr.DataArray(
        values.reshape(chains, draws, -1),
        dims=("chain", "draw", "study"),
        coords={
            "chain": posterior["chain"].to_numpy(),
            "draw": posterior["draw"].to_numpy(),
            "study": list(study),
        },
        attrs={"loo": kind},
    )
    return xr.Dataset({name: data}, attrs={"loo": kind, "loo_note": note})
