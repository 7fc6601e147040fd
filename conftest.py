"""Fixtures for every test, the doctests in ``bayeskit/`` included."""

import tempfile

import pytest


@pytest.fixture(autouse=True)
def _temporary_files_in_tmp_path(tmp_path, monkeypatch):
    """Send ``tempfile``'s folders (and those of processes a test starts) to ``tmp_path``.

    The docstring examples make their folders with ``tempfile.mkdtemp()``, as a user
    would; pytest removes ``tmp_path`` with its old runs, so a test run leaves no folders
    behind in the system's temporary folder.
    """
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    monkeypatch.setenv("TMPDIR", str(tmp_path))
