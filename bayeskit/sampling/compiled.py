"""Compile each model structure once and reuse the compiled nutpie sampler.

Compiling a PyMC model for nutpie takes seconds (numba compiles the log-density and its
gradient); sampling a small meta-analysis takes a tenth of that. Every bayeskit model
keeps its data in ``pm.Data`` containers, so two fits that differ only in data values
(simulation-based calibration, sensitivity grids, a batch of data sets with the same
design) share one compiled sampler: the second and later fits only swap the data in with
nutpie's ``with_data`` and sample.

The cache lives in the process, keyed by :func:`structure_key`, and on disk: the
C-callable wrappers nutpie calls are generated as a module named by the structure and
the package versions, so numba keeps their machine code beside it
(:mod:`bayeskit.sampling._cfunc`, under ``$BAYESKIT_CACHE_DIR`` or ``~/.cache/bayeskit``), and
PyTensor keeps its numba-compiled graph functions in its own compile folder. A new
process fitting a structure it has seen before then loads instead of compiling.
``BAYESKIT_DISK_CACHE=0`` switches the disk cache off (nutpie compiles as it would by
itself). ``benchmarks/scale.py`` measures cold, disk-cached and in-process reuse.
"""

from __future__ import annotations

import hashlib
import time
from collections import OrderedDict
from typing import Any

import numpy as np

#: compiled samplers kept per process; a structure is a few MB of machine code at most
MAX_ENTRIES = 32
_CACHE: OrderedDict[str, Any] = OrderedDict()
STATS = {"hits": 0, "misses": 0, "disk_hits": 0, "compile_seconds": 0.0}


def structure_key(model) -> str:
    """Hash of everything about ``model`` that compiled code depends on, but not its data.

    The key covers the log-density and deterministic graphs (operations and types), the
    value of every constant in them, and the name, type and shape of every data container.
    Two models with the same key differ only in the values inside their ``pm.Data``
    containers and in coordinate labels.

    Examples
    --------
    >>> import bayeskit as bk
    >>> from bayeskit.families import normal_normal
    >>> from bayeskit.families.data import study_data
    >>> from bayeskit.priors import parse_prior
    >>> d = study_data(bk.load_evidence(bk.data_path("eight_schools.csv")))
    >>> pri = {"mu": parse_prior("Normal(0, 5)"), "tau": parse_prior("HalfCauchy(5)")}
    >>> a = structure_key(normal_normal.build(d, pri))
    >>> d.yi = d.yi + 1.0  # other data, same structure
    >>> a == structure_key(normal_normal.build(d, pri))
    True
    >>> pri["tau"] = parse_prior("HalfNormal(5)")  # another prior: another structure
    >>> a == structure_key(normal_normal.build(d, pri))
    False
    """
    import pytensor
    from pytensor.compile.sharedvalue import SharedVariable
    from pytensor.graph.basic import Constant
    from pytensor.graph.traversal import ancestors

    outputs = [model.logp(), *model.deterministics]
    digest = hashlib.sha256()
    text = pytensor.printing.debugprint(outputs, file="str", print_type=True)
    digest.update(text.encode())
    for var in ancestors(outputs):
        if isinstance(var, Constant):
            value = np.asarray(var.data)
            digest.update(f"{var.type}|{value.shape}".encode())
            if value.dtype == object:  # e.g. None: its bytes would be an address
                digest.update(repr(var.data).encode())
            else:
                digest.update(np.ascontiguousarray(value).tobytes())
        elif isinstance(var, SharedVariable) and hasattr(var.type, "ndim"):
            value = var.get_value(borrow=True)
            digest.update(f"{var.name}|{var.type}|{np.shape(value)}".encode())
    for rv in model.free_RVs:
        transform = model.rvs_to_transforms.get(rv)  # by class: its repr holds an address
        digest.update(f"{rv.name}|{type(transform).__name__}".encode())
    for dim, length in model.dim_lengths.items():
        digest.update(f"{dim}={int(length.eval())}".encode())
    return digest.hexdigest()


