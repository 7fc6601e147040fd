"""The robustness table: every alternative changes the model, and the robust/fragile flag
is computed from the table's rows (bayeskit.robustness)."""

from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest

from bayeskit.families import get_family
from bayeskit.fitting import _setup
from bayeskit.robustness import (
    AS_FITTED,
    Alternative,
    alternative_data,
    alternatives,
    directions,
    headline_table,
    robust_flags,
)
from bayeskit.spec import load_spec

SPECS = ["oud_abstinence", "ow_withdrawal", "sud_abstinence"]


def _build(spec, alt: Alternative | None = None):
    """The spec's model (and a fit-like record of its settings and data), unsampled."""
    kw = spec.fit_kwargs() | (alt.data if alt else {})
    options = dict(kw["model_options"]) | (alt.model_options if alt else {})
    priors = dict(kw["priors"]) | (alt.priors if alt else {})
    fam = get_family("exposure-response")
    data = alternative_data(spec, alt) if alt else spec.data_files()
    prepared, chosen, resolved = _setup(
        fam, data, priors, options, kw["outcome"], kw["timepoint"],
        kw["effect_options"], (),
    )  # fmt: skip
    model = fam.build(prepared, chosen, resolved)
    return model, SimpleNamespace(settings=prepared.settings, data=prepared)


def _differs(base, other) -> bool:
    """Whether two PyMC models differ: other parameters or shapes, or another log density."""
    p0, p1 = base.initial_point(), other.initial_point()
    if {k: np.shape(v) for k, v in p0.items()} != {k: np.shape(v) for k, v in p1.items()}:
        return True
    return not np.isclose(base.compile_logp()(p0), other.compile_logp()(p0), rtol=1e-9)


@pytest.mark.parametrize(
    "name",
    # about 10 s each (a model built and its log density compiled per alternative)
    ["oud_abstinence", *(pytest.param(n, marks=pytest.mark.slow) for n in SPECS[1:])],
)
def test_every_alternative_changes_the_model(name):
    spec = load_spec(name)
    base, fit = _build(spec)
    listed = alternatives(fit, spec)
    # the knobs the issue names, where these data let them move the model
    kinds = {a.assumption for a in listed}
    assert {"dose-response shape", "reference exposure", "tau prior"} <= kinds, name
    if name in ("oud_abstinence", "sud_abstinence"):  # arms, and sessions that differ
        assert {"sessions", "baseline model"} <= kinds, name
    if name in ("ow_withdrawal", "sud_abstinence"):  # non-randomised designs in the data
        assert {"bias prior means", "non-randomised evidence"} <= kinds, name
    if name == "sud_abstinence":
        assert "borrowing" in kinds
    if name in ("oud_abstinence", "sud_abstinence"):  # Krupitsky 2002's derived counts
        assert "derived counts" in kinds, name
    for alt in listed:
        other, _ = _build(spec, alt)
        assert _differs(base, other), (name, alt)


def test_a_knob_that_moves_nothing_is_not_listed():
    # one session everywhere: sessions as a term or a multiplier are the same model;
    # randomised trials only: no bias means, nothing to leave out; contrasts only: no
    # baseline model; the tau prior as written is not tried again
    table = pd.DataFrame({"design": ["rct", "rct"], "sessions": [1, 1]})
    fit = SimpleNamespace(
        data=SimpleNamespace(table=table, arms=table.iloc[:0], indication=["OW"]),
        settings={"form": "emax", "sessions": "term", "borrowing": True},
    )
    spec = SimpleNamespace(priors={"tau": "HalfNormal(1)"})
    listed = [(a.assumption, a.label) for a in alternatives(fit, spec)]
    assert listed == [("dose-response shape", "log-linear"), ("tau prior", "HalfNormal(0.25)")]


def _table(holds: dict[str, list[bool]]) -> pd.DataFrame:
    rows = []
    for question, flags in holds.items():
        for k, h in enumerate(flags):
            rows.append(
                {
                    "question": question,
                    "quantity": "effect",
                    "assumption": AS_FITTED if k == 0 else f"alt {k}",
                    "holds": h,
                }
            )
    return pd.DataFrame(rows)


