"""The page's three figures: OUD dose-response, withdrawal by dose, borrowing."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
from scipy import stats  # noqa: E402

from bayeskit.questions import effect_draws  # noqa: E402

from .fmt import ROUTE_NAMES, study_name  # noqa: E402
from .numbers import PRIOR, WITH, WITHOUT  # noqa: E402

DPI = 100
ROUTE_COLOURS = {
    "iv": "#1b6ca8",
    "im": "#c0392b",
    "sl": "#27ae60",
    "oral": "#8e44ad",
    "intranasal": "#7f8c8d",
}
SESSIONS_COLOUR = "#e67e22"
OUD_FIGURE = "ketamine_oud_dose_response.png"
OW_FIGURE = "ketamine_ow_withdrawal.png"
BORROW_FIGURE = "ketamine_borrowing.png"


def wilson(events: float, n: float) -> tuple[float, float]:
    """Wilson score 95% interval of the proportion ``events / n`` (whole counts).

    >>> [round(x, 3) for x in wilson(5, 10)]
    [0.237, 0.763]
    """
    ci = stats.binomtest(int(events), int(n)).proportion_ci(0.95, method="wilson")
    return float(ci.low), float(ci.high)


def curve(fit, route, doses, sessions=1, var="p_with", indication=None) -> np.ndarray:
    """Return the 2.5%, 50% and 97.5% posterior quantiles of ``var`` at each dose."""
    out = np.empty((len(doses), 3))
    for i, d in enumerate(doses):
        ds = effect_draws(
            fit, route=route, dose_mg_per_kg=float(d), sessions=sessions, indication=indication
        )
        out[i] = np.quantile(np.asarray(ds[var].values).ravel(), (0.025, 0.5, 0.975))
    return out


def _band(ax, doses, c, colour, alpha, label, ls="-") -> None:
    ax.fill_between(doses, c[:, 0], c[:, 2], color=colour, alpha=alpha, lw=0)
    ax.plot(doses, c[:, 1], color=colour, lw=2.2, ls=ls, label=label)


def _routes_panel(ax, fit, doses) -> dict[str, np.ndarray]:
    """Every route, one session; bands drawn as outlines so that they stay readable."""
    post = fit.idata["posterior"]
    curves = {}
    for r in ("iv", "im", "sl", "oral"):
        c = curves[r] = curve(fit, r, doses)
        bio = float(post["bioavailability"].sel(route=r).median())
        col = ROUTE_COLOURS[r]
        ax.fill_between(doses, c[:, 0], c[:, 2], color=col, alpha=0.07, lw=0)
        ax.plot(doses, c[:, 0], color=col, lw=0.8, ls=":")
        ax.plot(doses, c[:, 2], color=col, lw=0.8, ls=":")
        ax.plot(
            doses, c[:, 1], color=col, lw=2.2, label=f"{ROUTE_NAMES[r]} (bioavailability {bio:.2f})"
        )
    ax.set_title("By route, one session (dotted: 95% band)", fontsize=11)
    ax.legend(fontsize=8.5, loc="upper left", framealpha=0.9)
    return curves


def _observed_arms(ax, tab: pd.DataFrame, q3) -> None:
    """Plot the trials' arms with 95% Wilson intervals; open markers for several sessions."""
    markers = ["o", "s", "^", "D"]
    for k, (s, g) in enumerate(tab.groupby("study", sort=False)):
        for r in g.itertuples():
            lo, hi = wilson(r.events, r.n)
            x = r.dose_mg_per_kg + (0.05 if k else -0.05)
            p = r.events / r.n
            one = r.sessions <= 1
            ax.errorbar(
                x,
                p,
                yerr=[[p - lo], [hi - p]],
                fmt=markers[k % 4],
                color="k" if one else SESSIONS_COLOUR,
                mfc="k" if one else "white",
                mew=1.5,
                ms=6,
                capsize=2,
                lw=1,
                zorder=5,
            )
        ax.plot([], [], markers[k % 4], color="k", label=f"{study_name(s)}: observed arms")
    label = f"observed, {q3.sessions:g} sessions"
    ax.plot([], [], "s", color=SESSIONS_COLOUR, mfc="white", mew=1.5, label=label)


