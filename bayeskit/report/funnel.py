"""The funnel plot of a normal-normal fit, with posterior predictive contours.

Each study's observed effect against its standard error (the axis reversed, so precise
studies sit at the top, as metafor's ``funnel`` draws it). The shaded contours are the
posterior predictive distribution of the effect a new study of that standard error would
report, ``theta_new + se * z``: the 50% and 95% regions. Studies outside the 95% region,
or a lopsided scatter among the imprecise ones, are what a small-study effect looks like;
the small-study check (:mod:`bayeskit.smallstudy`, ``small_study.csv``) gives the slope of
the effects on their standard errors as a posterior.

Matplotlib is imported only when the figure is drawn.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

if TYPE_CHECKING:
    from matplotlib.figure import Figure

    from bayeskit.report.run import Run

MAX_DRAWS = 2000
STRATA = 25
OBSERVED, BAND, LINE = "black", "C0", "C3"


def small_study(run: Run) -> pd.DataFrame | None:
    """``small_study.csv`` of the run, or None when the run has none.

    Examples
    --------
    >>> from pathlib import Path
    >>> from bayeskit.report.run import Run
    >>> print(small_study(Run(Path("/nonexistent"), pd.DataFrame(), {})))
    None
    """
    path = run.path / "small_study.csv"
    if not path.is_file():
        return None
    return pd.read_csv(path, index_col=0)


def publication_bias(run: Run) -> pd.DataFrame | None:
    """``publication_bias.csv`` of the run (a selection model's), or None.

    Examples
    --------
    >>> from pathlib import Path
    >>> from bayeskit.report.run import Run
    >>> print(publication_bias(Run(Path("/nonexistent"), pd.DataFrame(), {})))
    None
    """
    path = run.path / "publication_bias.csv"
    if not path.is_file():
        return None
    return pd.read_csv(path, index_col=0)


def publication_bias_table(run: Run):
    """Return the report's table of bias-adjusted estimates beside the unadjusted one.

    Examples
    --------
    >>> import tempfile
    >>> from pathlib import Path
    >>> from bayeskit.report.run import Run
    >>> folder = Path(tempfile.mkdtemp())
    >>> pd.DataFrame({"model": ["random effects (unadjusted)", "PET (mu at sei = 0)"],
    ...     "mean": [0.2, 0.02], "sd": [0.05, 0.1], "q2.5": [0.1, -0.2], "q50": [0.2, 0.02],
    ...     "q97.5": [0.3, 0.2], "shift": [0.0, -0.18], "bias_parameter": [None, 0.8],
    ...     "bias_prior": ["", "Normal(mu=0, sigma=5)"], "engine": ["exact", "exact"]}
    ... ).to_csv(folder / "publication_bias.csv", index=False)
    >>> publication_bias_table(Run(folder, pd.DataFrame(), {})).rows[1]
    ['PET (mu at sei = 0)', '0.02 (-0.2 to 0.2)', '-0.18', '0.8', 'Normal(mu=0, sigma=5)', 'exact']
    """
    from bayeskit.report.text import Table, num

    table = publication_bias(run)
    if table is None or table.empty:
        return None
    rows = []
    for name, r in table.iterrows():
        bias = "" if pd.isna(r["bias_parameter"]) else num(r["bias_parameter"])
        prior = "" if pd.isna(r.get("bias_prior")) else str(r["bias_prior"])
        rows.append([str(name), f"{num(r['q50'])} ({num(r['q2.5'])} to {num(r['q97.5'])})",
                     num(r["shift"]), bias, prior, str(r["engine"])])  # fmt: skip
        if "posterior_weight" in table:
            rows[-1].append(f"{num(r['posterior_weight'])} ({num(r['prior_weight'])})")
    columns = ["model", "mu (95% CrI)", "shift of the mean", "slope or omega", "its prior",
               "engine"]  # fmt: skip
    if "posterior_weight" in table:
        columns.append("posterior weight (prior)")
    return Table(columns, rows, [], [False, True, True, True, False, False, True][: len(columns)])


def publication_bias_note(run: Run) -> str:
    """Say what the table's columns are, and what its number of studies lets it say."""
    from bayeskit.pubbias import note

    k = len(run.data) if run.data is not None else 0
    table = publication_bias(run)
    weights = ""
    if table is not None and "posterior_weight" in table:
        from bayeskit.pubbias import weights_sentence

        weights = (
            " The models' weights are their posterior probabilities from marginal "
            "likelihoods computed by quadrature, with RoBMA-PSMA's prior probabilities "
            "(no bias 1/2, selection 1/4, PET and PEESE 1/8 each; Bartoš et al. 2023). "
            + weights_sentence(table.iloc[:4], k)
        )
    return (
        "The pooled effect mu unadjusted (random effects) and adjusted for publication "
        "bias by three models with the same priors on mu and tau: PET and PEESE "
        "(meta-regressions on the standard error and on its square, whose intercept is "
        "the effect of a study of infinite precision; 'slope' is theirs) and the "
        "step-function selection model fitted here ('omega': the relative probability "
        "that a study in the least significant interval of p-values is published). The "
        "slopes' priors are scaled to the data (the bias of the least precise study as "
        "uncertain as mu itself), wider than the fit's beta prior that the funnel plot's "
        "small-study check uses, so the two PET intercepts can differ. " + note(k) + weights
    )


def funnel_figure(run: Run) -> Figure | None:
    """Observed effects against standard errors, with posterior predictive contours.

    None unless the family has study-level standard errors (``Family.funnel``) and the
    fit has a pooled effect.

    Examples
    --------
    >>> import tempfile
    >>> from pathlib import Path
    >>> import bayeskit as bk
    >>> from bayeskit.report.run import load_run
    >>> from bayeskit.rundir import write_run
    >>> fit = bk.fit(bk.data_path("eight_schools.csv"))
    >>> run = load_run(write_run(fit, Path(tempfile.mkdtemp()) / "run", report=False))
    >>> figure = funnel_figure(run)
    >>> figure.axes[0].get_xlabel(), bool(figure.axes[0].yaxis_inverted())
    ('mean difference', True)
    """
    from matplotlib.figure import Figure

    from bayeskit.report.figures import observed_effects, text

    family = run.model_family
    post = run.group("posterior")
    if family is None or not family.funnel or post is None or "mu" not in post:
        return None
    observed = observed_effects(run)
    if observed.empty:
        return None
    centre = post["theta_new"] if "theta_new" in post else post["mu"]
    draws = np.asarray(centre.values, dtype=float).ravel()
    if draws.size > MAX_DRAWS:
        draws = draws[np.linspace(0, draws.size - 1, MAX_DRAWS).astype(int)]
    from scipy import stats

    # each draw of the centre with a stratified set of sampling errors: smooth contours
    # from a few thousand draws, and the same figure at every rebuild
    z = stats.norm.ppf((np.arange(STRATA) + 0.5) / STRATA)
    se = np.linspace(0.0, 1.15 * float(observed["sei"].max()), 60)
    pred = (draws[None, :, None] + se[:, None, None] * z[None, None, :]).reshape(len(se), -1)
    q = np.quantile(pred, [0.025, 0.25, 0.5, 0.75, 0.975], axis=1)

    fig = Figure(figsize=(6.4, 4.6), layout="constrained")
    ax = fig.add_subplot()
    ax.fill_betweenx(se, q[0], q[4], color=BAND, alpha=0.15, lw=0, label="new study, 95%")
    ax.fill_betweenx(se, q[1], q[3], color=BAND, alpha=0.3, lw=0, label="new study, 50%")
    ax.plot(q[2], se, color=BAND, lw=1)
    ax.plot(observed["yi"], observed["sei"], "o", color=OBSERVED, ms=5, label="observed")
    for _, row in observed.iterrows():
        ax.annotate(text(row["label"]), (row["yi"], row["sei"]), xytext=(4, 3),
                    textcoords="offset points", fontsize="x-small")  # fmt: skip
    check = small_study(run)
    if check is not None and "beta[sei]" in check.index:
        slope, intercept = check.loc["beta[sei]", "q50"], check.loc["mu_at_sei_0", "q50"]
        ax.plot(intercept + slope * se, se, color=LINE, ls="--", lw=1,
                label="small-study regression (median)")  # fmt: skip
    ax.invert_yaxis()
    ax.set_ylim(se[-1], 0)
    ax.set_ylabel("standard error")
    ax.set_xlabel(run.measure_label)
    ax.grid(color="0.92")
    ax.set_axisbelow(True)
    ax.legend(frameon=False, fontsize="small", loc="lower left")
    return fig


def funnel_caption(run: Run) -> str:
    """Return the funnel plot's caption, with the small-study check stated as a posterior.

    Examples
    --------
    >>> from pathlib import Path
    >>> from bayeskit.report.run import Run
    >>> funnel_caption(Run(Path("/nonexistent"), pd.DataFrame(), {}))[:34]
    "Dots: each study's observed effect"
    """
    parts = [
        "Dots: each study's observed effect against its standard error (precise studies at "
        "the top). Shaded: where a new study of that standard error would report its "
        "effect, from the posterior predictive distribution theta_new + se x z (50% and "
        "95%); with covariates, at their reference values."
    ]
    check = small_study(run)
    if check is not None and "beta[sei]" in check.index:
        b = check.loc["beta[sei]"]
        m = check.loc["mu_at_sei_0"]
        parts.append(
            "Small-study check (meta-regression of the effects on their standard errors, "
            "exact engine, the fit's priors): slope "
            f"{b['q50']:.3g} [95% CrI {b['q2.5']:.3g} to {b['q97.5']:.3g}] per unit of "
            f"standard error, P(slope > 0) = {b['prob_positive']:.2f}; the effect at a "
            f"standard error of 0 is {m['q50']:.3g} [{m['q2.5']:.3g} to {m['q97.5']:.3g}]. "
            "Dashed: the regression line. A slope whose interval straddles 0 gives no "
            "sign of a small-study effect; with few studies the check has little power."
        )
    else:
        parts.append("No small-study check: it needs at least 3 studies and Normal priors.")
    bias = publication_bias(run)
    if bias is not None and len(bias) > 1:
        base = bias.iloc[0]
        adjusted = "; ".join(
            f"{name} {r['q50']:.3g} [{r['q2.5']:.3g} to {r['q97.5']:.3g}]"
            for name, r in bias.iloc[1:].iterrows()
        )
        parts.append(
            f"Bias-adjusted estimates of mu beside the unadjusted {base['q50']:.3g} "
            f"[{base['q2.5']:.3g} to {base['q97.5']:.3g}]: {adjusted} (the table of "
            "bias-adjusted estimates)."
        )
    return " ".join(parts)
