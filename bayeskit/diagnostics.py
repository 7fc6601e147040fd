"""Is the fit trustworthy? MCMC and PSIS-LOO diagnostics as plain-language verdicts.

:func:`diagnose` runs every check that the fit's :class:`xarray.DataTree` has the groups for
and returns one :class:`Check` per diagnostic, each with a verdict (``"pass"``, ``"warn"``
or ``"fail"``), the worst value found and a message that says what it means and what to do.
:func:`verdict` folds them into one word, :func:`to_json` into a report, and
:func:`loo_table` gives the pointwise PSIS-LOO table behind the Pareto-k check.

The thresholds and where they come from (pass / warn / fail):

* ``r_hat``: below 1.01 / below 1.05 / otherwise (Vehtari et al. 2021);
* ``ess_bulk``, ``ess_tail``: at least 100 per chain / at least 100 / fewer
  (Vehtari et al. 2021);
* ``divergences``: none / -- / any (Betancourt 2017);
* ``tree_depth``: none at the maximum / some / -- (Hoffman and Gelman 2014);
* ``e_bfmi``: at least 0.3 in every chain / lower / -- (Betancourt 2016);
* ``pareto_k``: at most ``k_S`` / at most 1 / above 1 (Vehtari et al. 2024), where
  ``k_S = min(1 - 1/log10(S), 0.7)`` for ``S`` posterior draws; a conditional LOO (a
  family or pooling that keeps each observation's random effect) warns at most.

References
----------
Betancourt, M. (2016). Diagnosing suboptimal cotangent disintegrations in Hamiltonian
Monte Carlo. arXiv:1604.00695.

Betancourt, M. (2017). A conceptual introduction to Hamiltonian Monte Carlo.
arXiv:1701.02434.

Hoffman, M. D. and Gelman, A. (2014). The No-U-Turn sampler. JMLR 15:1593-1623.

Vehtari, A., Gelman, A., Simpson, D., Carpenter, B. and Bürkner, P.-C. (2021).
Rank-normalization, folding, and localization: an improved R-hat for assessing convergence
of MCMC. Bayesian Analysis 16(2):667-718. https://doi.org/10.1214/20-BA1221

Vehtari, A., Simpson, D., Gelman, A., Yao, Y. and Gabry, J. (2024). Pareto smoothed
importance sampling. JMLR 25(72):1-58. https://jmlr.org/papers/v25/19-556.html
"""

from __future__ import annotations

import json
import math
import warnings
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

import numpy as np
import pandas as pd
import xarray as xr

from bayeskit.errors import UserError
from bayeskit.families._marginal import LEAVE_ONE_STUDY_OUT
from bayeskit.outputs import jsonable as _jsonable

Verdict = Literal["pass", "warn", "fail"]

#: Order of severity, mildest first.
VERDICTS: tuple[Verdict, ...] = ("pass", "warn", "fail")

# Vehtari et al. (2021) recommend R-hat below 1.01; between 1.01 and 1.05 we warn rather
# than fail, since the older rule of thumb (1.1) would accept such fits.
RHAT_PASS = 1.01
RHAT_WARN = 1.05
# Vehtari et al. (2021): at least 100 effective draws per chain (400 with the
# usual 4 chains) before trusting R-hat and MCSE; below 100 in total nothing is reliable.
ESS_PER_CHAIN = 100
ESS_MIN = 100
# Betancourt (2016): E-BFMI below 0.3 means momentum resampling explores the
# energy distribution too slowly.
EBFMI_MIN = 0.3
# Pareto k above 1: the importance ratios have no finite mean, so PSIS-LOO is not
# even consistent (Vehtari et al. 2024).
PARETO_K_MAX = 1.0
# Both PyMC and nutpie stop a trajectory after 2**10 leapfrog steps by default.
DEFAULT_MAX_TREEDEPTH = 10

SAMPLE_DIMS = ("chain", "draw")
# How many flagged parameters or studies a message names before saying "and N more".
_NAMED = 5


