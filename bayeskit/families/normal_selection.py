"""``normal-selection``: random effects with a step-function selection model.

The model of Vevea & Hedges (1995, Psychometrika 60:419) in its Bayesian form (Maier,
Bartoš & Wagenmakers 2023, Psychol Methods 28:107, the selection models of RoBMA). Each
study's true effect is ``theta_i ~ Normal(mu, tau)`` and its estimate
``y_i ~ Normal(theta_i, se_i)``, but a study is published with a probability that
depends on the one-sided p-value of its estimate, ``p_i = 1 - Phi(y_i / se_i)`` (for
``alternative="greater"``): a step function, ``omega_j`` in the j-th interval of p
between the cutpoints ``steps``, with ``omega_1 = 1`` for the most significant one. The
published estimates then have the weighted density

    f(y_i) = omega_j(y_i) Normal(y_i | mu, sqrt(tau^2 + se_i^2)) / A_i,
    A_i = sum_j omega_j P(p_i in interval j | mu, tau, se_i),

and ``mu`` is the mean effect corrected for the selection. The weights have RoBMA's
cumulative Dirichlet prior (Bartoš et al. 2023, Res Synth Methods 14:99, sec. 2.2):
increments ``delta ~ Dirichlet(1, ..., 1)`` over the intervals and ``omega_j =
delta_j + ... + delta_J``, so the weights fall (weakly) as p grows and lie in (0, 1];
with one cutpoint ``omega_2 ~ Uniform(0, 1)``. metafor's ``selmodel`` (maximum
likelihood) leaves the weights free and unordered.

The study effects ``theta_i`` are integrated out of the likelihood (the selection acts
on ``y_i``, not on ``theta_i``) and drawn afterwards from their conditional posterior,
``theta_i | y_i, mu, tau``: the selection weight depends on ``y_i`` alone, so it is the
normal-normal one.

The default cutpoint is one, at p = 0.025: a study significant at the two-sided 5% level
in the expected direction, or not (the three-parameter selection model, 3PSM). One
free weight is what 10 to 40 studies can inform (McShane, Böckenholt & Hansen 2016,
Perspect Psychol Sci 11:730; Carter et al. 2019, Adv Methods Pract Psychol Sci 2:115);
every further cutpoint adds a weight that only the studies in its interval inform.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar, Literal, override

import numpy as np
from pydantic import Field, field_validator
from scipy import special

from bayeskit.errors import UserError
from bayeskit.families._base import Family, Options, PriorSlot, SBCDesign
from bayeskit.families._random_effects import BETA, MU, TAU, evidence_table
from bayeskit.families.data import StudyData, study_data

DEFAULT_STEPS = (0.025,)
#: most cutpoints: each adds a weight that only the studies in its interval inform
MAX_STEPS = 5


class NormalSelectionOptions(Options):
    """Options of ``normal-selection``.

    ``steps``: the one-sided p-value cutpoints, increasing, strictly inside (0, 1) (the
    last interval ends at 1); ``alternative``: which direction is significant
    (``greater``: large positive effects, as metafor's ``selmodel`` default; ``less``:
    large negative ones); ``measure``: the effect measure computed from arm-level data.

    Examples
    --------
    >>> NormalSelectionOptions().steps
    [0.025]
    >>> NormalSelectionOptions(steps=[0.05, 0.025])
    Traceback (most recent call last):
    ...
    pydantic_core._pydantic_core.ValidationError: 1 validation error for ...
    """

    steps: list[float] = Field(default_factory=lambda: list(DEFAULT_STEPS))
    alternative: Literal["greater", "less"] = "greater"
    measure: str | None = None

    @field_validator("steps")
    @classmethod
    def _cutpoints(cls, value: list[float]) -> list[float]:
        if not 1 <= len(value) <= MAX_STEPS:
            raise ValueError(f"give between 1 and {MAX_STEPS} cutpoints")
        if not all(0 < v < 1 for v in value):
            raise ValueError("cutpoints must lie strictly between 0 and 1 (1 is implied)")
        if any(b <= a for a, b in zip(value, value[1:], strict=False)):
            raise ValueError("cutpoints must increase")
        return value


@dataclass
class SelectionData(StudyData):
    """Study-level effects with the selection model's cutpoints and direction.

    ``steps`` and ``alternative`` travel with the data, so that the log-likelihood of a
    fit's draws (:meth:`NormalSelection.marginal_log_likelihood`) needs nothing else.
    """

    steps: tuple[float, ...] = DEFAULT_STEPS
    alternative: str = "greater"


def interval_labels(steps) -> list[str]:
    """Label each p-value interval, the most significant first.

    Examples
    --------
    >>> interval_labels([0.025, 0.5])
    ['p <= 0.025', '0.025 < p <= 0.5', '0.5 < p <= 1']
    """
    edges = [0.0, *(float(s) for s in steps), 1.0]
    labels = [f"{a:g} < p <= {b:g}" for a, b in zip(edges[:-1], edges[1:], strict=True)]
    labels[0] = f"p <= {edges[1]:g}"
    return labels


def one_sided_p(yi, sei, alternative: str = "greater") -> np.ndarray:
    """One-sided p-values of the estimates: ``1 - Phi(y/se)`` (greater) or ``Phi(y/se)``.

    Examples
    --------
    >>> one_sided_p([1.96, 0.0], [1.0, 1.0]).round(3).tolist()
    [0.025, 0.5]
    """
    z = np.asarray(yi, float) / np.asarray(sei, float)
    return special.ndtr(-z if alternative == "greater" else z)


def interval_counts(yi, sei, steps, alternative: str = "greater") -> np.ndarray:
    """Studies whose one-sided p-value falls in each interval, the most significant first.

    Examples
    --------
    >>> interval_counts([2.5, 1.0, -0.3], [1.0, 1.0, 1.0], [0.025]).tolist()
    [1, 2]
    """
    p = one_sided_p(yi, sei, alternative)
    return np.bincount(np.searchsorted(np.asarray(steps, float), p), minlength=len(steps) + 1)


def _sign(alternative: str) -> float:
    return 1.0 if alternative == "greater" else -1.0


def _z_steps(steps) -> np.ndarray:
    """Return each cutpoint's z: a study is significant at ``a`` when ``y/se >= z_(1-a)``."""
    return special.ndtri(1 - np.asarray(steps, float))


