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

MAX_BYTES = 50 * 1024 * 1024  # evidence tables are small; a huge file is a mistake
MISSING = frozenset({"", "na", "n/a"})
_OTHER_DELIMITERS = {";": "semicolons", "\t": "tabs", "|": "vertical bars"}


def file_sha256(path: str | Path) -> str:
    """Return the SHA-256 hex digest of a file's bytes (recorded in every run's manifest).

    Examples
    --------
    >>> import bayeskit as bk
    >>> from bayeskit.evidence.read import file_sha256
    >>> len(file_sha256(bk.data_path("eight_schools.csv")))
    64
    """
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def read_table(path: str | Path) -> tuple[pd.DataFrame, list[Issue]]:
    r"""Read ``path`` as a comma-separated UTF-8 table of strings.

    Parameters
    ----------
    path : str or Path
        The CSV file.

    Returns
    -------
    table : DataFrame
        One row per record, indexed by the row number a spreadsheet shows (the header
        is row 1); column names lower-cased and stripped; cells stripped, missing cells
        as ``None``.
    issues : list of Issue
        File-level problems (empty file, wrong encoding or delimiter, ragged rows). When
        any is found the table may be empty.

    Examples
    --------
    >>> import tempfile
    >>> path = Path(tempfile.mkdtemp()) / "trials.csv"
    >>> _ = path.write_text("Study, yi ,sei\nA,0.5,0.2\nB,,0.3\n")
    >>> table, issues = read_table(path)
    >>> list(table.columns), table.index.tolist(), table.loc[3, "yi"], issues
    (['study', 'yi', 'sei'], [2, 3], None, [])
    """
    path = Path(path)
    name = str(path)
    if not path.exists():
        raise UserError(f"{name}: no such file")
    if path.is_dir():
        raise UserError(f"{name}: is a folder, not a CSV file")
    size = path.stat().st_size
    if size > MAX_BYTES:
        return _empty(), [
            Issue(
                name,
                None,
                None,
                None,
                f"the file is {size / 1e6:.0f} MB; evidence tables "
                f"are limited to {MAX_BYTES / 1e6:.0f} MB",
            )
        ]
    raw = path.read_bytes()
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as err:
        line = raw[: err.start].count(b"\n") + 1
        return _empty(), [
            Issue(
                name,
                line,
                None,
                None,
                f"the file is not UTF-8 text (byte 0x{raw[err.start]:02x} "
                "cannot be decoded); save it as 'CSV UTF-8'",
            )
        ]
    if "\x00" in text:
        return _empty(), [
            Issue(
                name,
                None,
                None,
                None,
                "the file contains NUL bytes: it is not a "
                "text CSV file (UTF-16 or a spreadsheet?); save it as 'CSV UTF-8'",
            )
        ]
    if not text.strip():
        return _empty(), [
            Issue(
                name,
                None,
                None,
                None,
                "the file is empty: expected a header row and at least one data row",
            )
        ]

    records = list(csv.reader(io.StringIO(text, newline="")))
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


def _clean(cell: str) -> str | None:
    cell = cell.strip()
    return None if cell.lower() in MISSING else cell


def _empty() -> pd.DataFrame:
    return pd.DataFrame(index=pd.Index([], name="row"))
