"""Read a CSV evidence table into strings, reporting file-level problems as issues.

Cells stay text here; :mod:`bayeskit.evidence.schema` decides what each must be.
"""

from __future__ import annotations

import csv
import hashlib
import io
from pathlib import Path

import pandas as pd

from bayeskit.errors import Issue, UserError

#: Evidence tables are small: a longer input is a mistake (or an endless stream such as
#: ``/dev/zero``) and is refused after reading this many bytes.
MAX_BYTES = 50 * 1024 * 1024
#: The longest cell Python's csv module reads (its ``field_size_limit``): 128 kB.
MAX_CELL = csv.field_size_limit()
MISSING = frozenset({"", "na", "n/a"})
_OTHER_DELIMITERS = {";": "semicolons", "\t": "tabs", "|": "vertical bars"}


def file_sha256(path: str | Path) -> str:
    """Return the SHA-256 hex digest of a file's bytes.

    Runs record the digest of the bytes they actually parsed (``attrs["sha256"]`` of
    :func:`read_table`'s table), which for a regular file is this.

    Examples
    --------
    >>> import bayeskit as bk
    >>> from bayeskit.evidence.read import file_sha256
    >>> len(file_sha256(bk.data_path("eight_schools.csv")))
    64
    """
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def read_bytes(path: str | Path, *, limit: int = MAX_BYTES) -> bytes:
    """Read a file's bytes once, at most ``limit`` of them, whatever kind of file it is.

    Pipes (``--data <(cat t.csv)``) and endless streams (``/dev/zero``) can be read only
    once and have no size to ask for beforehand, so at most ``limit + 1`` bytes are read:
    a longer input is refused instead of being read (or held in memory) without end.

    Raises
    ------
    UserError
        When the file is missing, a folder, unreadable, or longer than ``limit`` bytes.

    Examples
    --------
    >>> import bayeskit as bk
    >>> read_bytes(bk.data_path("eight_schools.csv"))[:12]
    b'study,yi,sei'
    >>> read_bytes("/dev/zero", limit=10)
    Traceback (most recent call last):
    ...
    bayeskit.errors.UserError: /dev/zero: longer than 10 bytes (...), the limit for an input ...
    """
    path = Path(path)
    name = str(path)
    if path.is_dir():
        raise UserError(f"{name}: is a folder, not a CSV file")
    try:
        with path.open("rb") as handle:
            raw = handle.read(limit + 1)
    except FileNotFoundError:
        raise UserError(f"{name}: no such file") from None
    except PermissionError:
        raise UserError(f"{name}: cannot be read (permission denied)") from None
    except OSError as err:
        raise UserError(f"{name}: cannot be read ({err.strerror or err})") from None
    if len(raw) > limit:
        raise UserError(
            f"{name}: longer than {limit} bytes ({limit / 2**20:g} MiB), the limit for "
            "an input file (is it an endless stream, or not an evidence table?)"
        )
    return raw


def read_table(path: str | Path) -> tuple[pd.DataFrame, list[Issue]]:
    r"""Read ``path`` as a comma-separated UTF-8 table of strings.

    The file is read once (so a pipe works) and at most :data:`MAX_BYTES` of it.
    Quoting follows RFC 4180: a quoted cell may hold commas, newlines and doubled quotes
    (``""``); a quote that is never closed, or text after a closing quote, is an issue
    naming the row where the cell began, as is a cell longer than :data:`MAX_CELL`.

    Parameters
    ----------
    path : str or Path
        The CSV file.

    Returns
    -------
    table : DataFrame
        One row per record, indexed by the row number a spreadsheet shows (the header
        is row 1); column names lower-cased and stripped; cells stripped, missing cells
        as ``None``. ``attrs["sha256"]`` is the SHA-256 digest of the bytes read.
    issues : list of Issue
        File-level problems (empty file, wrong encoding or delimiter, ragged rows, broken
        quoting). When any is found the table may be empty.

    Examples
    --------
    >>> import tempfile
    >>> path = Path(tempfile.mkdtemp()) / "trials.csv"
    >>> _ = path.write_text("Study, yi ,sei\nA,0.5,0.2\nB,,0.3\n")
    >>> table, issues = read_table(path)
    >>> list(table.columns), table.index.tolist(), table.loc[3, "yi"], issues
    (['study', 'yi', 'sei'], [2, 3], None, [])
    >>> _ = path.write_text('study,yi,sei\nA,0.5,0.2\n"B,0.7,0.3\nC,0.1,0.2\n')
    >>> print(read_table(path)[1][0])  # doctest: +ELLIPSIS
    /.../trials.csv, row 3: a quote opened in this row (line 3) is never closed...
    """
    path = Path(path)
    name = str(path)
    raw = read_bytes(path)
    table, issues = _parse(raw, name)
    table.attrs["sha256"] = hashlib.sha256(raw).hexdigest()
    return table, issues


def _parse(raw: bytes, name: str) -> tuple[pd.DataFrame, list[Issue]]:
    text, problem = _text(raw, name)
    if problem is not None:
        return _empty(), [problem]
    records, problem = _records(text, name)
    if problem is not None:
        return _empty(), [problem]
    return _table(records, name)


