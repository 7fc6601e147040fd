"""Effect sizes from evidence tables: the analogue of metafor's ``escalc``.

Two layers:

* :func:`effect_sizes` works on arrays with metafor's argument names
  (``ai, bi, ci, di``; ``xi, ni``; ``m1i, sd1i, n1i, m2i, sd2i, n2i``; ``ri``) and returns
  ``yi`` and ``vi`` exactly as ``metafor::escalc`` computes them with its defaults;
* :func:`effects` takes an arm-level evidence table, pairs each experimental arm with its
  study's control arm (or takes single arms for one-group measures) and returns one row
  per comparison, indexed by ``study``, with ``yi``, ``vi``, ``sei`` and the covariates.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np
import pandas as pd
from scipy.special import gammaln

from bayeskit.errors import UserError


@dataclass(frozen=True)
class Measure:
    """An effect measure: its code, what data it needs, what it means and what it is called.

    :data:`MEASURES` and :data:`ALIASES` are the one table of measure names: reports,
    summaries and the command line take their words from here.

    Attributes
    ----------
    code : str
        bayeskit's code (``OR``, ``SMD``, ...).
    outcome_type : {"binary", "continuous"}
    groups : {1, 2}
        One arm (``PLO``, ``PREPOST``, ``SMCR``, ``SMCC``) or experimental vs control.
    description : str
    label : str
        The model scale in words, for sentences and axis labels (``"log odds ratio"``).
    ratio : str or None
        For log-ratio measures, the ratio in words (``"odds ratio"``); its parameter name
        in summaries is :attr:`ratio_parameter` (``odds_ratio``).

    Examples
    --------
    >>> from bayeskit.measures import MEASURES
    >>> MEASURES["SMD"].outcome_type, MEASURES["SMD"].groups
    ('continuous', 2)
    """

    code: str
    outcome_type: Literal["binary", "continuous"]
    groups: Literal[1, 2]
    description: str
    label: str = "effect"
    ratio: str | None = None

    @property
    def ratio_parameter(self) -> str | None:
        """The summary's name of the pooled ratio (``odds_ratio``), or None."""
        return self.ratio.replace(" ", "_") if self.ratio else None


MEASURES = {m.code: m for m in [
    Measure("OR", "binary", 2, "log odds ratio, experimental vs control",
            "log odds ratio", "odds ratio"),
    Measure("RR", "binary", 2, "log risk ratio, experimental vs control",
            "log risk ratio", "risk ratio"),
    Measure("RD", "binary", 2, "risk difference, experimental minus control",
            "risk difference"),
    Measure("PLO", "binary", 1, "logit of a single arm's proportion", "log odds"),
    Measure("MD", "continuous", 2, "raw mean difference, experimental minus control",
            "mean difference"),
    Measure("SMD", "continuous", 2, "standardised mean difference (Hedges' g), experimental "
            "minus control", "standardised mean difference"),
    Measure("PREPOST", "continuous", 1, "single-arm raw mean change, post minus pre "
            "(metafor's MC)", "mean change"),
    Measure("SMCR", "continuous", 1, "single-arm standardised mean change, standardised by the "
            "pre-treatment SD (metafor's SMCR)", "standardised mean change"),
    Measure("SMCC", "continuous", 1, "single-arm standardised mean change, standardised by the "
            "SD of the change (metafor's SMCC)", "standardised mean change"),
]}  # fmt: skip
#: metafor's names for the same measures.
ALIASES = {"MC": "PREPOST", "LOGOR": "OR", "LOGRR": "RR", "HEDGES": "SMD", "G": "SMD"}
#: Measures whose model scale is the log of a ratio, reported back on the ratio scale.
RATIO_MEASURES = {code: m.ratio for code, m in MEASURES.items() if m.ratio}
#: What each measure's model scale is called in sentences and axis labels.
MEASURE_LABELS = {code: m.label for code, m in MEASURES.items()}
#: Largest magnitude of an effect size or standard error, and smallest standard error:
#: beyond these, squares and sums in double precision lose the data (1e308 overflows).
#: Rescale such data (other units) instead.
MAX_EFFECT, MIN_SE = 1e10, 1e-10


