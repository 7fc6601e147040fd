"""Effect sizes against metafor's escalc.

Reference values: tests/reference/escalc/*.csv, computed by metafor 3.8-1 (R 4.2.2) with
tests/reference/escalc/make_escalc_reference.R from the metadat data sets dat.bcg
(Colditz et al. 1994, JAMA 271:698), dat.nielweise2007 (Niel-Weise et al. 2007, J
Antimicrob Chemother 60:1145; zero cells and a double-zero study), dat.pritz1997 (Pritz
1997, single proportions incl. 10/10), dat.normand1999 (Normand 1999, Stat Med 18:321;
continuous) and dat.morris2008 (Morris 2008, Organ Res Methods 11:364; pre/post).
The brief asks for agreement to 1e-8; metafor's own formulas give ~1e-13.
"""

import numpy as np
import pandas as pd
import pytest

import bayeskit as bk
from bayeskit.errors import UserError
from bayeskit.measures import effect_sizes, resolve_measure, small_sample_correction
from tests.conftest import REFERENCE

ESCALC = REFERENCE / "escalc"
TOL = {"rtol": 1e-10, "atol": 1e-12}

CASES = {
    # case: (measure, keyword arguments built from the CSV's input columns)
    "bcg_OR": ("OR", {}),
    "bcg_RR": ("RR", {}),
    "bcg_RD": ("RD", {}),
    "nielweise2007_OR": ("OR", {}),
    "nielweise2007_RR": ("RR", {}),
    "nielweise2007_RD": ("RD", {}),
    "nielweise2007_OR_toall": ("OR", {"to": "all"}),
    "nielweise2007_OR_drop00": ("OR", {"drop00": True}),
    "pritz1997_PLO": ("PLO", {}),
    "normand_MD": ("MD", {}),
    "normand_SMD": ("SMD", {}),
    "morris_MC": ("MC", {}),
    "morris_SMCC": ("SMCC", {}),
    "morris_SMCR": ("SMCR", {}),
    "morris_SMCR_sdpre": ("SMCR", {}),
}
INPUTS = ("ai", "bi", "ci", "di", "xi", "ni", "m1i", "m2i", "sd1i", "sd2i", "n1i", "n2i", "ri")


def reference(case: str) -> pd.DataFrame:
    return pd.read_csv(ESCALC / f"{case}.csv")


@pytest.mark.parametrize("case", CASES)
def test_effect_sizes_match_metafor(case):
    measure, options = CASES[case]
    ref = reference(case)
    args = {c: ref[c].to_numpy() for c in INPUTS if c in ref}
    if measure in ("OR", "RR", "RD"):  # 2x2 tables: give the cells, as metafor does
        args.pop("n1i"), args.pop("n2i")
    yi, vi = effect_sizes(measure, **args, **options)
    np.testing.assert_allclose(yi, ref["yi"], **TOL, equal_nan=True)
    np.testing.assert_allclose(vi, ref["vi"], **TOL, equal_nan=True)


def test_references_cover_zero_cells_and_double_zero():
    ref = reference("nielweise2007_OR")
    cells = ref[["ai", "bi", "ci", "di"]]
    assert (cells == 0).any(axis=1).sum() >= 2
    assert ((ref["ai"] == 0) & (ref["ci"] == 0)).any()
    # a double-zero study is kept by default and dropped (NaN) with drop00
    assert reference("nielweise2007_OR_drop00")["yi"].isna().sum() == 1


def arm_table(ref: pd.DataFrame, binary: bool) -> pd.DataFrame:
    """An arm-level evidence table built from a two-group reference case."""
    rows = []
    for r in ref.itertuples():
        for arm, role, suffix in (("trt", "experimental", "1"), ("ctl", "control", "2")):
            row = {
                "study": r.study,
                "arm": arm,
                "outcome": "y",
                "role": role,
                "n": getattr(r, f"n{suffix}i"),
            }
            if binary:
                row["events"] = getattr(r, "ai" if suffix == "1" else "ci")
            else:
                row["mean"], row["sd"] = getattr(r, f"m{suffix}i"), getattr(r, f"sd{suffix}i")
            rows.append(row)
    return pd.DataFrame(rows)


@pytest.mark.parametrize(
    "case", ["bcg_OR", "nielweise2007_RR", "nielweise2007_RD", "normand_SMD", "normand_MD"]
)
def test_arm_level_tables_pair_arms_like_metafor(case, write_csv):
    measure = CASES[case][0]
    ref = reference(case)
    path = write_csv(arm_table(ref, binary=measure in ("OR", "RR", "RD")).to_csv(index=False))
    es = bk.effects(bk.load_evidence(path), measure)
    assert list(es.index) == list(ref["study"])
    np.testing.assert_allclose(es["yi"], ref["yi"], **TOL)
    np.testing.assert_allclose(es["vi"], ref["vi"], **TOL)
    np.testing.assert_allclose(es["sei"], np.sqrt(ref["vi"]), **TOL)


