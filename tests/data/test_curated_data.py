"""Invariants of the curated evidence tables in data/.

These tests use only pandas, numpy and the standard library (not bayeskit), so
they check the data files independently of the package's own validator.
"""

from __future__ import annotations

import csv
import math
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

DATA = Path(__file__).resolve().parents[2] / "data"

ARM_COLS = [
    "study",
    "arm",
    "outcome",
    "n",
    "events",
    "mean",
    "sd",
    "role",
    "design",
    "indication",
    "treatment",
    "dose_mg_per_kg",
    "route",
    "sessions",
    "timepoint",
    "followup_months",
    "baseline_mean",
    "baseline_sd",
    "unit",
    "source",
    "derived",
    "notes",
    "group",
    "n_low",
    "n_high",
    "events_low",
    "events_high",
]
STUDY_COLS = [
    "study",
    "yi",
    "sei",
    "measure",
    "outcome",
    "design",
    "indication",
    "treatment",
    "dose_mg_per_kg",
    "route",
    "sessions",
    "timepoint",
    "followup_months",
    "source",
    "derived",
    "notes",
]
ROUTE_COLS = ["route", "bioavailability", "bioavailability_sd", "source", "derived", "notes"]

ARM_FILES = ["oud_abstinence.csv", "opioid_withdrawal.csv", "sud_abstinence.csv"]
STUDY_FILES = ["sud_contrasts.csv", "eight_schools.csv"]
DESCRIPTIVE_FILES = ["narrative.csv", "harms.csv"]
ALL_FILES = ARM_FILES + STUDY_FILES + ["routes.csv"] + DESCRIPTIVE_FILES

ROLES = {"experimental", "control", "single"}
DESIGNS = {"rct", "crossover_rct", "cohort", "case_series", "case_report"}
INDICATIONS = {"OUD", "OW", "AUD", "CUD"}
ROUTES = {"iv", "im", "sl", "oral", "intranasal"}
NUMERIC_ARM = [
    "n",
    "events",
    "mean",
    "sd",
    "dose_mg_per_kg",
    "sessions",
    "followup_months",
    "baseline_mean",
    "baseline_sd",
    "n_low",
    "n_high",
    "events_low",
    "events_high",
]
NUMERIC_STUDY = ["yi", "sei", "dose_mg_per_kg", "sessions", "followup_months"]
Z975 = 1.959964


def raw(name: str) -> pd.DataFrame:
    """All cells as strings, empty cells as ''."""
    return pd.read_csv(DATA / name, dtype=str, keep_default_na=False, encoding="utf-8")


def num(name: str) -> pd.DataFrame:
    return pd.read_csv(DATA / name, encoding="utf-8")


def arm_rows() -> pd.DataFrame:
    return pd.concat([num(f).assign(_file=f) for f in ARM_FILES], ignore_index=True)


def is_int_string(s: str) -> bool:
    return re.fullmatch(r"-?\d+", s) is not None


# --------------------------------------------------------------------------- structure


@pytest.mark.parametrize("name", ALL_FILES)
def test_file_exists_and_is_utf8(name):
    path = DATA / name
    assert path.is_file(), path
    path.read_bytes().decode("utf-8")  # raises if not UTF-8


@pytest.mark.parametrize("name", ARM_FILES)
def test_arm_level_columns_in_canonical_order(name):
    cols = list(raw(name).columns)
    for required in ["study", "arm", "outcome", "n"]:
        assert required in cols
    # every column is a known one and they appear in the canonical relative order
    assert all(c in ARM_COLS for c in cols), cols
    assert cols == [c for c in ARM_COLS if c in cols]


@pytest.mark.parametrize("name", STUDY_FILES)
def test_study_level_columns_in_canonical_order(name):
    cols = list(raw(name).columns)
    for required in ["study", "yi", "sei"]:
        assert required in cols
    assert all(c in STUDY_COLS for c in cols), cols
    assert cols == [c for c in STUDY_COLS if c in cols]


def test_routes_columns():
    assert list(raw("routes.csv").columns) == ROUTE_COLS


@pytest.mark.parametrize("name", ALL_FILES)
def test_every_row_has_a_source(name):
    df = raw(name)
    assert len(df) > 0
    empty = df[df["source"].str.strip() == ""]
    assert empty.empty, f"rows without source in {name}: {empty.index.tolist()}"


