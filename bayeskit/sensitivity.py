"""How much do the headline estimates move? Alternative priors, model options, leave-one-out.

:func:`sensitivity` refits a spec under each alternative prior set it lists and with
each study left out in turn, and tabulates the headline parameters of every refit next
to the main fit. Where the installed ArviZ offers it, power-scaling sensitivity
(Kallioinen et al. 2024, Stat Comput 34:57) of the main fit is added: how much the
posterior changes when the prior or the likelihood is raised to a power near 1.
"""

from __future__ import annotations

import time

import numpy as np
import pandas as pd

from bayeskit.errors import UserError


def sensitivity(
    spec,
    *,
    headline: list[str] | None = None,
    progress=None,
    scheduler: str | None = "auto",
    workers: int | None = None,
) -> dict:
    """Refit ``spec`` under its alternative priors and leave-one-study-out.

    The main fit runs here; the refits run as tasks (:func:`bayeskit.parallel.run_tasks`).

    Parameters
    ----------
    spec : Spec
        The analysis (its ``[sensitivity]`` section lists the alternatives).
    headline : list of str, optional
        Summary rows to track (default: the spec's ``sensitivity.headline``, else ``mu``
        and ``tau``).
    progress : callable, optional
        Called as ``progress(label, done, total)`` as the fits finish.
    scheduler, workers
        Where the refits run: ``"auto"`` (the default: a plain loop or a LocalCluster,
        whichever :func:`bayeskit.parallel.choose_scheduler` expects to be faster given
        the time of the main fit), ``"none"`` (this process), ``"local"`` (a Dask
        LocalCluster) or ``tcp://host:port``.

    Returns
    -------
    dict
        ``table``: one row per (scenario, parameter) with mean, sd, q2.5, q97.5 and the
        shift of the mean in units of the main fit's posterior SD; ``psense``: the
        power-scaling table or None; ``main``: the main fit; ``scheduler``: where the
        refits ran and why (``scheduler``, ``scheduler_reason``).

    Examples
    --------
    Eight schools with short chains: the main fit and each school left out in turn.

    >>> from bayeskit.spec import load_spec, spec_from_dict
    >>> loaded = load_spec("eight_schools")
    >>> raw = loaded.model_dump(mode="json", exclude={"base_dir"})
    >>> raw["sampler"] |= {"draws": 200, "tune": 200, "chains": 2}
    >>> spec = spec_from_dict(raw, source="example", base_dir=loaded.base_dir)
    >>> result = sensitivity(spec)
    >>> table = result["table"]
    >>> table["scenario"].tolist()[:4]
    ['main', 'main', 'without A', 'without A']
    >>> table["parameter"].unique().tolist(), len(table)
    (['mu', 'tau'], 18)
    >>> bool(table.loc[table["scenario"] == "main", "shift_sd"].eq(0).all())
    True
    """
    from bayeskit.parallel import run_tasks
    from bayeskit.workflow import fit_spec

    kwargs = spec.fit_kwargs()
    files = spec.data_files()
    scenarios = []
    for alt in spec.sensitivity.priors:
        label = "prior: " + ", ".join(f"{k} = {v}" for k, v in alt.items())
        scenarios.append((label, alt, (), {}))
    for alt in spec.sensitivity.options:  # model options, e.g. a working correlation rho
        label = "option: " + ", ".join(f"{k} = {v}" for k, v in alt.items())
        scenarios.append((label, {}, (), alt))
    if progress:
        progress("main", 0, len(scenarios) + 1)
    start = time.perf_counter()
    main, _, _ = fit_spec(spec, tables=False)
    seconds = time.perf_counter() - start  # what each refit will take, about
    if not (headline := headline or list(spec.sensitivity.headline)):
        # mu and the heterogeneity SD(s): tau, or a multilevel model's tau_<level>
        names = main.summary().index
        headline = ["mu", *[n for n in names if n == "tau" or n.startswith("tau_")]]
    rows = _headline_rows("main", main, headline)
    if spec.sensitivity.leave_one_out:
        scenarios += [(f"without {study}", {}, (study,), {}) for study in main.data.study]
    tasks = [(files, kwargs, pri, exc, opt, headline, label)
             for label, pri, exc, opt in scenarios]  # fmt: skip
    results, where = {}, {}
    runs = run_tasks(
        _refit,
        tasks,
        scheduler=scheduler,
        workers=workers,
        progress=False,
        task_seconds=seconds,
        record=where,
    )
    for done, (i, result) in enumerate(runs, start=1):
        results[i] = result
        if progress:
            progress(scenarios[i][0], done, len(scenarios) + 1)
    for i in range(len(scenarios)):
        rows += results[i]
    table = pd.DataFrame(rows)
    base = table[table["scenario"] == "main"].set_index("parameter")
    table["shift_sd"] = [
        (r.mean - base.loc[r.parameter, "mean"]) / base.loc[r.parameter, "sd"]
        if r.parameter in base.index and base.loc[r.parameter, "sd"] > 0
        else np.nan
        for r in table.itertuples()
    ]
    return {"table": table, "psense": power_scaling(main), "main": main, "scheduler": where}


