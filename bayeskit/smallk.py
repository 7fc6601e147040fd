"""Few studies: how much the prior on tau drives the answer, and what other priors give.

With five studies or fewer the data say little about the between-study SD ``tau``, so
its prior shapes the posterior of tau and, through it, the width of the intervals for
``mu`` and for a new study's effect ``theta_new`` (Röver et al. 2021, Res Synth Methods
12:448). :func:`small_k_table` measures this and refits under the heterogeneity priors
of the literature that :mod:`bayeskit.priors` catalogues; the report turns the table
into one sentence and a table (:mod:`bayeskit.report.text`).

How much the prior drives the answer is the *overlap coefficient* of the prior and
posterior densities of tau, ``OVL = integral of min(prior, posterior)``: 1 when the data
did not move the prior at all, 0 when they moved it completely. The exact engine's grid
is uniform in the prior's CDF, where the prior density is 1 and a cell of width ``du``
holding posterior mass ``w`` has posterior density ``w / du``, so ``OVL = sum min(w,
du)`` exactly; from MCMC draws the same sum is taken over 50 bins of the prior CDF.

The alternative priors, by the scale of the effect measure (the catalogued priors were
derived for these scales only):

* log odds and risk ratios (``OR``, ``RR``, ``PLO``): ``rover:logor``
  (``HalfNormal(0.5)``), ``rover:logor-conservative`` (``HalfNormal(1)``) and
  ``turner:general`` (Turner et al. 2015, ``tau^2 ~ LogNormal(-2.56, 1.74)``);
* standardised mean differences (``SMD``, ``SMCR``, ``SMCC``): the two Röver priors;
* raw scales (``MD``, ``RD``, ...): none, since a prior on tau in raw units depends on
  the units.

They are computed with the exact engine where it applies (milliseconds each); where it
does not, only the fit's own row is given.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from bayeskit.errors import UserError

#: the report adds the guidance at this many studies or fewer
MAX_STUDIES = 5
ALTERNATIVES = {
    "log": ("rover:logor", "rover:logor-conservative", "turner:general"),
    "standardised": ("rover:logor", "rover:logor-conservative"),
}
_SCALES = {"OR": "log", "RR": "log", "PLO": "log", "SMD": "standardised",
           "SMCR": "standardised", "SMCC": "standardised"}  # fmt: skip
COLUMNS = ["prior", "tau_prior", "tau_overlap", "mu_q50", "mu_q2.5", "mu_q97.5",
           "theta_new_q50", "theta_new_q2.5", "theta_new_q97.5"]  # fmt: skip


def tau_overlap_exact(post) -> float:
    """Overlap coefficient of the prior and posterior densities of tau (exact engine).

    Examples
    --------
    >>> import bayeskit as bk
    >>> f = bk.fit(bk.data_path("eight_schools.csv"), method="exact")
    >>> round(tau_overlap_exact(f.exact), 2)
    0.69
    """
    return float(np.sum(np.minimum(post.weight, post.du)))


def tau_overlap_draws(tau_draws, prior, bins: int = 50) -> float:
    """Overlap coefficient of the prior and posterior of tau, from posterior draws.

    Examples
    --------
    >>> from bayeskit.priors import parse_prior
    >>> prior = parse_prior("HalfNormal(1)")
    >>> draws = prior.scipy().rvs(size=20000, random_state=1)  # posterior = prior
    >>> tau_overlap_draws(draws, prior) > 0.95
    True
    """
    u = np.asarray(prior.cdf(np.ravel(tau_draws)), dtype=float)
    counts, _ = np.histogram(u, bins=bins, range=(0.0, 1.0))
    return float(np.sum(np.minimum(counts / max(len(u), 1), 1.0 / bins)))


def _row(label: str, prior, overlap: float, summary: pd.DataFrame) -> dict:
    row = {"prior": label, "tau_prior": str(prior), "tau_overlap": overlap}
    for name in ("mu", "theta_new"):
        for q in ("q50", "q2.5", "q97.5"):
            row[f"{name}_{q}"] = float(summary.loc[name, q]) if name in summary.index else np.nan
    return row


def small_k_table(fit) -> pd.DataFrame | None:
    """Return the small-k table of a fit with at most :data:`MAX_STUDIES` studies, or None.

    One row for the fit as it is (``prior`` = ``as fitted``) and one per alternative
    heterogeneity prior that suits the effect measure, each with the overlap of the tau
    prior and posterior and the median and 95% interval of ``mu`` and ``theta_new``.
    None for more studies, or for a fit without a pooled ``mu`` and a ``tau``.

    Examples
    --------
    >>> import bayeskit as bk
    >>> ev = bk.load_evidence(bk.data_path("eight_schools.csv"))
    >>> f = bk.fit(ev[ev["study"].isin(["A", "B", "C"])], priors={"tau": "HalfCauchy(5)"}, seed=1)
    >>> table = small_k_table(f)
    >>> table["prior"].tolist(), round(float(table["tau_overlap"].iloc[0]), 2)
    (['as fitted'], 0.9)
    >>> small_k_table(bk.fit(ev)) is None  # eight studies
    True
    """
    from bayeskit.families import get_family
    from bayeskit.priors import heterogeneity_prior

    k = len(fit.data.study) if hasattr(fit.data, "study") else None
    if not isinstance(k, int) or k > MAX_STUDIES or "tau" not in fit.priors:
        return None
    if fit.settings.get("pooling", "partial") != "partial":
        return None
    summary = fit.summary()
    if "mu" not in summary.index or "tau" not in summary.index:
        return None
    fam = get_family(fit.family)
    if fit.exact is not None:
        overlap = tau_overlap_exact(fit.exact)
    else:
        overlap = tau_overlap_draws(fit.idata.posterior["tau"].values, fit.priors["tau"])
    rows = [_row("as fitted", fit.priors["tau"], overlap, summary)]
    scale = _SCALES.get(str(getattr(fit.data, "measure", None) or "").upper())
    if fam.exact is not None and scale is not None:
        options = fam.resolve(fit.data, fam.options(_options(fit, fam)))
        for name in ALTERNATIVES[scale]:
            prior = heterogeneity_prior(name)
            try:
                post = fam.exact(fit.data, fit.priors | {"tau": prior}, options)
            except UserError:  # priors the exact engine does not take: no refits
                break
            rows.append(_row(name, prior, tau_overlap_exact(post), post.summary()))
    return pd.DataFrame(rows, columns=COLUMNS)


def _options(fit, fam) -> dict:
    """Return the family options recorded in the fit's settings."""
    fields = fam.options_model.model_fields
    return {k: v for k, v in fit.settings.items() if k in fields and k != "parametrization"}
