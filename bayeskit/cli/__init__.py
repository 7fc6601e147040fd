"""The ``bayeskit`` command line: a thin layer over the library.

Every command turns a :class:`~bayeskit.errors.UserError` into a short message on stderr
and exit code 2 (no traceback), and Ctrl-C into exit code 130. Every command that writes
claims its destination before any work and follows one ``--force`` policy
(:mod:`bayeskit.outputs`). Heavy libraries are imported inside the commands so
that ``bayeskit --help`` stays fast.
"""

from __future__ import annotations

import contextlib
import contextvars
import functools
import sys
from collections.abc import Callable
from enum import Enum
from pathlib import Path
from typing import Annotated

import typer

from bayeskit.families import REGISTRY

app = typer.Typer(
    name="bayeskit",
    help="Bayesian evidence synthesis for small, heterogeneous studies.",
    no_args_is_help=True,
    add_completion=True,
    pretty_exceptions_enable=False,
    rich_markup_mode="markdown",
)

EXIT_OK, EXIT_FAILED_DIAGNOSTICS, EXIT_USER_ERROR, EXIT_INTERRUPTED = 0, 1, 2, 130
FORCE_HELP = (
    "Replace --out if it exists and bayeskit wrote it (a folder of the same kind holding "
    "nothing else, or a regular file)."
)
# the claims (locks) a running command holds on its destinations, released when it ends
_HELD: contextvars.ContextVar[contextlib.ExitStack] = contextvars.ContextVar("held")
# --quiet of the running command: print nothing but errors
_QUIET: contextvars.ContextVar[bool] = contextvars.ContextVar("quiet", default=False)

# Closed choices, so that --help lists every value and Click refuses others (exit 2).
# Model comes from the families registry; the others mirror their library tables
# (fitting.METHODS, fitting.SAMPLERS, the pooling and parametrization options, measures.MEASURES and
# measures.ALIASES), which would cost a second of imports at every --help:
# tests/cli/test_cli_choices.py keeps them equal.
Model = Enum("Model", {name: name for name in REGISTRY}, type=str)
Method = Enum("Method", {m: m for m in ("auto", "mcmc", "exact")}, type=str)
# SBC calibrates one engine at a time: no auto
SBCMethod = Enum("SBCMethod", {m: m for m in ("mcmc", "exact")}, type=str)
Parametrization = Enum(
    "Parametrization", {p: p for p in ("auto", "centered", "noncentered")}, type=str
)
Sampler = Enum("Sampler", {s: s for s in ("nutpie", "pymc")}, type=str)
Pooling = Enum("Pooling", {p: p for p in ("partial", "none", "full")}, type=str)
MEASURE_CODES = ("OR", "RR", "RD", "PLO", "MD", "SMD", "PREPOST", "SMCR", "SMCC")
MEASURE_ALIASES = ("MC", "LOGOR", "LOGRR", "HEDGES", "G")
Measure = Enum("Measure", {m: m for m in (*MEASURE_CODES, *MEASURE_ALIASES)}, type=str)
CHOICE = {"case_sensitive": False}

SCHEDULER_HELP = (
    "Where the fits run: 'auto' (a plain loop on 2 cores or when the fits are few and "
    "quick, else a LocalCluster; the manifest says which and why), 'local' (a Dask "
    "LocalCluster with one worker per core), tcp://host:port (a running Dask scheduler) "
    "or 'none' (one after another here)."
)
# the options every many-fit command (sbc, batch, sensitivity) shares
Scheduler = Annotated[str, typer.Option(help=SCHEDULER_HELP)]
Workers = Annotated[
    int | None,
    typer.Option(help="Worker processes of the LocalCluster, at least 1 (default: cores)."),
]
# the options every command shares
Quiet = Annotated[bool, typer.Option(help="Print nothing but errors.")]
Verbose = Annotated[
    bool,
    typer.Option(help="Also show what the libraries underneath log (PyMC, ArviZ, Dask)."),
]


