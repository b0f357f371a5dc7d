"""For the examples in the package's docstrings (``make test`` runs them with
``--doctest-modules``): each runs in a fresh temporary folder, its working directory,
which the examples call ``tmp_home`` when they need a modelyard home."""

from __future__ import annotations

from pathlib import Path

import pytest


@pytest.fixture(autouse=True)
def _example_folder(
    doctest_namespace: dict[str, object], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    doctest_namespace["tmp_home"] = tmp_path
    monkeypatch.chdir(tmp_path)
