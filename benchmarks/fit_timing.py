"""Time ``bayeskit fit`` on eight schools: exact engine, nutpie and PyMC's own NUTS.

Run from the repository root::

    .venv/bin/python benchmarks/fit_timing.py [--repeats N] [--json FILE]

Every number is measured in this one run and reported next to a baseline measured in
the same run (a ratio); nothing is asserted. See ``benchmarks/README.md`` for what each
row means.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
import warnings
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SPEC = ROOT / "models" / "eight_schools.toml"
PRIORS = {"mu": "Normal(0, 5)", "tau": "HalfCauchy(5)"}
DRAWS, TUNE, CHAINS = 1000, 1000, 4
SEED = 20261123


def _log(msg: str) -> None:
    print(f"[fit_timing] {msg}", file=sys.stderr, flush=True)


def _version(dist: str) -> str:
    try:
        return version(dist)
    except PackageNotFoundError:
        return "not installed"


def _loadavg() -> list[float] | None:
    """1, 5 and 15 minute load averages (None where the OS has none)."""
    try:
        return [round(x, 2) for x in os.getloadavg()]
    except (AttributeError, OSError):
        return None


def _cli() -> list[str]:
    """The ``bayeskit`` console script next to this interpreter, else ``python -m``."""
    script = Path(sys.executable).parent / "bayeskit"
    if script.exists():
        return [str(script)]
    return [sys.executable, "-m", "bayeskit"]


def _posterior_library(run_dir: Path) -> str:
    """Which library drew the posterior of a run directory (``sample_stats`` attrs)."""
    import xarray as xr

    path = run_dir / "posterior.nc"
    if not path.exists():
        return "-"
    with xr.open_datatree(path) as tree:
        if "sample_stats" not in tree.children:
            return "-"
        return str(tree["sample_stats"].attrs.get("inference_library", "?"))


# --------------------------------------------------------------------------------------
# 1. Whole-process wall time of the command line
# --------------------------------------------------------------------------------------

CLI_CASES = {
    "help": ["--help"],
    "exact": ["fit", str(SPEC), "--method", "exact"],
    "nutpie": ["fit", str(SPEC), "--method", "mcmc"],
    "pymc": ["fit", str(SPEC), "--method", "mcmc", "--sampler", "pymc"],
}


def time_cli(repeats: int) -> dict:
    """Run each command ``repeats`` times, interleaved round by round."""
    cli = _cli()
    results = {k: {"argv": cli + v, "seconds": [], "ran": []} for k, v in CLI_CASES.items()}
    for r in range(repeats):
        for key, args in CLI_CASES.items():
            with tempfile.TemporaryDirectory(prefix="bayeskit-bench-") as tmp:
                out = Path(tmp) / "run"
                argv = cli + args
                if key != "help":
                    argv = argv + ["--out", str(out), "--quiet"]
                t0 = time.perf_counter()
                proc = subprocess.run(argv, cwd=ROOT, capture_output=True, text=True)
                elapsed = time.perf_counter() - t0
                if proc.returncode != 0:
                    raise SystemExit(
                        f"{' '.join(argv)} exited {proc.returncode}:\n{proc.stderr[-2000:]}"
                    )
                ran = {"help": "-", "exact": "exact"}.get(key) or _posterior_library(out)
            results[key]["seconds"].append(elapsed)
            results[key]["ran"].append(ran)
            _log(f"cli round {r + 1}/{repeats}: {key:<6} {elapsed:7.2f} s  ({ran})")
    return results


# --------------------------------------------------------------------------------------
# 2. In one process: bk.fit, and pm.sample on the same model
# --------------------------------------------------------------------------------------


def _min_ess(summary) -> float:
    """Smallest bulk ESS over mu, tau and theta[*] (theta_new left out)."""
    names = [p for p in summary.index if p in ("mu", "tau") or str(p).startswith("theta[")]
    return float(summary.loc[names, "ess_bulk"].min())


def time_library(repeats: int) -> dict:
    """Time ``bk.fit`` (exact, nutpie, pymc) and ``pm.sample`` (nutpie, pymc)."""
    t0 = time.perf_counter()
    import nutpie  # noqa: F401
    import pymc as pm

    import bayeskit as bk
    import bayeskit.fitting  # noqa: F401  (the lazy import, done here, not in the timings)

    import_s = time.perf_counter() - t0
    logging.getLogger("pymc").setLevel(logging.ERROR)  # after import: PyMC sets its own
    data = bk.data_path("eight_schools.csv")

    def bk_fit(**kw):
        return bk.fit(
            data, priors=PRIORS, method="mcmc", draws=DRAWS, tune=TUNE, chains=CHAINS, **kw
        )

    # Warm-up: the first MCMC fit in a process pays one-time costs (numba and PyTensor
    # caches, lazy imports) that would otherwise land on whichever sampler runs first.
    t0 = time.perf_counter()
    bk.fit(data, priors=PRIORS, method="exact")
    model = None
    for sampler in ("nutpie", "pymc"):
        warm = bk.fit(
            data,
            priors=PRIORS,
            method="mcmc",
            sampler=sampler,
            seed=SEED,
            draws=100,
            tune=100,
            chains=CHAINS,
        )
        model = warm.model
        pm.sample(
            model=model,
            nuts_sampler=sampler,
            draws=100,
            tune=100,
            chains=CHAINS,
            random_seed=SEED,
            progressbar=False,
            compute_convergence_checks=False,
        )
    warmup_s = time.perf_counter() - t0
    _log(f"in-process: import {import_s:.2f} s, warm-up fits {warmup_s:.2f} s")

    keys = ("fit_exact", "fit_nutpie", "fit_pymc", "sample_nutpie", "sample_pymc")
    res = {k: {"seconds": [], "min_ess_bulk": [], "ess_per_s": [], "ran": []} for k in keys}
    res["import_seconds"] = import_s
    res["warmup_seconds"] = warmup_s
    for r in range(repeats):
        seed = SEED + r
        for key in keys:
            kind, sampler = key.split("_")
            t0 = time.perf_counter()
            if key == "fit_exact":
                result = bk.fit(data, priors=PRIORS, method="exact", seed=seed)
            elif kind == "fit":
                result = bk_fit(sampler=sampler, seed=seed)
            else:
                # The model bk.fit built, sampled directly: posterior draws only (no
                # log-likelihood, prior or predictive draws), with the NUTS named.
                idata = pm.sample(
                    model=model,
                    nuts_sampler=sampler,
                    draws=DRAWS,
                    tune=TUNE,
                    chains=CHAINS,
                    random_seed=seed,
                    target_accept=0.9,
                    progressbar=False,
                    compute_convergence_checks=False,
                )
            elapsed = time.perf_counter() - t0
            entry = res[key]
            entry["seconds"].append(elapsed)
            if key == "fit_exact":
                entry["ran"].append("exact")
            else:
                if kind == "fit":
                    idata, summary = result.idata, result.summary()
                else:
                    summary = bk.summarize(idata, mcmc=True)
                ess = _min_ess(summary)
                entry["min_ess_bulk"].append(ess)
                entry["ess_per_s"].append(ess / elapsed)
                entry["ran"].append(str(idata["sample_stats"].attrs.get("inference_library")))
            _log(f"lib round {r + 1}/{repeats}: {key:<13} {elapsed:7.2f} s  ({entry['ran'][-1]})")
    return res


# --------------------------------------------------------------------------------------
# 3. The table
# --------------------------------------------------------------------------------------


def _med(xs):
    return statistics.median(xs) if xs else float("nan")


def _ran(xs) -> str:
    return ",".join(sorted(set(xs))) if xs else "-"


def build_rows(cli: dict, lib: dict) -> list[dict]:
    """One row per measurement: median, min, unit, ratio (median / baseline median)."""
    rows = []

    def add(label, values, unit, ran, base_label=None, base_values=None):
        med = _med(values)
        ratio = med / _med(base_values) if base_values else None
        rows.append(
            {
                "measurement": label,
                "ran": ran,
                "median": med,
                "min": min(values) if values else float("nan"),
                "unit": unit,
                "ratio": ratio,
                "baseline": base_label or "-",
            }
        )

    help_s = cli["help"]["seconds"]
    add("process: bayeskit --help", help_s, "s", "-", None, None)
    for key, label in (
        ("exact", "process: fit --method exact"),
        ("nutpie", "process: fit (MCMC, default)"),
        ("pymc", "process: fit --sampler pymc"),
    ):
        add(label, cli[key]["seconds"], "s", _ran(cli[key]["ran"]), "--help", help_s)
    add(
        "process: fit exact / fit MCMC",
        cli["exact"]["seconds"],
        "s",
        "exact",
        "fit (MCMC)",
        cli["nutpie"]["seconds"],
    )
    add(
        "process: fit (nutpie) / --sampler pymc",
        cli["nutpie"]["seconds"],
        "s",
        _ran(cli["nutpie"]["ran"]),
        "--sampler pymc",
        cli["pymc"]["seconds"],
    )

    f = {k: lib[k] for k in ("fit_exact", "fit_nutpie", "fit_pymc", "sample_nutpie", "sample_pymc")}
    add(
        "bk.fit(method='exact')",
        f["fit_exact"]["seconds"],
        "s",
        "exact",
        "bk.fit nutpie",
        f["fit_nutpie"]["seconds"],
    )
    for what, a, b in (
        ("bk.fit", "fit_nutpie", "fit_pymc"),
        ("pm.sample", "sample_nutpie", "sample_pymc"),
    ):
        a_lbl, b_lbl = f"{what}(sampler='nutpie')", f"{what}(sampler='pymc')"
        if what == "pm.sample":
            a_lbl, b_lbl = "pm.sample(nuts_sampler='nutpie')", "pm.sample(nuts_sampler='pymc')"
        add(b_lbl, f[b]["seconds"], "s", _ran(f[b]["ran"]))
        add(a_lbl, f[a]["seconds"], "s", _ran(f[a]["ran"]), f"{what} pymc", f[b]["seconds"])
        add(f"  {what} pymc: min bulk ESS/s", f[b]["ess_per_s"], "1/s", _ran(f[b]["ran"]))
        add(
            f"  {what} nutpie: min bulk ESS/s",
            f[a]["ess_per_s"],
            "1/s",
            _ran(f[a]["ran"]),
            f"{what} pymc",
            f[b]["ess_per_s"],
        )
    return rows


def _fmt(x, unit) -> str:
    if x is None:
        return "-"
    if unit == "1/s":
        return f"{x:.0f}"
    return f"{x:.2f}" if x >= 0.1 else f"{x:.3f}"


def format_table(rows: list[dict], header: dict, mismatch: list[str]) -> str:
    """Plain-text table, columns aligned, with the machine as a header."""
    lines = [
        f"bayeskit fit timing, eight schools ({DRAWS} draws x {CHAINS} chains, "
        f"{TUNE} tune), {header['repeats']} repeats, {header['date']}",
        f"machine: {header['platform']}, {header['cpu_count']} CPUs, Python {header['python']}",
        f"load average (1, 5, 15 min): {header['loadavg_start']} at start, "
        f"{header['loadavg_end']} at end",
        "versions: " + ", ".join(f"{k} {v}" for k, v in header["versions"].items()),
        "",
    ]
    cols = ["measurement", "ran", "median", "min", "unit", "ratio", "baseline"]
    cells = [
        [
            r["measurement"],
            r["ran"],
            _fmt(r["median"], r["unit"]),
            _fmt(r["min"], r["unit"]),
            r["unit"],
            "-" if r["ratio"] is None else f"{r['ratio']:.3g}",
            r["baseline"],
        ]
        for r in rows
    ]
    widths = [max(len(c), *(len(row[i]) for row in cells)) for i, c in enumerate(cols)]
    right = {"median", "min", "ratio"}

    def line(values):
        return "  ".join(
            v.rjust(w) if c in right else v.ljust(w)
            for c, v, w in zip(cols, values, widths, strict=True)
        ).rstrip()

    lines.append(line(cols))
    lines.append(line(["-" * w for w in widths]))
    lines += [line(row) for row in cells]
    lines.append("")
    lines.append(
        "ratio = median / median of the baseline row, same run. 'ran' = library that drew "
        "the posterior (sample_stats.attrs['inference_library'])."
    )
    if mismatch:
        lines.append(
            "NOTE: asked for the PyMC sampler, but nutpie drew the posterior in: "
            + "; ".join(mismatch)
            + ". Those nutpie/pymc ratios compare nutpie with itself; the pm.sample rows "
            "name the NUTS implementation explicitly."
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark, print the table, optionally write JSON."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3, help="Repeats per measurement.")
    parser.add_argument("--json", type=Path, default=None, help="Also write raw numbers here.")
    args = parser.parse_args(argv)
    if args.repeats < 1:
        parser.error("--repeats must be at least 1")

    warnings.filterwarnings("ignore")
    started = time.perf_counter()
    header = {
        "date": time.strftime("%Y-%m-%d"),
        "platform": platform.platform(),
        "cpu_count": os.cpu_count(),
        "python": platform.python_version(),
        "versions": {p: _version(p) for p in ("bayeskit", "pymc", "nutpie", "arviz")},
        "repeats": args.repeats,
        "loadavg_start": _loadavg(),
        "draws": DRAWS,
        "tune": TUNE,
        "chains": CHAINS,
    }
    cli = time_cli(args.repeats)
    lib = time_library(args.repeats)
    rows = build_rows(cli, lib)
    header["total_seconds"] = time.perf_counter() - started
    header["loadavg_end"] = _loadavg()
    mismatch = [
        label
        for label, ran in (
            ("bayeskit fit --sampler pymc", cli["pymc"]["ran"]),
            ("bk.fit(sampler='pymc')", lib["fit_pymc"]["ran"]),
        )
        if set(ran) != {"pymc"}
    ]
    header["sampler_mismatch"] = mismatch
    print(format_table(rows, header, mismatch))
    print(f"(whole benchmark: {header['total_seconds']:.0f} s)")
    if args.json is not None:
        payload = {"machine": header, "cli": cli, "library": lib, "rows": rows}
        args.json.write_text(json.dumps(payload, indent=2, default=float) + "\n")
        _log(f"wrote {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