def _sessions_panel(ax, fit, tab, doses, curves, q1, q3) -> None:
    """Plot the trials' route, 1 against ``q3.sessions`` sessions, with the observed arms."""
    c1 = curves[q1.route] if q1.route in curves else curve(fit, q1.route, doses)
    c3 = curve(fit, q3.route, doses, sessions=q3.sessions)
    route = ROUTE_NAMES[q1.route]
    _band(ax, doses, c1, ROUTE_COLOURS[q1.route], 0.15, f"{route}, {q1.sessions:g} session")
    label = f"{ROUTE_NAMES[q3.route]}, {q3.sessions:g} sessions"
    _band(ax, doses, c3, SESSIONS_COLOUR, 0.12, label, ls="--")
    _observed_arms(ax, tab, q3)
    ax.set_title(f"{route} (the trials' route): 1 vs {q3.sessions:g} sessions", fontsize=11)
    ax.legend(fontsize=8.5, loc="upper left", framealpha=0.9)
    ax.annotate(
        "no trial had a no-ketamine arm:\nvalues at dose 0 (and in the\ngrey zone) "
        "are extrapolations",
        xy=(0.02, float(c1[0, 1])),
        xytext=(0.3, 0.655),
        fontsize=8.5,
        va="top",
        color="0.2",
        bbox=dict(boxstyle="round", fc="white", ec="0.7", alpha=0.85),
        arrowprops=dict(arrowstyle="->", color="0.3"),
    )


def oud_figure(fit, tab: pd.DataFrame, q1, q3, timepoint: str, folder: Path) -> Path:
    """Predicted abstinence against dose: by route (left), 1 vs 3 sessions (right)."""
    doses = np.linspace(0, 3, 61)
    lowest = tab.loc[tab["dose_mg_per_kg"] > 0, "dose_mg_per_kg"].min()
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(11, 4.8), sharey=True)
    for ax in (ax1, ax2):
        ax.axvspan(0, lowest, color="0.88", zorder=0)
        for d in sorted(set(tab["dose_mg_per_kg"])):
            ax.axvline(d, ymin=0, ymax=0.03, color="k", lw=2.5)
    curves = _routes_panel(ax1, fit, doses)
    _sessions_panel(ax2, fit, tab, doses, curves, q1, q3)
    for ax in (ax1, ax2):
        ax.set_xlim(0, 3)
        ax.set_ylim(0, 1)
        ax.set_xlabel("ketamine dose per session (mg/kg)")
        ax.grid(alpha=0.3)
        ax.yaxis.set_major_formatter(matplotlib.ticker.PercentFormatter(1.0))
    ax1.set_ylabel(f"P(abstinent at {timepoint}), typical trial")
    fig.suptitle(
        f"Opioid use disorder: predicted abstinence at {timepoint} (median, 95% band); "
        "ticks on the x-axis: doses the trials used",
        fontsize=11,
    )
    return _save(fig, folder / OUD_FIGURE)


def _withdrawal_studies(ax, tab: pd.DataFrame, bias_sd: dict) -> None:
    """Each study's contrast with its 95% CI; a thin bar adds its design-bias SD."""
    styles = {
        "rct": dict(fmt="o", color="k", ms=7),
        "case_report": dict(fmt="s", color="#d35400", mfc="white", ms=7),
    }
    seen = set()
    cr = tab[tab["design"] == "case_report"]
    offsets = {s: (i - (len(cr) - 1) / 2) * 0.03 for i, s in enumerate(cr["study"])}
    for r in tab.itertuples():
        st = styles.get(r.design, dict(fmt="^", color="0.3", ms=7))
        x = r.dose_mg_per_kg + offsets.get(r.study, 0.0)
        if r.design in bias_sd:
            tot = 1.959964 * np.sqrt(r.sei**2 + bias_sd[r.design] ** 2)
            ax.errorbar(
                x, r.yi, yerr=tot, fmt="none", ecolor=st["color"], lw=0.8, alpha=0.5, capsize=0
            )
        lab = r.design.replace("_", " ") if r.design not in seen else None
        seen.add(r.design)
        ax.errorbar(x, r.yi, yerr=1.959964 * r.sei, capsize=3, lw=1.6, label=lab, zorder=5, **st)
        left = offsets.get(r.study, 0.0) < 0
        ax.annotate(
            f"{study_name(r.study)}\n({r.outcome})",
            (x, r.yi),
            xytext=(-8 if left else 8, -4),
            ha="right" if left else "left",
            textcoords="offset points",
            fontsize=8,
        )