def selection_logp(value, mu, sigma, cuts, delta, sign):
    """Log-density of the published estimates (a pytensor graph; see the module).

    ``value`` and ``sigma`` per study, ``cuts`` the thresholds of ``sign * y`` per study
    and cutpoint (``se_i z_(1-a)``, decreasing), ``delta`` the Dirichlet increments. With
    ``S_l = P(sign y >= cut_l)`` the normaliser is ``A = sum_l delta_l S_l`` (``S_J = 1``),
    which needs only log normal CDFs, stable far in the tails.
    """
    import pytensor.tensor as pt
    from pymc.distributions.dist_math import normal_lcdf
    from pymc.math import logsumexp

    v = sign * value
    m = sign * mu
    log_s = normal_lcdf(cuts, sigma[..., None], m)  # log P(v >= cut) = log Phi((m - cut)/sd)
    log_s = pt.concatenate([log_s, pt.zeros_like(log_s[..., :1])], axis=-1)
    log_a = logsumexp(pt.log(delta) + log_s, axis=-1, keepdims=False)
    # the parameters may come broadcast to the studies: the intervals are the last axis
    log_omega = pt.log(pt.cumsum(delta[..., ::-1], axis=-1)[..., ::-1])
    log_omega = pt.broadcast_to(log_omega, (*v.shape, log_omega.shape[-1]))
    interval = pt.sum(pt.lt(v[..., None], cuts), axis=-1)
    log_norm = -0.5 * ((v - m) / sigma) ** 2 - pt.log(sigma) - 0.5 * np.log(2 * np.pi)
    return pt.take_along_axis(log_omega, interval[..., None], -1)[..., 0] + log_norm - log_a


