"""The exact engine for the normal-normal model: no MCMC, milliseconds.

Given tau, the normal-normal model with normal (or flat) priors on ``mu`` and the
regression coefficients ``beta`` is conjugate: ``(mu, beta) | tau, y`` is normal and the
marginal likelihood of tau is available in closed form. The posterior of tau is then one
dimensional and is integrated numerically; every other marginal is a mixture of normals
over tau. This is the approach of Röver (2020, J Stat Softw 93(6)), implemented in R's
bayesmeta (which bounds the mixture's discretisation error with the DIRECT algorithm);
here tau is integrated on a grid that is uniform in the *prior* CDF of tau and refined
to where the likelihood lives. No Python library provides this, hence the hand-written
code.

With ``b = (mu, beta)``, design ``Z = [1, X]``, prior ``b ~ N(b0, P0^-1)`` (``P0`` = 0 in
flat directions) and ``W(tau) = diag(1 / (sei^2 + tau^2))``:

* ``b | tau, y ~ N(m, V)`` with ``V = (Z'WZ + P0)^-1``, ``m = V (Z'Wy + P0 b0)``;
* ``log p(y | tau) = -1/2 [sum log(sei^2 + tau^2) + log|Z'WZ + P0| + y'Wy + b0'P0 b0
  - m'V^-1 m] + const``;
* ``theta_i | tau, y ~ N((1 - B_i) y_i + B_i z_i'm, (1 - B_i) sei_i^2 + B_i^2 z_i'V z_i)``
  with shrinkage ``B_i = sei_i^2 / (sei_i^2 + tau^2)``;
* ``theta_new | tau, y ~ N(m_mu, V_mu + tau^2)`` (a new study with covariates at 0).
"""

from __future__ import annotations

import os
from collections import deque
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime

import numpy as np
import pandas as pd
from scipy import special

from bayeskit.errors import UserError
from bayeskit.families.data import StudyData
from bayeskit.measures import ratio_parameter

GRID = 2000
QUANTILES = (0.025, 0.5, 0.975)
SUMMARY_COLUMNS = ["mean", "sd", "q2.5", "q50", "q97.5"]
#: float64 elements per (grid x studies) block: memory stays linear in k (16 MB a block)
BLOCK = 2**21
_GH_X, _GH_W = special.roots_hermitenorm(40)
_GH_W = _GH_W / _GH_W.sum()