def _user_errors(func: Callable) -> Callable:
    """Report a user's mistake as a message and exit code 2 instead of a traceback.

    Ctrl-C exits 130 with one line; the claims the command took (:func:`_hold`) are
    released however it ends. Third-party logging and warnings stay off the terminal
    unless the command's ``--verbose`` is given (:func:`bayeskit.cli.terminal.hush`).
    """

    @functools.wraps(func)
    def wrapper(*args, **kwargs):
        from bayeskit.cli.terminal import hush
        from bayeskit.errors import UserError

        with contextlib.ExitStack() as held:
            token = _HELD.set(held)
            quiet = _QUIET.set(bool(kwargs.get("quiet")))
            try:
                held.enter_context(hush(verbose=bool(kwargs.get("verbose"))))
                return func(*args, **kwargs)
            except UserError as err:
                typer.echo(f"error: {err}", err=True)
                raise typer.Exit(EXIT_USER_ERROR) from None
            except KeyboardInterrupt:
                typer.echo("interrupted: nothing was written for the unfinished work", err=True)
                raise typer.Exit(EXIT_INTERRUPTED) from None
            finally:
                _QUIET.reset(quiet)
                _HELD.reset(token)

    return wrapper


def _hold(path: Path | None, kind: str | None, force: bool, what: str = "--out") -> Path | None:
    """Claim ``path`` for the rest of the command (:func:`bayeskit.outputs.claim`)."""
    if path is None:
        return None
    from bayeskit.outputs import claim

    return _HELD.get().enter_context(claim(path, kind=kind, force=force, what=what))