def test_single_arm_proportions_like_metafor(write_csv):
    ref = reference("pritz1997_PLO")
    table = pd.DataFrame(
        {
            "study": ref["study"],
            "arm": "a",
            "outcome": "y",
            "n": ref["ni"],
            "events": ref["xi"],
            "role": "single",
        }
    )
    es = bk.effects(bk.load_evidence(write_csv(table.to_csv(index=False))), "PLO")
    np.testing.assert_allclose(es["yi"], ref["yi"], **TOL)
    np.testing.assert_allclose(es["vi"], ref["vi"], **TOL)


@pytest.mark.parametrize(
    ("case", "measure"), [("morris_MC", "PREPOST"), ("morris_SMCR_sdpre", "SMCR")]
)
def test_pre_post_change_like_metafor(case, measure, write_csv):
    ref = reference(case)
    assert ref["ri"].nunique() > 1
    rows = []
    for r in ref.itertuples():
        sd_pre = r.sd1i if measure == "SMCR" else r.sd2i
        sd_post = r.sd2i if measure == "SMCR" else r.sd1i
        rows.append(
            {
                "study": r.study,
                "arm": "a",
                "outcome": "y",
                "n": r.ni,
                "mean": r.m1i,
                "sd": sd_post,
                "baseline_mean": r.m2i,
                "baseline_sd": sd_pre,
            }
        )
    ev = bk.load_evidence(write_csv(pd.DataFrame(rows).to_csv(index=False)))
    for r in ref.itertuples():  # the correlation differs by study: one study at a time
        es = bk.effects(ev[ev["study"] == r.study], measure, ri=r.ri)
        np.testing.assert_allclose(es["yi"].iloc[0], r.yi, **TOL)
        np.testing.assert_allclose(es["vi"].iloc[0], r.vi, **TOL)


def test_small_sample_correction_is_exact_not_approximate():
    # c(8) = Gamma(4) / (sqrt(4) Gamma(3.5)) = 0.9027033 (the approximation gives 0.9032258)
    assert small_sample_correction(8) == pytest.approx(6 / (2 * 3.3233509704478426), rel=1e-14)


def test_case_report_needs_an_assumed_sd(write_csv):
    text = (
        "study,arm,outcome,n,mean,baseline_mean,role,design\nC1,a,cows,1,2,18,single,case_report\n"
    )
    ev = bk.load_evidence(write_csv(text))
    with pytest.raises(UserError, match="sd_change"):
        bk.effects(ev, "PREPOST")
    es = bk.effects(ev, "PREPOST", sd_change=5.0)
    assert es.loc["C1", "yi"] == -16.0
    assert es.loc["C1", "vi"] == 25.0


def test_contrast_carries_both_arms_covariates():
    ev = bk.load_evidence(bk.data_path("oud_abstinence.csv"))
    es = bk.effects(ev, "OR", outcome="abstinence", timepoint="12 months")
    k2002 = es.loc["KRUPITSKY2002"]
    assert (k2002["dose_mg_per_kg"], k2002["control_dose_mg_per_kg"]) == (2.0, 0.2)
    assert k2002["systemic_dose_mg_per_kg"] == pytest.approx(2.0 * 0.93)
    # yi is the log odds ratio of the curated counts
    a, n1, c, n2 = k2002[["ai", "n1i", "ci", "n2i"]]
    assert k2002["yi"] == pytest.approx(np.log(a / (n1 - a)) - np.log(c / (n2 - c)))


def test_several_timepoints_must_be_chosen():
    ev = bk.load_evidence(bk.data_path("oud_abstinence.csv"))
    with pytest.raises(UserError, match="--timepoint"):
        bk.effects(ev, "OR", outcome="abstinence")


@pytest.mark.parametrize(
    "code, expected", [("or", "OR"), ("MC", "PREPOST"), ("hedges", "SMD"), (" smd ", "SMD")]
)
def test_measure_codes_are_forgiving(code, expected):
    assert resolve_measure(code).code == expected


def test_unknown_measure_is_a_user_error():
    with pytest.raises(UserError, match="OR, RR, RD"):
        resolve_measure("HR")


def test_study_level_table_passes_through():
    es = bk.effects(bk.load_evidence(bk.data_path("eight_schools.csv")))
    assert es["yi"].tolist() == [28, 8, -3, 7, -1, 1, 18, 12]
    np.testing.assert_allclose(es["vi"], es["sei"] ** 2)


