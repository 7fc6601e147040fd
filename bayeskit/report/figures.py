"""The report's figures, each drawn from the files of a run directory alone.

Every function takes a :class:`~bayeskit.report.run.Run` and returns a matplotlib
``Figure``, or None when the run lacks what the figure needs (no ``theta`` for a forest
plot, no posterior predictive draws for a predictive check, ...). Figures are built on
``matplotlib.figure.Figure`` directly rather than through ``pyplot``, so building a
report neither opens windows nor leaks figures into a user's interactive session.

Predictions for a regimen come from the family's ``predict``, which needs only a
posterior Dataset and the fit's settings: a report cannot rebuild the ``Fit`` object,
only read its posterior.
"""

from __future__ import annotations

from collections.abc import Mapping
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from bayeskit.errors import UserError

if TYPE_CHECKING:
    from matplotlib.figure import Figure

    from bayeskit.report.run import Run

Z95 = 1.959963984540054
#: Parameters worth a convergence plot, in reading order (nuisance baselines are left out).
MAIN_PARAMETERS = (
    "mu",
    "tau",
    "beta",
    "beta_dose",
    "emax",
    "ed50",
    "beta_sessions",
    "alpha_mu",
    "alpha_sd",
    "bias_mean",
    "indication_sd",
    "route_sd",
)
# More panels than this make a rank plot unreadable; the diagnostics table covers the rest.
MAX_RANK_PANELS = 8
# Draws used for densities and curves: plenty for a picture, and keeps a report fast.
MAX_DRAWS = 2000

OBSERVED, SHRUNK, POOLED, PREDICTIVE, PRIOR = "black", "C0", "#1b3a5c", "C1", "0.45"


def text(value: Any) -> str:
    r"""Return ``value`` as matplotlib text that is drawn as written.

    Matplotlib reads ``$...$`` as mathematics, so a study called ``$x$`` would lose its
    dollar signs (or fail to parse); escaped, it is drawn literally.

    Examples
    --------
    >>> text("Smith $2019$")
    'Smith \\$2019\\$'
    """
    return str(value).replace("$", r"\$")


def _interval(x: np.ndarray) -> tuple[float, float, float]:
    lo, mid, hi = np.quantile(np.asarray(x, dtype=float).ravel(), [0.025, 0.5, 0.975])
    return float(mid), float(lo), float(hi)


def _thin(x: np.ndarray, n: int = MAX_DRAWS) -> np.ndarray:
    x = np.asarray(x, dtype=float).ravel()
    return x if x.size <= n else x[np.linspace(0, x.size - 1, n).astype(int)]


def _figure(width: float, height: float) -> Figure:
    from matplotlib.figure import Figure

    return Figure(figsize=(width, height), layout="constrained")


# --------------------------------------------------------------------------- forest plot


