"""The registry's migrations (0002, and 0008's integrity columns) build exactly the
declared registry tables on a 0001 database, and remove them again; 0008 gives existing
versions the digest of their frozen files.

The migrations run from a versions folder holding only 0001 to 0008, so the test is
about these steps, whatever later migrations are doing in the same tree.
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
    "gate_verdicts",
}
LAST_REGISTRY_MIGRATION = "0008"


@pytest.fixture
def config(tmp_path) -> Config:
    versions = tmp_path / "versions"
    versions.mkdir()
    for pattern in (f"000{n}_*.py" for n in range(1, 9)):
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


def test_the_registry_migrations_build_the_declared_registry_schema(backend_settings, config):
    db = open_database(backend_settings.resolved_store_uri())
    migrate(db, config, command.upgrade, "0001")
    before = tables(db)

    migrate(db, config, command.upgrade, LAST_REGISTRY_MIGRATION)

    assert current_revision(db) == LAST_REGISTRY_MIGRATION
    assert tables(db) - before >= REGISTRY_TABLES
    assert registry_diffs(db) == []

    migrate(db, config, command.downgrade, "0001")
    assert current_revision(db) == "0001"
    assert tables(db) == before
    db.dispose()


def test_0008_records_the_digest_of_each_existing_versions_frozen_files(backend_settings, config):
    from sqlalchemy import text

    from modelyard.digests import tree_digest

    db = open_database(backend_settings.resolved_store_uri())
    migrate(db, config, command.upgrade, "0007")
    files = {"MLmodel.json": "a" * 64, "model.skops": "b" * 64, "extra/notes.txt": "c" * 64}
    with db.write() as conn:
        conn.execute(
            text(
                "INSERT INTO registered_models (name, next_version, created_by, creation_time,"
                " last_updated_time) VALUES ('demand', 3, 'ana', 1, 1)"
            )
        )
        for version, location in ((1, "registry/aaa"), (2, "registry/empty")):
            conn.execute(
                text(
                    "INSERT INTO model_versions (name, version, source, storage_location, "
                    "stage, status, created_by, creation_time, last_updated_time) VALUES "
                    "('demand', :v, 'runs:/x/model', :loc, 'None', 'READY', 'ana', 1, 1)"
                ),
                {"v": version, "loc": location},
            )
        for rel, sha in [*files.items(), ("../registry/aaa0-not-mine", "d" * 64)]:
            path = f"registry/aaa/{rel}" if not rel.startswith("..") else "registry/aaa0"
            conn.execute(
                text(
                    "INSERT INTO artifact_entries (path, digest, size, created_at) "
                    "VALUES (:p, :d, 1, 1)"
                ),
                {"p": path, "d": sha},
            )

    migrate(db, config, command.upgrade, "0008")

    with db.read() as conn:
        digests = dict(conn.execute(text("SELECT version, files_digest FROM model_versions")).all())
    db.dispose()
    assert digests == {1: tree_digest(files.items()), 2: None}
