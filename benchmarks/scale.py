"""Speed, memory and scale: one table of ratios, every number measured in this run.

Run from the repository root::

    .venv/bin/python benchmarks/scale.py [--quick] [--json FILE]

Rows (see ``benchmarks/README.md``): nutpie vs PyMC's own NUTS on eight schools and on
the OUD exposure-response model (compile time, then sampling wall time and ESS per second), the exact engine vs MCMC,
whole-process ``bayeskit fit`` and ``bayeskit --help``, cold vs cached compilation, how
fit time grows with the number of studies (k = 5 ... 5000, exact and MCMC), and a batch
of 200 fits on a Dask LocalCluster vs a plain loop, including a kill half-way and a
resume. Each measurement runs in a fresh process whose peak resident memory is
reported. Nothing is asserted except that the batch on Dask, the loop and the resumed
batch give identical numbers.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import signal
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PY = sys.executable
CLI = str(Path(PY).parent / "bayeskit")


def log(msg: str) -> None:
    print(f"[scale] {msg}", file=sys.stderr, flush=True)


def child(code: str, env: dict | None = None) -> dict:
    """Run ``code`` in a fresh interpreter; it prints one JSON line last. Adds peak MB."""
    wrapper = textwrap.dedent(code)
    proc = subprocess.run(
        [PY, "-c", wrapper],
        cwd=ROOT,
        capture_output=True,
        text=True,
        env={**os.environ, **(env or {})},
    )
    if proc.returncode != 0:
        raise SystemExit(f"benchmark child failed:\n{proc.stderr[-3000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


PRELUDE = """
import json, logging, resource, time, warnings
warnings.simplefilter("ignore")
t0 = time.perf_counter()
import numpy as np, pymc as pm
import bayeskit as bk
import bayeskit.fitting
logging.getLogger("pymc").setLevel(logging.ERROR)
import_s = time.perf_counter() - t0
def peak():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
def min_ess(idata, names):
    from arviz_stats import ess
    e = ess(idata, var_names=names)
    return float(min(float(e[v].min()) for v in names))
"""


def process(argv: list[str], env: dict | None = None) -> dict:
    """Wall time and peak memory (largest process, Dask workers included) of a command."""
    code = f"""
import json, resource, subprocess, sys, time
t = time.perf_counter()
r = subprocess.run({argv!r}, capture_output=True, text=True)
s = time.perf_counter() - t
if r.returncode not in (0, 1):
    sys.exit(r.stderr[-3000:])
print(json.dumps({{"seconds": s, "peak_mb": resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024}}))
"""
    return child(code, env)


# ---- measurements --------------------------------------------------------------------


def samplers(model: str) -> dict:
    """nutpie vs PyMC's NUTS on a bayeskit model: compile time, then warm sampling."""
    if model == "eight_schools":
        build = 'bk.build_model(bk.data_path("eight_schools.csv"), priors={"mu": "Normal(0, 5)", "tau": "HalfCauchy(5)"})'
        names, ta = ["mu", "tau", "theta"], 0.9
    else:
        build = 'bk.build_model(bk.data_path("oud_abstinence.csv"), "exposure-response", outcome="abstinence", timepoint="12 months", priors={"beta_dose": "Normal(0, 0.5)", "tau": "HalfNormal(0.5)", "baseline": "Normal(0, 2)", "baseline_sd": "HalfNormal(1)"})'
        names, ta = ["beta_dose_mu", "tau", "alpha_mu", "alpha_sd"], 0.99
    out = {}
    out["nutpie"] = child(
        PRELUDE
        + f"""
from bayeskit.sampling.compiled import compiled_sampler, sample_nutpie
m = {build}
t = time.perf_counter(); compiled_sampler(m); c = time.perf_counter() - t
t = time.perf_counter()
idata = sample_nutpie(m, draws=1000, tune=1000, chains=4, seed=1, target_accept={ta}, progress=False)
s = time.perf_counter() - t
e = min_ess(idata, {names!r})
print(json.dumps({{"compile": c, "seconds": s, "ess": e, "ess_per_s": e / s, "peak_mb": peak()}}))
"""
    )
    out["pymc"] = child(
        PRELUDE
        + f"""
m = {build}
kw = dict(model=m, nuts_sampler="pymc", progressbar=False, compute_convergence_checks=False, target_accept={ta})
t = time.perf_counter(); pm.sample(draws=5, tune=5, chains=1, random_seed=0, **kw); c = time.perf_counter() - t
t = time.perf_counter()
idata = pm.sample(draws=1000, tune=1000, chains=4, random_seed=1, **kw)
s = time.perf_counter() - t
e = min_ess(idata, {names!r})
print(json.dumps({{"compile": c, "seconds": s, "ess": e, "ess_per_s": e / s, "peak_mb": peak()}}))
"""
    )
    return out