def observed_effects(run: Run) -> pd.DataFrame:
    """Each study's observed effect on the model's scale, from ``data.csv``.

    Study-level rows (``yi``, ``sei``) are taken as they are. Arm-level rows are paired
    within each study, every experimental arm against the study's one control arm: binary
    arms give a log odds ratio, continuous arms a mean difference (both as
    :func:`bayeskit.measures.effect_sizes` computes them). Single arms have no contrast
    and are left out.

    Returns
    -------
    DataFrame
        Columns ``label``, ``study``, ``yi``, ``sei``; one row per contrast.

    Examples
    --------
    >>> import tempfile
    >>> from pathlib import Path
    >>> import bayeskit as bk
    >>> from bayeskit.report.run import load_run
    >>> from bayeskit.rundir import write_run
    >>> fit = bk.fit(bk.data_path("eight_schools.csv"), method="exact",
    ...              priors={"mu": "Normal(0, 5)", "tau": "HalfCauchy(5)"})
    >>> run = load_run(write_run(fit, Path(tempfile.mkdtemp()) / "run", report=False))
    >>> observed_effects(run).head(2)
      label study    yi   sei
    0     A     A  28.0  15.0
    1     B     B   8.0  10.0
    """
    from bayeskit.measures import effect_sizes

    columns = ["label", "study", "yi", "sei"]
    data = run.data
    if data is None or data.empty:
        return pd.DataFrame(columns=columns)
    if "study" not in data:
        data = data.rename(columns={data.columns[0]: "study"})
    rows = []
    is_contrast = pd.Series(False, index=data.index)
    if {"yi", "sei"} <= set(data.columns):
        yi = pd.to_numeric(data["yi"], errors="coerce")
        sei = pd.to_numeric(data["sei"], errors="coerce")
        is_contrast = yi.notna() & sei.notna()
        for i in data.index[is_contrast]:
            rows.append([str(data.at[i, "study"]), str(data.at[i, "study"]), yi[i], sei[i]])
    arms = data[~is_contrast]
    if {"arm", "n", "role"} <= set(arms.columns) and len(arms):
        for study, group in arms.groupby("study", sort=False):
            control = group[group["role"] == "control"]
            treated = group[group["role"] == "experimental"]
            if len(control) != 1 or treated.empty:
                continue  # single arms (or an ambiguous control) give no contrast
            c = control.iloc[0]
            for _, e in treated.iterrows():
                label = str(study) if len(treated) == 1 else f"{study}: {e['arm']}"
                y, v = _arm_contrast(e, c, effect_sizes)
                if y is not None:
                    rows.append([label, str(study), y, float(np.sqrt(v))])
    out = pd.DataFrame(rows, columns=columns)
    finite = np.isfinite(out["yi"].astype(float)) & np.isfinite(out["sei"].astype(float))
    return out[finite].reset_index(drop=True)


def _arm_contrast(e: pd.Series, c: pd.Series, effect_sizes) -> tuple[float | None, float]:
    def has(*cols: str) -> bool:
        return all(col in e and pd.notna(e[col]) and pd.notna(c[col]) for col in cols)

    if has("events", "n"):
        yi, vi = effect_sizes("OR", ai=[e["events"]], n1i=[e["n"]], ci=[c["events"]], n2i=[c["n"]])
    elif has("mean", "sd", "n"):
        yi, vi = effect_sizes(
            "MD",
            m1i=[e["mean"]], sd1i=[e["sd"]], n1i=[e["n"]],
            m2i=[c["mean"]], sd2i=[c["sd"]], n2i=[c["n"]],
        )  # fmt: skip
    else:
        return None, np.nan
    return float(yi[0]), float(vi[0])


def _ratio_axis(ax) -> None:
    from matplotlib.ticker import FuncFormatter, LogLocator, NullFormatter

    # ratios read best as 0.5, 1, 2, 5, 10 rather than as powers of ten
    ax.xaxis.set_major_locator(LogLocator(base=10, subs=(1.0, 2.0, 5.0)))
    ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))
    ax.xaxis.set_minor_formatter(NullFormatter())


# --------------------------------------------------------------------------- prior vs posterior


def _prior_draws(run: Run, name: str, sel: Mapping[str, Any], n: int) -> np.ndarray | None:
    prior = run.group("prior")
    if prior is not None and name in prior:
        draws = prior[name].sel(sel).values if sel else prior[name].values
        return _thin(draws, n)
    text_ = (run.manifest.get("priors") or {}).get(name)
    if not text_:
        return None
    from bayeskit.priors import parse_prior

    try:
        dist = parse_prior(text_).scipy()
    except UserError:
        return None  # a prior the parser no longer reads: show the posterior alone
    # seeded from the run's own seed, so the figure is the same at every rebuild
    rng = np.random.default_rng(run.manifest.get("seed") or 0)
    return np.asarray(dist.rvs(size=n, random_state=rng), dtype=float)


def _density(x: np.ndarray, grid: np.ndarray, *, positive: bool) -> np.ndarray | None:
    from scipy.stats import gaussian_kde

    x = x[np.isfinite(x)]
    if x.size < 2 or np.ptp(x) == 0:
        return None
    if positive:
        # reflect at zero: a plain kernel estimate would leak mass below the boundary and
        # halve the density at zero, exactly where a heterogeneity posterior often peaks
        kde = gaussian_kde(np.concatenate([x, -x]))
        return 2 * kde(grid) * (grid >= 0)
    return gaussian_kde(x)(grid)


