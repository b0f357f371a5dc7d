"""Schema creation and upgrades happen by themselves, and agree with the migrations."""

from __future__ import annotations

import math
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import text

from modelyard.errors import SchemaTooNew
from modelyard.store.engine import open_database
from modelyard.store.migrations import (
    ALEMBIC_DIR,
    SCHEMA_REVISION,
    current_revision,
    ensure_schema,
    head_revision,
    refuse_too_new,
    upgrade,
)
from modelyard.store.schema import DIALECT_INDEXES, load_all_tables


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
        diffs = compare_metadata(_context(conn), load_all_tables())
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
        diffs = compare_metadata(_context(conn), load_all_tables())
    assert diffs == []
    db.dispose()


def test_an_older_database_is_upgraded(tmp_path):
    db = open_database(f"sqlite:///{tmp_path / 'm.db'}")
    upgrade(db, "0001")
    ensure_schema(db)
    assert current_revision(db) == SCHEMA_REVISION


def test_every_revision_up_to_the_codes_is_accepted_and_no_other():
    """The migration scripts order revisions, not their spelling: "0010a" sorts before
    the code's revision as a string, yet no script has it, so a newer modelyard wrote it."""
    for script in sorted((ALEMBIC_DIR / "versions").glob("[0-9]*.py")):
        refuse_too_new("sqlite:///m.db", script.name.split("_")[0])  # no error
    for unknown in ["9999", "0010a", "ae1027a6acf", ""]:
        with pytest.raises(SchemaTooNew) as refused:
            refuse_too_new("postgresql+psycopg://modelyard:***@db/yard", unknown)
        assert refused.value.field == "store_uri"
        assert f"at schema revision {unknown!r}, which this modelyard" in str(refused.value)
        assert "modelyard:***@db/yard" in str(refused.value)


def test_a_database_at_an_unknown_revision_that_sorts_lower_is_refused_not_upgraded(tmp_path):
    db = open_database(f"sqlite:///{tmp_path / 'm.db'}")
    ensure_schema(db)
    with db.engine.begin() as conn:
        conn.execute(text("UPDATE alembic_version SET version_num = '0010a'"))
    with pytest.raises(SchemaTooNew, match="'0010a'"):
        ensure_schema(db)
    assert current_revision(db) == "0010a"
    db.dispose()


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


def test_upgrading_moves_metric_histories_into_chunks_and_downgrading_brings_them_back(
    backend_settings,
):
    from modelyard.store.migrations import downgrade
    from modelyard.tracking.entities import Metric
    from modelyard.tracking.sql_store import SqlTrackingStore

    uri = backend_settings.resolved_store_uri()
    run_id = "a" + "0" * 30 + "1"
    db = open_database(uri)
    upgrade(db, "0006")
    points = [(0, 10, 0.5, False), (1, 11, 0.0, True), (1, 12, 0.25, False), (2, 13, -1.0, False)]
    with db.engine.begin() as conn:
        conn.execute(
            text(
                "INSERT INTO experiments (experiment_id, name, artifact_location, "
                "lifecycle_stage, creation_time, last_update_time) "
                "VALUES (7, 'old', 'x', 'active', 0, 0)"
            )
        )
        conn.execute(
            text(
                "INSERT INTO runs (run_id, experiment_id, run_name, user_id, status, "
                "start_time, lifecycle_stage, artifact_uri) "
                "VALUES (:r, 7, 'r', 'u', 'RUNNING', 0, 'active', 'x')"
            ),
            {"r": run_id},
        )
        conn.execute(text("INSERT INTO params VALUES (:r, 'lr', '0.1')"), {"r": run_id})
        conn.execute(text("INSERT INTO tags VALUES (:r, 'team', 'x')"), {"r": run_id})
        for step, ts, value, nan in points:
            conn.execute(
                text("INSERT INTO metrics VALUES (:r, 'loss', :s, :t, :v, :n)"),
                {"r": run_id, "s": step, "t": ts, "v": value, "n": nan},
            )
    db.dispose()

    db = open_database(uri)
    ensure_schema(db)
    store = SqlTrackingStore(db)
    history = list(store.get_metric_history(run_id, "loss"))
    run = store.get_run(run_id)
    replayed = Metric("loss", 5.0, 20, 3)
    store.log_batch(run_id, metrics=[replayed])
    store.log_batch(run_id, metrics=[replayed])  # a retried batch: stored twice, shown once
    db.dispose()
    assert run.data.params == {"lr": "0.1"} and run.data.tags["team"] == "x"
    assert [(m.step, m.timestamp) for m in history] == [(s, t) for s, t, _, _ in points]
    assert math.isnan(history[1].value) and history[3].value == -1.0

    db = open_database(uri)
    downgrade(db, "0006")
    with db.engine.connect() as conn:
        rows = conn.execute(text("SELECT step, timestamp, value, is_nan FROM metrics")).all()
        kept = conn.execute(text("SELECT count(*) FROM params")).scalar()
    db.dispose()
    assert kept == 1
    assert sorted(tuple(r) for r in rows) == sorted([*points, (3, 20, 5.0, False)])


