"""Reading evidence files: once, bounded, with quoting and numbers read exactly as written.

Each case here was a silent wrong answer or a traceback before: an unclosed quote that
swallowed the rest of the file, digits that Python's float() reads but no study writes,
a pipe hashed as empty input, an endless stream read without end.
"""

import hashlib
import os
import threading

import pytest
from typer.testing import CliRunner

from bayeskit.cli import app
from bayeskit.errors import EvidenceError, UserError
from bayeskit.evidence import check_table, load_evidence
from bayeskit.evidence.read import MAX_CELL, read_bytes, read_table

runner = CliRunner()
GOOD = "study,yi,sei\nA,1,2\n"


def test_unclosed_quote_names_the_row_where_it_opened(write_csv):
    path = write_csv('study,yi,sei,note\nA,1,2,x\nB,8,10,"oops\nC,1,1,y\nD,2,2,z\nE,3,3,w\n')
    table, shape, issues = check_table(path)
    assert table is None
    assert [(i.row, i.column) for i in issues] == [(3, None)]
    assert "quote opened in this row (line 3) is never closed" in issues[0].rule
    result = runner.invoke(app, ["validate", str(path)])
    assert result.exit_code == 2
    assert "row 3" in result.output and "ok" not in result.output


def test_text_after_a_closing_quote_is_refused_not_dropped(write_csv):
    # '"8"x' was read as '8x' without a word
    path = write_csv('study,yi,sei\nA,"8"x,1\n')
    issues = check_table(path)[2]
    assert [i.row for i in issues] == [2]
    assert "broken quoting" in issues[0].rule


def test_quoted_cells_keep_commas_newlines_and_doubled_quotes(write_csv):
    path = write_csv('study,yi,sei,notes\n"A, the ""first""",1,2,"two\nlines"\n')
    table, _, issues = check_table(path)
    assert issues == []
    assert table.loc[2, "study"] == 'A, the "first"'
    assert table.loc[2, "notes"] == "two\nlines"


def test_a_cell_over_128_kB_names_row_and_column(write_csv):
    path = write_csv(f'study,yi,sei,notes\nA,1,2,x\nB,1,2,"{"y" * (MAX_CELL + 10)}"\n')
    issues = check_table(path)[2]
    assert [(i.row, i.rule.split(" (line")[0]) for i in issues] == [
        (3, "a cell in this row, column 'notes'")
    ]
    assert "longer than 128 kB" in issues[0].rule


@pytest.mark.parametrize(
    "spelling", ["1_5", "١٢", "１２", "0x1A", "inf", "-inf", "nan", "1e999", "½", "1,5", "٣.٥"]
)
def test_only_ascii_decimal_notation_is_a_number(write_csv, spelling):
    path = write_csv(f'study,yi,sei\nA,"{spelling}",2\nB,1,2\n')
    issues = check_table(path)[2]
    assert [(i.row, i.column, i.value) for i in issues] == [(2, "yi", spelling)]
    assert "decimal notation" in issues[0].rule


@pytest.mark.parametrize(
    ("spelling", "value"),
    [("+1.5", 1.5), ("-2e-3", -0.002), (".5", 0.5), ("5.", 5.0), ("1E2", 100.0), (" 7 ", 7.0)],
)
def test_ascii_decimal_spellings_are_read_exactly(write_csv, spelling, value):
    table, _, issues = check_table(write_csv(f"study,yi,sei\nA,{spelling},2\n"))
    assert issues == [] and table.loc[2, "yi"] == value


def test_pipe_is_read_once_and_its_bytes_are_hashed(tmp_path):
    text = GOOD + "B,3,4\n"
    read, write = os.pipe()

    def feed():
        with os.fdopen(write, "wb") as handle:
            handle.write(text.encode())

    threading.Thread(target=feed).start()
    path = f"/dev/fd/{read}"
    try:
        ev = load_evidence(path)
    finally:
        os.close(read)
    assert ev["yi"].tolist() == [1.0, 3.0]
    assert ev.attrs["sha256"] == {path: hashlib.sha256(text.encode()).hexdigest()}