def _refit(files, kwargs, priors, exclude, options, headline, label) -> list[dict]:
    """One refit of a sensitivity analysis (a task): its headline rows."""
    from bayeskit.fitting import fit, quiet_pymc

    quiet_pymc()
    changed = {"priors": kwargs["priors"] | priors,
               "model_options": kwargs["model_options"] | options}  # fmt: skip
    f = fit(files, **(kwargs | changed), exclude=exclude)
    return _headline_rows(label, f, headline)


def _headline_rows(label, f, headline):
    s = f.summary()
    missing = [h for h in headline if h not in s.index]
    if missing and label == "main":
        raise UserError(
            f"headline parameter {missing[0]!r} is not in the fit; it has "
            f"{', '.join(s.index[:12])}, ..."
        )
    return [
        {"scenario": label, "parameter": h, **s.loc[h, ["mean", "sd", "q2.5", "q97.5"]]}
        for h in headline
        if h in s.index
    ]


def power_scaling(fit) -> pd.DataFrame | None:
    """Power-scaling prior and likelihood sensitivity of the main fit, or None.

    None when the fit has no PyMC model or no log-likelihood (the exact engine, for
    instance); an MCMC fit gives one row per parameter with its prior and likelihood
    sensitivity.

    Examples
    --------
    >>> import bayeskit as bk
    >>> fit = bk.fit(bk.data_path("eight_schools.csv"), method="exact",
    ...              priors={"mu": "Normal(0, 5)", "tau": "HalfCauchy(5)"})
    >>> print(power_scaling(fit))
    None
    """
    try:
        import pymc as pm
        from arviz_stats import psense_summary
    except ImportError:  # pragma: no cover - older ArviZ
        return None
    if fit.model is None or "log_likelihood" not in fit.idata.children:
        return None
    import warnings

    idata = fit.idata.copy()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            # power-scale the model's own likelihood (given the study effects), not the
            # per-study one with the effects integrated out that LOO uses
            conditional = pm.compute_log_likelihood(
                idata, model=fit.model, extend_inferencedata=False, progressbar=False
            )
            idata["log_likelihood"] = conditional
            pm.compute_log_prior(idata, model=fit.model, progressbar=False)
            table = psense_summary(idata)
        except Exception:  # noqa: BLE001 - a diagnostic extra must not sink the run
            return None
    return table.to_dataframe() if hasattr(table, "to_dataframe") else pd.DataFrame(table)


def plot(table: pd.DataFrame, path) -> None:
    """Forest plot of each headline parameter across scenarios.

    Examples
    --------
    >>> import os, tempfile
    >>> table = pd.DataFrame({
    ...     "scenario": ["main", "without A", "main", "without A"],
    ...     "parameter": ["mu", "mu", "tau", "tau"],
    ...     "mean": [4.4, 4.0, 3.6, 3.9], "q2.5": [-2.2, -2.9, 0.1, 0.2],
    ...     "q97.5": [10.9, 10.8, 11.9, 12.4]})
    >>> path = os.path.join(tempfile.mkdtemp(), "sensitivity.png")
    >>> plot(table, path)
    >>> os.path.getsize(path) > 0
    True
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    params = list(dict.fromkeys(table["parameter"]))
    scenarios = list(dict.fromkeys(table["scenario"]))
    fig, axes = plt.subplots(
        1,
        len(params),
        figsize=(4.5 * len(params), 0.45 * len(scenarios) + 1.5),
        squeeze=False,
        sharey=True,
    )
    for ax, p in zip(axes[0], params, strict=True):
        sub = table[table["parameter"] == p].set_index("scenario").loc[scenarios]
        y = np.arange(len(scenarios))[::-1]
        ax.errorbar(
            sub["mean"],
            y,
            xerr=[sub["mean"] - sub["q2.5"], sub["q97.5"] - sub["mean"]],
            fmt="o",
            color="#1f4e79",
            ecolor="#7f9fbf",
            capsize=2,
        )
        ax.axvline(sub.loc["main", "mean"], color="#999999", lw=0.8, ls="--")
        ax.set_title(p, fontsize=10)
        ax.set_yticks(y, scenarios, fontsize=8)
    fig.suptitle(
        "Headline estimates under alternative priors and leave-one-study-out (mean, 95% interval)",
        fontsize=10,
    )
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
