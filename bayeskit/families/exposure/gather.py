"""Gathering the exposure-response model's data from several evidence files.

Arm-level binary tables give arms; study-level tables give published contrasts; for
continuous outcomes, two-arm studies give standardised mean differences and single-patient
pre/post reports give a change standardised by an assumed outcome SD (stated in the spec).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd

from bayeskit.errors import UserError
from bayeskit.measures import effects


def _as_list(value) -> list[str] | None:
    if value is None:
        return None
    return [value] if isinstance(value, str) else list(value)


def gather(
    tables: Sequence[pd.DataFrame],
    *,
    scale: str,
    outcomes: str | Sequence[str] | None,
    timepoint: str | Sequence[str] | None,
    outcome_sd: Mapping[str, float] | None = None,
    sd_change: float | None = None,
    repeated: str = "first",
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Return (binary arms, contrasts) for the exposure-response model.

    ``outcomes`` lists the outcome names that measure the same construct, in order of
    preference; ``timepoint`` one timepoint or several. With ``repeated = "first"`` a
    study reporting several of them contributes only its first outcome (so one study is
    never counted twice). With ``repeated = "all"`` each selected outcome and timepoint
    of a study becomes a sub-study ``"STUDY [outcome, timepoint]"`` (naming only what
    varies) with the original name in column ``parent``; the model gives the sub-studies
    their own baselines, their study's deviation and bias, and weights 1/m (m
    sub-studies) on their log-likelihoods and baseline priors
    (:func:`~bayeskit.families.exposure.model.build`).

    Examples
    --------
    >>> import bayeskit as bk
    >>> ev = bk.load_evidence(bk.data_path("oud_abstinence.csv"))
    >>> arms, contrasts = gather([ev], scale="logit", outcomes="abstinence",
    ...                          timepoint="12 months")
    >>> sorted(arms["study"].unique()), len(arms), len(contrasts)
    (['KRUPITSKY2002', 'KRUPITSKY2007'], 4, 0)
    >>> gather([ev], scale="logit", outcomes="abstinence", timepoint=None)
    Traceback (most recent call last):
    ...
    bayeskit.errors.UserError: study KRUPITSKY2002 reports several timepoints; ...
    >>> arms, _ = gather([ev], scale="logit", outcomes="abstinence",
    ...                  timepoint=["12 months", "24 months"], repeated="all")
    >>> sorted(set(zip(arms["study"], arms["parent"])))  # doctest: +NORMALIZE_WHITESPACE
    [('KRUPITSKY2002 [12 months]', 'KRUPITSKY2002'),
     ('KRUPITSKY2002 [24 months]', 'KRUPITSKY2002'), ('KRUPITSKY2007', 'KRUPITSKY2007')]
    """
    if repeated not in ("first", "all"):
        raise UserError(f'option repeated must be "first" or "all" (got {repeated!r})')
    wanted = _as_list(outcomes)
    timepoints = _as_list(timepoint)
    outcome_sd = dict(outcome_sd or {})
    arms, contrasts = [], []
    for table in tables:
        if table.attrs.get("shape") == "study":
            c = table.copy()
            if wanted is not None and "outcome" in c:
                c = c[c["outcome"].isin(wanted)]
            if timepoints is not None and "timepoint" in c:
                c = c[c["timepoint"].isin(timepoints)]
            if "sei" not in c:
                c["sei"] = np.sqrt(c["vi"])
            if repeated == "all":
                c = _sub_studies(c)
            contrasts.append(c)
            continue
        t = table.copy()
        if wanted is not None:
            t = t[t["outcome"].isin(wanted)]
        if timepoints is not None and "timepoint" in t:
            t = t[t["timepoint"].isin(timepoints)]
        if t.empty:
            continue
        if repeated == "all":
            t = _sub_studies(t)
        else:
            t = _first_outcome_per_study(t, wanted)
        binary = t["events"].notna() if "events" in t else pd.Series(False, index=t.index)
        if scale == "logit":
            arms.append(t[binary])
        else:
            contrasts += _continuous_contrasts(t[~binary], outcome_sd, sd_change)
    arms_df = pd.concat(arms, ignore_index=True) if arms else pd.DataFrame()
    con_df = pd.concat(contrasts, ignore_index=True) if contrasts else pd.DataFrame()
    if len(arms_df) and "timepoint" in arms_df and repeated == "first":
        several = arms_df.groupby("study")["timepoint"].nunique()
        if (several > 1).any():
            raise UserError(
                f"study {several[several > 1].index[0]} reports several "
                "timepoints; choose one (timepoint in the spec), or enter each as a "
                'sub-study (option repeated = "all")'
            )
    if repeated == "all" and len(con_df) and "parent" not in con_df:
        con_df["parent"] = con_df["study"]
    if repeated == "all" and len(con_df):
        # SMDs computed from arms keep the study column but not always the others
        con_df["parent"] = con_df["parent"].fillna(con_df["study"])
    return arms_df, con_df


