"""pipelines: named pipelines, pipeline runs, their steps, the step cache

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-06 08:30:00

Written by hand to match ``modelyard/pipelines/tables.py``; ``tests/store/test_migrations.py``
checks with Alembic's autogenerate comparison that the two agree. Only new tables.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "pipeline_definitions",
        sa.Column("name", sa.String(length=256), nullable=False),
        sa.Column("target", sa.String(length=1024), nullable=False),
        sa.Column("params", sa.Text(), nullable=False),
        sa.Column("description", sa.Text(), nullable=True),
        sa.Column("created_at", sa.BigInteger(), nullable=False),
        sa.Column("updated_at", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("name", name=op.f("pk_pipeline_definitions")),
    )
    op.create_table(
        "pipeline_runs",
        sa.Column("run_id", sa.String(length=32), nullable=False),
        sa.Column("pipeline", sa.String(length=256), nullable=False),
        sa.Column("target", sa.String(length=1024), nullable=False),
        sa.Column("params", sa.Text(), nullable=False),
        sa.Column("executor", sa.String(length=32), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("cause", sa.Text(), nullable=True),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("started_at", sa.BigInteger(), nullable=False),
        sa.Column("ended_at", sa.BigInteger(), nullable=True),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("run_id", name=op.f("pk_pipeline_runs")),
    )
    op.create_index(
        "ix_pipeline_runs_pipeline_started_at", "pipeline_runs", ["pipeline", "started_at"]
    )
    op.create_table(
        "pipeline_steps",
        sa.Column("run_id", sa.String(length=32), nullable=False),
        sa.Column("step_key", sa.String(length=256), nullable=False),
        sa.Column("step_name", sa.String(length=256), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("step_run_id", sa.String(length=32), nullable=True),
        sa.Column("cache_key", sa.String(length=64), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("reason", sa.Text(), nullable=True),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("started_at", sa.BigInteger(), nullable=True),
        sa.Column("ended_at", sa.BigInteger(), nullable=True),
        sa.Column("duration_ms", sa.BigInteger(), nullable=True),
        sa.Column("inputs", sa.Text(), nullable=False),
        sa.Column("outputs", sa.Text(), nullable=True),
        sa.Column("upstream", sa.Text(), nullable=False),
        sa.ForeignKeyConstraint(
            ["run_id"],
            ["pipeline_runs.run_id"],
            name=op.f("fk_pipeline_steps_run_id_pipeline_runs"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("run_id", "step_key", name=op.f("pk_pipeline_steps")),
    )
    op.create_table(
        "pipeline_step_cache",
        sa.Column("cache_key", sa.String(length=64), nullable=False),
        sa.Column("step_name", sa.String(length=256), nullable=False),
        sa.Column("step_run_id", sa.String(length=32), nullable=False),
        sa.Column("outputs", sa.Text(), nullable=False),
        sa.Column("created_at", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("cache_key", name=op.f("pk_pipeline_step_cache")),
    )


def downgrade() -> None:
    op.drop_table("pipeline_step_cache")
    op.drop_table("pipeline_steps")
    op.drop_index("ix_pipeline_runs_pipeline_started_at", table_name="pipeline_runs")
    op.drop_table("pipeline_runs")
    op.drop_table("pipeline_definitions")
