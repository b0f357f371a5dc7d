"""Schema creation and upgrades happen by themselves, and agree with the migrations."""

from __future__ import annotations

import sqlite3
import subprocess
import sys

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import text

from modelyard.store.engine import open_database
from modelyard.store.migrations import (
    SCHEMA_REVISION,
    current_revision,
    ensure_schema,
    head_revision,
    upgrade,
)
from modelyard.store.schema import load_all_tables


def test_the_code_expects_the_newest_migration():
    assert head_revision() == SCHEMA_REVISION


@pytest.mark.parametrize("path", ["fast", "alembic"])
def test_first_use_and_migrations_build_the_same_schema(tmp_path, path):
    db = open_database(f"sqlite:///{tmp_path / 'm.db'}")
    if path == "fast":
        ensure_schema(db)
    else:
        upgrade(db)
    assert current_revision(db) == SCHEMA_REVISION
    with db.engine.connect() as conn:
        diffs = compare_metadata(MigrationContext.configure(conn), load_all_tables())
    assert diffs == []


@pytest.mark.parametrize("path", ["fast", "alembic"])
def test_one_production_version_per_model_is_a_partial_index_on_postgres(postgres_uri, path):
    db = open_database(postgres_uri)
    if path == "fast":
        ensure_schema(db)
    else:
        upgrade(db)
    with db.engine.connect() as conn:
        definition = conn.execute(
            text("SELECT indexdef FROM pg_indexes WHERE indexname = :n"),
            {"n": "uq_model_versions_one_production"},
        ).scalar()
    db.dispose()
    assert "UNIQUE" in definition and "WHERE" in definition and "Production" in definition


def test_a_sqlite_store_never_loads_postgresql_code(tmp_path):
    script = (
        "import sys; from modelyard.store.engine import open_database; "
        "from modelyard.store.migrations import ensure_schema; "
        f"ensure_schema(open_database('sqlite:///{tmp_path / 's.db'}')); "
        "print(any(m.startswith('sqlalchemy.dialects.postgresql') for m in sys.modules))"
    )
    found = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True)
    assert found.stdout.strip() == "False", found.stderr


def test_the_schema_matches_on_postgres(postgres_uri):
    db = open_database(postgres_uri)
    upgrade(db)
    with db.engine.connect() as conn:
        diffs = compare_metadata(MigrationContext.configure(conn), load_all_tables())
    assert diffs == []
    db.dispose()


def test_an_older_database_is_upgraded(tmp_path):
    db = open_database(f"sqlite:///{tmp_path / 'm.db'}")
    upgrade(db, "0001")
    ensure_schema(db)
    assert current_revision(db) == SCHEMA_REVISION


def test_sqlite_runs_in_wal_mode_with_a_busy_timeout(tmp_path):
    db = open_database(f"sqlite:///{tmp_path / 'm.db'}")
    ensure_schema(db)
    with db.engine.connect() as conn:
        assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
        assert conn.exec_driver_sql("PRAGMA busy_timeout").scalar() >= 10_000
    assert sqlite3.connect(tmp_path / "m.db").execute("PRAGMA journal_mode").fetchone() == ("wal",)


def test_a_bad_store_uri_says_what_to_use():
    from modelyard.errors import InvalidParameter

    with pytest.raises(InvalidParameter, match="sqlite:///"):
        open_database("not a url")
    with pytest.raises(InvalidParameter, match="not supported"):
        open_database("mysql://x@y/z")


def test_every_migration_downgrades_cleanly(backend_settings):
    from sqlalchemy import inspect

    from modelyard.store.migrations import downgrade

    db = open_database(backend_settings.resolved_store_uri())
    upgrade(db)
    downgrade(db, "base")
    with db.engine.connect() as conn:
        assert set(inspect(conn).get_table_names()) <= {"alembic_version"}
    db.dispose()
