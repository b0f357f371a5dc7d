"""``modelyard db``: the schema migrated as a step of its own, and waited for by others."""

from __future__ import annotations

import threading

import pytest
from typer.testing import CliRunner

from modelyard.cli.main import app
from modelyard.config import Settings
from modelyard.store.engine import open_database
from modelyard.store.migrations import SCHEMA_REVISION, current_revision
from modelyard.tracking.backends import database_for, reset_cache


@pytest.fixture
def home(tmp_path):
    yield tmp_path / "yard"
    reset_cache()


def db(home, *args: str):
    return CliRunner().invoke(app, ["--home", str(home), "db", *args])


def revision_of(home) -> str | None:
    database = open_database(Settings(home=home).resolved_store_uri())
    try:
        return current_revision(database)
    finally:
        database.dispose()


def test_upgrade_creates_the_schema_and_says_its_revision(home):
    result = db(home, "upgrade")
    assert result.exit_code == 0, result.output
    assert f"at schema revision {SCHEMA_REVISION}" in result.output
    assert revision_of(home) == SCHEMA_REVISION
    assert db(home, "upgrade").exit_code == 0  # again: nothing to do


def test_wait_returns_at_once_on_a_current_schema(home):
    db(home, "upgrade")
    result = db(home, "wait", "--timeout", "5s")
    assert result.exit_code == 0, result.output
    assert SCHEMA_REVISION in result.output


def test_wait_never_migrates_and_gives_up_naming_the_fix(home):
    result = db(home, "wait", "--timeout", "0.3", "--interval", "0.1")
    assert result.exit_code == 2
    assert "modelyard db upgrade" in result.output and SCHEMA_REVISION in result.output
    assert revision_of(home) is None  # waiting created no schema


def test_wait_returns_once_someone_else_migrates(home):
    migrator = threading.Timer(0.3, lambda: database_for(Settings(home=home)))
    migrator.start()
    try:
        result = db(home, "wait", "--timeout", "30s", "--interval", "0.1")
    finally:
        migrator.join()
    assert result.exit_code == 0, result.output


def test_db_refuses_a_tracking_uri(home, monkeypatch):
    monkeypatch.setenv("MODELYARD_TRACKING_URI", "http://elsewhere:5000")
    result = db(home, "upgrade")
    assert result.exit_code == 2 and "MODELYARD_TRACKING_URI" in result.output


def stamp(home, revision: str) -> None:
    import sqlite3

    reset_cache()
    with sqlite3.connect(home / "modelyard.db") as conn:
        conn.execute("UPDATE alembic_version SET version_num = ?", (revision,))


@pytest.mark.parametrize("revision", ["9999", "0010a"])  # "0010a" < "0017" as a string
def test_wait_refuses_a_schema_this_code_does_not_know_at_once(home, revision):
    """Whatever its revision sorts like: the migrations this code has decide, as they do
    for a starting server (a hang until the timeout would be the failure)."""
    db(home, "upgrade")
    stamp(home, revision)
    result = db(home, "wait", "--timeout", "1m")
    assert result.exit_code == 2
    message = " ".join(result.output.split())
    assert f"at schema revision '{revision}', which this modelyard" in message
    assert f"(schema revisions up to '{SCHEMA_REVISION}') does not know" in message


def test_wait_keeps_waiting_on_an_older_schema(home):
    db(home, "upgrade")
    stamp(home, "0014")
    result = db(home, "wait", "--timeout", "0.3", "--interval", "0.1")
    assert result.exit_code == 2
    message = " ".join(result.output.split())
    assert "at revision 0014 after 0.3" in message and "modelyard db upgrade" in message


def test_wait_says_at_once_why_it_cannot_reach_the_database_and_again_when_it_gives_up(home):
    folder = home / "a-folder"
    folder.mkdir(parents=True)
    result = db(home, "wait", "--store-uri", f"sqlite:///{folder}", "--timeout", "0.3",
                "--interval", "0.1")  # fmt: skip
    assert result.exit_code == 2
    lines = result.output.splitlines()
    assert "cannot reach" in lines[0] and "unable to open database file" in lines[0]
    assert "could not reach" in result.output and "in 0.3: unable to open" in result.output
    assert result.output.count("unable to open database file") == 2  # not once per look
