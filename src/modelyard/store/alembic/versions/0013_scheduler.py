"""scheduler: one leases table for every kind of work (monitors move onto it from
monitor_leases), pipeline schedules and firings

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-06 08:45:00

Written by hand to match ``modelyard/store/schema.py`` (``leases``) and
``modelyard/pipelines/schedule_tables.py``; ``tests/store/test_migrations.py`` checks with
Alembic's autogenerate comparison that they agree. ``monitor_leases`` is dropped without
copying: a lease lives minutes, and a scheduler being upgraded holds none.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0013"
down_revision = "0012"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "leases",
        sa.Column("name", sa.String(length=512), nullable=False),
        sa.Column("holder", sa.String(length=256), nullable=False),
        sa.Column("token", sa.String(length=32), nullable=False),
        sa.Column("acquired_at", sa.BigInteger(), nullable=False),
        sa.Column("expires_at", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("name", name=op.f("pk_leases")),
    )
    op.drop_table("monitor_leases")
    op.create_table(
        "pipeline_schedules",
        sa.Column("name", sa.String(length=256), nullable=False),
        sa.Column("pipeline", sa.String(length=256), nullable=False),
        sa.Column("cron", sa.String(length=256), nullable=False),
        sa.Column("params", sa.Text(), nullable=False),
        sa.Column("executor", sa.String(length=32), nullable=False),
        sa.Column("paused", sa.Boolean(), nullable=False),
        sa.Column("since", sa.BigInteger(), nullable=False),
        sa.Column("created_at", sa.BigInteger(), nullable=False),
        sa.Column("updated_at", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("name", name=op.f("pk_pipeline_schedules")),
    )
    op.create_table(
        "pipeline_firings",
        sa.Column("key", sa.String(length=512), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("source", sa.String(length=256), nullable=False),
        sa.Column("pipeline", sa.String(length=256), nullable=False),
        sa.Column("due_at", sa.BigInteger(), nullable=False),
        sa.Column("cause", sa.Text(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("claimed_by", sa.String(length=256), nullable=False),
        sa.Column("claimed_at", sa.BigInteger(), nullable=False),
        sa.Column("run_id", sa.String(length=32), nullable=True),
        sa.Column("detail", sa.Text(), nullable=True),
        sa.Column("ended_at", sa.BigInteger(), nullable=True),
        sa.PrimaryKeyConstraint("key", name=op.f("pk_pipeline_firings")),
    )
    op.create_index(
        "ix_pipeline_firings_kind_source_due_at",
        "pipeline_firings",
        ["kind", "source", "due_at"],
    )
    op.create_index("ix_pipeline_firings_status", "pipeline_firings", ["status"])


def downgrade() -> None:
    op.drop_index("ix_pipeline_firings_status", table_name="pipeline_firings")
    op.drop_index("ix_pipeline_firings_kind_source_due_at", table_name="pipeline_firings")
    op.drop_table("pipeline_firings")
    op.drop_table("pipeline_schedules")
    op.create_table(
        "monitor_leases",
        sa.Column("monitor", sa.String(length=256), nullable=False),
        sa.Column("holder", sa.String(length=256), nullable=False),
        sa.Column("token", sa.String(length=32), nullable=False),
        sa.Column("acquired_at", sa.BigInteger(), nullable=False),
        sa.Column("expires_at", sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(
            ["monitor"],
            ["monitors.name"],
            name=op.f("fk_monitor_leases_monitor_monitors"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("monitor", name=op.f("pk_monitor_leases")),
    )
    op.drop_table("leases")
