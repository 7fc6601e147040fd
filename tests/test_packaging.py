"""A wheel built from the repository carries the bundled data and specs, and the CLI."""

import ast
import re
import subprocess
import sys
import tomllib
import zipfile
from importlib.metadata import version
from pathlib import Path

import pytest
from packaging.requirements import Requirement

from tests.conftest import ROOT


@pytest.fixture(scope="module")
def wheel(tmp_path_factory):
    out = tmp_path_factory.mktemp("wheel")
    result = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(out), str(ROOT)],
        capture_output=True,
        text=True,
        check=False,
    )
    if result.returncode != 0:
        pytest.fail(f"building the wheel failed:\n{result.stderr[-2000:]}")
    (path,) = out.glob("bayeskit-*.whl")
    return path


def test_wheel_carries_data_and_models(wheel):
    names = zipfile.ZipFile(wheel).namelist()
    data = {ROOT / "data" / n.split("_bundled/data/")[1] for n in names if "_bundled/data/" in n}
    assert {p for p in (ROOT / "data").glob("*.csv")} <= data
    assert any("_bundled/models/" in n for n in names)


def test_wheel_carries_the_explorer_page(wheel):
    from bayeskit.explorer import PAGE_FILES

    names = set(zipfile.ZipFile(wheel).namelist())
    assert {f"bayeskit/explorer/{name}" for name in PAGE_FILES} <= names


def test_wheel_has_console_script_and_no_top_level_cli(wheel):
    archive = zipfile.ZipFile(wheel)
    names = archive.namelist()
    assert "cli.py" not in names
    assert not any(n.startswith("cli/") for n in names)
    assert not any(n.startswith("examples/") for n in names)  # source distribution only
    entry = next(n for n in names if n.endswith("entry_points.txt"))
    assert "bayeskit = bayeskit.cli:main" in archive.read(entry).decode()


def test_installed_wheel_finds_bundled_data_from_any_folder(wheel, tmp_path):
    target = tmp_path / "site"
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "install",
            "--no-deps",
            "-q",
            "--target",
            str(target),
            str(wheel),
        ],
        check=True,
        capture_output=True,
    )
    code = (
        "import bayeskit, bayeskit._resources as r; "
        "print(bayeskit.__file__); print(r.data_path('routes.csv'))"
    )
    result = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        env={"PYTHONPATH": str(target)},
        check=True,
    )
    module, routes = result.stdout.split()
    assert module.startswith(str(target))
    assert routes.startswith(str(target)) and routes.endswith("_bundled/data/routes.csv")


def test_public_names_stay_functions_after_their_modules_are_imported():
    # importing a submodule sets it as an attribute of the package: a module named like
    # an export (bayeskit/sbc.py beside bk.sbc) would replace the function by the module
    import importlib
    import inspect

    import bayeskit as bk

    for name, module in bk._EXPORTS.items():
        importlib.import_module(module)
        assert not inspect.ismodule(getattr(bk, name)), name
    assert callable(bk.sbc) and callable(bk.batch) and callable(bk.build_model)


# Top-level modules whose distribution is named otherwise (names that differ only in
# "_" against "-" or in case need no line). Add one when bayeskit imports such a module,
# e.g. "yaml": "pyyaml" or "PIL": "pillow".
IMPORT_TO_DISTRIBUTION = {
    "distributed": "dask[distributed]",  # dask's scheduler, declared through dask's extra
}


def _normalise(name: str) -> str:
    """PEP 503 normalised distribution name."""
    return re.sub(r"[-_.]+", "-", name).lower()


def _third_party_imports(folder: Path) -> dict[str, set[str]]:
    """Top-level modules imported by the .py files under ``folder``, with the files."""
    found: dict[str, set[str]] = {}
    for path in sorted(folder.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names = [node.module]  # relative imports (level > 0) are the package's own
            else:
                continue
            for name in names:
                top = name.split(".")[0]
                if top not in sys.stdlib_module_names and top != folder.name:
                    found.setdefault(top, set()).add(path.name)
    return found


def _declared(requirements: list[str]) -> set[str]:
    """Each requirement's distribution, and ``name[extra]`` for each extra it asks for."""
    out = set()
    for line in requirements:
        req = Requirement(line)
        out.add(_normalise(req.name))
        out |= {f"{_normalise(req.name)}[{extra}]" for extra in req.extras}
    return out


def _undeclared(imports: dict[str, set[str]], declared: set[str]) -> dict[str, set[str]]:
    return {
        module: files
        for module, files in imports.items()
        if _normalise(IMPORT_TO_DISTRIBUTION.get(module, module)) not in declared
    }


def _dependencies() -> list[str]:
    return tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"]


def test_every_third_party_module_bayeskit_imports_is_a_declared_dependency():
    imports = _third_party_imports(ROOT / "bayeskit")
    assert {"numpy", "pymc", "pydantic", "nutpie", "numba"} <= set(imports)  # parser works
    assert _undeclared(imports, _declared(_dependencies())) == {}


def test_an_undeclared_import_is_caught(tmp_path):
    package = tmp_path / "pkg"
    package.mkdir()
    (package / "a.py").write_text(
        "import os, yaml.constructor\nfrom pydantic import BaseModel\nfrom . import b\n"
        "from pkg.b import c\nimport distributed\nimport arviz_stats\n"
    )
    imports = _third_party_imports(package)
    assert set(imports) == {"yaml", "pydantic", "distributed", "arviz_stats"}
    declared = _declared(["pydantic>=2", "dask[distributed]>=2025.1", "arviz-stats>=1"])
    assert _undeclared(imports, declared) == {"yaml": {"a.py"}}


def test_installed_versions_satisfy_the_declared_ranges():
    # the tests run against what is installed: a range that excludes it is untested
    for line in _dependencies():
        req = Requirement(line)
        assert req.specifier.contains(version(req.name), prereleases=True), line
