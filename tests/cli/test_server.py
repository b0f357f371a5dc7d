"""``modelyard server`` as the root command runs it: without the ``server`` extra it says
which to install in one line and exits 2 (the server itself:
tests/server/control/test_cli_server.py)."""

from __future__ import annotations

import sys

import pytest
from typer.testing import CliRunner

from modelyard.cli.main import app


@pytest.mark.parametrize("module", ["uvicorn", "starlette"])
def test_without_the_server_extra_it_says_so_in_one_line_and_exits_2(tmp_path, monkeypatch, module):
    for loaded in [m for m in sys.modules if m == module or m.startswith(f"{module}.")]:
        monkeypatch.delitem(sys.modules, loaded)
    monkeypatch.delitem(sys.modules, "modelyard.server.control.app", raising=False)
    monkeypatch.setitem(sys.modules, module, None)  # as if it were not installed
    result = CliRunner().invoke(app, ["--home", str(tmp_path / "yard"), "server"])
    assert result.exit_code == 2, result.output
    assert result.stderr.strip().splitlines() == [
        f"error: modelyard server needs the '{module}' package: pip install 'modelyard[server]'"
    ]
