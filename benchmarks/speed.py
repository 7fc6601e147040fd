"""Where users wait: the acceptance rows of the speed work, as ratios measured in one run.

Run from the repository root::

    .venv/bin/python benchmarks/speed.py                   # about 10 minutes on 2 cores
    .venv/bin/python benchmarks/speed.py --quick           # about 4 minutes
    .venv/bin/python benchmarks/speed.py --baseline-python /path/to/old/.venv/bin/python

Every timing runs in a fresh process and is printed next to the baseline it is judged
against, measured in the same run, as a ratio, with the target beside it. Nothing is
asserted: a shared machine's load moves every second, not the ratios (much). Rows:

* ``fit --method exact --json`` and ``--out`` (report included) on eight schools, against
  ``bayeskit --help`` (targets: 4x and 10x), each with its floor (importing only the
  libraries the path needs); against ``Rscript`` with bayesmeta on k = 3 when R and
  bayesmeta are installed (target: 5x faster), else the row is skipped;
* an exact fit and summary of 20,000 synthetic studies (time and peak memory), and
  1,000 exact SBC replicates (each the median of three processes), against the code
  before this work: ``--baseline-python`` names an interpreter with that code
  installed; it runs ``--baseline-k`` studies (20000: the full size, about 80 s and 6
  GB; by default 2,000, or 1,000 with ``--quick``, extrapolated linearly) and 200
  replicates (x5);
* the main job (``fit models/oud_abstinence.toml --out``) with a warm compile cache,
  against ``python -c "import pymc, arviz, matplotlib.pyplot"`` (target: 2x), with a
  breakdown of where its time goes (``--profile``);
* ``sensitivity models/oud_abstinence.toml`` with the default scheduler against
  ``--scheduler none`` (target: no slower on 2 cores) and ``--scheduler local``;
* the crossover of a plain loop and a LocalCluster for CPU-bound tasks of 0.25 s.
"""

from __future__ import annotations

import argparse
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PY = sys.executable
BK = [str(Path(PY).parent / "bayeskit")] if (Path(PY).parent / "bayeskit").exists() else [
    PY, "-m", "bayeskit"
]  # fmt: skip


def log(msg: str) -> None:
    print(f"[speed] {msg}", file=sys.stderr, flush=True)


def run(
    cmd: list[str], *, env: dict | None = None, check: bool = True, cwd: Path = ROOT
) -> tuple[float, float, str]:
    """Run ``cmd``; return (wall seconds, the peak MB it printed, if any, and stdout)."""
    start = time.perf_counter()
    proc = subprocess.Popen(
        cmd, cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        env={**os.environ, **(env or {})},
    )  # fmt: skip
    out, err = proc.communicate()
    wall = time.perf_counter() - start
    if check and proc.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed ({proc.returncode}):\n{err[-2000:]}")
    return wall, _peak_mb(out), out


def _peak_mb(out: str) -> float:
    for line in out.splitlines()[::-1]:
        if line.startswith("PEAK_MB "):
            return float(line.split()[1])
    return float("nan")


def median_time(cmd: list[str], repeats: int) -> float:
    return statistics.median(run(cmd)[0] for _ in range(repeats))


def py_snippet(python: str, body: str) -> tuple[float, float, str]:
    """Run ``body`` under ``python``; the snippet prints its own timing as SECONDS x.

    It runs in an empty folder, so that ``python -c`` imports the bayeskit installed for
    ``python`` (the baseline's), not the one in the current folder.
    """
    code = textwrap.dedent(body) + textwrap.dedent("""
        import resource, bayeskit
        print("PEAK_MB", resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)
        print("BAYESKIT", bayeskit.__file__)
    """)
    with tempfile.TemporaryDirectory() as empty:
        _, peak, out = run([python, "-c", code], env={"PYTHONWARNINGS": "ignore"}, cwd=Path(empty))
    log("  ran " + next(line for line in out.splitlines() if line.startswith("BAYESKIT")))
    seconds = next(
        float(line.split()[1]) for line in out.splitlines() if line.startswith("SECONDS")
    )
    return seconds, peak, out


