"""Prior distributions written as text: read, check, print and hand to PyMC; defaults.

Users write priors as short strings, ``"Normal(0, 4)"`` or ``"HalfNormal(sigma=0.5)"``,
or name one from the literature (``"turner:general"``, ``"rover:logor"``).
:func:`parse_prior` reads such a string into a :class:`Prior` without ``eval``: the
text is parsed with :mod:`ast` and only a call of a known distribution with plain
numbers as arguments is accepted. A :class:`Prior` prints canonically with PyMC's
parameter names, evaluates its density with SciPy and creates the PyMC variable.

PyMC and ``scipy.stats`` are imported inside the functions that use them, so that
``import bayeskit.priors`` stays fast for the CLI, which only needs to check options.

>>> from bayeskit.priors import parse_prior
>>> prior = parse_prior("HalfNormal(0.5)")
>>> print(prior)
HalfNormal(sigma=0.5)
>>> prior.ppf(0.5)  # the prior median of tau
array(0.337...)
"""

from __future__ import annotations

import ast
import difflib
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

import numpy as np

from bayeskit.errors import UserError

__all__ = [
    "DEFAULT_PRIORS",
    "FAMILIES",
    "HalfStudentT",
    "Prior",
    "default_priors",
    "parse_prior",
]

#: Longer texts are refused before parsing: no real prior needs them, and the parser's
#: cost and recursion depth grow with the input.
MAX_PRIOR_LENGTH = 200

_INF = math.inf

#: The range a prior's positive parameters (scales, rates, shapes) and the size of its
#: other parameters must keep to. Beyond it a prior is a typing slip, and double
#: precision fails: ``Normal(0, 1e-300)`` has precision 1e600, which overflows. The range
#: covers the default priors of any data bayeskit accepts (effect sizes and standard
#: errors within 1e-10 to 1e10, see :data:`bayeskit.measures.MAX_EFFECT`).
PARAMETER_RANGE = (1e-12, 1e12)


@dataclass(frozen=True, slots=True)
class _Family:
    """A distribution family: PyMC's name and argument order, and its rules."""

    name: str
    params: tuple[str, ...]
    positive: tuple[str, ...]
    support: Callable[[Mapping[str, float]], tuple[float, float]]
    description: str


def _real_line(_: Mapping[str, float]) -> tuple[float, float]:
    return (-_INF, _INF)


def _half_line(_: Mapping[str, float]) -> tuple[float, float]:
    return (0.0, _INF)


#: The families a prior may name, keyed by their canonical (PyMC) name; parameters are
#: listed in PyMC's positional order, which is also the order positional text is read in.
FAMILIES: Mapping[str, _Family] = MappingProxyType({f.name: f for f in [
    _Family("Normal", ("mu", "sigma"), ("sigma",), _real_line, "normal, mean mu, SD sigma"),
    _Family("HalfNormal", ("sigma",), ("sigma",), _half_line, "|Normal(0, sigma)|"),
    _Family("HalfCauchy", ("beta",), ("beta",), _half_line, "|Cauchy(0, beta)|"),
    _Family("StudentT", ("nu", "mu", "sigma"), ("nu", "sigma"), _real_line,
            "Student t, nu degrees of freedom, location mu, scale sigma"),
    _Family("HalfStudentT", ("nu", "sigma"), ("nu", "sigma"), _half_line,
            "|StudentT(nu, 0, sigma)|"),
    _Family("LogNormal", ("mu", "sigma"), ("sigma",), _half_line,
            "exp(Normal(mu, sigma))"),
    _Family("Uniform", ("lower", "upper"), (), lambda p: (p["lower"], p["upper"]),
            "uniform on [lower, upper]"),
    _Family("Exponential", ("lam",), ("lam",), _half_line, "exponential with rate lam"),
    _Family("Beta", ("alpha", "beta"), ("alpha", "beta"), lambda p: (0.0, 1.0),
            "beta on [0, 1]"),
    _Family("Cauchy", ("alpha", "beta"), ("beta",), _real_line,
            "Cauchy, location alpha, scale beta"),
    _Family("Flat", (), (), _real_line, "improper flat density (only where allowed)"),
    _Family("LogNormalTau2", ("mu", "sigma"), ("sigma",), _half_line,
            "a standard deviation tau whose square is LogNormal(mu, sigma)"),
]})  # fmt: skip
_FAMILY_BY_LOWER = {name.lower(): fam for name, fam in FAMILIES.items()}


