"""A refit on a data variant of the derived counts moves the OUD within-evidence answers in
the direction the changed counts imply (bayeskit.evidence.ranges, bayeskit.robustness).

The variants change Krupitsky 2002's 12-month arms (the 2.0 vs 0.2 mg/kg IM contrast,
``dose_contrast``) and Krupitsky 2007's denominators (3 vs 1 sessions,
``beta_sessions``). Observed log odds ratios: 2002 1.59 as entered, 1.46 least and 1.82
most favourable; 2007 1.25, 0.87 and 1.50.
"""

import numpy as np
import pytest

import bayeskit as bk
from bayeskit.robustness import Alternative, alternative_data
from bayeskit.spec import load_spec

VARIANTS = (None, "least favourable", "most favourable")


def _kwargs(spec):
    kw = spec.fit_kwargs()
    kw["model_options"] = kw["model_options"] | {"compare_forms": False}
    return kw


def _data(spec, variant):
    return alternative_data(spec, Alternative("derived counts", str(variant), data_variant=variant))


@pytest.fixture(scope="module")
def modes():
    """Posterior modes of the two within-evidence contrasts under each variant (~4 s each)."""
    import pymc as pm

    spec = load_spec("oud_abstinence")
    out = {}
    for variant in VARIANTS:
        model = bk.build_model(_data(spec, variant), **_kwargs(spec))
        with model:
            mode = pm.find_MAP(
                progressbar=False, random_seed=1, return_inferencedata=True, jitter=False
            )["posterior"]
        dose = float(mode["dose_contrast"].values.ravel()[0])
        out[variant] = (dose, float(mode["beta_sessions"].values.ravel()[0]))
    return out


def test_variants_share_the_fits_compiled_structure_with_their_own_counts():
    # the denominators are data containers like the events, so a variant's refit reuses
    # the main fit's compiled sampler (about 2 s of PyTensor rewriting saved per refit);
    # what must not happen is a refit that samples the main fit's counts
    from bayeskit.sampling import compiled

    spec = load_spec("oud_abstinence")
    models = {v: bk.build_model(_data(spec, v), **_kwargs(spec)) for v in VARIANTS}
    assert len({compiled.structure_key(m) for m in models.values()}) == 1
    counts = {
        v: (m["events_n"].get_value(), m["events_data"].get_value()) for v, m in models.items()
    }
    for v in VARIANTS[1:]:  # each variant has other counts than the data as recorded
        same = [np.array_equal(a, b) for a, b in zip(counts[v], counts[None], strict=True)]
        assert not all(same), v
    # the swap itself (every data container by name, into the cached sampler) and that a
    # reused sampler gives the draws of a fresh compile: tests/test_compiled.py


def test_variant_moves_the_posterior_mode_of_each_contrast_the_way_its_counts_do(modes):
    base, least, most = (modes[v] for v in VARIANTS)
    for k in (0, 1):  # dose contrast (2002), sessions (2007)
        assert least[k] < base[k] < most[k], modes
    # 2007's denominators move its contrast more than 2002's (observed -0.38/+0.25 vs
    # -0.13/+0.24 on the log-odds scale): the sessions term moves at least as far down
    assert base[1] - least[1] > base[0] - least[0] > 0.02


@pytest.mark.slow
def test_variant_refits_move_the_within_evidence_answers():
    # the robustness refits themselves (MCMC, modest draws): about a minute
    from bayeskit.questions import answer_questions

    spec = load_spec("oud_abstinence")
    kw = _kwargs(spec) | {"draws": 1000, "tune": 1000, "chains": 2, "seed": 3}
    medians = {}
    for variant in VARIANTS:
        fit = bk.fit(_data(spec, variant), **kw)
        answers = answer_questions(fit, spec).xs("effect", level="quantity")
        within = answers[answers["evidence"] == "within the evidence"]
        medians[variant] = within["q50"].to_numpy()
    assert np.all(medians["least favourable"] < medians["most favourable"]), medians
    # the sessions answer (2007: the larger change in counts) moves down under least
    assert medians["least favourable"][1] < medians[None][1] - 0.1, medians
