"""Fit the three bundled ketamine specs and the refits the page reports."""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import pandas as pd

import bayeskit as bk
from bayeskit.questions import borrowing_table
from bayeskit.robustness import robustness_table
from bayeskit.spec import spec_from_dict

SPECS = ("oud_abstinence", "ow_withdrawal", "sud_abstinence")
#: target_accept of the check refit when the joint fit has divergent transitions
CHECK_TARGET_ACCEPT = 0.99


@dataclass
class Analyses:
    """Every fit the page is written from, with the specs they came from."""

    specs: dict[str, object]
    fits: dict[str, bk.Fit]
    borrow: pd.DataFrame  # bayeskit's borrowing table of the joint fit
    sud_alone: bk.Fit  # the joint analysis without borrowing (for its draws)
    ow_rct: bk.Fit  # the withdrawal analysis without its case reports
    case_reports: list[str]
    check: tuple | None = None  # (target_accept, divergences, slope summary row)
    robustness: dict[str, pd.DataFrame] = field(default_factory=dict)  # each spec's table
    seconds: dict[str, float] = field(default_factory=dict)


def load_specs(sampler: dict | None = None) -> dict[str, object]:
    """Read the bundled specs; ``sampler`` overrides their [sampler] keys (draws, ...).

    It overrides the same keys of their ``[robustness]`` sections, whose refits are
    otherwise the specs' own modest ones.
    """
    specs = {}
    for name in SPECS:
        spec = bk.load_spec(name)
        if sampler:
            raw = spec.model_dump(mode="json", exclude={"base_dir"})
            raw["sampler"] |= sampler
            if raw.get("robustness") is not None:
                keys = {"draws", "tune", "chains"}
                raw["robustness"] |= {k: v for k, v in sampler.items() if k in keys}
            spec = spec_from_dict(
                raw, source=f"{name} (sampler: {sampler})", base_dir=spec.base_dir
            )
        specs[name] = spec
    return specs


def fit_spec(spec, **changes) -> bk.Fit:
    """Fit ``spec`` as the CLI would; ``changes`` replace its fit keyword arguments."""
    return bk.fit(spec.data_files(), **(spec.fit_kwargs() | changes))


def _timed(seconds: dict, label: str, fn, *args, **kwargs):
    start = time.perf_counter()
    out = fn(*args, **kwargs)
    seconds[label] = time.perf_counter() - start
    print(f"  {label}: {seconds[label]:.0f} s", flush=True)
    return out


def case_report_studies(fit: bk.Fit) -> list[str]:
    """Studies of ``fit`` whose design is a case report."""
    design = fit.data.table.drop_duplicates("study").set_index("study")["design"]
    return [s for s, d in design.items() if d == "case_report"]


def divergence_check(spec, fit: bk.Fit) -> tuple | None:
    """Refit with a higher ``target_accept`` when ``fit`` had divergent transitions.

    Returns ``(target_accept, divergences, summary row of the focus slope)``, or None when
    there were none or the spec already samples at that target.
    """
    div = next((c for c in fit.checks if c.name == "divergences"), None)
    if div is None or not div.value or div.value <= 0:
        return None
    if spec.sampler.target_accept >= CHECK_TARGET_ACCEPT:  # the refit would be the same fit
        return None
    again = fit_spec(spec, target_accept=CHECK_TARGET_ACCEPT)
    d2 = next(c for c in again.checks if c.name == "divergences")
    focus = spec.questions[0].indication
    summary = again.summary()
    name = "dose_contrast" if f"dose_contrast[{focus}]" in summary.index else "beta_dose"
    return CHECK_TARGET_ACCEPT, int(d2.value), summary.loc[f"{name}[{focus}]"]


def fit_all(specs: dict, *, robustness: bool = True) -> Analyses:
    """Fit each spec, then the refits: no borrowing, higher target_accept, no case reports.

    With ``robustness`` (the default) each spec is also refitted under every alternative
    of :func:`bayeskit.robustness.alternatives` (section 4 of the page).
    """
    seconds: dict[str, float] = {}
    print("fitting:", flush=True)
    fits = {name: _timed(seconds, name, fit_spec, spec) for name, spec in specs.items()}
    sud_spec, sud = specs["sud_abstinence"], fits["sud_abstinence"]
    # the library's borrowing table refits without borrowing; the page also needs that
    # refit's draws (probabilities and predictions), so it is fitted once more here
    borrow = _timed(seconds, "borrowing table", borrowing_table, sud, sud_spec)
    no_borrowing = sud_spec.fit_kwargs()["model_options"] | {"borrowing": False}
    sud_alone = _timed(seconds, "without borrowing", fit_spec, sud_spec, model_options=no_borrowing)
    check = _timed(seconds, "divergence check", divergence_check, sud_spec, sud)
    ow_spec = specs["ow_withdrawal"]
    case_reports = case_report_studies(fits["ow_withdrawal"])
    ow_rct = _timed(seconds, "without case reports", fit_spec, ow_spec, exclude=case_reports)
    robustness = {
        name: _timed(seconds, f"robustness ({name})", robustness_table, fits[name], spec)
        for name, spec in specs.items()
        if robustness
    }
    return Analyses(
        specs, fits, borrow, sud_alone, ow_rct, case_reports, check, robustness, seconds
    )
