"""Heterogeneity priors from the literature, by name: Turner et al. (2015), Röver et al. (2021).

``turner:<outcome>:<comparison>`` (and ``turner:general``) are the predictive
distributions of Turner et al. for log tau^2; ``rover:logor``, ``rover:smd`` the
half-normal priors of Röver et al. for tau. :func:`bayeskit.priors.parse_prior` reads
such names through :func:`heterogeneity_prior`.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import TYPE_CHECKING

from bayeskit.errors import UserError
from bayeskit.priors.prior import ROVER_2021, TURNER_2015, Prior

if TYPE_CHECKING:
    import pandas as pd

#: Turner et al. (2015) outcome types (rows of Table IV), as short names.
TURNER_OUTCOMES: Mapping[str, str] = MappingProxyType({
    "all-cause-mortality": "all-cause mortality",
    "obstetric": "obstetric outcomes",
    "cause-specific-mortality": "cause-specific mortality / major morbidity event / "
                                "composite (mortality or morbidity)",
    "resource-use": "resource use / hospital stay / process",
    "surgical-device": "surgical / device related success / failure",
    "withdrawals": "withdrawals / drop-outs",
    "internal-structure": "internal / structure-related outcomes",
    "general-physical-health": "general physical health indicators",
    "adverse-events": "adverse events",
    "infection": "infection / onset of new disease",
    "signs-symptoms": "signs / symptoms reflecting continuation / end of condition",
    "pain": "pain",
    "quality-of-life": "quality of life / functioning (dichotomized)",
    "mental-health": "mental health indicators",
    "biological-markers": "biological markers (dichotomized)",
    "subjective": "subjective outcomes (various)",
})  # fmt: skip
#: Turner et al. (2015) intervention comparison types (columns of Table IV).
TURNER_COMPARISONS: Mapping[str, str] = MappingProxyType(
    {
        "pharma-vs-placebo": "pharmacological vs placebo / control",
        "pharma-vs-pharma": "pharmacological vs pharmacological",
        "nonpharma-vs-placebo": "non-pharmacological vs placebo / control",
        "nonpharma-vs-pharma": "non-pharmacological vs pharmacological",
        "nonpharma-vs-nonpharma": "non-pharmacological vs non-pharmacological",
    }
)
# Turner et al. (2015), Table IV: (mean, SD) of log(tau^2) for log odds ratios, one row
# per outcome type, columns in the order of TURNER_COMPARISONS. Numbers transcribed
# from the table as given in the R packages bayesmeta 3.4 (R/bayesmeta.R) and rnmamod
# (R/table.tau2.empirical.prior_function.R), whose two transcriptions agree.
_TURNER_TABLE_IV: Mapping[str, tuple[tuple[float, float], ...]] = MappingProxyType({
    "all-cause-mortality": (
        (-3.95, 1.34), (-4.18, 1.41), (-4.17, 1.55), (-2.92, 1.02), (-3.50, 1.26)),
    "obstetric": (
        (-3.52, 1.74), (-3.75, 1.79), (-3.74, 1.91), (-2.49, 1.50), (-3.08, 1.68)),
    "cause-specific-mortality": (
        (-3.71, 1.74), (-3.95, 1.79), (-3.93, 1.91), (-2.68, 1.51), (-3.27, 1.68)),
    "resource-use": (
        (-2.34, 1.74), (-2.58, 1.79), (-2.56, 1.91), (-1.31, 1.50), (-1.90, 1.68)),
    "surgical-device": (
        (-2.14, 1.74), (-2.37, 1.79), (-2.36, 1.91), (-1.11, 1.50), (-1.69, 1.68)),
    "withdrawals": (
        (-2.99, 1.74), (-3.23, 1.79), (-3.21, 1.91), (-1.96, 1.51), (-2.55, 1.68)),
    "internal-structure": (
        (-2.71, 1.74), (-2.94, 1.79), (-2.93, 1.92), (-1.67, 1.51), (-2.26, 1.68)),
    "general-physical-health": (
        (-2.29, 1.53), (-2.53, 1.58), (-2.51, 1.72), (-1.26, 1.25), (-1.85, 1.46)),
    "adverse-events": (
        (-1.87, 1.52), (-2.10, 1.58), (-2.10, 1.71), (-0.84, 1.24), (-1.43, 1.45)),
    "infection": (
        (-2.49, 1.52), (-2.73, 1.58), (-2.71, 1.71), (-1.46, 1.24), (-2.05, 1.45)),
    "signs-symptoms": (
        (-2.06, 1.51), (-2.29, 1.58), (-2.28, 1.71), (-1.03, 1.24), (-1.61, 1.45)),
    "pain": (
        (-1.83, 1.52), (-2.06, 1.58), (-2.05, 1.71), (-0.80, 1.25), (-1.38, 1.45)),
    "quality-of-life": (
        (-2.54, 1.54), (-2.78, 1.60), (-2.77, 1.73), (-1.51, 1.27), (-2.10, 1.47)),
    "mental-health": (
        (-2.12, 1.53), (-2.35, 1.60), (-2.34, 1.72), (-1.09, 1.27), (-1.67, 1.47)),
    "biological-markers": (
        (-1.77, 1.52), (-2.00, 1.58), (-1.99, 1.71), (-0.74, 1.24), (-1.33, 1.45)),
    "subjective": (
        (-2.70, 1.52), (-2.93, 1.58), (-2.92, 1.71), (-1.67, 1.25), (-2.26, 1.45)),
})  # fmt: skip
# The general healthcare setting (no outcome or comparison type given), Turner et al.
# (2015) p. 993; bayesmeta's TurnerEtAlPrior(NA) and rnmamod use the same numbers.
_TURNER_GENERAL = (-2.56, 1.74)


@dataclass(frozen=True, slots=True)
class _Named:
    prior: Prior
    measure: str
    setting: str
    citation: str


def _build_named() -> dict[str, _Named]:
    lor = "log odds ratio"
    cite = TURNER_2015 + ", Table IV"
    named = {
        "turner:general": _Named(
            Prior("LogNormalTau2", dict(zip(("mu", "sigma"), _TURNER_GENERAL, strict=True)), cite),
            lor,
            "general healthcare setting (any outcome, any comparison)",
            TURNER_2015 + ", p. 993",
        ),
    }
    for outcome, row in _TURNER_TABLE_IV.items():
        for comparison, (mu, sigma) in zip(TURNER_COMPARISONS, row, strict=True):
            setting = f"{TURNER_OUTCOMES[outcome]}; {TURNER_COMPARISONS[comparison]}"
            named[f"turner:{outcome}:{comparison}"] = _Named(
                Prior("LogNormalTau2", {"mu": mu, "sigma": sigma}, cite), lor, setting, cite
            )
    # Röver et al. (2021) judge heterogeneity priors by the tau values they make likely;
    # for log odds ratios, tau of 0.1-0.5 is "reasonable", 0.5-1 "fairly high" and above
    # 1 "fairly extreme" (Spiegelhalter, Abrams & Myles 2004, sec. 5.7.3). HalfNormal(0.5)
    # has median 0.34 and puts 95% of its mass below 0.98; HalfNormal(1) is the more
    # conservative (heavier on large tau) alternative they discuss beside it.
    named["rover:logor"] = _Named(
        Prior("HalfNormal", {"sigma": 0.5}, ROVER_2021),
        lor,
        "weakly informative default: P(tau > 1) = 4.6%",
        ROVER_2021,
    )
    named["rover:logor-conservative"] = _Named(
        Prior("HalfNormal", {"sigma": 1.0}, ROVER_2021),
        lor,
        "more conservative: P(tau > 1) = 32%",
        ROVER_2021,
    )
    return named


HETEROGENEITY_PRIORS: Mapping[str, _Named] = MappingProxyType(_build_named())
_NAMED_PREFIXES = {"turner": "turner", "rover": "rover", "roever": "rover", "röver": "rover"}


def heterogeneity_prior(name: str) -> Prior:
    """Return a prior for the between-study SD ``tau`` from the literature, by name.

    Names (case-insensitive; spaces or underscores may stand for hyphens):

    * ``rover:logor``: ``HalfNormal(0.5)`` for log odds ratios (and similar log-scale
      measures). Röver et al. (2021) choose heterogeneity priors by the values of tau
      they make likely; on the log odds ratio scale tau up to 0.5 is "reasonable",
      0.5-1 "fairly high" and beyond 1 "fairly extreme" heterogeneity (Spiegelhalter
      et al. 2004). ``HalfNormal(0.5)`` has median 0.34 and ``P(tau > 1) = 4.6%``: it
      allows substantial heterogeneity but not the extreme values that, with few
      studies, inflate the uncertainty about ``mu`` without support from the data.
    * ``rover:logor-conservative``: ``HalfNormal(1)``, the more conservative scale
      discussed beside it (median 0.67, ``P(tau > 1) = 32%``).
    * ``turner:<outcome>:<comparison>``: the empirical predictive distributions of
      Turner et al. (2015, Table IV) from 14,886 Cochrane meta-analyses of binary
      outcomes, for log odds ratios. They are log-normal priors on ``tau**2``, returned
      as family ``LogNormalTau2``. Outcomes: see :data:`TURNER_OUTCOMES`; comparisons:
      ``pharma-vs-placebo``, ``pharma-vs-pharma``, ``nonpharma-vs-placebo``,
      ``nonpharma-vs-pharma``, ``nonpharma-vs-nonpharma``.
    * ``turner:general``: their prior for a general healthcare setting,
      ``tau**2 ~ LogNormal(-2.56, 1.74)`` (median tau 0.28).

    Parameters
    ----------
    name : str
        The prior's name.

    Returns
    -------
    Prior
        With ``source`` set to the citation.

    Raises
    ------
    UserError
        For an unknown name; the message lists the valid parts.

    See Also
    --------
    list_heterogeneity_priors : every name with its parameters and citation.

    Examples
    --------
    >>> from bayeskit.priors import heterogeneity_prior
    >>> prior = heterogeneity_prior("turner:all-cause-mortality:pharma-vs-placebo")
    >>> print(prior)
    LogNormalTau2(mu=-3.95, sigma=1.34)
    >>> prior.ppf(0.5)  # median tau = sqrt(exp(mu))
    array(0.138...)
    >>> print(heterogeneity_prior("rover:logor"))
    HalfNormal(sigma=0.5)
    """
    if not isinstance(name, str):
        raise UserError(f"a heterogeneity prior name must be text, found {name!r}")
    parts = [re.sub(r"[\s_]+", "-", part.strip().lower()) for part in name.split(":")]
    parts[0] = _NAMED_PREFIXES.get(parts[0], parts[0])
    key = ":".join(parts)
    if key in HETEROGENEITY_PRIORS:
        return HETEROGENEITY_PRIORS[key].prior
    if parts[0] == "turner":
        bad = []
        if len(parts) != 3:
            bad.append("write turner:<outcome>:<comparison> or turner:general")
        else:
            if parts[1] not in TURNER_OUTCOMES:
                bad.append(f"outcome {parts[1]!r} is not one of {', '.join(TURNER_OUTCOMES)}")
            if parts[2] not in TURNER_COMPARISONS:
                bad.append(f"comparison {parts[2]!r} is not one of {', '.join(TURNER_COMPARISONS)}")
        raise UserError(f"unknown Turner et al. (2015) prior {name!r}: {'; '.join(bad)}")
    rover = [k for k in HETEROGENEITY_PRIORS if k.startswith("rover:")]
    raise UserError(
        f"unknown heterogeneity prior {name!r}; known: {', '.join(rover)}, turner:general "
        "and turner:<outcome>:<comparison> (see list_heterogeneity_priors())"
    )


def list_heterogeneity_priors() -> pd.DataFrame:
    """Every named heterogeneity prior, with its family, parameters and citation.

    Returns
    -------
    pandas.DataFrame
        Indexed by ``name``, with columns ``prior`` (canonical text), ``family``,
        ``params`` (``"mu=-2.56, sigma=1.74"``), ``median_tau``, ``measure`` (the effect
        scale it was derived for), ``setting`` and ``citation``.

    Examples
    --------
    >>> from bayeskit.priors import list_heterogeneity_priors
    >>> table = list_heterogeneity_priors()
    >>> row = table.loc["turner:pain:pharma-vs-placebo"]
    >>> print(row["prior"], f"median tau {row['median_tau']:.3f}")
    LogNormalTau2(mu=-1.83, sigma=1.52) median tau 0.401
    >>> len(table)
    83
    """
    import pandas as pd

    rows = [
        {
            "name": key,
            "prior": str(entry.prior),
            "family": entry.prior.family,
            "params": str(entry.prior)[len(entry.prior.family) + 1 : -1],
            "median_tau": float(entry.prior.ppf(0.5)),
            "measure": entry.measure,
            "setting": entry.setting,
            "citation": entry.citation,
        }
        for key, entry in HETEROGENEITY_PRIORS.items()
    ]
    return pd.DataFrame(rows).set_index("name")
