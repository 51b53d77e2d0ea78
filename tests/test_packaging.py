"""An installed (non-editable) keras_sparse holds every module of the checkout."""

import pathlib

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[1]


def test_every_subpackage_is_installed(monkeypatch):
    setupcfg = pytest.importorskip("setuptools.config.setupcfg")
    source = ROOT / "keras_sparse"
    folders = {path.parent for path in source.rglob("*.py") if "__pycache__" not in path.parts}
    assert all((folder / "__init__.py").exists() for folder in folders), folders  # no namespace folders
    expected = {".".join(folder.relative_to(ROOT).parts) for folder in folders}
    assert {"keras_sparse", "keras_sparse.tasks"} <= expected
    monkeypatch.chdir(ROOT)  # `find:` searches the working directory
    packages = setupcfg.read_configuration(ROOT / "setup.cfg")["options"]["packages"]
    assert set(packages) == expected
