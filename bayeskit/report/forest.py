"""The forest plot, for every family, drawn from the files of a run directory alone.

One row per observed contrast: the observed estimate with its 95% confidence interval
(square), the model's estimate (circle: the study's shrunken effect ``theta``, or for
exposure-response the fitted dose-response difference at the contrast's doses), and
beside the bars the numbers and each study's weight. Then the pooled rows: the pooled
effect ``mu`` (diamond) and the 95% prediction interval for a new study
(``theta_new``); for exposure-response, which has no single pooled effect, each question
regimen's effect against no drug (diamond) and a new study's effect of it (the fitted
effect plus a deviation ``Normal(0, tau)``).

Weights are the study's share of the pooled estimate: the random-effects inverse-variance
weights ``1 / (v_i + tau^2)``, normalised, averaged over the posterior of tau (metafor's
``weights.rma`` at each draw of tau). Without pooling there are none.

Matplotlib is imported only when a figure is drawn (Agg: no window is ever opened).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from matplotlib.figure import Figure

    from bayeskit.report.run import Run

Z95 = 1.959963984540054
OBSERVED, MODEL, POOLED, PREDICTIVE = "black", "C0", "#1b3a5c", "C1"
#: question regimens shown as pooled rows of an exposure-response forest plot
MAX_REGIMENS = 4
MAX_DRAWS = 2000


def _interval(x) -> tuple[float, float, float]:
    lo, mid, hi = np.quantile(np.asarray(x, dtype=float).ravel(), [0.025, 0.5, 0.975])
    return float(mid), float(lo), float(hi)


def _thin(x, n: int = MAX_DRAWS) -> np.ndarray:
    x = np.asarray(x, dtype=float).ravel()
    return x if x.size <= n else x[np.linspace(0, x.size - 1, n).astype(int)]


def study_weights(sei, tau_draws) -> np.ndarray:
    """Each study's share of the pooled estimate, averaged over the posterior of tau.

    ``w_i = 1 / (sei_i^2 + tau^2)``, normalised at each draw of tau, then averaged.

    Examples
    --------
    >>> study_weights([1.0, 1.0, 2.0], [0.0]).round(3).tolist()  # fixed effect
    [0.444, 0.444, 0.111]
    >>> study_weights([1.0, 2.0], [0.0, 100.0]).round(3).tolist()  # tau large: equal
    [0.65, 0.35]
    """
    v = np.asarray(sei, dtype=float) ** 2
    t2 = _thin(tau_draws)[:, None] ** 2
    w = 1 / (v[None, :] + t2)
    return (w / w.sum(axis=1, keepdims=True)).mean(axis=0)


def forest_rows(run: Run) -> tuple[list[dict], list[dict]]:
    """Return the study rows and the pooled rows of the forest plot.

    Study rows: ``label``, ``obs`` and ``model`` (``(median, lo, hi)`` or None),
    ``weight`` (or None). Pooled rows: ``label``, ``interval``, ``kind`` (``pooled`` or
    ``predictive``). On the model's scale (log ratios for ratio measures).

    Examples
    --------
    >>> import tempfile
    >>> from pathlib import Path
    >>> import bayeskit as bk
    >>> from bayeskit.report.run import load_run
    >>> from bayeskit.rundir import write_run
    >>> fit = bk.fit(bk.data_path("eight_schools.csv"), seed=1)
    >>> run = load_run(write_run(fit, Path(tempfile.mkdtemp()) / "run", report=False))
    >>> studies, pooled = forest_rows(run)
    >>> studies[0]["label"], round(studies[0]["weight"], 3), [p["kind"] for p in pooled]
    ('A', 0.082, ['pooled', 'predictive'])
    """
    from bayeskit.report.figures import observed_effects

    post = run.group("posterior")
    family = run.model_family
    tau = None
    if post is not None and "tau" in post and post["tau"].ndim == 2:
        tau = post["tau"].values
    fitted = None
    if family is not None and post is not None and run.data is not None:
        fitted = family.fitted_contrasts(run.data, post, run.settings)
    rows: list[dict] = []
    if fitted is not None:
        for r in fitted:
            obs = (r["yi"], r["yi"] - Z95 * r["sei"], r["yi"] + Z95 * r["sei"])
            rows.append({"label": r["label"], "obs": obs, "model": _interval(r["fitted"]),
                         "sei": r["sei"]})  # fmt: skip
    else:
        observed = observed_effects(run)
        theta = None
        if post is not None and "theta" in post and post["theta"].dims[2:] == ("study",):
            theta = post["theta"]
        studies = list(dict.fromkeys(observed["study"]))
        if theta is not None:
            studies += [str(s) for s in theta["study"].values if str(s) not in studies]
        for study in studies:
            obs = observed[observed["study"] == study]
            model = None
            if theta is not None and study in theta["study"].values:
                model = _interval(theta.sel(study=study).values)
            if obs.empty:
                rows.append({"label": study, "obs": None, "model": model, "sei": None})
            for k, (_, o) in enumerate(obs.iterrows()):
                interval = (o["yi"], o["yi"] - Z95 * o["sei"], o["yi"] + Z95 * o["sei"])
                rows.append({"label": o["label"], "obs": interval,
                             "model": model if k == 0 else None, "sei": o["sei"]})  # fmt: skip
    with_se = [r for r in rows if r["sei"] is not None]
    if tau is not None and with_se:
        for r, w in zip(with_se, study_weights([r["sei"] for r in with_se], tau), strict=True):
            r["weight"] = float(w)
    return rows, _pooled_rows(run, post, family, tau)


def _pooled_rows(run: Run, post, family, tau) -> list[dict]:
    pooled: list[dict] = []
    if post is None:
        return pooled
    full = run.settings.get("pooling") == "full"
    if "mu" in post and post["mu"].ndim == 2:
        label = "pooled mu (covariates at reference)" if "beta" in post else "pooled mu"
        pooled.append(
            {"label": label, "interval": _interval(post["mu"].values), "kind": "pooled", "all": 1}
        )
        if "theta_new" in post and post["theta_new"].ndim == 2 and not full:
            pooled.append({"label": "new study (95% PI)",
                           "interval": _interval(post["theta_new"].values),
                           "kind": "predictive"})  # fmt: skip
        return pooled
    if family is None or family.predict is None or tau is None:
        return pooled
    rng = np.random.default_rng(run.manifest.get("seed") or 0)
    for q in (run.spec.get("questions") or [])[:MAX_REGIMENS]:
        try:
            d = family.predict(
                post, run.settings, route=q.get("route"),
                dose_mg_per_kg=float(q.get("dose_mg_per_kg") or 0.0),
                sessions=float(q.get("sessions") or 1), indication=q.get("indication"),
            )  # fmt: skip
        except Exception:  # a question this posterior cannot answer is left out of the plot
            continue
        effect = np.asarray(d["effect"].values, dtype=float).ravel()
        new = effect + tau.ravel() * rng.standard_normal(effect.shape)
        label = str(q.get("label") or q.get("route"))
        pooled.append({"label": f"{label} vs no drug", "interval": _interval(effect),
                       "kind": "pooled"})  # fmt: skip
        pooled.append({"label": "  new study (95% PI)", "interval": _interval(new),
                       "kind": "predictive"})  # fmt: skip
    return pooled


def _fmt(interval, tf) -> str:
    if interval is None:
        return ""
    mid, lo, hi = (float(tf(v)) for v in interval)
    big = max(abs(mid), abs(lo), abs(hi))
    digits = 2 if big < 100 else 1 if big < 1000 else 0
    return f"{mid:.{digits}f} [{lo:.{digits}f}, {hi:.{digits}f}]"


def forest_figure(run: Run) -> Figure | None:
    """Forest plot with numbers, weights, the pooled diamond and the prediction interval.

    Examples
    --------
    >>> import tempfile
    >>> from pathlib import Path
    >>> import bayeskit as bk
    >>> from bayeskit.report.run import load_run
    >>> from bayeskit.rundir import write_run
    >>> fit = bk.fit(bk.data_path("eight_schools.csv"))
    >>> run = load_run(write_run(fit, Path(tempfile.mkdtemp()) / "run", report=False))
    >>> figure = forest_figure(run)
    >>> [t.get_text() for t in figure.axes[1].texts][-3:]
    ['observed [95% CI]', 'model [95% CrI]', 'weight']
    """
    from matplotlib.figure import Figure

    from bayeskit.report.figures import _ratio_axis, text

    rows, pooled = forest_rows(run)
    if not rows and not pooled:
        return None
    ratio = run.ratio
    tf = np.exp if ratio else (lambda v: v)
    n = len(rows) + len(pooled)
    fig = Figure(figsize=(10.0, 1.5 + 0.36 * n + (0.3 if pooled else 0)), layout="constrained")
    ax, cols = fig.subplots(1, 2, sharey=True, width_ratios=[3.0, 2.5])
    top = float(n + (1 if pooled else 0))
    y, ticks, labels = top, [], []
    offset = 0.14 if any(r["model"] for r in rows) and any(r["obs"] for r in rows) else 0.0
    has_weight = any(r.get("weight") is not None for r in rows)
    for r in rows:
        for key, fmt, color, dy in (("obs", "s", OBSERVED, offset), ("model", "o", MODEL, -offset)):
            if r[key] is not None:
                mid, lo, hi = (float(tf(v)) for v in r[key])
                ax.errorbar(mid, y + dy, xerr=[[mid - lo], [hi - mid]], fmt=fmt, color=color,
                            ms=5, capsize=0, lw=1.2)  # fmt: skip
        _numbers(cols, y, _fmt(r["obs"], tf), _fmt(r["model"], tf),
                 f"{100 * r['weight']:.1f}%" if r.get("weight") is not None else "")  # fmt: skip
        ticks.append(y)
        labels.append(text(r["label"]))
        y -= 1
    if pooled:
        y -= 1
        ax.axhline(y + 1, color="0.8", lw=0.8)
    for p in pooled:
        mid, lo, hi = (float(tf(v)) for v in p["interval"])
        if p["kind"] == "pooled":
            ax.fill([lo, mid, hi, mid], [y, y + 0.3, y, y - 0.3], color=POOLED, zorder=3)
            total = "100%" if has_weight and p.get("all") else ""  # mu: the weights' sum
            _numbers(cols, y, "", _fmt(p["interval"], tf), total)
        else:
            ax.plot([lo, hi], [y, y], color=PREDICTIVE, lw=5, solid_capstyle="butt")
            ax.plot([mid], [y], "|", color="white", ms=8)
            _numbers(cols, y, "", _fmt(p["interval"], tf), "")
        ticks.append(y)
        labels.append(text(p["label"]))
        y -= 1
    _headers(cols, top + 1, ratio, has_weight)
    ax.axvline(1.0 if ratio else 0.0, color="0.5", ls="--", lw=0.8, zorder=0)
    if ratio:
        ax.set_xscale("log")
        _ratio_axis(ax)
    ax.set_yticks(ticks, labels)
    ax.set_ylim(y + 0.4, top + 1.6)
    ax.set_xlabel(f"{ratio} (log scale)" if ratio else run.measure_label)
    ax.grid(axis="x", color="0.92")
    ax.set_axisbelow(True)
    cols.set_xlim(0, 1)
    cols.axis("off")
    _legend(fig, rows, pooled)
    return fig


def _numbers(cols, y: float, observed: str, model: str, weight: str) -> None:
    for x, value in ((0.0, observed), (0.5, model), (1.0, weight)):
        cols.text(x, y, value, va="center", ha="right" if x == 1.0 else "left",
                  fontsize="small", family="monospace")  # fmt: skip


def _headers(cols, y: float, ratio: str | None, has_weight: bool) -> None:
    names = ("observed [95% CI]", "model [95% CrI]", "weight" if has_weight else "")
    for x, name in zip((0.0, 0.5, 1.0), names, strict=True):
        cols.text(x, y, name, va="center", ha="right" if x == 1.0 else "left",
                  fontsize="small", fontweight="bold")  # fmt: skip


def _legend(fig, rows, pooled) -> None:
    from matplotlib.lines import Line2D
    from matplotlib.patches import Patch

    handles = []
    if any(r["obs"] for r in rows):
        handles.append(Line2D([], [], color=OBSERVED, marker="s", ms=5, label="observed (95% CI)"))
    if any(r["model"] for r in rows):
        handles.append(Line2D([], [], color=MODEL, marker="o", ms=5, label="model (95% CrI)"))
    kinds = {p["kind"] for p in pooled}
    if "pooled" in kinds:
        handles.append(Patch(color=POOLED, label="pooled (95% CrI)"))
    if "predictive" in kinds:
        handles.append(Line2D([], [], color=PREDICTIVE, lw=5, label="new study (95% PI)"))
    if handles:
        fig.legend(handles=handles, loc="outside lower center", ncols=min(len(handles), 4),
                   frameon=False, fontsize="small")  # fmt: skip


def forest_caption(run: Run) -> str:
    """Return the caption of the forest plot: what each mark is, and how the weights are made.

    Examples
    --------
    >>> from pathlib import Path
    >>> import pandas as pd
    >>> from bayeskit.report.run import Run
    >>> forest_caption(Run(Path("."), pd.DataFrame(), {"family": "normal-normal"}))[:40]
    "Black squares: each study's observed est"
    """
    family = run.model_family
    post = run.group("posterior")
    has = set(post.data_vars) if post is not None else set()
    dose = family is not None and family.predict is not None and "mu" not in has
    parts = ["Black squares: each study's observed estimate with its 95% confidence interval."]
    if dose:
        parts.append(
            "Blue circles: the fitted dose-response difference at the contrast's own doses, "
            "routes and sessions (posterior median, 95% credible interval), without the "
            "study's own deviation or design bias. Diamonds: each question regimen's "
            "effect against no drug; orange bars: where a new study of that regimen is "
            "expected to lie (its effect plus a deviation of SD tau, 95%)."
        )
    else:
        if "theta" in has and "mu" in has:
            parts.append(
                "Blue circles: the model's estimate of the study's true effect (posterior "
                "median, 95% credible interval), pulled towards the pooled effect."
            )
        elif "theta" in has:
            parts.append("Blue circles: each study's own posterior (no pooling).")
        if "mu" in has:
            parts.append("Diamond: the pooled effect mu.")
        if "theta_new" in has and run.settings.get("pooling") != "full":
            parts.append("Orange bar: where a new study's true effect is expected to lie (95%).")
    if "tau" in has:
        parts.append(
            "Weight: the study's share of the pooled estimate, inverse-variance weights "
            "1 / (v_i + tau^2) normalised and averaged over the posterior of tau."
        )
    if family is not None and family.forest_note:
        parts.append(family.forest_note)
    return " ".join(parts)
