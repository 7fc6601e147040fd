"""Repeated effects of one study: the robustness alternative that uses all of them.

A spec keeps one effect per study (its first listed outcome, its selected timepoint).
Where a study of the fit reports more (Krupitsky 2002 at 12 and 24 months; Jovaisa
2006's peak MAP and peak heart rate), :func:`repeated_alternatives` offers one refit that
selects them all with ``repeated = "all"`` (each a sub-study weighted 1/m, see
:func:`bayeskit.families.exposure.model.build`). Where no study has more, it offers
nothing: a knob that moves nothing is not listed.
"""

from __future__ import annotations

from typing import Any

import pandas as pd


def _as_list(value) -> list[str] | None:
    if value is None:
        return None
    return [value] if isinstance(value, str) else list(value)


def repeated_effects(
    tables: list[pd.DataFrame],
    studies: list[str],
    *,
    outcome: str | list[str] | None,
    timepoint: str | list[str] | None,
) -> tuple[dict[str, tuple[str, list[str]]], list[str]]:
    """Return each study's effects beyond its first, and the timepoints that would add them.

    Parameters
    ----------
    tables : list of DataFrame
        The spec's evidence tables (arm or study level).
    studies : list of str
        The studies in the fit.
    outcome, timepoint
        The spec's selection (``[data] outcome`` and ``timepoint``).

    Returns
    -------
    (dict, list)
        Study to (what varies: ``"outcomes"``, ``"timepoints"`` or both, and its effects
        named by it) where it has two or more effects among the listed outcomes (at every
        timepoint of an outcome it reports at a selected one), and the timepoints that
        selection needs beyond the spec's own.

    Examples
    --------
    >>> t = pd.DataFrame({"study": ["A", "A", "A", "A", "B"], "outcome": "x",
    ...     "timepoint": ["12 months"] * 2 + ["24 months"] * 2 + ["12 months"]})
    >>> repeated_effects([t], ["A", "B"], outcome="x", timepoint="12 months")
    ({'A': ('timepoints', ['12 months', '24 months'])}, ['24 months'])
    >>> repeated_effects([t], ["B"], outcome="x", timepoint="12 months")
    ({}, [])
    """
    wanted, chosen = _as_list(outcome), _as_list(timepoint)
    rows = pd.concat(
        [t[[c for c in ("study", "outcome", "timepoint") if c in t]] for t in tables],
        ignore_index=True,
    )
    rows = rows[rows["study"].astype(str).isin(studies)]
    if wanted is not None and "outcome" in rows:
        rows = rows[rows["outcome"].isin(wanted)]
    varying = [c for c in ("outcome", "timepoint") if c in rows]
    if not varying:
        return {}, []
    if chosen is not None and "timepoint" in rows:
        # the outcomes a study reports at a selected timepoint, at every timepoint
        selected = rows[rows["timepoint"].isin(chosen)]
        keys = set(zip(selected["study"], selected.get("outcome", ""), strict=True))
        rows = rows[[k in keys for k in zip(rows["study"], rows.get("outcome", ""), strict=True)]]
    effects: dict[str, tuple[str, list[str]]] = {}
    for study, block in rows.groupby(rows["study"].astype(str), sort=False):
        combos = block[varying].drop_duplicates()
        if len(combos) > 1:
            shown = [c for c in varying if combos[c].nunique() > 1]
            named = [", ".join(str(r[c]) for c in shown) for _, r in combos.iterrows()]
            effects[study] = (" and ".join(f"{c}s" for c in shown), named)
    extra = []
    if chosen is not None and effects and "timepoint" in rows:
        mine = rows[rows["study"].astype(str).isin(effects)]
        extra = [t for t in dict.fromkeys(mine["timepoint"]) if t not in chosen]
    return effects, extra


def repeated_alternatives(fit, spec) -> list[Any]:
    """Return the refit with every outcome and timepoint of the fit's studies that report several.

    Registered in :data:`bayeskit.robustness.EXTRA_ALTERNATIVES`. The refit selects the
    spec's timepoints plus the other timepoints of those studies, every listed outcome,
    and ``repeated = "all"``. Nothing where the fit already uses ``repeated = "all"``,
    is not exposure-response, or no study of it reports more than its one effect.

    Examples
    --------
    >>> from types import SimpleNamespace
    >>> from bayeskit.spec import load_spec
    >>> spec = load_spec("oud_abstinence")
    >>> table = pd.DataFrame({"study": ["KRUPITSKY2002", "KRUPITSKY2007"]})
    >>> fit = SimpleNamespace(data=SimpleNamespace(table=table), settings={"repeated": "first"})
    >>> [(a.assumption, a.label, a.data) for a in repeated_alternatives(fit, spec)]
    ... # doctest: +NORMALIZE_WHITESPACE
    [('repeated measurements', 'both KRUPITSKY2002 timepoints (12 months, 24 months)',
      {'timepoint': ['12 months', '24 months']})]
    """
    from bayeskit.families._base import evidence_tables
    from bayeskit.robustness import Alternative

    settings = getattr(fit, "settings", None) or {}
    table = getattr(getattr(fit, "data", None), "table", None)
    if "repeated" not in settings or settings["repeated"] == "all" or table is None:
        return []
    studies = list(dict.fromkeys(table["study"].astype(str)))
    d = spec.data
    effects, extra = repeated_effects(
        evidence_tables(spec.data_files()), studies, outcome=d.outcome, timepoint=d.timepoint
    )
    if not effects:
        return []
    labels = []
    for study, (kind, named) in effects.items():
        count = "both" if len(named) == 2 else f"all {len(named)}"
        sep = "; " if " and " in kind else ", "
        labels.append(f"{count} {study} {kind} ({sep.join(named)})")
    data = {"timepoint": (_as_list(d.timepoint) or []) + extra} if extra else {}
    return [Alternative("repeated measurements", "; ".join(labels), {"repeated": "all"}, data=data)]
