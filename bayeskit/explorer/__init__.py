"""The pooling explorer: one self-contained HTML page in which tau is a slider.

``bayeskit teach pooling`` draws where each study ends up; this page shows the movement.
Given tau the normal-normal model is conjugate (BDA3 section 5.4), so the page computes
each study's conditional posterior, the pooled mean and the prediction interval itself,
live, as the slider moves or a study is edited. Under the slider it draws the exact
marginal posterior of tau (:mod:`bayeskit.exact`), embedded; after an edit the page
recomputes it on the same grid from the closed-form marginal likelihood and the tau prior's
density, which is embedded too. Light on imports: NumPy, pandas and the exact engine.

The page's script is hand-written (``explorer.js``, a few hundred lines): the sums are a
dozen lines and the drawing is a handful of SVG elements, where a charting library would
add hundreds of kilobytes to a file meant to be mailed to students and opened offline.
"""

from __future__ import annotations

import json
import math
from importlib import resources
from pathlib import Path

import numpy as np
import pandas as pd

from bayeskit.errors import UserError

#: slider positions: tau runs over ``STEPS + 1`` evenly spaced values from 0 to tau_max
STEPS = 200
PAGE_FILES = ("page.html", "explorer.css", "explorer.js")


def explorer_inputs(
    data=None,
    *,
    measure: str | None = None,
    outcome: str | None = None,
    timepoint: str | None = None,
    priors: dict | None = None,
):
    """Read the studies and priors the explorer shows: an evidence table or a spec.

    Parameters
    ----------
    data : DataFrame, path, or None
        An evidence table (study-level, or arm-level with ``measure``) as
        ``bayeskit teach pooling`` takes, or a spec (``.toml``) whose data files,
        outcome, timepoint(s), measure and ``mu``/``tau`` priors are used; eight schools
        by default.
    measure, outcome, timepoint : str, optional
        As for :func:`bayeskit.effects`; they override a spec's.
    priors : dict, optional
        ``mu`` and ``tau`` priors (text or Prior); they override a spec's, and the
        ``normal-normal`` defaults fill the rest.

    Returns
    -------
    tuple
        ``(StudyData, priors, label)``: the data, the resolved priors and a short
        description of where the data came from.

    Examples
    --------
    >>> d, chosen, label = explorer_inputs()
    >>> d.study[:3], str(chosen["tau"]), label
    (['A', 'B', 'C'], 'HalfNormal(sigma=12.9)', 'eight_schools.csv: 8 studies, MD')
    """
    from bayeskit import data_path
    from bayeskit.design import design_matrix
    from bayeskit.families import evidence_tables
    from bayeskit.families.data import StudyData
    from bayeskit.fitting import resolve_priors

    given = dict(priors or {})
    timepoints: str | list[str] | None = timepoint
    source = data if data is not None else data_path("eight_schools.csv")
    if isinstance(source, (str, Path)) and Path(source).suffix.lower() == ".toml":
        from bayeskit.families import get_family
        from bayeskit.spec import load_spec

        spec = load_spec(source)
        if spec.model.options().get("covariates"):
            raise UserError(
                f"{source}: the explorer shows pooling without covariates; the spec has "
                "covariates (fit it with bayeskit fit to see the meta-regression)"
            )
        tables = [_load(p) for p in spec.data_files()]
        measure = (
            measure
            or spec.data.measure
            or get_family(spec.model.family).measure(spec.model.options())
        )
        outcome = outcome or spec.data.outcome
        if outcome is not None and not isinstance(outcome, str):
            raise UserError(
                f"{source}: the spec lists several outcomes ({', '.join(outcome)}); the "
                "explorer pools one: choose it with --outcome"
            )
        timepoints = timepoint or spec.data.timepoint
        spec_priors = {k: v for k, v in spec.priors.items() if k in ("mu", "tau")}
        given = spec_priors | given
        name = Path(source).name
    else:
        tables = evidence_tables(source)
        name = Path(source).name if isinstance(source, (str, Path)) else "the table"
    es = _study_effects(tables, measure, outcome, timepoints)
    if len(es) < 2:
        raise UserError(
            f"{name}: the explorer needs at least 2 studies to pool; the data give "
            f"{len(es)} ({', '.join(map(str, es.index))})"
        )
    unknown = sorted(set(given) - {"mu", "tau"})
    if unknown:
        raise UserError(f"--prior {unknown[0]}: the explorer takes priors for mu and tau only")
    d = StudyData(
        study=[str(s) for s in es.index],
        yi=es["yi"].to_numpy(float),
        sei=es["sei"].to_numpy(float),
        X=design_matrix(es, None),
        measure=es.attrs.get("measure") or measure,
        table=es,
    )
    chosen = resolve_priors("normal-normal", d, given)
    label = f"{name}: {len(d.study)} studies" + (f", {d.measure}" if d.measure else "")
    return d, chosen, label


