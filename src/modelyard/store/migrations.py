"""Bring a metadata database to the schema this code expects, automatically.

Alembic migrations (``store/alembic/versions``) are the source of truth. On every open we
read the stamped revision with one cheap query; only when it differs from
``SCHEMA_REVISION`` do we import Alembic and upgrade — so first use and upgrades are
automatic, and the common case costs a single SELECT. Concurrent first uses are
serialised by the database's own lock (``BEGIN IMMEDIATE`` on SQLite, an advisory lock
on PostgreSQL).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from sqlalchemy import inspect, text
from sqlalchemy.exc import DBAPIError

from modelyard.store.engine import Database
from modelyard.store.schema import load_all_tables

#: The newest revision in ``store/alembic/versions``; a test checks they agree.
SCHEMA_REVISION = "0017"
ALEMBIC_DIR = Path(__file__).with_name("alembic")
_PG_MIGRATION_LOCK = 7_310_425_991


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
    through the migration scripts.
    """
    revision = current_revision(db)
    if revision == SCHEMA_REVISION:
        return
    if revision is None and _create_if_empty(db):
        return
    upgrade(db)


def _create_if_empty(db: Database) -> bool:
    metadata = load_all_tables()
    with db.write() as conn:
        if not db.is_sqlite:
            conn.execute(text(f"SELECT pg_advisory_xact_lock({_PG_MIGRATION_LOCK})"))
        if inspect(conn).get_table_names():
            return False  # someone else created it meanwhile, or a pre-Alembic database
        # Empty, and locked by this transaction: no table needs asking about first (the
        # checks were ~1.4% of a fresh `features apply`: one PRAGMA per table).
        metadata.create_all(conn, checkfirst=False)
        conn.execute(
            text(
                "CREATE TABLE alembic_version (version_num VARCHAR(32) NOT NULL, "
                "CONSTRAINT alembic_version_pkc PRIMARY KEY (version_num))"
            )
        )
        conn.execute(
            text("INSERT INTO alembic_version (version_num) VALUES (:v)"), {"v": SCHEMA_REVISION}
        )
    return True


def upgrade(db: Database, revision: str = "head") -> None:
    from alembic import command
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(ALEMBIC_DIR))
    with db.write() as conn:
        if not db.is_sqlite:
            conn.execute(text(f"SELECT pg_advisory_xact_lock({_PG_MIGRATION_LOCK})"))
        config.attributes["connection"] = conn
        command.upgrade(config, revision)


def downgrade(db: Database, revision: str) -> None:
    """Step the schema back to ``revision`` (``"base"`` removes every table)."""
    from alembic import command

    with db.write() as conn:
        config = _config()
        config.attributes["connection"] = conn
        command.downgrade(config, revision)


def _config() -> Any:
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(ALEMBIC_DIR))
    return config


def head_revision() -> str:
    """The newest revision Alembic knows (imports Alembic: for tests and tooling)."""
    from alembic.config import Config
    from alembic.script import ScriptDirectory

    config = Config()
    config.set_main_option("script_location", str(ALEMBIC_DIR))
    head = ScriptDirectory.from_config(config).get_current_head()
    if head is None:
        raise RuntimeError(f"no Alembic revisions in {ALEMBIC_DIR}")
    return head
