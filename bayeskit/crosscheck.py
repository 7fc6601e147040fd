"""MCMC checked against the exact engine: how far the sampled posterior is from the truth.

For a family with an exact engine (normal-normal), an MCMC fit can be compared with the
exact posterior of the same model: :func:`exact_check` takes the posterior mean and the
2.5% and 97.5% points of ``mu``, ``tau``, ``theta_new`` and every ``beta`` from the draws
and from the exact engine, and reports the largest difference in units of the exact
posterior SD, as a :class:`~bayeskit.diagnostics.Check` named ``exact_agreement``.

Thresholds, relative to Monte Carlo error. With ``n`` effective draws, the Monte Carlo
standard error (MCSE) of a posterior mean is ``1/sqrt(n)`` posterior SDs, and that of a
quantile ``p`` is about ``sqrt(p (1 - p)) / phi(z_p) / sqrt(n)`` SDs for a normal
posterior (2.67 / sqrt(n) at 2.5% and 97.5%), more for heavy tails; the check takes
ArviZ's estimates (``arviz_stats.mcse``, ``method="mean"`` and ``"quantile"``), which
use the draws' own density. With the default 4 x 1000 draws that is 0.05-0.1 SD for
the tails. The verdict is

* ``pass``: every difference is at most :data:`PASS_SD` (0.15) exact posterior SD, or
  within 3 MCSE of that statistic (a short run may differ by chance and still be right);
* ``warn``: at most :data:`WARN_SD` (0.3) SD, or within 5 MCSE;
* ``fail``: otherwise, the sampler has missed part of the posterior (the issue of
  divergences at two or three studies, where the draws put the 97.5% point of ``mu``
  more than a posterior SD away).
"""

from __future__ import annotations

import math

import numpy as np

from bayeskit.diagnostics import Check

#: largest difference from the exact posterior (in its SDs) that passes / warns
PASS_SD = 0.15
WARN_SD = 0.30
#: ... or within this many Monte Carlo standard errors of the statistic
PASS_MCSE = 3.0
WARN_MCSE = 5.0
STATISTICS = {"mean": None, "q2.5": 0.025, "q97.5": 0.975}


def _deviations(fit, exact) -> list[dict]:
    """Return every compared statistic: MCMC and exact value, difference in SDs, MCSE.

    ``exact_check`` keeps them in its ``details["rows"]``.
    """
    import arviz_stats as azs

    truth = exact.summary()
    post = fit.idata.posterior
    rows = []
    sds = [n for n in truth.index if n.startswith("tau_")]  # multilevel variance components
    for name in [
        "mu",
        "tau",
        *sds,
        "theta_new",
        *[n for n in truth.index if n.startswith("beta[")],
    ]:
        if name not in truth.index:
            continue
        var, _, term = name.partition("[")
        if var not in post:
            continue
        draws = post[var]
        if term:
            draws = draws.sel(term=term.rstrip("]"))
        sd = float(truth.loc[name, "sd"])
        if not sd > 0:
            continue
        values = np.asarray(draws).ravel()
        for stat, p in STATISTICS.items():
            mcmc = float(values.mean()) if p is None else float(np.quantile(values, p))
            if p is None:
                mcse = float(azs.mcse(draws, method="mean")) / sd
            else:  # ArviZ's quantile MCSE: from the draws' own density, heavy tails too
                mcse = float(azs.mcse(draws, method="quantile", prob=p)) / sd
            rows.append({
                "parameter": name,
                "statistic": stat,
                "mcmc": mcmc,
                "exact": float(truth.loc[name, stat]),
                "sd_units": abs(mcmc - float(truth.loc[name, stat])) / sd,
                "mcse_sd": mcse,
            })  # fmt: skip
    return rows


def exact_check(fit, exact) -> Check:
    """Compare an MCMC fit with the exact posterior; return the ``exact_agreement`` check.

    Examples
    --------
    >>> import bayeskit as bk
    >>> f = bk.fit(bk.data_path("eight_schools.csv"), method="mcmc", seed=1,
    ...            draws=300, tune=300, chains=2, priors={"tau": "HalfNormal(5)"})
    >>> check = [c for c in f.checks if c.name == "exact_agreement"][0]
    >>> check.verdict, check.value < 0.3
    ('pass', True)
    >>> sorted({row["parameter"] for row in check.details["rows"]})
    ['mu', 'tau', 'theta_new']
    """
    rows = _deviations(fit, exact)
    if not rows:
        return Check("exact_agreement", "pass", math.nan, "Nothing to compare.", {})

    def level(row) -> str:
        d, e = row["sd_units"], row["mcse_sd"]
        if d <= max(PASS_SD, PASS_MCSE * e):
            return "pass"
        return "warn" if d <= max(WARN_SD, WARN_MCSE * e) else "fail"

    for row in rows:
        row["verdict"] = level(row)
    worst = max(rows, key=lambda r: r["sd_units"])
    verdict = max((r["verdict"] for r in rows), key=("pass", "warn", "fail").index)
    where = f"{worst['statistic']} of {worst['parameter']}"
    text = (
        f"MCMC agrees with the exact posterior: the largest difference is "
        f"{worst['sd_units']:.3f} posterior SD ({where})."
    )
    if verdict != "pass":
        bad = max((r for r in rows if r["verdict"] == verdict), key=lambda r: r["sd_units"])
        text = (
            f"MCMC differs from the exact posterior by {bad['sd_units']:.2f} posterior SD "
            f"({bad['statistic']} of {bad['parameter']}: {bad['mcmc']:.4g} against "
            f"{bad['exact']:.4g}), more than Monte Carlo error explains: the draws missed "
            "part of the posterior. The exact engine answers this model: use it "
            "(--method exact, or the default --method auto)."
        )
    details = {
        "max_sd": worst["sd_units"],
        "thresholds": {"pass_sd": PASS_SD, "warn_sd": WARN_SD, "pass_mcse": PASS_MCSE,
                       "warn_mcse": WARN_MCSE},
        "rows": rows,
    }  # fmt: skip
    return Check("exact_agreement", verdict, worst["sd_units"], text, details)
