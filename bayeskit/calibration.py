"""Simulation-based calibration (Talts et al. 2018, arXiv:1804.06788; Modrák et al. 2023).

Draw parameters from the prior, simulate data, fit, and record the rank of each true
value among the posterior draws. A calibrated posterior gives uniform ranks and central
intervals that cover the truth at their nominal rate.

:func:`sbc` runs SBC for any model family with MCMC: the model is built once on a
template design (``studies`` synthetic studies, or the bundled ketamine design for
``exposure-response``), the prior predictive gives every replicate's true parameters
and simulated outcomes, and each replicate swaps its outcomes into one compiled sampler
(:mod:`bayeskit.sampling.compiled`), so a replicate costs a sampling run, not a compilation.
Replicates run in chunks as Dask tasks (:mod:`bayeskit.parallel`).
:func:`sbc_normal_normal` does the same for the exact normal-normal engine.
"""

from __future__ import annotations

import functools

import numpy as np
import pandas as pd

from bayeskit.errors import UserError

LEVELS = (0.5, 0.8, 0.95)

#: The fewest replicates ``bayeskit sbc`` accepts: the uniformity test spreads the ranks
#: over 10 bins, and its chi-square approximation needs about 5 ranks per bin.
MIN_REPLICATES = 50

#: The most memory the posterior draws of one fit may take (``--draws`` and ``--chains``
#: beyond it are refused before anything runs): 4 GiB.
MAX_POSTERIOR_BYTES = 4 * 2**30
#: about the seconds of one MCMC SBC replicate with a warm compile cache, for the
#: scheduler's choice (bayeskit.parallel.choose_scheduler)
SBC_REPLICATE_S = 1.0