def selection_loglik(yi, sei, mu, tau, delta, steps, alternative: str = "greater"):
    """Each study's log-likelihood under the selection model, per draw (numpy).

    Parameters
    ----------
    yi, sei : array of shape (k,)
    mu, tau : array of shape (n,)
    delta : array of shape (n, J)
        The Dirichlet increments of the weights (``omega_j = delta_j + ... + delta_J``).
    steps : sequence of float
    alternative : {"greater", "less"}

    Returns
    -------
    array of shape (n, k)

    Examples
    --------
    With every weight 1 there is no selection: the random-effects marginal likelihood.

    >>> from scipy import stats
    >>> ll = selection_loglik([0.5], [0.2], np.array([0.1]), np.array([0.3]),
    ...                       np.array([[0.0, 1.0]]), [0.025])
    >>> bool(np.isclose(ll[0, 0], stats.norm.logpdf(0.5, 0.1, np.hypot(0.3, 0.2))))
    True
    """
    s = _sign(alternative)
    y = s * np.asarray(yi, float)[None, :]
    se = np.asarray(sei, float)[None, :]
    m = s * np.asarray(mu, float)[:, None]
    sd = np.sqrt(np.asarray(tau, float)[:, None] ** 2 + se**2)
    delta = np.asarray(delta, float)
    cuts = se[..., None] * _z_steps(steps)  # (1, k, J-1)
    log_s = special.log_ndtr((m[..., None] - cuts) / sd[..., None])
    log_s = np.concatenate([log_s, np.zeros(log_s.shape[:-1] + (1,))], axis=-1)
    with np.errstate(divide="ignore"):
        log_delta = np.log(delta)[:, None, :]
        log_omega = np.log(np.cumsum(delta[:, ::-1], axis=1)[:, ::-1])
    log_a = special.logsumexp(log_delta + log_s, axis=-1)
    interval = np.sum(y[..., None] < cuts, axis=-1)[0]
    log_norm = -0.5 * ((y - m) / sd) ** 2 - np.log(sd) - 0.5 * np.log(2 * np.pi)
    return log_omega[:, interval] + log_norm - log_a


def selection_dist(mu, sigma, cuts, delta, sign, size):
    """Draw published estimates from the selection model (the CustomDist's graph).

    The interval of each estimate is drawn with probability ``omega_j P_j / A``, then the
    estimate from the normal truncated to that interval by its inverse CDF: exact, with
    no rejection loop that a small weight would make long. An interval above the mean is
    inverted through the upper tail, one below it through the lower tail, so that
    intervals far out in either tail keep their precision. Written in pytensor, not as a
    Python ``random`` function, so that the predictive draws compile like the rest.
    """
    import pymc as pm
    import pytensor.tensor as pt

    m = sign * mu
    sd = pt.as_tensor(sigma)[..., None]
    edge = pt.ones_like(cuts[..., :1]) * np.inf
    za = (pt.concatenate([cuts, -edge], -1) - m) / sd  # interval j: za_j <= z < zb_j
    zb = (pt.concatenate([edge, cuts], -1) - m) / sd
    root2 = np.sqrt(2.0)

    def lower(z):  # Phi(z)
        return 0.5 * pt.erfc(-z / root2)

    def upper(z):  # 1 - Phi(z)
        return 0.5 * pt.erfc(z / root2)

    above = za > 0
    prob = pt.switch(above, upper(za) - upper(zb), lower(zb) - lower(za))
    weight = pt.cumsum(delta[..., ::-1], -1)[..., ::-1] * prob
    cum = pt.cumsum(weight, -1)
    u = pm.Uniform.dist(0.0, 1.0, size=size)
    j = pt.minimum(pt.sum(u[..., None] * cum[..., -1:] > cum, -1), cum.shape[-1] - 1)
    lo = pt.take_along_axis(za, j[..., None], -1)[..., 0]
    hi = pt.take_along_axis(zb, j[..., None], -1)[..., 0]
    v = pm.Uniform.dist(0.0, 1.0, size=size)
    z = pt.switch(
        lo > 0,
        root2 * pt.erfcinv(2 * (upper(hi) + v * (upper(lo) - upper(hi)))),
        -root2 * pt.erfcinv(2 * (lower(lo) + v * (lower(hi) - lower(lo)))),
    )
    return sign * (m + pt.as_tensor(sigma) * z)


