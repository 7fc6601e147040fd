"""Hostile inputs: generated malformed evidence tables and specs must end in a clear
message (exit code 2) or a valid result, never a traceback and never a partial output."""

import csv
import io
import string

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from bayeskit.cli import app
from bayeskit.errors import UserError
from bayeskit.evidence import check_table
from bayeskit.spec import spec_from_dict

runner = CliRunner()
COLUMNS = [
    "study",
    "arm",
    "outcome",
    "n",
    "events",
    "mean",
    "sd",
    "role",
    "design",
    "route",
    "dose_mg_per_kg",
    "sessions",
    "timepoint",
    "yi",
    "sei",
    "vi",
    "age",
]
NASTY = [
    "",
    "nan",
    "NaN",
    "inf",
    "-inf",
    "1e400",
    "-1",
    "0",
    "3.5",
    "1,5",
    "=cmd|' /C calc'!A0",
    "+SUM(1)",
    "@x",
    "<script>alert(1)</script>",
    "ß∂ƒ©",
    "\u202e",
    "NA",
    " ",
    "999999999999",
    "im",
    "IV",
    "rct",
    "control",
    "experimental",
    "single",
    "12 months",
    "None",
    "true",
]
cell = st.one_of(
    st.sampled_from(NASTY),
    st.integers(-10, 10**6).map(str),
    st.floats(allow_nan=True, allow_infinity=True).map(repr),
    st.text(string.printable, max_size=12),
)


@st.composite
def tables(draw):
    cols = draw(st.lists(st.sampled_from(COLUMNS), min_size=1, max_size=10, unique=True))
    rows = draw(st.lists(st.lists(cell, min_size=len(cols), max_size=len(cols)), max_size=8))
    if draw(st.booleans()) and rows:  # a ragged row now and then
        rows[0] = rows[0][:-1]
    buf = io.StringIO()
    writer = csv.writer(buf)
    writer.writerow(cols)
    writer.writerows(rows)
    return buf.getvalue()