def compiled_sampler(model):
    """Return the compiled nutpie model for ``model``'s structure, with ``model``'s data.

    Compiles on the first call for a structure; later calls for a model of the same
    structure swap the data in (no compilation).

    Returns
    -------
    compiled : nutpie compiled model
    reused : bool
        Whether a cached compilation was used.

    Examples
    --------
    The first call for a structure compiles (seconds); a model of the same structure
    with other data reuses that compilation:

    >>> import bayeskit as bk
    >>> priors = {"mu": "Normal(0, 5)", "tau": "HalfCauchy(5)"}
    >>> model = bk.build_model(bk.data_path("eight_schools.csv"), priors=priors)
    >>> compiled, reused = compiled_sampler(model)
    >>> table = bk.load_evidence(bk.data_path("eight_schools.csv"))
    >>> other = bk.build_model(table.assign(yi=table["yi"] / 2), priors=priors)
    >>> compiled_sampler(other)[1]
    True
    """
    key = structure_key(model)
    cached = _CACHE.get(key)
    if cached is None:
        STATS["misses"] += 1
        start = time.perf_counter()
        cached = _compile(model, key)
        STATS["compile_seconds"] += time.perf_counter() - start
        _CACHE[key] = cached
        while len(_CACHE) > MAX_ENTRIES:
            _CACHE.popitem(last=False)
        return cached, False
    STATS["hits"] += 1
    _CACHE.move_to_end(key)
    names = {var.name for var in cached.shared_var_keys}
    updates = {name: model[name].get_value() for name in names if name in model.named_vars}
    return cached.with_data(**updates), True


def _compile(model, key: str):
    """Compile through the disk cache; nutpie's own compiler when that is off or fails."""
    import os
    import warnings

    import nutpie

    from bayeskit.sampling import exact_float_math

    exact_float_math()  # the same machine-code results however the code was compiled
    if os.environ.get("BAYESKIT_DISK_CACHE", "1") != "0":
        from bayeskit.sampling._cfunc import compile_model

        try:
            compiled, from_disk = compile_model(model, key)
        except Exception as err:  # noqa: BLE001 - a cache must never stop a fit
            warnings.warn(
                f"compiled-sampler disk cache unavailable ({type(err).__name__}: {err}); "
                "compiling without it",
                RuntimeWarning,
                stacklevel=3,
            )
        else:
            STATS["disk_hits"] += from_disk
            return compiled
    return nutpie.compile_pymc_model(model)


def clear() -> None:
    """Forget every compiled sampler (the next fit of each structure compiles again).

    Examples
    --------
    >>> clear()
    >>> len(_CACHE), STATS["hits"], STATS["misses"]
    (0, 0, 0)
    """
    _CACHE.clear()
    STATS.update(hits=0, misses=0, disk_hits=0, compile_seconds=0.0)


def sample_nutpie(
    model, *, draws: int, tune: int, chains: int, seed: int, target_accept: float, progress: bool
):
    """Sample ``model`` with nutpie through the compile cache; the DataTree ``pm.sample`` gives.

    Posterior and sample statistics carry ``model``'s coordinate labels (a reused
    compilation would otherwise keep the labels of the model it was compiled from), and
    the ``observed_data`` and ``constant_data`` groups are added as PyMC does.

    Examples
    --------
    >>> import bayeskit as bk
    >>> model = bk.build_model(
    ...     bk.data_path("eight_schools.csv"),
    ...     priors={"mu": "Normal(0, 5)", "tau": "HalfCauchy(5)"},
    ... )
    >>> idata = sample_nutpie(model, draws=100, tune=100, chains=2, seed=1,
    ...                       target_accept=0.9, progress=False)
    >>> idata.posterior["mu"].shape, idata.posterior["theta"].coords["study"].values.tolist()[:3]
    ((2, 100), ['A', 'B', 'C'])
    """
    import nutpie
    from pymc.backends.arviz import patch_nutpie_idata

    compiled, _ = compiled_sampler(model)
    start = time.time()
    idata = nutpie.sample(
        compiled,
        draws=draws,
        tune=max(int(tune), 1),  # nuts-rs needs at least one tuning step
        chains=chains,
        seed=int(seed),
        save_warmup=False,
        progress_bar=progress,
        target_accept=target_accept,
    )
    patch_nutpie_idata(idata, model, sampling_time=time.time() - start)
    coords = {dim: np.asarray(values) for dim, values in model.coords.items() if values is not None}
    for group in ("posterior", "sample_stats"):
        if group in idata.children:
            ds = idata[group].to_dataset()
            present = {d: v for d, v in coords.items() if d in ds.dims}
            if present:
                idata[group] = ds.assign_coords(present)
    return idata
