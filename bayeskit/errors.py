"""Errors that describe a user's mistake (bad file, bad option) rather than a bug.

The CLI turns every :class:`UserError` into a one-paragraph message and exit code 2;
anything else is a bug and keeps its traceback.
"""

from __future__ import annotations

from dataclasses import dataclass


class UserError(ValueError):
    """A mistake in the user's input: the message says what is wrong and how to fix it.

    A subclass of :class:`ValueError`, so that code calling bayeskit as a library can
    catch bad input the way it catches it from other libraries.

    Examples
    --------
    >>> import bayeskit as bk
    >>> try:
    ...     bk.parse_prior("HalfNormal(-1)")
    ... except bk.UserError as err:
    ...     print(err)
    invalid prior 'HalfNormal(-1)': HalfNormal: sigma must be > 0, found -1
    >>> issubclass(bk.UserError, ValueError)
    True
    """


@dataclass(frozen=True, slots=True)
class Issue:
    """One broken rule in one cell of an input table.

    Attributes
    ----------
    file : str
        The file the table was read from.
    row : int or None
        The row as a spreadsheet user counts it (the header is row 1), or None for
        problems with the whole file or a whole column.
    column : str or None
        The column name, or None for problems with the whole file or row.
    value : str or None
        The offending value as it appears in the file.
    rule : str
        The rule that was broken, in plain words.

    Examples
    --------
    >>> from bayeskit.errors import Issue
    >>> print(Issue("trials.csv", 3, "n", "-2", "must be a whole number >= 1"))
    trials.csv, row 3, column 'n': must be a whole number >= 1 (found '-2')
    """

    file: str
    row: int | None
    column: str | None
    value: str | None
    rule: str

    def __str__(self) -> str:
        where = [self.file]
        if self.row is not None:
            where.append(f"row {self.row}")
        if self.column is not None:
            where.append(f"column '{self.column}'")
        text = ", ".join(where) + f": {self.rule}"
        if self.value is not None:
            text += f" (found {self.value!r})"
        return text


class EvidenceError(UserError):
    """An evidence table broke one or more rules; ``issues`` lists every one of them.

    Parameters
    ----------
    issues : list of Issue
        Every broken rule found.

    Examples
    --------
    >>> from bayeskit.errors import EvidenceError, Issue
    >>> err = EvidenceError([Issue("t.csv", None, "source", None, "column is missing")])
    >>> print(err)
    1 problem found in the evidence table:
      - t.csv, column 'source': column is missing
    """

    def __init__(self, issues: list[Issue]):
        self.issues = list(issues)
        n = len(self.issues)
        head = f"{n} problem{'s' if n != 1 else ''} found in the evidence table:"
        super().__init__("\n".join([head, *(f"  - {i}" for i in self.issues)]))
