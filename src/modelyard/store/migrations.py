"""Bring a metadata database to the schema this code expects, automatically.

Alembic migrations (``store/alembic/versions``) are the source of truth. On every open we
read the stamped revision with one cheap query; only when it differs from
``SCHEMA_REVISION`` do we import Alembic and upgrade — so first use and upgrades are
automatic, and the common case costs a single SELECT.

Several replicas may start at once on one database (``--workers``, a rollout of N pods).
The one that gets the migration lock (``locked_for_migration``: ``BEGIN IMMEDIATE`` on
SQLite, an advisory lock on PostgreSQL) creates or upgrades the schema; the others wait
on the lock, then read the revision *again* and find it current. A replica whose code is
older than the database's revision (a newer replica upgraded it) refuses with
``SchemaTooNew``: it never downgrades, nor serves a schema it does not know.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from functools import lru_cache
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, inspect, text
from sqlalchemy.exc import DBAPIError

from modelyard.errors import SchemaTooNew
from modelyard.store.engine import Database
from modelyard.store.schema import load_all_tables
from modelyard.store.statistics import refresh_statistics

#: The newest revision in ``store/alembic/versions``; a test checks they agree.
SCHEMA_REVISION = "0019"
ALEMBIC_DIR = Path(__file__).with_name("alembic")
_PG_MIGRATION_LOCK = 7_310_425_991
_VERSION_TABLE = "alembic_version"

log = logging.getLogger(__name__)


def current_revision(db: Database) -> str | None:
    try:
        with db.engine.connect() as conn:
            return conn.execute(text("SELECT version_num FROM alembic_version")).scalar()
    except DBAPIError:
        return None


def ensure_schema(db: Database) -> None:
    """Create or upgrade the schema of ``db`` unless it is already current.

    A brand-new database gets the whole schema from the table definitions in one
    transaction, stamped at ``SCHEMA_REVISION`` (Alembic's documented "create_all, then
    stamp" recipe, without the cost of importing Alembic); anything older is upgraded
    through the migration scripts; a revision this code does not know raises
    ``SchemaTooNew`` and changes nothing. The process that changed the schema logs it (of
    several replicas starting at once, exactly one does).
    """
    if current_revision(db) == SCHEMA_REVISION:
        return
    with locked_for_migration(db) as conn:
        # Read again under the lock: another replica may have migrated while we waited.
        tables = inspect(conn).get_table_names()
        revision = _stamped(conn) if _VERSION_TABLE in tables else None
        if revision == SCHEMA_REVISION:
            return
        if not tables:
            create_current_schema(conn)
            log.info("created the metadata schema of %s at revision %s", db.uri, SCHEMA_REVISION)
            return
        if revision is not None:  # None: tables from before Alembic, upgraded from base
            refuse_too_new(db.uri, revision)
        _alembic(conn, "upgrade", "head")
    log.info("upgraded the metadata schema of %s from %s to %s", db.uri, revision, SCHEMA_REVISION)
    # New indexes have no statistics yet, and a migration may rewrite tables: without
    # them the planner guesses (store/statistics.py says what that cost).
    refresh_statistics(db)


@contextmanager
def locked_for_migration(db: Database) -> Iterator[Connection]:
    """A write transaction holding the migration lock: one process at a time changes the
    schema; the others wait here.

    On SQLite the write lock of ``BEGIN IMMEDIATE`` is the lock. On PostgreSQL it is a
    session-level advisory lock, taken on a connection of its own and released when the
    transaction has ended — not a transaction-level one, so that a migration committing
    part-way (an index built ``CONCURRENTLY`` in an autocommit block) still holds it. That
    connection is closed afterwards, not pooled: the lock can never outlive it.
    """
    if db.is_sqlite:
        with db.write() as conn:
            yield conn
        return
    with db.engine.connect() as lock:
        try:
            lock.execution_options(isolation_level="AUTOCOMMIT")
            lock.execute(text("SELECT pg_advisory_lock(:key)"), {"key": _PG_MIGRATION_LOCK})
            with db.write() as conn:
                yield conn
        finally:
            lock.invalidate()  # closed, not pooled: the session ends, and its lock with it


def create_current_schema(conn: Connection) -> None:
    """The whole schema, stamped at ``SCHEMA_REVISION``, in ``conn``'s transaction, which
    holds the migration lock on an empty database (``locked_for_migration``)."""
    # No table needs asking about first (the checks were ~1.4% of a fresh
    # `features apply`: one PRAGMA per table).
    load_all_tables().create_all(conn, checkfirst=False)
    conn.execute(
        text(
            "CREATE TABLE alembic_version (version_num VARCHAR(32) NOT NULL, "
            "CONSTRAINT alembic_version_pkc PRIMARY KEY (version_num))"
        )
    )
    conn.execute(
        text("INSERT INTO alembic_version (version_num) VALUES (:v)"), {"v": SCHEMA_REVISION}
    )


def _stamped(conn: Connection) -> str | None:
    return conn.execute(text("SELECT version_num FROM alembic_version")).scalar()


def refuse_too_new(uri: str, revision: str) -> None:
    """Raise ``SchemaTooNew`` unless ``revision`` is ``SCHEMA_REVISION`` or older than it.

    The one place that orders revisions, for ``ensure_schema`` and ``modelyard db wait``
    alike: "older" means on Alembic's chain down from ``SCHEMA_REVISION`` in the script
    directory, never a string comparison (a newer release's revision may sort lower as a
    string, "0016a" or a hash id, and a waiting pod would then wait for a migration that
    never comes). Any other revision was stamped by a newer modelyard. ``uri`` is shown in
    the message as given: pass it with its password hidden.
    """
    if revision in _revisions_up_to(SCHEMA_REVISION):
        return
    raise SchemaTooNew(
        f"the metadata store {uri} is at schema revision {revision!r}, which this "
        f"modelyard (schema revisions up to {SCHEMA_REVISION!r}) does not know: a newer "
        "modelyard has upgraded it. Run that newer version here too; an older one never "
        "downgrades the schema nor serves it",
        field="store_uri",
    )


@lru_cache(maxsize=2)
def _revisions_up_to(head: str) -> frozenset[str]:
    """``head`` and every revision before it (imports Alembic and reads the scripts once,
    ~20 ms: a waiting pod asks again every few seconds)."""
    from alembic.script import ScriptDirectory

    script = ScriptDirectory.from_config(_config())
    return frozenset(found.revision for found in script.iterate_revisions(head, "base"))


def _alembic(conn: Connection, command_name: str, revision: str) -> None:
    """Run Alembic's ``upgrade`` or ``downgrade`` on ``conn`` (its transaction)."""
    from alembic import command

    config = _config()
    config.attributes["connection"] = conn
    getattr(command, command_name)(config, revision)


def upgrade(db: Database, revision: str = "head") -> None:
    """Step the schema up to ``revision`` through the migration scripts."""
    with locked_for_migration(db) as conn:
        _alembic(conn, "upgrade", revision)


def downgrade(db: Database, revision: str) -> None:
    """Step the schema back to ``revision`` (``"base"`` removes every table)."""
    with locked_for_migration(db) as conn:
        _alembic(conn, "downgrade", revision)


def _config() -> Any:
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(ALEMBIC_DIR))
    return config


def head_revision() -> str:
    """The newest revision Alembic knows (imports Alembic: for tests and tooling)."""
    from alembic.script import ScriptDirectory

    head = ScriptDirectory.from_config(_config()).get_current_head()
    if head is None:
        raise RuntimeError(f"no Alembic revisions in {ALEMBIC_DIR}")
    return head