def _say(text: str, *, err: bool = False) -> None:
    """Print a paragraph of the command's output, wrapped to the terminal, unless --quiet."""
    if not _QUIET.get():
        from bayeskit.cli.terminal import say

        say(text, err=err)


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
    quiet: Quiet = False,
    verbose: Verbose = False,
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
            _say(
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
        Measure | None,
        typer.Option(
            "--measure",
            "-m",
            help="Effect measure (metafor's codes; MC is PREPOST). Not needed for "
            "study-level tables.",
            **CHOICE,
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
    force: Annotated[bool, typer.Option(help=FORCE_HELP)] = False,
    quiet: Quiet = False,
    verbose: Verbose = False,
) -> None:
    """Compute effect sizes (yi, vi, sei) per study, as metafor's escalc does."""
    from bayeskit.errors import UserError
    from bayeskit.evidence import load_evidence
    from bayeskit.measures import effects as compute
    from bayeskit.outputs import write_file

    if to not in ("only0", "all", "if0all", "none"):
        raise UserError(f"--to must be only0, all, if0all or none (got {to!r})")
    if not -1 <= ri <= 1:
        raise UserError(f"--ri is a correlation and must lie in [-1, 1] (got {ri})")
    if sd_change is not None and sd_change <= 0:
        raise UserError(f"--sd-change must be positive (got {sd_change})")
    _hold(out, None, force)
    table = compute(
        load_evidence(file),
        _value(measure),
        outcome=outcome,
        timepoint=timepoint,
        add=add,
        to=to,
        drop00=drop00,
        ri=ri,
        sd_change=sd_change,
    )
    for study, reason in table.attrs.get("skipped", []):
        if not quiet:
            typer.echo(f"note: left out {study}: {reason}", err=True)
    if out is None:
        from bayeskit.measures import MEASURES

        code = table.attrs.get("measure")
        words = f" ({MEASURES[code].label})" if code in MEASURES else ""
        _print_table(table, title=f"{code or ''} effect sizes{words}".strip())
    else:
        write_file(out, table.to_csv(float_format="%.17g"))
        _say(f"wrote {len(table)} rows to {out}")


@app.command(
    epilog="Example: bayeskit fit models/eight_schools.toml --out runs/schools  |  "
    "bayeskit fit --data data/eight_schools.csv --model normal-normal --prior 'mu=Normal(0, 5)' "
    "--prior 'tau=HalfCauchy(5)' --method exact --out runs/exact"
)
@_user_errors
def fit(
    spec: Annotated[
        Path | None,
        typer.Argument(help="An analysis spec (TOML); or give --data and --model instead."),
    ] = None,
    out: Annotated[Path | None, typer.Option(help="Run directory to write.")] = None,
    data: Annotated[
        list[Path] | None, typer.Option(help="Evidence file(s) (CSV), instead of a spec.")
    ] = None,
    model: Annotated[Model, typer.Option(help="Model family.", **CHOICE)] = "normal-normal",
    measure: Annotated[
        Measure | None,
        typer.Option(help="Effect measure for normal-normal on arm-level data.", **CHOICE),
    ] = None,
    outcome: Annotated[str | None, typer.Option(help="Outcome to analyse.")] = None,
    timepoint: Annotated[str | None, typer.Option(help="Timepoint to analyse.")] = None,
    covariate: Annotated[
        list[str] | None,
        typer.Option(
            help="Meta-regression covariate (repeatable), or one formula such as "
            "'~ route + log(systemic_dose_mg_per_kg)'."
        ),
    ] = None,
    prior: Annotated[
        list[str] | None,
        typer.Option(help="A prior as NAME=DIST, e.g. 'tau=HalfNormal(0.5)' (repeatable)."),
    ] = None,
    pooling: Annotated[
        Pooling | None,
        typer.Option(help="Pooling (default partial); overrides a spec's.", **CHOICE),
    ] = None,
    method: Annotated[
        Method | None,
        typer.Option(
            help="auto (default): the exact engine where it applies (normal-normal), MCMC "
            "otherwise; mcmc: always sample; exact: normal-normal only.",
            **CHOICE,
        ),
    ] = None,
    parametrization: Annotated[
        Parametrization | None,
        typer.Option(
            help="Study effects centred, non-centred, or auto (by the data); overrides a "
            "spec's. Random-effects families only.",
            **CHOICE,
        ),
    ] = None,
    seed: Annotated[
        int | None, typer.Option(help="Random seed (recorded in the manifest).")
    ] = None,
    draws: Annotated[int | None, typer.Option(help="Posterior draws per chain.")] = None,
    tune: Annotated[int | None, typer.Option(help="Tuning steps per chain.")] = None,
    chains: Annotated[int | None, typer.Option(help="Number of chains.")] = None,
    sampler: Annotated[
        Sampler | None, typer.Option(help="NUTS sampler (default nutpie).", **CHOICE)
    ] = None,
    target_accept: Annotated[
        float | None, typer.Option(help="NUTS target acceptance rate.")
    ] = None,
    refit: Annotated[
        bool | None,
        typer.Option(
            "--refit/--no-refit",
            help="Refit an MCMC fit that diverges or misses the exact posterior (target "
            "acceptance 0.95 then 0.99, longer tuning, then the other parametrisation if "
            "divergences persist; 4 attempts at most, the best returned). Default: on, or "
            "the spec's auto_refit.",
            show_default=False,
        ),
    ] = None,
    robustness: Annotated[
        bool | None,
        typer.Option(
            "--robustness/--no-robustness",
            help="Refit an exposure-response model under each reasonable alternative "
            "(robustness.csv; one refit each, with modest draws). Default: when the spec "
            "has a [robustness] section.",
            show_default=False,
        ),
    ] = None,
    force: Annotated[bool, typer.Option(help=FORCE_HELP)] = False,
    strict: Annotated[bool, typer.Option(help="Exit 1 when a diagnostic fails.")] = False,
    quiet: Quiet = False,
    verbose: Verbose = False,
    json_out: Annotated[bool, typer.Option("--json", help="Print the summary as JSON.")] = False,
) -> None:
    """Fit a Bayesian meta-analysis and write its run directory."""
    sampler_flags = {
        k: _value(v)
        for k, v in {
            "method": method,
            "seed": seed,
            "draws": draws,
            "tune": tune,
            "chains": chains,
            "sampler": sampler,
            "target_accept": target_accept,
            "auto_refit": refit,
        }.items()
        if v is not None
    }
    model_flags = {"pooling": _value(pooling), "parametrization": _value(parametrization)}
    model_flags = {k: v for k, v in model_flags.items() if v is not None}
    if spec is not None:
        if data or covariate or prior or measure or outcome or timepoint:
            from bayeskit.errors import UserError

            raise UserError(
                "give either a spec file or --data/--model flags, not both "
                "(sampler flags such as --seed may override a spec)"
            )
        the_spec = _spec_with_flags(spec, sampler_flags, model_flags)
    else:
        the_spec = _spec_from_flags(
            data, model, measure, outcome, timepoint, covariate, prior, model_flags, sampler_flags
        )
    if robustness is not None and (the_spec.robustness is not None) != robustness:
        from bayeskit.spec import RobustnessSpec

        the_spec = the_spec.model_copy(
            update={"robustness": RobustnessSpec() if robustness else None}
        )
    from bayeskit.calibration import check_posterior_size

    # the smallest model has 3 parameters (mu, tau, one theta)
    check_posterior_size(
        chains=the_spec.sampler.chains,
        draws=the_spec.sampler.draws,
        parameters=3,
        option="--draws",
    )
    _hold(out, "run", force)  # before fitting: a second writer of --out is refused at once
    from bayeskit.workflow import fit_spec

    show_progress = not quiet and not json_out and sys.stderr.isatty()
    result, summary, tables = fit_spec(the_spec, progress=show_progress)
    if out is not None:
        from bayeskit.rundir import write_run

        write_run(
            result, out, spec=the_spec.to_toml_dict(), force=force, summary=summary, tables=tables
        )
    if json_out:
        import json

        payload = {
            "verdict": result.verdict,
            "seed": result.settings["seed"],
            "summary": summary.reset_index().to_dict(orient="records"),
        }
        typer.echo(json.dumps(payload, default=float))
    elif not quiet:
        _show_fit(result, summary, tables, out)
    if out is None and not quiet and not json_out:  # --json: the JSON and nothing else
        _say(
            "note: nothing was saved; give --out DIR to keep the run directory (summary, "
            "posterior, diagnostics, report and methods.md)",
            err=True,
        )
    if strict and result.verdict == "fail":
        raise typer.Exit(EXIT_FAILED_DIAGNOSTICS)


def _spec_with_flags(spec: Path, sampler_flags: dict, model_flags: dict):
    """Return the spec file's spec with the sampler flags and model flags applied."""
    from bayeskit.spec import load_spec, spec_from_dict

    loaded = load_spec(spec)
    raw = loaded.model_dump(mode="json", exclude={"base_dir"})
    raw["sampler"] |= sampler_flags
    raw["model"] |= model_flags
    return spec_from_dict(raw, source=str(spec), base_dir=loaded.base_dir)


def _spec_from_flags(data, model, measure, outcome, timepoint, covariate, prior, flags, sampler):
    """Return the spec that --data, --model and the other flags stand for."""
    from bayeskit.errors import UserError
    from bayeskit.spec import spec_from_dict

    if not data:
        raise UserError(
            "say what to fit: a spec file (bayeskit fit models/NAME.toml) or "
            "--data FILE with --model"
        )
    priors = _parse_prior_flags(prior)
    covariates = covariate or None
    if covariates and len(covariates) == 1 and covariates[0].strip().startswith("~"):
        covariates = covariates[0]
    options = {**flags, "covariates": covariates}
    raw = {
        "data": {
            "files": [str(p) for p in data],
            "measure": _value(measure),
            "outcome": outcome,
            "timepoint": timepoint,
        },
        "model": {"family": _value(model)} | {k: v for k, v in options.items() if v},
        "priors": priors,
        "sampler": sampler,
    }
    return spec_from_dict(raw, source="command line", base_dir=Path.cwd())


def _show_fit(result, summary, tables, out) -> None:
    """Print a fit's summary, its answers to questions and its diagnostics' warnings."""
    main_rows = summary[~summary.index.str.startswith("question[")]
    _print_table(
        main_rows,
        title=f"{result.family} ({result.method}) posterior",
        columns=["mean", "sd", "q2.5", "q50", "q97.5"],
    )
    from bayeskit.report.methods import used_priors

    given = result.settings.get("priors_given") or []
    named = used_priors(result.priors, result.idata.posterior.data_vars, keep=given)
    _say("priors: " + "; ".join(f"{k} ~ {v}" for k, v in named.items()))
    if "questions" in tables:
        _print_table(
            tables["questions"].reset_index().set_index("question"),
            title="questions",
            columns=["quantity", "q50", "q2.5", "q97.5", "prob"],
        )
    if "headline" in tables:  # the analyst's headline: one row per answer
        _print_headline(tables["headline"])
    for check in result.checks:
        if check.verdict != "pass":
            _say(f"{check.verdict}: {check.message}", err=True)
    if out is not None:
        _say(f"wrote {out}")


@app.command(epilog="Example: bayeskit report runs/oud_abstinence")
@_user_errors
def report(
    run: Annotated[
        Path, typer.Argument(help="A run directory written by bayeskit fit.", show_default=False)
    ],
    out: Annotated[
        Path | None,
        typer.Option(
            help="Write the report into this new folder instead of the run directory "
            "(for a read-only run)."
        ),
    ] = None,
    force: Annotated[bool, typer.Option(help=FORCE_HELP)] = False,
    quiet: Quiet = False,
    verbose: Verbose = False,
) -> None:
    """Rebuild report.html, report.md and figures/ of a run directory from its files."""
    from bayeskit.outputs import staged_dir
    from bayeskit.report import build_report
    from bayeskit.report.run import load_run

    where = run
    if out is None:
        written = build_report(run)
    else:
        load_run(run)  # a broken run is refused before anything is claimed
        where = _hold(out, "report", force)
        with staged_dir(where, kind="report") as tmp:
            written = build_report(run, out_dir=tmp)
    html = written.get("report.html")
    size = f" ({html.stat().st_size / 1e3:.0f} kB)" if html and html.exists() else ""
    _say(
        f"wrote {where / 'report.html'}{size}, report.md, methods.md and "
        f"{sum(1 for k in written if k.startswith('figures/'))} figure files"
    )


teach_app = typer.Typer(help="Teaching demonstrations.", no_args_is_help=True)
app.add_typer(teach_app, name="teach")


# the options both teaching commands take
TeachMeasure = Annotated[str | None, typer.Option(help="Effect measure for arm-level tables.")]
TeachOutcome = Annotated[str | None, typer.Option(help="Outcome to use.")]
TeachTimepoint = Annotated[str | None, typer.Option(help="Timepoint to use.")]
TeachPrior = Annotated[list[str] | None, typer.Option(help="NAME=DIST for mu or tau (repeatable).")]


@teach_app.command(
    "pooling",
    epilog="Example: bayeskit teach pooling  |  bayeskit teach "
    "pooling --data data/oud_abstinence.csv --measure OR --timepoint '12 months'",
)
@_user_errors
def teach_pooling(
    data: Annotated[
        Path | None,
        typer.Option(
            help="Evidence table; eight schools by default, with the priors of "
            "models/eight_schools.toml."
        ),
    ] = None,
    measure: TeachMeasure = None,
    outcome: TeachOutcome = None,
    timepoint: TeachTimepoint = None,
    prior: TeachPrior = None,
    out: Annotated[
        Path | None,
        typer.Option(help="Folder for pooling.csv, shrinkage.png/svg and narrative.md."),
    ] = None,
    force: Annotated[bool, typer.Option(help=FORCE_HELP)] = False,
    quiet: Quiet = False,
    verbose: Verbose = False,
) -> None:
    """No, partial and complete pooling of the same studies side by side, with shrinkage."""
    from bayeskit import data_path
    from bayeskit.outputs import staged_dir, write_file
    from bayeskit.teach import pooling_comparison, shrinkage_plot

    _hold(out, "teach", force)
    priors = _parse_prior_flags(prior)
    if data is None:
        # the bundled eight schools: the spec's priors (models/eight_schools.toml), so that
        # partial pooling here gives the mu of `bayeskit fit models/eight_schools.toml`
        from bayeskit import models_dir
        from bayeskit.spec import load_spec

        priors = load_spec(models_dir() / "eight_schools.toml").priors | priors
    result = pooling_comparison(
        data or data_path("eight_schools.csv"),
        priors=priors,
        measure=measure,
        outcome=outcome,
        timepoint=timepoint,
    )
    table = result["table"]
    shown = table[["yi", "sei", "none_mean", "partial_mean", "full_mean", "shrinkage"]]
    _print_table(
        shown, "no / partial / complete pooling (posterior means)", columns=list(shown.columns)
    )
    _say(result["narrative"])
    if out is not None:
        with staged_dir(out, kind="teach") as tmp:
            write_file(tmp / "pooling.csv", table.to_csv(float_format="%.10g"))
            shrinkage_plot(table, float(result["full"]["mean"]), tmp / "shrinkage.png")
            write_file(tmp / "narrative.md", result["narrative"] + "\n")
        _say(f"wrote {out}")


@teach_app.command(
    "explore",
    epilog="Example: bayeskit teach explore --out explore.html  |  bayeskit teach explore "
    "--data models/sud_abstinence.toml --out ketamine.html",
)
@_user_errors
def teach_explore(
    out: Annotated[Path, typer.Option(help="The HTML page to write (one self-contained file).")],
    data: Annotated[
        Path | None,
        typer.Option(help="Evidence table or spec (.toml); eight schools by default."),
    ] = None,
    measure: TeachMeasure = None,
    outcome: TeachOutcome = None,
    timepoint: TeachTimepoint = None,
    prior: TeachPrior = None,
    force: Annotated[bool, typer.Option(help=FORCE_HELP)] = False,
    quiet: Quiet = False,
    verbose: Verbose = False,
) -> None:
    """Write a page to open in any browser: tau is a slider, and the estimates move with it."""
    from bayeskit.explorer import explore

    _hold(out, None, force)
    state = explore(
        data,
        out=out,
        priors=_parse_prior_flags(prior),
        measure=measure,
        outcome=outcome,
        timepoint=timepoint,
    )
    _say(f"wrote {out} ({state['label']}; open it in a browser, no network needed)")


def _parse_prior_flags(flags: list[str] | None) -> dict[str, str]:
    from bayeskit.errors import UserError

    priors = {}
    for text in flags or []:
        name, sep, dist = text.partition("=")
        if not sep or not name.strip():
            raise UserError(f"--prior takes NAME=DIST, e.g. 'tau=HalfNormal(0.5)' (got {text!r})")
        name = name.strip()
        if name in priors:
            raise UserError(
                f"--prior gives {name!r} twice: '{name}={priors[name]}' and "
                f"'{name}={dist.strip()}'; give each parameter one prior"
            )
        priors[name] = dist.strip()
    return priors


@app.command(epilog="Example: bayeskit compare runs/partial runs/full --out comparison.csv")
@_user_errors
def compare(
    runs: Annotated[
        list[Path],
        typer.Argument(help="Run directories of fits on the same data.", show_default=False),
    ],
    out: Annotated[Path | None, typer.Option(help="Write the table to this CSV file.")] = None,
    plot: Annotated[Path | None, typer.Option(help="Write a comparison plot (PNG).")] = None,
    force: Annotated[
        bool, typer.Option(help="Replace --out / --plot if they exist and are regular files.")
    ] = False,
    quiet: Quiet = False,
    verbose: Verbose = False,
) -> None:
    """Compare fits on the same data by PSIS-LOO: elpd, its SE, differences and weights."""
    from bayeskit.compare import caveats, compare_runs, plot_comparison
    from bayeskit.errors import UserError
    from bayeskit.outputs import write_file

    if out is not None and plot is not None and out.absolute() == plot.absolute():
        raise UserError(f"--out and --plot name the same file ({out}); give two names")
    _hold(out, None, force)
    _hold(plot, None, force, what="--plot")
    table = compare_runs(runs)
    _print_table(
        table,
        f"LOO comparison ({table.attrs.get('loo', 'PSIS-LOO')})",
        columns=["rank", "elpd", "se", "elpd_diff", "dse", "p", "weight"],
    )
    for line in caveats(table):
        _say(line)
    if out is not None:
        write_file(out, table.to_csv(float_format="%.10g"))
    if plot is not None:
        plot_comparison(table, plot)


@app.command(epilog="Example: bayeskit sensitivity models/oud_abstinence.toml --out runs/oud-sens")
@_user_errors
def sensitivity(
    spec: Annotated[
        Path,
        typer.Argument(
            help="An analysis spec (TOML) with a \\[sensitivity] section.", show_default=False
        ),
    ],
    out: Annotated[
        Path, typer.Option(help="Folder to write sensitivity.csv, .png and psense.csv into.")
    ],
    scheduler: Scheduler = "auto",
    workers: Workers = None,
    force: Annotated[bool, typer.Option(help=FORCE_HELP)] = False,
    quiet: Quiet = False,
    verbose: Verbose = False,
) -> None:
    """Refit under the spec's alternative priors and leaving out each study in turn."""
    from rich.console import Console

    from bayeskit.cli.terminal import muted
    from bayeskit.outputs import staged_dir, write_file, write_json
    from bayeskit.parallel import check_run_options
    from bayeskit.sensitivity import plot
    from bayeskit.sensitivity import sensitivity as run
    from bayeskit.spec import load_spec

    check_run_options(workers=workers)
    the_spec = load_spec(spec)
    out = _hold(out, "sensitivity", force)
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

    console = Console(stderr=True, quiet=quiet)
    columns = [TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn()]
    with Progress(*columns, console=console, transient=True) as bar:
        task = bar.add_task("refitting", total=None)

        def advance(label, done, total):
            bar.update(task, description=f"refitting: {label}", completed=done, total=total)

        with muted(verbose=verbose):  # ArviZ's power-scaling summary prints a notice
            result = run(the_spec, progress=advance, scheduler=scheduler, workers=workers)
    with staged_dir(out, kind="sensitivity") as tmp:
        table = result["table"]
        write_file(tmp / "sensitivity.csv", table.to_csv(index=False, float_format="%.10g"))
        plot(result["table"], tmp / "sensitivity.png")
        if result["psense"] is not None:
            write_file(tmp / "psense.csv", result["psense"].to_csv(float_format="%.10g"))
        write_json(tmp / "manifest.json", {"command": sys.argv, **result["scheduler"]})
    if not quiet:
        table = result["table"].set_index("scenario")
        _print_table(
            table, "sensitivity", columns=["parameter", "mean", "q2.5", "q97.5", "shift_sd"]
        )
        _say(f"wrote {out}")


@app.command(
    epilog="Example: bayeskit sbc --model binomial-normal --replicates 200 --out runs/sbc-bn"
)
@_user_errors
def sbc(
    out: Annotated[Path, typer.Option(help="Run directory to write.")],
    model: Annotated[Model, typer.Option(help="Model family.", **CHOICE)] = "normal-normal",
    replicates: Annotated[
        int, typer.Option(help="Simulated data sets (at least 50: 5 per rank bin).")
    ] = 200,
    studies: Annotated[
        int,
        typer.Option(
            help="Studies per simulated data set (exposure-response uses the bundled design)."
        ),
    ] = 8,
    method: Annotated[
        SBCMethod, typer.Option(help="exact: normal-normal only (the exact engine).", **CHOICE)
    ] = "mcmc",
    draws: Annotated[
        int, typer.Option(help="Posterior draws per replicate after thinning (ranks 0..draws).")
    ] = 99,
    prior: Annotated[
        list[str] | None,
        typer.Option(help="A prior as NAME=DIST replacing the SBC default (repeatable)."),
    ] = None,
    seed: Annotated[int, typer.Option(help="Random seed: same seed, same ranks.")] = 0,
    scheduler: Scheduler = "auto",
    workers: Workers = None,
    force: Annotated[bool, typer.Option(help=FORCE_HELP)] = False,
    quiet: Quiet = False,
    verbose: Verbose = False,
) -> None:
    """Simulation-based calibration: simulate from the prior, refit, check the ranks.

    Writes ranks.csv, summary.csv, figures/sbc.png, report.md and manifest.json. Exits 1
    when a parameter fails (ranks not uniform at the 1% level, or 95% coverage more than
    3 Monte Carlo standard errors from 95%).
    """
    from bayeskit.calibration import check_sbc_options, sbc_family, sbc_passes, write_sbc_run
    from bayeskit.calibration import sbc as run
    from bayeskit.parallel import check_run_options

    method = _value(method)
    family = sbc_family(_value(model), method)
    priors = _parse_prior_flags(prior)
    check_sbc_options(replicates=replicates, studies=studies, draws=draws)
    check_run_options(workers=workers)
    out = _hold(out, "sbc", force)
    settings = {
        "model": family.name,
        "method": method,
        "replicates": replicates,
        "studies": studies,
        "draws": draws,
        "seed": seed,
        "priors": dict(family.sbc.priors) | priors,
    }
    ranks = run(
        family.name,
        method=method,
        replicates=replicates,
        studies=studies,
        priors=priors,
        draws=draws,
        seed=seed,
        scheduler=scheduler,
        workers=workers,
        progress=not quiet,
    )
    settings |= ranks.attrs.get("scheduler", {})  # where the replicates ran, and why
    summary = write_sbc_run(ranks, out, settings=settings, command=sys.argv, force=force)
    if not quiet:
        _print_table(
            summary,
            f"SBC: {family.name} ({method}, {replicates} replicates)",
            columns=["p_uniform", "coverage_50", "coverage_80", "coverage_95"],
        )
        _say(f"wrote {out}")
    if not sbc_passes(summary):
        typer.echo("calibration check failed: see summary.csv and figures/sbc.png", err=True)
        raise typer.Exit(EXIT_FAILED_DIAGNOSTICS)


@app.command(
    epilog="Example: bayeskit batch 'models/*.toml' --out runs/all  |  "
    "bayeskit batch fits.csv --out runs/many --scheduler tcp://10.0.0.5:8786"
)
@_user_errors
def batch(
    source: Annotated[
        str,
        typer.Argument(
            help="A glob of spec files (quote it), or a manifest CSV with columns name, spec "
            "and optionally data, seed, method.",
            show_default=False,
        ),
    ],
    out: Annotated[
        Path, typer.Option(help="Batch folder: fits/<name>/, batch.csv, manifest.json.")
    ],
    scheduler: Scheduler = "auto",
    workers: Workers = None,
    retries: Annotated[int, typer.Option(help="Retries of a failed fit (0 or more).")] = 2,
    seed: Annotated[int, typer.Option(help="Seeds the fits whose spec has no seed.")] = 0,
    report: Annotated[
        bool, typer.Option(help="Also write each fit's HTML report and figures.")
    ] = False,
    force: Annotated[
        bool,
        typer.Option(
            help="Refit everything; by default finished fits are skipped. Never deletes: "
            "a folder that is not a batch folder, or holds files bayeskit did not write, "
            "is refused."
        ),
    ] = False,
    quiet: Quiet = False,
    verbose: Verbose = False,
) -> None:
    """Run many fits (on Dask) and gather their summaries; re-running resumes.

    A fit whose run directory already holds the same task (spec, data, seed) is skipped,
    so a batch that was interrupted carries on where it stopped. Exits 1 when a fit
    failed (its error is in batch.csv).
    """
    from bayeskit.batches import batch as run
    from bayeskit.parallel import check_run_options

    check_run_options(workers=workers, retries=retries)
    table = run(
        source,
        out,
        scheduler=scheduler,
        workers=workers,
        retries=retries,
        seed=seed,
        force=force,
        report=report,
        progress=not quiet,
    )
    fits = table.drop_duplicates("name")
    failed = fits[fits["status"] != "done"]
    if not quiet:
        typer.echo(f"{len(fits) - len(failed)} of {len(fits)} fits done; wrote {out}")
    for row in failed.itertuples():
        typer.echo(f"error: {row.name}: {getattr(row, 'message', '')}", err=True)
    if len(failed):
        raise typer.Exit(EXIT_FAILED_DIAGNOSTICS)


def _value(choice):
    """Return the plain value of an Enum choice (None stays None)."""
    return choice.value if isinstance(choice, Enum) else choice


def _print_headline(headline) -> None:
    """Print the headline table in one piece: the answer column wraps, the others do not.

    print_table splits columns that do not fit beside a label of up to 32 characters;
    this table has four text columns that belong together, so it is printed here.
    """
    if _QUIET.get():
        return
    from rich import box
    from rich.console import Console
    from rich.markup import escape
    from rich.table import Table

    from bayeskit.report.robustness import headline_cells

    cells = headline_cells(headline, short=True)
    cells.columns = ["answer", "median (95% CI)", "P(benefit)", "evidence", "robustness"]
    console = Console()
    console.print(
        "headline: differences in percentage points (binary outcomes); robust: the "
        "direction holds under every alternative (robustness.csv)",
        markup=False,
        highlight=False,
    )
    view = Table(box=box.SIMPLE_HEAD)
    view.add_column("answer", overflow="fold", ratio=1)
    for c in cells.columns[1:]:
        view.add_column(escape(c), no_wrap=True)
    for row in cells.itertuples(index=False):
        view.add_row(*(escape(str(v)) for v in row))
    console.print(view)


def _print_table(table, title: str, columns: list[str] | None = None) -> None:
    """Print a table that fits the terminal (:func:`bayeskit.cli.terminal.print_table`)."""
    if _QUIET.get():
        return
    from bayeskit.cli.terminal import print_table

    default = ["yi", "sei", "route", "dose_mg_per_kg", "sessions", "design"]
    print_table(table, title, columns or default)


def main() -> None:
    """Run the command line (the ``bayeskit`` console script)."""
    app(prog_name="bayeskit")


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