def ow_figure(fit, tab: pd.DataFrame, spec, folder: Path) -> Path:
    """Plot the withdrawal effect (SMD, COWS points) against IV dose, with the studies."""
    doses = np.linspace(0, 1, 51)
    c = curve(fit, "iv", doses, var="effect")
    cows = spec.report.scales.get("COWS points")
    fig, ax = plt.subplots(figsize=(8, 5.2))
    colour = ROUTE_COLOURS["iv"]
    ax.fill_between(
        doses, c[:, 0], c[:, 2], color=colour, alpha=0.2, lw=0, label="model, IV: 95% band"
    )
    ax.plot(doses, c[:, 1], color=colour, lw=2, label="model, IV: median")
    ax.axhline(0, color="0.4", lw=0.8)
    _withdrawal_studies(ax, tab, dict(spec.model.bias_sd or {}))
    ax.set_xlim(0, 1)
    ax.set_xlabel("IV ketamine dose (mg/kg; Jovaisa: infusion rate mg/kg/h)")
    ax.set_ylabel("effect on withdrawal (SMD; negative = less)")
    ax.set_title("Opioid withdrawal: effect by IV dose")
    if cows:
        sec = ax.secondary_yaxis("right", functions=(lambda x: x * cows, lambda y: y / cows))
        sec.set_ylabel(f"COWS points (SMD x {cows:g})")
    ax.grid(alpha=0.3)
    ax.legend(
        fontsize=8,
        loc="lower left",
        framealpha=0.9,
        title="bars: 95% CI; thin: + design bias SD",
        title_fontsize=8,
    )
    return _save(fig, folder / OW_FIGURE)


#: the opioid-only analysis of section 1, beside the joint analysis's rows
OUD_ONLY = "opioid-only analysis"


def _slope_rows(borrow: pd.DataFrame, oud, ind_oud) -> list[tuple]:
    """Return (indication, fit, q2.5, q50, q97.5) of each dose contrast, OUD first."""
    rows = [(ind, label, b["q2.5"], b["q50"], b["q97.5"]) for (ind, label), b in borrow.iterrows()]
    s = oud.summary().loc[f"{borrow['parameter'].iloc[0]}[{ind_oud}]"]
    rows.append((ind_oud, OUD_ONLY, s["q2.5"], s["q50"], s["q97.5"]))
    order = {WITH: 0, PRIOR: 1, WITHOUT: 2, OUD_ONLY: 3}
    inds = list(dict.fromkeys([ind_oud] + [r[0] for r in rows]))
    return sorted(rows, key=lambda r: (inds.index(r[0]), order[r[1]]))


def borrow_figure(borrow: pd.DataFrame, oud, ind_oud, anchor: str, folder: Path) -> Path:
    """Odds ratio of the anchor dose contrast per indication, each way of borrowing."""
    rows = _slope_rows(borrow, oud, ind_oud)
    colours = {WITH: "#1b6ca8", PRIOR: "#7d3c98", WITHOUT: "#c0392b", OUD_ONLY: "0.35"}
    fig, ax = plt.subplots(figsize=(8, 3.8))
    y, ticks, labels, prev = 0.0, [], [], None
    for ind, label, lo, mid, hi in rows:
        if prev is not None and ind != prev:
            y -= 0.6
        ax.plot([np.exp(lo), np.exp(hi)], [y, y], color=colours[label], lw=2.5)
        ax.plot(np.exp(mid), y, "o", color=colours[label], ms=8)
        ax.annotate(
            f"{np.exp(mid):.2f} ({np.exp(lo):.2f} to {np.exp(hi):.2f})",
            (np.exp(hi), y),
            xytext=(6, -3),
            textcoords="offset points",
            fontsize=8,
        )
        ticks.append(y)
        labels.append(f"{ind}: {label}")
        prev = ind
        y -= 1
    ax.axvline(1, color="0.4", lw=1, ls=":")
    ax.set_xscale("log")
    ax.set_yticks(ticks, labels)
    ax.set_xlabel(f"odds ratio of abstinence, {anchor}, log scale")
    ax.set_title("Dose contrast per indication, with and without borrowing", fontsize=11)
    ax.xaxis.set_major_formatter(matplotlib.ticker.FormatStrFormatter("%g"))
    ax.xaxis.set_minor_formatter(matplotlib.ticker.NullFormatter())
    ax.set_xticks([0.5, 1, 2, 4, 8])
    xmax = np.exp(max(r[4] for r in rows))
    ax.set_xlim(min(0.8, np.exp(min(r[2] for r in rows)) * 0.95), xmax * 1.6)
    ax.grid(alpha=0.3, axis="x")
    return _save(fig, folder / BORROW_FIGURE)


def _save(fig, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.tight_layout()
    fig.savefig(path, dpi=DPI)
    plt.close(fig)
    return path