@pytest.mark.parametrize("name", ALL_FILES)
def test_no_raw_newlines_in_any_field(name):
    with open(DATA / name, newline="", encoding="utf-8") as fh:
        rows = list(csv.reader(fh))
    header, body = rows[0], rows[1:]
    for i, row in enumerate(body, start=2):
        assert len(row) == len(header), f"{name} line {i}: {len(row)} fields"
        for col, cell in zip(header, row, strict=True):
            assert "\n" not in cell and "\r" not in cell, f"{name} line {i} column {col}"


@pytest.mark.parametrize("name", ARM_FILES + STUDY_FILES)
def test_numeric_columns_are_plain_numbers(name):
    df = raw(name)
    cols = NUMERIC_ARM if name in ARM_FILES else NUMERIC_STUDY
    for col in cols:
        if col not in df:
            continue
        for cell in df[col]:
            if cell == "":
                continue
            assert re.fullmatch(r"-?\d+(\.\d+)?", cell), f"{name}.{col}: {cell!r}"


# --------------------------------------------------------------------------- arm-level rules


@pytest.mark.parametrize("name", ARM_FILES)
def test_required_fields_and_integer_counts(name):
    df = raw(name)
    for col in [
        "study",
        "arm",
        "outcome",
        "n",
        "role",
        "design",
        "indication",
        "treatment",
        "source",
    ]:
        assert (df[col].str.strip() != "").all(), f"{name}: empty {col}"
    assert df["outcome"].str.fullmatch(r"[a-z][a-z0-9_]*").all(), "outcome must be snake_case"
    assert df["n"].map(is_int_string).all(), "n must be an integer"
    assert (df["n"].astype(int) >= 1).all()
    ev = df["events"][df["events"] != ""]
    assert ev.map(is_int_string).all(), "events must be integers"
    sess = df["sessions"][df["sessions"] != ""]
    assert sess.map(is_int_string).all(), "sessions must be integers"
    assert (sess.astype(int) >= 0).all()


@pytest.mark.parametrize("name", ARM_FILES)
def test_controlled_vocabularies(name):
    df = raw(name)
    assert set(df["role"]) <= ROLES
    assert set(df["design"]) <= DESIGNS
    assert set(df["indication"]) <= INDICATIONS
    assert set(df["route"]) - {""} <= ROUTES


@pytest.mark.parametrize("name", ARM_FILES)
def test_binary_and_continuous_rows_are_well_formed(name):
    df = num(name)
    for _, r in df.iterrows():
        has_events = not pd.isna(r["events"])
        has_mean = not pd.isna(r["mean"])
        assert has_events != has_mean, f"{r['study']}/{r['arm']}/{r['outcome']}: events xor mean"
        if has_events:
            assert 0 <= r["events"] <= r["n"]
            assert float(r["events"]).is_integer()
        else:
            if r["n"] == 1:
                # single-patient case report: no SD, pre value in baseline_mean
                assert pd.isna(r["sd"])
                assert not pd.isna(r["baseline_mean"])
            else:
                assert r["sd"] > 0


@pytest.mark.parametrize("name", ARM_FILES)
def test_doses_followup_and_routes(name):
    df = num(name)
    dose = df["dose_mg_per_kg"].dropna()
    assert (dose >= 0).all()
    assert (df["followup_months"].dropna() >= 0).all()
    # a row with a route but no dose must explain the missing dose in notes
    for _, r in df[df["dose_mg_per_kg"].isna()].iterrows():
        assert "dose" in str(r["notes"]).lower()
    # ketamine arms have a route; placebo / usual care have zero ketamine dose and sessions
    for _, r in df.iterrows():
        if r["treatment"] == "ketamine":
            assert isinstance(r["route"], str) and r["route"] in ROUTES
            assert r["sessions"] >= 1
        if r["treatment"] in {"placebo", "usual_care"}:
            assert r["dose_mg_per_kg"] == 0
            assert r["sessions"] == 0
        if r["treatment"] == "usual_care":
            assert pd.isna(r["route"])


