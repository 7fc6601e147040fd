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

from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from scipy import optimize, special, stats

from bayeskit.errors import UserError
from bayeskit.families.data import StudyData
from bayeskit.measures import ratio_parameter

GRID = 2000
QUANTILES = (0.025, 0.5, 0.975)
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

    def _mixtures(self) -> dict[str, tuple[np.ndarray, np.ndarray]]:
        """Per quantity: (means, variances) over the grid, each weighted by ``weight``."""
        d, out = self.data, {}
        if self.pooling == "none":
            return {f"theta[{s}]": (self.m[:, i], self.V[:, i, i]) for i, s in enumerate(d.study)}
        Z = np.column_stack([np.ones(len(d.yi)), d.X.to_numpy(float)])
        out["mu"] = (self.m[:, 0], self.V[:, 0, 0])
        for j, term in enumerate(d.terms, start=1):
            out[f"beta[{term}]"] = (self.m[:, j], self.V[:, j, j])
        s2, t2 = d.sei**2, self.tau[:, None] ** 2
        B = s2 / (s2 + t2)  # (grid, k)
        zm = self.m @ Z.T  # (grid, k)
        zVz = np.einsum("kp,npq,kq->nk", Z, self.V, Z)
        mean = (1 - B) * d.yi + B * zm
        var = (1 - B) * s2 + B**2 * zVz
        for i, s in enumerate(d.study):
            out[f"theta[{s}]"] = (mean[:, i], var[:, i])
        out["theta_new"] = (self.m[:, 0], self.V[:, 0, 0] + self.tau**2)
        return out

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
        rows = {}
        mixtures = self._mixtures()
        for name, (mean, var) in mixtures.items():
            rows[name] = _mixture_summary(self.weight, mean, var)
        if self.pooling != "none":
            rows["tau"] = self._tau_summary()
            order = [
                "mu",
                *[k for k in rows if k.startswith("beta[")],
                "tau",
                *[k for k in rows if k.startswith("theta[")],
                "theta_new",
            ]
            rows = {k: rows[k] for k in order} | rows
            rows |= self._binary_scale(mixtures["mu"])
        table = pd.DataFrame.from_dict(
            rows, orient="index", columns=["mean", "sd", "q2.5", "q50", "q97.5"]
        )
        table.index.name = "parameter"
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
        mean, var = self._mixtures()[name]
        qs = np.array(_mixture_quantiles(self.weight, mean, var))
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
            mixtures = self._mixtures()
            if name not in mixtures:
                known = ", ".join(["tau", *mixtures] if self.pooling != "none" else mixtures)
                raise UserError(f"no quantity {name!r} in this fit; it has {known}")
            mean, var = mixtures[name]
            sd = np.sqrt(np.maximum(var, 0.0))
            with np.errstate(divide="ignore", invalid="ignore"):
                z = np.where(sd > 0, (value - mean) / np.where(sd > 0, sd, 1.0), np.inf)
            z = np.where((sd == 0) & (value < mean), -np.inf, z)
            below = float(np.sum(self.weight * stats.norm.cdf(z)))
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

    def _binary_scale(self, mu_mix) -> dict[str, list[float]]:
        measure = self.data.measure
        if measure not in ("OR", "RR"):
            return {}
        mean, var = mu_mix
        qs = np.array(_mixture_quantiles(self.weight, mean, var))
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
        B = s2 / (s2 + self.tau[:, None] ** 2)
        return pd.Series(self.weight @ B, index=self.data.study, name="shrinkage")

    def tau_density(self) -> pd.Series:
        """Posterior density of tau on the grid (for plots)."""
        dens = self.weight / self.du * np.exp(self.priors["tau"].logpdf(self.tau))
        return pd.Series(dens, index=pd.Index(self.tau, name="tau"), name="density")

    def draws(self, n: int = 4000, *, seed: int | None = None, chains: int = 4):
        """Independent draws from the exact posterior, as an ArviZ DataTree.

        Tau is drawn by inverting its posterior CDF, then ``(mu, beta)`` and ``theta``
        from their conditional normals; useful for reports that plot draws.
        """
        from arviz_base import from_dict

        rng = np.random.default_rng(seed)
        per = -(-n // chains)
        d = self.data
        cell = rng.choice(len(self.weight), size=chains * per, p=self.weight)
        tau = self.tau[cell]
        L = np.linalg.cholesky(self.V[cell] + 1e-300 * np.eye(self.V.shape[1]))
        b = self.m[cell] + np.einsum("npq,nq->np", L, rng.standard_normal(self.m[cell].shape))
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
        shaped = {k: v.reshape(chains, per, *v.shape[1:]) for k, v in post.items()}
        dims = {"theta": ["study"], "beta": ["term"]}
        coords = {"study": d.study, "term": d.terms}
        return from_dict(
            {"posterior": shaped}, dims=dims, coords={k: v for k, v in coords.items() if v}
        )


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


def _normal_prior(priors: dict, p: int) -> tuple[np.ndarray, np.ndarray]:
    b0, prec = np.zeros(p), np.zeros(p)
    for j in range(p):
        prior = priors["mu" if j == 0 else "beta"]
        if prior.family == "Normal":
            b0[j], prec[j] = prior.params["mu"], prior.params["sigma"] ** -2
    return b0, np.diag(prec)


def _conditional(data, Z, b0, P0, taus):
    W = 1 / (data.sei**2 + taus[:, None] ** 2)  # (grid, k)
    prec = np.einsum("kp,nk,kq->npq", Z, W, Z) + P0
    rhs = np.einsum("kp,nk,k->np", Z, W, data.yi) + P0 @ b0
    sign, logdet = np.linalg.slogdet(prec)
    if np.any(sign <= 0):
        raise UserError(
            "the regression is not identified: more coefficients than studies "
            "can support, with flat priors; give beta a proper prior"
        )
    V = np.linalg.inv(prec)
    m = np.einsum("npq,nq->np", V, rhs)
    quad = np.sum(W * data.yi**2, axis=1) + b0 @ P0 @ b0 - np.einsum("np,np->n", m, rhs)
    loglik = -0.5 * (np.sum(np.log(1 / W), axis=1) + logdet + quad)
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


def _mixture_summary(w, mean, var) -> list[float]:
    mu = np.sum(w * mean)
    sd = np.sqrt(max(np.sum(w * (var + mean**2)) - mu**2, 0.0))
    return [mu, sd, *_mixture_quantiles(w, mean, var)]


def _mixture_quantiles(w, mean, var, qs=QUANTILES) -> list[float]:
    sd = np.sqrt(np.maximum(var, 1e-300))
    keep = w > 1e-16 * w.max()
    w, mean, sd = w[keep] / w[keep].sum(), mean[keep], sd[keep]
    lo, hi = np.min(mean - 12 * sd), np.max(mean + 12 * sd)
    if np.isclose(lo, hi):
        return [float(mean[0])] * len(qs)

    def cdf(x):
        return np.sum(w * stats.norm.cdf((x - mean) / sd))

    return [optimize.brentq(lambda x, q=q: cdf(x) - q, lo, hi, xtol=1e-12) for q in qs]


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