def _quantile(
    q: np.ndarray,
    standard: Callable,
    scale: float,
    loc: float,
    upper: float = _INF,
    lower: float = 0.0,
) -> np.ndarray:
    """Return what a frozen ``scipy.stats`` distribution's ``ppf`` returns, without it.

    That is ``standard(q) * scale + loc`` inside (0, 1), the support's ends (``lower *
    scale + loc`` and ``upper * scale + loc``) at 0 and 1, and nan outside.
    """
    inside = (q > 0) & (q < 1)
    with np.errstate(all="ignore"):
        out = standard(np.where(inside, q, 0.5)) * scale + loc
    out = np.where(q == 0, lower * scale + loc, np.where(q == 1, upper * scale + loc, out))
    out = np.where(inside | (q == 0) | (q == 1), out, np.nan)
    return np.asarray(out, dtype=float)


def ndtri(u):
    """Return the standard normal quantile (``scipy.special``, imported when used)."""
    from scipy.special import ndtri as inverse

    return inverse(u)


def log1p(x):
    """Return ``log(1 + x)``, as SciPy computes it."""
    from scipy.special import log1p as function

    return function(x)


def _format_number(value: float) -> str:
    # Whole numbers print without ".0" so that canonical text reads like what people
    # write; everything else uses repr, which round-trips exactly through float().
    if value.is_integer() and abs(value) < 1e16:
        return str(int(value))
    return repr(value)


def _round3(value: float) -> float:
    """Round to 3 significant digits, so that data-scaled priors print readably."""
    return float(f"{value:.3g}")


class HalfStudentT:
    """A Student-t distribution folded at zero, with the frozen-SciPy methods we use.

    SciPy has no half-t distribution; this wrapper gives ``logpdf``, ``pdf``, ``cdf``,
    ``ppf``, ``mean``, ``std`` and ``rvs`` from the t distribution: the density is
    twice the t density on ``[0, inf)``.

    Parameters
    ----------
    nu : float
        Degrees of freedom (> 0).
    sigma : float
        Scale (> 0), as in PyMC's ``HalfStudentT(nu, sigma)``.

    Examples
    --------
    >>> from bayeskit.priors import HalfStudentT
    >>> dist = HalfStudentT(3, 1.0)
    >>> dist.cdf(dist.ppf(0.9))
    array(0.9)
    >>> dist.logpdf(-1.0)
    array(-inf)
    """

    def __init__(self, nu: float, sigma: float):
        from scipy import stats

        self.nu = float(nu)
        self.sigma = float(sigma)
        self._t = stats.t(df=self.nu, scale=self.sigma)

    def logpdf(self, x: Any) -> np.ndarray:
        """Log density; ``-inf`` below zero."""
        x = np.asarray(x, dtype=float)
        return np.where(x < 0, -np.inf, math.log(2.0) + self._t.logpdf(x))

    def pdf(self, x: Any) -> np.ndarray:
        """Density; zero below zero."""
        return np.exp(self.logpdf(x))

    def cdf(self, x: Any) -> np.ndarray:
        """Cumulative distribution function."""
        x = np.asarray(x, dtype=float)
        return np.where(x < 0, 0.0, 2.0 * self._t.cdf(x) - 1.0)

    def ppf(self, q: Any) -> np.ndarray:
        """Quantile function (``nan`` outside [0, 1])."""
        q = np.asarray(q, dtype=float)
        return np.asarray(self._t.ppf((1.0 + q) / 2.0), dtype=float)

    def mean(self) -> float:
        """Return the mean: infinite for ``nu <= 1``."""
        from scipy.special import gammaln

        nu = self.nu
        if nu <= 1:
            return _INF
        log_ratio = gammaln((nu + 1) / 2) - gammaln(nu / 2)
        return float(2 * self.sigma * math.sqrt(nu / math.pi) * math.exp(log_ratio) / (nu - 1))

    def std(self) -> float:
        """Return the SD: infinite for ``1 < nu <= 2``, undefined (nan) for ``nu <= 1``."""
        if self.nu <= 1:
            return math.nan
        if self.nu <= 2:
            return _INF
        # E[X^2] is the same for the folded and the unfolded t distribution.
        second = self.sigma**2 * self.nu / (self.nu - 2)
        return math.sqrt(second - self.mean() ** 2)

    def rvs(self, size: int | tuple[int, ...] | None = None, random_state: Any = None):
        """Random draws: absolute values of t draws."""
        return np.abs(self._t.rvs(size=size, random_state=random_state))


