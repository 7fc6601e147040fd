"""Same data, spec and seed under every compile path: print a hash of each fit's draws.

Not a test (tests/test_compiled.py holds the cheap one): eight schools, the BCG
meta-regression and the normal-arm Normand data, each fitted with seed 1 in fresh
processes with empty caches (``cold``), the caches those left (``warm``), the disk cache
off (``off``, nutpie's own compiler), and after fitting other data of the same structures
in the same process (``reuse``, ``reuse-off``). Every column of hashes should be one
value::

    .venv/bin/python benchmarks/seeds.py
"""

import hashlib
import os
import subprocess
import sys
import tempfile
import warnings
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
MODES = {
    "cold": ({}, False),
    "warm": ({}, False),
    "off": ({"BAYESKIT_DISK_CACHE": "0"}, False),
    "reuse": ({}, True),
    "reuse-off": ({"BAYESKIT_DISK_CACHE": "0"}, True),
}


def fits(shift):
    import numpy as np

    import bayeskit as bk
    from tests.models.conftest import jags_case, study_table
    from tests.models.test_normal_arm import NORMAND, arm_table
    from tests.models.test_normal_arm import PRIORS as ARM_PRIORS

    fast = {"method": "mcmc", "seed": 1, "draws": 200, "tune": 200, "chains": 2}
    schools = bk.load_evidence(bk.data_path("eight_schools.csv"))
    yield "schools", lambda: bk.fit(schools.assign(yi=schools["yi"] + shift), **fast)
    d = jags_case("bcg_nn_meta_regression")["data"]
    reg = study_table(d["labels"], np.asarray(d["yi"]) + shift, d["vi"], ablat=d["ablat"])
    priors = {"mu": "Normal(0, 10)", "beta": "Normal(0, 1)", "tau": "HalfNormal(0.5)"}
    yield "reg", lambda: bk.fit(reg, priors=priors, covariates=["ablat"], **fast)
    arms = arm_table(NORMAND["data"])
    arms = arms.assign(mean=arms["mean"] + shift)
    yield "arm", lambda: bk.fit(arms, "normal-arm", priors=ARM_PRIORS, **fast)


def child(reuse: bool) -> None:
    warnings.simplefilter("ignore")
    if reuse:
        for _, run in fits(3.0):
            run()
    for name, run in fits(0.0):
        post = run().idata.posterior
        h = hashlib.sha256()
        for var in sorted(post.data_vars):
            h.update(post[var].values.tobytes())
        tau = float(post["tau"].mean())
        print(f"{name} {h.hexdigest()[:12]} tau={tau:.6f}", flush=True)


def main() -> None:
    tmp = Path(tempfile.mkdtemp(prefix="bk-seeds-"))
    base = os.environ | {
        "BAYESKIT_CACHE_DIR": str(tmp / "bk"),
        "PYTENSOR_FLAGS": f"base_compiledir={tmp / 'pytensor'}",
        "PYTHONPATH": str(ROOT),
    }
    for mode, (env, reuse) in MODES.items():
        args = [sys.executable, __file__, "--child"] + (["--reuse"] if reuse else [])
        out = subprocess.run(args, env=base | env, capture_output=True, text=True, check=True)
        print(f"== {mode}\n{out.stdout}", end="", flush=True)


if __name__ == "__main__":
    if "--child" in sys.argv:
        child("--reuse" in sys.argv)
    else:
        main()