BIG_FIT = """
import time
import numpy as np, pandas as pd
k = {k}
rng = np.random.default_rng(1)
sei = rng.uniform(0.1, 0.5, k)
yi = rng.normal(0.3 + rng.normal(0, 0.2, k), sei)
df = pd.DataFrame({{"study": [f"S{{i}}" for i in range(k)], "yi": yi, "sei": sei}})
import bayeskit as bk
start = time.perf_counter()
fit = bk.fit(df, method="exact", priors={{"mu": "Normal(0, 10)", "tau": "HalfNormal(1)"}}, seed=1)
table = fit.summary()
print("SECONDS", time.perf_counter() - start)
print("MU", table.loc["mu", "mean"], "ROWS", len(table))
"""

SBC = """
import time
from bayeskit.calibration import sbc_normal_normal
from bayeskit.priors import parse_prior
priors = {{"mu": parse_prior("Normal(0, 1)"), "tau": parse_prior("HalfNormal(0.5)")}}
sbc_normal_normal(priors=priors, studies=8, replicates=2, draws=199, seed=0)  # imports
start = time.perf_counter()
ranks = sbc_normal_normal(priors=priors, studies=8, replicates={n}, draws=199, seed=0)
print("SECONDS", time.perf_counter() - start)
"""

BAYESMETA = """
suppressMessages(library(bayesmeta))
y <- c(28, 8, -3); s <- c(15, 10, 16)
fit <- bayesmeta(y = y, sigma = s, mu.prior.mean = 0, mu.prior.sd = 5,
                 tau.prior = function(t) dhalfcauchy(t, scale = 5))
print(fit$summary["median", "mu"])
"""


#: what ``fit --method exact --json`` cannot do without: the CLI (Typer), the spec
#: (pydantic), the evidence table and its validation (pandas, pandera) and the exact
#: engine's normal CDF and quantiles (scipy.special)
JSON_FLOOR = "typer, pydantic, pandas, pandera.pandas, scipy.special"
#: and what ``--out`` adds: the DataTree and its NetCDF file, LOO and the figures
OUT_FLOOR = "xarray, h5netcdf, arviz_stats, matplotlib.pyplot"


def rows_cli(repeats: int, tmp: Path) -> list[tuple]:
    log("bayeskit --help, fit --method exact --json / --out")
    help_s = median_time([*BK, "--help"], repeats)
    spec = "models/eight_schools.toml"
    json_s = median_time([*BK, "fit", spec, "--method", "exact", "--json"], repeats)
    out_cmd = [*BK, "fit", spec, "--method", "exact", "--out", str(tmp / "es"), "--force"]
    out_s = median_time(out_cmd, repeats)
    # the floor of each path: importing only the libraries it cannot do without (the
    # validated table, the exact engine's special functions and the CLI; plus the
    # DataTree, its NetCDF file, LOO and the figures for --out), in a bare process
    json_floor = median_time([PY, "-c", f"import {JSON_FLOOR}"], repeats)
    out_floor = median_time([PY, "-c", f"import {JSON_FLOOR}, {OUT_FLOOR}"], repeats)
    rows = [
        ("bayeskit --help", help_s, "s", None, "-", "-"),
        ("fit eight schools --method exact --json", json_s, "s", json_s / help_s, "--help", "<= 4"),
        ("  floor: import what --json needs", json_floor, "s", json_floor / help_s, "--help", "-"),
        ("fit eight schools --method exact --out (report)", out_s, "s", out_s / help_s, "--help", "<= 10"),
        ("  floor: import what --out needs", out_floor, "s", out_floor / help_s, "--help", "-"),
    ]  # fmt: skip
    has_r = (
        shutil.which("Rscript")
        and subprocess.run(["Rscript", "-e", "library(bayesmeta)"], capture_output=True).returncode
        == 0
    )
    if has_r:
        three = tmp / "three.csv"
        three.write_text("study,yi,sei\nA,28,15\nB,8,10\nC,-3,16\n")
        r_s = median_time(["Rscript", "-e", BAYESMETA], repeats)
        ours = median_time(
            [*BK, "fit", "--data", str(three), "--method", "exact", "--json",
             "--prior", "mu=Normal(0, 5)", "--prior", "tau=HalfCauchy(5)"], repeats
        )  # fmt: skip
        rows.append(("Rscript bayesmeta, k=3", r_s, "s", None, "-", "-"))
        rows.append(("fit k=3 --json", ours, "s", ours / r_s, "Rscript", "<= 0.2"))
        return rows
    rows.append(
        (
            "fit k=3 vs Rscript bayesmeta",
            float("nan"),
            "s",
            None,
            "skipped: no R/bayesmeta",
            "<= 0.2",
        )
    )
    return rows