@dataclass(frozen=True)
class Prior:
    """A prior distribution: a family with its parameters under PyMC's names.

    Build one with :func:`parse_prior` (from text) or directly; the parameters are
    checked either way.

    Parameters
    ----------
    family : str
        One of :data:`FAMILIES` (case-insensitive; stored canonically). Besides PyMC's
        families there is ``LogNormalTau2``: a prior on a standard deviation ``tau``
        stated as ``tau**2 ~ LogNormal(mu, sigma)``, as Turner et al. (2015) give theirs.
    params : dict of str to float
        The family's parameters, all of them, by name (e.g. ``{"mu": 0, "sigma": 4}``).
    source : str, optional
        Where the prior comes from (a citation); ignored in comparisons.

    Examples
    --------
    >>> from bayeskit.priors import Prior
    >>> prior = Prior("normal", {"mu": 0, "sigma": 4})
    >>> prior
    Prior(family='Normal', params={'mu': 0.0, 'sigma': 4.0})
    >>> str(prior)
    'Normal(mu=0, sigma=4)'
    >>> prior.logpdf([0.0, 4.0]).round(3)
    array([-2.305, -2.805])
    >>> prior.support, prior.is_positive, prior.is_normal
    ((-inf, inf), False, True)
    """

    family: str
    params: dict[str, float] = field(default_factory=dict)
    source: str = field(default="", compare=False, repr=False)

    def __post_init__(self) -> None:
        spec = _family_spec(self.family)
        given = dict(self.params)
        unknown = [k for k in given if k not in spec.params]
        missing = [k for k in spec.params if k not in given]
        if unknown or missing:
            raise UserError(
                f"{spec.name} takes parameters ({', '.join(spec.params)})"
                + (f"; unknown: {', '.join(map(str, unknown))}" if unknown else "")
                + (f"; missing: {', '.join(missing)}" if missing else "")
            )
        values: dict[str, float] = {}
        for name in spec.params:  # canonical order, so that printing is canonical
            try:
                value = float(given[name])
            except (TypeError, ValueError, OverflowError):
                raise UserError(
                    f"{spec.name}: {name} must be a number, found {given[name]!r}"
                ) from None
            if not math.isfinite(value):
                raise UserError(f"{spec.name}: {name} must be a finite number, found {value}")
            if name in spec.positive and value <= 0:
                raise UserError(f"{spec.name}: {name} must be > 0, found {_format_number(value)}")
            low, high = PARAMETER_RANGE
            if abs(value) > high or (name in spec.positive and value < low):
                bounds = f"{low:g} to {high:g}" if name in spec.positive else f"±{high:g}"
                raise UserError(
                    f"{spec.name}: {name} must lie within {bounds}, found "
                    f"{_format_number(value)} (a typing slip? for data on such a scale, "
                    "change its units)"
                )
            values[name] = value
        if spec.name == "Uniform" and not values["lower"] < values["upper"]:
            raise UserError(
                f"Uniform: lower must be < upper, found lower={_format_number(values['lower'])}"
                f", upper={_format_number(values['upper'])}"
            )
        if spec.name in ("LogNormal", "LogNormalTau2") and abs(values["mu"]) > 700:
            # exp(mu) is the median and must stay a finite double (exp(710) overflows)
            raise UserError(
                f"{spec.name}: mu is on the log scale and must lie within [-700, 700], "
                f"found {_format_number(values['mu'])}"
            )
        # frozen dataclass: canonicalise through object.__setattr__
        object.__setattr__(self, "family", spec.name)
        object.__setattr__(self, "params", values)

    def __hash__(self) -> int:
        return hash((self.family, tuple(self.params.items())))

    def __str__(self) -> str:
        args = ", ".join(f"{k}={_format_number(v)}" for k, v in self.params.items())
        return f"{self.family}({args})"

    @property
    def support(self) -> tuple[float, float]:
        """The (lower, upper) bounds of the support."""
        return FAMILIES[self.family].support(self.params)

    @property
    def is_positive(self) -> bool:
        """Whether the support lies within ``[0, inf)`` (fit for a standard deviation)."""
        return self.support[0] >= 0

    @property
    def is_normal(self) -> bool:
        """Whether the prior is Normal or Flat, so that a normal likelihood stays conjugate."""
        return self.family in ("Normal", "Flat")

    def scipy(self) -> Any:
        """Return the equivalent frozen ``scipy.stats`` distribution.

        ``HalfStudentT`` returns :class:`HalfStudentT` (SciPy has none);
        ``LogNormalTau2`` returns the induced distribution of ``tau``, which is
        ``LogNormal(mu / 2, sigma / 2)`` because ``log tau = log(tau**2) / 2``.

        Raises
        ------
        UserError
            For ``Flat``, which is improper and has no SciPy counterpart.

        Examples
        --------
        >>> from bayeskit.priors import parse_prior
        >>> parse_prior("HalfCauchy(2)").scipy().median()
        np.float64(2.0)
        """
        from scipy import stats

        p = self.params
        match self.family:
            case "Normal":
                return stats.norm(loc=p["mu"], scale=p["sigma"])
            case "HalfNormal":
                return stats.halfnorm(scale=p["sigma"])
            case "HalfCauchy":
                return stats.halfcauchy(scale=p["beta"])
            case "StudentT":
                return stats.t(df=p["nu"], loc=p["mu"], scale=p["sigma"])
            case "HalfStudentT":
                return HalfStudentT(p["nu"], p["sigma"])
            case "LogNormal":
                return stats.lognorm(s=p["sigma"], scale=math.exp(p["mu"]))
            case "Uniform":
                return stats.uniform(loc=p["lower"], scale=p["upper"] - p["lower"])
            case "Exponential":
                return stats.expon(scale=1.0 / p["lam"])
            case "Beta":
                return stats.beta(p["alpha"], p["beta"])
            case "Cauchy":
                return stats.cauchy(loc=p["alpha"], scale=p["beta"])
            case "LogNormalTau2":
                return stats.lognorm(s=p["sigma"] / 2, scale=math.exp(p["mu"] / 2))
            case "Flat":
                raise UserError(
                    "Flat() is an improper prior: it has no probability distribution, "
                    "quantiles or draws; use a proper prior such as Normal(0, 10)"
                )
        raise AssertionError(f"no SciPy counterpart for {self.family}")  # pragma: no cover

    def _tau2(self) -> Any:
        from scipy import stats

        return stats.lognorm(s=self.params["sigma"], scale=math.exp(self.params["mu"]))

    def logpdf(self, x: Any) -> np.ndarray:
        """Log density at ``x`` (array in, array out), ``-inf`` outside the support.

        ``Flat`` gives 0 everywhere, as PyMC does. ``LogNormalTau2`` gives the density
        of ``tau`` by change of variables: ``p_tau(t) = p_tau2(t**2) * 2 t``.

        Examples
        --------
        >>> from bayeskit.priors import parse_prior
        >>> parse_prior("Exponential(2)").logpdf([-1.0, 0.0])
        array([ -inf, 0.693...])
        """
        x = np.asarray(x, dtype=float)
        if self.family == "Flat":
            return np.where(np.isnan(x), np.nan, 0.0)
        if self.family == "LogNormalTau2":
            with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
                inside = self._tau2().logpdf(x**2) + np.log(2.0 * x)
            return np.where(x > 0, inside, np.where(np.isnan(x), np.nan, -np.inf))
        return np.asarray(self.scipy().logpdf(x), dtype=float)

    def cdf(self, x: Any) -> np.ndarray:
        """Cumulative distribution function at ``x`` (for ``LogNormalTau2``, of ``tau``)."""
        x = np.asarray(x, dtype=float)
        if self.family == "LogNormalTau2":
            with np.errstate(over="ignore"):
                return np.asarray(self._tau2().cdf(np.clip(x, 0.0, None) ** 2), dtype=float)
        return np.asarray(self.scipy().cdf(x), dtype=float)

    def ppf(self, q: Any) -> np.ndarray:
        """Quantile function at ``q`` (for ``LogNormalTau2``, quantiles of ``tau``).

        The usual priors on tau are computed here with ``scipy.special`` in the very
        operations ``scipy.stats`` performs (so the numbers are the same to the bit):
        importing ``scipy.stats`` takes most of a second, more than the exact engine.

        Examples
        --------
        >>> from bayeskit.priors import parse_prior
        >>> q = np.array([-0.1, 0.0, 0.3, 0.975, 1.0])
        >>> parse_prior("HalfCauchy(2)").ppf(q)
        array([        nan,  0.        ,  1.0190509 , 50.90339916,         inf])
        >>> all(np.array_equal(parse_prior(t).ppf(q), parse_prior(t).scipy().ppf(q),
        ...                    equal_nan=True)
        ...     for t in ("HalfNormal(0.5)", "HalfCauchy(2)", "Exponential(3)",
        ...               "Uniform(0, 4)", "LogNormal(-1, 0.7)", "Normal(1, 2)"))
        True
        """
        q = np.asarray(q, dtype=float)
        if self.family == "LogNormalTau2":
            p = self.params
            tau2 = _quantile(q, lambda u: np.exp(p["sigma"] * ndtri(u)), math.exp(p["mu"]), 0.0)
            return np.asarray(np.sqrt(tau2), dtype=float)
        fast = self._fast_ppf()
        if fast is not None:
            return _quantile(q, *fast)
        return np.asarray(self.scipy().ppf(q), dtype=float)

    def _fast_ppf(self):
        """Return ``(standard quantile, scale, loc[, upper])`` as ``scipy.stats`` has them."""
        p = self.params
        match self.family:
            case "Normal":
                return ndtri, p["sigma"], p["mu"], _INF, -_INF
            case "HalfNormal":
                return lambda u: ndtri((1 + u) / 2.0), p["sigma"], 0.0
            case "HalfCauchy":
                return lambda u: np.tan(np.pi / 2 * u), p["beta"], 0.0
            case "Exponential":
                return lambda u: -log1p(-u), 1.0 / p["lam"], 0.0
            case "Uniform":
                return lambda u: u, p["upper"] - p["lower"], p["lower"], 1.0
            case "LogNormal":
                return lambda u: np.exp(p["sigma"] * ndtri(u)), math.exp(p["mu"]), 0.0
        return None

    def to_pymc(
        self,
        name: str,
        *,
        dims: str | Sequence[str] | None = None,
        transform_scale: str | None = None,
    ):
        """Create this prior as a PyMC variable in the current model context.

        Parameters
        ----------
        name : str
            The variable's name, e.g. ``"tau"``.
        dims : str or sequence of str, optional
            Named dimensions of the model's ``coords`` (e.g. ``"study"``).
        transform_scale : {None, "sd", "variance"}, optional
            ``None`` or ``"sd"``: the prior is on the variable itself. ``"variance"``:
            the prior is on its square, so ``{name}_sq`` gets this distribution and
            ``name = sqrt({name}_sq)`` is added as a deterministic (requires a prior on
            ``[0, inf)``). ``LogNormalTau2`` always does this, with ``LogNormal``.

        Returns
        -------
        pytensor.tensor.TensorVariable
            The variable called ``name``.

        Examples
        --------
        >>> import pymc as pm
        >>> from bayeskit.priors import parse_prior
        >>> with pm.Model(coords={"study": ["A", "B"]}) as model:
        ...     theta = parse_prior("Normal(0, 2)").to_pymc("theta", dims="study")
        ...     tau = parse_prior("turner:general").to_pymc("tau")
        >>> sorted(model.named_vars)
        ['tau', 'tau_sq', 'theta']
        """
        import pymc as pm

        if transform_scale not in (None, "sd", "variance"):
            raise UserError(
                f"unknown transform_scale {transform_scale!r} for prior {self}; "
                "choose None, 'sd' or 'variance'"
            )
        base = self
        if self.family == "LogNormalTau2":
            if transform_scale == "variance":
                raise UserError(
                    f"{self} is already a prior on tau**2; do not ask for transform_scale="
                    "'variance' again (or write LogNormal(...) with transform_scale='variance')"
                )
            base, transform_scale = Prior("LogNormal", self.params, self.source), "variance"
        if transform_scale == "variance" and not base.is_positive:
            raise UserError(
                f"a prior on a variance must live on [0, inf); {base} does not "
                "(use e.g. HalfNormal, Exponential or LogNormal)"
            )
        if transform_scale == "variance":
            squared = getattr(pm, base.family)(f"{name}_sq", **base.params, dims=dims)
            return pm.Deterministic(name, pm.math.sqrt(squared), dims=dims)
        return getattr(pm, base.family)(name, **base.params, dims=dims)


