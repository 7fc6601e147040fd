"""Observed contrasts of an exposure-response fit beside their fitted values, for forest plots.

A contrast compares two regimens of one study (a dose against a lower dose, ketamine
against placebo); its fitted value is the difference of the fitted dose-response at the
two regimens, computed with the family's own ``predict`` from a posterior alone, so a
report built from a run directory shows what the live fit would.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from bayeskit.measures import effect_sizes


def _number(row, col, default=np.nan) -> float:
    value = pd.to_numeric(pd.Series([row.get(col)]), errors="coerce").iloc[0]
    return float(value) if pd.notna(value) else default


def _effect(family, posterior, settings, row, prefix: str) -> np.ndarray:
    """Draws of one regimen's effect against no drug (0 for no drug)."""
    dose = _number(row, f"{prefix}dose_mg_per_kg", 0.0)
    route = row.get(f"{prefix}route")
    if dose <= 0 or not isinstance(route, str) or not route:
        return np.zeros(posterior.sizes["chain"] * posterior.sizes["draw"])
    sessions = max(_number(row, f"{prefix}sessions", 1.0), 1.0)
    indication = row.get("indication")
    indications = [str(i) for i in posterior["indication"].values]
    indication = str(indication) if str(indication) in indications else None
    if indication is None and len(indications) == 1:
        indication = indications[0]
    out = family.predict(
        posterior,
        settings,
        route=route,
        dose_mg_per_kg=dose,
        sessions=sessions,
        indication=indication,
    )
    return np.asarray(out["effect"].values, dtype=float).ravel()


def fitted_contrasts(family, table: pd.DataFrame, posterior, settings) -> list[dict]:
    """Return ``label``, ``study``, ``yi``, ``sei``, ``fitted`` (draws) for every contrast.

    See :meth:`bayeskit.families.exposure.ExposureResponse.fitted_contrasts`.
    """
    rows: list[dict] = []
    if table is None or table.empty:
        return rows
    table = table.copy()
    has_yi = {"yi", "sei"} <= set(table.columns)
    yi = pd.to_numeric(table["yi"], errors="coerce") if has_yi else pd.Series(np.nan, table.index)
    sei = pd.to_numeric(table["sei"], errors="coerce") if has_yi else pd.Series(np.nan, table.index)
    is_contrast = yi.notna() & sei.notna()
    contrasts = table[is_contrast]
    repeated = contrasts["study"].astype(str).duplicated(keep=False)
    for i, row in contrasts.iterrows():
        label = str(row["study"])
        if repeated[i] and "outcome" in row and pd.notna(row["outcome"]):
            label = f"{label}: {row['outcome']}"
        fitted = _effect(family, posterior, settings, row, "") - _effect(
            family, posterior, settings, row, "control_"
        )
        rows.append(
            {"label": label, "study": str(row["study"]), "yi": float(yi[i]),
             "sei": float(sei[i]), "fitted": fitted}
        )  # fmt: skip
    arms = table[~is_contrast]
    if not {"role", "n", "events"} <= set(arms.columns):
        return rows
    for study, group in arms.groupby("study", sort=False):
        control = group[group["role"] == "control"]
        treated = group[group["role"] != "control"]
        if len(control) != 1 or treated.empty:
            continue
        c = control.iloc[0]
        for _, e in treated.iterrows():
            y, v = effect_sizes(
                "OR", ai=[e["events"]], n1i=[e["n"]], ci=[c["events"]], n2i=[c["n"]]
            )
            if not (np.isfinite(y[0]) and np.isfinite(v[0])):
                continue
            label = str(study) if len(treated) == 1 else f"{study}: {e['arm']}"
            fitted = _effect(family, posterior, settings, e, "") - _effect(
                family, posterior, settings, c, ""
            )
            rows.append(
                {"label": label, "study": str(study), "yi": float(y[0]),
                 "sei": float(np.sqrt(v[0])), "fitted": fitted}
            )  # fmt: skip
    return rows
