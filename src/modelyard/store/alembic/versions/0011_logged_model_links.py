"""registry: metrics logged against MLflow 3 logged models, and runs' model inputs/outputs;
tracking: a dataset input's tags as an MLflow client sent them (``dataset_inputs.tags_json``)

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-06 08:20:00

Written by hand to match ``modelyard/registry/tables.py``; ``tests/store/test_migrations.py``
checks with Alembic's autogenerate comparison that the two agree. Only new tables: model
outputs recorded before this revision were lineage edges only and stay so (their step was
never kept); existing dataset inputs keep their context as their only tag (NULL).
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None


def _logged_model_fk(table: str) -> sa.ForeignKeyConstraint:
    return sa.ForeignKeyConstraint(
        ["model_id"],
        ["logged_models.model_id"],
        name=f"fk_{table}_model_id_logged_models",
        ondelete="CASCADE",
    )


def upgrade() -> None:
    op.create_table(
        "logged_model_metrics",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("model_id", sa.String(length=64), nullable=False),
        sa.Column("key", sa.String(length=250), nullable=False),
        sa.Column("value", sa.Float(), nullable=False),
        sa.Column("timestamp", sa.BigInteger(), nullable=False),
        sa.Column("step", sa.BigInteger(), nullable=False),
        sa.Column("run_id", sa.String(length=32), nullable=True),
        sa.Column("dataset_name", sa.String(length=500), nullable=True),
        sa.Column("dataset_digest", sa.String(length=64), nullable=True),
        _logged_model_fk("logged_model_metrics"),
        sa.PrimaryKeyConstraint("id", name="pk_logged_model_metrics"),
    )
    op.create_index("ix_logged_model_metrics_model_id", "logged_model_metrics", ["model_id"])
    op.create_table(
        "logged_model_runs",
        sa.Column("run_id", sa.String(length=32), nullable=False),
        sa.Column("model_id", sa.String(length=64), nullable=False),
        sa.Column("direction", sa.String(length=8), nullable=False),
        sa.Column("step", sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(
            ["run_id"],
            ["runs.run_id"],
            name="fk_logged_model_runs_run_id_runs",
            ondelete="CASCADE",
        ),
        _logged_model_fk("logged_model_runs"),
        sa.PrimaryKeyConstraint("run_id", "model_id", "direction", name="pk_logged_model_runs"),
    )
    op.create_index("ix_logged_model_runs_model_id", "logged_model_runs", ["model_id"])
    op.add_column("dataset_inputs", sa.Column("tags_json", sa.Text(), nullable=True))


def downgrade() -> None:
    op.drop_column("dataset_inputs", "tags_json")
    op.drop_table("logged_model_runs")
    op.drop_table("logged_model_metrics")
