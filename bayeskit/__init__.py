"""bayeskit: Bayesian evidence synthesis for small, heterogeneous studies.

>>> import bayeskit as bk
>>> ev = bk.load_evidence(bk.data_path("eight_schools.csv"))
>>> bk.effects(ev).loc["A", "yi"]
np.float64(28.0)

Public functions are imported lazily so that ``import bayeskit`` (and the CLI's
``--help``) stays fast; PyMC is only imported when a model is built.
"""

from __future__ import annotations

import importlib

_EXPORTS = {
    "load_evidence": "bayeskit.evidence",
    "load_routes": "bayeskit.evidence",
    "check_table": "bayeskit.evidence",
    "effects": "bayeskit.measures",
    "effect_sizes": "bayeskit.measures",
    "fit": "bayeskit.fitting",
    "Fit": "bayeskit.fitting",
    "build_model": "bayeskit.fitting",
    "sample": "bayeskit.sampling",
    "sbc": "bayeskit.calibration",
    "batch": "bayeskit.batches",
    "summarize": "bayeskit.summary",
    "predict": "bayeskit.questions",
    "publication_bias": "bayeskit.pubbias",
    "load_spec": "bayeskit.spec",
    "get_family": "bayeskit.families",
    "parse_prior": "bayeskit.priors",
    "data_path": "bayeskit._resources",
    "data_dir": "bayeskit._resources",
    "models_dir": "bayeskit._resources",
    "UserError": "bayeskit.errors",
    "EvidenceError": "bayeskit.errors",
}

__all__ = ["__version__", *_EXPORTS]


def __getattr__(name: str):
    if name == "__version__":  # importlib.metadata is slow to import: only when asked
        from importlib.metadata import PackageNotFoundError, version

        try:
            return version("bayeskit")
        except PackageNotFoundError:  # running from a checkout without installing
            return "0+unknown"
    if name in _EXPORTS:
        return getattr(importlib.import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module 'bayeskit' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(__all__)