def _family_spec(name: str, *, context: str = "") -> _Family:
    spec = _FAMILY_BY_LOWER.get(str(name).lower())
    if spec is None:
        close = difflib.get_close_matches(str(name).lower(), _FAMILY_BY_LOWER, n=1)
        hint = f" (did you mean {_FAMILY_BY_LOWER[close[0]].name}?)" if close else ""
        raise UserError(
            f"unknown distribution {name!r}{context}{hint}; known distributions: "
            f"{', '.join(FAMILIES)}; or a named heterogeneity prior such as "
            "'turner:general' or 'rover:logor' (see list_heterogeneity_priors())"
        )
    return spec


# --------------------------------------------------------------------------- parsing

_EXAMPLE = "a distribution call such as 'Normal(0, 4)' or 'HalfNormal(sigma=0.5)'"


def parse_prior(
    text: str | Prior,
    *,
    allow_flat: bool = False,
    positive: bool = False,
    what: str = "prior",
) -> Prior:
    """Read a prior from text such as ``"Normal(0, 4)"``, safely (no ``eval``).

    Accepted: one call of a known family (:data:`FAMILIES`, names case-insensitive)
    with plain numbers as arguments, positional in PyMC's order or by keyword
    (``"Normal(mu=0, sigma=4)"``); a leading minus and scientific notation are fine.
    Names starting with ``turner:`` or ``rover:`` are looked up with
    :func:`heterogeneity_prior`. A :class:`Prior` passes through (and is checked).

    Parameters
    ----------
    text : str or Prior
        The prior, at most 200 characters.
    allow_flat : bool, default False
        Whether the improper ``Flat()`` is acceptable here.
    positive : bool, default False
        Require support within ``[0, inf)``, as for a standard deviation.
    what : str, default "prior"
        What the prior is for (e.g. ``"prior_tau"``), used in error messages.

    Returns
    -------
    Prior

    Raises
    ------
    UserError
        If the text is not such a call, names an unknown family or parameter, has
        too few or too many arguments, or breaks a rule (``sigma > 0``,
        ``lower < upper``, finite numbers...); the message quotes the text.

    See Also
    --------
    heterogeneity_prior : priors for tau from the literature, by name.

    Examples
    --------
    >>> from bayeskit.priors import parse_prior
    >>> parse_prior("StudentT(3, 0, 2.5)")
    Prior(family='StudentT', params={'nu': 3.0, 'mu': 0.0, 'sigma': 2.5})
    >>> parse_prior(" normal(mu=-1e-1, sigma=4) ") == parse_prior("Normal(-0.1, 4)")
    True
    >>> print(parse_prior("turner:general", positive=True))
    LogNormalTau2(mu=-2.56, sigma=1.74)
    >>> parse_prior("Normal(0, -1)")
    Traceback (most recent call last):
    ...
    bayeskit.errors.UserError: invalid prior 'Normal(0, -1)': Normal: sigma must be > 0, found -1
    """
    prior = text if isinstance(text, Prior) else _parse_text(text, what)
    shown = repr(str(text)) if isinstance(text, Prior) else repr(text)
    if prior.family == "Flat" and not allow_flat:
        raise UserError(
            f"{what} {shown} is the improper Flat() prior, which is not allowed here; "
            "use a proper prior such as Normal(0, 10)"
        )
    if positive and not prior.is_positive:
        raise UserError(
            f"{what} {shown} must be a distribution on [0, inf) (a standard deviation); "
            f"{prior.family} has support {prior.support}. Use HalfNormal, HalfCauchy, "
            "HalfStudentT, Exponential, LogNormal, Uniform(0, upper) or a named "
            "heterogeneity prior such as 'rover:logor'"
        )
    return prior


