"""tracking: indexes for run search at a million runs (issue 20)

Revision ID: 0015
Revises: 0014
Create Date: 2026-12-06 11:00:00

Written by hand to match ``modelyard/tracking/tables.py``; ``tests/store/test_migrations.py``
checks with Alembic's autogenerate comparison that they agree. The indexes answer the probes
of ``tracking/search_plan.py`` (which runs have ``params.x = 'v'``, ``tags.x = 'v'``,
``metrics.x < v``, ``run_name = 'n'``) so a selective filter starts from its matches instead
of reading every run. Params and tags are indexed on ``(key, md5(value))`` on PostgreSQL:
values can exceed what a B-tree entry may hold, and a hash index degrades with many equal
values. The statistics are refreshed after the upgrade
(``store/statistics.py``).
"""

from __future__ import annotations

from alembic import op

revision = "0015"
down_revision = "0014"
branch_labels = None
depends_on = None


def upgrade() -> None:
    dialect = op.get_bind().dialect.name
    op.create_index("ix_runs_run_name", "runs", ["run_name"])
    for table in ("params", "tags"):  # store.schema.value_index: one form per database
        op.execute(_value_index(table, dialect))
    op.create_index("ix_latest_metrics_key_value", "latest_metrics", ["key", "is_nan", "value"])


def downgrade() -> None:
    op.drop_index("ix_latest_metrics_key_value", table_name="latest_metrics")
    op.drop_index("ix_tags_value", table_name="tags")
    op.drop_index("ix_params_value", table_name="params")
    op.drop_index("ix_runs_run_name", table_name="runs")


def _value_index(table: str, dialect: str) -> str:
    """The value index as this revision made it (0018 remade it on PostgreSQL)."""
    if dialect == "postgresql":
        return f"CREATE INDEX ix_{table}_value ON {table} (key, md5(value))"
    return f"CREATE INDEX ix_{table}_value ON {table} (value)"
