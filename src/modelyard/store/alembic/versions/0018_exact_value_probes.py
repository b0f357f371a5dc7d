"""search: exact, index-only probes on PostgreSQL (issue 20)

Revision ID: 0018
Revises: 0017
Create Date: 2026-12-06 14:30:00

Read from the plans at 1,000,000 runs (``benchmarks/search_runs.py --explain``): a probe
of ``params.lr = '0.0042'`` (10,000 runs) through the ``(key, md5(value))`` index read
every matching table row to learn its run and re-check its value (15 ms), and one of an
unselective value (a third of the runs) read all 336,000 index entries into a bitmap
before its ``LIMIT`` could stop it. On PostgreSQL this revision remakes the value index
of params, tags and the experiment, model and version tag tables as
``store.schema.value_index`` now defines it — ``(key, value) INCLUDE (owner)`` for values
of at most ``VALUE_INDEX_BYTES`` (an exact index-only range), ``(key, md5(value))`` for
longer ones — and gives ``latest_metrics (key, is_nan, value)`` the run id (``INCLUDE``),
so a metric probe and an index walk in a metric's order read no table rows either.
SQLite's indexes already answer these alone; there this revision changes nothing.
"""

from __future__ import annotations

from alembic import op

from modelyard.store.schema import value_index_ddl, value_index_names

revision = "0018"
down_revision = "0017"
branch_labels = None
depends_on = None

#: Tables with a value index, and their key columns besides ``key`` (the owner).
VALUE_INDEXED = {
    "params": ["run_id"],
    "tags": ["run_id"],
    "experiment_tags": ["experiment_id"],
    "registered_model_tags": ["name"],
    "model_version_tags": ["name", "version"],
}


def upgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    for table, owner in VALUE_INDEXED.items():
        op.execute(f"DROP INDEX IF EXISTS {value_index_names(table)[0]}")
        for ddl in value_index_ddl(table, owner)["postgresql"]:
            op.execute(ddl)
    op.drop_index("ix_latest_metrics_key_value", table_name="latest_metrics")
    op.create_index(
        "ix_latest_metrics_key_value",
        "latest_metrics",
        ["key", "is_nan", "value"],
        postgresql_include=["run_id"],
    )


def downgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    op.drop_index("ix_latest_metrics_key_value", table_name="latest_metrics")
    op.create_index("ix_latest_metrics_key_value", "latest_metrics", ["key", "is_nan", "value"])
    for table in reversed(VALUE_INDEXED):
        for name in reversed(value_index_names(table)):
            op.execute(f"DROP INDEX IF EXISTS {name}")
        op.execute(f"CREATE INDEX {value_index_names(table)[0]} ON {table} (key, md5(value))")
