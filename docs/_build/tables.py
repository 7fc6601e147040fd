"""Tables the site computes from bayeskit when it is built."""

from __future__ import annotations

TAU = "\u03c4"


def heterogeneity_prior_table() -> str:
    """Every named heterogeneity prior: its text, median, 95% range and P(tau > 1)."""
    from bayeskit.priors import heterogeneity_prior, list_heterogeneity_priors

    table = list_heterogeneity_priors()
    lines = [
        f"| name | prior | median {TAU} | 95% range of {TAU} | P({TAU} > 1) |",
        "| --- | --- | ---: | ---: | ---: |",
    ]
    for name in table.index:
        prior = heterogeneity_prior(name)
        lo, hi = (float(v) for v in prior.ppf([0.025, 0.975]))
        above = 1 - float(prior.cdf(1.0))
        lines.append(
            f"| `{name}` | `{table.loc[name, 'prior']}` | {table.loc[name, 'median_tau']:.2f} "
            f"| {lo:.2f} to {hi:.2f} | {above:.0%} |"
        )
    return "\n".join(lines) + "\n"
