"""The SQLite engine's transaction styles: writers queue on the lock, except where the
caller asked not to wait."""

from __future__ import annotations

import sqlite3
import time

import pytest

from modelyard.errors import StoreBusy
from modelyard.store.engine import open_database, writes_do_not_wait


@pytest.fixture
def database(tmp_path):
    db = open_database(f"sqlite:///{tmp_path / 'store.db'}")
    with db.raw_write() as cur:
        cur.execute("CREATE TABLE points (value INTEGER)")
    yield db, tmp_path / "store.db"
    db.dispose()


def test_a_write_that_must_not_wait_fails_fast_while_another_process_holds_the_lock(
    database,
) -> None:
    db, path = database
    other = sqlite3.connect(path, isolation_level=None)
    other.execute("BEGIN IMMEDIATE")
    try:
        started = time.monotonic()
        with pytest.raises(StoreBusy), writes_do_not_wait(), db.raw_write() as cur:
            cur.execute("INSERT INTO points VALUES (1)")
        assert time.monotonic() - started < 5  # not the 60 s busy timeout
    finally:
        other.execute("ROLLBACK")
        other.close()
    with db.raw_read() as cur:
        assert cur.execute("SELECT count(*) FROM points").fetchone() == (0,)


def test_after_a_busy_refusal_the_connection_waits_again_as_usual(database) -> None:
    db, path = database
    other = sqlite3.connect(path, isolation_level=None)
    other.execute("BEGIN IMMEDIATE")
    with pytest.raises(StoreBusy), writes_do_not_wait(), db.raw_write():
        pass
    other.execute("COMMIT")
    other.close()
    with db.raw_write() as cur:
        cur.execute("INSERT INTO points VALUES (2)")
        assert cur.execute("PRAGMA busy_timeout").fetchone()[0] == 60_000
    with writes_do_not_wait(), db.raw_write() as cur:  # free lock: writes normally
        cur.execute("INSERT INTO points VALUES (3)")
    with db.raw_read() as cur:
        assert cur.execute("SELECT value FROM points ORDER BY value").fetchall() == [(2,), (3,)]


def test_foreign_keys_are_skipped_only_where_the_caller_checked_the_parent(tmp_path) -> None:
    db = open_database(f"sqlite:///{tmp_path / 'fk.db'}")
    with db.raw_write() as cur:
        cur.execute("CREATE TABLE parents (id INTEGER PRIMARY KEY)")
        cur.execute("CREATE TABLE children (parent INTEGER REFERENCES parents (id))")
    with db.raw_write(references_checked=True) as cur:
        cur.execute("INSERT INTO children VALUES (7)")  # the caller vouches for it
    with pytest.raises(sqlite3.IntegrityError), db.raw_write() as cur:
        cur.execute("INSERT INTO children VALUES (8)")  # enforced again by default
    with db.raw_read() as cur:
        assert cur.execute("SELECT parent FROM children").fetchall() == [(7,)]
    db.dispose()


def test_postgres_hot_writes_from_many_threads_share_a_bounded_set_of_connections(
    postgres_uri,
) -> None:
    """A server's 40 handler threads per process must not each hold a connection: with
    ``--workers 2`` and 64 clients that exhausted PostgreSQL's default 100."""
    from concurrent.futures import ThreadPoolExecutor

    from modelyard.store.engine import PG_HOT_WRITERS

    db = open_database(postgres_uri)
    with db.raw_write() as cur:
        cur.execute("CREATE TABLE points (value INTEGER)")
    backends: set[int] = set()

    def write(i: int) -> None:
        with db.raw_write() as cur:
            cur.execute("SELECT pg_backend_pid()")
            backends.add(cur.fetchone()[0])
            cur.execute("SELECT pg_sleep(0.01)")  # overlap: every thread wants one at once
            cur.execute("INSERT INTO points VALUES (%s)", (i,))

    try:
        with ThreadPoolExecutor(4 * PG_HOT_WRITERS) as pool:
            list(pool.map(write, range(20 * PG_HOT_WRITERS)))
        assert len(backends) <= PG_HOT_WRITERS
        with pytest.raises(ZeroDivisionError), db.raw_write() as cur:  # rolled back, reused
            cur.execute("INSERT INTO points VALUES (-1)")
            raise ZeroDivisionError
        with db.raw_read() as cur:
            cur.execute("SELECT count(*), min(value) FROM points")
            assert cur.fetchone() == (20 * PG_HOT_WRITERS, 0)
    finally:
        db.dispose()