def test_each_comparison_has_exactly_one_control():
    df = arm_rows()
    keys = ["study", "outcome", "timepoint"]
    for key, g in df.groupby(keys, dropna=False):
        roles = list(g["role"])
        if len(g) == 1:
            assert roles == ["single"], f"{key}: a lone arm must be role 'single'"
        else:
            assert "single" not in roles, f"{key}: 'single' in a multi-arm comparison"
            assert roles.count("control") == 1, f"{key}: {roles}"
            assert g["arm"].is_unique, f"{key}: duplicate arm ids"


def test_rows_are_unique_per_arm_outcome_timepoint():
    df = arm_rows()
    dup = df.duplicated(["study", "arm", "outcome", "timepoint"], keep=False)
    assert not dup.any(), df[dup][["study", "arm", "outcome", "timepoint"]]


def test_oud_rows_are_not_repeated_in_sud_file():
    oud = set(num("oud_abstinence.csv")["study"])
    sud = set(num("sud_abstinence.csv")["study"])
    assert not oud & sud
    assert set(num("oud_abstinence.csv")["indication"]) == {"OUD"}
    assert "OUD" not in set(num("sud_abstinence.csv")["indication"])


# --------------------------------------------------------------------------- derived numbers

DERIVED_COUNT = re.compile(r"events = round\(([\d.]+) x (\d+)\) = (\d+) from a reported ([\d.]+)%")


def test_derived_counts_reproduce_reported_percentages():
    df = arm_rows()
    checked = 0
    for _, r in df.iterrows():
        m = DERIVED_COUNT.search(str(r["derived"]))
        if not m:
            continue
        frac, denom, count, pct = float(m[1]), int(m[2]), int(m[3]), float(m[4])
        assert math.isclose(frac * 100, pct)
        assert denom == r["n"] and count == r["events"]
        assert count == int(np.floor(frac * denom + 0.5))  # round half up
        # the count is the best whole-number fit: within half a count of the percentage
        assert abs(count / denom - pct / 100) <= 0.5 / denom + 1e-12
        checked += 1
    assert checked >= 4


def test_krupitsky2002_counts_from_seed_percentages():
    df = num("oud_abstinence.csv").query("study == 'KRUPITSKY2002'")
    reported = {
        ("high_dose", 12): 24,
        ("low_dose", 12): 6,
        ("high_dose", 24): 17,
        ("low_dose", 24): 2,
    }
    assert len(df) == 4
    for _, r in df.iterrows():
        pct = reported[(r["arm"], int(r["followup_months"]))]
        assert r["n"] == 35
        assert abs(r["events"] / r["n"] - pct / 100) <= 0.5 / 35
        assert f"{pct}%" in r["derived"]
        assert r["notes"]  # inconsistencies must be documented
    ctrl = df[df["role"] == "control"]
    assert set(ctrl["arm"]) == {"low_dose"}
    assert (ctrl["dose_mg_per_kg"] == 0.2).all()
    assert (df[df["arm"] == "high_dose"]["dose_mg_per_kg"] == 2.0).all()
    assert set(df["route"]) == {"im"}


def test_krupitsky2002_ranges_are_the_counts_the_percentages_allow():
    # data/README.md: events over 35 either side of the percentage, and denominators from
    # the smallest at which the entered count gives the percentage up to the 35 randomised
    df = num("oud_abstinence.csv").query("study == 'KRUPITSKY2002'")
    r = df.set_index(["arm", "followup_months"])

    def pct(k, d):
        return int(np.floor(100 * k / d + 0.5))

    hi = r.loc[("high_dose", 12)]
    assert (hi["events_low"], hi["events_high"]) == (8, 9) and 8 < 0.24 * 35 < 9
    assert pct(8, 35) != 24 and pct(9, 35) != 24  # 24% of 35 is no whole count
    assert [d for d in range(1, 36) if pct(8, d) == 24] == [33, 34] and hi["n_low"] == 33
    lo = r.loc[("low_dose", 12)]
    assert [d for d in range(1, 36) if pct(2, d) == 6] == list(range(31, 36))
    assert lo["n_low"] == 31 and np.isnan(lo["events_low"])
    lo24 = r.loc[("low_dose", 24)]
    assert (lo24["events_low"], lo24["events_high"]) == (0, 1)
    assert not [d for d in range(1, 36) if pct(1, d) == 2]  # 2% fits no denominator <= 35
    assert np.isnan(r.loc[("high_dose", 24), "n_low"])  # 6/35 = 17.1% fits as entered
    for _, row in df.iterrows():  # each range holds its value and all its corners are counts
        n_low = row["n_low"] if not np.isnan(row["n_low"]) else row["n"]
        e_high = row["events_high"] if not np.isnan(row["events_high"]) else row["events"]
        assert n_low <= row["n"] and e_high <= n_low


