"""exposure-response with repeated effects of one study (option repeated): sub-studies
weighted 1/m count the same patients once, the robustness table lists the refit only where
a study reports several effects, and (slow) both Krupitsky 2002 timepoints."""

from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest
from scipy import stats

import bayeskit as bk
from bayeskit.errors import UserError
from bayeskit.robustness import alternatives
from bayeskit.spec import load_spec

PRIORS = {"dose_contrast": "Normal(0, 1)", "baseline": "Normal(0, 2)"}
OPTIONS = {"slope_scale": "contrast", "exposure_ref": 0.2}


def _oud(timepoints: list[str]) -> pd.DataFrame:
    ev = bk.load_evidence(bk.data_path("oud_abstinence.csv"))
    return ev[ev["timepoint"].isin(timepoints)]


def _model(evidence, **options):
    return bk.build_model(
        evidence,
        "exposure-response",
        timepoint=list(dict.fromkeys(evidence["timepoint"])),
        priors=PRIORS,
        model_options=OPTIONS | options,
    )


def test_a_study_repeated_exactly_at_a_second_timepoint_counts_once():
    one = _oud(["12 months"])
    again = one[one["study"] == "KRUPITSKY2002"].assign(timepoint="24 months")
    twice = pd.concat([one, again], ignore_index=True)
    base, rep = _model(one), _model(twice, repeated="all")
    assert sorted(rep.coords["study"]) == [
        "KRUPITSKY2002 [12 months]",
        "KRUPITSKY2002 [24 months]",
        "KRUPITSKY2007",
    ]
    # one deviation and one bias per study: only the sub-study's baseline is new
    assert rep["delta_z"].eval().shape == (2,)
    point = base.initial_point()
    rng = np.random.default_rng(1)
    point = {k: v + rng.normal(0, 0.3, np.shape(v)) for k, v in point.items()}
    alpha = dict(zip(base.coords["study"], point["alpha"], strict=True))
    of = [alpha[s.split(" [")[0]] for s in rep.coords["study"]]
    shared = point | {"alpha": np.array(of)}
    like = [
        m.observed_RVs + [p for p in m.potentials if p.name == "events_weighted"]
        for m in (base, rep)
    ]
    l_base = base.compile_logp(vars=like[0])(point)
    l_rep = rep.compile_logp(vars=like[1])(shared)
    # with weight 1 for each copy, Krupitsky 2002's binomial terms would count twice
    assert l_rep == pytest.approx(l_base, rel=1e-10)
    # the whole density is the same too: the copies' baseline priors are weighted 1/2 as
    # well, so the copy adds no prior pull on the baselines (without that weighting it
    # would differ by the new baseline's prior, Normal(0, 2))
    assert rep.compile_logp()(shared) == pytest.approx(base.compile_logp()(point), rel=1e-10)
    prior = stats.norm(0, 2).logpdf(alpha["KRUPITSKY2002"])
    assert abs(prior) > 1.0


def test_first_refuses_a_study_at_several_selected_timepoints():
    with pytest.raises(
        UserError, match=r'KRUPITSKY2002 reports several timepoints.*repeated = "all"'
    ):
        _model(_oud(["12 months", "24 months"]))


def _alternatives(name: str, settings: dict) -> list:
    spec = load_spec(name)
    tables = bk.families._base.evidence_tables(spec.data_files())
    studies = sorted({s for t in tables for s in t["study"].astype(str)})
    table = pd.DataFrame({"study": studies, "design": "rct", "sessions": 1})
    fit = SimpleNamespace(
        data=SimpleNamespace(table=table, arms=table.iloc[:0], indication=["x"]),
        settings={"form": "emax", "sessions": "ignore"} | settings,
    )
    return [a for a in alternatives(fit, spec) if a.assumption == "repeated measurements"]


def test_repeated_measurements_are_listed_where_a_study_has_several_effects():
    (oud,) = _alternatives("oud_abstinence", {"repeated": "first"})
    assert oud.label == "both KRUPITSKY2002 timepoints (12 months, 24 months)"
    assert oud.model_options == {"repeated": "all"}
    assert oud.data == {"timepoint": ["12 months", "24 months"]}
    (ow,) = _alternatives("ow_withdrawal", {"repeated": "first"})
    assert ow.label == "both JOVAISA2006 outcomes (peak_map, peak_hr)"
    assert ow.data == {}  # the spec lists both outcomes already
    # already fitted with every effect, or not an exposure-response fit: nothing to add
    assert _alternatives("oud_abstinence", {"repeated": "all"}) == []
    assert _alternatives("oud_abstinence", {}) == []
    # a spec whose studies report one effect each
    assert _alternatives("eight_schools", {"repeated": "first"}) == []


@pytest.mark.slow
def test_both_krupitsky_timepoints_barely_move_the_within_evidence_answer():
    # Krupitsky 2002, 2.0 vs 0.2 mg/kg IM: 8/35 vs 2/35 at 12 months (sample log-OR 1.59,
    # variance 0.69) and 6/35 vs 1/35 at 24 months (log-OR 1.95, variance 1.23). With
    # each baseline integrated over its Normal(0, 2) prior the two likelihoods peak at a
    # log-OR of 1.31 and 1.39: a similar odds ratio, the later one less informative (one
    # event). On a grid (tau and the group effect at their priors) the posterior mean of
    # the contrast is 0.771 from 12 months, 0.748 from 24 months and 0.764 from both
    # weighted 1/2: the answer should barely move (by -0.007 there; Monte Carlo error of
    # each mean here is about 0.02). About 20 s (compile cache).
    from bayeskit.families.exposure.repeated import repeated_alternatives
    from bayeskit.questions import answer_questions
    from bayeskit.robustness import answer_rows, refit

    spec = load_spec("oud_abstinence")
    kwargs = spec.fit_kwargs() | {"draws": 2000, "tune": 1000, "chains": 2}
    fitted = bk.fit(spec.data_files(), **kwargs)
    (alt,) = repeated_alternatives(fitted, spec)
    both = refit(spec, alt, draws=2000, tune=1000, chains=2)
    assert "KRUPITSKY2002 [24 months]" in both.data.study
    label = "2 mg/kg IM, 1 session vs 0.2 mg/kg im, 1 session (within the evidence)"

    def effect(fit):
        rows = answer_rows(answer_questions(fit, spec)).set_index(["question", "quantity"])
        return rows.loc[(label, "effect")]

    before, after = effect(fitted), effect(both)
    # seed 20261123: mean 0.768 -> 0.730, P(benefit) 0.875 -> 0.857
    assert abs(after["mean"] - before["mean"]) < 0.1
    assert 0.8 < after["prob_benefit"] < 0.95 and 0.8 < before["prob_benefit"] < 0.95
    assert (after["q97.5"] - after["q2.5"]) > 0.95 * (before["q97.5"] - before["q2.5"])