def build(data: StudyData, priors: dict, *, steps, alternative: str = "greater"):
    """Return the ``pymc.Model`` of the step-function selection model.

    Dims ``study``, ``interval`` (the Dirichlet increments ``delta``) and ``p_interval``
    (the weights ``omega`` of the less significant intervals; the most significant one's
    is 1). Data containers ``yi`` and ``sei``.

    Examples
    --------
    >>> import bayeskit as bk
    >>> from bayeskit.families.data import study_data
    >>> from bayeskit.priors import parse_prior
    >>> d = study_data(bk.load_evidence(bk.data_path("eight_schools.csv")))
    >>> pri = {"mu": parse_prior("Normal(0, 5)"), "tau": parse_prior("HalfCauchy(5)")}
    >>> m = build(d, pri, steps=[0.025])
    >>> [rv.name for rv in m.free_RVs], m.coords["p_interval"]
    (['mu', 'tau', 'delta', 'theta_z', 'theta_new_z'], ('0.025 < p <= 1',))
    """
    import pymc as pm
    import pytensor.tensor as pt

    from bayeskit.families._effects import add_binary_scale

    labels = interval_labels(steps)
    coords = {"study": data.study, "interval": labels, "p_interval": labels[1:]}
    sign = _sign(alternative)
    with pm.Model(coords=coords) as model:
        yi = pm.Data("yi", data.yi, dims="study")
        sei = pm.Data("sei", data.sei, dims="study")
        mu = priors["mu"].to_pymc("mu")
        tau = priors["tau"].to_pymc("tau")
        delta = pm.Dirichlet("delta", a=np.ones(len(labels)), dims="interval")
        omega = pt.cumsum(delta[::-1])[::-1]
        pm.Deterministic("omega", omega[1:], dims="p_interval")
        sigma = pt.sqrt(tau**2 + sei**2)
        cuts = sei[:, None] * _z_steps(steps)[None, :]
        y = pm.CustomDist(
            "y", mu, sigma, cuts, delta, sign,
            logp=selection_logp, dist=selection_dist,
            signature="(),(),(c),(j),()->()", observed=yi, dims="study",
        )  # fmt: skip
        # theta | y, mu, tau is the normal-normal one: the weight depends on y alone
        shrink = sei**2 / (sei**2 + tau**2)
        z = pm.Normal("theta_z", 0.0, 1.0, dims="study")
        theta = (1 - shrink) * y + shrink * mu + pt.sqrt(1 - shrink) * sei * z
        pm.Deterministic("theta", theta, dims="study")
        z_new = pm.Normal("theta_new_z", 0.0, 1.0)
        pm.Deterministic("theta_new", mu + tau * z_new)
        add_binary_scale(data.measure, None, "partial")
    return model


#: the selection model has no covariates: its ``beta`` is the slope of the report's
#: small-study check (:mod:`bayeskit.smallstudy`), as it is for normal-normal
SLOPE = PriorSlot(
    "beta",
    None,
    "the small-study check's slope on sei (not in the selection model); " + BETA.reason,
    flat=True,
)


