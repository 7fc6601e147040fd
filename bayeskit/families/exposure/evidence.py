"""What the exposure-response evidence contains: the contrasts trials randomised.

An answer is *within the evidence* when a randomised trial of the indication compared
exactly those two regimens (dose, route and sessions), so the data, not the shape of the
dose response, carry it. Everything else (against no ketamine where no arm went without
it, another dose or route) is *extrapolated*: it leans on the shape and its priors, and
is stated with the doses the data covered.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from bayeskit.families.exposure.model import RANDOMISED, ExposureData

WITHIN = "within the evidence"
EXTRAPOLATED = "extrapolated"


@dataclass(frozen=True)
class Regimen:
    """A dose per session, route and number of sessions (dose 0: no ketamine).

    Examples
    --------
    >>> Regimen(2.0, "im", 3).text(), Regimen(0.0, None, 0).text()
    ('2 mg/kg im, 3 sessions', 'no ketamine')
    """

    dose_mg_per_kg: float
    route: str | None
    sessions: float

    def text(self) -> str:
        """Return the regimen in words."""
        if self.dose_mg_per_kg <= 0:
            return "no ketamine"
        n = int(self.sessions) if float(self.sessions).is_integer() else self.sessions
        return f"{self.dose_mg_per_kg:g} mg/kg {self.route}, {n} session{'s' * (n != 1)}"

    def same(self, other: Regimen) -> bool:
        """Whether two regimens are the same (any two regimens without ketamine are)."""
        if self.dose_mg_per_kg <= 0 or other.dose_mg_per_kg <= 0:
            return self.dose_mg_per_kg <= 0 and other.dose_mg_per_kg <= 0
        return (
            bool(np.isclose(self.dose_mg_per_kg, other.dose_mg_per_kg))
            and self.route == other.route
            and bool(np.isclose(self.sessions, other.sessions))
        )


def _regimen(row, prefix: str = "") -> Regimen:
    dose = float(row[f"{prefix}dose_mg_per_kg"])
    route = row.get(f"{prefix}route")
    sessions = row.get(f"{prefix}sessions")
    return Regimen(
        dose,
        route if isinstance(route, str) else None,
        1.0 if sessions is None or pd.isna(sessions) else float(sessions),
    )


def randomised_contrasts(data: ExposureData) -> pd.DataFrame:
    """Each randomised comparison in the data: study, indication, experimental, control.

    Examples
    --------
    >>> import bayeskit as bk
    >>> from bayeskit.families.exposure.model import exposure_data
    >>> ev = bk.load_evidence(bk.data_path("oud_abstinence.csv"))
    >>> d = exposure_data(ev[ev["timepoint"] == "12 months"], None, routes=bk.load_routes())
    >>> [(r.study, r.experimental.text(), r.control.text())
    ...  for r in randomised_contrasts(d).itertuples()]  # doctest: +NORMALIZE_WHITESPACE
    [('KRUPITSKY2002', '2 mg/kg im, 1 session', '0.2 mg/kg im, 1 session'),
     ('KRUPITSKY2007', '2 mg/kg im, 3 sessions', '2 mg/kg im, 1 session')]
    """
    rows = []
    arms = data.arms
    if len(arms):
        for _, grp in arms[arms["design"].isin(RANDOMISED)].groupby("study", sort=False):
            ctl = grp[grp["treated"] == 0]
            if ctl.empty:
                continue
            for _, arm in grp[grp["treated"] == 1].iterrows():
                rows.append((_trial(arm), arm["indication"], _regimen(arm), _regimen(ctl.iloc[0])))
    con = data.contrasts
    if len(con):
        for _, c in con[con["design"].isin(RANDOMISED)].iterrows():
            ctl = _regimen(c, "control_")
            rows.append((_trial(c), c["indication"], _regimen(c), ctl))
    # sub-studies of one trial (repeated = "all") are one randomised comparison
    seen, unique = set(), []
    for row in rows:
        key = (row[0], row[1], row[2].text(), row[3].text())
        if key not in seen:
            seen.add(key)
            unique.append(row)
    return pd.DataFrame(unique, columns=["study", "indication", "experimental", "control"])


def _trial(row: pd.Series) -> str:
    """Return the study a row belongs to: its ``parent`` when it is a sub-study."""
    parent = row.get("parent")
    return str(parent) if isinstance(parent, str) else str(row["study"])


def observed_doses(data: ExposureData, indication: str) -> str:
    """Return the ketamine doses, routes and sessions an indication's data covered.

    Examples
    --------
    >>> import bayeskit as bk
    >>> from bayeskit.families.exposure.model import exposure_data
    >>> ev = bk.load_evidence(bk.data_path("oud_abstinence.csv"))
    >>> d = exposure_data(ev[ev["timepoint"] == "12 months"], None, routes=bk.load_routes())
    >>> observed_doses(d, "OUD")
    '0.2-2 mg/kg im, 1-3 sessions; no arm without ketamine'
    """
    parts = [t for t in (data.arms, data.contrasts) if len(t)]
    rows = pd.concat(parts, ignore_index=True)
    rows = rows[rows["indication"] == indication]
    regimens = [_regimen(r) for _, r in rows.iterrows()]
    con = rows[rows["kind"] == "contrast"]
    regimens += [_regimen(r, "control_") for _, r in con.iterrows()]
    on = [r for r in regimens if r.dose_mg_per_kg > 0]
    words = []
    for route in sorted({r.route for r in on if r.route}):
        d = [r.dose_mg_per_kg for r in on if r.route == route]
        words.append(
            f"{min(d):g}-{max(d):g} mg/kg {route}"
            if min(d) != max(d)
            else f"{min(d):g} mg/kg {route}"
        )
    s = [r.sessions for r in on]
    text = ", ".join(words)
    if s:
        text += (
            f", {min(s):g}-{max(s):g} sessions" if min(s) != max(s) else f", {min(s):g} session(s)"
        )
    zero = any(r.dose_mg_per_kg <= 0 for r in regimens)
    return text + ("; arms without ketamine" if zero else "; no arm without ketamine")


def classify(
    data: ExposureData, indication: str, regimen: Regimen, comparator: Regimen
) -> tuple[str, str]:
    """Say whether ``regimen`` vs ``comparator`` is within the evidence, and on what basis.

    Examples
    --------
    >>> import bayeskit as bk
    >>> from bayeskit.families.exposure.model import exposure_data
    >>> ev = bk.load_evidence(bk.data_path("oud_abstinence.csv"))
    >>> d = exposure_data(ev[ev["timepoint"] == "12 months"], None, routes=bk.load_routes())
    >>> classify(d, "OUD", Regimen(2.0, "im", 1), Regimen(0.2, "im", 1))
    ('within the evidence', 'randomised in KRUPITSKY2002')
    >>> classify(d, "OUD", Regimen(2.0, "im", 1), Regimen(0.0, None, 0))[0]
    'extrapolated'
    """
    trials = randomised_contrasts(data)
    hits = [
        r.study
        for r in trials.itertuples()
        if r.indication == indication
        and r.experimental.same(regimen)
        and r.control.same(comparator)
    ]
    if hits:
        return WITHIN, f"randomised in {', '.join(hits)}"
    return EXTRAPOLATED, (
        f"no trial in {indication} randomised {regimen.text()} against "
        f"{comparator.text()}; the data covered {observed_doses(data, indication)}"
    )
