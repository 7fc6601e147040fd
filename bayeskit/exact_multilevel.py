"""The exact engine for the three-level normal model (``normal-multilevel``): a 2-D grid.

With known sampling covariances ``S_i`` and a normal (or flat) prior on ``mu``, the
model ``y_i ~ N(mu 1 + u_i 1 + v_i, S_i)``, ``u_i ~ N(0, tau_study^2)``,
``v_ij ~ N(0, tau_es^2)`` gives, for fixed ``(tau_study, tau_es)``, study blocks that are
multivariate normal, ``y_i ~ N(mu 1, Sigma_i)`` with
``Sigma_i = S_i + tau_study^2 J + tau_es^2 I``. With ``A = sum 1'Sigma_i^-1 1``,
``b = sum 1'Sigma_i^-1 y_i``, ``c = sum y_i'Sigma_i^-1 y_i`` and prior ``mu ~ N(m0, 1/p0)``:

* ``mu | taus, y ~ N(m, V)``, ``V = 1 / (A + p0)``, ``m = V (b + p0 m0)``;
* ``log p(y | taus) = -1/2 [sum log|Sigma_i| + c + p0 m0^2 - m^2 / V + log(A + p0)]
  + const`` (with ``p0 = 0`` this is the restricted (REML) likelihood of
  metafor's ``rma.mv``);
* ``theta_new | taus, y ~ N(m, V + tau_study^2 + tau_es^2)``.

The posterior of the two SDs is computed on a grid uniform in each prior's CDF (so
every cell has the same prior mass), first coarse, then refined to the box where the
likelihood is not negligible, as the 1-D engine (:mod:`bayeskit.exact`) does for tau;
every marginal of ``mu`` is a normal mixture over the cells. No Python library
integrates this model, hence the hand-written code. Clusters (a third SD) are left to
MCMC: a 3-D grid is possible but slow, and rarely what a user needs.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from scipy import special

from bayeskit.errors import UserError
from bayeskit.exact import QUANTILES, SUMMARY_COLUMNS, mixture_summaries, posterior_tree

GRID = 120
COARSE = 48
#: float64 elements per batch of (grid, studies, n, n) covariance blocks
BLOCK = 2**21
SDS = ("tau_study", "tau_es")


def block_sums(data, rho: float, ts: np.ndarray, te: np.ndarray):
    """Return ``(A, b, c, logdet)`` summed over studies at each ``(ts, te)`` pair.

    Studies with the same number of effects are done together, their covariance
    blocks Cholesky-factored in one batched call.

    Examples
    --------
    >>> import bayeskit as bk
    >>> from bayeskit.families.normal_multilevel import multilevel_data
    >>> d = multilevel_data(bk.load_evidence(bk.data_path("konstantopoulos2011.csv")))
    >>> A, b, c, logdet = block_sums(d, 0.0, np.array([0.0]), np.array([0.0]))
    >>> bool(np.isclose(A[0], np.sum(1 / d.sei**2)))  # no heterogeneity: inverse variances
    True
    """
    from bayeskit.families.normal_multilevel import sampling_covariances

    ts, te = np.asarray(ts, dtype=float), np.asarray(te, dtype=float)
    g = len(ts)
    A, b, c, logdet = (np.zeros(g) for _ in range(4))
    blocks = data.blocks()
    covs = sampling_covariances(data, rho)
    for n in sorted({len(bl) for bl in blocks}):
        which = [i for i, bl in enumerate(blocks) if len(bl) == n]
        S = np.stack([covs[i] for i in which])  # (m, n, n)
        y = np.stack([data.yi[blocks[i]] for i in which])  # (m, n)
        rhs = np.stack([np.ones_like(y), y], axis=-1)  # (m, n, 2)
        step = max(1, BLOCK // (len(which) * n * n))
        eye, ones = np.eye(n), np.ones((n, n))
        for lo in range(0, g, step):
            sl = slice(lo, min(lo + step, g))
            sigma = (
                S[None]
                + (ts[sl] ** 2)[:, None, None, None] * ones
                + (te[sl] ** 2)[:, None, None, None] * eye
            )
            L = np.linalg.cholesky(sigma)
            z = np.linalg.solve(L, np.broadcast_to(rhs, (*sigma.shape[:2], n, 2)))
            A[sl] += np.einsum("gmi,gmi->g", z[..., 0], z[..., 0])
            b[sl] += np.einsum("gmi,gmi->g", z[..., 0], z[..., 1])
            c[sl] += np.einsum("gmi,gmi->g", z[..., 1], z[..., 1])
            logdet[sl] += 2 * np.log(np.diagonal(L, axis1=2, axis2=3)).sum(axis=(1, 2))
    return A, b, c, logdet


def log_marginal(data, rho: float, ts, te, *, m0: float = 0.0, p0: float = 0.0):
    """Log marginal likelihood of ``(tau_study, tau_es)``, ``mu`` integrated out.

    ``p0`` is the prior precision of ``mu`` (0: flat, giving the restricted
    likelihood that REML maximises). Returns ``(loglik, m, V)`` at each pair.

    Examples
    --------
    >>> import bayeskit as bk
    >>> from bayeskit.families.normal_multilevel import multilevel_data
    >>> d = multilevel_data(bk.load_evidence(bk.data_path("konstantopoulos2011.csv")))
    >>> ll, m, V = log_marginal(d, 0.0, [0.2551], [0.1809])
    >>> round(float(m[0]), 4)  # rma.mv's REML estimate of mu at its REML taus: 0.1847
    0.1847
    """
    A, b, c, logdet = block_sums(data, rho, np.atleast_1d(ts), np.atleast_1d(te))
    prec = A + p0
    m = (b + p0 * m0) / prec
    loglik = -0.5 * (logdet + c + p0 * m0**2 - m**2 * prec + np.log(prec))
    return loglik, m, 1 / prec


@dataclass
class MultilevelExact:
    """The exact posterior of ``normal-multilevel`` (no clusters) on a grid of two SDs.

    ``weight[i, j]`` is the posterior probability of the cell at
    ``(tau_study[i], tau_es[j])``; ``m`` and ``V`` the conditional mean and variance of
    ``mu`` there.
    """

    data: object
    priors: dict = field(repr=False)
    grids: dict = field(repr=False)  # name -> (taus, u, du)
    weight: np.ndarray = field(repr=False)
    m: np.ndarray = field(repr=False)
    V: np.ndarray = field(repr=False)
    pooling: str = "partial"

    def _total2(self) -> np.ndarray:
        ts, te = self.grids["tau_study"][0], self.grids["tau_es"][0]
        return ts[:, None] ** 2 + te[None, :] ** 2

    def _mixtures(self) -> dict[str, tuple[np.ndarray, np.ndarray]]:
        return {
            "mu": (self.m.ravel(), self.V.ravel()),
            "theta_new": (self.m.ravel(), (self.V + self._total2()).ravel()),
        }

    def mixture_names(self) -> list[str]:
        """Return the quantities whose posterior is a normal mixture over the grid."""
        return list(self._mixtures())

    def marginal(self, name: str) -> np.ndarray:
        """Posterior probabilities of one SD's grid cells (the other SD summed out)."""
        return self.weight.sum(axis=1 if name == "tau_study" else 0)

    def sd_quantile(self, name: str, q) -> np.ndarray:
        """Quantiles of ``tau_study`` or ``tau_es`` (interpolated in prior-CDF space)."""
        taus, u, du = self.grids[name]
        edges = np.concatenate([[u[0] - du / 2], u + du / 2])
        cdf = np.concatenate([[0.0], np.cumsum(self.marginal(name))])
        return np.asarray(self.priors[name].ppf(np.interp(q, cdf, edges)), dtype=float)

    def sd_function_summary(self, name: str, f) -> list[float]:
        """Mean, SD, 2.5/50/97.5% quantiles of ``f(sd)`` for an increasing ``f``."""
        taus = self.grids[name][0]
        values, w = np.asarray(f(taus), dtype=float), self.marginal(name)
        mean = float(w @ values)
        sd = float(np.sqrt(max(w @ values**2 - mean**2, 0.0)))
        qs = np.asarray(f(self.sd_quantile(name, np.array(QUANTILES))), dtype=float)
        return [mean, sd, *map(float, qs)]

    def cell_function_summary(self, f) -> list[float]:
        """Mean, SD and quantiles of ``f(tau_study, tau_es)`` over the grid cells."""
        ts, te = self.grids["tau_study"][0], self.grids["tau_es"][0]
        values = np.asarray(f(ts[:, None], te[None, :]), dtype=float).ravel()
        w = self.weight.ravel()
        order = np.argsort(values)
        cdf = np.cumsum(w[order]) - w[order] / 2
        mean = float(w @ values)
        sd = float(np.sqrt(max(w @ values**2 - mean**2, 0.0)))
        return [mean, sd, *np.interp(QUANTILES, cdf, values[order]).tolist()]

    def summary(self) -> pd.DataFrame:
        """Posterior mean, SD and quantiles of ``mu``, both SDs and ``theta_new``.

        Examples
        --------
        >>> import bayeskit as bk
        >>> fit = bk.fit(bk.data_path("konstantopoulos2011.csv"), "normal-multilevel",
        ...              priors={"mu": "Normal(0, 1)"})
        >>> fit.exact.summary().loc[["mu", "tau_study", "tau_es"], ["mean", "sd"]].round(3)
                    mean     sd
        parameter
        mu         0.182  0.096
        tau_study  0.284  0.085
        tau_es     0.188  0.032
        """
        mix = self._mixtures()
        w = self.weight.ravel()
        rows = {"mu": mixture_summaries(w, *mix["mu"])[0]}
        for name in SDS:
            rows[name] = self.sd_function_summary(name, lambda t: t)
        rows["theta_new"] = mixture_summaries(w, *mix["theta_new"])[0]
        table = pd.DataFrame.from_dict(rows, orient="index", columns=SUMMARY_COLUMNS)
        table.index.name = "parameter"
        return table

    def prob(self, name: str, op: str, value: float) -> float:
        """Posterior probability that ``name op value`` (``mu``, ``theta_new`` or an SD)."""
        if op not in ("<", "<=", ">", ">="):
            raise UserError(f"comparison must be one of <, <=, >, >= (got {op!r})")
        if name in SDS:
            taus, u, du = self.grids[name]
            edges = np.concatenate([[u[0] - du / 2], u + du / 2])
            cdf = np.concatenate([[0.0], np.cumsum(self.marginal(name))])
            below = float(np.interp(float(self.priors[name].cdf(value)), edges, cdf))
        elif name in self._mixtures():
            mean, var = self._mixtures()[name]
            below = float(self.weight.ravel() @ special.ndtr((value - mean) / np.sqrt(var)))
        else:
            known = ", ".join([*self.mixture_names(), *SDS])
            raise UserError(f"no quantity {name!r} in this fit; it has {known}")
        return below if op in ("<", "<=") else 1.0 - below

    def mode(self) -> dict[str, float]:
        """Return the grid cell of highest posterior probability: ``tau_study``, ``tau_es``."""
        i, j = np.unravel_index(np.argmax(self.weight), self.weight.shape)
        return {"tau_study": float(self.grids["tau_study"][0][i]),
                "tau_es": float(self.grids["tau_es"][0][j])}  # fmt: skip

    def draw_arrays(self, n: int = 4000, *, seed: int | None = None, chains: int = 4) -> dict:
        """Independent draws of ``mu``, both SDs and ``theta_new`` (``chains x ceil(n/chains)``).

        Examples
        --------
        >>> import bayeskit as bk
        >>> post = bk.fit(bk.data_path("konstantopoulos2011.csv"), "normal-multilevel").exact
        >>> sorted(post.draw_arrays(10, seed=1))
        ['mu', 'tau_es', 'tau_study', 'theta_new']
        """
        rng = np.random.default_rng(seed)
        total = chains * -(-n // chains)
        w = self.weight.ravel()
        cell = rng.choice(w.size, size=total, p=w / w.sum())
        i, j = np.unravel_index(cell, self.weight.shape)
        ts, te = self.grids["tau_study"][0][i], self.grids["tau_es"][0][j]
        mu = self.m.ravel()[cell] + np.sqrt(self.V.ravel()[cell]) * rng.standard_normal(total)
        new = mu + np.sqrt(ts**2 + te**2) * rng.standard_normal(total)
        return {"mu": mu, "tau_study": ts, "tau_es": te, "theta_new": new}

    def draws(self, n: int = 4000, *, seed: int | None = None, chains: int = 4):
        """Independent draws from the exact posterior, as an ArviZ DataTree."""
        post = self.draw_arrays(n, seed=seed, chains=chains)
        per = -(-n // chains)
        return posterior_tree({k: v.reshape(chains, per) for k, v in post.items()}, {})


def multilevel_posterior(data, priors: dict, *, rho: float = 0.0, grid: int = GRID):
    """Compute the exact posterior of the three-level normal model (no clusters).

    Parameters
    ----------
    data : MultilevelData
        From :func:`bayeskit.families.normal_multilevel.multilevel_data`.
    priors : dict
        ``mu``: Normal or Flat; ``tau_study`` and ``tau_es``: priors on [0, inf).
    rho : float
        Working within-study correlation of the sampling errors.
    grid : int
        Grid points per SD in the refined pass (``grid^2`` cells).

    Returns
    -------
    MultilevelExact

    Examples
    --------
    >>> import bayeskit as bk
    >>> from bayeskit.families.normal_multilevel import multilevel_data
    >>> from bayeskit.priors import parse_prior
    >>> d = multilevel_data(bk.load_evidence(bk.data_path("konstantopoulos2011.csv")))
    >>> pri = {"mu": parse_prior("Normal(0, 1)"), "tau_study": parse_prior("HalfNormal(0.5)"),
    ...        "tau_es": parse_prior("HalfNormal(0.5)")}
    >>> post = multilevel_posterior(d, pri)
    >>> round(post.prob("mu", ">", 0.0), 3)
    0.970
    """
    if getattr(data, "cluster", None) is not None:
        raise UserError(
            "the exact engine integrates two SDs (study, effect size); with clusters there "
            "are three: use method='mcmc'"
        )
    if not priors["mu"].is_normal:
        raise UserError(
            f"the exact engine needs a Normal (or Flat) prior on mu; got {priors['mu']}: "
            "use method='mcmc'"
        )
    for name in SDS:
        if not priors[name].is_positive:
            raise UserError(f"{name} needs a prior on [0, inf); got {priors[name]}")
    mu_prior = priors["mu"]
    m0, p0 = 0.0, 0.0
    if mu_prior.family == "Normal":
        m0, p0 = float(mu_prior.params["mu"]), float(mu_prior.params["sigma"]) ** -2
    box = {name: (0.0, 1.0) for name in SDS}
    for n in (COARSE, grid):  # coarse pass, then a pass refined to where the mass is
        grids = {}
        for name in SDS:
            lo, hi = box[name]
            du = (hi - lo) / n
            u = lo + du * (np.arange(n) + 0.5)
            grids[name] = (np.asarray(priors[name].ppf(u), dtype=float), u, du)
        ts = np.repeat(grids["tau_study"][0], n)
        te = np.tile(grids["tau_es"][0], n)
        with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
            loglik, m, V = log_marginal(data, rho, ts, te, m0=m0, p0=p0)
        if not np.isfinite(loglik).any():
            raise UserError(
                "the exact engine cannot evaluate the likelihood on any grid point: the "
                "numbers overflow double precision; rescale the data (other units)"
            )
        loglik = np.where(np.isfinite(loglik), loglik, -np.inf).reshape(n, n)
        keep = loglik > loglik.max() - 40  # e^-40: negligible
        for axis, name in enumerate(SDS):
            _, u, du = grids[name]
            idx = np.flatnonzero(keep.any(axis=1 - axis))
            box[name] = (max(box[name][0], u[idx[0]] - du), min(box[name][1], u[idx[-1]] + du))
    w = np.exp(loglik - loglik.max())
    return MultilevelExact(data, priors, grids, w / w.sum(), m.reshape(n, n), V.reshape(n, n))