def exact_vs_mcmc() -> dict:
    return child(
        PRELUDE
        + """
d = bk.data_path("eight_schools.csv"); pri = {"mu": "Normal(0, 5)", "tau": "HalfCauchy(5)"}
bk.fit(d, priors=pri, method="exact", draws=1000, seed=1)  # first call: lazy imports
t = time.perf_counter(); bk.fit(d, priors=pri, method="exact", draws=1000, seed=1); ex = time.perf_counter() - t
t = time.perf_counter(); bk.fit(d, priors=pri, method="mcmc", seed=1); first = time.perf_counter() - t
t = time.perf_counter(); bk.fit(d, priors=pri, method="mcmc", seed=2); again = time.perf_counter() - t
print(json.dumps({"exact": ex, "mcmc_first": first, "mcmc_cached": again, "peak_mb": peak()}))
"""
    )


def compile_cache() -> dict:
    """A fit in a process with empty compile caches, then in one with both caches warm."""
    code = (
        PRELUDE
        + """
from bayeskit.sampling import compiled
d = bk.data_path("eight_schools.csv"); pri = {"mu": "Normal(0, 5)", "tau": "HalfCauchy(5)"}
t = time.perf_counter(); bk.fit(d, priors=pri, method="mcmc", seed=1); first = time.perf_counter() - t
c = compiled.STATS["compile_seconds"]
t = time.perf_counter(); bk.fit(d, priors=pri, method="mcmc", seed=2); second = time.perf_counter() - t
print(json.dumps({"fit": first, "compile": c, "reused_fit": second, "peak_mb": peak()}))
"""
    )
    with tempfile.TemporaryDirectory() as tmp:
        env = {"PYTENSOR_FLAGS": f"base_compiledir={tmp}", "BAYESKIT_CACHE_DIR": tmp}
        cold = child(code, env)
        warm = child(code, env)
    return {"cold": cold, "warm": warm}


def scaling(ks: list[int]) -> dict:
    out = {}
    for k in ks:
        code = (
            PRELUDE
            + f"""
import pandas as pd
rng = np.random.default_rng({k})
sei = rng.uniform(0.1, 0.5, {k}); yi = rng.normal(0.3, 0.2, {k}) + rng.normal(0, sei)
table = pd.DataFrame({{"study": [f"S{{i}}" for i in range({k})], "yi": yi, "sei": sei}})
table.attrs["shape"] = "study"
pri = {{"mu": "Normal(0, 2)", "tau": "HalfNormal(0.5)"}}
bk.fit(table, priors=pri, method="exact", seed=1)  # first call: lazy imports
t = time.perf_counter(); bk.fit(table, priors=pri, method="exact", seed=1); ex = time.perf_counter() - t
ex_peak = peak()
t = time.perf_counter(); f = bk.fit(table, priors=pri, method="mcmc", seed=1, draws=500, tune=500, chains=2); mc = time.perf_counter() - t
print(json.dumps({{"exact": ex, "exact_peak_mb": ex_peak, "mcmc": mc, "peak_mb": peak()}}))
"""
        )
        with tempfile.TemporaryDirectory() as cache:  # compile cold: no sampler cached yet
            out[k] = child(code, {"BAYESKIT_CACHE_DIR": cache})
        log(f"k={k}: {out[k]}")
    return out


def make_batch(tmp: Path, n: int) -> Path:
    import numpy as np

    rng = np.random.default_rng(0)
    rows = ["name,spec,data,seed"]
    for i in range(n):
        sei = rng.uniform(0.1, 0.5, 8)
        yi = rng.normal(0.3, 0.2, 8) + rng.normal(0, sei)
        lines = ["study,yi,sei,measure"] + [f"S{j},{yi[j]:.5f},{sei[j]:.5f},SMD" for j in range(8)]
        (tmp / f"d{i:03d}.csv").write_text("\n".join(lines) + "\n")
        rows.append(f"fit{i:03d},spec.toml,d{i:03d}.csv,{i}")
    (tmp / "spec.toml").write_text(
        'name = "nn"\n[data]\nfiles = ["d000.csv"]\n[model]\nfamily = "normal-normal"\n'
        '[priors]\nmu = "Normal(0, 2)"\ntau = "HalfNormal(0.5)"\n'
        '[sampler]\nmethod = "mcmc"\ndraws = 500\ntune = 500\nchains = 2\n'
    )
    (tmp / "fits.csv").write_text("\n".join(rows) + "\n")
    return tmp / "fits.csv"