@dataclass
class ExactPosterior:
    """The exact posterior of a normal-normal model, as a mixture over a grid of tau.

    Made by :func:`exact_posterior`. ``weight[g]`` is the posterior probability of the
    grid cell at ``tau[g]``; ``m[g]`` and ``V[g]`` the conditional mean and covariance of
    ``(mu, beta)`` given that tau, so every marginal is a normal mixture.

    Examples
    --------
    >>> import bayeskit as bk
    >>> fit = bk.fit(bk.data_path("eight_schools.csv"), method="exact")
    >>> post = fit.exact
    >>> round(float(post.weight.sum()), 6), post.m.shape[1]
    (1.0, 1)
    >>> post.tau_quantile([0.5]).round(1)
    array([4.4])
    """

    data: StudyData
    pooling: str
    tau: np.ndarray  # grid of tau values
    weight: np.ndarray  # posterior probability of each grid cell
    u: np.ndarray = field(repr=False)  # grid in prior-CDF space (cell midpoints)
    du: float = field(repr=False, default=0.0)
    m: np.ndarray = field(repr=False, default=None)  # (grid, p) conditional means of b
    V: np.ndarray = field(repr=False, default=None)  # (grid, p, p) conditional covariances
    priors: dict = field(repr=False, default_factory=dict)
    baseline_risk: float | None = None

    # --- marginals of named quantities as normal mixtures ------------------------------

    def _design(self) -> np.ndarray:
        return np.column_stack([np.ones(len(self.data.yi)), self.data.X.to_numpy(float)])

    def _pooled_mixtures(self) -> tuple[list[str], np.ndarray, np.ndarray]:
        """``mu``, each ``beta`` and ``theta_new``: names, (grid, q) means and variances."""
        names = ["mu", *[f"beta[{t}]" for t in self.data.terms], "theta_new"]
        p = self.m.shape[1]
        var = np.diagonal(self.V, axis1=1, axis2=2)
        mean = np.column_stack([self.m, self.m[:, 0]])
        var = np.column_stack([var[:, :p], self.V[:, 0, 0] + self.tau**2])
        return names, mean, var

    def _theta_mixtures(self):
        """Yield ``(positions, means, variances)`` of the study effects, a block at a time.

        Each block holds (grid, studies) arrays of at most :data:`BLOCK` elements, so that
        memory stays linear in the number of studies however fine the grid.
        """
        for sl in self._theta_slices():
            yield self._theta_block(sl)

    def _theta_slices(self) -> list[slice]:
        k, n = len(self.data.yi), len(self.tau)
        step = max(1, BLOCK // max(n, 1))
        return [slice(lo, min(lo + step, k)) for lo in range(0, k, step)]

    def _theta_block(self, sl: slice):
        """``(sl, means, variances)``: the (grid, studies) mixtures of the studies ``sl``."""
        d = self.data
        if self.pooling == "none":
            var = np.diagonal(self.V, axis1=1, axis2=2)
            return sl, self.m[:, sl], var[:, sl]
        Z = self._design()[sl]
        p = Z.shape[1]
        ZZ = (Z[:, :, None] * Z[:, None, :]).reshape(len(Z), p * p)
        s2 = d.sei[sl] ** 2
        B = s2 / (s2 + self.tau[:, None] ** 2)  # (grid, block) shrinkage
        if p == 1 and np.all(Z == 1):  # no covariates: (grid, 1) columns broadcast
            zm, zVz = self.m[:, :1], self.V[:, 0, :1]
        else:
            zm = self.m @ Z.T
            zVz = self.V.reshape(len(self.tau), p * p) @ ZZ.T  # z_i' V z_i at every tau
        mean = (1 - B) * d.yi[sl] + B * zm
        var = (1 - B) * s2 + B**2 * zVz
        return sl, mean, var

    def summary(self) -> pd.DataFrame:
        """Posterior mean, SD and 2.5/50/97.5% quantiles of every quantity, computed exactly.

        Examples
        --------
        >>> import bayeskit as bk
        >>> from bayeskit.families.data import study_data
        >>> from bayeskit.priors import parse_prior
        >>> d = study_data(bk.load_evidence(bk.data_path("eight_schools.csv")))
        >>> post = exact_posterior(d, {"mu": parse_prior("Normal(0, 5)"),
        ...                            "tau": parse_prior("HalfCauchy(5)")})
        >>> post.summary().loc[["mu", "tau"], ["mean", "sd"]].round(2)
                   mean    sd
        parameter
        mu          4.4  3.32
        tau         3.6  3.22
        """
        k = len(self.data.study)
        theta = np.empty((k, 5))

        def block(sl):
            sl, mean, var = self._theta_block(sl)
            return sl, mixture_summaries(self.weight, mean, var)

        for sl, values in _map_blocks(block, self._theta_slices()):
            theta[sl] = values
        theta_names = [f"theta[{s}]" for s in self.data.study]
        if self.pooling == "none":
            names, values = theta_names, theta
        else:
            pooled, mean, var = self._pooled_mixtures()
            head = mixture_summaries(self.weight, mean, var)
            names = [*pooled[:-1], "tau", *theta_names, pooled[-1]]
            values = np.vstack([head[:-1], [self._tau_summary()], theta, head[-1:]])
            extra = self._binary_scale((mean[:, 0], var[:, 0]), head[0, 2:])
            if extra:
                names += list(extra)
                values = np.vstack([values, list(extra.values())])
        table = pd.DataFrame(
            values, index=pd.Index(names, name="parameter"), columns=SUMMARY_COLUMNS
        )
        return table

    def _tau_summary(self) -> list[float]:
        if self.pooling == "full":
            return [0.0] * 5
        mean = np.sum(self.weight * self.tau)
        sd = np.sqrt(max(np.sum(self.weight * self.tau**2) - mean**2, 0.0))
        return [mean, sd, *self.tau_quantile(np.array(QUANTILES))]

    def tau_quantile(self, q: np.ndarray) -> np.ndarray:
        """Posterior quantiles of tau (interpolated in prior-CDF space)."""
        if self.pooling == "full":
            return np.zeros_like(q, dtype=float)
        edges = np.concatenate([[self.u[0] - self.du / 2], self.u + self.du / 2])
        cdf = np.concatenate([[0.0], np.cumsum(self.weight)])
        u = np.interp(q, cdf, edges)
        return np.asarray(self.priors["tau"].ppf(u), dtype=float)

    def tau_function_summary(self, f) -> list[float]:
        """Mean, SD and 2.5/50/97.5% quantiles of ``f(tau)`` for an increasing ``f``.

        Exact on the grid: quantiles of tau map through ``f``; the moments are sums over
        the grid cells (tau^2, I^2, H^2 are such functions).

        Examples
        --------
        >>> import bayeskit as bk
        >>> post = bk.fit(bk.data_path("eight_schools.csv"), method="exact").exact
        >>> tau = post.summary().loc["tau"]
        >>> got = post.tau_function_summary(np.square)
        >>> bool(np.isclose(got[3], tau["q50"] ** 2))
        True
        """
        values = np.asarray(f(self.tau), dtype=float)
        mean = float(np.sum(self.weight * values))
        sd = float(np.sqrt(max(np.sum(self.weight * values**2) - mean**2, 0.0)))
        qs = np.asarray(f(self.tau_quantile(np.array(QUANTILES))), dtype=float)
        return [mean, sd, *map(float, qs)]

    def function_summary(self, name: str, f) -> list[float]:
        """Mean, SD and quantiles of ``f(X)``, ``X`` a mixture quantity, ``f`` increasing.

        Examples
        --------
        >>> import bayeskit as bk
        >>> post = bk.fit(bk.data_path("eight_schools.csv"), method="exact").exact
        >>> q = post.summary().loc["theta_new", "q97.5"]
        >>> bool(np.isclose(post.function_summary("theta_new", np.tanh)[4], np.tanh(q)))
        True
        """
        mean, var = self._mixture(name)
        qs = mixture_quantiles(self.weight, mean, var)[0]
        with np.errstate(over="ignore"):  # exp of a wide mixture: an infinite mean is right
            return _transformed(self.weight, mean, var, f, qs)

    def prob(self, name: str, op: str, value: float) -> float:
        """Posterior probability that ``name op value``, from the exact posterior.

        ``name`` is ``tau`` or a quantity of :meth:`summary` that is a normal mixture
        (``mu``, ``beta[<term>]``, ``theta[<study>]``, ``theta_new``); ``op`` one of
        ``<``, ``<=``, ``>``, ``>=``. Normal mixtures are summed exactly over the tau
        grid; tau's probability is its posterior CDF (the grid in prior-CDF space).

        Examples
        --------
        >>> import bayeskit as bk
        >>> post = bk.fit(bk.data_path("eight_schools.csv"), method="exact",
        ...               priors={"mu": "Normal(0, 5)", "tau": "HalfCauchy(5)"}).exact
        >>> round(post.prob("mu", ">", 0.0), 4)
        0.9076
        >>> round(post.prob("tau", "<", float(post.tau_quantile(np.array([0.5]))[0])), 6)
        0.5
        """
        if op not in ("<", "<=", ">", ">="):
            raise UserError(f"comparison must be one of <, <=, >, >= (got {op!r})")
        if name == "tau" and self.pooling != "none":
            below = self._tau_cdf(value)
        else:
            mean, var = self._mixture(name)
            sd = np.sqrt(np.maximum(var, 0.0))
            with np.errstate(divide="ignore", invalid="ignore"):
                z = np.where(sd > 0, (value - mean) / np.where(sd > 0, sd, 1.0), np.inf)
            z = np.where((sd == 0) & (value < mean), -np.inf, z)
            below = float(np.sum(self.weight * special.ndtr(z)))
        below = min(max(below, 0.0), 1.0)
        return below if op in ("<", "<=") else 1.0 - below

    def _tau_cdf(self, value: float) -> float:
        """Posterior P(tau <= value), interpolated in prior-CDF space (as tau_quantile)."""
        if self.pooling == "full" or value < 0:
            return float(value >= 0)
        u = float(self.priors["tau"].cdf(value))
        edges = np.concatenate([[self.u[0] - self.du / 2], self.u + self.du / 2])
        cdf = np.concatenate([[0.0], np.cumsum(self.weight)])
        return float(np.interp(u, edges, cdf))

    def mixture_names(self) -> list[str]:
        """Names of the quantities whose posterior is a normal mixture over the tau grid.

        Examples
        --------
        >>> import bayeskit as bk
        >>> bk.fit(bk.data_path("eight_schools.csv"), method="exact").exact.mixture_names()[:3]
        ['mu', 'theta_new', 'theta[A]']
        """
        pooled = [] if self.pooling == "none" else self._pooled_mixtures()[0]
        return [*pooled, *(f"theta[{s}]" for s in self.data.study)]

    def _mixture(self, name: str) -> tuple[np.ndarray, np.ndarray]:
        """Component means and variances over the grid of one named normal-mixture quantity."""
        pooled = [] if self.pooling == "none" else self._pooled_mixtures()
        if pooled and name in pooled[0]:
            j = pooled[0].index(name)
            return pooled[1][:, j], pooled[2][:, j]
        studies = [f"theta[{s}]" for s in self.data.study]
        if name in studies:
            i = studies.index(name)
            for sl, mean, var in self._theta_mixtures():
                if sl.start <= i < sl.stop:
                    return mean[:, i - sl.start], var[:, i - sl.start]
        known = [*(["tau", *pooled[0]] if pooled else []), *studies]
        raise UserError(f"no quantity {name!r} in this fit; it has {', '.join(known)}")

    def _binary_scale(self, mu_mix, qs) -> dict[str, list[float]]:
        measure = self.data.measure
        if measure not in ("OR", "RR"):
            return {}
        mean, var = mu_mix
        rows = {ratio_parameter(measure): _transformed(self.weight, mean, var, np.exp, qs)}
        if self.baseline_risk is not None:
            p0 = self.baseline_risk
            if measure == "OR":
                p1 = lambda x: special.expit(special.logit(p0) + x)  # noqa: E731
            else:
                p1 = lambda x: np.minimum(p0 * np.exp(x), 1.0)  # noqa: E731
            rows["p_treatment"] = _transformed(self.weight, mean, var, p1, qs)
            rows["risk_difference"] = _transformed(self.weight, mean, var, lambda x: p1(x) - p0, qs)
        return rows

    @property
    def shrinkage(self) -> pd.Series:
        """Posterior mean weight of the pooled estimate in each study's shrunken effect."""
        s2 = self.data.sei**2
        if self.pooling == "none":
            return pd.Series(0.0, index=self.data.study, name="shrinkage")
        out = np.empty(len(s2))
        step = max(1, BLOCK // len(self.tau))
        for lo in range(0, len(s2), step):
            B = s2[lo : lo + step] / (s2[lo : lo + step] + self.tau[:, None] ** 2)
            out[lo : lo + step] = self.weight @ B
        return pd.Series(out, index=self.data.study, name="shrinkage")

    def tau_density(self) -> pd.Series:
        """Posterior density of tau on the grid (for plots)."""
        dens = self.weight / self.du * np.exp(self.priors["tau"].logpdf(self.tau))
        return pd.Series(dens, index=pd.Index(self.tau, name="tau"), name="density")

    def draws(self, n: int = 4000, *, seed: int | None = None, chains: int = 4):
        """Independent draws from the exact posterior, as an ArviZ DataTree.

        Tau is drawn by inverting its posterior CDF, then ``(mu, beta)`` and ``theta``
        from their conditional normals; useful for reports that plot draws. The tree is
        made with xarray itself: ArviZ's ``from_dict`` imports ArviZ (half a second)
        for what is one Dataset here.
        """
        post = self.draw_arrays(n, seed=seed, chains=chains)
        per = -(-n // chains)
        return posterior_tree(
            {k: v.reshape(chains, per, *v.shape[1:]) for k, v in post.items()},
            {"study": self.data.study, "term": self.data.terms},
        )

    def draw_arrays(self, n: int = 4000, *, seed: int | None = None, chains: int = 4) -> dict:
        """Return the draws of :meth:`draws` as arrays of ``chains x ceil(n / chains)`` rows.

        Examples
        --------
        >>> import bayeskit as bk
        >>> post = bk.fit(bk.data_path("eight_schools.csv"), method="exact").exact
        >>> drawn = post.draw_arrays(10, seed=1, chains=2)
        >>> sorted(drawn), drawn["theta"].shape
        (['mu', 'tau', 'theta', 'theta_new'], (10, 8))
        """
        rng = np.random.default_rng(seed)
        per = -(-n // chains)
        d = self.data
        cell = rng.choice(len(self.weight), size=chains * per, p=self.weight)
        tau = self.tau[cell]
        z = rng.standard_normal(self.m[cell].shape)
        if self.V.shape[1] == 1:  # the Cholesky factor of a 1 x 1 matrix is its root
            b = self.m[cell] + np.sqrt(self.V[cell, :, 0] + 1e-300) * z
        else:
            L = np.linalg.cholesky(self.V[cell] + 1e-300 * np.eye(self.V.shape[1]))
            b = self.m[cell] + np.einsum("npq,nq->np", L, z)
        post = {}
        if self.pooling == "none":
            post["theta"] = b
        else:
            Z = np.column_stack([np.ones(len(d.yi)), d.X.to_numpy(float)])
            s2 = d.sei**2
            B = s2 / (s2 + tau[:, None] ** 2)
            theta = (1 - B) * d.yi + B * (b @ Z.T)
            theta += np.sqrt((1 - B) * s2) * rng.standard_normal(theta.shape)
            post |= {
                "mu": b[:, 0],
                "tau": tau,
                "theta": theta,
                "theta_new": b[:, 0] + tau * rng.standard_normal(len(tau)),
            }
            if d.terms:
                post["beta"] = b[:, 1:]
        return post


def posterior_tree(draws: dict, coords: dict):
    """Return a DataTree with one ``posterior`` group, laid out as ArviZ's ``from_dict`` does.

    ``draws`` maps names to (chain, draw, ...) arrays; ``theta`` has dimension ``study``
    and ``beta`` dimension ``term``, labelled by ``coords``.

    Examples
    --------
    >>> tree = posterior_tree({"mu": np.zeros((2, 3)), "theta": np.zeros((2, 3, 1))},
    ...                       {"study": ["A"], "term": []})
    >>> tree.posterior["theta"].dims, tree.posterior.attrs["sample_dims"]
    (('chain', 'draw', 'study'), ['chain', 'draw'])
    """
    import xarray as xr

    import bayeskit

    dims = {"theta": ["study"], "beta": ["term"]}
    chains, per = next(iter(draws.values())).shape[:2]
    data = {k: (["chain", "draw", *dims.get(k, [])], v) for k, v in draws.items()}
    labels = {"chain": np.arange(chains), "draw": np.arange(per)}
    labels |= {k: list(v) for k, v in coords.items() if len(v)}
    attrs = {
        "created_at": datetime.now(UTC).isoformat(),
        "creation_library": "bayeskit",
        "creation_library_version": bayeskit.__version__,
        "creation_library_language": "Python",
        "sample_dims": ["chain", "draw"],
    }
    return xr.DataTree.from_dict({"posterior": xr.Dataset(data, coords=labels, attrs=attrs)})


def exact_posterior(
    data: StudyData,
    priors: dict,
    *,
    pooling: str = "partial",
    baseline_risk: float | None = None,
    grid: int = GRID,
) -> ExactPosterior:
    """Compute the exact posterior of the normal-normal model.

    Parameters
    ----------
    data : StudyData
        Effect sizes ``yi``, standard errors ``sei`` and covariates ``X``.
    priors : dict
        ``mu`` and ``beta``: Normal or Flat; ``tau``: any prior on [0, inf) (needs
        ``logpdf`` and ``ppf``).
    pooling : {"partial", "none", "full"}
        ``"full"`` fixes tau at 0; ``"none"`` gives each study its own effect with the
        ``mu`` prior.
    baseline_risk : float, optional
        Control-group risk at which to state a binary effect on the absolute scale.
    grid : int
        Grid points per pass (two passes: coarse, then refined to where the likelihood
        is not negligible).

    Returns
    -------
    ExactPosterior

    Examples
    --------
    >>> import bayeskit as bk
    >>> from bayeskit.exact import exact_posterior
    >>> from bayeskit.families.data import study_data
    >>> from bayeskit.priors import parse_prior
    >>> d = study_data(bk.load_evidence(bk.data_path("eight_schools.csv")))
    >>> post = exact_posterior(d, {"mu": parse_prior("Normal(0, 5)"),
    ...                            "tau": parse_prior("HalfCauchy(5)")})
    >>> post.summary().loc["mu", ["mean", "q2.5", "q97.5"]].round(1).tolist()
    [4.4, -2.2, 10.9]
    >>> post.shrinkage.idxmax()  # the least precise school borrows most
    'H'
    """
    for name in ("mu", "beta") if data.terms else ("mu",):
        if not priors[name].is_normal:
            raise UserError(
                f"the exact engine needs a Normal (or Flat) prior on {name}; got "
                f"{priors[name]}: use method='mcmc'"
            )
    if pooling == "none":
        return _no_pooling(data, priors)
    Z = np.column_stack([np.ones(len(data.yi)), data.X.to_numpy(float)])
    b0, P0 = _normal_prior(priors, Z.shape[1])
    if pooling == "full":
        taus, w, u, du = np.zeros(1), np.ones(1), np.array([0.5]), 1.0
        m, V, _ = _conditional(data, Z, b0, P0, taus)
    elif pooling == "partial":
        tau_prior = priors["tau"]
        if not tau_prior.is_positive:
            raise UserError(f"tau needs a prior on [0, inf); got {tau_prior}")
        lo, hi = 0.0, 1.0
        for _ in range(2):  # coarse pass, then a pass refined to where the mass is
            du = (hi - lo) / grid
            u = lo + du * (np.arange(grid) + 0.5)
            taus = np.asarray(tau_prior.ppf(u), dtype=float)
            with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
                m, V, loglik = _conditional(data, Z, b0, P0, taus)  # overflow checked next
            if not np.isfinite(loglik).any():
                raise UserError(
                    "the exact engine cannot evaluate the likelihood on any grid point of "
                    f"tau (effect sizes up to {np.max(np.abs(data.yi)):g}, standard errors "
                    f"{np.min(data.sei):g} to {np.max(data.sei):g}, tau prior {tau_prior}): "
                    "the numbers overflow double precision; rescale the data (other units)"
                )
            loglik = np.where(np.isfinite(loglik), loglik, -np.inf)
            keep = np.flatnonzero(loglik > loglik.max() - 40)  # e^-40: negligible
            lo = max(lo, u[keep[0]] - du)
            hi = min(hi, u[keep[-1]] + du)
        w = np.exp(loglik - loglik.max())
        w /= w.sum()
    else:
        raise UserError(f"pooling must be partial, none or full (got {pooling!r})")
    return ExactPosterior(data, pooling, taus, w, u, du, m, V, priors, baseline_risk)


def exact_posteriors(
    yi: np.ndarray, sei: np.ndarray, priors: dict, *, grid: int = GRID
) -> list[ExactPosterior]:
    """Exact posteriors of many data sets of the same number of studies, computed at once.

    The vectorised form of :func:`exact_posterior` for partial pooling without
    covariates (simulation-based calibration, leave-one-out, batches of meta-analyses):
    row ``i`` of ``yi`` and ``sei`` is data set ``i``. Each posterior is the one
    :func:`exact_posterior` gives for that row (to rounding: the sums run in another
    order), with studies labelled ``S0``, ``S1``, ...

    Parameters
    ----------
    yi, sei : array of shape (data sets, studies)
        Effect sizes and their standard errors (``sei`` may be one row for all).
    priors : dict
        ``mu`` (Normal or Flat) and ``tau``, as for :func:`exact_posterior`.
    grid : int

    Returns
    -------
    list of ExactPosterior

    Examples
    --------
    >>> from bayeskit.priors import parse_prior
    >>> priors = {"mu": parse_prior("Normal(0, 5)"), "tau": parse_prior("HalfCauchy(5)")}
    >>> y = np.array([[28, 8, -3, 7, -1, 1, 18, 12.0], [0, 1, 2, 3, 4, 5, 6, 7.0]])
    >>> posts = exact_posteriors(y, [15, 10, 16, 11, 9, 11, 10, 18.0], priors)
    >>> [round(float(p.summary().loc["mu", "mean"]), 2) for p in posts]
    [4.4, 2.05]
    """
    yi = np.atleast_2d(np.asarray(yi, dtype=float))
    sei = np.broadcast_to(np.asarray(sei, dtype=float), yi.shape)
    n, k = yi.shape
    taus, w, u, du, m, V = posterior_grids(yi, sei, priors, grid=grid)
    labels = [f"S{i}" for i in range(k)]
    index = pd.Index(labels)  # one index for every table: building it is most of a table
    X = pd.DataFrame(index=index)
    out = []
    for i in range(n):
        table = pd.DataFrame({"yi": yi[i]}, index=index)
        data = StudyData(labels, yi[i], sei[i], X, None, table)
        du_i = float(du[i])
        out.append(ExactPosterior(data, "partial", taus[i], w[i], u[i], du_i, m[i], V[i], priors))
    return out


def posterior_grids(yi: np.ndarray, sei: np.ndarray, priors: dict, *, grid: int = GRID) -> tuple:
    """Return the grids behind :func:`exact_posteriors` as arrays, for callers needing no tables.

    Returns ``(taus, weights, u, du, m, V)``: tau's grid points and their posterior
    weights (data sets x grid), the points as prior probabilities and each data set's
    cell width, and mu's conditional mean and variance at each point (data sets x grid
    x 1, and x 1 x 1). Simulation-based calibration draws from these directly: building
    a posterior object (and its study table) per replicate was most of its time.

    Examples
    --------
    >>> from bayeskit.priors import parse_prior
    >>> priors = {"mu": parse_prior("Normal(0, 5)"), "tau": parse_prior("HalfCauchy(5)")}
    >>> taus, w, u, du, m, V = posterior_grids(np.array([[28, 8, -3.0]]), [15, 10, 16], priors)
    >>> taus.shape, round(float(w.sum()), 12), m.shape
    ((1, 2000), 1.0, (1, 2000, 1))
    """
    yi = np.atleast_2d(np.asarray(yi, dtype=float))
    sei = np.broadcast_to(np.asarray(sei, dtype=float), yi.shape)
    n = yi.shape[0]
    if not priors["mu"].is_normal:
        raise UserError(
            f"the exact engine needs a Normal (or Flat) prior on mu; got {priors['mu']}: "
            "use method='mcmc'"
        )
    tau_prior = priors["tau"]
    if not tau_prior.is_positive:
        raise UserError(f"tau needs a prior on [0, inf); got {tau_prior}")
    b0, P0 = _normal_prior(priors, 1)
    b0, P0 = float(b0[0]), float(P0[0, 0])
    lo, hi = np.zeros(n), np.ones(n)
    for _ in range(2):  # as exact_posterior: a coarse pass, then one refined per data set
        du = (hi - lo) / grid
        u = lo[:, None] + du[:, None] * (np.arange(grid) + 0.5)
        taus = np.asarray(tau_prior.ppf(u), dtype=float)
        with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
            m, V, loglik = _conditional_many(yi, sei, b0, P0, taus)
        bad = ~np.isfinite(loglik).any(axis=1)
        if bad.any():
            i = int(np.flatnonzero(bad)[0])
            raise UserError(
                f"the exact engine cannot evaluate the likelihood of data set {i} on any "
                f"grid point of tau (tau prior {tau_prior}): the numbers overflow double "
                "precision; rescale the data (other units)"
            )
        loglik = np.where(np.isfinite(loglik), loglik, -np.inf)
        top = loglik.max(axis=1, keepdims=True)
        keep = loglik > top - 40  # e^-40: negligible
        first = np.argmax(keep, axis=1)
        last = grid - 1 - np.argmax(keep[:, ::-1], axis=1)
        rows = np.arange(n)
        lo = np.maximum(lo, u[rows, first] - du)
        hi = np.minimum(hi, u[rows, last] + du)
    w = np.exp(loglik - top)
    w /= w.sum(axis=1, keepdims=True)
    return taus, w, u, du, m, V


def _conditional_many(yi, sei, b0: float, P0: float, taus):
    """:func:`_conditional` for many data sets without covariates: (sets, grid) arrays."""
    n, g = taus.shape
    k = yi.shape[1]
    s2 = sei**2
    ones = np.stack([np.ones_like(yi), yi, yi**2], axis=2)  # (sets, k, 3)
    if (sei == sei[0]).all() and (taus == taus[0]).all():
        # one grid and one set of standard errors (the first pass of a simulation study):
        # the weights are the same for every data set, and the sums are matrix products
        v = s2[0] + taus[0, :, None] ** 2  # (grid, k)
        sums = (1 / v) @ np.moveaxis(ones, 0, 1).reshape(k, n * 3)  # (grid, sets x 3)
        sums = np.moveaxis(sums.reshape(g, n, 3), 1, 0)
        logv = np.broadcast_to(np.log(v).sum(axis=1), (n, g))
        return _conditional_sums(sums, logv, b0, P0)
    sums, logv = np.empty((n, g, 3)), np.empty((n, g))
    step = max(1, BLOCK // max(g * k, 1))
    for lo in range(0, n, step):
        sl = slice(lo, min(lo + step, n))
        v = s2[sl, None, :] + taus[sl, :, None] ** 2  # (sets, grid, k)
        sums[sl] = (1 / v) @ ones[sl]  # sum of W, W y and W y^2 over the studies
        logv[sl] = np.log(v, out=v).sum(axis=2)
    return _conditional_sums(sums, logv, b0, P0)


def _conditional_sums(sums, logv, b0: float, P0: float):
    """Conditional mean, variance and log likelihood from the sums over the studies."""
    prec, rhs, yWy = sums[..., 0] + P0, sums[..., 1], sums[..., 2]
    rhs += P0 * b0
    V = 1 / prec
    m = V * rhs
    loglik = -0.5 * (logv + np.log(prec) + yWy + b0 * P0 * b0 - m * rhs)
    return m[..., None], V[..., None, None], loglik


def _normal_prior(priors: dict, p: int) -> tuple[np.ndarray, np.ndarray]:
    b0, prec = np.zeros(p), np.zeros(p)
    for j in range(p):
        prior = priors["mu" if j == 0 else "beta"]
        if prior.family == "Normal":
            b0[j], prec[j] = prior.params["mu"], prior.params["sigma"] ** -2
    return b0, np.diag(prec)


def _conditional(data, Z, b0, P0, taus):
    """Conditional mean, covariance and log marginal likelihood at each tau of the grid.

    The (grid, studies) weights are formed a block of grid points at a time
    (:data:`BLOCK` elements), so that memory is linear in the number of studies; the
    sums over studies are matrix products.
    """
    k, p = Z.shape
    n = len(taus)
    s2 = data.sei**2
    ZZ = (Z[:, :, None] * Z[:, None, :]).reshape(k, p * p)
    Zy = Z * data.yi[:, None]
    prec, rhs = np.empty((n, p * p)), np.empty((n, p))
    yWy, logv = np.empty(n), np.empty(n)
    step = max(1, BLOCK // max(k, 1))
    for lo in range(0, n, step):
        sl = slice(lo, min(lo + step, n))
        v = s2 + taus[sl, None] ** 2  # (block, k) marginal variances
        W = 1 / v
        prec[sl] = W @ ZZ
        rhs[sl] = W @ Zy
        yWy[sl] = W @ data.yi**2
        logv[sl] = np.sum(np.log(v), axis=1)
    prec = prec.reshape(n, p, p) + P0
    rhs += P0 @ b0
    sign, logdet = np.linalg.slogdet(prec)
    if np.any(sign <= 0):
        raise UserError(
            "the regression is not identified: more coefficients than studies "
            "can support, with flat priors; give beta a proper prior"
        )
    V = np.linalg.inv(prec)
    m = np.einsum("npq,nq->np", V, rhs)
    quad = yWy + b0 @ P0 @ b0 - np.einsum("np,np->n", m, rhs)
    loglik = -0.5 * (logv + logdet + quad)
    return m, V, loglik


def _no_pooling(data: StudyData, priors: dict) -> ExactPosterior:
    prior = priors["mu"]
    s2 = data.sei**2
    if prior.family == "Normal":
        p0, m0 = prior.params["sigma"] ** -2, prior.params["mu"]
    else:
        p0, m0 = 0.0, 0.0
    var = 1 / (1 / s2 + p0)
    mean = var * (data.yi / s2 + p0 * m0)
    return ExactPosterior(
        data,
        "none",
        np.zeros(1),
        np.ones(1),
        np.array([0.5]),
        1.0,
        mean[None, :],
        np.diag(var)[None],
        priors,
    )


def _map_blocks(fn, blocks):
    """Yield ``fn(block)`` for each block in order, computed in threads when there are cores.

    NumPy's and SciPy's element-wise functions release the GIL, so the blocks of many
    studies' quantiles (the normal CDF over grid x studies) run side by side; at most
    one block per thread waits in memory, keeping memory linear in the number of studies.
    Each block is computed as it would be alone, so the numbers do not depend on the
    number of threads. (A plain thread pool: Dask would serialise the blocks it sends.)
    """
    blocks = list(blocks)
    workers = min(os.cpu_count() or 1, 4, len(blocks))
    if workers <= 1:  # one block (most fits) or one core: no thread to start
        yield from map(fn, blocks)
        return
    from threadpoolctl import threadpool_limits

    # one BLAS thread per block: the weighted sums are matrix-vector products, which
    # OpenBLAS's own threads made slower here (1.4 s against 0.95 s for four blocks of
    # 1,900 x 1,000 on 2 cores), and the blocks already keep every core busy
    with threadpool_limits(1, user_api="blas"), ThreadPoolExecutor(workers) as pool:
        pending = deque()
        for item in blocks:
            if len(pending) >= workers:
                yield pending.popleft().result()
            pending.append(pool.submit(fn, item))
        while pending:
            yield pending.popleft().result()


def mixture_summaries(w, mean, var, qs=QUANTILES) -> np.ndarray:
    """Mean, SD and quantiles of many normal mixtures that share their weights.

    Column ``j`` of ``mean`` and ``var`` holds mixture ``j``'s component means and
    variances, one row per grid cell with weight ``w``; the result has one row per
    mixture: ``mean``, ``sd`` and the quantiles ``qs``.

    Examples
    --------
    >>> w = np.array([0.5, 0.5])
    >>> mixture_summaries(w, np.array([[-1.0, 0.0], [1.0, 0.0]]), np.ones((2, 2))).round(4)
    array([[ 0.    ,  1.4142, -2.6461,  0.    ,  2.6461],
           [ 0.    ,  1.    , -1.96  ,  0.    ,  1.96  ]])
    """
    mean = np.asarray(mean, dtype=float).reshape(len(w), -1)
    var = np.asarray(var, dtype=float).reshape(len(w), -1)
    mu = w @ mean
    sd = np.sqrt(np.maximum(w @ (var + mean**2) - mu**2, 0.0))
    return np.column_stack([mu, sd, mixture_quantiles(w, mean, var, qs)])


def mixture_quantiles(w, mean, var, qs=QUANTILES) -> np.ndarray:
    """Quantiles ``qs`` of many normal mixtures sharing weights ``w``: (mixtures, quantiles).

    Each quantile is the root of the mixture CDF minus ``q``, found by Halley's method
    safeguarded by bisection inside the bracket ``[min(mean - 12 sd), max(mean + 12 sd)]``,
    all mixtures at once, from the normal with the mixture's mean and SD; the root is
    resolved to about 1e-15 of the narrowest component's SD (scipy's ``brentq``, used before, stops
    at an absolute 1e-12, so the two agree to about that). No library solves many
    such roots at once; one ``brentq`` call per quantity took minutes for 20,000
    studies. The smallest components are left out while their weights total less than
    1e-14, as they move no CDF by more than that.

    Examples
    --------
    >>> mixture_quantiles(np.ones(1), np.zeros((1, 1)), np.ones((1, 1)), (0.975,)).round(6)
    array([[1.959964]])
    """
    mean = np.asarray(mean, dtype=float).reshape(len(w), -1)
    var = np.asarray(var, dtype=float).reshape(len(w), -1)
    # leave out the smallest weights while their total stays below 1e-14: no CDF moves
    # by more than that (most grid cells of a large meta-analysis's narrow tau posterior)
    order = np.argsort(w)
    drop = order[np.cumsum(w[order]) < 1e-14 * w.sum()]
    if len(drop):
        keep = np.ones(len(w), dtype=bool)
        keep[drop] = False
        mean, var, w = mean[keep], var[keep], w[keep]
    w = w / w.sum()
    var = np.maximum(var, 1e-300)
    sd = np.sqrt(var)
    lo, hi = np.min(mean - 12 * sd, axis=0), np.max(mean + 12 * sd, axis=0)
    out = np.empty((mean.shape[1], len(qs)))
    point = np.isclose(lo, hi)
    out[point] = mean[0, point][:, None]
    todo = np.flatnonzero(~point)
    if not len(todo):
        return out
    if len(todo) < len(point):
        mean, sd, lo, hi = mean[:, todo], sd[:, todo], lo[todo], hi[todo]
    # start from the Cornish-Fisher expansion in the mixture's skewness and kurtosis:
    # for the nearly normal mixtures of many studies one Halley step from there is the
    # root, and the CDF (the expensive part) is evaluated once per quantile
    m1 = w @ mean
    d = mean - m1
    v = var
    d2 = d * d
    k2 = w @ (v + d2)
    k3 = w @ (d * (d2 + 3 * v))
    k4 = w @ (d2 * d2 + 6 * d2 * v + 3 * v * v)
    s1 = np.sqrt(np.maximum(k2, 0.0))
    with np.errstate(divide="ignore", invalid="ignore"):
        g1 = np.nan_to_num(k3 / k2**1.5)
        g2 = np.nan_to_num(k4 / k2**2 - 3)
    # the CDF bends on the scale of its narrowest component: steps are judged on that
    narrow = np.min(sd, axis=0)
    for j, q in enumerate(qs):
        z = special.ndtri(q)
        cf = z + (z * z - 1) * g1 / 6 + (z**3 - 3 * z) * g2 / 24 - (2 * z**3 - 5 * z) * g1**2 / 36
        start = np.clip(m1 + s1 * cf, lo, hi)
        out[todo, j] = _solve_cdf(w, mean, sd, q, lo.copy(), hi.copy(), start, narrow)
    return out


def _solve_cdf(w, mean, sd, q, lo, hi, x, scale, max_iter=200):
    """Roots of ``sum_g w_g Phi((x - mean_g) / sd_g) = q`` for each column (see above).

    Halley's method (cubic convergence), kept inside the shrinking bracket by bisection.
    A Halley step shorter than 1e-5 of the narrowest component's SD (``scale``, the
    scale on which the CDF bends) leaves an error of the order of its cube (1e-15 SD), a
    Newton step shorter than 1e-8 SD one of its square, so the point it leads to is
    taken as the root without another evaluation of the CDF, the expensive part.
    """
    active = np.arange(len(x))
    last = np.full(len(x), np.inf)  # |F| at the previous point, to see progress
    inv = 1 / sd
    for _ in range(max_iter):
        if len(active) < len(x):
            m, s, xa = mean[:, active], inv[:, active], x[active]
        else:
            m, s, xa = mean, inv, x.copy()
        z = xa - m
        z *= s
        F = w @ special.ndtr(z) - q
        dens = np.multiply(z, z, out=m if m is not mean else None)
        dens *= -0.5
        np.exp(dens, out=dens)
        dens *= s  # the density up to 1 / sqrt(2 pi), which cancels below
        f = (w @ dens) / np.sqrt(2 * np.pi)
        dens *= z
        dens *= s
        df = -(w @ dens) / np.sqrt(2 * np.pi)
        below = F < 0
        lo[active] = np.where(below, xa, lo[active])
        hi[active] = np.where(below, hi[active], xa)
        with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
            denom = 2 * f * f - F * df
            halley = denom >= f * f  # Halley where its correction is mild, else Newton
            new = np.where(halley, xa - 2 * F * f / denom, xa - F / f)
        inside = (new >= lo[active]) & (new <= hi[active])
        # bisect when a step would leave the bracket or |F| has not halved (far tails,
        # where Newton creeps)
        slow = np.abs(F) > 0.5 * last[active]
        step = np.abs(new - xa)
        newton = inside & ~slow
        new = np.where(newton, new, 0.5 * (lo[active] + hi[active]))
        new = np.where(F == 0, xa, new)
        # the error left after a step is about its cube (Halley) or square (Newton)
        limit = np.where(halley, 1e-5, 1e-8) * scale[active]
        done = (F == 0) | (newton & (step <= limit))
        done |= hi[active] - lo[active] <= 4 * np.finfo(float).eps * (1 + np.abs(xa))
        x[active] = new
        last[active] = np.abs(F)
        active = active[~done]
        if not len(active):
            break
    return x


def _transformed(w, mean, var, f, qs) -> list[float]:
    """Summary of f(X) for X a normal mixture and f increasing: quantiles map through f."""
    sd = np.sqrt(var)
    values = f(mean[:, None] + sd[:, None] * _GH_X[None, :])  # Gauss-Hermite per component
    m1 = np.sum(w * (values @ _GH_W))
    m2 = np.sum(w * ((values**2) @ _GH_W))
    return [float(m1), float(np.sqrt(max(m2 - m1**2, 0.0))), *(float(f(q)) for q in qs)]


def conditional_posterior(data: StudyData, priors: dict, tau: float) -> pd.DataFrame:
    """Compute the posterior given one value of tau, with ``mu`` (and ``beta``) integrated out.

    Every row is normal given tau (BDA3 section 5.4; the formulas at the top of this
    module): ``mu``, each ``theta[<study>]`` and ``theta_new``. ``attrs["log_likelihood"]``
    is ``log p(y | tau)`` up to a constant that does not depend on tau, so that differences
    between values of tau are exact.

    Parameters
    ----------
    data : StudyData
        Effect sizes ``yi``, standard errors ``sei`` and covariates ``X``.
    priors : dict
        ``mu`` (and ``beta``): Normal or Flat.
    tau : float
        The between-study standard deviation, at least 0.

    Returns
    -------
    DataFrame
        Columns ``mean`` and ``sd``, indexed by parameter.

    Examples
    --------
    >>> import bayeskit as bk
    >>> from bayeskit.families.data import study_data
    >>> from bayeskit.priors import parse_prior
    >>> d = study_data(bk.load_evidence(bk.data_path("eight_schools.csv")))
    >>> given = conditional_posterior(d, {"mu": parse_prior("Flat()", allow_flat=True)}, 0.0)
    >>> given.loc["mu", ["mean", "sd"]].round(2).tolist()  # BDA3: 7.7 and 4.1 at tau = 0
    [7.69, 4.07]
    >>> bool((given["mean"].drop("theta_new") == given.loc["mu", "mean"]).all())
    True
    """
    if not np.isfinite(tau) or tau < 0:
        raise UserError(f"tau must be a finite number of at least 0 (got {tau})")
    Z = np.column_stack([np.ones(len(data.yi)), data.X.to_numpy(float)])
    b0, P0 = _normal_prior(priors, Z.shape[1])
    m, V, loglik = _conditional(data, Z, b0, P0, np.array([float(tau)]))
    m, V = m[0], V[0]
    s2 = data.sei**2
    B = s2 / (s2 + tau**2)
    mean = (1 - B) * data.yi + B * (Z @ m)
    var = (1 - B) * s2 + B**2 * np.einsum("kp,pq,kq->k", Z, V, Z)
    names = ["mu", *[f"theta[{s}]" for s in data.study], "theta_new"]
    out = pd.DataFrame(
        {
            "mean": [m[0], *mean, m[0]],
            "sd": np.sqrt([V[0, 0], *var, V[0, 0] + tau**2]),
        },
        index=pd.Index(names, name="parameter"),
    )
    out.attrs["log_likelihood"] = float(loglik[0])
    return out
