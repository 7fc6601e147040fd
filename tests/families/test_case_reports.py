"""Case reports and case series are described beside the fit, not pooled, unless asked."""

import pytest

import bayeskit as bk
from bayeskit.errors import UserError
from bayeskit.families.exposure import ExposureOptions, ExposureResponse

OW = {"outcome": ["peak_map", "cows", "peak_hr"], "timepoint": None}
CASES = {"HAILOZIAN2021", "CHRISTIAN2023"}


@pytest.fixture(scope="module")
def evidence():
    return bk.load_evidence(bk.data_path("opioid_withdrawal.csv"))


def prepare(evidence, **options):
    opts = ExposureOptions(scale="smd", outcome_sd={"cows": 4.0}, **options)
    return ExposureResponse().prepare(evidence, opts, effect_options={"sd_change": 4.0}, **OW)


def test_case_reports_do_not_enter_the_likelihood_by_default(evidence):
    data = prepare(evidence)
    assert data.study == ["JOVAISA2006"]
    assert set(data.contrasts["study"]) | set(data.arms["study"]) == {"JOVAISA2006"}
    # they are kept for the report, as observed: COWS 18 -> 2 and 36 -> 18 over SD 4
    described = data.described.set_index("study")
    assert set(described.index) == CASES
    assert described.loc["HAILOZIAN2021", "yi"] == pytest.approx(-4.0)
    assert described.loc["CHRISTIAN2023", "yi"] == pytest.approx(-4.5)
    assert set(data.table["study"]) == {"JOVAISA2006"}


def test_pooling_case_reports_needs_a_stated_directional_bias(evidence):
    for stated in (None, {"cohort": 0.3}, {"case_report": 0.0}):
        with pytest.raises(UserError, match=r'case_reports = "pool".*case_report.*bias_mean'):
            prepare(evidence, case_reports="pool", bias_mean=stated)
    data = prepare(evidence, case_reports="pool", bias_mean={"case_report": 0.5})
    assert set(data.study) == {"JOVAISA2006"} | CASES
    assert data.described is None
    assert data.design == ["case_report"]


def test_data_of_case_reports_alone_are_refused_naming_the_option(evidence):
    cases = evidence[evidence["study"].isin(CASES)]
    with pytest.raises(UserError, match=r'case_reports = "describe".*case_reports = "pool"'):
        prepare(cases)


@pytest.mark.slow  # 30 s: the OW spec end to end; the likelihood test above stays default
def test_ow_spec_without_pooling_shows_the_cases_beside_the_prediction(tmp_path):
    from typer.testing import CliRunner

    from bayeskit.cli import app
    from tests.conftest import ROOT

    text = (ROOT / "models" / "ow_withdrawal.toml").read_text(encoding="utf-8")
    text = text.replace('case_reports = "pool"', 'case_reports = "describe"')
    text = text.replace('"../data/', f'"{(ROOT / "data").as_posix()}/')
    text = text.replace("draws = 2000", "draws = 300").replace("tune = 2000", "tune = 300")
    spec = tmp_path / "ow.toml"
    spec.write_text(text, encoding="utf-8")
    out = tmp_path / "run"
    result = CliRunner().invoke(app, ["fit", str(spec), "--out", str(out), "--quiet"])
    assert result.exit_code == 0, result.output
    import pandas as pd

    described = pd.read_csv(out / "described.csv", index_col="study")
    assert described["yi"].to_dict() == {"HAILOZIAN2021": -4.0, "CHRISTIAN2023": -4.5}
    assert (described["predicted_low"] < described["predicted_mean"]).all()
    assert (described["predicted_mean"] < described["predicted_high"]).all()
    # the likelihood holds Jovaisa alone: no case report in the data the model saw
    assert set(pd.read_csv(out / "data.csv")["study"]) == {"JOVAISA2006"}
    html = (out / "report.html").read_text(encoding="utf-8")
    assert '<section id="described">' in html and "Case reports beside the model" in html
    # the 4-month abstinence result and the harms rows are shown too
    report = (out / "report.md").read_text(encoding="utf-8")
    assert "JOVAISA2006" in report.split("## Reported in words")[1]
    assert "LALANNE2016" in report.split("Adverse events as reported")[1]
