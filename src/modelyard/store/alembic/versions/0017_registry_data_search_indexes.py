"""registry and data: indexes for model-version, experiment and dataset search (issue 20)

Revision ID: 0017
Revises: 0016
Create Date: 2026-12-06 11:00:00

Written by hand to match the table definitions (``registry/tables.py``,
``tracking/tables.py``, ``data/tables.py``); ``tests/store/test_migrations.py`` checks with
Alembic's autogenerate comparison that they agree. Chosen from the query plans at 100,000
rows (``benchmarks/search_entities.py --explain``):

* the time orders of registered-model, model-version and experiment search, and the
  newest-first dataset listing, read their page from an index instead of sorting every row;
* a model's newest version per stage (each listed model's ``latest_versions``) comes from
  ``ix_model_versions_latest`` alone, not from all its versions' rows;
* the tag tables are indexed by key (the prompt tag every registry search excludes was a
  scan of every tag) and by value (``tracking/tag_probe.py``: a selective tag filter finds
  its few owners first and drives the search) — ``(key, md5(value))`` on PostgreSQL, where
  a value may be longer than a B-tree entry can hold (``store/schema.value_index``).
"""

from __future__ import annotations

from alembic import op

revision = "0017"
down_revision = "0016"
branch_labels = None
depends_on = None

#: (index, table, columns), created in this order and dropped in the reverse.
INDEXES = [
    ("ix_registered_models_creation_time", "registered_models", ["creation_time"]),
    ("ix_registered_models_last_updated_time", "registered_models", ["last_updated_time"]),
    ("ix_registered_model_tags_key", "registered_model_tags", ["key"]),
    ("ix_model_versions_latest", "model_versions", ["name", "stage", "version"]),
    ("ix_model_versions_creation_time", "model_versions", ["creation_time"]),
    ("ix_model_versions_last_updated_time", "model_versions", ["last_updated_time"]),
    ("ix_model_version_tags_key_name", "model_version_tags", ["key", "name"]),
    ("ix_experiments_creation_time", "experiments", ["creation_time"]),
    ("ix_experiments_last_update_time", "experiments", ["last_update_time"]),
    ("ix_experiment_tags_key", "experiment_tags", ["key"]),
    ("ix_dataset_versions_created_at", "dataset_versions", ["created_at"]),
]


#: Tag tables whose values are indexed by ``store.schema.value_index`` (``(value)`` on
#: SQLite, ``(key, md5(value))`` on PostgreSQL: values may exceed a B-tree entry, and a hash
#: index chains equal values).
VALUE_INDEXED = ("registered_model_tags", "model_version_tags", "experiment_tags")


def upgrade() -> None:
    for name, table, columns in INDEXES:
        op.create_index(name, table, columns)
    dialect = op.get_bind().dialect.name
    for table in VALUE_INDEXED:
        op.execute(_value_index(table, dialect))


def downgrade() -> None:
    for table in reversed(VALUE_INDEXED):
        op.drop_index(f"ix_{table}_value", table_name=table)
    for name, table, _ in reversed(INDEXES):
        op.drop_index(name, table_name=table)


def _value_index(table: str, dialect: str) -> str:
    """The value index as this revision made it (0018 remade it on PostgreSQL)."""
    if dialect == "postgresql":
        return f"CREATE INDEX ix_{table}_value ON {table} (key, md5(value))"
    return f"CREATE INDEX ix_{table}_value ON {table} (value)"
