"""What the random-effects families (normal-normal, binomial-normal, normal-arm) share.

Their options (pooling, parametrization, covariates), the preparation of study- or
arm-level data, the measure-dependent default priors and the synthetic SBC design.
"""

from __future__ import annotations

import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import ClassVar, Literal

import numpy as np
import pandas as pd
from pydantic import Field, field_validator

from bayeskit.families._base import Family, Options, PriorSlot, SBCDesign
from bayeskit.families.data import ArmData, arm_data

#: the slots every random-effects family has; their defaults depend on the measure
MU = PriorSlot(
    "mu",
    None,
    "by measure: Normal(0, 4) log scale, Normal(0, 2) standardised, "
    "10 typical standard errors on a raw scale",
    flat=True,
)
TAU = PriorSlot(
    "tau",
    None,
    "HalfNormal(0.5) on log and standardised scales (Röver et al. "
    "2021); one typical standard error on a raw scale",
    positive=True,
)
BETA = PriorSlot(
    "beta",
    None,
    "Normal(0, 1) per covariate unit on log and standardised scales; as mu on a raw scale",
    flat=True,
)
# fmt: skip


class RandomEffectsOptions(Options):
    """Options of the random-effects families (see :func:`bayeskit.fit`)."""

    pooling: Literal["partial", "none", "full"] = "partial"
    parametrization: Literal["auto", "noncentered", "centered"] = "auto"
    covariates: str | list[str] | None = None

    @field_validator("covariates")
    @classmethod
    def _readable_formula(cls, value: str | list[str] | None) -> str | list[str] | None:
        from bayeskit.design import parse_formula

        if isinstance(value, str) and value.strip().startswith("~"):
            parse_formula(value)  # a UserError is a ValueError: reported under its key
        return value


def evidence_table(data) -> pd.DataFrame:
    """One validated table from a DataFrame, a list of DataFrames, a path or paths."""
    from bayeskit.evidence import load_evidence

    if isinstance(data, list) and all(isinstance(t, pd.DataFrame) for t in data):
        attrs = data[0].attrs
        data = pd.concat(data, ignore_index=True)
        data.attrs = attrs
    return data if isinstance(data, pd.DataFrame) else load_evidence(data)


class RandomEffectsFamily(Family):
    """A family with study effects ``theta ~ Normal(mu + X beta, tau)``."""

    options_model = RandomEffectsOptions
    #: calibration priors (proper and moderate: simulated data look like real trials)
    sbc_priors: dict[str, str] = {}
    #: parameters whose SBC ranks are tested
    sbc_parameters: tuple[str, ...] = ("mu", "tau", "theta")

    def resolve(self, prepared, options: RandomEffectsOptions) -> RandomEffectsOptions:
        """Options with ``parametrization="auto"`` (and the baseline risk) settled."""
        update = {}
        if options.parametrization == "auto":
            update["parametrization"] = self.auto_parametrization(prepared)
        if "baseline_risk" in type(options).model_fields and options.baseline_risk is None:
            update["baseline_risk"] = observed_control_risk(prepared)
        return options.model_copy(update=update)

    def settings(self, prepared, options) -> dict:
        return options.model_dump(exclude={"covariates", "measure"})

    def auto_parametrization(self, prepared) -> str:
        return "noncentered"

    @property
    def sbc(self) -> SBCDesign:
        return SBCDesign(self.sbc_priors, self.sbc_parameters, self.sbc_template, self.sbc_exact)

    #: SBC of the exact engine, if the family has one
    sbc_exact = None

    #: what LOO is under ``pooling="none"``: there is no population to predict from
    no_pooling_loo_note: ClassVar[str] = (
        "with pooling='none' each study has its own effect and there is no population "
        "to predict a left-out study from, so leave-one-study-out LOO does not apply; "
        "this LOO is conditional on each study's own effect, and a high Pareto k only "
        "says that each study alone determines its effect"
    )

    def sbc_rows(self, studies: int) -> list[str]:
        """Lines of the CSV file of the SBC design (header first)."""
        raise NotImplementedError

    def sbc_template(self, studies: int, priors: dict):
        """Build the model on ``studies`` synthetic studies (outcomes are placeholders)."""
        from bayeskit.fitting import build_model

        with tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp) / f"sbc_{self.name}.csv"
            path.write_text("\n".join(self.sbc_rows(studies)) + "\n")
            return build_model(path, self.name, priors=priors)


