"""``modelyard audit log|verify``: read the trail, and detect tampering done in the database."""

from __future__ import annotations

import json
import sqlite3

import pytest
import typer
from typer.testing import CliRunner

from modelyard.cli import audit, main, models
from modelyard.config import Settings
from modelyard.registry.client import RegistryClient


def registry_app() -> typer.Typer:
    """The root ``modelyard`` app once it registers ``models`` and ``audit``; until then the
    same root callback and error handling, composed with them here."""
    if {"models", "audit"} <= {group.name for group in main.app.registered_groups}:
        return main.app
    app = typer.Typer(cls=main.ModelyardGroup, no_args_is_help=True, add_completion=False)
    app.callback()(main.root)
    app.add_typer(models.app, name="models")
    app.add_typer(audit.app, name="audit")
    return app


@pytest.fixture
def home(tmp_path):
    home = tmp_path / "yard"
    registry = RegistryClient.from_settings(Settings(home=home, user="ana"))
    registry.create_registered_model("churn", "first")
    registry.update_registered_model("churn", "second")
    registry.create_registered_model("demand")
    return home


@pytest.fixture
def cli(home):
    runner, app = CliRunner(), registry_app()
    return lambda *args: runner.invoke(app, ["--home", str(home), *args])


def test_log_lists_events_and_filters_by_model(cli):
    everything = cli("audit", "log")
    churn = cli("audit", "log", "--model", "churn", "--json")

    assert everything.exit_code == 0
    assert "3 audit events" in everything.output
    events = [json.loads(line) for line in churn.output.splitlines()]
    assert [e["action"] for e in events] == ["model.create", "model.update"]
    assert events[1]["before"] == {"description": "first"}
    assert events[1]["actor"] == "ana"


def test_verify_passes_on_an_untouched_trail(cli):
    result = cli("audit", "verify")
    assert result.exit_code == 0
    assert "audit trail intact: 3 entries" in result.output


def test_verify_fails_and_names_the_entry_edited_in_the_database(cli, home):
    with sqlite3.connect(home / "modelyard.db") as conn:
        conn.execute('UPDATE audit_events SET after = \'{"description":"forged"}\' WHERE seq = 2')

    result = cli("audit", "verify")

    assert result.exit_code == 1
    assert "broken at entry #2" in result.output
    assert "edited after it was recorded" in result.output


def test_verify_with_an_unknown_anchor_fails(cli):
    result = cli("audit", "verify", "--anchor", "0" * 63 + "1")
    assert result.exit_code == 1
    assert "history was rewritten" in result.output
