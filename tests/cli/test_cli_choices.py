"""The CLI's closed choices: every value listed in --help, and equal to the library's."""

import re
import typing

import pytest
from typer.testing import CliRunner

from bayeskit.cli import Measure, Method, Model, Parametrization, Pooling, Sampler, app
from bayeskit.families import FAMILIES
from bayeskit.families._random_effects import RandomEffectsOptions
from bayeskit.fitting import METHODS, SAMPLERS
from bayeskit.measures import ALIASES, MEASURES

runner = CliRunner()
COMMANDS = ["validate", "effects", "fit", "report", "compare", "sensitivity", "sbc", "batch"]


def help_text(*command: str) -> str:
    result = runner.invoke(app, [*command, "--help"], env={"COLUMNS": "400"})
    assert result.exit_code == 0, result.output
    # rich draws boxes; keep the words
    return re.sub(r"\s+", " ", re.sub(r"[│╭╮╰╯─]", " ", result.output))


def test_choices_equal_the_library_tables():
    assert [m.value for m in Model] == list(FAMILIES)
    assert [m.value for m in Method] == list(METHODS)
    assert [s.value for s in Sampler] == list(SAMPLERS)
    pooling = RandomEffectsOptions.model_fields["pooling"].annotation
    assert [p.value for p in Pooling] == list(typing.get_args(pooling))
    forms = RandomEffectsOptions.model_fields["parametrization"].annotation
    assert sorted(p.value for p in Parametrization) == sorted(typing.get_args(forms))
    assert {m.value for m in Measure} == set(MEASURES) | set(ALIASES)


@pytest.mark.parametrize(
    ("command", "option", "values"),
    [
        ("fit", "--model", list(FAMILIES)),
        ("sbc", "--model", list(FAMILIES)),
        ("fit", "--method", ["auto", "mcmc", "exact"]),
        ("fit", "--parametrization", ["auto", "centered", "noncentered"]),
        ("sbc", "--method", ["mcmc", "exact"]),
        ("fit", "--sampler", ["nutpie", "pymc"]),
        ("fit", "--pooling", ["partial", "none", "full"]),
        ("fit", "--measure", [m.lower() for m in (*MEASURES, *ALIASES)]),
        ("effects", "--measure", [m.lower() for m in (*MEASURES, *ALIASES)]),
    ],
)
def test_help_lists_every_value(command, option, values):
    text = help_text(command).replace(" ", "")
    listed = re.search(re.escape(option) + r"(?:,-\w)?(?:-\w)?<([^>]*)>", text)
    assert listed, text
    assert listed.group(1).split("|") == values


@pytest.mark.parametrize("command", COMMANDS)
def test_every_help_renders_its_text_intact(command):
    text = help_text(command)
    # rich markup would eat anything in square brackets, such as [sensitivity]
    assert "with a section" not in text and "  section" not in text
    assert "Example:" in text


def test_sensitivity_help_names_its_section():
    assert "with a [sensitivity] section" in help_text("sensitivity")


def test_a_value_outside_a_choice_is_exit_2():
    result = runner.invoke(app, ["fit", "--data", "x.csv", "--model", "probit"])
    assert result.exit_code == 2 and "probit" in result.output


def test_the_cli_calls_no_private_helper_of_another_module():
    import ast
    from pathlib import Path

    import bayeskit.cli

    tree = ast.parse(Path(bayeskit.cli.__file__).read_text(encoding="utf-8"))
    private = [
        f"{node.module}.{alias.name}"
        for node in ast.walk(tree)
        if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("bayeskit")
        for alias in node.names
        if (alias.name.startswith("_") and not alias.name.startswith("__"))
        or any(p.startswith("_") for p in node.module.split("."))
    ]
    assert not private, private