@dataclass(frozen=True)
class Check:
    """The result of one diagnostic.

    Attributes
    ----------
    name : str
        ``"r_hat"``, ``"ess_bulk"``, ``"ess_tail"``, ``"divergences"``, ``"tree_depth"``,
        ``"e_bfmi"`` or ``"pareto_k"``.
    verdict : {"pass", "warn", "fail"}
        ``"fail"``: the estimates cannot be trusted; ``"warn"``: they may be usable but the
        sampler was inefficient or some results are fragile; ``"pass"``: no problem found.
    value : float
        The worst value found: the largest R-hat, smallest ESS, number of divergent or
        saturated transitions, smallest E-BFMI or largest Pareto k. NaN when it could
        not be computed.
    message : str
        What the value means and what to do about it, in plain language.
    details : dict
        Per-parameter, per-chain or per-study numbers worth keeping; JSON-serialisable
        apart from NaN, which :func:`to_json` turns into ``None``.

    Examples
    --------
    >>> from bayeskit.diagnostics import Check, verdict
    >>> checks = [Check("r_hat", "pass", 1.002, "R-hat is at most 1.002."),
    ...           Check("divergences", "fail", 3.0, "3 divergent transitions.")]
    >>> verdict(checks)
    'fail'
    """

    name: str
    verdict: Verdict
    value: float
    message: str
    details: dict[str, Any] = field(default_factory=dict)


def diagnose(
    idata: xr.DataTree,
    *,
    var_names: list[str] | None = None,
    max_treedepth: int | None = None,
    parametrization: str | list[str] | None = None,
    target_accept: float | None = None,
) -> list[Check]:
    """Check a fit's convergence, sampler health and the influence of single studies.

    Checks that need a group the fit lacks are skipped rather than failed: draws without
    ``sample_stats`` (e.g. from an exact sampler) get only R-hat and ESS, and the Pareto-k
    check runs only when there is a ``log_likelihood`` group.

    Parameters
    ----------
    idata : xarray.DataTree
        The fit, with a ``posterior`` group whose variables have ``chain`` and ``draw``
        dimensions; optionally ``sample_stats`` (PyMC's or nutpie's names) and
        ``log_likelihood``.
    var_names : list of str, optional
        Posterior variables for R-hat and ESS. Default: all of them except
        sampler-internal ones, i.e. names that end in ``_z`` or ``_raw`` (non-centred
        auxiliaries) or start with ``_``.
    max_treedepth : int, optional
        The sampler's maximum tree depth. Default: the sampler's own flag
        (``maxdepth_reached`` from nutpie, ``reached_max_treedepth`` from PyMC), else the
        maximum recorded in nutpie's settings, else 10.
    parametrization, target_accept : optional
        How the fit was sampled (the parametrisation, or every one tried so far), so
        that the advice never recommends what was already done (the non-centred form to
        a non-centred fit, a higher target acceptance to a fit run at 0.99).

    Returns
    -------
    list of Check
        In the order ``r_hat``, ``ess_bulk``, ``ess_tail``, ``divergences``,
        ``tree_depth``, ``e_bfmi``, ``pareto_k``, skipping those without data.

    Raises
    ------
    UserError
        If there is no posterior group or ``var_names`` names a variable it lacks.

    See Also
    --------
    verdict : The worst verdict of a list of checks.
    to_json : The checks as a JSON-ready report.
    loo_table : Pointwise PSIS-LOO behind the Pareto-k check.

    Examples
    --------
    >>> import numpy as np
    >>> from arviz_base import from_dict
    >>> rng = np.random.default_rng(0)
    >>> idata = from_dict({"posterior": {"mu": rng.normal(size=(4, 500))}})
    >>> [(c.name, c.verdict) for c in diagnose(idata)]
    [('r_hat', 'pass'), ('ess_bulk', 'pass'), ('ess_tail', 'pass')]

    A chain stuck away from the others fails R-hat, and the message says where:

    >>> mu = rng.normal(size=(4, 500))
    >>> mu[3] += 3
    >>> print(diagnose(from_dict({"posterior": {"mu": mu}}))[0].message)
    R-hat is ... for mu: the chains disagree, so the estimates cannot be trusted. ...
    """
    if "posterior" not in idata.children:
        raise UserError("the fit has no posterior group: nothing to diagnose")
    posterior = _posterior(idata.posterior.to_dataset(), var_names)
    checks = [_rhat_check(posterior), *_ess_checks(posterior)]

    if "sample_stats" in idata.children:
        stats = idata.sample_stats.to_dataset()
        has_tau = "tau" in idata.posterior.data_vars
        checks += [
            check
            for check in (
                _divergence_check(
                    stats,
                    has_tau=has_tau,
                    parametrization=parametrization,
                    target_accept=target_accept,
                ),
                _treedepth_check(stats, max_treedepth=max_treedepth),
                _ebfmi_check(stats, parametrization=parametrization),
            )
            if check is not None
        ]

    if "log_likelihood" in idata.children and idata.log_likelihood.data_vars:
        checks.append(_pareto_k_check(idata))
    return checks


