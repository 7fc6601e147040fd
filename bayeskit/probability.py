"""Posterior probabilities of simple events, ``fit.prob("mu > 0")``.

An event is ``NAME OP NUMBER``: ``NAME`` a scalar quantity of the posterior (``mu``,
``tau``, ``theta_new``, ``beta[<term>]``, ``theta[<study>]``, ``odds_ratio``, ``I2``,
...), ``OP`` one of ``<``, ``<=``, ``>``, ``>=``. The text is matched against one regular
expression and never evaluated, so nothing in it can run. For the exact engine the
probability comes from the exact posterior (a normal mixture over the tau grid); for
MCMC it is the share of draws.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass

import numpy as np

from bayeskit.errors import UserError

#: a longer text is not an event (and is refused before any matching)
MAX_EVENT_CHARS = 200
_NUMBER = r"[-+]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][-+]?\d+)?"
_EVENT = re.compile(
    r"(?P<name>[A-Za-z_][A-Za-z0-9_]*(?:\[[^\[\]<>=]+\])?)\s*"
    rf"(?P<op><=|>=|<|>)\s*(?P<value>{_NUMBER})"
)
RULE = (
    "an event is NAME OP NUMBER with OP one of <, <=, >, >= "
    '(e.g. "mu > 0", "theta_new < -0.2", "theta[A] >= 1", "I2 > 0.5")'
)


@dataclass(frozen=True)
class Event:
    """A parsed event: ``name op value``.

    Examples
    --------
    >>> parse_event(" theta[A] >= -1.5e-1 ")
    Event(name='theta[A]', op='>=', value=-0.15)
    """

    name: str
    op: str
    value: float


def parse_event(text: str) -> Event:
    """Read ``NAME OP NUMBER``; anything else is a UserError stating the rule.

    Examples
    --------
    >>> parse_event("mu > 0")
    Event(name='mu', op='>', value=0.0)
    >>> parse_event("__import__('os').system('ls') > 0")
    Traceback (most recent call last):
    ...
    bayeskit.errors.UserError: cannot read the event "__import__('os').system('ls') > 0": ...
    """
    if not isinstance(text, str):
        raise UserError(f'the event must be text such as "mu > 0" (got {type(text).__name__})')
    if len(text) > MAX_EVENT_CHARS:
        raise UserError(f"the event is {len(text)} characters long; {RULE}")
    match = _EVENT.fullmatch(text.strip())
    if match is None:
        raise UserError(f'cannot read the event "{text}": {RULE}')
    value = float(match["value"])
    if not math.isfinite(value):
        raise UserError(f'the number in "{text}" is not finite: {RULE}')
    name = re.sub(r"\s*\[\s*(.*?)\s*\]", r"[\1]", match["name"])
    return Event(name, match["op"], value)


def share(draws: np.ndarray, op: str, value: float) -> float:
    """Return the share of draws for which ``draw op value`` holds.

    Examples
    --------
    >>> share(np.array([-1.0, 0.0, 1.0, 2.0]), ">=", 0.0)
    0.75
    """
    x = np.asarray(draws, dtype=float).ravel()
    hit = {"<": x < value, "<=": x <= value, ">": x > value, ">=": x >= value}[op]
    return float(np.mean(hit))


def _log(v: float) -> float:
    return math.log(v) if v > 0 else -math.inf


def _monotone_exact(s2: float | None) -> dict:
    """Quantities that are increasing functions of one exact-engine quantity: their inverse.

    ``name -> (base, inverse)``, with ``inverse(value)`` the threshold on ``base``.
    """
    out = {
        "odds_ratio": ("mu", _log),
        "risk_ratio": ("mu", _log),
        "odds_ratio_new": ("theta_new", _log),
        "risk_ratio_new": ("theta_new", _log),
        "tau2": ("tau", lambda v: math.sqrt(v) if v >= 0 else -1.0),
    }
    if s2 is not None:

        def from_i2(v: float) -> float:
            if v <= 0:
                return -1.0 if v < 0 else 0.0
            return math.inf if v >= 1 else math.sqrt(v * s2 / (1 - v))

        out["I2"] = ("tau", from_i2)
        out["H2"] = ("tau", lambda v: from_i2(1 - 1 / v) if v > 0 else -1.0)
    return out


def probability(fit, event: str) -> float:
    """Posterior probability of an event such as ``"mu > 0"`` (see :meth:`bayeskit.Fit.prob`).

    Examples
    --------
    >>> import bayeskit as bk
    >>> fit = bk.fit(bk.data_path("eight_schools.csv"),
    ...              priors={"mu": "Normal(0, 5)", "tau": "HalfCauchy(5)"})
    >>> round(probability(fit, "mu > 0"), 4), round(probability(fit, "I2 > 0.5"), 4)
    (0.9076, 0.0273)
    """
    from bayeskit.heterogeneity import heterogeneity_draws, typical_variance_of

    ev = parse_event(event)
    exact = fit.exact
    if exact is not None:
        mixtures = exact.mixture_names()
        has_tau = exact.pooling != "none"
        if ev.name in mixtures or (ev.name == "tau" and has_tau):
            return exact.prob(ev.name, ev.op, ev.value)
        base, inverse = _monotone_exact(typical_variance_of(fit)).get(ev.name, (None, None))
        if base in mixtures or (base == "tau" and has_tau):
            return exact.prob(base, ev.op, float(inverse(ev.value)))
    draws = _scalar_draws(fit.idata["posterior"]) | heterogeneity_draws(fit)
    if ev.name not in draws:
        names = sorted(draws, key=lambda n: (n.startswith("theta["), n))
        shown = ", ".join(names[:20]) + (", ..." if len(names) > 20 else "")
        raise UserError(f"no quantity {ev.name!r} in this fit; it has {shown}")
    return share(draws[ev.name], ev.op, ev.value)


def _scalar_draws(post) -> dict[str, np.ndarray]:
    """Every scalar component of the posterior's variables, by its summary name."""
    out = {}
    for name, da in post.data_vars.items():
        dims = [d for d in da.dims if d not in ("chain", "draw")]
        if not dims:
            out[str(name)] = da.values
        elif len(dims) == 1:
            for label in da[dims[0]].values:
                out[f"{name}[{label}]"] = da.sel({dims[0]: label}).values
    return out
