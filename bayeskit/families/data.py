"""The data a model family needs, prepared from evidence tables or effect sizes.

:class:`StudyData` holds one effect size per study (``normal-normal``);
:class:`ArmData` holds one row per arm (``binomial-normal``, ``normal-arm``), with each
arm's treatment coded -1/2 (control) or +1/2 (experimental or single arm), as Jackson et
al. (2018, Stat Med 37:1059) recommend.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from bayeskit.design import design_matrix
from bayeskit.errors import UserError
from bayeskit.measures import effects, select_outcome

Covariates = str | Sequence[str] | None


@dataclass
class StudyData:
    """One effect size ``yi`` with standard error ``sei`` per study.

    Made by :func:`study_data`; the data of the ``normal-normal`` family.

    Examples
    --------
    >>> import bayeskit as bk
    >>> from bayeskit.families.data import study_data
    >>> d = study_data(bk.load_evidence(bk.data_path("eight_schools.csv")))
    >>> d.study[:3], d.yi[:3].tolist(), d.measure, d.terms
    (['A', 'B', 'C'], [28.0, 8.0, -3.0], 'MD', [])
    """

    study: list[str]
    yi: np.ndarray
    sei: np.ndarray
    X: pd.DataFrame
    measure: str | None
    table: pd.DataFrame = field(repr=False)

    @property
    def terms(self) -> list[str]:
        """Names of the meta-regression terms (coefficients ``beta[<term>]``)."""
        return list(self.X.columns)


@dataclass
class ArmData:
    """One row per arm: counts (binary) or mean and its standard error (continuous).

    Made by :func:`arm_data`; the data of the ``binomial-normal`` and ``normal-arm``
    families. ``treat`` is -1/2 for a control arm and +1/2 for an experimental or single
    arm; ``study_idx`` maps each arm to its study.

    Examples
    --------
    >>> import bayeskit as bk
    >>> from bayeskit.families.data import arm_data
    >>> ev = bk.load_evidence(bk.data_path("oud_abstinence.csv"))
    >>> d = arm_data(ev, outcome_type="binary", timepoint="12 months")
    >>> d.arm[:2], d.treat[:2].tolist(), d.events[:2].tolist(), d.n[:2].tolist()
    (['KRUPITSKY2002:high_dose', 'KRUPITSKY2002:low_dose'], [0.5, -0.5], [8, 2], [35.0, 35.0])
    """

    study: list[str]
    arm: list[str]
    study_idx: np.ndarray
    treat: np.ndarray  # -1/2 control, +1/2 experimental or single arm
    outcome_type: str
    events: np.ndarray | None
    n: np.ndarray
    mean: np.ndarray | None
    se: np.ndarray | None
    X: pd.DataFrame
    table: pd.DataFrame = field(repr=False)
    measure: str = "OR"

    @property
    def terms(self) -> list[str]:
        """Names of the meta-regression terms (coefficients ``beta[<term>]``)."""
        return list(self.X.columns)


def study_data(
    table: pd.DataFrame,
    *,
    measure: str | None = None,
    outcome: str | None = None,
    timepoint: str | None = None,
    covariates: Covariates = None,
    **effect_options,
) -> StudyData:
    """Prepare study-level data: pass a study-level table, or an arm-level one with a measure.

    Examples
    --------
    >>> import bayeskit as bk
    >>> d = study_data(bk.load_evidence(bk.data_path("eight_schools.csv")))
    >>> d.study[:3], d.yi[:3].tolist(), d.sei[:3].tolist()
    (['A', 'B', 'C'], [28.0, 8.0, -3.0], [15.0, 10.0, 16.0])
    """
    es = effects(table, measure, outcome=outcome, timepoint=timepoint, **effect_options)
    if es.index.has_duplicates:
        dup = es.index[es.index.duplicated()][0]
        raise UserError(
            f"study {dup!r} appears more than once; choose one outcome and "
            "timepoint per study (--outcome, --timepoint), or keep them all as nested "
            "effect sizes with model normal-multilevel"
        )
    return StudyData(
        study=[str(s) for s in es.index],
        yi=es["yi"].to_numpy(float),
        sei=es["sei"].to_numpy(float),
        X=design_matrix(es, covariates),
        measure=es.attrs.get("measure") or measure,
        table=es,
    )


def arm_data(
    table: pd.DataFrame,
    *,
    outcome_type: str,
    outcome: str | None = None,
    timepoint: str | None = None,
    covariates: Covariates = None,
) -> ArmData:
    """Prepare arm-level data for ``binomial-normal`` (binary) or ``normal-arm`` (continuous).

    Examples
    --------
    >>> import bayeskit as bk
    >>> ev = bk.load_evidence(bk.data_path("oud_abstinence.csv"))
    >>> d = arm_data(ev, outcome_type="binary", timepoint="12 months")
    >>> d.arm, d.treat.tolist(), d.events.tolist()
    (['KRUPITSKY2002:high_dose', 'KRUPITSKY2002:low_dose', 'KRUPITSKY2007:three_sessions', \
'KRUPITSKY2007:one_session'], [0.5, -0.5, 0.5, -0.5], [8, 2, 13, 6])
    """
    if table.attrs.get("shape") == "study" or "yi" in table.columns:
        raise UserError(
            "this model needs an arm-level table (one row per arm); the data are "
            "study-level effect sizes: use the normal-normal model"
        )
    arms = select_outcome(table, outcome_type, outcome, timepoint).reset_index(drop=True)
    study = list(dict.fromkeys(arms["study"].astype(str)))
    role = arms["role"] if "role" in arms else pd.Series(None, index=arms.index, dtype=object)
    treat = np.where(role == "control", -0.5, 0.5)
    if outcome_type == "continuous":
        sd = arms["sd"].astype(float)
        if sd.isna().any():
            bad = arms.loc[sd.isna(), "study"].tolist()
            raise UserError(f"the normal-arm model needs each arm's SD; missing for {bad}")
    # study-level covariates come from each study's experimental (or single) arm
    lead = arms.assign(_c=(role == "control")).sort_values("_c", kind="stable")
    per_study = lead.drop_duplicates("study").set_index("study").loc[study]
    n = arms["n"].to_numpy(float)
    return ArmData(
        study=study,
        arm=(arms["study"].astype(str) + ":" + arms["arm"].astype(str)).tolist(),
        study_idx=np.array([study.index(s) for s in arms["study"].astype(str)]),
        treat=treat.astype(float),
        outcome_type=outcome_type,
        events=arms["events"].to_numpy(int) if outcome_type == "binary" else None,
        n=n,
        mean=arms["mean"].to_numpy(float) if outcome_type == "continuous" else None,
        se=(arms["sd"].to_numpy(float) / np.sqrt(n)) if outcome_type == "continuous" else None,
        X=design_matrix(per_study, covariates),
        table=arms,
        measure="OR" if outcome_type == "binary" else "MD",
    )
