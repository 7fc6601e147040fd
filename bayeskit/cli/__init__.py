"""The ``bayeskit`` command line: a thin layer over the library.

Every command turns a :class:`~bayeskit.errors.UserError` into a short message on stderr
and exit code 2 (no traceback). Heavy libraries are imported inside the commands so
that ``bayeskit --help`` stays fast.
"""

from __future__ import annotations

import functools
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Annotated

import typer

app = typer.Typer(
    name="bayeskit",
    help="Bayesian evidence synthesis for small, heterogeneous studies.",
    no_args_is_help=True,
    add_completion=True,
    pretty_exceptions_enable=False,
    rich_markup_mode="rich",
)

EXIT_OK, EXIT_FAILED_DIAGNOSTICS, EXIT_USER_ERROR = 0, 1, 2


def _user_errors(func: Callable) -> Callable:
    """Report a user's mistake as a message and exit code 2 instead of a traceback."""

    @functools.wraps(func)
    def wrapper(*args, **kwargs):
        from bayeskit.errors import UserError

        try:
            return func(*args, **kwargs)
        except UserError as err:
            typer.echo(f"error: {err}", err=True)
            raise typer.Exit(EXIT_USER_ERROR) from None

    return wrapper


def _version(value: bool) -> None:
    if value:
        from bayeskit import __version__

        typer.echo(f"bayeskit {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: Annotated[
        bool,
        typer.Option(
            "--version", callback=_version, is_eager=True, help="Show the version and exit."
        ),
    ] = False,
) -> None:
    """Bayesian evidence synthesis for small, heterogeneous studies.

    Exit codes: 0 success; 1 a fit finished but failed its diagnostics (with --strict);
    2 a user error (bad file, bad option), reported without a traceback.
    """


@app.command(epilog="Example: bayeskit validate data/*.csv")
@_user_errors
def validate(
    files: Annotated[
        list[Path], typer.Argument(help="Evidence tables (CSV) to check.", show_default=False)
    ],
) -> None:
    """Check evidence tables against bayeskit's rules and report every problem found."""
    from bayeskit.evidence import check_table

    failed = False
    for path in files:
        table, shape, issues = check_table(path)
        if issues:
            failed = True
            typer.echo(f"{path}: {len(issues)} problem{'s' if len(issues) != 1 else ''}", err=True)
            for issue in issues:
                typer.echo(f"  - {issue}", err=True)
        else:
            typer.echo(
                f"{path}: ok ({shape}-level table, {len(table)} rows)"
                if shape != "routes"
                else f"{path}: ok (route table, {len(table)} rows)"
            )
    if failed:
        raise typer.Exit(EXIT_USER_ERROR)


@app.command(
    epilog="Example: bayeskit effects data/oud_abstinence.csv --measure OR "
    "--outcome abstinence --timepoint '12 months' --out or.csv"
)
@_user_errors
def effects(
    file: Annotated[
        list[Path], typer.Argument(help="Evidence table(s) (CSV).", show_default=False)
    ],
    measure: Annotated[
        str | None,
        typer.Option(
            "--measure",
            "-m",
            help="OR, RR, RD, PLO, MD, SMD, PREPOST or SMCR (metafor's codes "
            "accepted). Not needed for study-level tables.",
        ),
    ] = None,
    outcome: Annotated[
        str | None, typer.Option(help="Outcome to use when the table has several.")
    ] = None,
    timepoint: Annotated[
        str | None, typer.Option(help="Timepoint to use when a study reports several.")
    ] = None,
    out: Annotated[
        Path | None, typer.Option(help="Write the table to this CSV file instead of printing it.")
    ] = None,
    add: Annotated[
        float,
        typer.Option(help="Added to the cells of 2x2 tables with a zero cell (metafor's default)."),
    ] = 0.5,
    to: Annotated[
        str, typer.Option(help="Which tables get 'add': only0, all, if0all, none.")
    ] = "only0",
    drop00: Annotated[
        bool, typer.Option(help="Leave out studies with no events (or only events) in both arms.")
    ] = False,
    ri: Annotated[float, typer.Option(help="Assumed pre/post correlation (PREPOST, SMCR).")] = 0.5,
    sd_change: Annotated[
        float | None,
        typer.Option(help="Assumed SD of the pre/post change for arms without SDs (case reports)."),
    ] = None,
    force: Annotated[bool, typer.Option(help="Replace --out if it exists.")] = False,
) -> None:
    """Compute effect sizes (yi, vi, sei) per study, as metafor's escalc does."""
    from bayeskit.errors import UserError
    from bayeskit.evidence import load_evidence
    from bayeskit.measures import effects as compute
    from bayeskit.outputs import check_writable, write_text_atomic

    if to not in ("only0", "all", "if0all", "none"):
        raise UserError(f"--to must be only0, all, if0all or none (got {to!r})")
    if not -1 <= ri <= 1:
        raise UserError(f"--ri is a correlation and must lie in [-1, 1] (got {ri})")
    if sd_change is not None and sd_change <= 0:
        raise UserError(f"--sd-change must be positive (got {sd_change})")
    if out is not None:
        check_writable(out, force=force)
    table = compute(
        load_evidence(file),
        measure,
        outcome=outcome,
        timepoint=timepoint,
        add=add,
        to=to,
        drop00=drop00,
        ri=ri,
        sd_change=sd_change,
    )
    for study, reason in table.attrs.get("skipped", []):
        typer.echo(f"note: left out {study}: {reason}", err=True)
    if out is None:
        _print_table(table, title=f"{table.attrs.get('measure') or ''} effect sizes".strip())
    else:
        write_text_atomic(out, table.to_csv(float_format="%.17g"), force=force)
        typer.echo(f"wrote {len(table)} rows to {out}")


def _print_table(table, title: str) -> None:
    from rich.console import Console
    from rich.table import Table

    view = Table(title=title)
    view.add_column("study", no_wrap=True)
    shown = [
        c
        for c in table.columns
        if c in ("yi", "sei", "route", "dose_mg_per_kg", "sessions", "design")
    ]
    for col in shown:
        view.add_column(col, justify="right")
    for study, row in table.iterrows():
        cells = [f"{row[c]:.4f}" if isinstance(row[c], float) else str(row[c]) for c in shown]
        view.add_row(str(study), *cells)
    Console(soft_wrap=True).print(view)


def main() -> None:
    """Run the command line (the ``bayeskit`` console script)."""
    app(prog_name="bayeskit")


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