@settings(
    max_examples=200,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
@given(text=tables())
def test_generated_tables_never_crash_the_validator(tmp_path, text):
    path = tmp_path / "t.csv"
    path.write_text(text, encoding="utf-8")
    table, shape, issues = check_table(path)  # must not raise
    for issue in issues:
        assert issue.file == str(path) and issue.rule
    result = runner.invoke(app, ["validate", str(path)])
    assert result.exit_code in (0, 2), result.output
    assert "Traceback" not in result.output
    assert (result.exit_code == 2) == bool(issues)


@settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
@given(text=tables(), measure=st.sampled_from(["OR", "RR", "RD", "PLO", "MD", "SMD", "PREPOST"]))
def test_generated_tables_never_crash_effects_or_leave_partial_output(tmp_path, text, measure):
    path = tmp_path / "t.csv"
    path.write_text(text, encoding="utf-8")
    out = tmp_path / "es.csv"
    out.unlink(missing_ok=True)
    result = runner.invoke(app, ["effects", str(path), "-m", measure, "--out", str(out)])
    assert result.exit_code in (0, 2), (result.output, result.exception)
    assert "Traceback" not in result.output
    assert out.exists() == (result.exit_code == 0)
    assert not [p for p in tmp_path.iterdir() if p.name.endswith(".tmp")]


toml_value = st.recursive(
    st.one_of(
        st.none(),
        st.booleans(),
        st.integers(-5, 10**9),
        st.floats(allow_nan=True),
        st.sampled_from(NASTY),
        st.text(max_size=10),
    ),
    lambda children: st.one_of(
        st.lists(children, max_size=3),
        st.dictionaries(
            st.sampled_from(
                [
                    "files",
                    "family",
                    "pooling",
                    "draws",
                    "mu",
                    "tau",
                    "seed",
                    "outcome",
                    "method",
                    "x",
                ]
            ),
            children,
            max_size=3,
        ),
    ),
    max_leaves=8,
)


@settings(max_examples=150, deadline=None)
@given(
    raw=st.dictionaries(
        st.sampled_from(
            ["data", "model", "priors", "sampler", "name", "questions", "report", "extra"]
        ),
        toml_value,
        max_size=5,
    )
)
def test_generated_specs_are_accepted_or_explained(raw):
    try:
        spec_from_dict(raw)
    except UserError as err:
        assert str(err)


@st.composite
def manifests(draw):
    cols = draw(
        st.lists(
            st.sampled_from(["name", "spec", "data", "seed", "method", "colour"]),
            min_size=1,
            max_size=6,
            unique=True,
        )
    )
    pool = st.one_of(
        cell,
        st.sampled_from(["spec.toml", "d.csv", "missing.toml", "../spec.toml", "a;b", "fit-1"]),
    )
    rows = draw(st.lists(st.lists(pool, min_size=len(cols), max_size=len(cols)), max_size=5))
    buf = io.StringIO()
    writer = csv.writer(buf)
    writer.writerow(cols)
    writer.writerows(rows)
    return buf.getvalue()


@settings(
    max_examples=150,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
@given(text=manifests())
def test_generated_batch_manifests_are_accepted_or_explained(tmp_path, text):
    from bayeskit.batches import read_tasks

    (tmp_path / "spec.toml").write_text(
        'name = "x"\n[data]\nfiles = ["d.csv"]\n[model]\nfamily = "normal-normal"\n'
    )
    (tmp_path / "d.csv").write_text("study,yi,sei\nA,0.1,0.2\nB,0.3,0.2\n")
    path = tmp_path / "fits.csv"
    path.write_text(text, encoding="utf-8")
    try:
        tasks = read_tasks(path)
    except UserError as err:
        assert str(path) in str(err)
        return
    for task in tasks:  # accepted rows are usable: safe folder names and real files
        assert "/" not in task.name and not task.name.startswith(".")
        assert tmp_path.joinpath("spec.toml").samefile(task.spec)
        assert isinstance(task.seed, int) and 0 <= task.seed < 2**31


# --- quoting and numeric spellings (issue 12): an issue naming file and row, or exactly
# the values that were written --------------------------------------------------------------

QUOTE_TEXT = st.text(
    alphabet=string.ascii_letters + string.digits + " ,\"\n\r\t;é中'",
    max_size=15,
)


def _expected(cell: str) -> str | None:
    from bayeskit.evidence.read import MISSING

    cell = cell.strip()
    return None if cell.lower() in MISSING else cell


@settings(
    max_examples=150,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
@given(notes=st.lists(QUOTE_TEXT, min_size=1, max_size=5))
def test_quoted_cells_with_quotes_commas_and_newlines_read_back_exactly(tmp_path, notes):
    buf = io.StringIO()
    writer = csv.writer(buf)  # RFC 4180 quoting, as spreadsheets write it
    writer.writerow(["study", "yi", "sei", "notes"])
    writer.writerows([[f"S{i}", "1", "1", note] for i, note in enumerate(notes)])
    path = tmp_path / "t.csv"
    path.write_text(buf.getvalue(), encoding="utf-8")
    table, _, issues = check_table(path)
    assert issues == [], issues
    assert table["notes"].tolist() == [_expected(n) for n in notes]


@settings(
    max_examples=100,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
@given(
    rows=st.lists(
        st.text(alphabet=string.ascii_letters + " ,;", min_size=1, max_size=8)
        .map(lambda s: s.replace(",", " "))
        .filter(lambda s: s.strip()),
        min_size=2,
        max_size=6,
    ),
    data=st.data(),
)
def test_an_unclosed_quote_is_reported_at_the_row_it_opened(tmp_path, rows, data):
    opened = data.draw(st.integers(0, len(rows) - 1))
    lines = ["study,yi,sei,notes"]
    for i, note in enumerate(rows):
        lines.append(f"S{i},1,1,{chr(34) if i == opened else ''}{note}")
    path = tmp_path / "t.csv"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    table, _, issues = check_table(path)
    assert table is None
    assert [(i.file, i.row) for i in issues] == [(str(path), opened + 2)]
    assert "never closed" in issues[0].rule
    result = runner.invoke(app, ["validate", str(path)])
    assert result.exit_code == 2 and f"row {opened + 2}" in result.output


@settings(
    max_examples=100,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
@given(
    cells=st.lists(
        st.tuples(
            st.text(alphabet=string.ascii_letters, min_size=1, max_size=4),
            st.text(alphabet=string.ascii_letters + '"', max_size=4),
        ).map(lambda t: t[0] + '"' + t[1]),
        min_size=1,
        max_size=4,
    )
)
def test_a_quote_inside_an_unquoted_cell_is_kept_literally(tmp_path, cells):
    text = "study,yi,sei,notes\n" + "".join(f"S{i},1,1,{c}\n" for i, c in enumerate(cells))
    path = tmp_path / "t.csv"
    path.write_text(text, encoding="utf-8")
    table, _, issues = check_table(path)
    assert issues == [] and table["notes"].tolist() == cells


DIGITS = st.text(alphabet=string.digits, min_size=1, max_size=5)
VALID_NUMBER = st.builds(
    lambda sign, whole, frac, exp: f"{sign}{whole}{frac}{exp}",
    st.sampled_from(["", "+", "-"]),
    DIGITS,
    st.one_of(st.just(""), st.just("."), DIGITS.map(lambda d: "." + d)),
    st.one_of(
        st.just(""),
        st.builds(
            lambda e, sign, n: f"{e}{sign}{n}",
            st.sampled_from("eE"),
            st.sampled_from(["", "+", "-"]),
            st.integers(0, 300),
        ),
    ),
)


def _foreign(number: str, digits: str) -> str:
    return "".join(digits[int(c)] if c.isdigit() else c for c in number)


INVALID_NUMBER = st.one_of(
    st.builds(lambda a, b: f"{a}_{b}", DIGITS, DIGITS),  # Python's digit grouping
    VALID_NUMBER.filter(lambda s: any(c.isdigit() for c in s)).map(
        lambda s: _foreign(s, "٠١٢٣٤٥٦٧٨٩")  # Arabic-Indic
    ),
    VALID_NUMBER.map(lambda s: _foreign(s, "０１２３４５６７８９")),  # full-width
    VALID_NUMBER.map(lambda s: _foreign(s, "۰۱۲۳۴۵۶۷۸۹")),  # extended Arabic-Indic
    DIGITS.map(lambda d: f"0x{d}"),
    st.sampled_from(["inf", "-inf", "Infinity", "nan", "NaN", "-nan", "1e999", "-1e400"]),
    st.sampled_from(["++1", "--1", "1e", "e5", ".", "-", "1.2.3", "1e+-2", "0b11", "1j"]),
    st.builds(lambda a, b: f"{a},{b}", DIGITS, DIGITS),  # decimal comma (quoted)
).filter(lambda s: s.strip().lower() not in ("", "na", "n/a"))

# ------------------------------------------------------------------ output paths

ODD_NAMES = [
    ".",
    "..",
    "keep",
    "afile",
    "dangling",
    "link_to_keep",
    "run",
    "batch",
    "n" * 300,
    "é" * 125,
    "-rf",
    " ",
    "a b",
    "~",
    "$HOME",
    "*",
    ".hidden",
    ".run.old",
    ".run.lock",
    "new",
]


@st.composite
def output_paths(draw):
    """A destination inside a scratch folder: odd names, `.`/`..`, symlinks, files as parents."""
    parts = draw(
        st.lists(
            st.one_of(
                st.sampled_from(ODD_NAMES),
                st.text(
                    alphabet=st.characters(blacklist_categories=["Cs"]), min_size=1, max_size=12
                ),
            ),
            min_size=1,
            max_size=3,
        )
    )
    absolute = draw(st.booleans())
    kind = draw(st.sampled_from([None, "run", "batch", "sbc", "teach"]))
    return parts, absolute, kind, draw(st.booleans())


def _scratch(base):
    """A working folder with a user's own files and bayeskit's folders beside them."""
    from bayeskit.outputs import writing_folder

    (base / "keep").mkdir()
    (base / "keep" / "notes.txt").write_text("mine")
    (base / "afile").write_text("a file of mine")
    (base / "dangling").symlink_to(base / "nowhere")
    (base / "link_to_keep").symlink_to(base / "keep")
    with writing_folder(base / "run", kind="run", force=False) as tmp:
        (tmp / "summary.csv").write_text("parameter,mean\nmu,1\n")
    (base / "batch").mkdir()
    (base / "batch" / "manifest.json").write_text('{"bayeskit": {"kind": "batch"}}')


def _user_files(base):
    import os

    return {
        "notes": (base / "keep" / "notes.txt").read_text(),
        "afile": (base / "afile").read_text(),
        "dangling": os.readlink(base / "dangling"),
        "link": os.readlink(base / "link_to_keep"),
    }


@settings(
    max_examples=200,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
@given(spelling=st.one_of(VALID_NUMBER, INVALID_NUMBER))
def test_numeric_spellings_are_read_exactly_or_named(tmp_path, spelling):
    import math
    import re

    path = tmp_path / "t.csv"
    path.write_text(f'study,yi,sei\nA,"{spelling}",1\nB,1,1\n', encoding="utf-8")
    table, _, issues = check_table(path)
    # the oracle is written here independently of the reader: ASCII digits, one optional
    # dot, an optional exponent, and a finite value
    ascii_decimal = re.fullmatch(r"[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?", spelling, re.ASCII)
    if ascii_decimal and math.isfinite(float(spelling)):
        assert issues == [], issues
        assert table.loc[2, "yi"] == float(spelling)
    else:
        assert [(i.file, i.row, i.column, i.value) for i in issues] == [
            (str(path), 2, "yi", spelling)
        ]


@settings(deadline=None)  # a case that writes a teaching figure takes about 0.3 s
@given(case=output_paths())
def test_generated_output_paths_are_written_or_refused_and_nothing_foreign_is_lost(case):
    """Either a UserError naming the path, or the output written; the user's files survive."""
    import os
    import tempfile
    from pathlib import Path

    from bayeskit.outputs import claim, folder_kind, write_file, writing_folder

    parts, absolute, kind, force = case
    with tempfile.TemporaryDirectory() as scratch:
        base = Path(scratch) / "work"
        base.mkdir()
        _scratch(base)
        before = _user_files(base)
        rel = Path(*parts)
        path = base / rel if absolute else rel
        home = os.getcwd()
        os.chdir(base)
        try:
            if kind is None:
                with claim(path, kind=None, force=force):
                    write_file(path, "written")
            else:
                with writing_folder(path, kind=kind, force=force) as tmp:
                    (tmp / "out.csv").write_text("written")
        except UserError as err:
            shown = str(path) if len(str(path)) <= 100 else str(path)[:60]
            assert shown in str(err) or repr(str(path))[1:40] in str(err), (str(err), path)
        else:
            target = base / rel
            if kind is None:
                assert target.read_text() == "written"
            else:
                assert folder_kind(target) == kind
                assert (target / "out.csv").read_text() == "written"
        finally:
            os.chdir(home)
        after = _user_files(base)
        if "\x00" in str(rel):
            return  # refused above: no file name holds a NUL
        if kind is None and force and os.path.realpath(base / rel) == str(base / "afile"):
            before.pop("afile"), after.pop("afile")  # --force replaces a regular file
        assert after == before
        target = os.path.realpath(base / rel)
        leftovers = [  # new entries other than the target, its parents and its contents
            p.name
            for p in base.rglob("*")
            if p.name.startswith(".")
            and not os.path.realpath(p).startswith(target)
            and not target.startswith(os.path.realpath(p) + os.sep)
        ]
        assert leftovers == []
