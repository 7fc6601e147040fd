"""The figure of case reports and series described beside the fit (``described.csv``)."""

from __future__ import annotations

import numpy as np

from bayeskit.report.run import Run


def described_figure(run: Run):
    """Each described case's observed change beside the model's new-study prediction.

    Squares: the case's observed effect with its 95% interval (1.96 x sei); bars: the
    fit's 95% interval for a new study of that case's regimen (against no ketamine). The
    cases are not in the likelihood (``case_reports = "describe"``).

    Examples
    --------
    >>> from pathlib import Path
    >>> import pandas as pd
    >>> cases = pd.DataFrame({"study": ["C1", "C2"], "yi": [-4.0, -4.5], "sei": [1.0, 1.0],
    ...     "predicted_mean": [-0.9, -0.8], "predicted_low": [-2.1, -2.0],
    ...     "predicted_high": [0.3, 0.4]})
    >>> fig = described_figure(Run(Path("."), pd.DataFrame(), {}, described=cases))
    >>> [t.get_text() for t in fig.axes[0].get_yticklabels()]
    ['C1', 'C2']
    >>> described_figure(Run(Path("."), pd.DataFrame(), {})) is None
    True
    """
    from matplotlib.figure import Figure

    d = run.described
    if d is None or d.empty or "yi" not in d or "predicted_mean" not in d:
        return None
    d = d.dropna(subset=["yi", "predicted_mean"]).reset_index(drop=True)
    if d.empty:
        return None
    fig = Figure(figsize=(6.5, 1.2 + 0.55 * len(d)), layout="constrained")
    ax = fig.add_subplot()
    y = np.arange(len(d))[::-1].astype(float)
    half = 1.959964 * d["sei"].fillna(0).to_numpy(float)
    ax.errorbar(d["yi"], y + 0.12, xerr=half, fmt="s", color="#d35400", mfc="white",
                label="observed (not pooled)")  # fmt: skip
    mid = d["predicted_mean"].to_numpy(float)
    err = [mid - d["predicted_low"].to_numpy(float), d["predicted_high"].to_numpy(float) - mid]
    ax.errorbar(mid, y - 0.12, xerr=err, fmt="o", color="#1f4e79",
                label="model: new study of that regimen")  # fmt: skip
    ax.axvline(0, color="grey", lw=0.8, ls=":")
    ax.set_yticks(y, d["study"].astype(str).tolist())
    ax.set_xlabel(f"effect against no ketamine ({run.measure_label})")
    ax.legend(loc="lower center", bbox_to_anchor=(0.5, 1.0), ncols=2, fontsize="small",
              frameon=False)  # fmt: skip
    return fig


DESCRIBED_CAPTION = (
    "Case reports and series left out of the likelihood: each case's observed change "
    "(square, 95% interval) beside the model's 95% prediction for a new study of its "
    "regimen (circle). The gap is what a natural-course bias would have to explain if "
    'they were pooled (case_reports = "pool" with a stated bias_mean).'
)