def _load(path: Path) -> pd.DataFrame:
    from bayeskit.evidence import load_evidence

    return load_evidence(path)


def _study_effects(tables, measure, outcome, timepoints) -> pd.DataFrame:
    """One effect per study from every table; a list of timepoints is taken in order."""
    from bayeskit.measures import effects

    parts = []
    for table in tables:
        if timepoints is None or isinstance(timepoints, str):
            parts.append(effects(table, measure, outcome=outcome, timepoint=timepoints))
            continue
        present = set(table["timepoint"].dropna()) if "timepoint" in table else set()
        seen: set[str] = set()
        for tp in [t for t in timepoints if t in present]:
            es = effects(table, measure, outcome=outcome, timepoint=tp)
            parts.append(es[~es.index.isin(seen)])
            seen |= set(es.index)
    if not parts:
        raise UserError(f"no rows at the timepoints {', '.join(timepoints)} in any data file")
    es = pd.concat(parts)
    es.attrs = dict(parts[0].attrs)
    measures = {p.attrs.get("measure") for p in parts} - {None}
    if len(measures) > 1:
        raise UserError(
            f"the data files give different measures ({', '.join(sorted(measures))}); "
            "choose one with --measure"
        )
    if es.index.has_duplicates:
        dup = es.index[es.index.duplicated()][0]
        raise UserError(
            f"study {dup!r} appears more than once; choose one outcome and timepoint per "
            "study (--outcome, --timepoint)"
        )
    return es


def explorer_state(data, priors: dict, *, label: str = "", steps: int = STEPS) -> dict:
    """Everything the page embeds: studies, priors, the tau grid and tau's exact posterior.

    The grid runs from 0 to ``tau_max``: at least the posterior 99.5% quantile of tau and
    three times the largest standard error, where every study keeps at least 90% of its
    own estimate, so that the fan-out to the raw data is visible. ``density`` is the exact
    engine's posterior density of tau at each grid value; ``log_prior`` is the tau prior's
    log density there, which the page needs to recompute the posterior after an edit.

    Examples
    --------
    >>> d, chosen, label = explorer_inputs()
    >>> state = explorer_state(d, chosen, label=label)
    >>> state["tau_max"], len(state["tau"]), state["start"] > 0
    (60.0, 201, True)
    >>> round(sum(state["density"]) * state["tau"][1], 3)  # integrates to about 1
    1.0
    """
    from bayeskit.exact import exact_posterior

    post = exact_posterior(data, priors)
    sei = np.asarray(data.sei, float)
    tau_max = _nice_ceiling(max(float(post.tau_quantile(np.array([0.995]))[0]), 3 * sei.max()))
    grid = np.linspace(0.0, tau_max, steps + 1)
    dens = post.tau_density()
    density = np.interp(grid, dens.index.to_numpy(), dens.to_numpy(), right=0.0)
    with np.errstate(divide="ignore"):
        log_prior = np.asarray(priors["tau"].logpdf(grid), dtype=float)
    if not np.isfinite(log_prior[0]):  # a prior with infinite (or no) density at 0
        log_prior[0] = log_prior[1] if np.isfinite(log_prior[1]) else -1e300
    log_prior = np.where(np.isfinite(log_prior), log_prior, -1e300)
    median = float(post.tau_quantile(np.array([0.5]))[0])
    mu = priors["mu"]
    summary = post.summary()
    return {
        "label": label,
        "measure": data.measure,
        "scale": _scale_words(data.measure),
        "study": list(data.study),
        "yi": [float(v) for v in data.yi],
        "sei": [float(v) for v in sei],
        "prior_mu": (
            {"mean": float(mu.params["mu"]), "sd": float(mu.params["sigma"])}
            if mu.family == "Normal"
            else None
        ),
        "prior_text": {"mu": str(mu), "tau": str(priors["tau"])},
        "tau": [float(t) for t in grid],
        "tau_max": float(tau_max),
        "start": int(np.argmin(np.abs(grid - median))),
        "density": [float(v) for v in density],
        "log_prior": [float(v) for v in log_prior],
        "marginal": {
            k: [float(summary.loc[k, c]) for c in ("mean", "q2.5", "q97.5")]
            for k in ("mu", "tau", "theta_new")
        },
    }