def verdict(checks: list[Check]) -> Verdict:
    """Return the worst verdict among ``checks``: ``"fail"`` > ``"warn"`` > ``"pass"``.

    An empty list passes: no check found a problem.

    Examples
    --------
    >>> verdict([Check("r_hat", "pass", 1.0, ""), Check("e_bfmi", "warn", 0.2, "")])
    'warn'
    >>> verdict([])
    'pass'
    """
    return max((c.verdict for c in checks), key=VERDICTS.index, default="pass")


def to_json(checks: list[Check]) -> dict[str, Any]:
    """Return the checks and their overall verdict as a JSON-ready dictionary.

    NaN and infinite numbers become ``None`` (JSON has no NaN) and NumPy scalars become
    Python numbers, so ``json.dumps(to_json(checks), allow_nan=False)`` always works.

    Examples
    --------
    >>> import json
    >>> report = to_json([Check("r_hat", "pass", 1.003, "fine", {"mu": 1.003})])
    >>> json.dumps(report)
    '{"verdict": "pass", "checks": [{"name": "r_hat", "verdict": "pass", "value": 1.003, ...}]}'
    """
    return {
        "verdict": verdict(checks),
        "checks": [_jsonable(asdict(check)) for check in checks],
    }


def loo_table(idata: xr.DataTree, *, var_name: str | None = None) -> pd.DataFrame:
    """Pointwise PSIS-LOO: each observation's elpd, Pareto k and verdict.

    An observation's Pareto k measures how much the posterior moves when it is left
    out. Following Vehtari et al. (2024, JMLR 25:72), the threshold for a
    reliable estimate depends on the number of draws ``S``:
    ``k_S = min(1 - 1/log10(S), 0.7)`` (0.7 for ``S >= 2154``). The verdict is
    ``"pass"`` for ``k <= k_S``, ``"warn"`` for ``k_S < k <= 1`` (the estimate is biased,
    more draws or moment matching may help) and ``"fail"`` for ``k > 1`` (or NaN), where
    the importance ratios have no finite mean and the LOO estimate is meaningless.

    Parameters
    ----------
    idata : xarray.DataTree
        The fit, with ``posterior`` and ``log_likelihood`` groups.
    var_name : str, optional
        The ``log_likelihood`` variable; needed only if there are several.

    Returns
    -------
    pandas.DataFrame
        Indexed by the observation coordinate(s) of the log-likelihood (e.g. ``study``),
        with columns ``elpd_loo_i``, ``pareto_k`` and ``verdict``. ``attrs`` holds
        ``good_k`` (``k_S``), ``n_samples`` and ``var_name``.

    Raises
    ------
    UserError
        If there is no ``log_likelihood`` group or ``var_name`` is ambiguous or unknown.

    Examples
    --------
    >>> import numpy as np
    >>> from arviz_base import from_dict
    >>> from scipy import stats
    >>> rng = np.random.default_rng(1)
    >>> mu = rng.normal(0, 0.3, size=(4, 500, 1))
    >>> y = np.array([-0.5, 0.1, 0.4])
    >>> idata = from_dict(
    ...     {"posterior": {"mu": mu[..., 0]}, "log_likelihood": {"y": stats.norm.logpdf(y, mu)}},
    ...     dims={"y": ["study"]}, coords={"study": ["A", "B", "C"]},
    ... )
    >>> loo_table(idata)
             elpd_loo_i  pareto_k verdict
    study
    A         ...       ...    pass
    B         ...       ...    pass
    C         ...       ...    pass
    >>> round(loo_table(idata).attrs["good_k"], 3)  # S = 2000 draws
    0.697
    """
    from bayeskit.loo import loo_kind

    if "log_likelihood" not in idata.children or not idata.log_likelihood.data_vars:
        raise UserError("the fit has no log_likelihood group: sample with log_likelihood=True")
    names = list(idata.log_likelihood.data_vars)
    if var_name is None:
        if len(names) > 1:
            raise UserError(
                f"the fit has several log-likelihoods ({', '.join(names)}); choose one "
                "with var_name"
            )
        var_name = names[0]
    elif var_name not in names:
        raise UserError(f"no log-likelihood named {var_name!r}; the fit has {', '.join(names)}")

    with warnings.catch_warnings():
        # loo() warns whenever some k exceeds good_k; here that is the result we report.
        warnings.filterwarnings(
            "ignore", message="Estimated shape parameter of Pareto", category=UserWarning
        )
        # With a single observation the pointwise and total elpd agree by construction.
        warnings.filterwarnings(
            "ignore", message="The point-wise LOO is the same", category=UserWarning
        )
        import arviz_stats as azs  # imported when used: 0.3-0.8 s

        result = azs.loo(idata, pointwise=True, var_name=var_name)

    if result.elpd_i.ndim == 0:  # one observation with no dims: a one-row table
        table = pd.DataFrame(
            {"elpd_loo_i": [float(result.elpd_i)], "pareto_k": [float(result.pareto_k)]},
            index=pd.Index([var_name], name="observation"),
        )
    else:
        table = pd.DataFrame(
            {
                "elpd_loo_i": result.elpd_i.to_series(),
                "pareto_k": result.pareto_k.to_series(),
            }
        )
    k = table["pareto_k"].to_numpy()
    table["verdict"] = np.select(
        [~(k <= PARETO_K_MAX), k > result.good_k], ["fail", "warn"], default="pass"
    )
    table.attrs = {
        "good_k": float(result.good_k),
        "n_samples": int(result.n_samples),
        "var_name": var_name,
        "loo": loo_kind(idata),
    }
    return table


