"""Migration 0002 adds exactly the registry's tables to a 0001 database, and removes them.

The migration runs from a versions folder holding only 0001 and 0002, so the test is about
this step alone, whatever other rooms' migrations are doing in the same tree.
"""

from __future__ import annotations

import shutil
from collections.abc import Callable

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.config import Config
from alembic.migration import MigrationContext
from sqlalchemy import inspect

from modelyard.store.engine import Database, open_database
from modelyard.store.migrations import ALEMBIC_DIR, current_revision
from modelyard.store.schema import load_all_tables

REGISTRY_TABLES = {
    "registered_models",
    "registered_model_tags",
    "model_versions",
    "model_version_tags",
    "model_aliases",
    "approvals",
    "model_cards",
    "audit_events",
    "audit_head",
    "logged_models",
    "logged_model_tags",
    "logged_model_params",
}


@pytest.fixture
def config(tmp_path) -> Config:
    versions = tmp_path / "versions"
    versions.mkdir()
    for pattern in ("0001_*.py", "0002_*.py"):
        for script in (ALEMBIC_DIR / "versions").glob(pattern):
            shutil.copy(script, versions)
    config = Config()
    config.set_main_option("script_location", str(ALEMBIC_DIR))
    config.set_main_option("version_locations", str(versions))
    return config


def migrate(db: Database, config: Config, step: Callable[..., None], revision: str) -> None:
    with db.write() as conn:
        config.attributes["connection"] = conn
        step(config, revision)


def tables(db: Database) -> set[str]:
    with db.engine.connect() as conn:
        return set(inspect(conn).get_table_names())


def registry_diffs(db: Database) -> list[object]:
    """Autogenerate's differences between the database and the registry's table objects."""
    metadata = load_all_tables()
    with db.engine.connect() as conn:
        diffs = compare_metadata(MigrationContext.configure(conn), metadata)
    mentioned = {t: f"'{t}'" for t in REGISTRY_TABLES}
    return [d for d in diffs if any(q in repr(d) for q in mentioned.values())]


def test_0002_on_top_of_0001_builds_the_declared_registry_schema(backend_settings, config):
    db = open_database(backend_settings.resolved_store_uri())
    migrate(db, config, command.upgrade, "0001")
    before = tables(db)

    migrate(db, config, command.upgrade, "0002")

    assert current_revision(db) == "0002"
    assert tables(db) - before == REGISTRY_TABLES
    assert registry_diffs(db) == []

    migrate(db, config, command.downgrade, "0001")
    assert current_revision(db) == "0001"
    assert tables(db) == before
    db.dispose()