def test_krupitsky2007_arms():
    df = num("oud_abstinence.csv").query("study == 'KRUPITSKY2007'").set_index("arm")
    assert (df.loc["three_sessions", ["events", "n", "sessions"]] == [13, 26, 3]).all()
    assert (df.loc["one_session", ["events", "n", "sessions"]] == [6, 27, 1]).all()
    assert df.loc["one_session", "role"] == "control"
    assert df.loc["three_sessions", "role"] == "experimental"
    assert (df["dose_mg_per_kg"] == 2.0).all()
    assert round(13 / 26 * 100, 1) == 50.0 and round(6 / 27 * 100, 1) == 22.2
    # events and n are stated; only the upper denominators (intention to treat) are derived
    assert df["derived"].str.startswith("n_high = n + 6").all()
    assert (df["n_low"] == df["n"]).all() and (df["n_high"] == df["n"] + 6).all()
    assert df["n_high"].sum() - 6 == 59  # one arm's bound at a time: 59 randomised


def test_krupitsky1997_arms():
    df = num("sud_abstinence.csv").query("study == 'KRUPITSKY1997'").set_index("arm")
    assert (df.loc["kpt", ["events", "n"]] == [73, 111]).all()
    assert (df.loc["usual_care", ["events", "n"]] == [24, 100]).all()
    assert df.loc["usual_care", "role"] == "control"
    assert round(73 / 111 * 100, 1) == 65.8
    assert set(df["design"]) == {"cohort"}


def test_jovaisa_values_and_flagged_arm_mapping():
    df = num("opioid_withdrawal.csv").query("study == 'JOVAISA2006'")
    got = {(r["outcome"], r["arm"]): (r["n"], r["mean"], r["sd"]) for _, r in df.iterrows()}
    assert got == {
        ("peak_map", "ketamine"): (22, 79.4, 10.8),
        ("peak_map", "placebo"): (28, 96.6, 13.8),
        ("peak_hr", "ketamine"): (22, 75.6, 13.0),
        ("peak_hr", "placebo"): (28, 95.5, 12.8),
    }
    assert df["n"].sum() == 2 * 50  # 50 analysed per outcome
    assert df["derived"].str.contains("list order").all()


def test_case_reports_have_pre_post_without_sd():
    df = num("opioid_withdrawal.csv")
    cows = df[df["outcome"] == "cows"].set_index("study")
    assert (cows.loc["HAILOZIAN2021", ["baseline_mean", "mean"]] == [18, 2]).all()
    assert (cows.loc["CHRISTIAN2023", ["baseline_mean", "mean"]] == [36, 18]).all()
    assert "lower bound" in cows.loc["CHRISTIAN2023", "derived"]
    assert cows["sd"].isna().all() and (cows["n"] == 1).all()


def test_grande_uses_published_denominator():
    df = num("opioid_withdrawal.csv").query(
        "study == 'GRANDE2024' and outcome == 'buprenorphine_initiation_completed'"
    )
    assert len(df) == 1
    r = df.iloc[0]
    assert (r["events"], r["n"]) == (16, 37)
    assert round(16 / 37 * 100) == 43
    assert "16/24" in r["notes"]
    assert "70 kg" in r["derived"]


def test_contrast_rows():
    df = num("sud_contrasts.csv")
    assert (df["sei"] > 0).all()
    assert set(df["measure"]) <= {"OR", "RR", "HR", "MD", "SMD", "RD"}
    orow = df[(df["study"] == "GRABSKI2022") & (df["measure"] == "OR")].iloc[0]
    assert orow["yi"] == pytest.approx(-math.log(0.80), abs=1e-4)
    assert orow["sei"] == pytest.approx((math.log(2.10) - math.log(0.31)) / (2 * Z975), abs=1e-4)
    md = df[(df["study"] == "GRABSKI2022") & (df["measure"] == "MD")].iloc[0]
    assert md["yi"] == pytest.approx(10.1)
    assert md["sei"] == pytest.approx((19.0 - 1.1) / (2 * Z975), abs=1e-3)
    # one contrast per study x outcome (no double counting of shared arms)
    assert not df.duplicated(["study", "outcome", "timepoint"]).any()
    assert df["derived"].str.len().gt(0).all()


