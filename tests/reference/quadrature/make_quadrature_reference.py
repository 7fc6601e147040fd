"""Brute-force posterior summaries of the normal-normal model by nested quadrature.

Independent of bayeskit's exact engine (which integrates mu analytically and tau on a
grid): here both mu and tau are integrated with scipy's adaptive quadrature. Run from
the repository root to regenerate reference.json (takes about four minutes):

    .venv/bin/python tests/reference/quadrature/make_quadrature_reference.py
"""

import json
import warnings
from pathlib import Path

import numpy as np
from scipy import integrate, stats

Y8 = [28, 8, -3, 7, -1, 1, 18, 12.0]
S8 = [15, 10, 16, 11, 9, 11, 10, 18.0]
CASES = {
    "eight_schools_normal5_halfcauchy5": (stats.norm(0, 5), stats.halfcauchy(scale=5)),
    "eight_schools_normal100_halfnormal5": (stats.norm(0, 100), stats.halfnorm(scale=5)),
}


def brute_force(y, s, mu_prior, tau_prior):
    """Posterior moments and median of mu and tau by nested 1-D adaptive quadrature."""

    def joint(mu, tau):
        return (
            mu_prior.pdf(mu)
            * tau_prior.pdf(tau)
            * np.prod(stats.norm.pdf(y, mu, np.sqrt(s**2 + tau**2)))
        )

    def quad(f, a, b):
        return integrate.quad(f, a, b, epsabs=0, epsrel=1e-10, limit=200)[0]

    def over_mu(g, tau):  # the posterior of mu given tau lies well inside (-150, 150)
        return quad(lambda mu: g(mu) * joint(mu, tau), -150, 150)

    def over_tau(h, upper=np.inf):
        cut = min(10.0, upper)
        return quad(h, 0, cut) + (quad(h, cut, upper) if upper > cut else 0.0)

    z = over_tau(lambda t: over_mu(lambda mu: 1.0, t))
    out = {}
    for name, g in (("mu_mean", lambda mu: mu), ("mu_m2", lambda mu: mu**2)):
        out[name] = over_tau(lambda t, g=g: over_mu(g, t)) / z
    out["mu_sd"] = np.sqrt(out.pop("mu_m2") - out["mu_mean"] ** 2)
    marginal = np.vectorize(lambda t: over_mu(lambda mu: 1.0, t) / z)
    out["tau_mean"] = over_tau(lambda t: t * marginal(t))
    out["tau_sd"] = np.sqrt(over_tau(lambda t: t**2 * marginal(t)) - out["tau_mean"] ** 2)

    from scipy.optimize import brentq

    out["tau_median"] = brentq(lambda t: quad(marginal, 0, t) - 0.5, 1e-3, 50, xtol=1e-10)
    return out


def main() -> None:
    out = {
        "description": __doc__.splitlines()[0],
        "data": {"y": Y8, "sigma": S8},
        "scipy": __import__("scipy").__version__,
        "cases": {},
    }
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", integrate.IntegrationWarning)
        for name, (mu_prior, tau_prior) in CASES.items():
            out["cases"][name] = brute_force(np.array(Y8), np.array(S8), mu_prior, tau_prior)
    path = Path(__file__).with_name("reference.json")
    path.write_text(json.dumps(out, indent=2) + "\n")


if __name__ == "__main__":
    main()