def density_parameters(run: Run) -> list[tuple[str, str, dict]]:
    """List the parameters a prior-vs-posterior plot shows: ``(label, variable, selection)``.

    ``mu`` and ``tau``; for exposure-response fits, which have no ``mu``, the dose slope
    of each indication and ``tau``. Constant quantities (``tau`` under complete pooling)
    are left out.

    Examples
    --------
    >>> import tempfile
    >>> from pathlib import Path
    >>> import bayeskit as bk
    >>> from bayeskit.report.run import load_run
    >>> from bayeskit.rundir import write_run
    >>> fit = bk.fit(bk.data_path("eight_schools.csv"), method="exact",
    ...              priors={"mu": "Normal(0, 5)", "tau": "HalfCauchy(5)"})
    >>> run = load_run(write_run(fit, Path(tempfile.mkdtemp()) / "run", report=False))
    >>> density_parameters(run)
    [('mu', 'mu', {}), ('tau', 'tau', {})]
    """
    post = run.group("posterior")
    if post is None:
        return []
    out = []
    names = ["mu", "tau"]
    if "beta_dose" in post and "indication" in post["beta_dose"].dims:
        names = ["beta_dose", "tau"]
    for name in names:
        if name not in post:
            continue
        da = post[name]
        extra = [d for d in da.dims if d not in ("chain", "draw")]
        if not extra:
            if np.ptp(da.values) > 0:
                out.append((name, name, {}))
        elif len(extra) == 1:
            for value in da[extra[0]].values:
                sel = {extra[0]: value}
                if np.ptp(da.sel(sel).values) > 0:
                    out.append((f"{name}[{value}]", name, sel))
    return out


def prior_posterior_figure(run: Run) -> Figure | None:
    """Prior and posterior densities of ``mu`` and ``tau`` (or the dose slopes).

    The prior comes from the ``prior`` group when the run has one (MCMC); the exact
    engine stores none, so its prior is drawn, seeded, from the priors in the manifest.

    Examples
    --------
    >>> import tempfile
    >>> from pathlib import Path
    >>> import bayeskit as bk
    >>> from bayeskit.report.run import load_run
    >>> from bayeskit.rundir import write_run
    >>> fit = bk.fit(bk.data_path("eight_schools.csv"), method="exact",
    ...              priors={"mu": "Normal(0, 5)", "tau": "HalfCauchy(5)"})
    >>> run = load_run(write_run(fit, Path(tempfile.mkdtemp()) / "run", report=False))
    >>> len(prior_posterior_figure(run).axes)  # mu and tau
    2
    """
    params = density_parameters(run)
    if not params:
        return None
    post = run.group("posterior")
    fig = _figure(3.4 * len(params), 2.9)
    axes = fig.subplots(1, len(params), squeeze=False)[0]
    for ax, (label, name, sel) in zip(axes, params, strict=True):
        x = _thin(post[name].sel(sel).values if sel else post[name].values)
        positive = name.endswith(("tau", "_sd")) or bool(np.all(x >= 0))
        prior = _prior_draws(run, name, sel, x.size if x.size > 500 else 2000)
        lo, hi = np.quantile(x, [0.005, 0.995])
        span = hi - lo
        if prior is not None and np.isfinite(prior).any():
            plo, phi = np.nanquantile(prior, [0.05, 0.95])
            # widen to show the prior's bulk, but never so far that a vague prior squashes
            # the posterior into a spike at the edge of the panel
            lo, hi = max(min(lo, plo), lo - span), min(max(hi, phi), hi + span)
        lo = max(lo - 0.05 * span, 0.0) if positive else lo - 0.05 * span
        grid = np.linspace(lo, hi + 0.05 * span, 256)
        dens = _density(x, grid, positive=positive)
        if dens is not None:
            ax.fill_between(grid, dens, color=SHRUNK, alpha=0.35, lw=0)
            ax.plot(grid, dens, color=SHRUNK, label="posterior")
        if prior is not None:
            pdens = _density(prior, grid, positive=positive)
            if pdens is not None:
                ax.plot(grid, pdens, color=PRIOR, ls="--", label="prior")
        ax.set_title(text(label), fontsize="medium")
        ax.set_yticks([])
        ax.set_xlabel(_axis_label(run, name))
        ax.legend(frameon=False, fontsize="small")
    return fig