def _text(raw: bytes, name: str) -> tuple[str, Issue | None]:
    """Decode the bytes as UTF-8 text; an encoding problem or an empty file is an issue."""
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as err:
        line = raw[: err.start].count(b"\n") + 1
        return "", Issue(
            name,
            line,
            None,
            None,
            f"the file is not UTF-8 text (byte 0x{raw[err.start]:02x} "
            "cannot be decoded); save it as 'CSV UTF-8'",
        )
    if "\x00" in text:
        return "", Issue(
            name,
            None,
            None,
            None,
            "the file contains NUL bytes: it is not a "
            "text CSV file (UTF-16 or a spreadsheet?); save it as 'CSV UTF-8'",
        )
    if not text.strip():
        return "", Issue(
            name,
            None,
            None,
            None,
            "the file is empty: expected a header row and at least one data row",
        )
    return text, None


def _table(records: list[list[str]], name: str) -> tuple[pd.DataFrame, list[Issue]]:
    """Turn the records into a table of stripped strings; header and row problems are issues."""
    header = [h.strip().lower() for h in records[0]]
    if len(header) == 1:
        for delim, words in _OTHER_DELIMITERS.items():
            if delim in records[0][0]:
                return _empty(), [
                    Issue(
                        name,
                        1,
                        None,
                        None,
                        f"the header is separated by {words}; "
                        "bayeskit reads comma-separated files (save as 'CSV UTF-8')",
                    )
                ]
    issues = []
    seen: set[str] = set()
    for h in header:
        if not h:
            issues.append(Issue(name, 1, None, None, "a column in the header has no name"))
        elif h in seen:
            issues.append(Issue(name, 1, h, None, "the column name appears twice in the header"))
        seen.add(h)

    rows, index = [], []
    for number, record in enumerate(records[1:], start=2):
        if not any(cell.strip() for cell in record):
            continue  # a blank line is not a row
        if len(record) != len(header):
            issues.append(
                Issue(
                    name,
                    number,
                    None,
                    None,
                    f"the row has {len(record)} fields but the "
                    f"header has {len(header)} (a stray comma or a missing cell?)",
                )
            )
            continue
        rows.append([_clean(cell) for cell in record])
        index.append(number)
    if not rows and not issues:
        issues.append(Issue(name, None, None, None, "the file has a header but no data rows"))
    if issues:
        return _empty(), issues
    return pd.DataFrame(rows, columns=header, index=pd.Index(index, name="row"), dtype=object), []


def _records(text: str, name: str) -> tuple[list[list[str]], Issue | None]:
    """Split the text into records; a quoting error becomes an issue naming its row."""
    # strict: Python's csv module otherwise reads an unclosed quote to the end of the
    # file as one cell, and drops the quote of '"a"b' silently
    reader = csv.reader(io.StringIO(text, newline=""), strict=True)
    records: list[list[str]] = []
    line = 1  # the line the next record starts on
    try:
        for record in reader:
            records.append(record)
            line = reader.line_num + 1
    except csv.Error as err:
        row = len(records) + 1
        if "field larger than field limit" in str(err):
            column = _long_cell(text, line, records[0] if records else [])
            where = f", column {column!r}" if column else ""
            return records, Issue(
                name,
                row,
                None,
                None,
                f"a cell in this row{where} (line {line}) is longer than "
                f"{MAX_CELL // 1024} kB; no evidence table has such cells (an unclosed "
                "quote?)",
            )
        if "unexpected end of data" in str(err):
            return records, Issue(
                name,
                row,
                None,
                None,
                f"a quote opened in this row (line {line}) is never closed, so the rest "
                "of the file would be read as one cell; close it or remove it",
            )
        return records, Issue(
            name,
            row,
            None,
            None,
            f"broken quoting in this row (line {reader.line_num}): {err}; a quoted cell "
            "must end with a quote followed by a comma or the end of the line (write a "
            'quote inside a quoted cell as "")',
        )
    return records, None


def _long_cell(text: str, line: int, header: list[str]) -> str | None:
    """Name the column of the over-long cell in the record starting on ``line``."""
    rest = io.StringIO(text, newline="")
    for _ in range(line - 1):
        rest.readline()
    limit = csv.field_size_limit()
    # the field limit is process-wide; raise it only for this one record, on this
    # error path, to find which cell is too long
    csv.field_size_limit(MAX_BYTES)
    try:
        record = next(csv.reader(rest), [])
    except csv.Error:
        record = []
    finally:
        csv.field_size_limit(limit)
    for i, cell in enumerate(record):
        if len(cell) > MAX_CELL:
            return header[i].strip().lower() if i < len(header) else f"field {i + 1}"
    return None


def _clean(cell: str) -> str | None:
    cell = cell.strip()
    return None if cell.lower() in MISSING else cell


def _empty() -> pd.DataFrame:
    return pd.DataFrame(index=pd.Index([], name="row"))
