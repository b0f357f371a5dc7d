"""Several replicas starting at once on one database: one creates or upgrades the schema,
the others wait for it and then find it current; a replica whose code is older than the
database refuses to run and changes nothing.

Replicas are real processes (forked, each opening its own engine), released together by
a barrier, on SQLite and on PostgreSQL (a database of its own per test).
"""

from __future__ import annotations

import logging
import multiprocessing
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Connection, inspect, text

from modelyard.errors import SchemaTooNew
from modelyard.store import migrations
from modelyard.store.engine import Database, open_database
from modelyard.store.migrations import (
    SCHEMA_REVISION,
    create_current_schema,
    current_revision,
    ensure_schema,
    locked_for_migration,
    upgrade,
)
from modelyard.store.schema import load_all_tables

REPLICAS = 3
OLD_REVISION = "0014"  # 0015–0017 were being written when this test was
NEWER_REVISION = "9999"  # what a newer modelyard stamped: unknown to this code
WAIT_S = 120

FORK = multiprocessing.get_context("fork")


@pytest.fixture(params=["sqlite", "postgres"])
def store_uri(request, tmp_path) -> str:
    """An empty metadata database, once per backend."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'meta.db'}"
    return str(request.getfixturevalue("postgres_uri"))


class Recorded(logging.Handler):
    def __init__(self, level: int) -> None:
        super().__init__(level)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


def _replica(uri: str, barrier: Any, started: Any, results: Any) -> None:
    """What a starting server does first: ``ensure_schema``; reports what it did (the
    process that changes the schema logs it)."""
    db = open_database(uri)
    real = migrations.current_revision

    def current_revision_then_tell(db: Database) -> str | None:
        found = real(db)
        started.set()  # the revision this replica acts on has been read
        return found

    migrations.current_revision = current_revision_then_tell  # this child process only
    changes = Recorded(logging.INFO)
    migrations.log.addHandler(changes)
    migrations.log.setLevel(logging.INFO)
    try:
        barrier.wait(timeout=WAIT_S)
        ensure_schema(db)
        results.put(("migrated" if changes.records else "found it current", ""))
    except BaseException as exc:
        results.put((type(exc).__name__, str(exc)))
    finally:
        db.dispose()


def start_replicas(
    uri: str, n: int, while_they_start: Callable[[Callable[[], object], Any], None] | None = None
) -> list[tuple[str, str]]:
    """Start ``n`` replicas at once; their outcomes, sorted.

    ``while_they_start(release, started)`` runs in this process: the replicas go once it
    calls ``release()``, and ``started`` is set when one has read the revision it acts on.
    """
    barrier, started, results = FORK.Barrier(n + 1), FORK.Event(), FORK.Queue()
    processes = [
        FORK.Process(target=_replica, args=(uri, barrier, started, results)) for _ in range(n)
    ]
    for process in processes:
        process.start()
    try:
        release = lambda: barrier.wait(timeout=WAIT_S)  # noqa: E731
        if while_they_start is None:
            release()
        else:
            while_they_start(release, started)
        return sorted(results.get(timeout=WAIT_S) for _ in processes)
    finally:
        for process in processes:
            process.join(timeout=WAIT_S)
            if process.is_alive():
                process.kill()


def assert_schema_is_current(uri: str) -> None:
    """Stamped current, every table there (``test_migrations.py`` checks the columns)."""
    db = open_database(uri)
    try:
        assert current_revision(db) == SCHEMA_REVISION
        tables = set(inspect(db.engine).get_table_names())
    finally:
        db.dispose()
    assert tables == set(load_all_tables().tables) | {"alembic_version"}


def at_revision(uri: str, revision: str) -> None:
    db = open_database(uri)
    upgrade(db, revision)
    db.dispose()


def stamp(conn: Connection, revision: str) -> None:
    conn.execute(text("UPDATE alembic_version SET version_num = :v"), {"v": revision})


def test_replicas_starting_on_an_empty_database_create_it_once(store_uri):
    outcomes = start_replicas(store_uri, REPLICAS)
    assert outcomes == [("found it current", "")] * (REPLICAS - 1) + [("migrated", "")]
    assert_schema_is_current(store_uri)


def test_replicas_starting_on_an_older_schema_upgrade_it_once(store_uri):
    at_revision(store_uri, OLD_REVISION)
    outcomes = start_replicas(store_uri, REPLICAS)
    assert outcomes == [("found it current", "")] * (REPLICAS - 1) + [("migrated", "")]
    assert_schema_is_current(store_uri)


def test_a_replica_that_waited_while_another_created_the_schema_finds_it_current(store_uri):
    """It read the revision while the other was creating the schema (uncommitted, so: no
    schema, not an error nor a wait); once it has the lock it reads again instead of
    creating (or upgrading) a second time."""
    db = open_database(store_uri)
    try:

        def another_replica_creates_it(release: Callable[[], object], started: Any) -> None:
            with locked_for_migration(db) as conn:
                create_current_schema(conn)  # not committed yet: invisible to the replica
                release()
                assert started.wait(WAIT_S)  # it read "nothing here", and waits for the lock

        outcomes = start_replicas(store_uri, 1, another_replica_creates_it)
    finally:
        db.dispose()
    assert outcomes == [("found it current", "")]
    assert_schema_is_current(store_uri)


def test_a_replica_older_than_the_database_refuses_and_changes_nothing(store_uri):
    db = open_database(store_uri)
    try:
        ensure_schema(db)
        with db.engine.begin() as conn:
            stamp(conn, NEWER_REVISION)
        tables = set(inspect(db.engine).get_table_names())
        with pytest.raises(SchemaTooNew) as refused:
            ensure_schema(db)
        assert current_revision(db) == NEWER_REVISION
        assert set(inspect(db.engine).get_table_names()) == tables
    finally:
        db.dispose()
    message = str(refused.value)
    assert NEWER_REVISION in message and SCHEMA_REVISION in message
    assert refused.value.field == "store_uri"


def test_a_replica_that_waited_while_a_newer_one_migrated_refuses(store_uri):
    """It read the old revision and waited for the lock; the newer replica moved the
    schema past this code meanwhile: it must read again and refuse, not upgrade."""
    at_revision(store_uri, OLD_REVISION)
    db = open_database(store_uri)
    try:

        def newer_replica_migrates(release: Callable[[], object], started: Any) -> None:
            with locked_for_migration(db) as conn:
                stamp(conn, NEWER_REVISION)
                release()
                assert started.wait(WAIT_S)  # it read OLD_REVISION, and waits for the lock

        outcomes = start_replicas(store_uri, 1, newer_replica_migrates)
        assert current_revision(db) == NEWER_REVISION
    finally:
        db.dispose()
    [(error, message)] = outcomes
    assert error == "SchemaTooNew", message
    assert NEWER_REVISION in message


def test_a_server_older_than_the_database_refuses_to_start(tmp_path):
    uri = f"sqlite:///{tmp_path / 'meta.db'}"
    db = open_database(uri)
    ensure_schema(db)
    with db.engine.begin() as conn:
        stamp(conn, NEWER_REVISION)
    db.dispose()
    modelyard = Path(sys.executable).with_name("modelyard")
    finished = subprocess.run(
        [str(modelyard), "server", "--port", "0", "--store-uri", uri],
        capture_output=True,
        text=True,
        timeout=WAIT_S,
        cwd=tmp_path,
        env={
            **{k: v for k, v in os.environ.items() if not k.startswith("MODELYARD_")},
            "MODELYARD_HOME": str(tmp_path / "yard"),
        },
    )
    output = finished.stdout + finished.stderr
    assert finished.returncode != 0, output
    assert NEWER_REVISION in output and SCHEMA_REVISION in output
    assert "Traceback" not in output and "listening" not in output
