"""Leave-one-study-out log-likelihood of the contrast-based exposure-response model.

With fixed study baselines a left-out study's baseline cannot be predicted from the
others (it is that study's nuisance parameter, and it carries no information on the
dose response), so it stays at its posterior draw; what is predicted is the study's
contrast. Its random parts, the deviation ``delta ~ Normal(0, tau)`` and the random part
of an additive design bias ``Normal(direction x mean, sd)``, both act on the
experimental arm (or the contrast) alone, so their sum is one normal latent effect with
SD ``sqrt(tau^2 + sd^2)``, integrated out by adaptive Gauss-Hermite quadrature
(:func:`bayeskit.families._marginal.arm_marginal`). A research group's shared effect is
informed by the group's other studies and stays at its draw, as does a proportional bias
(not linear in the latent effect). The arm-based version (random baselines) and
power-prior weights keep the conditional log-likelihood.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from bayeskit.families._marginal import (
    LEAVE_ONE_STUDY_OUT,
    arm_marginal,
    binomial_terms,
    flat,
    normal_terms,
    study_dataset,
)
from bayeskit.families.exposure.model import (
    DEFAULT_BIAS_MEAN,
    DEFAULT_BIAS_SD,
    LOGIT_TO_SMD,
    ExposureData,
)

NOTE = (
    "exposure-response (contrast-based): each study's likelihood with its deviation and "
    "design bias integrated out, given its own baseline (a nuisance parameter that no "
    "other study predicts), so LOO says how well the others predict a study's contrast"
)


def contrast_log_likelihood(
    family, data: ExposureData, posterior, settings: Mapping[str, Any]
) -> Any:
    """Return the per-study log-likelihood group, or None where it stays conditional.

    Examples
    --------
    >>> from bayeskit.families.exposure.model import exposure_data
    >>> import bayeskit as bk
    >>> ev = bk.load_evidence(bk.data_path("oud_abstinence.csv"))
    >>> d = exposure_data(ev[ev["timepoint"] == "12 months"], None, routes=bk.load_routes())
    >>> contrast_log_likelihood(None, d, None, {"likelihood": "arm"}) is None
    True
    """
    if settings.get("likelihood", "contrast") != "contrast" or settings.get("design_weight"):
        return None
    if getattr(data, "repeated", False):  # sub-studies enter with weights 1/m: conditional
        return None
    draws = flat(posterior, "tau").shape[0]
    n_study = len(data.study)
    mean, sd, offset_bias = _bias_parts(data, posterior, settings, draws)
    tau = flat(posterior, "tau")[:, None]
    latent_mean = mean[None, :, None] + np.zeros((draws, n_study, 1))
    latent_sd = np.sqrt(tau**2 + sd[None, :] ** 2)[..., None]
    out = np.zeros((draws, n_study))
    arms, con = data.arms, data.contrasts
    if len(arms):
        s_idx = arms["study_idx"].to_numpy()
        eff = _effects(family, data, posterior, settings, arms, "")
        eff0 = _effects(family, data, posterior, settings, arms, "control_")
        treated = arms["treated"].to_numpy(float)
        alpha = flat(posterior, "alpha")[:, s_idx]
        factor = np.exp(offset_bias[:, s_idx]) if settings.get("bias_form") == "proportional" else 1
        shift = 0 if settings.get("bias_form") == "proportional" else offset_bias[:, s_idx]
        offset = alpha + treated * ((eff - eff0) * factor + shift)
        terms = binomial_terms(arms["events"].to_numpy(float), arms["n"].to_numpy(float))
        out += arm_marginal(terms, offset, treated[:, None], s_idx, latent_mean, latent_sd)
    if len(con):
        s_idx = con["study_idx"].to_numpy()
        e1 = _effects(family, data, posterior, settings, con, "")
        e0 = _effects(family, data, posterior, settings, con, "control_")
        factor = np.exp(offset_bias[:, s_idx]) if settings.get("bias_form") == "proportional" else 1
        shift = 0 if settings.get("bias_form") == "proportional" else offset_bias[:, s_idx]
        offset = (e1 - e0) * factor + shift
        terms = normal_terms(con["yi"].to_numpy(float), con["sei"].to_numpy(float))
        out += arm_marginal(terms, offset, np.ones((len(con), 1)), s_idx, latent_mean, latent_sd)
    return study_dataset("y", out, posterior, data.study, LEAVE_ONE_STUDY_OUT, NOTE)


def _bias_parts(data, posterior, settings, draws):
    """Per study: the integrated bias's mean and SD, and the part kept at its draws.

    Additive bias: mean and SD of the design bias (integrated), the group effect kept.
    Proportional bias: the whole bias kept at its draws (mean and SD 0).
    """
    n = len(data.study)
    kept = np.zeros((draws, n))
    mean, sd = np.zeros(n), np.zeros(n)
    if settings.get("bias_form") == "proportional":
        if "bias" in posterior:
            kept = flat(posterior, "bias")
        return mean, sd, kept
    if data.design:
        means = DEFAULT_BIAS_MEAN
        if data.scale == "smd":
            means = {k: v * LOGIT_TO_SMD for k, v in means.items()}
        means = means | (settings.get("bias_mean") or {})
        sds = DEFAULT_BIAS_SD | (settings.get("bias_sd") or {})
        direction = 1.0 if settings.get("benefit", "higher") == "higher" else -1.0
        for i, d in enumerate(data.study_design):
            if d >= 0:
                mean[i] = direction * means.get(data.design[d], 0.0)
                sd[i] = sds.get(data.design[d], 0.5)
    if "group_effect" in posterior:
        g = flat(posterior, "group_effect")
        mine = data.study_group >= 0
        kept[:, mine] = g[:, data.study_group[mine]]
    return mean, sd, kept


def _effects(family, data, posterior, settings, rows, prefix) -> np.ndarray:
    """Each row's effect against no drug per draw (its control's with ``control_``)."""
    out = np.zeros((flat(posterior, "tau").shape[0], len(rows)))
    for j, (_, r) in enumerate(rows.iterrows()):
        dose = float(r[f"{prefix}dose_mg_per_kg"])
        route_idx = int(r[f"{prefix}route_idx"])
        if dose <= 0 or route_idx < 0:
            continue
        sessions = float(r[f"{prefix}sessions"])
        d = family.predict(
            posterior,
            settings,
            route=data.route[route_idx],
            dose_mg_per_kg=dose,
            sessions=max(sessions, 1.0),
            indication=data.indication[data.study_indication[int(r["study_idx"])]],
        )
        out[:, j] = d["effect"].values.ravel()
    return out