def _first_outcome_per_study(t: pd.DataFrame, wanted: list[str] | None) -> pd.DataFrame:
    if wanted is None:
        return t
    rank = t["outcome"].map({o: i for i, o in enumerate(wanted)})
    best = rank.groupby(t["study"]).transform("min")
    return t[rank == best]


def _sub_studies(t: pd.DataFrame) -> pd.DataFrame:
    """Name each outcome and timepoint of a study reporting several a sub-study of it.

    Examples
    --------
    >>> t = pd.DataFrame({"study": ["A", "A", "B"], "outcome": ["x", "y", "x"],
    ...                   "timepoint": ["1 y", "1 y", "1 y"]})
    >>> _sub_studies(t)[["study", "parent"]].values.tolist()
    [['A [x]', 'A'], ['A [y]', 'A'], ['B', 'B']]
    """
    t = t.copy()
    study = t["study"].astype(str)
    t["parent"] = study
    varying = [c for c in ("outcome", "timepoint") if c in t]
    for column in varying:
        several = t.groupby(study)[column].transform("nunique") > 1
        part = np.where(several, t[column].astype(str), "")
        t[f"_{column}_part"] = part
    if not varying:
        return t
    parts = t[[f"_{c}_part" for c in varying]].agg(lambda r: ", ".join(p for p in r if p), axis=1)
    t["study"] = np.where(parts != "", study + " [" + parts + "]", study)
    return t.drop(columns=[f"_{c}_part" for c in varying])


def _continuous_contrasts(t, outcome_sd, sd_change) -> list[pd.DataFrame]:
    out = []
    for (study, outcome), grp in t.groupby(["study", "outcome"], sort=False):
        if len(grp) >= 2:
            es = effects(grp, "SMD")
            es = es.rename(columns={"control_treatment": "control_treatment"})
            out.append(es.reset_index())
            continue
        arm = grp.iloc[0]
        if pd.isna(arm.get("baseline_mean")):
            continue
        if outcome not in outcome_sd:
            raise UserError(
                f"{study}: a single-arm pre/post {outcome!r} needs an assumed SD "
                f"of {outcome!r} to be put on the SMD scale (data.outcome_sd)"
            )
        scale = float(outcome_sd[outcome])
        n = float(arm["n"])
        if pd.notna(arm.get("sd")) and pd.notna(arm.get("baseline_sd")):
            var = arm["sd"] ** 2 + arm["baseline_sd"] ** 2 - arm["sd"] * arm["baseline_sd"]
            se = np.sqrt(var / n)
        else:
            se = (sd_change if sd_change is not None else scale) / np.sqrt(n)
        row = arm.to_dict() | {
            "yi": (arm["mean"] - arm["baseline_mean"]) / scale,
            "sei": se / scale,
            "control_dose_mg_per_kg": 0.0,
            "control_sessions": 0.0,
        }
        out.append(pd.DataFrame([row]))
    return out