# ---------------------------------------------------------------------------------------
# The checks


def _rhat_check(posterior: xr.Dataset) -> Check:
    n_chains = posterior.sizes["chain"]
    split = n_chains == 1
    if split:
        # Rank-normalised R-hat needs two chains; with one, compare its two halves, which
        # still detects drift (a chain that has not settled).
        half = posterior.sizes["draw"] // 2
        posterior = xr.concat(
            [
                posterior.isel(draw=slice(0, half)),
                posterior.isel(draw=slice(half, 2 * half)).assign_coords(
                    draw=posterior.draw[:half]
                ),
            ],
            dim="chain",
        ).assign_coords(chain=[0, 1])
    # Constant components (e.g. a Deterministic fixed by design) give 0/0; report them as
    # not computed instead of letting NumPy warn.
    with np.errstate(invalid="ignore", divide="ignore"):
        import arviz_stats as azs  # imported when used: 0.3-0.8 s

        values = _components(azs.rhat(posterior, method="rank"))
    details: dict[str, Any] = {"r_hat": values}
    if split:
        details["split_single_chain"] = True
    missing = [name for name, v in values.items() if math.isnan(v)]
    if missing:
        details["not_computed"] = missing
    finite = {name: v for name, v in values.items() if not math.isnan(v)}
    if not finite:
        return Check(
            "r_hat",
            "warn",
            math.nan,
            "R-hat could not be computed (constant draws, or fewer than 4 draws per chain); "
            "convergence is unchecked.",
            details,
        )

    worst = max(finite, key=finite.__getitem__)
    value = finite[worst]
    if value < RHAT_PASS:
        verdict_, message = (
            "pass",
            (f"R-hat is at most {value:.3f} ({worst}): the chains agree with each other."),
        )
    else:
        verdict_ = "warn" if value < RHAT_WARN else "fail"
        flagged = sorted(
            (n for n in finite if finite[n] >= RHAT_PASS), key=finite.get, reverse=True
        )
        message = (
            f"R-hat is {value:.3g} for {worst}: the chains disagree, so the estimates "
            "cannot be trusted. Run longer (more --tune and --draws) and look at the "
            "trace plot; if it persists, reparameterise or tighten the priors. "
            f"Above {RHAT_PASS}: {_names(flagged)}."
        )
    if missing:
        message += f" Not computed (constant draws): {_names(missing)}."
    return Check("r_hat", verdict_, value, message, details)