@pytest.mark.parametrize(
    ("holds", "flag"),
    [
        ([True, True, True], "robust"),
        ([True, True, False], "fragile"),
        ([True, False, True], "fragile"),
        ([True, False], "fragile"),
        ([True], "not checked"),
        ([True] * 12, "robust"),
    ],
)
def test_robust_flag_is_computed_from_the_rows(holds, flag):
    assert robust_flags(_table({"q": holds}))[("q", "effect")] == flag


def test_robust_flag_reads_a_csv_round_trip(tmp_path):
    table = _table({"a": [True, True], "b": [True, False]})
    table.to_csv(tmp_path / "robustness.csv", index=False)
    again = pd.read_csv(tmp_path / "robustness.csv")
    assert robust_flags(again).to_dict() == {("a", "effect"): "robust", ("b", "effect"): "fragile"}


def test_direction_flips_where_the_probability_of_benefit_crosses_one_half():
    rows = pd.DataFrame(
        {
            "question": ["up"] * 3 + ["down"] * 3,
            "quantity": "effect",
            "assumption": [AS_FITTED, "x", "y"] * 2,
            "alternative": [AS_FITTED, "x", "y"] * 2,
            "prob_benefit": [0.97, 0.51, 0.49, 0.2, 0.4, 0.6],
        }
    )
    marked = directions(rows)
    assert marked["holds"].tolist() == [True, True, False, True, True, False]
    assert robust_flags(marked).tolist() == ["fragile", "fragile"]


def test_headline_takes_the_difference_of_a_binary_answer_and_the_flag():
    answers = pd.DataFrame(
        {
            "question": ["r vs no ketamine (extrapolated)"] * 2 + ["s vs t (within the evidence)"],
            "quantity": ["effect", "difference", "effect"],
            "mean": [0.6, 0.12, -0.3],
            "q2.5": [-0.2, -0.03, -0.9],
            "q50": [0.55, 0.11, -0.31],
            "q97.5": [1.3, 0.25, 0.2],
            "prob": [0.9, 0.55, 0.15],
            "regimen": ["r", "r", "s"],
            "comparator": ["no ketamine", "no ketamine", "t"],
            "evidence": ["extrapolated"] * 2 + ["within the evidence"],
        }
    ).set_index(["question", "quantity"])
    rob = _table({"r vs no ketamine (extrapolated)": [True, False]})
    rob["quantity"] = "difference"
    head = headline_table(answers, rob)
    assert head.index.tolist() == ["r vs no ketamine", "s vs t"]
    r, s = head.loc["r vs no ketamine"], head.loc["s vs t"]
    assert (r["quantity"], r["estimate"], r["q2.5"], r["q97.5"]) == (
        "difference",
        0.11,
        -0.03,
        0.25,
    )
    assert r["p_benefit"] == 0.9 and r["robustness"] == "fragile"
    assert (s["quantity"], s["estimate"], s["p_benefit"]) == ("effect", -0.31, 0.15)
    assert s["robustness"] == "not checked" and s["evidence"] == "within the evidence"


def test_extra_alternatives_hook_adds_rows(monkeypatch):
    # the hook for derived-count variants and informative-prior borrowing
    import bayeskit.robustness as R

    extra = Alternative("derived counts", "completers", {"designs": ["rct"]})
    monkeypatch.setattr(R, "EXTRA_ALTERNATIVES", [lambda fit, spec: [extra]])
    table = pd.DataFrame({"design": ["rct"], "sessions": [1]})
    fit = SimpleNamespace(
        data=SimpleNamespace(table=table, arms=table.iloc[:0], indication=["OW"]),
        settings={"form": "emax", "sessions": "ignore"},
    )
    listed = alternatives(fit, SimpleNamespace(priors={"tau": "HalfNormal(1)"}))
    assert listed[-1] is extra and len(listed) == 3
