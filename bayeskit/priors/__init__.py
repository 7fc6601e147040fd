"""Prior distributions: the :class:`Prior` type and its parser, and literature catalogues.

:mod:`bayeskit.priors.prior` reads, checks and prints priors written as text and holds
the measure-dependent default priors; :mod:`bayeskit.priors.catalogues` names the
heterogeneity priors of Turner et al. (2015) and Röver et al. (2021). Every name is
importable from ``bayeskit.priors``, as before the split.

>>> from bayeskit.priors import parse_prior
>>> print(parse_prior("rover:logor"))
HalfNormal(sigma=0.5)
"""

from __future__ import annotations

from bayeskit.priors.catalogues import (
    HETEROGENEITY_PRIORS,
    TURNER_COMPARISONS,
    TURNER_OUTCOMES,
    heterogeneity_prior,
    list_heterogeneity_priors,
)
from bayeskit.priors.prior import (
    DEFAULT_PRIORS,
    FAMILIES,
    MAX_PRIOR_LENGTH,
    ROVER_2021,
    TURNER_2015,
    HalfStudentT,
    Prior,
    default_priors,
    parse_prior,
)

__all__ = [
    "DEFAULT_PRIORS",
    "FAMILIES",
    "HETEROGENEITY_PRIORS",
    "MAX_PRIOR_LENGTH",
    "ROVER_2021",
    "TURNER_2015",
    "TURNER_COMPARISONS",
    "TURNER_OUTCOMES",
    "HalfStudentT",
    "Prior",
    "default_priors",
    "heterogeneity_prior",
    "list_heterogeneity_priors",
    "parse_prior",
]