def _parse_text(text: Any, what: str) -> Prior:
    if not isinstance(text, str):
        raise UserError(f"{what} must be text, {_EXAMPLE}; found {type(text).__name__}")
    if len(text) > MAX_PRIOR_LENGTH:
        raise UserError(
            f"{what} {text[:40]!r}... is {len(text)} characters long; a prior is at most "
            f"{MAX_PRIOR_LENGTH}: {_EXAMPLE}"
        )
    source = text.strip()
    if not source:
        raise UserError(f"{what} is empty; write {_EXAMPLE}")
    prefix = source.split(":", 1)[0].strip().lower() if ":" in source else ""
    # the literature catalogues build on Prior, so they are imported when first named
    from bayeskit.priors.catalogues import _NAMED_PREFIXES, heterogeneity_prior

    if prefix in _NAMED_PREFIXES:
        return heterogeneity_prior(source)
    try:
        tree = ast.parse(source, mode="eval")
    except (SyntaxError, ValueError):  # ValueError: null bytes
        raise UserError(f"cannot read {what} {text!r}: write {_EXAMPLE}") from None
    call = tree.body
    if not isinstance(call, ast.Call) or not isinstance(call.func, ast.Name):
        raise UserError(
            f"{what} {text!r} must be exactly one distribution call with numbers as "
            f"arguments, {_EXAMPLE}; expressions, attributes and nested calls are not allowed"
        )
    spec = _family_spec(call.func.id, context=f" in {what} {text!r}")
    signature = f"{spec.name}({', '.join(spec.params)})"
    if len(call.args) > len(spec.params):
        raise UserError(
            f"{what} {text!r} has {len(call.args)} arguments but {signature} takes "
            f"{len(spec.params)}"
        )
    values = {
        name: _number(node, source, text, what)
        for name, node in zip(spec.params, call.args, strict=False)
    }
    by_lower = {p.lower(): p for p in spec.params}
    for keyword in call.keywords:
        name = by_lower.get(keyword.arg.lower()) if keyword.arg is not None else None
        if name is None:
            raise UserError(
                f"{what} {text!r}: {spec.name} has no parameter "
                f"{keyword.arg if keyword.arg is not None else '**'!r}; write {signature}"
            )
        if name in values:
            raise UserError(f"{what} {text!r} gives {name} twice; write {signature}")
        values[name] = _number(keyword.value, source, text, what)
    missing = [p for p in spec.params if p not in values]
    if missing:
        raise UserError(f"{what} {text!r} lacks {', '.join(missing)}; write {signature}")
    try:
        return Prior(spec.name, values)
    except UserError as err:
        raise UserError(f"invalid {what} {text!r}: {err}") from None


