"""The pointwise log-likelihood behind PSIS-LOO: leave one study out.

PSIS-LOO on each study's likelihood given its own effect ``theta`` answers "how well is
this study's estimate predicted once its own effect is known", and its Pareto k exceeds
0.7 on almost every meta-analysis (each ``theta`` is pinned down by its one study).
The question users ask is how well the others predict a left-out study, which needs the
study's likelihood with its random effects integrated out.
:func:`study_log_likelihood` asks the fit's family for that
(:meth:`bayeskit.families.Family.marginal_log_likelihood`) and puts it in the
``log_likelihood`` group, labelled; a family without one keeps the model's conditional
log-likelihood, labelled as such.
"""

from __future__ import annotations

from typing import Any

from bayeskit.families._marginal import CONDITIONAL, LEAVE_ONE_STUDY_OUT

__all__ = ["CONDITIONAL", "LEAVE_ONE_STUDY_OUT", "loo_kind", "study_log_likelihood"]


def study_log_likelihood(family, prepared, idata, priors=None):
    """Replace the ``log_likelihood`` group of ``idata`` by the family's per-study one.

    Parameters
    ----------
    family : bayeskit.families.Family
    prepared
        The data as the model saw it.
    idata : xarray.DataTree
        An MCMC fit with ``posterior`` and (PyMC's conditional) ``log_likelihood``.
    priors : dict, optional
        The fit's priors.

    Returns
    -------
    xarray.DataTree
        The same tree, its ``log_likelihood`` group holding one variable per
        ``(chain, draw, study)`` with attributes ``loo`` and ``loo_note``.

    Examples
    --------
    >>> import bayeskit as bk
    >>> fit = bk.fit(bk.data_path("eight_schools.csv"), draws=200, tune=200, chains=2,
    ...              seed=1, priors={"mu": "Normal(0, 5)", "tau": "HalfCauchy(5)"})
    >>> loo_kind(fit.idata), fit.idata.log_likelihood["y"].dims
    ('leave-one-study-out', ('chain', 'draw', 'study'))
    """
    if "posterior" not in idata.children:
        return idata
    group = family.marginal_log_likelihood(prepared, idata.posterior.to_dataset(), priors)
    if group is None:
        if "log_likelihood" not in idata.children:
            return idata
        group = idata.log_likelihood.to_dataset()
        group.attrs.update(loo=CONDITIONAL, loo_note=family.conditional_loo_note)
        for name in group.data_vars:
            group[name].attrs["loo"] = CONDITIONAL
    idata["log_likelihood"] = group
    return idata


def loo_kind(tree: Any) -> str:
    """Return what a fit's log-likelihood is: ``leave-one-study-out`` or ``conditional``.

    Fits written before leave-one-study-out LOO have no label: their log-likelihood was
    the conditional one.

    Examples
    --------
    >>> import numpy as np
    >>> from arviz_base import from_dict
    >>> loo_kind(from_dict({"posterior": {"mu": np.zeros((1, 5))},
    ...                     "log_likelihood": {"y": np.zeros((1, 5, 2))}}))
    'conditional'
    """
    if "log_likelihood" not in tree.children:
        return CONDITIONAL
    return str(tree.log_likelihood.attrs.get("loo", CONDITIONAL))


def loo_note(tree: Any) -> str:
    """Return the sentence saying what a fit's LOO log-likelihood is (or nothing)."""
    if "log_likelihood" not in tree.children:
        return ""
    return str(tree.log_likelihood.attrs.get("loo_note", ""))