def _ess_checks(posterior: xr.Dataset) -> list[Check]:
    n_chains = posterior.sizes["chain"]
    target = ESS_PER_CHAIN * n_chains
    checks = []
    for method in ("bulk", "tail"):
        name = f"ess_{method}"
        import arviz_stats as azs  # imported when used: 0.3-0.8 s

        values = _components(azs.ess(posterior, method=method))
        finite = {n: v for n, v in values.items() if not math.isnan(v)}
        details: dict[str, Any] = {name: values, "target": target, "n_chains": n_chains}
        if not finite:
            checks.append(
                Check(name, "warn", math.nan, f"ESS ({method}) could not be computed.", details)
            )
            continue
        worst = min(finite, key=finite.__getitem__)
        value = finite[worst]
        # What a low bulk ESS endangers is the posterior mean and median; a low tail ESS,
        # the 5% and 95% quantiles, i.e. the ends of credible intervals.
        what = "means and medians" if method == "bulk" else "credible interval limits"
        if value >= target:
            verdict_ = "pass"
            message = (
                f"ESS ({method}) is at least {value:.0f} ({worst}): enough effective draws "
                f"for stable {what}."
            )
        else:
            verdict_ = "warn" if value >= ESS_MIN else "fail"
            flagged = sorted((n for n in finite if finite[n] < target), key=finite.get)
            message = (
                f"ESS ({method}) is only {value:.0f} for {worst} (want at least {target}, "
                f"{ESS_PER_CHAIN} per chain): {what} are imprecise"
                + (" and R-hat is unreliable" if verdict_ == "fail" else "")
                + ". Re-run with more draws (--draws), or reparameterise if the chains "
                f"mix slowly. Below {target}: {_names(flagged)}."
            )
        checks.append(Check(name, verdict_, value, message, details))
    return checks


def _divergence_check(
    stats: xr.Dataset,
    *,
    has_tau: bool,
    parametrization: str | list[str] | None = None,
    target_accept: float | None = None,
) -> Check | None:
    """Count divergent transitions; the advice leaves out what the fit already did.

    >>> import numpy as np
    >>> stats = xr.Dataset({"diverging": (("chain", "draw"), np.eye(2, 50, dtype=bool))})
    >>> print(_divergence_check(stats, has_tau=False).message)
    2 divergent transitions (of 100): ... Re-run with --target-accept 0.99; if divergences
    remain, reparameterise (e.g. non-centred study effects) or use more informative priors.
    >>> print(_divergence_check(stats, has_tau=True, parametrization="noncentered",
    ...                         target_accept=0.99).message)
    2 divergent transitions (of 100): ... The fit already ran in the non-centred form at
    target acceptance 0.99: try the centred form (--parametrization centered), use more
    informative priors (on tau above all) or use the exact engine where it applies
    (--method exact).
    """
    if "diverging" not in stats:
        return None
    diverging = stats["diverging"].astype(bool)
    count = int(diverging.sum())
    total = int(diverging.size)
    details = {"per_chain": _per_chain(diverging.sum("draw")), "n_transitions": total}
    if count == 0:
        return Check("divergences", "pass", 0.0, "No divergent transitions.", details)
    # Betancourt (2017): a divergence means the sampler could not follow the posterior's
    # curvature there, so that region is under-explored and estimates are biased. In
    # hierarchical models this is the funnel at small tau.
    target = "tau (and the study effects)" if has_tau else "the parameters"
    message = (
        f"{count} divergent transition{'s' if count != 1 else ''} (of {total}): estimates of "
        f"{target} may be biased, because the sampler could not explore part of the "
        f"posterior. {_divergence_advice(has_tau, parametrization, target_accept)}"
    )
    return Check("divergences", "fail", float(count), message, details)


_FORMS = {"noncentered": "non-centred", "centered": "centred"}


def _divergence_advice(has_tau, parametrization, target_accept) -> str:
    """Return what to do about divergences, leaving out what the fit already did."""
    tried = [parametrization] if isinstance(parametrization, str) else list(parametrization or [])
    untried = [f for f in _FORMS if f not in tried]
    priors = "use more informative priors" + (" (on tau above all)" if has_tau else "")
    if not tried:
        alternatives = ["reparameterise (e.g. non-centred study effects)", priors]
    else:
        alternatives = [f"try the {_FORMS[f]} form (--parametrization {f})" for f in untried]
        alternatives.append(priors)
    if has_tau:
        alternatives.append("use the exact engine where it applies (--method exact)")
    if target_accept is None or target_accept < 0.99:
        return (
            "Re-run with --target-accept 0.99; if divergences remain, "
            + _either(alternatives)
            + "."
        )
    done = f"at target acceptance {target_accept:g}"
    if tried:
        done = " and ".join(f"in the {_FORMS.get(f, f)} form" for f in tried) + " " + done
    return f"The fit already ran {done}: {_either(alternatives)}."


def _either(options: list[str]) -> str:
    return options[0] if len(options) == 1 else ", ".join(options[:-1]) + " or " + options[-1]