def _number(node: ast.expr, source: str, text: str, what: str) -> float:
    written = ast.get_source_segment(source, node) or ast.unparse(node)
    inner, sign = node, 1.0
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub | ast.UAdd):
        inner, sign = node.operand, (-1.0 if isinstance(node.op, ast.USub) else 1.0)
    # bool is an int subclass, and complex literals parse as constants too: refuse both
    if not (isinstance(inner, ast.Constant) and type(inner.value) in (int, float)):
        raise UserError(
            f"{what} {text!r}: arguments must be plain numbers such as 4, -2.5 or 1e-3, "
            f"found {written!r}"
        )
    try:
        value = sign * float(inner.value)
    except OverflowError:  # an integer literal with hundreds of digits
        value = _INF
    if not math.isfinite(value):
        raise UserError(f"{what} {text!r}: {written} is not a finite number")
    return value


# ------------------------------------ citations (the catalogues are in catalogues.py)

TURNER_2015 = (
    "Turner RM, Jackson D, Wei Y, Thompson SG, Higgins JPT (2015). Predictive distributions "
    "for between-study heterogeneity and simple methods for their application in Bayesian "
    "meta-analysis. Stat Med 34(6):984-998. doi:10.1002/sim.6381"
)
ROVER_2021 = (
    "Röver C, Bender R, Dias S, Schmid CH, Schmidli H, Sturtz S, Weber S, Friede T (2021). "
    "On weakly informative prior distributions for the heterogeneity parameter in Bayesian "
    "random-effects meta-analysis. Res Synth Methods 12(4):448-474. doi:10.1002/jrsm.1475"
)