def ratio_parameter(code: str | None) -> str | None:
    """Return the summary's name of a log-ratio measure's pooled ratio, or None.

    Examples
    --------
    >>> ratio_parameter("OR"), ratio_parameter("RR"), ratio_parameter("SMD"), ratio_parameter(None)
    ('odds_ratio', 'risk_ratio', None, None)
    """
    m = MEASURES.get(code or "")
    return m.ratio_parameter if m else None


ZeroRule = Literal["only0", "all", "if0all", "none"]


def resolve_measure(code: str) -> Measure:
    """Return the :class:`Measure` for ``code`` (case-insensitive; metafor's names accepted).

    Parameters
    ----------
    code : str
        ``OR``, ``RR``, ``RD``, ``PLO``, ``MD``, ``SMD``, ``PREPOST``, ``SMCR``, ``SMCC``,
        or one of metafor's names (``MC``, ``LOGOR``, ``LOGRR``, ``HEDGES``, ``G``).

    Returns
    -------
    Measure

    Raises
    ------
    UserError
        For an unknown code; the message lists the known ones.

    Examples
    --------
    >>> from bayeskit.measures import resolve_measure
    >>> resolve_measure("mc")
    Measure(code='PREPOST', outcome_type='continuous', groups=1, description=...)
    >>> resolve_measure("OR").description
    'log odds ratio, experimental vs control'
    """
    key = code.strip().upper()
    key = ALIASES.get(key, key)
    if key not in MEASURES:
        raise UserError(
            f"unknown effect measure {code!r}; choose one of "
            f"{', '.join(MEASURES)} (metafor aliases: {', '.join(ALIASES)})"
        )
    return MEASURES[key]


def _f(x) -> np.ndarray:
    return np.asarray(x, dtype=float)


def _add_to_cells(cells: list[np.ndarray], add: float, to: ZeroRule) -> list[np.ndarray]:
    """Add ``add`` to every cell of the tables that need it, as metafor's ``to`` says."""
    zero = np.any([c == 0 for c in cells], axis=0)
    if to == "only0":
        which = zero
    elif to == "all":
        which = np.ones_like(zero)
    elif to == "if0all":
        which = np.full_like(zero, zero.any())
    elif to == "none":
        which = np.zeros_like(zero)
    else:
        raise UserError(f"unknown zero-cell rule to={to!r}; choose only0, all, if0all or none")
    return [np.where(which, c + add, c) for c in cells]


def small_sample_correction(m) -> np.ndarray:
    """Hedges' exact small-sample correction ``c(m) = Gamma(m/2) / (sqrt(m/2) Gamma((m-1)/2))``.

    Computed on the log scale, as metafor does, so large ``m`` does not overflow.

    Examples
    --------
    >>> round(float(small_sample_correction(8)), 7)  # 1 - 3/(4m - 1) would give 0.9032258
    0.9027033
    """
    m = _f(m)
    return np.exp(gammaln(m / 2) - np.log(np.sqrt(m / 2)) - gammaln((m - 1) / 2))