# --------------------------------------------------------------------------- routes


def test_routes_bioavailability():
    df = num("routes.csv").set_index("route")
    assert set(df.index) == ROUTES
    assert ((df["bioavailability"] > 0) & (df["bioavailability"] <= 1)).all()
    assert (df["bioavailability_sd"] >= 0).all()
    assert df.loc["iv", "bioavailability"] == 1.0
    assert df.loc["iv", "bioavailability_sd"] == 0.0
    # the scoping review's figures (seed 000)
    assert df.loc["im", "bioavailability"] == 0.93
    assert df.loc["sl", "bioavailability"] == 0.32
    assert df.loc["oral", "bioavailability"] == 0.17
    assert df.loc["intranasal", "bioavailability"] == pytest.approx(0.45)
    assert "not from the scoping review" in df.loc["intranasal", "notes"].lower()
    # a Beta prior with this mean and sd exists: var < m (1 - m)
    non_iv = df.drop(index="iv")
    m, s = non_iv["bioavailability"], non_iv["bioavailability_sd"]
    assert (s > 0).all()
    assert (s**2 < m * (1 - m)).all()
    # first-pass ordering stated by the review
    assert (
        df.loc["iv", "bioavailability"]
        > df.loc["im", "bioavailability"]
        > df.loc["sl", "bioavailability"]
        > df.loc["oral", "bioavailability"]
    )
    assert df["derived"].str.len().gt(0).all()


# --------------------------------------------------------------------------- eight schools


def test_eight_schools_match_bda3_table_5_2():
    df = num("eight_schools.csv")
    assert list(df["study"]) == list("ABCDEFGH")
    assert list(df["yi"]) == [28, 8, -3, 7, -1, 1, 18, 12]
    assert list(df["sei"]) == [15, 10, 16, 11, 9, 11, 10, 18]
    assert set(df["measure"]) == {"MD"}
    assert set(df["outcome"]) == {"sat_coaching"}
    assert df["source"].str.contains("Table 5.2").all()


# --------------------------------------------------------------------------- README


def test_readme_documents_every_study_and_file():
    text = (DATA / "README.md").read_text(encoding="utf-8")
    for name in ALL_FILES:
        assert name in text, name
    studies = set()
    for name in ARM_FILES + ["sud_contrasts.csv"] + DESCRIPTIVE_FILES:
        studies |= set(num(name)["study"])
    for s in studies:
        assert s in text, s
    for excluded in ["Freye", "Casey", "Kolp", "Wong", "Dakwar"]:
        assert excluded in text, excluded


# --------------------------------------------------------------------------- research groups


def test_krupitsky_studies_share_one_research_group():
    rows = arm_rows()
    krupitsky = rows[rows["study"].str.startswith("KRUPITSKY")]
    assert set(krupitsky["study"]) == {"KRUPITSKY1997", "KRUPITSKY2002", "KRUPITSKY2007"}
    assert set(krupitsky["group"]) == {"KRUPITSKY"}
    # no other study is put in a group the sources do not name
    others = rows[~rows["study"].str.startswith("KRUPITSKY")]
    assert others.get("group", pd.Series(dtype=object)).isna().all()


# --------------------------------------------------------------------------- descriptive tables

DESCRIPTIVE_COLS = {
    "narrative.csv": [
        "study", "indication", "design", "outcome", "timepoint", "followup_months",
        "direction", "reported", "source", "derived", "notes", "group",
    ],
    "harms.csv": [
        "study", "scope", "indication", "design", "arm", "dose_mg_per_kg", "route", "event",
        "n", "events", "reported", "source", "derived", "notes", "group",
    ],
}  # fmt: skip
SEED_FILES = {
    "000_a54238053c20ef5a.txt",
    "001_f3c6ab83c1d5fee0.txt",
    "002_39080a6c03824a64.txt",
    "003_7650761ae93147ea.txt",
    "004_1bbafb4725cce9f0.txt",
}