def batch(n: int) -> dict:
    import pandas as pd

    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        manifest = make_batch(tmp, n)
        loop = process(
            [
                CLI,
                "batch",
                str(manifest),
                "--out",
                str(tmp / "loop"),
                "--scheduler",
                "none",
                "--quiet",
            ]
        )
        log(f"batch loop: {loop}")
        dask = process([CLI, "batch", str(manifest), "--out", str(tmp / "dask"), "--quiet"])
        log(f"batch dask: {dask}")
        # kill a batch half-way, then resume it
        argv = [CLI, "batch", str(manifest), "--out", str(tmp / "killed"), "--quiet"]
        proc = subprocess.Popen(argv, start_new_session=True, stderr=subprocess.DEVNULL)
        fits = tmp / "killed" / "fits"
        while proc.poll() is None:
            done = (
                len([p for p in fits.glob("fit*") if (p / "manifest.json").exists()])
                if fits.exists()
                else 0
            )
            if done >= n // 2:
                os.killpg(proc.pid, signal.SIGKILL)
                break
            time.sleep(0.2)
        proc.wait()
        time.sleep(1)
        before = len([p for p in fits.glob("fit*") if (p / "manifest.json").exists()])
        resumed = process(argv)
        log(f"batch resumed after kill at {before}/{n}: {resumed}")
        tables = {k: pd.read_csv(tmp / k / "batch.csv") for k in ("loop", "dask", "killed")}
        same_dask = tables["loop"].equals(tables["dask"])
        same_resumed = tables["loop"].equals(tables["killed"])
        return {
            "loop": loop,
            "dask": dask,
            "killed_after": before,
            "resumed": resumed,
            "dask_equals_loop": same_dask,
            "resumed_equals_loop": same_resumed,
            "fits_done": int((tables["killed"].drop_duplicates("name")["status"] == "done").sum()),
        }


# ---- the table -----------------------------------------------------------------------


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="k up to 500, a batch of 40")
    ap.add_argument("--json", type=Path, help="also write the raw numbers here")
    args = ap.parse_args()
    started = time.perf_counter()
    res: dict = {}
    log("processes: --help, fit exact, fit MCMC, the main job")
    spec = str(ROOT / "models" / "eight_schools.toml")
    with tempfile.TemporaryDirectory() as tmp:
        res["help"] = process([CLI, "--help"])
        res["fit_exact"] = process(
            [CLI, "fit", spec, "--method", "exact", "--out", f"{tmp}/a", "--quiet"]
        )
        res["fit_mcmc"] = process([CLI, "fit", spec, "--out", f"{tmp}/b", "--quiet"])
        res["fit_oud"] = process([CLI, "fit", "oud_abstinence", "--out", f"{tmp}/c", "--quiet"])
    log("samplers")
    res["samplers"] = {m: samplers(m) for m in ("eight_schools", "oud")}
    log("exact vs MCMC, compile cache")
    res["exact_vs_mcmc"] = exact_vs_mcmc()
    res["compile"] = compile_cache()
    log("scaling")
    ks = [5, 50, 500] if args.quick else [5, 50, 500, 5000]
    res["scaling"] = scaling(ks)
    log("batch")
    res["batch"] = batch(40 if args.quick else 200)
    res["seconds"] = time.perf_counter() - started
    res["machine"] = {
        "platform": platform.platform(),
        "cpus": len(os.sched_getaffinity(0)),
        "python": platform.python_version(),
        "memory_gb": round(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30, 1),
    }
    print_table(res)
    if args.json:
        args.json.write_text(json.dumps(res, indent=2, default=str))


