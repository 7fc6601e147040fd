"""MCMC against the exact engine: the worst deviation in posterior SDs, and the refits.

For each data set (k from 2 to 40 studies) and seed, fits the normal-normal model by
MCMC (``method="mcmc"``, automatic refits on) and prints the largest difference of the
posterior mean and the 2.5% and 97.5% points of ``mu``, ``tau`` and ``theta_new`` from
the exact posterior, in exact posterior SDs (the ``exact_agreement`` check), the worst
verdict and the number of automatic refits. Run from the repository root::

    .venv/bin/python benchmarks/mcmc_vs_exact.py [--seeds N] [--draws N]
"""

from __future__ import annotations

import argparse

import numpy as np
import pandas as pd

import bayeskit as bk
from bayeskit.sampling import quiet_pymc
from tests.models.conftest import jags_case, study_table

PRIORS = {"mu": "Normal(0, 4)", "tau": "HalfNormal(0.5)"}


def data_sets() -> dict[str, pd.DataFrame]:
    """The first 2, 3 and 5 BCG trials, all 13, and simulated sets of 20 and 40 studies."""
    bcg = jags_case("bcg_nn")["data"]
    sets = {
        f"bcg{k}": study_table(bcg["labels"][:k], bcg["yi"][:k], bcg["vi"][:k])
        for k in (2, 3, 5, 13)
    }
    rng = np.random.default_rng(14)
    for k in (20, 40):
        sei = rng.uniform(0.1, 0.6, k)
        yi = rng.normal(-0.4, 0.3, k) + rng.normal(0, sei)
        sets[f"sim{k}"] = study_table([f"S{i}" for i in range(k)], yi, sei=sei)
    return sets


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--draws", type=int, default=1000)
    args = parser.parse_args()
    quiet_pymc()
    rows = []
    for name, table in data_sets().items():
        for seed in range(1, args.seeds + 1):
            f = bk.fit(table, priors=PRIORS, method="mcmc", seed=seed, draws=args.draws)
            check = next(c for c in f.checks if c.name == "exact_agreement")
            rows.append({"data": name, "k": len(table), "seed": seed,
                         "worst_sd": check.value, "verdict": f.verdict,
                         "refits": len(f.settings["attempts"]) - 1})  # fmt: skip
    table = pd.DataFrame(rows)
    per_set = table.groupby(["data", "k"], sort=False).agg(
        worst_sd=("worst_sd", "max"),
        refits=("refits", "sum"),
        fails=("verdict", lambda v: int((v == "fail").sum())),
    )
    print(per_set.to_string(float_format="%.3f"))
    print(f"worst deviation over all: {table['worst_sd'].max():.3f} posterior SD")


if __name__ == "__main__":
    main()
