"""The small-study check: a meta-regression of the effects on their standard errors.

Small studies reporting larger effects than large ones (publication bias, or small
studies that differ) show as a slope of ``yi`` on ``sei`` (Egger et al. 1997, BMJ
315:629; as a random-effects meta-regression, Sterne & Egger 2005, in *Publication Bias
in Meta-Analysis*, ch. 6). Here the slope is a posterior, not a p-value: the fit's own
model with ``sei`` added as a covariate, computed by the exact engine with the fit's
priors (the slope takes the prior of the meta-regression coefficients ``beta``).
``mu_at_sei_0`` is the intercept: the effect expected in a study of infinite precision.
"""

from __future__ import annotations

import pandas as pd

from bayeskit.errors import UserError

#: fewer studies cannot support a slope and a heterogeneity at once
MIN_STUDIES = 3


def small_study_table(fit) -> pd.DataFrame | None:
    """Posterior of the slope on ``sei`` and of the effect at ``sei = 0``, with P(slope > 0).

    None where the check does not apply: a family without study-level standard errors
    (:attr:`bayeskit.families.Family.funnel`), no partial pooling, fewer than
    :data:`MIN_STUDIES` studies, or priors the exact engine does not take.

    Examples
    --------
    >>> import bayeskit as bk
    >>> fit = bk.fit(bk.data_path("eight_schools.csv"),
    ...              priors={"mu": "Normal(0, 5)", "tau": "HalfCauchy(5)"})
    >>> table = small_study_table(fit)
    >>> table.index.tolist(), list(table.columns)
    (['beta[sei]', 'mu_at_sei_0'], ['mean', 'sd', 'q2.5', 'q50', 'q97.5', 'prob_positive'])
    >>> round(float(table.loc["beta[sei]", "prob_positive"]), 2)
    0.9
    """
    from bayeskit.exact import exact_posterior
    from bayeskit.families import get_family
    from bayeskit.families.data import StudyData

    fam = get_family(fit.family)
    d = fit.data
    if not fam.funnel or not isinstance(d, StudyData) or len(d.study) < MIN_STUDIES:
        return None
    if fit.settings.get("pooling", "partial") != "partial" or "sei" in d.X.columns:
        return None
    X = d.X.copy()
    X["sei"] = d.sei
    data = StudyData(d.study, d.yi, d.sei, X, d.measure, d.table)
    try:
        post = exact_posterior(data, fit.priors, pooling="partial")
    except UserError:  # priors the exact engine does not take: no check
        return None
    s = post.summary()
    table = s.loc[["beta[sei]", "mu"]].rename(index={"mu": "mu_at_sei_0"})
    table["prob_positive"] = [post.prob("beta[sei]", ">", 0.0), post.prob("mu", ">", 0.0)]
    table.index.name = "parameter"
    return table