# --- study-level tables honour outcome, timepoint and measure ------------------------------

MIXED = (
    "study,yi,sei,measure,outcome\nA,0.5,0.2,OR,abstinence\nB,0.7,0.3,OR,abstinence\n"
    "C,8,10,MD,craving\nD,12,9,MD,craving\n"
)


def test_study_level_outcome_filter_keeps_only_its_rows(write_csv):
    es = bk.effects(bk.load_evidence(write_csv(MIXED)), outcome="abstinence")
    assert es.index.tolist() == ["A", "B"]
    assert es["yi"].tolist() == [0.5, 0.7]
    assert es.attrs["measure"] == "OR"


def test_study_level_table_mixing_measures_is_refused_with_the_measures(write_csv):
    with pytest.raises(UserError, match=r"mixes measures \(MD, OR\).*--measure"):
        bk.effects(bk.load_evidence(write_csv(MIXED)))


def test_study_level_measure_filter_and_contradiction(write_csv):
    ev = bk.load_evidence(write_csv(MIXED))
    assert bk.effects(ev, "md").index.tolist() == ["C", "D"]  # metafor-style, any case
    assert bk.effects(ev, "logOR").index.tolist() == ["A", "B"]
    with pytest.raises(UserError, match=r"--measure SMD contradicts.*holds MD, OR"):
        bk.effects(ev, "SMD")
    with pytest.raises(UserError, match="unknown effect measure 'HR'"):
        bk.effects(ev, "HR")


def test_study_level_filter_that_matches_nothing_names_the_values_present(write_csv):
    ev = bk.load_evidence(write_csv(MIXED))
    with pytest.raises(
        UserError, match=r"no rows for outcome 'craving '; the table has 'abstinence', 'craving'"
    ):
        bk.effects(ev, outcome="craving ")
    with pytest.raises(UserError, match=r"--timepoint '12 months'.*no 'timepoint' column"):
        bk.effects(ev, outcome="abstinence", timepoint="12 months")


def test_study_level_timepoint_filter(write_csv):
    text = "study,yi,sei,timepoint\nA,1,1,6 months\nA,2,1,12 months\nB,3,1,12 months\n"
    es = bk.effects(bk.load_evidence(write_csv(text)), timepoint="12 months")
    assert es["yi"].to_dict() == {"A": 2.0, "B": 3.0}


def test_study_level_table_with_several_outcomes_needs_a_choice(write_csv):
    text = "study,yi,sei,outcome\nA,1,1,x\nB,2,1,y\n"
    with pytest.raises(UserError, match=r"several outcomes \(x, y\).*--outcome"):
        bk.effects(bk.load_evidence(write_csv(text)))


def test_measure_without_a_measure_column_labels_the_table(write_csv):
    es = bk.effects(bk.load_evidence(write_csv("study,yi,sei\nA,1,1\n")), "smd")
    assert es.attrs["measure"] == "SMD"


@pytest.mark.parametrize("yi", ["1e308", "-1e11", "2e10"])
def test_effect_sizes_beyond_double_precision_comfort_are_refused(write_csv, yi):
    ev = bk.load_evidence(write_csv(f"study,yi,sei\nA,{yi},1\nB,1,1\n"))
    with pytest.raises(UserError, match=r"study A: yi = .*within 1e\+10.*rescale"):
        bk.effects(ev)


def test_tiny_standard_errors_are_refused(write_csv):
    ev = bk.load_evidence(write_csv("study,yi,sei\nA,1,1e-12\nB,1,1\n"))
    with pytest.raises(UserError, match=r"study A: .*above 1e-10"):
        bk.effects(ev)


# --- one table of measure names -------------------------------------------------------------


def test_every_measure_has_its_words_in_one_table():
    from bayeskit.measures import MEASURE_LABELS, MEASURES, RATIO_MEASURES, ratio_parameter
    from bayeskit.report import run

    assert run.MEASURE_LABELS is MEASURE_LABELS and run.RATIO_MEASURES is RATIO_MEASURES
    assert MEASURE_LABELS == {
        "OR": "log odds ratio", "RR": "log risk ratio", "RD": "risk difference",
        "PLO": "log odds", "MD": "mean difference", "SMD": "standardised mean difference",
        "PREPOST": "mean change", "SMCR": "standardised mean change",
        "SMCC": "standardised mean change",
    }  # fmt: skip
    assert RATIO_MEASURES == {"OR": "odds ratio", "RR": "risk ratio"}
    assert [ratio_parameter(c) for c in MEASURES] == ["odds_ratio", "risk_ratio"] + [None] * 7
