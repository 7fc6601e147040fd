"""Robustness of an exposure-response fit's answers: each question under every alternative.

:func:`alternatives` lists the reasonable alternatives a reviewer would try (the
dose-response shape, the reference exposure, sessions as a term or a multiplier, the
baseline model, the bias prior means, without non-randomised evidence, the tau prior, and
without borrowing), keeping only those that change the model for these data: a knob that
moves nothing would make a conclusion look robust for free. :func:`robustness_table`
refits the spec under each (one refit each, with the ``[robustness]`` section's modest
draws; the compile cache makes a repeated run cheap) and answers the spec's questions
again; :func:`robust_flags` says, from the rows alone, which conclusions keep their
direction under every alternative, and :func:`headline_table` is the analyst's headline:
one row per answer with its evidence label and that flag.

Derived counts with a recorded range (:mod:`bayeskit.evidence.ranges`) add one refit per
data variant that changes a row the fit used. Further alternatives are added by appending
a function ``(fit, spec) -> list[Alternative]`` to
:data:`EXTRA_ALTERNATIVES`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

#: the assumption of the fit itself in ``robustness.csv``
AS_FITTED = "as fitted"
#: the quantities of each answer the table reports (where the fit has them)
QUANTITIES = ("effect", "difference")
#: tau priors tried against the spec's own (half the scale and twice it, as written)
TAU_PRIORS = ("HalfNormal(0.25)", "HalfNormal(1)")
#: fixed reference exposures (mg/kg) tried for the log-linear form
EXPOSURE_REFS = (0.1, 1.0)


@dataclass(frozen=True)
class Alternative:
    """One refit: the assumption it varies, its label, and what it changes.

    Examples
    --------
    >>> alt = Alternative("tau prior", "HalfNormal(1)", priors={"tau": "HalfNormal(1)"})
    >>> alt.assumption, alt.model_options
    ('tau prior', {})
    """

    assumption: str
    label: str
    model_options: dict[str, Any] = field(default_factory=dict)
    priors: dict[str, str] = field(default_factory=dict)
    #: a data variant of the derived counts (:data:`bayeskit.evidence.ranges.VARIANTS`)
    data_variant: str | None = None
    #: the spec's data selection changed for this refit (``outcome``, ``timepoint``)
    data: dict[str, Any] = field(default_factory=dict)


#: functions ``(fit, spec) -> list[Alternative]`` whose alternatives are added to the
#: table: the hook for derived-count variants and informative-prior borrowing
EXTRA_ALTERNATIVES: list[Callable[[Any, Any], list[Alternative]]] = []


def _repeated_effects(fit, spec) -> list[Alternative]:
    """All outcomes and timepoints of a study that reports several (exposure-response)."""
    from bayeskit.families.exposure.repeated import repeated_alternatives

    return repeated_alternatives(fit, spec)


EXTRA_ALTERNATIVES.append(_repeated_effects)


def alternatives(fit, spec) -> list[Alternative]:
    """List the alternatives that change this fit's model, each as one refit.

    Parameters
    ----------
    fit : Fit
        The exposure-response fit (its settings and data say which knobs move it).
    spec : Spec
        Its spec (the tau prior as written).

    Examples
    --------
    >>> from types import SimpleNamespace
    >>> table = pd.DataFrame({"design": ["rct", "rct"], "sessions": [1, 3]})
    >>> data = SimpleNamespace(table=table, arms=table, indication=["OUD"])
    >>> fit = SimpleNamespace(data=data, settings={"form": "loglinear", "exposure_ref": None,
    ...     "sessions": "term", "likelihood": "contrast", "bias_form": "additive"})
    >>> spec = SimpleNamespace(priors={"tau": "HalfNormal(sigma=0.5)"})
    >>> [(a.assumption, a.label) for a in alternatives(fit, spec)]  # doctest: +NORMALIZE_WHITESPACE
    [('dose-response shape', 'Emax'), ('reference exposure', '0.1 mg/kg'),
     ('reference exposure', '1 mg/kg'), ('sessions', 'multiply exposure'),
     ('baseline model', 'arm-based, random baselines'), ('tau prior', 'HalfNormal(0.25)'),
     ('tau prior', 'HalfNormal(1)')]
    """
    from bayeskit.families.exposure.model import RANDOMISED
    from bayeskit.priors import parse_prior

    s = fit.settings
    table = fit.data.table
    out = []
    if s.get("form") == "loglinear":
        out.append(Alternative("dose-response shape", "Emax", {"form": "emax"}))
        for ref in EXPOSURE_REFS:
            if s.get("exposure_ref") != ref:
                out.append(
                    Alternative("reference exposure", f"{ref:g} mg/kg", {"exposure_ref": ref})
                )
    else:
        out.append(Alternative("dose-response shape", "log-linear", {"form": "loglinear"}))
    # sessions change the model only where the data's arms differ in sessions
    varied = "sessions" in table and table["sessions"].dropna().nunique() > 1
    if varied and s.get("sessions") in ("term", "multiplier"):
        other = "multiplier" if s["sessions"] == "term" else "term"
        label = "multiply exposure" if other == "multiplier" else "a separate term"
        out.append(Alternative("sessions", label, {"sessions": other}))
    # the baseline model is about arms: without arm rows both likelihoods are one
    if len(getattr(fit.data, "arms", ())):
        if s.get("likelihood", "contrast") == "contrast":
            label, other = "arm-based, random baselines", "arm"
        else:
            label, other = "contrast-based, fixed baselines", "contrast"
        out.append(Alternative("baseline model", label, {"likelihood": other}))
    designs = sorted(set(table["design"].dropna())) if "design" in table else []
    biased = [d for d in designs if d not in RANDOMISED]
    if biased:
        if s.get("bias_form", "additive") == "additive":
            from bayeskit.families.exposure.model import DEFAULT_BIAS_MEAN as default
        else:
            from bayeskit.families.exposure.model import DEFAULT_PROPORTIONAL_MEAN as default
        from bayeskit.families.exposure import DESCRIBED

        means = default | (s.get("bias_mean") or {})
        # pooled case reports and series must carry a stated, non-zero natural-course bias
        # (the family refuses zero): their "no bias" alternative is not pooling them
        pooled = [d for d in biased if d in DESCRIBED and s.get("case_reports") == "pool"]
        zero = [d for d in biased if d not in pooled]
        if zero:
            label = "zero" + (f" ({', '.join(pooled)} as stated)" if pooled else "")
            bias = {d: 0.0 for d in zero} | {d: float(means.get(d, 0.0)) for d in pooled}
            out.append(Alternative("bias prior means", label, {"bias_mean": bias}))
        if pooled:
            label = f"{', '.join(pooled)} described, not pooled"
            out.append(Alternative("bias prior means", label, {"case_reports": "describe"}))
        out.append(
            Alternative(
                "bias prior means",
                "twice the default",
                {"bias_mean": {d: 2.0 * float(means.get(d, 0.0)) for d in biased}},
            )
        )
        kept = [d for d in designs if d in RANDOMISED]
        if kept:
            out.append(Alternative("non-randomised evidence", "randomised only", {"designs": kept}))
    given = str(parse_prior((spec.priors or {}).get("tau", "HalfNormal(0.5)")))
    for prior in TAU_PRIORS:
        if str(parse_prior(prior)) != given:
            out.append(Alternative("tau prior", prior, priors={"tau": prior}))
    if s.get("borrowing") and len(fit.data.indication) > 1:
        out.append(Alternative("borrowing", "without borrowing", {"borrowing": False}))
        out += _borrowing_alternatives(fit, spec)
    out += derived_count_alternatives(fit, spec)
    for extra in EXTRA_ALTERNATIVES:
        out += extra(fit, spec)
    return out


def derived_count_alternatives(fit, spec) -> list[Alternative]:
    """One alternative per data variant that changes a row this fit used.

    The variants set derived counts within their recorded ranges
    (:mod:`bayeskit.evidence.ranges`); a variant that changes only rows the fit left out
    (another timepoint) is not listed.

    Examples
    --------
    Only ``fit.data`` is read (the rows the fit used):

    >>> import bayeskit as bk
    >>> from types import SimpleNamespace
    >>> from bayeskit.families.exposure.model import exposure_data
    >>> from bayeskit.spec import load_spec
    >>> spec = load_spec("oud_abstinence")
    >>> ev = bk.load_evidence(spec.data_files())
    >>> data = exposure_data(ev[ev["timepoint"] == "12 months"], None, routes=bk.load_routes())
    >>> [a.label for a in derived_count_alternatives(SimpleNamespace(data=data), spec)]
    ... # doctest: +NORMALIZE_WHITESPACE
    ['lowest effect within the recorded ranges', 'highest effect within the recorded ranges',
     'completers denominators (n_low)']
    """
    from bayeskit.evidence.ranges import VARIANTS, changed_rows, has_ranges, variant_tables
    from bayeskit.families._base import evidence_tables

    files = getattr(spec, "data_files", None)
    table = getattr(fit.data, "table", None)
    if files is None or table is None or "arm" not in table:
        return []
    tables = [t for t in evidence_tables(files()) if "arm" in t and has_ranges(t)]
    if not tables:
        return []
    keys = ["study", "arm", "timepoint"]
    used = set(map(tuple, table[[k for k in keys if k in table]].astype(str).to_numpy()))
    better = _better(spec)
    out = []
    for variant, label in VARIANTS.items():
        for base, new in zip(tables, variant_tables(tables, variant, better), strict=True):
            rows = changed_rows(base, new)
            rows = rows[[k for k in keys if k in rows]].astype(str).to_numpy()
            if any(tuple(r) in used for r in rows):
                out.append(Alternative("derived counts", label, data_variant=variant))
                break
    return out


def _borrowing_alternatives(fit, spec) -> list[Alternative]:
    """Return the other way of borrowing: an informative prior, or exchangeable slopes."""
    from bayeskit.questions import BORROWING_FITS, borrowing_target

    if fit.settings.get("borrowing") == "prior":
        return [Alternative("borrowing", BORROWING_FITS[True], {"borrowing": True})]
    target = borrowing_target(fit, spec)
    if target is None:
        return []
    options = {"borrowing": "prior", "borrowing_target": target}
    return [Alternative("borrowing", BORROWING_FITS["prior"], options)]


def _better(spec) -> str:
    report = getattr(spec, "report", None)
    return getattr(report, "better", None) or "higher"


def refit(spec, alternative: Alternative, *, draws: int, tune: int, chains: int):
    """Refit a spec under one alternative with the given (modest) sampler settings."""
    from bayeskit.fitting import fit

    kwargs = spec.fit_kwargs()
    kwargs["model_options"] = dict(kwargs.get("model_options") or {}) | alternative.model_options
    kwargs["priors"] = dict(kwargs.get("priors") or {}) | alternative.priors
    kwargs |= alternative.data
    kwargs |= {"draws": draws, "tune": tune, "chains": chains}
    # the table reads each refit's posterior and verdict only: no predictive draws or
    # log-likelihood (about a second and three compiled functions per refit)
    kwargs["posterior_only"] = True
    return fit(alternative_data(spec, alternative), **kwargs)


def alternative_data(spec, alternative: Alternative):
    """Return the data a refit under ``alternative`` reads: the spec's files or a variant.

    Examples
    --------
    >>> from bayeskit.spec import load_spec
    >>> spec = load_spec("oud_abstinence")
    >>> alternative_data(spec, Alternative("tau prior", "x")) == spec.data_files()
    True
    >>> [t.attrs["variant"] for t in alternative_data(
    ...     spec, Alternative("derived counts", "x", data_variant="most favourable"))]
    ['most favourable']
    """
    if alternative.data_variant is None:
        return spec.data_files()
    from bayeskit.evidence.ranges import variant_tables
    from bayeskit.families._base import evidence_tables

    return variant_tables(
        evidence_tables(spec.data_files()), alternative.data_variant, _better(spec)
    )


def answer_rows(answers: pd.DataFrame) -> pd.DataFrame:
    """Return the rows of :func:`~bayeskit.questions.answer_questions` the table reports.

    Each answer's ``effect`` (and ``difference`` of a binary outcome) with ``prob_benefit``,
    the posterior probability of benefit: the effect's ``prob`` (the difference has the
    effect's sign draw by draw, so the same probability).

    Examples
    --------
    >>> answers = pd.DataFrame({"question": ["a", "a"], "quantity": ["effect", "difference"],
    ...     "q50": [0.5, 0.1], "q2.5": [-0.1, -0.02], "q97.5": [1.0, 0.2], "mean": [0.5, 0.1],
    ...     "prob": [0.9, 0.4], "evidence": "extrapolated"}).set_index(["question", "quantity"])
    >>> answer_rows(answers)[["question", "quantity", "prob_benefit"]].values.tolist()
    [['a', 'effect', 0.9], ['a', 'difference', 0.9]]
    """
    rows = answers.reset_index()
    rows = rows[rows["quantity"].isin(QUANTITIES)].copy()
    benefit = rows[rows["quantity"] == "effect"].set_index("question")["prob"]
    rows["prob_benefit"] = rows["question"].map(benefit).astype(float)
    keep = ["question", "quantity", "mean", "q2.5", "q50", "q97.5", "prob", "prob_benefit"]
    keep += [c for c in ("evidence",) if c in rows]
    return rows[keep].reset_index(drop=True)


def robustness_table(fit, spec, answers: pd.DataFrame | None = None) -> pd.DataFrame:
    """Every answer of the spec's questions as fitted and under each alternative.

    Parameters
    ----------
    fit : Fit
        The main fit.
    spec : Spec
        Its spec; ``[robustness]`` gives the refits' draws, tune and chains.
    answers : DataFrame, optional
        The main fit's answers (:func:`~bayeskit.questions.answer_questions`), reused.

    Returns
    -------
    DataFrame
        One row per question, quantity and assumption (``as fitted`` first): columns
        ``question``, ``quantity``, ``assumption``, ``alternative``, mean, q2.5, q50,
        q97.5, ``prob`` (as in ``questions.csv``), ``prob_benefit``, ``direction``
        (``benefit`` where P(benefit) > 0.5, else ``no benefit``), ``holds`` (the
        direction as fitted), ``evidence`` and ``refit_verdict`` (the diagnostics'
        verdict of the fit behind the row; refits draw the posterior only, so theirs
        judges convergence, R-hat, ESS and divergences, without LOO's Pareto k).
    """
    from bayeskit.questions import answer_questions

    settings = spec.robustness
    base = answer_rows(answers if answers is not None else answer_questions(fit, spec))
    parts = [base.assign(assumption=AS_FITTED, alternative=AS_FITTED, refit_verdict=fit.verdict)]
    for alt in alternatives(fit, spec):
        other = refit(spec, alt, draws=settings.draws, tune=settings.tune, chains=settings.chains)
        rows = answer_rows(answer_questions(other, spec))
        # an answer this refit cannot give (its block vanished) is left out, not guessed
        rows = rows[rows["question"].isin(set(base["question"]))]
        parts.append(
            rows.assign(
                assumption=alt.assumption, alternative=alt.label, refit_verdict=other.verdict
            )
        )
    return directions(pd.concat(parts, ignore_index=True))


def directions(table: pd.DataFrame) -> pd.DataFrame:
    """Add each row's ``direction`` and whether it ``holds`` (as the fit's own row says).

    The direction is ``benefit`` where the posterior probability of benefit exceeds
    one half (the median effect favours ketamine), else ``no benefit``.

    Examples
    --------
    >>> rows = pd.DataFrame({"question": ["a", "a", "a"], "quantity": "effect",
    ...     "assumption": ["as fitted", "shape", "tau"], "alternative": ["as fitted", "x", "y"],
    ...     "prob_benefit": [0.8, 0.6, 0.3]})
    >>> directions(rows)[["direction", "holds"]].values.tolist()
    [['benefit', True], ['benefit', True], ['no benefit', False]]
    """
    table = table.copy()
    table["direction"] = np.where(table["prob_benefit"] > 0.5, "benefit", "no benefit")
    fitted = table[table["assumption"] == AS_FITTED].set_index(["question", "quantity"])
    key = pd.MultiIndex.from_frame(table[["question", "quantity"]])
    table["holds"] = table["direction"].to_numpy() == fitted["direction"].reindex(key).to_numpy()
    first = ["question", "quantity", "assumption", "alternative"]
    return table[first + [c for c in table.columns if c not in first]]


def robust_flags(table: pd.DataFrame) -> pd.Series:
    """``robust`` where an answer's direction holds under every alternative, else ``fragile``.

    Computed from the rows of ``robustness.csv`` alone; an answer with no alternative is
    ``not checked``.

    Examples
    --------
    >>> table = pd.DataFrame({"question": ["a", "a", "a", "b", "b", "c"],
    ...     "quantity": "effect", "assumption": ["as fitted", "shape", "tau", "as fitted",
    ...     "shape", "as fitted"], "holds": [True, True, True, True, False, True]})
    >>> robust_flags(table).to_dict()  # doctest: +NORMALIZE_WHITESPACE
    {('a', 'effect'): 'robust', ('b', 'effect'): 'fragile', ('c', 'effect'): 'not checked'}
    """
    flags = {}
    for key, rows in table.groupby(["question", "quantity"], sort=False):
        others = rows[rows["assumption"] != AS_FITTED]
        if others.empty:
            flags[key] = "not checked"
        else:
            flags[key] = "robust" if bool(others["holds"].astype(bool).all()) else "fragile"
    return pd.Series(flags, name="robustness", dtype=object)


def headline_table(answers: pd.DataFrame, robustness: pd.DataFrame | None = None) -> pd.DataFrame:
    """Return the analyst's headline: one row per answer, its estimate and its labels.

    For a binary outcome the estimate is the difference in the probability of the
    outcome (percentage points / 100); otherwise the effect on the fit's scale. Values
    are those of ``questions.csv``; ``robustness`` is :func:`robust_flags` of
    ``robustness.csv`` (``not checked`` without it).

    Examples
    --------
    >>> answers = pd.DataFrame({"question": ["a vs no ketamine (extrapolated)"] * 2,
    ...     "quantity": ["effect", "difference"], "q50": [0.5, 0.1], "q2.5": [-0.1, -0.02],
    ...     "q97.5": [1.0, 0.2], "mean": [0.5, 0.1], "prob": [0.9, 0.4],
    ...     "regimen": "a", "comparator": "no ketamine", "evidence": "extrapolated",
    ...     }).set_index(["question", "quantity"])
    >>> headline_table(answers).iloc[0].to_dict()  # doctest: +NORMALIZE_WHITESPACE
    {'quantity': 'difference', 'estimate': 0.1, 'q2.5': -0.02, 'q97.5': 0.2, 'p_benefit': 0.9,
     'evidence': 'extrapolated', 'robustness': 'not checked',
     'question': 'a vs no ketamine (extrapolated)'}
    >>> headline_table(answers).index.tolist()
    ['a vs no ketamine']
    """
    rows = answer_rows(answers)
    flags = robust_flags(robustness) if robustness is not None else pd.Series(dtype=object)
    labels = answers.reset_index().drop_duplicates("question").set_index("question")
    out = []
    for question, block in rows.groupby("question", sort=False):
        r = block.set_index("quantity")
        quantity = "difference" if "difference" in r.index else "effect"
        row = r.loc[quantity]
        regimen = labels.loc[question, "regimen"] if "regimen" in labels else question
        comparator = labels.loc[question, "comparator"] if "comparator" in labels else ""
        out.append(
            {
                "answer": f"{regimen} vs {comparator}" if comparator else str(regimen),
                "quantity": quantity,
                "estimate": float(row["q50"]),
                "q2.5": float(row["q2.5"]),
                "q97.5": float(row["q97.5"]),
                "p_benefit": float(row["prob_benefit"]),
                "evidence": row.get("evidence", ""),
                "robustness": flags.get((question, quantity), "not checked"),
                "question": question,
            }
        )
    return pd.DataFrame(out).set_index("answer")
