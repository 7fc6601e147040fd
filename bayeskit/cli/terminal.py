"""What the command line shows in a terminal: tables that fit its width, and no chatter.

Tables are drawn with rich. Numbers are never shortened: a numeric column is as wide as
its widest cell, and only text (study names, scenario labels) wraps. When the numeric
columns alone are wider than the terminal, the table is split into parts that each
repeat the label column, so that every column is shown whole.

Third-party libraries talk on their own: PyMC logs ``Sampling: [y]`` at INFO, ArviZ's
power-scaling summary prints a notice with web links, Dask logs its workers' lives.
:func:`hush` keeps all of it off the terminal unless the user asks with ``--verbose``.
"""

from __future__ import annotations

import contextlib
import io
import logging
import math
import sys
import warnings
from collections.abc import Iterator

import pandas as pd

#: the loggers of the libraries under bayeskit that log at INFO by themselves
THIRD_PARTY_LOGGERS = (
    "pymc",
    "pytensor",
    "arviz",
    "arviz_base",
    "arviz_stats",
    "arviz_plots",
    "nutpie",
    "numba",
    "distributed",
    "matplotlib",
    "h5py",
    "xarray",
)


#: labels longer than this wrap rather than push numeric columns into another part
LABEL_WRAP = 32


def cell(value) -> str:
    """Format a value for a terminal table: 4 significant digits, missing values empty.

    Examples
    --------
    >>> [cell(v) for v in (-0.750123, 1234.5678, float("nan"), None, "rct", 3)]
    ['-0.7501', '1235', '', '', 'rct', '3']
    """
    if value is None or value is pd.NA:
        return ""
    if isinstance(value, float):
        if math.isnan(value):
            return ""
        # 4 significant digits, but never an exponent for numbers a reader can take whole
        if value != 0 and 1e-4 <= abs(value) < 1e6:
            return f"{value:.4g}" if abs(value) < 1e4 else f"{value:.0f}"
        return f"{value:.4g}"
    try:
        if pd.isna(value):
            return ""
    except (TypeError, ValueError):
        pass
    return str(value)


def table_parts(widths: dict[str, int], label_width: int, width: int) -> list[list[str]]:
    """Split numeric columns into groups that fit ``width`` beside the label column.

    ``widths`` maps each numeric column to its width in characters (header or widest
    cell); each column costs 3 more for its padding and rule.

    Examples
    --------
    >>> table_parts({"mean": 6, "sd": 6, "q2.5": 7}, label_width=10, width=80)
    [['mean', 'sd', 'q2.5']]
    >>> table_parts({"a": 20, "b": 20, "c": 20, "d": 20}, label_width=10, width=60)
    [['a', 'b'], ['c', 'd']]
    """
    parts: list[list[str]] = [[]]
    used = min(label_width, LABEL_WRAP) + 4  # longer labels wrap
    for name, w in widths.items():
        if parts[-1] and used + w + 3 > width:
            parts.append([])
            used = min(label_width, LABEL_WRAP) + 4
        parts[-1].append(name)
        used += w + 3
    return parts