def effect_sizes(
    measure: str,
    *,
    ai=None, bi=None, ci=None, di=None, n1i=None, n2i=None,
    xi=None, ni=None,
    m1i=None, m2i=None, sd1i=None, sd2i=None, ri=None,
    add: float = 0.5,
    to: ZeroRule = "only0",
    drop00: bool = False,
) -> tuple[np.ndarray, np.ndarray]:  # fmt: skip
    """Compute ``yi`` and ``vi`` from arrays, as ``metafor::escalc`` does by default.

    Parameters
    ----------
    measure : str
        ``OR``, ``RR``, ``RD`` (2x2 tables: ``ai, bi, ci, di`` or ``ai, n1i, ci, n2i``);
        ``PLO`` (``xi, ni``); ``MD``, ``SMD`` (``m1i, sd1i, n1i, m2i, sd2i, n2i``);
        ``PREPOST``/``MC``, ``SMCC`` and ``SMCR`` (``m1i`` post, ``m2i`` pre, ``sd1i``,
        ``sd2i``, ``ni``, ``ri``; ``SMCR`` standardises by ``sd1i`` alone, so pass the
        pre-treatment SD there, as metafor's help advises).
    add, to, drop00
        Zero-cell handling for ``OR``, ``RR`` and ``PLO``, with metafor's meaning and
        defaults: ``add`` is added to every cell of the tables selected by ``to``
        (``"only0"``: tables with a zero cell; ``"all"``; ``"if0all"``: all tables if any has
        a zero; ``"none"``); ``drop00=True`` gives NaN for tables with no events (or only
        events) in both groups.

    Returns
    -------
    yi, vi : ndarray
        Effect sizes and their sampling variances.

    Examples
    --------
    >>> yi, vi = effect_sizes("OR", ai=[4], bi=[119], ci=[11], di=[128])
    >>> round(float(yi[0]), 4), round(float(vi[0]), 4)
    (-0.9387, 0.3571)
    """
    m = resolve_measure(measure)
    if m.code in ("OR", "RR", "RD"):
        ai, ci = _f(ai), _f(ci)
        bi = _f(bi) if bi is not None else _f(n1i) - ai
        di = _f(di) if di is not None else _f(n2i) - ci
        both00 = ((ai == 0) & (ci == 0)) | ((bi == 0) & (di == 0))
        # metafor adds to RD's cells too (only the yi of OR/RR strictly needs it)
        ai, bi, ci, di = _add_to_cells([ai, bi, ci, di], add, to)
        n1, n2 = ai + bi, ci + di
        p1, p2 = ai / n1, ci / n2
        with np.errstate(divide="ignore", invalid="ignore"):
            if m.code == "OR":
                yi = np.log(p1 / (1 - p1)) - np.log(p2 / (1 - p2))
                vi = 1 / ai + 1 / bi + 1 / ci + 1 / di
            elif m.code == "RR":
                yi = np.log(p1) - np.log(p2)
                vi = 1 / ai - 1 / n1 + 1 / ci - 1 / n2
            else:
                yi = p1 - p2
                vi = p1 * (1 - p1) / n1 + p2 * (1 - p2) / n2
        if drop00:
            yi, vi = np.where(both00, np.nan, yi), np.where(both00, np.nan, vi)
        return _finite(yi, vi)
    if m.code == "PLO":
        xi = _f(xi)
        yes, no = _add_to_cells([xi, _f(ni) - xi], add, to)
        p = yes / (yes + no)
        with np.errstate(divide="ignore", invalid="ignore"):
            return _finite(np.log(p / (1 - p)), 1 / yes + 1 / no)
    if m.code in ("MD", "SMD"):
        m1i, m2i, sd1i, sd2i, n1i, n2i = map(_f, (m1i, m2i, sd1i, sd2i, n1i, n2i))
        if m.code == "MD":
            return _finite(m1i - m2i, sd1i**2 / n1i + sd2i**2 / n2i)
        pooled = np.sqrt(((n1i - 1) * sd1i**2 + (n2i - 1) * sd2i**2) / (n1i + n2i - 2))
        yi = small_sample_correction(n1i + n2i - 2) * (m1i - m2i) / pooled
        return _finite(yi, 1 / n1i + 1 / n2i + yi**2 / (2 * (n1i + n2i)))
    # one group measured twice: m1i is post, m2i pre
    m1i, m2i, ni, ri = map(_f, (m1i, m2i, ni, ri))
    sd1i = _f(sd1i)
    if m.code == "SMCR":  # standardised by sd1i alone, as metafor does (pass the pre SD)
        yi = small_sample_correction(ni - 1) * (m1i - m2i) / sd1i
        return _finite(yi, 2 * (1 - ri) / ni + yi**2 / (2 * ni))
    sd2i = _f(sd2i)
    var_change = sd1i**2 + sd2i**2 - 2 * ri * sd1i * sd2i
    if m.code == "PREPOST":
        return _finite(m1i - m2i, var_change / ni)
    yi = small_sample_correction(ni - 1) * (m1i - m2i) / np.sqrt(var_change)  # SMCC
    return _finite(yi, 1 / ni + yi**2 / (2 * ni))