def __getattr__(name: str):
    # the SBC priors and parameters are the families' own (Family.sbc); these two
    # tables, by family name, are kept for code that read them here
    from bayeskit.families import FAMILIES

    if name == "SBC_PRIORS":
        return {k: dict(f.sbc.priors) for k, f in FAMILIES.items() if f.sbc}
    if name == "SBC_PARAMETERS":
        return {k: f.sbc.parameters for k, f in FAMILIES.items() if f.sbc}
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def sbc_normal_normal(
    *,
    priors: dict,
    studies: int = 8,
    replicates: int = 200,
    draws: int = 199,
    seed: int = 0,
    sei: np.ndarray | None = None,
    fit_priors: dict | None = None,
) -> pd.DataFrame:
    """SBC of the exact normal-normal posterior.

    Parameters
    ----------
    priors : dict
        ``mu`` (Normal) and ``tau`` priors, as :class:`~bayeskit.priors.Prior` objects.
    studies : int
        Studies per simulated data set.
    replicates : int
        Simulated data sets.
    draws : int
        Posterior draws per replicate (ranks run from 0 to ``draws``). Coverage is read
        off the ranks: the central ``level`` interval holds the truth when its rank lies
        in ``[a, draws + 1 - a)`` with ``a = (1 - level) / 2 x (draws + 1)``, exact when
        ``a`` is whole (199 draws: 5, 20 and 50 for 95, 80 and 50%). Quantiles of a few
        hundred draws would undercover (the 2.5% sample quantile of 99 draws sits
        between the 3rd and 4th smallest), so they are not used.
    seed : int
    sei : array, optional
        Within-study standard errors; by default spread evenly between 0.5 and 2 times
        the prior scale of tau.
    fit_priors : dict, optional
        Priors the posterior is computed under, if not ``priors`` (which simulate the
        data): a misspecified fit, whose ranks SBC should find non-uniform.

    Returns
    -------
    DataFrame
        One row per (replicate, parameter): the true value, its rank among the draws and
        whether each central interval in ``LEVELS`` covered it.

    Examples
    --------
    >>> from bayeskit.priors import parse_prior
    >>> priors = {"mu": parse_prior("Normal(0, 1)"), "tau": parse_prior("HalfNormal(0.5)")}
    >>> ranks = sbc_normal_normal(priors=priors, studies=3, replicates=10, draws=9, seed=1)
    >>> ranks.shape, ranks["parameter"].unique().tolist()
    ((30, 7), ['mu', 'tau', 'theta[S0]'])
    >>> bool(ranks["rank"].between(0, 9).all())
    True
    """
    from bayeskit.exact import posterior_grids

    if replicates < 1 or studies < 1 or draws < 1:
        raise UserError("replicates, studies and draws must be at least 1")
    rng = np.random.default_rng(seed)
    scale = float(np.nan_to_num(priors["tau"].ppf(0.5), nan=1.0)) or 1.0
    sei = np.linspace(0.5, 2.0, studies) * scale if sei is None else np.asarray(sei, float)
    # simulate every replicate first, drawing the random numbers in the order they always
    # had (two uniforms, the study effects, the estimates, a seed), then transform them
    # all at once: rng.normal(loc, scale) is loc + scale x a standard normal, to the bit
    u = np.empty((replicates, 2))
    z_theta, z_y = np.empty((replicates, studies)), np.empty((replicates, studies))
    seeds = np.empty(replicates, dtype=np.int64)
    for rep in range(replicates):
        u[rep] = rng.uniform(), rng.uniform()
        z_theta[rep] = rng.standard_normal(studies)
        z_y[rep] = rng.standard_normal(studies)
        seeds[rep] = rng.integers(2**31)
    mu = np.asarray(priors["mu"].ppf(u[:, 0]), dtype=float)
    tau = np.asarray(priors["tau"].ppf(u[:, 1]), dtype=float)
    theta = mu[:, None] + tau[:, None] * z_theta
    ys = theta + sei * z_y
    # every posterior at once (the exact engine's vectorised form), then each replicate's
    # draws from its grid as ExactPosterior.draw_arrays makes them (same generator, same
    # order), without building a posterior object and study table per replicate
    taus, weights, _, _, m, V = posterior_grids(ys, sei, fit_priors or priors)
    s2 = sei[0] ** 2
    names = ("mu", "tau", "theta[S0]")
    ranks = np.empty((replicates, 3), dtype=np.int64)
    for rep in range(replicates):
        draw = np.random.default_rng(int(seeds[rep]))
        cell = draw.choice(weights.shape[1], size=draws, p=weights[rep])
        tau_d = taus[rep, cell]
        b = m[rep, cell, 0] + np.sqrt(V[rep, cell, 0, 0] + 1e-300) * draw.standard_normal(draws)
        shrink = s2 / (s2 + tau_d**2)
        theta0 = (1 - shrink) * ys[rep, 0] + shrink * b
        # the noise of every study is drawn, as before, to keep the generator's order
        noise = draw.standard_normal((draws, studies))[:, 0]
        theta0 += np.sqrt((1 - shrink) * s2) * noise
        ranks[rep] = (
            np.sum(b < mu[rep]), np.sum(tau_d < tau[rep]), np.sum(theta0 < theta[rep, 0])
        )  # fmt: skip
    table = pd.DataFrame({
        "replicate": np.repeat(np.arange(replicates), 3),
        "parameter": np.tile(names, replicates),
        "truth": np.column_stack([mu, tau, theta[:, 0]]).ravel(),
        "rank": ranks.ravel(),
    })  # fmt: skip
    for level in LEVELS:
        table[f"covered_{int(level * 100)}"] = covered(table["rank"].to_numpy(), draws, level)
    return table


def covered(rank, draws: int, level: float):
    """Whether the central ``level`` interval covers the truth, read off its rank.

    The rank ``r`` (0 to ``draws``) is normalised to ``u = (r + 0.5) / (draws + 1)``,
    which under calibration is uniform on the ``draws + 1`` midpoints of ``[0, 1]``; the
    central interval covers the truth when ``(1 - level) / 2 < u < (1 + level) / 2``.
    Its expected coverage is then the fraction of the equally likely ranks inside
    (:func:`expected_coverage`): exactly ``level`` when ``(1 - level) / 2 x (draws +
    1)`` is whole (199 draws: 95, 80 and 50%); with 99 draws the "95%" interval holds
    94 of the 100 ranks, and the summary says so.

    Examples
    --------
    >>> [bool(covered(r, 199, 0.95)) for r in (4, 5, 194, 195)]
    [False, True, True, False]
    """
    u = (np.asarray(rank) + 0.5) / (draws + 1)
    return ((1 - level) / 2 < u) & (u < (1 + level) / 2)


def expected_coverage(draws: int, level: float) -> float:
    """Coverage of the central ``level`` interval under calibration (uniform ranks).

    Examples
    --------
    >>> expected_coverage(199, 0.95), expected_coverage(99, 0.95), expected_coverage(99, 0.5)
    (0.95, 0.94, 0.5)
    """
    return float(np.mean(covered(np.arange(draws + 1), draws, level)))


