"""A wheel built from the repository carries the bundled data and specs, and the CLI."""

import subprocess
import sys
import zipfile

import pytest

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


def test_wheel_has_console_script_and_no_top_level_cli(wheel):
    archive = zipfile.ZipFile(wheel)
    names = archive.namelist()
    assert "cli.py" not in names
    assert not any(n.startswith("cli/") for n in names)
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