def _treedepth_check(stats: xr.Dataset, *, max_treedepth: int | None) -> Check | None:
    depth_name = next((n for n in ("depth", "tree_depth") if n in stats), None)
    flag_name = next((n for n in ("maxdepth_reached", "reached_max_treedepth") if n in stats), None)
    if max_treedepth is not None and depth_name is not None:
        hit = stats[depth_name] >= max_treedepth
    elif flag_name is not None:
        hit = stats[flag_name].astype(bool)
        max_treedepth = _settings_maxdepth(stats)
    elif depth_name is not None:
        max_treedepth = _settings_maxdepth(stats) or DEFAULT_MAX_TREEDEPTH
        hit = stats[depth_name] >= max_treedepth
    else:
        return None
    count = int(hit.sum())
    total = int(hit.size)
    details: dict[str, Any] = {
        "per_chain": _per_chain(hit.sum("draw")),
        "n_transitions": total,
        "max_treedepth": max_treedepth,
    }
    if depth_name is not None:
        details["max_depth_seen"] = int(stats[depth_name].max())
    if count == 0:
        return Check(
            "tree_depth", "pass", 0.0, "No transition hit the maximum tree depth.", details
        )
    # Hitting the maximum depth cuts trajectories short: the chain moves slowly (low ESS)
    # but stays valid, so this is about efficiency, not bias.
    limit = f" ({max_treedepth})" if max_treedepth is not None else ""
    message = (
        f"{count} of {total} transitions hit the maximum tree depth{limit}: sampling was "
        "inefficient, though not biased. If ESS is also low, raise the sampler's max_treedepth or "
        "reparameterise (strongly correlated or badly scaled parameters)."
    )
    return Check("tree_depth", "warn", float(count), message, details)


def _ebfmi_check(stats: xr.Dataset, *, parametrization: str | None = None) -> Check | None:
    if "energy" not in stats:
        return None
    import arviz_stats as azs  # imported when used: 0.3-0.8 s

    values = azs.bfmi(stats["energy"])
    per_chain = _per_chain(values)
    value = float(values.min())
    details = {"per_chain": per_chain, "threshold": EBFMI_MIN}
    if value >= EBFMI_MIN:
        message = f"E-BFMI is at least {value:.2f} in every chain: the sampler's energy moves well."
        return Check("e_bfmi", "pass", value, message, details)
    low = [str(c) for c, v in zip(values.chain.values, per_chain, strict=True) if v < EBFMI_MIN]
    message = (
        f"E-BFMI is {value:.2f} (below {EBFMI_MIN}) in chain{'s' if len(low) > 1 else ''} "
        f"{', '.join(low)}: the sampler explores the posterior's tails slowly, so tail "
        "estimates may be poor. "
        + (
            "Reparameterise (e.g. non-centred study effects) or use more"
            if "noncentered"
            not in (
                [parametrization]
                if isinstance(parametrization, str)
                else list(parametrization or [])
            )
            else "The fit was already non-centred: use more"
        )
        + " informative priors on scale parameters such as tau."
    )
    return Check("e_bfmi", "warn", value, message, details)