def _axis_label(run: Run, name: str) -> str:
    if name == "tau":
        return f"tau (SD of the {run.measure_label})"
    if name == "beta_dose":
        return f"{run.measure_label} per doubling"
    return run.measure_label


# --------------------------------------------------------------------------- exposure-response


def _curve_routes(run: Run, routes: list[str]) -> list[str]:
    wanted = []
    if run.data is not None and "route" in run.data:
        wanted += [str(r) for r in run.data["route"].dropna()]
    wanted += [str(q.get("route")) for q in run.spec.get("questions") or []]
    chosen = [r for r in routes if r in set(wanted)]
    return chosen or routes


def _max_dose(run: Run) -> float:
    doses = [0.5]
    if run.data is not None:
        for col in ("dose_mg_per_kg", "control_dose_mg_per_kg"):
            if col in run.data:
                doses += pd.to_numeric(run.data[col], errors="coerce").dropna().tolist()
    doses += [float(q.get("dose_mg_per_kg") or 0) for q in run.spec.get("questions") or []]
    return 1.2 * max(doses)


def exposure_response_figure(run: Run) -> Figure | None:
    """Effect (or probability of the outcome) against dose, one line per route, 95% bands.

    One session per regimen; the probability scale, when the fit has baselines, is at the
    indication's average baseline (``alpha_mu``).

    None for any other family, as here:

    Examples
    --------
    >>> import tempfile
    >>> from pathlib import Path
    >>> import bayeskit as bk
    >>> from bayeskit.report.run import load_run
    >>> from bayeskit.rundir import write_run
    >>> fit = bk.fit(bk.data_path("eight_schools.csv"), method="exact",
    ...              priors={"mu": "Normal(0, 5)", "tau": "HalfCauchy(5)"})
    >>> run = load_run(write_run(fit, Path(tempfile.mkdtemp()) / "run", report=False))
    >>> print(exposure_response_figure(run))
    None
    """
    post = run.group("posterior")
    family = run.model_family
    if family is None or family.predict is None or post is None:
        return None
    if "bioavailability" not in post:
        return None
    settings = run.settings
    if not {"form", "sessions", "exposure_ref"} <= set(settings):
        return None
    step = max(1, post.sizes["chain"] * post.sizes["draw"] // MAX_DRAWS)
    draws_kept = post.isel(draw=slice(None, None, step))
    routes = _curve_routes(run, [str(r) for r in post["route"].values])
    indications = [str(i) for i in post["indication"].values]
    grid = np.linspace(0.0, _max_dose(run), 61)
    probability = "alpha_mu" in post
    fig = _figure(4.6 * len(indications) + 0.6, 3.6)
    axes = fig.subplots(1, len(indications), squeeze=False)[0]
    for ax, ind in zip(axes, indications, strict=True):
        for k, route in enumerate(routes):
            d = family.predict(
                draws_kept, settings, route=route, dose_mg_per_kg=grid, indication=ind
            )
            y = d["p_with"] if probability else d["effect"]
            q = y.quantile([0.025, 0.5, 0.975], dim=("chain", "draw")).values
            ax.fill_between(grid, q[0], q[2], color=f"C{k}", alpha=0.18, lw=0)
            ax.plot(grid, q[1], color=f"C{k}", label=text(route))
        if probability:
            ax.set_ylabel("probability of the outcome")
            ax.set_ylim(0, 1)
        else:
            ax.set_ylabel(f"{run.measure_label} vs no drug")
            ax.axhline(0, color="0.5", ls="--", lw=0.8)
        ax.set_xlabel("dose per session (mg/kg)")
        ax.set_title(text(ind), fontsize="medium")
        ax.legend(title="route", frameon=False, fontsize="small")
        ax.grid(color="0.92")
    return fig


# --------------------------------------------------------------------------- predictive check


def ppc_figure(run: Run) -> Figure | None:
    """Each observation against its posterior predictive 50% and 95% intervals.

    Examples
    --------
    >>> from pathlib import Path
    >>> from arviz_base import from_dict
    >>> from bayeskit.report.run import Run
    >>> rng = np.random.default_rng(0)
    >>> tree = from_dict({"posterior": {"mu": rng.normal(size=(2, 100))},
    ...                   "observed_data": {"y": np.array([0.3, -0.1, 0.8])},
    ...                   "posterior_predictive": {"y": rng.normal(size=(2, 100, 3))}},
    ...                  dims={"y": ["study"]}, coords={"study": ["A", "B", "C"]})
    >>> run = Run(Path("."), pd.DataFrame(), {"method": "mcmc"}, tree=tree)
    >>> figure = ppc_figure(run)
    >>> [label.get_text() for label in figure.axes[0].get_yticklabels()]
    ['A', 'B', 'C']
    """
    observed, predicted = run.group("observed_data"), run.group("posterior_predictive")
    if observed is None or predicted is None:
        return None
    names = [v for v in observed.data_vars if v in predicted and observed[v].ndim == 1]
    if not names:
        return None
    sizes = [observed[v].size for v in names]
    fig = _figure(7.0, 1.0 + 0.35 * sum(sizes) + 0.6 * len(names))
    axes = fig.subplots(len(names), 1, squeeze=False, height_ratios=[s + 1.5 for s in sizes])
    for ax, name in zip(axes[:, 0], names, strict=True):
        dim = observed[name].dims[0]
        labels = [text(v) for v in observed[name][dim].values]
        pp = predicted[name].transpose(..., dim).values.reshape(-1, len(labels))
        q = np.quantile(pp, [0.025, 0.25, 0.5, 0.75, 0.975], axis=0)
        y = np.arange(len(labels))[::-1]
        ax.hlines(y, q[0], q[4], color=SHRUNK, lw=1.5, alpha=0.6)
        ax.hlines(y, q[1], q[3], color=SHRUNK, lw=5)
        ax.plot(observed[name].values, y, "D", color="C3", ms=5, zorder=3)
        ax.set_yticks(y, labels)
        ax.set_xlabel(text(name))
        ax.grid(axis="x", color="0.92")
        ax.set_axisbelow(True)
    _ppc_legend(axes[0, 0])
    return fig


def _ppc_legend(ax) -> None:
    from matplotlib.lines import Line2D

    handles = [
        Line2D([], [], color="C3", marker="D", ls="", ms=5, label="observed"),
        Line2D([], [], color=SHRUNK, lw=5, label="predictive 50%"),
        Line2D([], [], color=SHRUNK, lw=1.5, alpha=0.6, label="predictive 95%"),
    ]
    ax.figure.legend(
        handles=handles, loc="outside upper center", ncols=3, frameon=False, fontsize="small"
    )


# --------------------------------------------------------------------------- rank plots


def rank_parameters(run: Run) -> list[str]:
    """List the main parameters for convergence plots: those of :data:`MAIN_PARAMETERS`.

    Constant quantities (IV bioavailability, ``tau`` under complete pooling) have no
    ranks to compare and are left out.

    Examples
    --------
    >>> import tempfile
    >>> from pathlib import Path
    >>> import bayeskit as bk
    >>> from bayeskit.report.run import load_run
    >>> from bayeskit.rundir import write_run
    >>> fit = bk.fit(bk.data_path("eight_schools.csv"), method="exact",
    ...              priors={"mu": "Normal(0, 5)", "tau": "HalfCauchy(5)"})
    >>> run = load_run(write_run(fit, Path(tempfile.mkdtemp()) / "run", report=False))
    >>> rank_parameters(run)
    ['mu', 'tau']
    """
    post = run.group("posterior")
    if post is None:
        return []
    return [v for v in MAIN_PARAMETERS if v in post and np.ptp(post[v].values) > 0]


def rank_figure(run: Run) -> Figure | None:
    """Rank plots (fractional-rank Delta-ECDF per chain, arviz-plots) of the main parameters.

    Chains that sample the same distribution have uniformly spread ranks: each line stays
    inside the band around zero. Only for MCMC runs with at least two chains.

    Examples
    --------
    >>> from pathlib import Path
    >>> from arviz_base import from_dict
    >>> from bayeskit.report.run import Run
    >>> rng = np.random.default_rng(0)
    >>> tree = from_dict({"posterior": {"mu": rng.normal(size=(2, 100))},
    ...                   "observed_data": {"y": np.array([0.3, -0.1, 0.8])},
    ...                   "posterior_predictive": {"y": rng.normal(size=(2, 100, 3))}},
    ...                  dims={"y": ["study"]}, coords={"study": ["A", "B", "C"]})
    >>> run = Run(Path("."), pd.DataFrame(), {"method": "mcmc"}, tree=tree)
    >>> figure = rank_figure(run)
    >>> type(figure).__name__, len(figure.axes)  # one panel: mu
    ('Figure', 1)
    """
    post = run.group("posterior")
    if run.method != "mcmc" or post is None or post.sizes.get("chain", 1) < 2:
        return None
    names, panels = [], 0
    for name in rank_parameters(run):
        size = int(np.prod([n for d, n in post[name].sizes.items() if d not in ("chain", "draw")]))
        if panels + size > MAX_RANK_PANELS:
            break
        names.append(name)
        panels += size
    if not names:
        return None
    import arviz_plots

    cols = min(panels, 4)
    rows = -(-panels // cols)
    with _remembered_bands():
        pc = arviz_plots.plot_rank(
            run.tree,
            var_names=names,
            method="envelope",
            backend="matplotlib",
            col_wrap=cols,
            figure_kwargs={
                "figsize": (2.6 * cols + 0.4, 2.3 * rows + 0.3),
                "layout": "constrained",
            },
        )
    return pc.viz["figure"].item()


@contextmanager
def _remembered_bands():
    """Keep the rank plot's simultaneous band on disk: 3 s of a 12 s main job, every run.

    arviz-stats finds the band's pointwise probability from 1,000 simulations
    (``ecdf_utils.simulate_confidence_bands``) that depend only on the numbers of draws
    and chains and the band's probability, under a fixed seed (214) when none is given.
    That number is kept in ``rank_bands.json`` in bayeskit's cache folder
    (``$BAYESKIT_CACHE_DIR``, else ``~/.cache/bayeskit``) and reused: the same figure,
    without the simulations. Other seeds, or an arviz-stats without the function, are
    left alone.
    """
    import json
    import os
    from pathlib import Path

    from arviz_stats import ecdf_utils

    from bayeskit.outputs import write_file

    original = getattr(ecdf_utils, "simulate_confidence_bands", None)
    if original is None:
        yield
        return
    root = os.environ.get("BAYESKIT_CACHE_DIR") or Path(
        os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache", "bayeskit"
    )  # as bayeskit.sampling._cfunc.cache_dir, which imports numba
    path = Path(root) / "rank_bands.json"

    def simulate(n_draws, n_chains, eval_points, prob, n_simulations, rng):
        fixed = rng.bit_generator.state == np.random.default_rng(214).bit_generator.state
        grid = np.array_equal(eval_points, np.arange(1, n_draws) / n_draws)
        if not (fixed and grid):
            return original(n_draws, n_chains, eval_points, prob, n_simulations, rng)
        key = f"{ecdf_utils.__name__} {_version('arviz-stats')} {n_draws} {n_chains} "
        key += f"{float(prob)!r} {n_simulations}"
        try:
            known = json.loads(path.read_text())
        except (OSError, ValueError):
            known = {}
        if key in known:
            return float(known[key])
        value = original(n_draws, n_chains, eval_points, prob, n_simulations, rng)
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            write_file(path, json.dumps(known | {key: float(value)}, indent=1))
        except (OSError, UserError):  # a read-only cache: compute it every time
            pass
        return value

    ecdf_utils.simulate_confidence_bands = simulate
    try:
        yield
    finally:
        ecdf_utils.simulate_confidence_bands = original


def _version(name: str) -> str:
    from importlib.metadata import version

    return version(name)