class NormalSelection(Family):
    """``normal-selection``: random effects corrected by a step-function selection model.

    Examples
    --------
    >>> family = NormalSelection()
    >>> family.data, family.prior_names, family.exact is None
    ('study', ('mu', 'tau', 'beta'), True)
    """

    name = "normal-selection"
    data = "study"
    description = (
        "random effects on study-level effect sizes with a step-function selection "
        "model on one-sided p-values (publication bias)"
    )
    methods = (
        "Each study's effect estimate y_i was given a normal likelihood with its reported "
        "standard error treated as known, y_i ~ Normal(theta_i, se_i); {effects} "
        "Publication was modelled by a step-function selection model on the one-sided "
        "p-values (Vevea & Hedges 1995): a study whose p-value falls in interval j is "
        "published with relative probability omega_j (1 for the most significant), "
        "with RoBMA's cumulative Dirichlet(1, ..., 1) prior on the weights (Bartoš et al. "
        "2023), and mu is the mean effect corrected for that selection."
    )
    slots = (MU, TAU, SLOPE)
    options_model = NormalSelectionOptions
    # eight schools has no study significant at one-sided 0.025: its cutpoint is 0.05
    example: ClassVar[dict] = {"data": "eight_schools.csv", "steps": [0.05]}
    funnel = True
    sbc_priors: ClassVar[dict] = {"mu": "Normal(0, 0.5)", "tau": "HalfNormal(0.3)"}

    @override
    def prepare(self, evidence, options, *, outcome, timepoint, effect_options) -> SelectionData:
        d = study_data(
            evidence_table(evidence),
            measure=options.measure,
            outcome=outcome,
            timepoint=timepoint,
            **effect_options,
        )
        return SelectionData(
            d.study, d.yi, d.sei, d.X, d.measure, d.table,
            steps=tuple(options.steps), alternative=options.alternative,
        )  # fmt: skip

    @override
    def resolve(self, prepared: StudyData, options: NormalSelectionOptions):
        """Refuse cutpoints that leave an interval of p-values with no study in it.

        An empty interval's weight is informed by nothing but its emptiness, and with
        few studies that alone moves ``mu``: merge the interval with its neighbour.
        """
        counts = interval_counts(prepared.yi, prepared.sei, options.steps, options.alternative)
        empty = [
            lab for lab, n in zip(interval_labels(options.steps), counts, strict=True) if not n
        ]
        if len(prepared.yi) < 3:
            raise UserError(
                f"model {self.name} needs at least 3 studies (got {len(prepared.yi)}): the "
                "selection weights and the heterogeneity cannot be told apart with fewer"
            )
        if empty:
            raise UserError(
                f"option 'steps' of model {self.name}: the interval {empty[0]} of one-sided "
                f"p-values ({options.alternative}) holds none of the {len(prepared.yi)} "
                f"studies (per interval: {counts.tolist()}), so its weight would rest on "
                "its prior alone; choose cutpoints with studies on both sides of each "
                "(fewer, or others such as [0.05] or [0.1])"
            )
        return options

    @override
    def default_priors(self, prepared: StudyData) -> dict:
        from bayeskit.priors import default_priors

        chosen = default_priors(prepared.measure, yi=prepared.yi, sei=prepared.sei)
        return {k: v for k, v in chosen.items() if k in self.prior_names}

    @override
    def settings(self, prepared, options: NormalSelectionOptions) -> dict:
        return options.model_dump(exclude={"measure"})

    @override
    def build(self, prepared: StudyData, priors: dict, options: NormalSelectionOptions):
        return build(prepared, priors, steps=options.steps, alternative=options.alternative)

    @override
    def within_study_variances(self, prepared: StudyData):
        return np.asarray(prepared.sei, dtype=float) ** 2, prepared.X.to_numpy(float)

    @override
    def marginal_log_likelihood(self, prepared: StudyData, posterior, priors=None):
        """Each study's log-likelihood under the selection model, theta integrated out.

        Examples
        --------
        >>> import bayeskit as bk, xarray as xr
        >>> from bayeskit.families.data import study_data
        >>> d = study_data(bk.load_evidence(bk.data_path("eight_schools.csv")))
        >>> d = SelectionData(**vars(d), steps=(0.025,))
        >>> post = xr.Dataset({"mu": (("chain", "draw"), [[4.0]]),
        ...                    "tau": (("chain", "draw"), [[3.0]]),
        ...                    "delta": (("chain", "draw", "interval"), [[[0.5, 0.5]]])})
        >>> ll = NormalSelection().marginal_log_likelihood(d, post)
        >>> ll["y"].dims, ll.attrs["loo"]
        (('chain', 'draw', 'study'), 'leave-one-study-out')
        """
        from bayeskit.families._marginal import LEAVE_ONE_STUDY_OUT, flat, study_dataset

        values = selection_loglik(
            prepared.yi, prepared.sei, flat(posterior, "mu"), flat(posterior, "tau"),
            flat(posterior, "delta"), prepared.steps, prepared.alternative,
        )  # fmt: skip
        note = (
            "each study's effect theta integrated out: the weighted density "
            "omega_j Normal(yi | mu, sqrt(tau^2 + sei^2)) / A_i of the selection model"
        )
        return study_dataset("y", values, posterior, prepared.study, LEAVE_ONE_STUDY_OUT, note)

    @property
    @override
    def sbc(self) -> SBCDesign:
        return SBCDesign(
            self.sbc_priors, ("mu", "tau", "omega", "theta", "theta_new"), self.sbc_template
        )

    def sbc_rows(self, studies: int) -> list[str]:
        """Return the SBC design's rows: standard errors from 0.1 to 0.4 (SMD)."""
        return ["study,yi,sei,measure"] + [
            f"S{i + 1},0,{0.1 + 0.3 * i / max(studies - 1, 1):.4f},SMD" for i in range(studies)
        ]

    def sbc_template(self, studies: int, priors: dict):
        """Build the model on ``studies`` synthetic studies (the outcomes are placeholders).

        The placeholders are spread over both p-value intervals of the default cutpoint,
        so that the options' check of empty intervals passes.
        """
        import tempfile
        from pathlib import Path

        from bayeskit.fitting import build_model

        rows = self.sbc_rows(studies)
        rows = [rows[0]] + [
            r.replace(",0,", ",1,", 1) if i % 2 else r for i, r in enumerate(rows[1:])
        ]
        with tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp) / f"sbc_{self.name}.csv"
            path.write_text("\n".join(rows) + "\n")
            return build_model(path, self.name, priors=priors)
