"""Every command on an 80-column terminal: no cut numbers, every column shown, --quiet.

Each command runs once (module fixture, exact engine, tiny settings) at ``COLUMNS=80``;
the tests read what it printed. A cut number shows as ``…`` (rich's ellipsis); a column
squeezed out of the table is missing from the header.
"""

import io
import re

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from rich.console import Console
from typer.testing import CliRunner

from bayeskit.cli import app
from bayeskit.cli.terminal import cell, print_table
from tests.conftest import DATA, ROOT

WIDE = {"COLUMNS": "80"}


def invoke(args):
    result = CliRunner().invoke(app, args, env=WIDE)
    assert result.exit_code == 0, result.output
    return result


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    base = tmp_path_factory.mktemp("terminal")
    spec = base / "schools.toml"
    spec.write_text(
        (ROOT / "models" / "eight_schools.toml")
        .read_text(encoding="utf-8")
        .replace("../data/", f"{DATA.as_posix()}/")
        + '\n[sensitivity]\nheadline = ["mu", "tau"]\nleave_one_out = true\n'
        'priors = [{ tau = "HalfNormal(5)" }]\n',
        encoding="utf-8",
    )
    full = ["--pooling", "full", "--out", str(base / "full"), "--quiet"]
    invoke(["fit", str(spec), *full])
    out = {
        "validate": invoke(["validate", *map(str, sorted(DATA.glob("*.csv")))]),
        "effects": invoke(
            [
                "effects",
                str(DATA / "oud_abstinence.csv"),
                "--measure",
                "OR",
                "--timepoint",
                "12 months",
            ]
        ),  # fmt: skip
        "fit": invoke(["fit", str(spec), "--out", str(base / "partial")]),
        "fit-no-out": invoke(["fit", str(spec)]),
        "report": invoke(["report", str(base / "partial")]),
        "teach": invoke(["teach", "pooling"]),
        "compare": invoke(["compare", str(base / "partial"), str(base / "full")]),
        "sensitivity": invoke(
            ["sensitivity", str(spec), "--out", str(base / "sens"), "--scheduler", "none"]
        ),
        "batch": invoke(["batch", str(spec), "--out", str(base / "batch"), "--scheduler", "none"]),
        "sbc": invoke(
            [
                "sbc",
                "--method",
                "exact",
                "--replicates",
                "50",
                "--studies",
                "4",
                "--scheduler",
                "none",
                "--out",
                str(base / "sbc"),
            ]
        ),  # fmt: skip
        "explore": invoke(["teach", "explore", "--out", str(base / "explore.html")]),
    }
    return base, out


def test_every_command_fits_80_columns_without_cut_numbers(runs):
    _, out = runs
    for name, result in out.items():
        assert "…" not in result.output, f"{name} cut something:\n{result.output}"
        too_long = [line for line in result.output.splitlines() if len(line.rstrip()) > 80]
        assert not too_long, f"{name}: {too_long}"
        # third-party chatter stays off the terminal without --verbose
        assert "Sampling:" not in result.output and "http" not in result.output, name


def test_tables_show_every_column_and_whole_numbers(runs):
    base, out = runs
    summary = pd.read_csv(base / "partial" / "summary.csv", index_col=0)
    printed = out["fit"].stdout
    for column in ("mean", "sd", "q2.5", "q50", "q97.5"):
        assert re.search(rf"\b{re.escape(column)}\b", printed), column
    for parameter in ("mu", "tau", "theta[A]", "theta_new"):
        line = next(s for s in printed.splitlines() if s.split()[:1] == [parameter])
        expected = [cell(float(summary.loc[parameter, c])) for c in ("mean", "sd", "q2.5")]
        assert line.split()[1:4] == expected, line
    sens = out["sensitivity"].stdout
    for column in ("parameter", "mean", "q2.5", "q97.5", "shift_sd"):
        assert column in sens, column
    table = pd.read_csv(base / "sens" / "sensitivity.csv")
    for value in table["mean"]:
        assert cell(float(value)) in sens
    for scenario in table["scenario"].unique():
        assert scenario.split()[0] in sens, scenario
    comparison = out["compare"].stdout
    for column in ("rank", "elpd", "se", "elpd_diff", "dse", "p", "weight"):
        assert re.search(rf"\b{re.escape(column)}\b", comparison), column
    # eight studies: ArviZ flags N < 100, and compare says what that means
    said = " ".join(comparison.split())
    assert re.search(r"caveat: (full|partial): fewer than 100 observations", said), said
    teach = out["teach"].stdout
    for column in ("none_mean", "partial_mean", "full_mean", "shrinkage"):
        assert column in teach, column


def test_priors_are_named_beside_the_numbers(runs):
    _, out = runs
    assert "priors: mu ~ Normal(mu=0, sigma=5); tau ~ HalfCauchy(beta=5)" in out["fit"].stdout
    teach = " ".join(out["teach"].stdout.split())
    # the bundled eight schools take the spec's priors, so mu agrees with `fit`
    assert "Priors: mu ~ Normal(mu=0, sigma=5), tau ~ HalfCauchy(beta=5)" in teach
    assert "the pooled mean 4.4 " in teach


def test_fit_without_out_says_nothing_was_saved(runs):
    _, out = runs
    said = " ".join(out["fit-no-out"].stderr.split())
    assert "note: nothing was saved; give --out DIR" in said
    assert "nothing was saved" not in out["fit"].output


def test_quiet_prints_nothing_on_every_command(runs, tmp_path):
    base, _ = runs
    spec = base / "schools.toml"
    commands = [
        ["validate", str(DATA / "eight_schools.csv")],
        ["effects", str(DATA / "eight_schools.csv")],
        ["fit", str(spec)],
        ["report", str(base / "partial"), "--out", str(tmp_path / "report")],
        ["teach", "pooling"],
        ["compare", str(base / "partial"), str(base / "full")],
        ["sensitivity", str(spec), "--out", str(tmp_path / "sens"), "--scheduler", "none"],
        ["batch", str(spec), "--out", str(base / "batch"), "--scheduler", "none"],
        ["sbc", "--method", "exact", "--replicates", "50", "--studies", "4", "--scheduler",
         "none", "--out", str(tmp_path / "sbc")],
        ["teach", "explore", "--out", str(tmp_path / "explore.html")],
    ]  # fmt: skip
    for args in commands:
        result = CliRunner().invoke(app, [*args, "--quiet"], env=WIDE)
        assert result.exit_code == 0, result.output
        assert result.output == "", f"{args[0]} --quiet printed:\n{result.output}"


@settings(max_examples=25, deadline=None)
@given(
    values=st.lists(
        st.floats(allow_nan=True, allow_infinity=False, width=64), min_size=1, max_size=12
    ),
    columns=st.integers(1, 14),
    label=st.text(alphabet="abcdefgh[]_ -", min_size=1, max_size=60),
    width=st.integers(40, 120),
)
def test_generated_tables_keep_every_number_whole(values, columns, label, width):
    rng = np.random.default_rng(len(values))
    frame = pd.DataFrame(
        {f"col{j}_{'x' * int(rng.integers(0, 8))}": values for j in range(columns)},
        index=pd.Index([f"{label}{i}" for i in range(len(values))], name="parameter"),
    )
    console = Console(width=width, file=io.StringIO())
    print_table(frame, "generated", console=console)
    text = console.file.getvalue()
    assert "…" not in text
    assert all(len(line.rstrip()) <= width for line in text.splitlines())
    tokens = set(text.split())
    for value in values:
        if cell(value):
            assert cell(value) in tokens, (cell(value), text)
    for column in frame.columns:
        assert column in tokens, column