class ArmFamily(RandomEffectsFamily):
    """A random-effects family on arm-level data (``binomial-normal``, ``normal-arm``)."""

    data = "arm"
    #: the observed variable of the model (its name in ``log_likelihood``)
    observed: ClassVar[str]

    def arm_terms(self, prepared: ArmData):
        """Each arm's log-likelihood on the link scale (:mod:`bayeskit.families._marginal`)."""
        raise NotImplementedError

    def marginal_log_likelihood(self, prepared: ArmData, posterior, priors=None):
        """Each study's arms together, ``theta`` and the study's baseline integrated out.

        Adaptive Gauss-Hermite quadrature per study and draw
        (:func:`bayeskit.families._marginal.arm_marginal`). A random baseline is drawn
        from ``Normal(alpha_mu, alpha_sigma)`` at each draw. A fixed baseline is a
        parameter of its own study alone: with the study left out its posterior is its
        prior, so it is integrated against its (normal) prior; kept at its draws, PSIS
        would have to move it from the study's posterior back to the prior, and Pareto
        k exceeds 0.7 on every study (0.86 and 1.12 on ``oud_abstinence.csv``). A
        non-normal baseline prior keeps the baselines at their draws and says so.
        Under ``pooling="none"`` the study's arms are summed given its own ``theta``
        and baseline, labelled conditional.

        Examples
        --------
        >>> import numpy as np, xarray as xr
        >>> from bayeskit.families import get_family
        >>> from bayeskit.families.data import arm_data
        >>> import bayeskit as bk
        >>> ev = bk.load_evidence(bk.data_path("oud_abstinence.csv"))
        >>> d = arm_data(ev, outcome_type="binary", timepoint="12 months")
        >>> k = len(d.study)
        >>> post = xr.Dataset({"mu": (("chain", "draw"), [[0.5]]),
        ...                    "tau": (("chain", "draw"), [[0.3]]),
        ...                    "alpha": (("chain", "draw", "study"), [[[-1.0] * k]])})
        >>> ll = get_family("binomial-normal").marginal_log_likelihood(d, post)
        >>> ll["events"].dims, ll.attrs["loo"]
        (('chain', 'draw', 'study'), 'leave-one-study-out')
        """
        from bayeskit.families._marginal import (
            CONDITIONAL,
            LEAVE_ONE_STUDY_OUT,
            arm_marginal,
            flat,
            population_mean,
            study_dataset,
        )

        idx, treat = prepared.study_idx, prepared.treat
        terms = self.arm_terms(prepared)
        k = len(prepared.study)
        if "tau" not in posterior:  # no pooling: no population
            offset = flat(posterior, "alpha")[:, idx] + treat * flat(posterior, "theta")[:, idx]
            none = np.zeros((len(offset), k, 0))
            values = arm_marginal(terms, offset, np.zeros((len(idx), 0)), idx, none, none)
            return study_dataset(
                self.observed, values, posterior, prepared.study, CONDITIONAL,
                self.no_pooling_loo_note,
            )  # fmt: skip
        means = [population_mean(posterior, prepared.X)]
        sds = [np.broadcast_to(flat(posterior, "tau")[:, None], means[0].shape)]
        loadings = [treat]
        note = (
            "each study's arms together, with its effect theta ~ Normal(mu + x'beta, tau) "
            "integrated out by adaptive Gauss-Hermite quadrature"
        )
        if "alpha_mu" in posterior:  # random baselines: integrated out as well
            means.append(np.broadcast_to(flat(posterior, "alpha_mu")[:, None], means[0].shape))
            sds.append(np.broadcast_to(flat(posterior, "alpha_sigma")[:, None], means[0].shape))
            loadings.append(np.ones(len(idx)))
            offset = np.zeros((len(means[0]), len(idx)))
            note += " jointly with its random baseline"
        elif priors is not None and priors["baseline"].family == "Normal":
            prior = priors["baseline"].params
            means.append(np.full(means[0].shape, float(prior["mu"])))
            sds.append(np.full(means[0].shape, float(prior["sigma"])))
            loadings.append(np.ones(len(idx)))
            offset = np.zeros((len(means[0]), len(idx)))
            note += (
                " jointly with its fixed baseline under its prior (the baseline's "
                "posterior once its study is left out)"
            )
        else:
            offset = flat(posterior, "alpha")[:, idx]
            note += "; the study's fixed baseline (non-normal prior) stays at its draws"
        values = arm_marginal(
            terms, offset, np.stack(loadings, -1), idx, np.stack(means, -1), np.stack(sds, -1)
        )
        return study_dataset(
            self.observed, values, posterior, prepared.study, LEAVE_ONE_STUDY_OUT, note
        )

    def within_study_variances(self, prepared: ArmData):
        """Each comparative study's variance of its log odds ratio or mean difference.

        From its arms (:func:`bayeskit.heterogeneity.arm_contrast_variances`); single-arm
        studies have no contrast and no within-study variance of one.

        Examples
        --------
        >>> import bayeskit as bk
        >>> from bayeskit.families import get_family
        >>> ev = bk.load_evidence(bk.data_path("oud_abstinence.csv"))
        >>> d = arm_data(ev, outcome_type="binary", timepoint="12 months")
        >>> v, X = get_family("binomial-normal").within_study_variances(d)
        >>> v.round(3).tolist()
        [0.692, 0.368]
        """
        from bayeskit.heterogeneity import arm_contrast_variances

        v, studies = arm_contrast_variances(
            prepared.study_idx,
            prepared.treat < 0,
            events=prepared.events,
            n=prepared.n,
            se=prepared.se if prepared.events is None else None,
        )
        return v, prepared.X.to_numpy(float)[studies]

    def prepare(self, evidence, options, *, outcome, timepoint, effect_options) -> ArmData:
        return arm_data(
            evidence_table(evidence),
            outcome_type=self.outcome_type,
            outcome=outcome,
            timepoint=timepoint,
            covariates=options.covariates,
        )

    def sbc_rows(self, studies: int) -> list[str]:
        binary = self.outcome_type == "binary"
        rows = ["study,arm,outcome,n,events,mean,sd,role,timepoint"]
        for i in np.arange(studies):
            n = 40 + (80 * i) // max(studies - 1, 1)  # 40 to 120 per arm
            for arm, role in (("treated", "experimental"), ("control", "control")):
                cells = f"{n},{n // 4},," if binary else f"{n},,0,1"
                rows.append(f"S{i + 1},{arm},outcome,{cells},{role},end")
        return rows


def observed_control_risk(prepared) -> float | None:
    """Median observed risk in control arms (None when there are none or not binary).

    Examples
    --------
    >>> import bayeskit as bk
    >>> ev = bk.load_evidence(bk.data_path("oud_abstinence.csv"))
    >>> observed_control_risk(arm_data(ev, outcome_type="binary", timepoint="12 months"))
    0.2
    """
    if isinstance(prepared, ArmData):
        if prepared.outcome_type != "binary" or not (prepared.treat < 0).any():
            return None
        control = prepared.treat < 0
        risk = prepared.events[control] / prepared.n[control]
    else:
        table = prepared.table
        if prepared.measure not in ("OR", "RR") or "ci" not in table or "n2i" not in table:
            return None
        risk = (table["ci"] / table["n2i"]).to_numpy(float)
    risk = float(np.median(risk))
    return risk if 0 < risk < 1 else None


def baseline_risk_field():
    """Return the ``baseline_risk`` option's field: a control-group risk in (0, 1)."""
    return Field(None, gt=0, lt=1)


__all__: Sequence[str] = (
    "ArmFamily",
    "RandomEffectsFamily",
    "RandomEffectsOptions",
    "evidence_table",
    "observed_control_risk",
)