def sbc_summary(ranks: pd.DataFrame, draws: int, bins: int = 10) -> pd.DataFrame:
    """Per parameter: chi-square test of uniform ranks and coverage at each level.

    The ranks take ``draws + 1`` values; they are grouped into ``bins`` equal bins (which
    needs ``draws + 1`` divisible by ``bins``) and compared with the uniform by Pearson's
    chi-square. ``coverage_<level>`` is the share of replicates whose central interval
    covered the truth (:func:`covered`); ``expected_<level>`` is that share under
    calibration (:func:`expected_coverage`), which the pass rule compares it with.

    Examples
    --------
    Ten replicates whose ranks (out of 0 to 9) are spread perfectly evenly:

    >>> ranks = pd.DataFrame({"parameter": "mu", "rank": range(10),
    ...                       "covered_50": True, "covered_80": True, "covered_95": True})
    >>> summary = sbc_summary(ranks, draws=9)
    >>> summary.loc["mu", ["replicates", "chi2", "p_uniform", "coverage_95"]].tolist()
    [10.0, 0.0, 1.0, 1.0]
    """
    from scipy import stats  # here: `fit` checks sizes with this module, and stats is slow

    if (draws + 1) % bins:
        raise UserError(f"draws + 1 ({draws + 1}) must be divisible by bins ({bins})")
    out = []
    for name, grp in ranks.groupby("parameter", sort=False):
        counts = np.bincount(grp["rank"] * bins // (draws + 1), minlength=bins)
        chi2 = stats.chisquare(counts)
        row = {
            "parameter": name,
            "replicates": len(grp),
            "chi2": chi2.statistic,
            "p_uniform": chi2.pvalue,
        }
        for level in LEVELS:
            key = f"covered_{int(level * 100)}"
            row[f"coverage_{int(level * 100)}"] = grp[key].mean()
            row[f"expected_{int(level * 100)}"] = expected_coverage(draws, level)
        # Monte Carlo standard error of the 95% coverage under perfect calibration
        expected = row["expected_95"]
        row["coverage_95_mcse"] = float(np.sqrt(expected * (1 - expected) / len(grp)))
        out.append(row)
    return pd.DataFrame(out).set_index("parameter")


def _template(family: str, studies: int, priors: dict | None):
    """Build ``family``'s model on its SBC template design (one structure every call).

    Built once per process and set of arguments: the driver and every chunk a worker
    runs share it (the model is only read).
    """
    return _cached_template(family, studies, tuple(sorted((priors or {}).items())))


@functools.lru_cache(maxsize=8)
def _cached_template(family: str, studies: int, priors: tuple):
    from bayeskit.families import get_family

    design = get_family(family).sbc
    return design.template(studies, dict(design.priors) | dict(priors))


def _observed_containers(model) -> dict[str, str]:
    """Map each observed variable to the name of the ``pm.Data`` container holding it."""
    from pytensor.compile.sharedvalue import SharedVariable
    from pytensor.graph.traversal import ancestors

    out = {}
    for rv in model.observed_RVs:
        shared = [v for v in ancestors([model.rvs_to_values[rv]]) if isinstance(v, SharedVariable)]
        if len(shared) != 1:
            raise UserError(f"observed variable {rv.name} is not held in one pm.Data container")
        out[rv.name] = shared[0].name
    return out


def _pick(values: np.ndarray) -> float:
    """Return a parameter's tested value: a scalar, or a vector's first element."""
    return float(np.asarray(values).reshape(-1)[0])


def _sbc_chunk(
    family: str,
    studies: int,
    priors: dict | None,
    replicates: list[int],
    simulated: list[dict],
    truths: list[dict],
    sampling: dict,
    seed: int,
) -> list[dict]:
    """Fit a chunk of replicates on one compiled sampler and return their rank rows."""
    import nutpie

    from bayeskit.sampling import quiet_pymc
    from bayeskit.sampling.compiled import compiled_sampler

    quiet_pymc()
    model = _template(family, studies, priors)
    compiled, _ = compiled_sampler(model)
    containers = _observed_containers(model)
    draws = sampling["draws"]  # posterior draws kept per replicate (after thinning)
    rows = []
    for rep, sim, truth in zip(replicates, simulated, truths, strict=True):
        data = {containers[name]: value for name, value in sim.items()}
        trace = nutpie.sample(
            compiled.with_data(**data),
            draws=sampling["iterations"],
            tune=sampling["tune"],
            chains=sampling["chains"],
            seed=int(np.random.SeedSequence([seed, rep]).generate_state(1)[0]),
            target_accept=sampling["target_accept"],
            progress_bar=False,
            cores=1,
        )
        post = trace.posterior
        divergent = int(trace.sample_stats["diverging"].values.sum())
        for name, value in truth.items():
            x = np.asarray(post[name].values)
            x = x.reshape(x.shape[0] * x.shape[1], -1)[:, 0]
            # thin evenly to `draws` draws: ranks need (nearly) independent draws
            x = x[np.linspace(0, len(x) - 1, draws).round().astype(int)]
            rank = int(np.sum(x < value))
            row = {
                "replicate": rep,
                "parameter": name,
                "truth": value,
                "rank": rank,
                "divergences": divergent,
            }
            for level in LEVELS:
                row[f"covered_{int(level * 100)}"] = bool(covered(rank, draws, level))
            rows.append(row)
    return rows


def sbc(
    model: str = "normal-normal",
    *,
    method: str = "mcmc",
    replicates: int = 200,
    studies: int = 8,
    priors: dict | None = None,
    draws: int = 99,
    iterations: int = 250,
    tune: int = 500,
    chains: int = 4,
    target_accept: float = 0.95,
    seed: int = 0,
    chunk: int = 10,
    scheduler: str | None = "auto",
    workers: int | None = None,
    progress: bool = False,
) -> pd.DataFrame:
    """Simulation-based calibration of a model family's MCMC posterior.

    Parameters
    ----------
    model : str
        A model family (see :func:`bayeskit.get_family`).
    method : {"mcmc", "exact"}
        ``exact`` calibrates the family's exact engine (:func:`sbc_normal_normal` for
        ``normal-normal``) instead of MCMC: then ``iterations``, ``tune``, ``chains``,
        ``target_accept``, ``chunk``, ``scheduler`` and ``workers`` are not used.
    replicates : int
        Simulated data sets.
    studies : int
        Studies in the template design (ignored for ``exposure-response``, which uses the
        design of the bundled ketamine evidence, ``models/oud_abstinence.toml``).
    priors : dict, optional
        Priors (text) replacing the family's SBC priors (:attr:`Family.sbc`).
    draws : int
        Posterior draws per replicate after thinning: ranks run from 0 to ``draws``.
    iterations, tune, chains, target_accept
        nutpie settings per replicate (``chains x iterations`` draws thinned to ``draws``).
    seed : int
        Seeds the prior draws and every replicate's sampler: same seed, same ranks.
    chunk : int
        Replicates per task.
    scheduler, workers
        Where the tasks run (see :func:`bayeskit.parallel.run_tasks`): ``"auto"`` (the
        default: a plain loop on two cores or few chunks, else a LocalCluster),
        ``"local"`` (a LocalCluster), ``tcp://host:port`` or ``"none"`` (this process).
        The choice and its reason are in the result's ``attrs["scheduler"]``.
    progress : bool

    Returns
    -------
    DataFrame
        One row per (replicate, parameter): the true value, its rank, the divergent
        transitions of the replicate, and whether each central interval covered it.
        Summarise with :func:`sbc_summary`.

    Examples
    --------
    >>> import bayeskit as bk
    >>> ranks = bk.sbc("normal-normal", replicates=2, studies=3, iterations=100,
    ...                tune=100, chains=2, scheduler="none")
    >>> ranks["parameter"].tolist()[:4], bool(ranks["rank"].between(0, 99).all())
    (['mu', 'tau', 'theta', 'theta_new'], True)
    """
    import pymc as pm

    from bayeskit.parallel import run_tasks
    from bayeskit.sampling import quiet_pymc

    fam = sbc_family(model, method)
    family = fam.name
    for name, value in (("replicates", replicates), ("studies", studies), ("draws", draws)):
        if int(value) != value or value < 1:
            raise UserError(f"{name} must be a whole number of at least 1 (got {value})")
    if method == "exact":
        return _sbc_exact(fam, priors, studies, replicates, draws, seed)
    quiet_pymc()
    if chains * iterations < draws:
        raise UserError(f"chains x iterations ({chains * iterations}) must be at least draws")
    template = _template(family, studies, priors)
    containers = _observed_containers(template)
    names = [p for p in fam.sbc.parameters if p in template.named_vars]
    prior = pm.sample_prior_predictive(
        draws=replicates,
        model=template,
        var_names=[*names, *containers],
        random_seed=np.random.SeedSequence(seed).generate_state(1)[0],
    )
    params = prior["prior"].to_dataset()
    sims = prior["prior_predictive"].to_dataset()
    truths = [{p: _pick(params[p].values[0, r]) for p in names} for r in range(replicates)]
    simulated = [
        {o: np.asarray(sims[o].values[0, r]) for o in containers} for r in range(replicates)
    ]
    sampling = {
        "draws": draws,
        "iterations": iterations,
        "tune": tune,
        "chains": chains,
        "target_accept": target_accept,
    }
    chunks = [list(range(s, min(s + chunk, replicates))) for s in range(0, replicates, chunk)]
    tasks = [
        (family, studies, priors, reps, [simulated[r] for r in reps],
         [truths[r] for r in reps], sampling, seed)
        for reps in chunks
    ]  # fmt: skip
    rows, where = [], {}
    for _, result in run_tasks(
        _sbc_chunk,
        tasks,
        scheduler=scheduler,
        workers=workers,
        progress=progress,
        label="sbc",
        task_seconds=SBC_REPLICATE_S * chunk,
        record=where,
    ):
        rows.extend(result)
    # chunks finish in any order; within a replicate the rows are already in `names` order
    ranks = pd.DataFrame(rows).sort_values("replicate", kind="stable").reset_index(drop=True)
    ranks.attrs["scheduler"] = where
    return ranks


def sbc_family(model: str, method: str = "mcmc"):
    """Return the family to calibrate, after checking it can be calibrated by ``method``.

    Examples
    --------
    >>> sbc_family("normal-normal", "exact").name
    'normal-normal'
    >>> sbc_family("binomial-normal", "exact")
    Traceback (most recent call last):
    ...
    bayeskit.errors.UserError: the exact engine is for the normal-normal model; use method mcmc
    """
    from bayeskit.families import FAMILIES, get_family

    fam = get_family(model)
    if method not in ("mcmc", "exact"):
        raise UserError(f"method must be mcmc or exact (got {method!r})")
    if fam.sbc is None:
        raise UserError(f"model {fam.name} has no SBC design")
    if method == "exact" and fam.sbc.exact is None:
        exact = [f.name for f in FAMILIES.values() if f.sbc and f.sbc.exact is not None]
        raise UserError(f"the exact engine is for the {', '.join(exact)} model; use method mcmc")
    return fam


def _sbc_exact(fam, priors, studies, replicates, draws, seed) -> pd.DataFrame:
    """SBC of a family's exact engine (normal-normal: :func:`sbc_normal_normal`)."""
    chosen = {
        k: fam.parse_prior(k, v) for k, v in (dict(fam.sbc.priors) | dict(priors or {})).items()
    }
    return fam.sbc.exact(
        priors=chosen, studies=studies, replicates=replicates, draws=draws, seed=seed
    )


def plot_sbc(ranks: pd.DataFrame, draws: int, path, *, bins: int = 10, prob: float = 0.95):
    """Rank histograms and ECDF-difference plots with simultaneous bands, one column each.

    Top row: the histogram of ranks in ``bins`` bins with the central 99% range of a bin
    count under uniformity (binomial). Bottom row: the ECDF of the fractional ranks
    minus the uniform CDF, with the ``prob`` simultaneous band of Säilynoja et al. (2022,
    Stat Comput 32:32) computed by :func:`arviz_stats.ecdf_utils.ecdf_pit`; a calibrated
    posterior stays inside the band for all ranks at once with probability ``prob``.

    Examples
    --------
    >>> import os, tempfile
    >>> ranks = pd.DataFrame({"parameter": ["mu"] * 10 + ["tau"] * 10,
    ...                       "rank": [*range(10), *range(9, -1, -1)]})
    >>> path = plot_sbc(ranks, 9, os.path.join(tempfile.mkdtemp(), "sbc.png"))
    >>> os.path.basename(path), os.path.getsize(path) > 0
    ('sbc.png', True)
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from arviz_stats.ecdf_utils import ecdf_pit
    from scipy import stats

    names = list(dict.fromkeys(ranks["parameter"]))
    fig, axes = plt.subplots(
        2, len(names), figsize=(2.6 * len(names) + 0.6, 4.8), squeeze=False, layout="constrained"
    )
    for j, name in enumerate(names):
        r = ranks.loc[ranks["parameter"] == name, "rank"].to_numpy()
        n = len(r)
        counts = np.bincount(r * bins // (draws + 1), minlength=bins)
        lo, hi = stats.binom.ppf([0.005, 0.995], n, 1 / bins)
        ax = axes[0, j]
        ax.axhspan(lo, hi, color="0.85", lw=0)
        ax.bar(np.arange(bins), counts, width=0.9, color="C0")
        ax.set_title(name)
        ax.set_xticks([])
        if j == 0:
            ax.set_ylabel(f"replicates per rank bin\n(grey: 99% range, n={n})")
        # fractional ranks in (0, 1): (rank + 1/2) / (draws + 1)
        pit = (r + 0.5) / (draws + 1)
        x, ecdf, lower, upper = ecdf_pit(
            np.sort(pit), prob, n_simulations=1000, rng=np.random.default_rng(0)
        )
        ax = axes[1, j]
        ax.fill_between(x, lower - x, upper - x, color="0.85", lw=0, step="post")
        ax.step(x, ecdf - x, where="post", color="C0")
        ax.axhline(0, color="0.4", lw=0.6)
        ax.set_xlabel("fractional rank")
        if j == 0:
            ax.set_ylabel(f"ECDF - uniform\n(grey: {prob:.0%} simultaneous)")
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def check_sbc_options(*, replicates: int, studies: int, draws: int) -> None:
    """Refuse SBC settings that cannot give a meaningful or feasible calibration check.

    Examples
    --------
    >>> check_sbc_options(replicates=200, studies=8, draws=99)
    >>> check_sbc_options(replicates=1, studies=8, draws=99)
    Traceback (most recent call last):
    ...
    bayeskit.errors.UserError: --replicates must be at least 50 (got 1): ...
    """
    if replicates < MIN_REPLICATES:
        raise UserError(
            f"--replicates must be at least {MIN_REPLICATES} (got {replicates}): the "
            "uniformity test spreads ranks over 10 bins and needs about 5 per bin"
        )
    if draws < 9 or (draws + 1) % 10:  # ranks 0..draws fall into 10 equal bins
        raise UserError(f"--draws + 1 must be a positive multiple of 10 (got {draws})")
    check_posterior_size(chains=1, draws=draws, parameters=studies + 2, option="--draws")


def check_posterior_size(*, chains: int, draws: int, parameters: int, option: str) -> None:
    """Refuse draws whose posterior would not fit in memory (:data:`MAX_POSTERIOR_BYTES`).

    The estimate is ``chains * draws * parameters * 8`` bytes (float64 draws).

    Examples
    --------
    >>> check_posterior_size(chains=4, draws=1000, parameters=10, option="--draws")
    >>> check_posterior_size(chains=4, draws=10**9, parameters=3, option="--draws")
    Traceback (most recent call last):
    ...
    bayeskit.errors.UserError: --draws 1000000000: 4 chains of 3 parameters would take 96 GB ...
    """
    size = chains * draws * parameters * 8
    if size > MAX_POSTERIOR_BYTES:
        raise UserError(
            f"{option} {draws}: {chains} chain{'s' if chains != 1 else ''} of {parameters} "
            f"parameters would take {size / 1e9:.0f} GB of memory, over the limit of "
            f"{MAX_POSTERIOR_BYTES / 2**30:.0f} GiB; use fewer draws"
        )


def write_sbc_run(
    ranks: pd.DataFrame,
    out,
    *,
    settings: dict,
    command: list[str] | None = None,
    force: bool = False,
) -> pd.DataFrame:
    """Write an SBC run directory atomically and return the summary.

    ``out`` gets ``ranks.csv`` (one row per replicate and parameter), ``summary.csv``
    (uniformity p-value and coverage per parameter), ``figures/sbc.png`` (rank
    histograms and ECDF-difference plots), ``manifest.json`` (settings, seed, versions)
    and ``report.md``. An existing ``out`` is replaced only with ``force``, and only
    when it is an SBC folder holding nothing bayeskit did not write
    (:func:`bayeskit.outputs.claim`).

    Examples
    --------
    >>> import os, tempfile
    >>> ranks = pd.DataFrame({"parameter": "mu", "rank": range(10),
    ...                       "covered_50": True, "covered_80": True, "covered_95": True})
    >>> out = os.path.join(tempfile.mkdtemp(), "sbc")
    >>> settings = {"model": "normal-normal", "method": "exact", "draws": 9, "seed": 1}
    >>> summary = write_sbc_run(ranks, out, settings=settings, command=["bayeskit", "sbc"])
    >>> sorted(os.listdir(out)), int(summary.loc["mu", "replicates"])
    (['figures', 'manifest.json', 'ranks.csv', 'report.md', 'summary.csv'], 10)
    """
    import sys
    from datetime import UTC, datetime
    from pathlib import Path

    from bayeskit.outputs import write_file, write_json, writing_folder
    from bayeskit.rundir import versions

    draws = settings["draws"]
    summary = sbc_summary(ranks, draws=draws)
    out = Path(out)
    with writing_folder(out, kind="sbc", force=force) as tmp:
        ranks.to_csv(tmp / "ranks.csv", index=False, float_format="%.10g")
        summary.to_csv(tmp / "summary.csv", float_format="%.6g")
        (tmp / "figures").mkdir()
        plot_sbc(ranks, draws, tmp / "figures" / "sbc.png")
        write_json(
            tmp / "manifest.json",
            {
                "created": datetime.now(UTC).isoformat(timespec="seconds"),
                "command": command or sys.argv,
                "versions": versions(),
                "seed": settings.get("seed"),
                "settings": settings,
            },
        )
        write_file(tmp / "report.md", _sbc_report(summary, settings))
    return summary


def _sbc_report(summary: pd.DataFrame, settings: dict) -> str:
    reps = int(summary["replicates"].iloc[0])
    draws = int(settings["draws"])
    expected = expected_coverage(draws, 0.95)
    lines = [
        f"# Simulation-based calibration: {settings['model']} ({settings['method']})",
        "",
        f"{reps} replicates, {settings['draws']} posterior draws each (ranks 0 to "
        f"{settings['draws']}), seed {settings['seed']}. A parameter fails when its "
        "chi-square test of uniform ranks (10 bins) rejects at the 1% level, or when "
        "its 95% coverage is more than 3 Monte Carlo standard errors from its expected "
        f"value under calibration ({expected:.3f}: the share of the {draws + 1} equally "
        "likely ranks inside the central interval, with ranks normalised to "
        "(rank + 0.5) / (draws + 1)).",
        "",
        "| parameter | p uniform | coverage 50% | coverage 80% | coverage 95% | verdict |",
        "|---|---|---|---|---|---|",
    ]
    passing = _passing(summary)
    for name, row in summary.iterrows():
        ok = bool(passing[name])
        lines.append(
            f"| {name} | {row['p_uniform']:.3f} | {row['coverage_50']:.3f} | "
            f"{row['coverage_80']:.3f} | {row['coverage_95']:.3f} | {'pass' if ok else 'FAIL'} |"
        )
    lines += ["", "![rank histograms and ECDF differences](figures/sbc.png)", ""]
    return "\n".join(lines)


def sbc_passes(summary: pd.DataFrame) -> bool:
    """Whether every parameter passes: uniform ranks at 1%, 95% coverage within 3 MCSE.

    The "95%" coverage is compared with its expectation under calibration
    (``expected_95``, :func:`expected_coverage`; 0.95 for a summary without it).

    Examples
    --------
    >>> summary = pd.DataFrame({"p_uniform": [0.40, 0.30], "coverage_95": [0.95, 0.94],
    ...                         "expected_95": 0.95, "coverage_95_mcse": [0.015, 0.015]},
    ...                        index=["mu", "tau"])
    >>> sbc_passes(summary)
    True
    >>> sbc_passes(summary.assign(coverage_95=[0.95, 0.85]))  # 0.10 off: over 3 MCSE
    False
    """
    return bool(_passing(summary).all())


def _passing(summary: pd.DataFrame) -> pd.Series:
    """Per parameter: uniform ranks at 1% and 95% coverage within 3 MCSE of expected."""
    expected = summary["expected_95"] if "expected_95" in summary else 0.95
    return (summary["p_uniform"] >= 0.01) & (
        (summary["coverage_95"] - expected).abs() <= 3 * summary["coverage_95_mcse"]
    )