def _nice_ceiling(x: float) -> float:
    """Round up to 1, 2, 2.5 or 5 times a power of ten (axis ends students can read).

    Examples
    --------
    >>> [_nice_ceiling(v) for v in (54.0, 2.49, 0.7, 100.0)]
    [60.0, 2.5, 0.8, 100.0]
    """
    power = 10 ** math.floor(math.log10(x))
    for step in (1, 1.2, 1.5, 2, 2.5, 3, 4, 5, 6, 8, 10):
        if x <= step * power * (1 + 1e-12):
            return float(round(step * power, 12))
    return float(10 * power)  # pragma: no cover - the loop ends at 10


def _scale_words(measure: str | None) -> str:
    words = {
        "OR": "log odds ratio",
        "RR": "log risk ratio",
        "HR": "log hazard ratio",
        "MD": "mean difference",
        "SMD": "standardised mean difference",
        "RD": "risk difference",
    }
    return words.get(measure or "", "effect size")


def explorer_html(state: dict) -> str:
    """Render the page: the state as JSON, the style and the script inlined.

    Examples
    --------
    >>> d, chosen, label = explorer_inputs()
    >>> page = explorer_html(explorer_state(d, chosen, label=label))
    >>> import re  # nothing to fetch: no src or href to another file or site
    >>> re.findall(r"(?:src|href) *=", page), len(page) < 60_000
    ([], True)
    """
    import jinja2

    here = resources.files("bayeskit.explorer")
    template, style, script = (here.joinpath(n).read_text(encoding="utf-8") for n in PAGE_FILES)
    # JSON inside <script>: "<", ">" and "&" escaped, so no study name can end the element
    payload = (
        json.dumps(state, allow_nan=False)
        .replace("<", "\\u003c")
        .replace(">", "\\u003e")
        .replace("&", "\\u0026")
    )
    env = jinja2.Environment(autoescape=True, undefined=jinja2.StrictUndefined)
    return env.from_string(template).render(
        state=state, payload=payload, style=style, script=script
    )


def explore(data=None, *, out: str | Path, priors: dict | None = None, **options) -> dict:
    """Write the pooling explorer page for some studies; returns the embedded state.

    ``options`` are ``measure``, ``outcome`` and ``timepoint`` (:func:`explorer_inputs`).
    The page is written atomically (:func:`bayeskit.outputs.write_file`).

    Examples
    --------
    >>> import tempfile
    >>> out = Path(tempfile.mkdtemp()) / "explore.html"
    >>> state = explore(out=out)
    >>> state["study"][0], out.stat().st_size > 10_000
    ('A', True)
    """
    from bayeskit.outputs import write_file

    d, chosen, label = explorer_inputs(data, priors=priors, **options)
    state = explorer_state(d, chosen, label=label)
    write_file(out, explorer_html(state))
    return state