def print_table(
    table: pd.DataFrame,
    title: str,
    columns: list[str] | None = None,
    *,
    console=None,
) -> None:
    """Print a DataFrame as a rich table that fits the terminal, numbers whole.

    Parameters
    ----------
    table : DataFrame
        Rows to show, labelled by the index.
    title : str
        Printed above the table.
    columns : list of str, optional
        The columns to show, in order (those missing from ``table`` are skipped).
    console : rich.console.Console, optional
        Where to print (default: standard output, at the terminal's width or ``COLUMNS``).

    Examples
    --------
    >>> from rich.console import Console
    >>> out = Console(width=40, file=io.StringIO())
    >>> frame = pd.DataFrame({"mean": [-0.7512345, 12.5], "sd": [0.25, 1.0]},
    ...                      index=pd.Index(["a study with a long name", "B"], name="study"))
    >>> print_table(frame, "effects", console=out)
    >>> text = out.file.getvalue()
    >>> "-0.7512" in text and "…" not in text
    True
    """
    from rich import box
    from rich.console import Console
    from rich.markup import escape
    from rich.table import Table

    console = console or Console()
    shown = [c for c in (columns or list(table.columns)) if c in table.columns]
    label = str(table.index.name or "study")
    cells = {c: [cell(v) for v in table[c]] for c in shown}
    labels = [str(v) for v in table.index]
    widths = {c: max([len(str(c)), *map(len, cells[c])]) for c in shown}
    label_width = max([len(label), *map(len, labels)])
    parts = table_parts(widths, label_width, console.width)
    for i, part in enumerate(parts):
        suffix = f" ({i + 1} of {len(parts)})" if len(parts) > 1 else ""
        # the title on its own line: as a table title it would wrap to a narrow table
        console.print(title + suffix, markup=False, highlight=False, emoji=False)
        view = Table(box=box.SIMPLE_HEAD)
        # the label wraps to whatever the numbers leave of the width
        room = console.width - 4 - sum(widths[c] + 3 for c in part)
        view.add_column(
            escape(label), overflow="fold", min_width=max(4, min(label_width, LABEL_WRAP, room))
        )
        for c in part:
            numeric = pd.api.types.is_numeric_dtype(table[c])
            # min_width: rich shrinks columns to fit; a number must never be cut
            view.add_column(
                escape(str(c)),
                justify="right" if numeric else "left",
                min_width=widths[c] if numeric else min(widths[c], 12),
                no_wrap=numeric,
                overflow="fold",
            )
        for row, name in enumerate(labels):
            # names such as theta[A] or bioavailability[iv] must not be read as rich markup
            view.add_row(escape(name), *(escape(cells[c][row]) for c in part))
        console.print(view)


def say(text: str, *, err: bool = False, console=None) -> None:
    """Print a paragraph wrapped at word boundaries to the terminal's width.

    Examples
    --------
    >>> from rich.console import Console
    >>> out = Console(width=30, file=io.StringIO())
    >>> say("The between-study SD tau is estimated at 5.3 (95% interval 0.2 to 16).",
    ...     console=out)
    >>> print(out.file.getvalue().rstrip())
    The between-study SD tau is
    estimated at 5.3 (95% interval
    0.2 to 16).
    """
    from rich.console import Console

    console = console or Console(stderr=err)
    console.print(text, markup=False, highlight=False, emoji=False)


@contextlib.contextmanager
def hush(*, verbose: bool = False) -> Iterator[None]:
    """Keep third-party logging and warnings off the terminal inside the block.

    Third-party loggers are set to ERROR (PyMC's ``Sampling: [...]`` INFO lines are
    dropped) and warnings raised outside bayeskit are ignored; both are restored when the
    block ends. With ``verbose`` the libraries log at INFO, to standard error.

    Examples
    --------
    >>> with hush():
    ...     logging.getLogger("pymc").getEffectiveLevel() == logging.ERROR
    True
    >>> with hush(verbose=True):
    ...     logging.getLogger("pymc").getEffectiveLevel() == logging.INFO
    True
    """
    loggers = [logging.getLogger(name) for name in THIRD_PARTY_LOGGERS]
    levels = [lg.level for lg in loggers]
    handler = None
    if not logging.getLogger().handlers:
        # PyMC, imported for the first time inside the block, sets itself up with its own
        # handler at INFO unless the root logger has one: give it one
        handler = logging.StreamHandler(sys.stderr) if verbose else logging.NullHandler()
        logging.getLogger().addHandler(handler)
    try:
        with warnings.catch_warnings():
            for lg in loggers:
                lg.setLevel(logging.INFO if verbose else logging.ERROR)
            if not verbose:
                # warnings raised in bayeskit's own code are ours to show (a figure that
                # could not be drawn, for instance); the rest is the libraries' business
                warnings.filterwarnings("ignore", module=r"^(?!bayeskit)")
            yield
    finally:
        for lg, level in zip(loggers, levels, strict=True):
            lg.setLevel(level)
        if handler is not None:
            logging.getLogger().removeHandler(handler)


@contextlib.contextmanager
def muted(*, verbose: bool = False) -> Iterator[None]:
    """Swallow what third-party code prints to standard output inside the block.

    Examples
    --------
    >>> with muted():
    ...     print("We detected potential issues.")
    >>> with muted(verbose=True):
    ...     print("shown")
    shown
    """
    if verbose:
        yield
        return
    with contextlib.redirect_stdout(io.StringIO()):
        yield