def _pareto_k_check(idata: xr.DataTree) -> Check:
    from bayeskit.loo import loo_kind, loo_note

    kind, note = loo_kind(idata), loo_note(idata)
    names = list(idata.log_likelihood.data_vars)
    ks: dict[str, float] = {}
    verdicts: dict[str, str] = {}
    good_k = PARETO_K_MAX
    for name in names:
        table = loo_table(idata, var_name=name)
        good_k = table.attrs["good_k"]
        for label, row in table.iterrows():
            # Prefix with the variable only when there are several log-likelihoods.
            key = _label(label) if len(names) == 1 else f"{name}[{_label(label)}]"
            ks[key] = float(row["pareto_k"])
            verdicts[key] = row["verdict"]
    details: dict[str, Any] = {"pareto_k": ks, "good_k": good_k, "loo": kind}
    finite = {n: k for n, k in ks.items() if not math.isnan(k)}
    # NaN k (no tail could be fitted) counts as unreliable; it is named, not ranked.
    unestimated = [n for n in ks if math.isnan(ks[n])]
    value = max(finite.values()) if finite else math.nan
    flagged = sorted((n for n in finite if verdicts[n] != "pass"), key=finite.get, reverse=True)
    if not flagged and not unestimated:
        what = "study" if kind == LEAVE_ONE_STUDY_OUT else "observation"
        message = (
            f"Pareto k is at most {value:.2f} (threshold {good_k:.2f}): no single "
            f"{what} dominates the fit, and the {kind} LOO estimates are reliable."
        )
        return Check("pareto_k", "pass", value, message, details)
    flagged += unestimated
    details["flagged"] = flagged
    verdict_ = "fail" if any(verdicts[n] == "fail" for n in flagged) else "warn"
    if kind != LEAVE_ONE_STUDY_OUT:
        # a conditional LOO keeps each observation's own random effect, so a high k is
        # expected and says nothing about the posterior itself: it warns, never fails
        verdict_ = "warn"
    one = len(flagged) == 1
    them, their = ("it", "its") if one else ("them", "their")
    parts = []
    if flagged[0] not in unestimated:
        above = [n for n in flagged if n not in unestimated]
        parts.append(
            f"Pareto k is {value:.2f} for {flagged[0]} (threshold {good_k:.2f}); "
            f"above it: {_names(above)}."
        )
    if unestimated:
        parts.append(f"Pareto k could not be estimated for {_names(unestimated)}.")
    study = "this study" if one else "these studies"
    if kind == LEAVE_ONE_STUDY_OUT:
        parts.append(
            f"The fit depends strongly on {study}: leaving {them} out moves the population "
            f"estimates so far that the leave-one-study-out estimates for {them} are "
            "unreliable."
        )
    else:
        parts.append(
            f"The fit depends strongly on {study}; LOO estimates for {them} are unreliable."
        )
        if note:  # labelled conditional: say what it is
            parts.append(f"This LOO is conditional: {note}.")
    parts.append(
        f"Check {their} data (effect size, standard error, arm counts) and see how the "
        f"result changes without {them}: `bayeskit sensitivity` refits leaving each study "
        "out."
    )
    message = " ".join(parts)
    return Check("pareto_k", verdict_, value, message, details)


# ---------------------------------------------------------------------------------------
# Helpers


def _posterior(posterior: xr.Dataset, var_names: list[str] | None) -> xr.Dataset:
    """Select the variables to check; refuse a posterior without chain and draw."""
    missing_dims = [d for d in SAMPLE_DIMS if d not in posterior.dims]
    if missing_dims:
        raise UserError(
            f"the posterior has no {' or '.join(missing_dims)} dimension; diagnostics need "
            "draws arranged as (chain, draw, ...)"
        )
    if var_names is None:
        var_names = [
            str(name)
            for name, da in posterior.data_vars.items()
            if not str(name).endswith(("_z", "_raw"))
            and not str(name).startswith("_")
            and np.issubdtype(da.dtype, np.number)
        ]
    else:
        unknown = [v for v in var_names if v not in posterior.data_vars]
        if unknown:
            raise UserError(
                f"no posterior variable named {', '.join(map(repr, unknown))}; the posterior "
                f"has {', '.join(map(str, posterior.data_vars))}"
            )
    if not var_names:
        raise UserError("no posterior variables left to diagnose")
    return posterior[list(var_names)]


def _components(ds: xr.Dataset) -> dict[str, float]:
    """Flatten a dataset of per-component diagnostics to ``{"theta[A]": value, ...}``."""
    out = {}
    for name, da in ds.data_vars.items():
        if da.ndim == 0:
            out[str(name)] = float(da)
            continue
        coords = [da[dim].values for dim in da.dims]
        for index in np.ndindex(da.shape):
            label = ", ".join(str(c[i]) for c, i in zip(coords, index, strict=True))
            out[f"{name}[{label}]"] = float(da.values[index])
    return out


def _per_chain(da: xr.DataArray) -> list[float]:
    return [float(v) for v in da.transpose("chain").values]


def _settings_maxdepth(stats: xr.Dataset) -> int | None:
    """Read the maximum tree depth that nutpie records in its settings, if any."""
    try:
        settings = json.loads(stats.attrs["inference_library_settings"])
        return int(settings["settings"]["maxdepth"])
    except (KeyError, TypeError, ValueError):
        return None


def _label(index: Any) -> str:
    return ", ".join(map(str, index)) if isinstance(index, tuple) else str(index)


def _names(names: list[str]) -> str:
    shown = ", ".join(names[:_NAMED])
    return shown + (f" and {len(names) - _NAMED} more" if len(names) > _NAMED else "")