@pytest.mark.parametrize("path", ["fast", "alembic"])
def test_params_and_tags_are_clustered_on_their_key_in_sqlite(tmp_path, path):
    db = open_database(f"sqlite:///{tmp_path / 'm.db'}")
    ensure_schema(db) if path == "fast" else upgrade(db)
    with db.engine.connect() as conn:
        found = dict(
            conn.execute(
                text("SELECT name, sql FROM sqlite_master WHERE name IN ('params', 'tags')")
            ).all()
        )
    db.dispose()
    assert set(found) == {"params", "tags"}
    assert all("WITHOUT ROWID" in sql for sql in found.values())


def _context(conn):
    """A comparison that leaves out the indexes made by DDL of their own, one form per
    database (``store.schema.value_index``: not in the table definitions)."""

    def included(obj, name, type_, reflected, compare_to):
        return not (type_ == "index" and name in DIALECT_INDEXES)

    return MigrationContext.configure(conn, opts={"include_object": included})


def test_the_indexes_made_per_database_are_the_same_by_first_use_and_by_migrations(
    backend_settings,
):
    """The comparison above leaves them out (``DIALECT_INDEXES``), so they are compared
    here as the database itself describes them — a covering, partial index on PostgreSQL
    (migration 0018) must be what a new store gets too."""
    db = open_database(backend_settings.resolved_store_uri())
    ensure_schema(db)
    first_use = _dialect_index_definitions(db)
    _drop_everything(db)
    upgrade(db)
    migrated = _dialect_index_definitions(db)
    db.dispose()
    digests = {name for name in DIALECT_INDEXES if name.endswith("_value_digest")}
    assert set(first_use) == set(DIALECT_INDEXES) - (digests if db.is_sqlite else set())
    assert migrated == first_use
    if not db.is_sqlite:
        assert "INCLUDE (run_id)" in first_use["ix_params_value"]
        assert "WHERE (octet_length(value) <= 512)" in first_use["ix_params_value"]
        assert "md5(value)" in first_use["ix_params_value_digest"]
        assert "INCLUDE (run_id)" in first_use["ix_latest_metrics_key_value"]


def _dialect_index_definitions(db) -> dict[str, str]:
    query = (
        "SELECT name, sql FROM sqlite_master WHERE type = 'index'"
        if db.is_sqlite
        else "SELECT indexname, indexdef FROM pg_indexes WHERE schemaname = current_schema()"
    )
    with db.engine.connect() as conn:
        found = {name: sql for name, sql in conn.execute(text(query)).all()}
    return {name: sql.replace('"', "") for name, sql in found.items() if name in DIALECT_INDEXES}


def _drop_everything(db) -> None:
    if db.is_sqlite:
        path = db.engine.url.database
        db.engine.dispose()
        Path(path).unlink()
        for suffix in ("-wal", "-shm"):
            Path(path + suffix).unlink(missing_ok=True)
        return
    with db.engine.begin() as conn:
        conn.execute(text("DROP SCHEMA public CASCADE"))
        conn.execute(text("CREATE SCHEMA public"))