def rows_engine(baseline: str | None, quick: bool, baseline_k: int | None = None) -> list[tuple]:
    rows = []
    log("exact fit of 20,000 studies (median of 3 processes)")
    runs = [py_snippet(PY, BIG_FIT.format(k=20000)) for _ in range(3)]
    new_s, new_mb = statistics.median(r[0] for r in runs), max(r[1] for r in runs)
    rows.append(("exact fit + summary, k=20,000", new_s, "s", None, "-", "-", new_mb))
    log("1,000 exact SBC replicates (median of 3 processes)")
    runs = [py_snippet(PY, SBC.format(n=1000)) for _ in range(3)]
    sbc_s, sbc_mb = statistics.median(r[0] for r in runs), max(r[1] for r in runs)
    if baseline:
        k_old = baseline_k or (1000 if quick else 2000)
        log(f"old code: exact fit of {k_old} studies")
        old_s, old_mb, _ = py_snippet(baseline, BIG_FIT.format(k=k_old))
        old_20k = old_s * 20000 / k_old
        how = "old, measured" if k_old == 20000 else "old, extrapolated"
        name = "old code, k=20,000" if k_old == 20000 else (
            f"old code, k={k_old} (x{20000 // k_old} = k=20,000)"
        )  # fmt: skip
        rows.append((name, old_20k, "s", None, "-", "-", old_mb))
        rows.append(("k=20,000: old / new", old_20k / new_s, "x", None, how, ">= 30"))
        log("old code: 200 exact SBC replicates")
        old_sbc, _, _ = py_snippet(baseline, SBC.format(n=200))
        rows.append(("1,000 exact SBC replicates", sbc_s, "s", None, "-", "-", sbc_mb))
        rows.append(("old code, 200 replicates (x5)", old_sbc * 5, "s", None, "-", "-"))
        rows.append(
            ("SBC 1,000: old / new", old_sbc * 5 / sbc_s, "x", None, "old, extrapolated", ">= 10")
        )
    else:
        rows.append(
            ("1,000 exact SBC replicates", sbc_s, "s", None, "no --baseline-python", "-", sbc_mb)
        )
    rows.append(("k=20,000 peak memory", new_mb, "MB", None, "-", "< 1024"))
    return rows


def rows_main_job(repeats: int, tmp: Path) -> list[tuple]:
    log("main job (a first run warms the compile cache)")
    cmd = [*BK, "fit", "models/oud_abstinence.toml", "--out", str(tmp / "oud"), "--force"]
    run(cmd)
    job = median_time(cmd, repeats)
    lean = median_time([*cmd, "--no-robustness"], repeats)
    stack = median_time([PY, "-c", "import pymc, arviz, matplotlib.pyplot"], repeats)
    return [
        ("python -c 'import pymc, arviz, matplotlib.pyplot'", stack, "s", None, "-", "-"),
        ("main job, warm cache (fit oud_abstinence --out)", job, "s", job / stack, "imports", "<= 2"),
        ("  the same, --no-robustness (11 refits fewer)", lean, "s", lean / stack, "imports", "-"),
    ]  # fmt: skip