def print_table(r: dict) -> None:
    rows = []  # (measurement, value, unit, ratio, baseline, peak MB)

    def add(name, value, unit, base=None, base_name="-", peak=None):
        ratio = f"{value / base:.3g}" if base else "-"
        rows.append((name, f"{value:.3g}", unit, ratio, base_name, f"{peak:.0f}" if peak else "-"))

    h = r["help"]["seconds"]
    add("process: bayeskit --help", h, "s", peak=r["help"]["peak_mb"])
    for key, label in (
        ("fit_exact", "fit eight schools --method exact"),
        ("fit_mcmc", "fit eight schools (MCMC)"),
        ("fit_oud", "fit oud_abstinence (main job)"),
    ):
        add(f"process: {label}", r[key]["seconds"], "s", h, "--help", r[key]["peak_mb"])
    add(
        "process: fit exact / fit MCMC",
        r["fit_exact"]["seconds"],
        "s",
        r["fit_mcmc"]["seconds"],
        "fit MCMC",
    )
    for m, s in r["samplers"].items():
        add(f"{m}: PyMC NUTS first call (compile + 5 draws)", s["pymc"]["compile"], "s")
        add(f"{m}: nutpie compile", s["nutpie"]["compile"], "s", s["pymc"]["compile"], "PyMC first")
        add(
            f"{m}: PyMC NUTS sampling 4x(1000+1000)",
            s["pymc"]["seconds"],
            "s",
            peak=s["pymc"]["peak_mb"],
        )
        add(
            f"{m}: nutpie sampling 4x(1000+1000)",
            s["nutpie"]["seconds"],
            "s",
            s["pymc"]["seconds"],
            "PyMC NUTS",
            s["nutpie"]["peak_mb"],
        )
        add(f"{m}: PyMC NUTS min bulk ESS/s", s["pymc"]["ess_per_s"], "1/s")
        add(
            f"{m}: nutpie min bulk ESS/s",
            s["nutpie"]["ess_per_s"],
            "1/s",
            s["pymc"]["ess_per_s"],
            "PyMC NUTS",
        )
    e = r["exact_vs_mcmc"]
    add("bk.fit eight schools MCMC, first in process", e["mcmc_first"], "s", peak=e["peak_mb"])
    add(
        "bk.fit eight schools MCMC, compiled model reused",
        e["mcmc_cached"],
        "s",
        e["mcmc_first"],
        "first",
    )
    add("bk.fit eight schools exact", e["exact"], "s", e["mcmc_first"], "MCMC first")
    c = r["compile"]
    add("compile, empty disk caches (cold)", c["cold"]["compile"], "s")
    add(
        "compile, disk caches warm (PyTensor + bayeskit)",
        c["warm"]["compile"],
        "s",
        c["cold"]["compile"],
        "cold",
    )
    add("bk.fit, new process + empty disk caches", c["cold"]["fit"], "s", peak=c["cold"]["peak_mb"])
    add("bk.fit, new process + warm disk caches", c["warm"]["fit"], "s", c["cold"]["fit"], "cold")
    add(
        "bk.fit, same structure again in process",
        c["warm"]["reused_fit"],
        "s",
        c["cold"]["fit"],
        "cold",
    )
    base = r["scaling"][min(r["scaling"])]
    for k, s in r["scaling"].items():
        add(
            f"normal-normal k={k}: exact",
            s["exact"],
            "s",
            base["exact"],
            f"k={min(r['scaling'])}",
            s["exact_peak_mb"],
        )
        add(
            f"normal-normal k={k}: MCMC (cold compile + 2x1000)",
            s["mcmc"],
            "s",
            base["mcmc"],
            f"k={min(r['scaling'])}",
            s["peak_mb"],
        )
    b = r["batch"]
    n = b["fits_done"]
    add(f"batch of {n} fits: plain loop", b["loop"]["seconds"], "s", peak=b["loop"]["peak_mb"])
    add(
        f"batch of {n} fits: Dask LocalCluster",
        b["dask"]["seconds"],
        "s",
        b["loop"]["seconds"],
        "loop",
        b["dask"]["peak_mb"],
    )
    add(
        f"batch resumed after kill at {b['killed_after']}/{n}",
        b["resumed"]["seconds"],
        "s",
        b["dask"]["seconds"],
        "Dask",
        b["resumed"]["peak_mb"],
    )
    m = r["machine"]
    print(
        f"bayeskit scale benchmark, {time.strftime('%Y-%m-%d')}; machine: {m['platform']}, {m['cpus']} CPUs, {m['memory_gb']} GB, Python {m['python']}"
    )
    widths = [
        max(
            len(str(x[i]))
            for x in rows + [("measurement", "value", "unit", "ratio", "baseline", "peak MB")]
        )
        for i in range(6)
    ]
    header = ("measurement", "value", "unit", "ratio", "baseline", "peak MB")
    for row in [header, tuple("-" * w for w in widths), *rows]:
        print(
            "  ".join(
                str(x).ljust(w) if i in (0, 2, 4) else str(x).rjust(w)
                for i, (x, w) in enumerate(zip(row, widths, strict=True))
            )
        )
    print(
        f"Dask batch == loop: {b['dask_equals_loop']}; resumed batch == loop: {b['resumed_equals_loop']}"
    )
    print(
        f"ratio = value / baseline value, same run. Peak MB: largest process (Dask workers included). Whole benchmark: {r['seconds']:.0f} s"
    )


if __name__ == "__main__":
    main()
