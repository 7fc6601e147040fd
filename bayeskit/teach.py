"""Teaching partial pooling: no, partial and complete pooling of the same data side by side.

Read as plainly as numpyro's baseball example: three fits of one normal-normal model
that differ only in how much the studies share, computed exactly (no sampling), with the
shrinkage each study undergoes and a short generated narrative.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

POOLINGS = ("none", "partial", "full")


def pooling_comparison(data, *, priors: dict | None = None, **fit_options) -> dict:
    """Fit no, partial and complete pooling of the same study-level data, exactly.

    Parameters
    ----------
    data : DataFrame or path
        Evidence (study-level, or arm-level with ``measure=``).
    priors : dict, optional
        ``mu`` and ``tau`` priors for partial and complete pooling (defaults as
        :func:`bayeskit.fit`); under no pooling each study has a flat prior, so its
        posterior is its own estimate.
    **fit_options
        ``measure``, ``outcome``, ``timepoint``, ... passed to :func:`bayeskit.fit`.

    Returns
    -------
    dict
        ``table``: one row per study with its observed ``yi``, ``sei`` and the posterior
        mean and 95% interval under each pooling, and the shrinkage weight; ``pooled``:
        the partial-pooling ``mu``, ``tau`` and ``theta_new`` rows; ``narrative``: text.

    Examples
    --------
    >>> import bayeskit as bk
    >>> out = pooling_comparison(bk.data_path("eight_schools.csv"),
    ...                          priors={"mu": "Normal(0, 20)", "tau": "HalfCauchy(5)"})
    >>> out["table"].loc["A", ["yi", "none_mean"]].round(1).tolist()
    [28.0, 28.0]
    """
    from bayeskit.fitting import fit

    priors = dict(priors or {})
    # no pooling means each study alone: a flat prior, so its estimate is its own data
    alone = {k: v for k, v in priors.items() if k != "tau"} | {"mu": "Flat()"}
    fits = {p: fit(data, "normal-normal", method="exact", pooling=p,
                   priors=alone if p == "none" else priors, **fit_options)
            for p in POOLINGS}  # fmt: skip
    d = fits["partial"].data
    table = pd.DataFrame({"yi": d.yi, "sei": d.sei}, index=pd.Index(d.study, name="study"))
    for p, f in fits.items():
        s = f.summary()
        rows = s.loc[[f"theta[{st}]" for st in d.study]]
        table[f"{p}_mean"] = rows["mean"].to_numpy()
        table[f"{p}_q2.5"] = rows["q2.5"].to_numpy()
        table[f"{p}_q97.5"] = rows["q97.5"].to_numpy()
    table["shrinkage"] = fits["partial"].exact.shrinkage.to_numpy()
    pooled = fits["partial"].summary().loc[["mu", "tau", "theta_new"]]
    return {
        "table": table,
        "pooled": pooled,
        "full": fits["full"].summary().loc["mu"],
        "narrative": narrative(table, pooled, priors=fits["partial"].priors),
        "fits": fits,
    }


def narrative(table: pd.DataFrame, pooled: pd.DataFrame, *, priors: dict | None = None) -> str:
    """Say in words what pooling did to these studies, and under which priors.

    ``priors`` (those of partial and complete pooling) are named at the end: the pooled
    mean depends on them, so a number without them cannot be compared with another fit's.

    Examples
    --------
    >>> table = pd.DataFrame({"yi": [28.0, 8.0, -3.0], "sei": [15.0, 10.0, 16.0],
    ...                       "none_mean": [28.0, 8.0, -3.0],
    ...                       "partial_mean": [11.0, 7.5, 5.0],
    ...                       "shrinkage": [0.8, 0.6, 0.8]},
    ...                      index=pd.Index(["A", "B", "C"], name="study"))
    >>> pooled = pd.DataFrame({"mean": [7.0, 3.5, 7.0], "q2.5": [-2.0, 0.2, -14.0],
    ...                        "q97.5": [16.0, 12.0, 28.0]}, index=["mu", "tau", "theta_new"])
    >>> print(narrative(table, pooled, priors={"mu": "Normal(0, 5)", "tau": "HalfCauchy(5)"}))
    No pooling takes each of the 3 studies at face value; ... A at 28, becomes 11. ...
    Priors: mu ~ Normal(0, 5), tau ~ HalfCauchy(5) (partial and complete pooling); no
    pooling gives each study's effect a flat prior.
    """
    k = len(table)
    most = table["shrinkage"].idxmax()
    least = table["shrinkage"].idxmin()
    mu, tau, new = pooled.loc["mu"], pooled.loc["tau"], pooled.loc["theta_new"]
    widest = table["yi"].idxmax()
    return (
        f"No pooling takes each of the {k} studies at face value; complete pooling assumes "
        f"they all estimate one common effect. Partial pooling lets the data decide: the "
        f"between-study SD tau is estimated at {tau['mean']:.2g} (95% interval "
        f"{tau['q2.5']:.2g} to {tau['q97.5']:.2g}), so each study's estimate moves toward "
        f"the pooled mean {mu['mean']:.3g} (95% interval {mu['q2.5']:.3g} to "
        f"{mu['q97.5']:.3g}). Imprecise studies move most: {most} (standard error "
        f"{table.loc[most, 'sei']:.2g}) keeps only {1 - table.loc[most, 'shrinkage']:.0%} "
        f"of its own estimate, {least} (standard error {table.loc[least, 'sei']:.2g}) "
        f"keeps {1 - table.loc[least, 'shrinkage']:.0%}. The most extreme observation, "
        f"{widest} at {table.loc[widest, 'yi']:.3g}, becomes "
        f"{table.loc[widest, 'partial_mean']:.3g}. A new study's effect is predicted "
        f"between {new['q2.5']:.3g} and {new['q97.5']:.3g} (95%): wider than the interval "
        f"for the mean, because studies differ; that interval, not the mean's, says what "
        f"to expect next."
    ) + (_priors_sentence(priors) if priors else "")


def _priors_sentence(priors: dict) -> str:
    named = ", ".join(f"{k} ~ {priors[k]}" for k in ("mu", "tau") if k in priors)
    return (
        f" Priors: {named} (partial and complete pooling); no pooling gives each study's "
        "effect a flat prior."
    )


def shrinkage_plot(table: pd.DataFrame, pooled_mean: float, path: str | Path) -> None:
    """Each study's estimate under no, partial and complete pooling, by precision.

    A ``.png`` path also gets an ``.svg`` copy beside it.

    Examples
    --------
    >>> import tempfile
    >>> table = pd.DataFrame({"yi": [28.0, 8.0, -3.0], "sei": [15.0, 10.0, 16.0],
    ...                       "none_mean": [28.0, 8.0, -3.0],
    ...                       "partial_mean": [11.0, 7.5, 5.0],
    ...                       "shrinkage": [0.8, 0.6, 0.8]},
    ...                      index=pd.Index(["A", "B", "C"], name="study"))
    >>> folder = Path(tempfile.mkdtemp())
    >>> shrinkage_plot(table, 7.0, folder / "shrinkage.png")
    >>> sorted(p.name for p in folder.iterdir())
    ['shrinkage.png', 'shrinkage.svg']
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 0.45 * len(table) + 1.8))
    order = table.sort_values("sei").index
    y = np.arange(len(order))[::-1]
    t = table.loc[order]
    ax.scatter(t["none_mean"], y, label="no pooling", color="#b2182b", zorder=3)
    ax.scatter(t["partial_mean"], y, label="partial pooling", color="#2166ac", zorder=3)
    for yy, a, b in zip(y, t["none_mean"], t["partial_mean"], strict=True):
        ax.annotate(
            "", xy=(b, yy), xytext=(a, yy), arrowprops={"arrowstyle": "->", "color": "#888888"}
        )
    ax.axvline(pooled_mean, color="#444444", ls="--", lw=1, label="complete pooling")
    ax.set_yticks(y, [f"{s} (se {e:.2g})" for s, e in zip(order, t["sei"], strict=True)])
    ax.set_xlabel("estimate")
    ax.set_title("Shrinkage: imprecise studies move furthest toward the pooled mean", fontsize=10)
    ax.legend(fontsize=8, loc="best")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    if str(path).endswith(".png"):
        fig.savefig(Path(path).with_suffix(".svg"))
    plt.close(fig)