@pytest.mark.parametrize("name", DESCRIPTIVE_FILES)
def test_descriptive_tables_columns_and_vocabularies(name):
    df = raw(name)
    assert list(df.columns) == DESCRIPTIVE_COLS[name]
    assert (df["reported"].str.strip() != "").all()
    assert set(df["indication"]) <= INDICATIONS
    assert set(df["design"]) - {""} <= DESIGNS
    for col in ("n", "events", "followup_months", "dose_mg_per_kg"):
        for cell in df.get(col, pd.Series(dtype=str)):
            assert cell == "" or re.fullmatch(r"\d+(\.\d+)?", cell), (name, col, cell)
    if "events" in df:
        both = df[(df["n"] != "") & (df["events"] != "")]
        assert (both["events"].astype(int) <= both["n"].astype(int)).all()
        # a count is never invented: every filled count is explained in 'derived'
        filled = df[df["events"] != ""]
        assert (filled["derived"].str.contains("events = ")).all()


@pytest.mark.parametrize("name", DESCRIPTIVE_FILES)
def test_descriptive_rows_cite_a_seed_by_file_name(name):
    for source in raw(name)["source"]:
        assert any(seed in source for seed in SEED_FILES), source


def _seed_dir():
    for base in (DATA.parent / "shared" / "seeds", DATA.parents[1] / "shared" / "seeds"):
        if base.is_dir():
            return base
    return None


def _quotes_from_seeds(source: str) -> list[tuple[str, str]]:
    """(seed file, quoted phrase) for every phrase a source quotes from a seed file."""
    out = []
    for part in re.split(r"; (?=\d{3}_|study abstract)", source):
        seed = next((s for s in SEED_FILES if part.startswith(s)), None)
        if seed is None:
            continue
        out += [(seed, q) for q in re.findall(r"'(.+?)'(?: and |$|, |;)", part)]
    return out


@pytest.mark.parametrize("name", DESCRIPTIVE_FILES)
def test_descriptive_quotes_are_verbatim_in_the_seeds(name):
    seeds = _seed_dir()
    if seeds is None:
        pytest.skip("shared/seeds is not beside this checkout")
    quotes = [q for src in raw(name)["source"] for q in _quotes_from_seeds(src)]
    assert len(quotes) >= len(raw(name))
    for seed, quote in quotes:
        text = " ".join((seeds / seed).read_text(encoding="utf-8").split())
        for piece in quote.split(" ... "):
            assert " ".join(piece.split()) in text, (seed, piece)


def test_jovaisa_four_month_result_is_narrative_not_a_number():
    df = raw("narrative.csv").set_index(["study", "outcome"])
    row = df.loc[("JOVAISA2006", "abstinence")]
    assert row["timepoint"] == "4 months" and row["followup_months"] == "4"
    assert row["direction"] == "no_difference"
    assert (
        "no significant difference in length of abstinence from opioids at 4 months"
        in (row["source"])
    )
    # no arm-level file carries a 4-month Jovaisa row the model could read
    ow = num("opioid_withdrawal.csv")
    assert not ((ow["study"] == "JOVAISA2006") & (ow["followup_months"] == 4)).any()


def test_harms_rows_as_reported():
    df = num("harms.csv").set_index(["study", "event", "indication"])
    dakwar = df.loc[("DAKWAR2014", "serious_adverse_events", "CUD")]
    assert (dakwar["n"], dakwar["events"]) == (8, 0)
    wong = df.loc[("WONG2015", "alcohol_withdrawal_complications", "AUD")]
    assert (wong["n"], wong["events"]) == (23, 0)
    lalanne = df.loc[("LALANNE2016", "side_effects", "OW")]
    assert lalanne["reported"] == "minimal side effects" and np.isnan(lalanne["events"])
    # review-level statements name both indications the review covers
    for review, event in [
        ("REVIEW000", "hallucinogen_use_disorder"),
        ("REVIEW002", "serious_side_effects"),
    ]:
        assert {"OUD", "OW"} <= {i for s, e, i in df.index if (s, e) == (review, event)}
    assert set(num("harms.csv")["scope"]) == {"study", "review"}