def test_endless_stream_is_refused_after_the_cap():
    with pytest.raises(UserError, match=r"/dev/zero: longer than 1000 bytes"):
        read_bytes("/dev/zero", limit=1000)


def test_endless_stream_through_the_cli_exits_2_at_the_documented_cap():
    result = runner.invoke(app, ["validate", "/dev/zero"])
    assert result.exit_code == 2
    assert f"/dev/zero: longer than {50 * 2**20} bytes (50 MiB)" in result.output


def test_a_folder_or_missing_file_is_named(tmp_path):
    with pytest.raises(UserError, match=rf"{tmp_path}: is a folder"):
        read_table(tmp_path)
    with pytest.raises(UserError, match=r"nope.csv: no such file"):
        read_table(tmp_path / "nope.csv")


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads any file")
def test_an_unreadable_file_is_named(write_csv):
    path = write_csv(GOOD)
    path.chmod(0)
    try:
        result = runner.invoke(app, ["validate", str(path)])
    finally:
        path.chmod(0o644)
    assert result.exit_code == 2
    assert f"{path}: cannot be read (permission denied)" in result.output


def test_an_unreadable_file_is_named_even_as_root(write_csv, monkeypatch):
    path = write_csv(GOOD)

    def denied(self, *args, **kwargs):
        raise PermissionError(13, "Permission denied", str(self))

    monkeypatch.setattr(type(path), "open", denied)
    with pytest.raises(UserError, match=rf"{path}: cannot be read \(permission denied\)"):
        read_table(path)


def test_load_evidence_refuses_a_dataframe_with_a_type_error():
    import pandas as pd

    with pytest.raises(TypeError, match="not a DataFrame"):
        load_evidence(pd.DataFrame({"study": ["A"], "yi": [1.0], "sei": [1.0]}))
    with pytest.raises(TypeError, match="got int"):
        load_evidence([3])


def test_user_error_is_a_value_error():
    assert issubclass(UserError, ValueError) and issubclass(EvidenceError, ValueError)
    with pytest.raises(ValueError, match="no such file"):
        load_evidence("/nowhere/t.csv")


# --- text columns and designs ------------------------------------------------------------


def test_unknown_text_column_is_carried_untouched(write_csv):
    path = write_csv("study,yi,sei,onset\nA,1,2,Early\nB,3,4,late \nC,5,6,\n")
    ev = load_evidence(path)
    assert ev["onset"].tolist() == ["Early", "late", None]


def test_unknown_column_mixing_numbers_and_text_is_a_slip(write_csv):
    issues = check_table(write_csv("study,yi,sei,age\nA,1,2,41\nB,3,4,4l\n"))[2]
    assert [(i.row, i.column, i.value) for i in issues] == [(3, "age", "4l")]


@pytest.mark.parametrize(
    ("written", "read"),
    [
        ("case_control", "case_control"),
        ("case-control", "case_control"),
        ("Case Control", "case_control"),
        ("non_randomised", "non_randomised"),
        ("Non-Randomized", "non_randomised"),
        ("crossover-RCT", "crossover_rct"),
    ],
)
def test_designs_are_normalised(write_csv, written, read):
    ev = load_evidence(write_csv(f"study,yi,sei,design\nA,1,2,{written}\n"))
    assert ev["design"].tolist() == [read]


def test_a_fifo_that_never_ends_is_refused_after_the_cap(tmp_path):
    fifo = tmp_path / "endless.csv"
    os.mkfifo(fifo)
    stop = threading.Event()

    def feed():
        try:
            with open(fifo, "wb") as handle:
                handle.write(b"study,yi,sei\n")
                while not stop.is_set():
                    handle.write(b"A,1,1\n" * 1000)
        except BrokenPipeError:  # the reader stopped reading: as it should
            pass

    writer = threading.Thread(target=feed)
    writer.start()
    try:
        with pytest.raises(UserError, match=r"endless.csv: longer than 100000 bytes"):
            read_bytes(fifo, limit=100_000)
    finally:
        stop.set()
        writer.join(timeout=10)
    assert not writer.is_alive()
