"""Publication bias: the pooled effect unadjusted and adjusted by three bias models.

:func:`publication_bias` sets the random-effects estimate of ``mu`` beside

* **PET** (precision-effect test): the meta-regression of ``yi`` on ``sei``, whose
  intercept is the effect expected in a study of infinite precision (Stanley &
  Doucouliagos 2014, Res Synth Methods 5:60; Egger et al. 1997, BMJ 315:629);
* **PEESE** (precision-effect estimate with standard error): the meta-regression on
  ``sei^2``, whose intercept is less biased than PET's when there is a true effect
  (same references);
* **selection**: the step-function selection model (Vevea & Hedges 1995), the
  ``normal-selection`` family (:mod:`bayeskit.families.normal_selection`).

The unadjusted model and the meta-regressions are computed by the exact engine
(milliseconds); the selection model is sampled by MCMC. Every model has the same priors
on ``mu`` and ``tau``, so the estimates differ only by how each model treats bias. The
slope of PET and PEESE gets, unless a ``beta`` prior is given, ``Normal(0, s_mu /
max(sei))`` and ``Normal(0, s_mu / max(sei)^2)`` with ``s_mu`` the scale of the ``mu``
prior: a priori the bias of the least precise study is as uncertain as the effect
itself (Flat when the ``mu`` prior is Flat).

With a selection model of one cutpoint the table adds each model's prior and posterior
probability (marginal likelihoods by quadrature, :mod:`bayeskit.bias_weights`, with
RoBMA-PSMA's prior probabilities) and their model average.

With few studies the data say little about bias: each adjusted estimate then rests on
its model's assumptions (a slope, or selection weights whose posterior stays close to
its prior), which the table's ``note`` says in words.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

from bayeskit.errors import UserError

#: fewer studies than this: the note says the data cannot inform the bias models
FEW_STUDIES = 10
COLUMNS = ["mean", "sd", "q2.5", "q50", "q97.5"]
UNADJUSTED = "random effects (unadjusted)"
PET = "PET (mu at sei = 0)"
PEESE = "PEESE (mu at sei = 0)"


def publication_bias(
    data,
    *,
    measure: str | None = None,
    priors: Mapping[str, Any] | None = None,
    steps: Sequence[float] | None = None,
    alternative: str = "greater",
    selection: bool = True,
    draws: int = 1000,
    tune: int = 1000,
    chains: int = 4,
    seed: int | None = None,
) -> pd.DataFrame:
    """Estimate the pooled effect unadjusted and adjusted for publication bias, per model.

    Parameters
    ----------
    data : Fit, DataFrame, path or list of paths
        A ``normal-normal`` or ``normal-selection`` fit (its data and its ``mu`` and
        ``tau`` priors are used, and a selection fit is its own selection row), or
        study-level evidence as :func:`bayeskit.fit` takes it.
    measure : str, optional
        Effect measure, for arm-level evidence.
    priors : dict, optional
        Priors for ``mu`` and ``tau`` (defaults: the measure's, as ``normal-normal``
        has them) and ``beta`` (both slopes; default: see the module).
    steps, alternative
        The selection model's cutpoints and direction (the ``normal-selection``
        options; default ``[0.025]``, ``"greater"``).
    selection : bool
        Fit the selection model (MCMC, seconds to a minute) when ``data`` is not a
        selection fit. Default True.
    draws, tune, chains, seed
        The selection model's sampler settings.

    Returns
    -------
    DataFrame
        Index ``model``; columns ``mean``, ``sd``, ``q2.5``, ``q50``, ``q97.5`` of the
        (adjusted) ``mu``, ``shift`` (the mean minus the unadjusted mean),
        ``bias_parameter`` (posterior mean of the PET or PEESE slope; of the selection
        model's weight ``omega`` of the least significant interval), ``bias_prior``
        (its prior) and ``engine``; with the selection model of one cutpoint and proper
        priors also ``prior_weight`` and ``posterior_weight`` and a last row, the
        model average (mean and SD of the mixture, quantiles from its draws).
        ``attrs``: ``k`` and ``note`` (what the data can say about bias).

    Examples
    --------
    >>> import bayeskit as bk
    >>> table = bk.publication_bias(bk.data_path("eight_schools.csv"), selection=False)
    >>> table.index.tolist()
    ['random effects (unadjusted)', 'PET (mu at sei = 0)', 'PEESE (mu at sei = 0)']
    >>> table["mean"].round(1).tolist()
    [7.9, -1.4, 3.9]
    >>> print(table.attrs["note"])  # doctest: +ELLIPSIS
    With 8 studies the data say little about publication bias: ...
    """
    from bayeskit.families import get_family
    from bayeskit.families.normal_selection import DEFAULT_STEPS, NormalSelection

    fit, prepared, chosen = _inputs(data, measure, priors)
    steps = list(DEFAULT_STEPS if steps is None else steps)
    exact = {UNADJUSTED: _regression(prepared, chosen, None)}
    for name, power in ((PET, 1), (PEESE, 2)):
        exact[name] = _regression(prepared, chosen, power)
    rows = {name: row for name, (row, _, _) in exact.items()}
    sel_fit = None
    if fit is not None and isinstance(get_family(fit.family), NormalSelection):
        sel_fit = fit
    elif selection:
        import bayeskit as bk

        sel_fit = bk.fit(
            prepared.table, NormalSelection.name, measure=prepared.measure,
            priors={k: chosen[k] for k in ("mu", "tau")},
            model_options={"steps": steps, "alternative": alternative},
            draws=draws, tune=tune, chains=chains, seed=seed,
        )  # fmt: skip
    if sel_fit is not None:
        label, rows[label] = _selection_row(sel_fit)
    table = pd.DataFrame.from_dict(rows, orient="index")
    table.index.name = "model"
    table.insert(5, "shift", table["mean"] - table.loc[UNADJUSTED, "mean"])
    k = len(prepared.study)
    table.attrs["k"] = k
    table.attrs["note"] = note(k)
    if sel_fit is not None:
        table = _model_average(table, prepared, chosen, exact, sel_fit)
    return table


def run_table(fit) -> pd.DataFrame | None:
    """``publication_bias.csv`` of a run: the table of a selection fit, None for others.

    Only a fit of the selection model gets it: its own posterior is the selection row,
    and the other rows cost milliseconds (exact engine). A ``normal-normal`` run has the
    small-study check instead (:mod:`bayeskit.smallstudy`), so that a plain fit does not
    pay for an MCMC selection model it did not ask for.

    Examples
    --------
    >>> import bayeskit as bk
    >>> print(run_table(bk.fit(bk.data_path("eight_schools.csv"))))
    None
    """
    from bayeskit.families import get_family
    from bayeskit.families.normal_selection import NormalSelection

    if not isinstance(get_family(fit.family), NormalSelection):
        return None
    return publication_bias(fit)


def note(k: int) -> str:
    """Say what ``k`` studies can tell about publication bias.

    Examples
    --------
    >>> note(5)[:46]
    'With 5 studies the data say little about publi'
    """
    if k < FEW_STUDIES:
        return (
            f"With {k} studies the data say little about publication bias: a slope on the "
            "standard error, or the selection weights, are barely informed (their posterior "
            "stays close to their prior), so each adjusted estimate rests on its model's "
            "assumptions rather than on evidence of bias."
        )
    return (
        f"{k} studies. The adjusted estimates answer 'what if small or non-significant "
        "studies are missing', each under its own model; where they disagree, the bias "
        "is not pinned down by the data."
    )


def _inputs(data, measure, priors):
    """Return (fit or None, study-level data, priors for mu, tau and beta)."""
    from bayeskit.families import get_family
    from bayeskit.families.data import StudyData, study_data
    from bayeskit.families.normal_normal import NormalNormal
    from bayeskit.fitting import Fit, _effects_input

    given = dict(priors or {})
    nn = get_family(NormalNormal.name)
    if isinstance(data, Fit):
        fit, prepared = data, data.data
        if not isinstance(prepared, StudyData) or not get_family(fit.family).funnel:
            raise UserError(
                f"publication_bias needs study-level effects (yi, sei): a normal-normal or "
                f"normal-selection fit, not {fit.family}"
            )
        if fit.settings.get("pooling", "partial") != "partial" or prepared.X.shape[1]:
            raise UserError(
                "publication_bias needs a fit with partial pooling and no covariates "
                "(the bias models add their own)"
            )
        given = {k: fit.priors[k] for k in ("mu", "tau")} | given
    else:
        fit = None
        data, measure = _effects_input(nn, data, measure)
        prepared = study_data(_table(data), measure=measure)
    if len(prepared.study) < 3:
        raise UserError(
            f"publication_bias needs at least 3 studies (got {len(prepared.study)}): a slope "
            "and a heterogeneity cannot both be estimated from fewer"
        )
    chosen = nn.resolve_priors(prepared, {k: v for k, v in given.items() if k != "beta"})
    chosen.pop("beta", None)
    if "beta" in given:
        chosen["beta"] = nn.parse_prior("beta", given["beta"])
    return fit, prepared, chosen


def _table(data):
    from bayeskit.families._random_effects import evidence_table

    return evidence_table(data)


def _slope_prior(chosen: dict, sei: np.ndarray, power: int):
    """Return the slope's prior: the bias of the least precise study has the scale of mu's prior."""
    from bayeskit.priors import parse_prior

    if "beta" in chosen:
        return chosen["beta"]
    mu = chosen["mu"]
    if mu.family == "Flat":
        return mu
    if mu.family != "Normal":
        raise UserError(f"the exact engine needs a Normal (or Flat) prior on mu; got {mu}")
    scale = float(mu.params["sigma"]) / float(np.max(sei)) ** power
    return parse_prior(f"Normal(0, {scale:.4g})")


def _regression(prepared, chosen: dict, power: int | None):
    """``mu`` of the random-effects model, or the intercept of PET (1) or PEESE (2).

    Returns the table's row, the exact posterior and its priors.
    """
    from bayeskit.exact import exact_posterior
    from bayeskit.families.data import StudyData

    X = pd.DataFrame(index=range(len(prepared.study)))
    priors = {"mu": chosen["mu"], "tau": chosen["tau"]}
    if power is not None:
        X["bias"] = np.asarray(prepared.sei, float) ** power
        priors["beta"] = _slope_prior(chosen, prepared.sei, power)
    d = StudyData(prepared.study, prepared.yi, prepared.sei, X, prepared.measure, prepared.table)
    post = exact_posterior(d, priors, pooling="partial")
    summary = post.summary()
    row = summary.loc["mu", COLUMNS].to_dict()
    row["bias_parameter"] = (
        float(summary.loc["beta[bias]", "mean"]) if power is not None else np.nan
    )
    row["bias_prior"] = str(priors["beta"]) if power is not None else ""
    row["engine"] = "exact"
    return row, post, priors


def _selection_row(fit) -> tuple[str, dict]:
    summary = fit.summary()
    row = summary.loc["mu", COLUMNS].to_dict()
    omega = [i for i in summary.index if i.startswith("omega[")]
    row["bias_parameter"] = float(summary.loc[omega[-1], "mean"]) if omega else np.nan
    row["bias_prior"] = f"cumulative Dirichlet({', '.join(['1'] * (len(omega) + 1))})"
    row["engine"] = fit.method
    steps = ", ".join(f"{s:g}" for s in fit.settings.get("steps", []))
    return f"selection: step function at p = {steps} ({fit.settings['alternative']})", row


def _model_average(table, prepared, chosen, exact, sel_fit) -> pd.DataFrame:
    """Add the models' prior and posterior weights and their average (one cutpoint only).

    The weights come from each model's marginal likelihood by quadrature
    (:mod:`bayeskit.bias_weights`); the average's interval from draws of each model's
    posterior in proportion to its weight.
    """
    from bayeskit.bias_weights import PRIOR_WEIGHTS, model_log_evidence, posterior_weights

    steps, alternative = sel_fit.settings["steps"], sel_fit.settings["alternative"]
    priors = {"mu": chosen["mu"], "tau": chosen["tau"]}
    priors |= {"pet": exact[PET][2]["beta"], "peese": exact[PEESE][2]["beta"]}
    if len(steps) != 1 or any(p.family == "Flat" for p in priors.values()):
        table.attrs["note"] += (
            " No model weights: they need proper priors and a selection model with one cutpoint."
        )
        return table
    summaries = {"none": exact[UNADJUSTED][1].summary(), "selection": sel_fit.summary()}
    for key, name in (("pet", PET), ("peese", PEESE)):
        summaries[key] = exact[name][1].summary().rename(index={"beta[bias]": "slope"})
    weights = posterior_weights(model_log_evidence(prepared, priors, summaries, steps, alternative))
    keys = dict(zip(table.index, ["none", "pet", "peese", "selection"], strict=True))
    table["prior_weight"] = [PRIOR_WEIGHTS[keys[i]] for i in table.index]
    table["posterior_weight"] = [weights[keys[i]] for i in table.index]
    w = table["posterior_weight"].to_numpy()
    mean = float(np.sum(w * table["mean"]))
    sd = float(np.sqrt(np.sum(w * (table["sd"] ** 2 + table["mean"] ** 2)) - mean**2))
    rng = np.random.default_rng(0)
    counts = rng.multinomial(8000, w)
    mu = sel_fit.idata.posterior["mu"].to_numpy().ravel()
    draws = [exact[name][1].draw_arrays(max(int(c), 1), seed=0, chains=1)["mu"][:c]
             for name, c in zip(table.index[:3], counts[:3], strict=True)]  # fmt: skip
    draws.append(rng.choice(mu, size=counts[3]))
    q = np.quantile(np.concatenate(draws), [0.025, 0.5, 0.975])
    table.loc["model average (posterior weights)"] = {
        "mean": mean, "sd": sd, "q2.5": q[0], "q50": q[1], "q97.5": q[2],
        "shift": mean - table.loc[UNADJUSTED, "mean"], "bias_parameter": np.nan,
        "bias_prior": "RoBMA-PSMA model weights", "engine": "quadrature",
        "prior_weight": 1.0, "posterior_weight": 1.0,
    }  # fmt: skip
    table.attrs["note"] += " " + weights_sentence(table.iloc[:4], len(prepared.study))
    return table


def weights_sentence(table: pd.DataFrame, k: int | None = None) -> str:
    """Say how far the data moved the models' weights from their prior weights.

    Examples
    --------
    >>> t = pd.DataFrame({"prior_weight": [0.5, 0.5], "posterior_weight": [0.55, 0.45]},
    ...                  index=["random effects (unadjusted)", "PET (mu at sei = 0)"])
    >>> print(weights_sentence(t))  # doctest: +ELLIPSIS
    The posterior model weights stay within 0.1 of their prior weights: ...
    >>> print(weights_sentence(t.assign(posterior_weight=[0.7, 0.3]), k=6))
    ... # doctest: +ELLIPSIS
    Posterior model weights ... With 6 studies a shift towards the model without bias ...
    """
    moved = (table["posterior_weight"] - table["prior_weight"]).abs().max()
    listed = "; ".join(
        f"{name} {r['posterior_weight']:.2f} (prior {r['prior_weight']:.3g})"
        for name, r in table.iterrows()
    )
    if moved < 0.1:
        return (
            "The posterior model weights stay within 0.1 of their prior weights: the data "
            f"cannot tell whether there is publication bias ({listed})."
        )
    text = f"Posterior model weights (prior in brackets): {listed}."
    if k is not None and k < FEW_STUDIES:
        # on 6 of the ETS studies 'no bias' goes from 0.5 to 0.71: the bias models'
        # extra parameter costs more than a few studies can repay
        text += (
            f" With {k} studies a shift towards the model without bias mostly reflects "
            "the price of the bias models' extra parameter under its prior (the Occam "
            "factor of the marginal likelihood), not evidence that there is no bias."
        )
    return text