def _finite(yi: np.ndarray, vi: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Missing (NaN) where either is infinite or undefined, and vi < 0 missing, as metafor."""
    bad = ~np.isfinite(yi) | ~np.isfinite(vi)
    yi, vi = np.where(bad, np.nan, yi), np.where(bad, np.nan, vi)
    return yi, np.where(vi < 0, np.nan, vi)


# --- from evidence tables ----------------------------------------------------------------

#: Arm-level columns carried to the effect-size table as study covariates.
COVARIATES = (
    "outcome", "timepoint", "followup_months", "design", "indication", "treatment", "route",
    "dose_mg_per_kg", "sessions", "bioavailability", "systemic_dose_mg_per_kg", "unit",
)  # fmt: skip
#: The control arm's covariates that matter for a contrast (high vs low dose, say).
CONTROL_COVARIATES = ("treatment", "route", "dose_mg_per_kg", "sessions", "systemic_dose_mg_per_kg")
_NOT_COVARIATES = frozenset(
    {
        "row",
        "file",
        "study",
        "arm",
        "n",
        "events",
        "mean",
        "sd",
        "baseline_mean",
        "baseline_sd",
        "role",
        "source",
        "derived",
        "notes",
        "citation",
        "value_status",
        "outcome_type",
        "yi",
        "vi",
        "sei",
        "measure",
    }
)


def effects(
    evidence: pd.DataFrame,
    measure: str | None = None,
    *,
    outcome: str | None = None,
    timepoint: str | None = None,
    add: float = 0.5,
    to: ZeroRule = "only0",
    drop00: bool = False,
    ri: float = 0.5,
    sd_change: float | None = None,
) -> pd.DataFrame:
    """Compute one effect size per study comparison from an evidence table.

    Parameters
    ----------
    evidence : DataFrame
        From :func:`bayeskit.load_evidence`. Arm-level tables are turned into effect sizes;
        study-level tables pass through (``sei`` and ``vi`` completed from each other).
    measure : str
        ``OR``, ``RR``, ``RD``, ``MD``, ``SMD`` (experimental arm vs the study's control
        arm; a study with several experimental arms gives one row per arm, labelled
        ``STUDY:arm``), or ``PLO``, ``PREPOST``, ``SMCR`` (one row per arm). metafor's codes
        are accepted (``MC`` for ``PREPOST``). Not needed for study-level tables.
    outcome, timepoint : str, optional
        Which outcome and timepoint to use; required when the table holds several.
    add, to, drop00
        Zero-cell handling, as in metafor (see :func:`effect_sizes`).
    ri : float
        Assumed pre/post correlation for ``PREPOST`` and ``SMCR`` (default 0.5).
    sd_change : float, optional
        Assumed SD of the pre/post change for arms without SDs (single-patient case
        reports). Without it such arms are skipped.

    Returns
    -------
    DataFrame
        Indexed by ``study``, with ``yi``, ``vi``, ``sei``, the arm sizes and the study's
        covariates (``control_*`` columns hold the control arm's dose, route and sessions).
        ``attrs`` holds ``measure``, ``outcome``, ``timepoint`` and ``skipped`` (each study
        left out, with the reason).

    Examples
    --------
    >>> import bayeskit as bk
    >>> ev = bk.load_evidence(bk.data_path("oud_abstinence.csv"))
    >>> es = bk.effects(ev, "OR", outcome="abstinence", timepoint="12 months")
    >>> list(es.index)
    ['KRUPITSKY2002', 'KRUPITSKY2007']
    """
    for name, value in (("outcome", outcome), ("timepoint", timepoint), ("measure", measure)):
        if value is not None and not isinstance(value, str):
            raise UserError(
                f"{name} must be one text value for effect sizes (got {value!r}); "
                "analyse one at a time"
            )
    if evidence.attrs.get("shape") == "study" or "yi" in evidence.columns:
        return _pass_through(_study_rows(evidence, measure, outcome, timepoint), measure)
    if measure is None:
        raise UserError(
            f"an arm-level table needs an effect measure: choose one of {', '.join(MEASURES)}"
        )
    m = resolve_measure(measure)
    arms = select_outcome(evidence, m.outcome_type, outcome, timepoint, measure=m.code)
    if m.groups == 2:
        rows, skipped = _contrasts(arms, m, add, to, drop00)
    else:
        rows, skipped = _single_arms(arms, m, add, to, ri, sd_change)
    if not rows:
        why = "; ".join(f"{s}: {r}" for s, r in skipped) or "no rows"
        raise UserError(
            f"measure {m.code} gives no effect sizes for outcome {arms['outcome'].iloc[0]!r}: {why}"
        )
    out = pd.DataFrame(rows).set_index("study")
    out["sei"] = np.sqrt(out["vi"])
    lead = ["yi", "vi", "sei"]
    out = out[lead + [c for c in out.columns if c not in lead]]
    _check_scale(out)
    out.attrs = {
        "measure": m.code,
        "description": m.description,
        "outcome": arms["outcome"].iloc[0],
        "timepoint": _timepoints(arms)[0] if _timepoints(arms) else None,
        "skipped": skipped,
        **{k: evidence.attrs[k] for k in ("files", "sha256") if k in evidence.attrs},
    }
    return out


def _timepoints(arms: pd.DataFrame) -> list[str]:
    if "timepoint" not in arms.columns:
        return []
    return sorted(arms["timepoint"].dropna().unique())


def select_outcome(
    ev: pd.DataFrame,
    outcome_type: str,
    outcome: str | None = None,
    timepoint: str | None = None,
    *,
    measure: str | None = None,
) -> pd.DataFrame:
    """Return the arm rows of one outcome of ``outcome_type`` at one timepoint.

    Raises a :class:`UserError` when the choice is ambiguous (several outcomes, or a study
    reporting several timepoints) or matches nothing.

    Examples
    --------
    >>> import bayeskit as bk
    >>> from bayeskit.measures import select_outcome
    >>> ev = bk.load_evidence(bk.data_path("oud_abstinence.csv"))
    >>> rows = select_outcome(ev, "binary", timepoint="12 months")
    >>> rows["arm"].tolist(), rows["events"].tolist()
    (['high_dose', 'low_dose', 'three_sessions', 'one_session'], [8, 2, 13, 6])
    """
    need = f"measure {measure}" if measure else "this model"
    if outcome is not None:
        if outcome not in set(ev["outcome"]):
            raise UserError(
                f"no rows for outcome {outcome!r}; the table has "
                f"{', '.join(sorted(set(ev['outcome'])))}"
            )
        ev = ev[ev["outcome"] == outcome]
    kind = (
        np.where(ev["events"].notna(), "binary", "continuous")
        if "events" in ev
        else (np.full(len(ev), "continuous"))
    )
    fits = ev[kind == outcome_type]
    if fits.empty:
        raise UserError(
            f"{need} needs a {outcome_type} outcome, and "
            + (f"outcome {outcome!r} is not one" if outcome else "the table has none")
        )
    outcomes = sorted(set(fits["outcome"]))
    if len(outcomes) > 1:
        raise UserError(
            f"the table has several {outcome_type} outcomes ({', '.join(outcomes)}); "
            "choose one with --outcome"
        )
    if timepoint is not None:
        if "timepoint" not in fits or timepoint not in set(fits["timepoint"].dropna()):
            raise UserError(
                f"no rows for timepoint {timepoint!r} on outcome {outcomes[0]!r}; "
                f"timepoints: {', '.join(_timepoints(fits)) or 'none given'}"
            )
        fits = fits[fits["timepoint"] == timepoint]
    elif "timepoint" in fits:
        per_study = fits.groupby("study")["timepoint"].nunique()
        several = per_study[per_study > 1]
        if len(several):
            raise UserError(
                f"study {several.index[0]} reports outcome {outcomes[0]!r} at several "
                f"timepoints ({', '.join(_timepoints(fits))}); choose one with "
                "--timepoint"
            )
    return fits


def _covariates(arm: pd.Series, control: pd.Series | None) -> dict:
    row = {c: arm[c] for c in arm.index if c in COVARIATES or c not in _NOT_COVARIATES}
    if control is not None:
        row |= {f"control_{c}": control[c] for c in CONTROL_COVARIATES if c in control.index}
    return row


def _contrasts(arms, m, add, to, drop00):
    rows, skipped = [], []
    for study, grp in arms.groupby("study", sort=False):
        if len(grp) < 2:
            skipped.append((study, f"one arm only; {m.code} compares two arms"))
            continue
        control = grp[grp["role"] == "control"].iloc[0]
        for _, arm in grp[grp["role"] != "control"].iterrows():
            label = study if len(grp) == 2 else f"{study}:{arm['arm']}"
            if m.outcome_type == "binary":
                yi, vi = effect_sizes(
                    m.code,
                    ai=[arm["events"]],
                    n1i=[arm["n"]],
                    ci=[control["events"]],
                    n2i=[control["n"]],
                    add=add,
                    to=to,
                    drop00=drop00,
                )
                data = {
                    "ai": arm["events"],
                    "n1i": arm["n"],
                    "ci": control["events"],
                    "n2i": control["n"],
                }
            else:
                if pd.isna(arm["sd"]) or pd.isna(control["sd"]):
                    skipped.append((label, "an arm has no SD"))
                    continue
                yi, vi = effect_sizes(
                    m.code,
                    m1i=[arm["mean"]],
                    sd1i=[arm["sd"]],
                    n1i=[arm["n"]],
                    m2i=[control["mean"]],
                    sd2i=[control["sd"]],
                    n2i=[control["n"]],
                )
                data = {"n1i": arm["n"], "n2i": control["n"]}
            if not np.isfinite(yi[0]) or not np.isfinite(vi[0]) or vi[0] <= 0:
                skipped.append((label, "no finite effect size (zero cells with drop00 or add=0?)"))
                continue
            rows.append(
                {
                    "study": label,
                    "yi": float(yi[0]),
                    "vi": float(vi[0]),
                    **data,
                    **_covariates(arm, control),
                }
            )
    return rows, skipped


def _single_arms(arms, m, add, to, ri, sd_change):
    rows, skipped = [], []
    counts = arms.groupby("study")["arm"].transform("size")
    for (_, arm), k in zip(arms.iterrows(), counts, strict=True):
        label = arm["study"] if k == 1 else f"{arm['study']}:{arm['arm']}"
        if m.code == "PLO":
            yi, vi = effect_sizes("PLO", xi=[arm["events"]], ni=[arm["n"]], add=add, to=to)
            data = {"xi": arm["events"], "ni": arm["n"]}
        else:
            if "baseline_mean" not in arm.index or pd.isna(arm["baseline_mean"]):
                skipped.append((label, "no baseline_mean (pre-treatment value)"))
                continue
            sd_post, sd_pre = arm.get("sd"), arm.get("baseline_sd")
            if pd.isna(sd_post) or pd.isna(sd_pre):
                if sd_change is None:
                    skipped.append(
                        (
                            label,
                            "no SDs; give an assumed SD of the change "
                            "(sd_change / --sd-change) to include it",
                        )
                    )
                    continue
                if m.code != "PREPOST":
                    skipped.append((label, f"{m.code} needs both SDs"))
                    continue
                yi = np.array([arm["mean"] - arm["baseline_mean"]])
                vi = np.array([sd_change**2 / arm["n"]])
            else:
                if m.code == "SMCR":  # standardise by the pre-treatment SD
                    sd_post, sd_pre = sd_pre, sd_post
                yi, vi = effect_sizes(
                    m.code,
                    m1i=[arm["mean"]],
                    m2i=[arm["baseline_mean"]],
                    sd1i=[sd_post],
                    sd2i=[sd_pre],
                    ni=[arm["n"]],
                    ri=[ri],
                )
            data = {"ni": arm["n"]}
        if not np.isfinite(yi[0]) or not np.isfinite(vi[0]) or vi[0] <= 0:
            skipped.append((label, "no finite effect size"))
            continue
        rows.append(
            {
                "study": label,
                "yi": float(yi[0]),
                "vi": float(vi[0]),
                **data,
                **_covariates(arm, None),
            }
        )
    return rows, skipped


def _study_rows(
    ev: pd.DataFrame, measure: str | None, outcome: str | None, timepoint: str | None
) -> pd.DataFrame:
    """Return the rows of a study-level table that the outcome, timepoint and measure select.

    A table mixing several measures (or outcomes) is refused unless a filter picks one:
    pooling a log odds ratio with a mean difference is never meant.
    """
    rows = ev
    for column, value, option in (
        ("outcome", outcome, "--outcome"),
        ("timepoint", timepoint, "--timepoint"),
    ):
        if value is None:
            continue
        if column not in rows:
            raise UserError(
                f"{option} {value!r} was given but the study-level table has no '{column}' column"
            )
        present = sorted(rows[column].dropna().astype(str).unique())
        rows = rows[rows[column] == value]
        if rows.empty:
            raise UserError(
                f"no rows for {column} {value!r}; the table has "
                f"{', '.join(map(repr, present)) or 'none'}"
            )
    if "measure" in rows:
        codes = rows["measure"].map(_code, na_action="ignore")
        present = sorted(codes.dropna().unique())
        if measure is not None:
            wanted = resolve_measure(measure).code
            if wanted not in present:
                raise UserError(
                    f"--measure {measure} contradicts the table's measure column, which "
                    f"holds {', '.join(present) or 'nothing'}; leave --measure out or "
                    "choose one the table holds"
                )
            rows = rows[codes == wanted]
        elif len(present) > 1:
            raise UserError(
                f"the study-level table mixes measures ({', '.join(present)}); they "
                "cannot be pooled together: choose one with --measure (and --outcome)"
            )
    if outcome is None and "outcome" in rows:
        outcomes = sorted(rows["outcome"].dropna().astype(str).unique())
        if len(outcomes) > 1:
            raise UserError(
                f"the study-level table holds several outcomes ({', '.join(outcomes)}); "
                "choose one with --outcome"
            )
    return rows


def _code(text: object) -> str:
    """Return a measure column's cell as bayeskit's code (metafor's names accepted)."""
    key = str(text).strip().upper()
    key = ALIASES.get(key, key)
    return key if key in MEASURES else str(text).strip()


def _check_scale(out: pd.DataFrame) -> None:
    """Refuse effect sizes whose scale double precision cannot carry through a fit."""
    big = (out["yi"].abs() > MAX_EFFECT) | (out["sei"] > MAX_EFFECT) | (out["sei"] < MIN_SE)
    if big.any():
        study = big[big].index[0]
        row = out.loc[big].iloc[0]
        raise UserError(
            f"study {study}: yi = {row['yi']:g}, sei = {row['sei']:g}; effect sizes and "
            f"standard errors must lie within {MAX_EFFECT:g} in magnitude and standard "
            f"errors above {MIN_SE:g}, or the computations lose them: rescale the data "
            "(other units)"
        )


def _pass_through(ev: pd.DataFrame, measure: str | None = None) -> pd.DataFrame:
    out = ev.copy()
    if "sei" not in out:
        out["sei"] = np.sqrt(out["vi"])
    if "vi" not in out:
        out["vi"] = out["sei"] ** 2
    out["sei"] = out["sei"].fillna(np.sqrt(out["vi"]))
    out["vi"] = out["vi"].fillna(out["sei"] ** 2)
    out = out.drop(columns=[c for c in ("row", "file") if c in out]).set_index("study")
    lead = ["yi", "vi", "sei"]
    out = out[lead + [c for c in out.columns if c not in lead]]
    _check_scale(out)
    codes = ev["measure"].dropna().map(_code).unique() if "measure" in ev else []
    if len(codes) == 1:
        code = str(codes[0])
    else:
        code = resolve_measure(measure).code if measure is not None else None
    out.attrs = {
        "measure": code,
        "skipped": [],
        **{k: ev.attrs[k] for k in ("files", "sha256") if k in ev.attrs},
    }
    return out
