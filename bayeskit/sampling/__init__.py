"""Sampling a PyMC model: NUTS through the compile cache, and every group a report needs.

:func:`sample` draws the posterior with nutpie (through :mod:`bayeskit.sampling.compiled`, which
reuses a compiled sampler for a model of a seen structure) or PyMC's own NUTS, then adds
prior and posterior predictive draws and the pointwise log-likelihood. PyMC is imported
inside the functions, so that importing this module (and the exact engine) stays light.
"""

from __future__ import annotations

import warnings

import numpy as np


def sample(
    model,
    *,
    draws: int,
    tune: int,
    chains: int,
    seed: int,
    sampler: str = "nutpie",
    target_accept: float = 0.9,
    progress: bool = False,
    posterior_only: bool = False,
):
    """Sample a PyMC model and gather every group a report needs into one DataTree.

    The posterior comes from NUTS (nutpie by default), then prior draws, prior and
    posterior predictive draws and the pointwise log-likelihood are added, all seeded
    from ``seed`` so the whole DataTree is reproducible. ``posterior_only`` stops after
    the posterior (and its sampler statistics), with the same draws.

    Examples
    --------
    >>> import bayeskit as bk
    >>> model = bk.build_model(
    ...     bk.data_path("eight_schools.csv"),
    ...     priors={"mu": "Normal(0, 5)", "tau": "HalfCauchy(5)"},
    ... )
    >>> idata = sample(model, draws=200, tune=200, chains=2, seed=1)
    >>> "log_likelihood" in idata.children, idata.posterior["mu"].shape
    (True, (2, 200))
    """
    import pymc as pm

    if _QUIET:  # PyMC set its logger to INFO when imported just now
        quiet_pymc()
    exact_float_math()
    seeds = np.random.SeedSequence(seed).generate_state(3)
    if sampler == "nutpie":
        # through the compile cache: a model of an already compiled structure only swaps
        # its data in (bayeskit.sampling.compiled)
        from bayeskit.sampling.compiled import sample_nutpie

        idata = sample_nutpie(
            model,
            draws=draws,
            tune=tune,
            chains=chains,
            seed=int(seeds[0]),
            target_accept=target_accept,
            progress=progress,
        )
    else:
        # name the sampler always: PyMC 6 picks nutpie by itself whenever it is installed
        idata = pm.sample(
            model=model,
            draws=draws,
            tune=tune,
            chains=chains,
            random_seed=int(seeds[0]),
            target_accept=target_accept,
            progressbar=progress,
            compute_convergence_checks=False,
            nuts_sampler=sampler,
        )
    if posterior_only:
        return idata
    pm.compute_log_likelihood(idata, model=model, progressbar=False)
    with warnings.catch_warnings():
        # weighted rows enter as Potentials and have no predictive draws, as documented
        # where they are added (power priors, repeated effects weighted 1/m)
        warnings.filterwarnings("ignore", "The effect of Potentials", UserWarning)
        prior = pm.sample_prior_predictive(draws=draws, model=model, random_seed=int(seeds[1]))
        ppc = pm.sample_posterior_predictive(
            idata, model=model, random_seed=int(seeds[2]), progressbar=False
        )
    for tree in (prior, ppc):
        for name, child in tree.children.items():
            if name not in idata.children:
                idata[name] = child
    return idata


def exact_float_math() -> None:
    """Compile PyTensor's numba code without fastmath, so that one seed gives one set of draws.

    With PyTensor's default fastmath flags (``reassoc``, ``contract``, ...) LLVM may
    reorder sums and fuse multiply-adds differently in each compilation: code compiled in
    the process, the same code loaded from numba's disk cache, and code that inlines
    functions PyTensor compiled itself versus loaded from its own cache gave draws that
    differ in the 4th digit for the same seed. Without fastmath every rewrite LLVM may
    make keeps IEEE results, so all of them give the same bytes. PyTensor's own cache
    keys include this flag, and :mod:`bayeskit.sampling._cfunc` puts it in its key.

    Examples
    --------
    >>> import pytensor
    >>> exact_float_math()
    >>> pytensor.config.numba__fastmath
    False
    """
    import pytensor

    pytensor.config.numba__fastmath = False


#: set by :func:`quiet_pymc`: :func:`sample` silences PyMC again after importing it
_QUIET = False


def quiet_pymc() -> None:
    """Silence PyMC's INFO messages (``Sampling: [y]``) for this process.

    PyMC sets its logger to INFO when it is first imported, so the level is set now and
    again by :func:`sample` once PyMC is imported: a fit by the exact engine never
    imports PyMC at all (a second of the command's time).

    Examples
    --------
    >>> import logging
    >>> quiet_pymc()
    >>> logging.getLogger("pymc").level == logging.WARNING
    True
    """
    import logging

    global _QUIET
    _QUIET = True
    logging.getLogger("pymc").setLevel(logging.WARNING)