# ------------------------------------------------------------------- default priors


def _n(mu: float, sigma: float) -> Prior:
    return Prior("Normal", {"mu": mu, "sigma": sigma})


_LOG_SCALE = MappingProxyType({
    "mu": _n(0, 4), "tau": Prior("HalfNormal", {"sigma": 0.5}, ROVER_2021),
    "beta": _n(0, 1), "baseline": _n(0, 5),
})  # fmt: skip
_STANDARDISED = MappingProxyType({
    "mu": _n(0, 2), "tau": Prior("HalfNormal", {"sigma": 0.5}, ROVER_2021), "beta": _n(0, 1),
})  # fmt: skip

#: Default priors for measures on a fixed scale, by measure code (see
#: :func:`default_priors` for the reasoning). Raw-scale measures (MD, PREPOST, RD and
#: unknown ones) are not here: their priors depend on the data's units.
DEFAULT_PRIORS: Mapping[str, Mapping[str, Prior]] = MappingProxyType({
    "OR": _LOG_SCALE, "RR": _LOG_SCALE, "PLO": _LOG_SCALE,
    "SMD": _STANDARDISED, "SMCR": _STANDARDISED, "SMCC": _STANDARDISED,
})  # fmt: skip


def default_priors(measure: str | None, yi: Any = None, sei: Any = None) -> dict[str, Prior]:
    """Default priors for ``mu``, ``tau``, ``beta`` (and ``baseline``) for a measure.

    Log-scale binary measures (``OR``, ``RR``, ``PLO``):

    * ``mu ~ Normal(0, 4)``: weakly informative; an odds ratio of exp(4) = 55 is
      one SD out, so any plausible effect is well inside the prior;
    * ``tau ~ HalfNormal(0.5)``: Röver et al. (2021), see :func:`heterogeneity_prior`;
    * ``beta ~ Normal(0, 1)`` per unit of a covariate: doubling or halving the odds
      per unit is one SD (choose covariate units accordingly);
    * ``baseline ~ Normal(0, 5)`` for arm-level models' control-arm logits: wide
      enough for risks from 0.01% to 99.99% within 2 SD.

    Standardised measures (``SMD``, ``SMCR``, ``SMCC``): ``mu ~ Normal(0, 2)`` (an
    SMD of 2 is enormous and one SD out), ``tau ~ HalfNormal(0.5)``, ``beta ~
    Normal(0, 1)``.

    Raw-scale measures (``MD``, ``PREPOST``, ``RD``, or ``measure=None``) have no
    natural unit, so the priors are scaled to the data: with ``s = sqrt(mean(sei**2))``
    the typical within-study standard error, ``mu ~ Normal(0, 10 s)``, ``tau ~
    HalfNormal(s)`` and ``beta ~ Normal(0, 10 s)``, each scale rounded to 3
    significant digits. A between-study SD as large as a typical standard error is
    substantial heterogeneity, and a mean prior ten standard errors wide is vague
    relative to the data. Only the spread of the data sets the scale: centring the
    prior on ``yi`` would use the data twice, so ``yi`` is only checked.

    Parameters
    ----------
    measure : str or None
        Effect measure code (metafor's aliases accepted), or None if unknown.
    yi : array_like, optional
        Effect estimates; checked against ``sei`` if given.
    sei : array_like, optional
        Standard errors; required for raw-scale measures.

    Returns
    -------
    dict of str to Prior
        A new dict; keys ``mu``, ``tau``, ``beta`` and, for binary measures,
        ``baseline``.

    Raises
    ------
    UserError
        For an unknown measure code, or missing or invalid ``sei`` where needed.

    Examples
    --------
    >>> from bayeskit.priors import default_priors
    >>> {k: str(v) for k, v in default_priors("OR").items()}
    {'mu': 'Normal(mu=0, sigma=4)', 'tau': 'HalfNormal(sigma=0.5)',
     'beta': 'Normal(mu=0, sigma=1)', 'baseline': 'Normal(mu=0, sigma=5)'}
    >>> eight_schools_se = [15, 10, 16, 11, 9, 11, 10, 18]
    >>> {k: str(v) for k, v in default_priors("MD", sei=eight_schools_se).items()}
    {'mu': 'Normal(mu=0, sigma=129)', 'tau': 'HalfNormal(sigma=12.9)',
     'beta': 'Normal(mu=0, sigma=129)'}
    """
    if measure is not None:
        from bayeskit.measures import resolve_measure

        measure = resolve_measure(measure).code
        if measure in DEFAULT_PRIORS:
            return dict(DEFAULT_PRIORS[measure])
    label = f"measure {measure}" if measure is not None else "an unknown measure"
    if sei is None:
        raise UserError(
            f"{label} is on the data's own scale, so its default priors need the standard "
            "errors (sei) to set their width; pass sei or give prior_mu and prior_tau"
        )
    try:
        se = np.asarray(sei, dtype=float).ravel()
    except (TypeError, ValueError):
        raise UserError(f"standard errors (sei) must be numbers, found {sei!r}") from None
    if se.size == 0 or not np.all(np.isfinite(se)) or not np.all(se > 0):
        raise UserError(
            f"standard errors (sei) must be finite and > 0 to scale default priors, found {se}"
        )
    if yi is not None and np.size(yi) != se.size:
        raise UserError(f"yi has {np.size(yi)} values but sei has {se.size}; they must match")
    s = float(np.sqrt(np.mean(se**2)))
    wide = _round3(10 * s)
    return {
        "mu": _n(0, wide),
        "tau": Prior("HalfNormal", {"sigma": _round3(s)}),
        "beta": _n(0, wide),
    }