def rows_sensitivity(tmp: Path, quick: bool) -> list[tuple]:
    base = [*BK, "sensitivity", "models/oud_abstinence.toml", "--quiet", "--force"]
    log("sensitivity, a first run to warm the compile cache (not timed)")
    run([*base, "--out", str(tmp / "s-warm"), "--scheduler", "none"])
    log("sensitivity, --scheduler none")
    none_s = run([*base, "--out", str(tmp / "s-none"), "--scheduler", "none"])[0]
    log("sensitivity, default scheduler")
    auto_s = run([*base, "--out", str(tmp / "s-auto")])[0]
    import json

    chosen = json.loads((tmp / "s-auto" / "manifest.json").read_text()).get("scheduler", "?")
    rows = [
        ("sensitivity OUD --scheduler none", none_s, "s", None, "-", "-"),
        (f"sensitivity OUD default (auto: {chosen})", auto_s, "s", auto_s / none_s, "none", "<= 1"),
    ]
    if not quick:
        log("sensitivity, --scheduler local")
        local_s = run([*base, "--out", str(tmp / "s-local"), "--scheduler", "local"])[0]
        rows.append(
            ("sensitivity OUD --scheduler local", local_s, "s", local_s / none_s, "none", "-")
        )
    return rows


CROSSOVER = """
import time
from bayeskit.parallel import run_tasks


def busy(seconds):
    # CPU-bound; defined in __main__, so Dask sends it to the workers by value
    end, x = time.process_time() + seconds, 0.0
    while time.process_time() < end:
        x += 1.0
    return x


start = time.perf_counter()
list(run_tasks(busy, [(0.25,)] * {n}, scheduler="{scheduler}", progress=False))
print("SECONDS", time.perf_counter() - start)
"""


def rows_crossover(quick: bool) -> list[tuple]:
    rows = []
    for n in (4, 16) if quick else (4, 16, 64):
        log(f"crossover: {n} tasks of 0.25 s")
        loop = py_snippet(PY, CROSSOVER.format(n=n, scheduler="none"))[0]
        cluster = py_snippet(PY, CROSSOVER.format(n=n, scheduler="local"))[0]
        rows.append((f"{n} tasks x 0.25 s: loop", loop, "s", None, "-", "-"))
        rows.append(
            (f"{n} tasks x 0.25 s: LocalCluster", cluster, "s", cluster / loop, "loop", "-")
        )
    return rows


def print_table(rows: list[tuple]) -> None:
    head = ("measurement", "value", "unit", "ratio", "baseline", "target", "peak MB")
    lines = []
    for r in rows:
        name, value, unit, ratio, base, target = r[:6]
        peak = r[6] if len(r) > 6 else None
        lines.append((
            name, f"{value:.3g}", unit, "-" if ratio is None else f"{ratio:.3g}", base, target,
            "-" if peak is None else f"{peak:.0f}",
        ))  # fmt: skip
    widths = [max(len(str(x)) for x in col) for col in zip(head, *lines, strict=True)]
    fmt = "  ".join(f"{{:<{w}}}" if i in (0, 4, 5) else f"{{:>{w}}}" for i, w in enumerate(widths))
    print(fmt.format(*head))
    print(fmt.format(*("-" * w for w in widths)))
    for line in lines:
        print(fmt.format(*line))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer repeats and rows")
    parser.add_argument("--baseline-python", help="an interpreter with the old code installed")
    parser.add_argument(
        "--baseline-k",
        type=int,
        help="studies for the old code's fit (default 2,000, then x10; 20000 measures it "
        "at full size: about 90 s and 6 GB)",
    )
    parser.add_argument(
        "--skip",
        nargs="*",
        default=[],
        choices=["cli", "engine", "main", "sensitivity", "crossover"],
    )
    args = parser.parse_args()
    repeats = 3 if args.quick else 5
    load = os.getloadavg() if hasattr(os, "getloadavg") else None
    print(
        f"bayeskit speed benchmark, {time.strftime('%Y-%m-%d %H:%M')}; {platform.platform()}, "
        f"{os.cpu_count()} CPUs, Python {platform.python_version()}, load {load}"
    )
    rows = []
    with tempfile.TemporaryDirectory() as folder:
        tmp = Path(folder)
        steps = {
            "cli": lambda: rows_cli(repeats, tmp),
            "engine": lambda: rows_engine(args.baseline_python, args.quick, args.baseline_k),
            "main": lambda: rows_main_job(2 if args.quick else 3, tmp),
            "sensitivity": lambda: rows_sensitivity(tmp, args.quick),
            "crossover": lambda: rows_crossover(args.quick),
        }
        for name, step in steps.items():
            if name not in args.skip:
                rows += step()
    print_table(rows)


if __name__ == "__main__":
    sys.path.insert(0, str(ROOT))
    main()
