"""registry: MLflow 3 logged models listed newest first from an index (issue 20)

Revision ID: 0019
Revises: 0018
Create Date: 2026-12-06 15:00:00

Written by hand to match ``modelyard/registry/tables.py``; ``tests/store/test_migrations.py``
checks with Alembic's autogenerate comparison that the two agree. A logged-model search
reads one experiment's models newest first (MLflow's default order; ``creation_time DESC,
model_id`` is also the order its pages seek by). With only ``(experiment_id)`` indexed,
every page of a large experiment sorted all its models: at 100,000 in one experiment,
19 ms on SQLite and a parallel sequential scan on PostgreSQL (20–40 ms), first page and
deep alike (``benchmarks/search_entities.py --explain``). ``(experiment_id,
creation_time)`` gives the page from an index walk (1.9 and 0.2 ms; the few ties on
``creation_time`` are sorted by ``model_id`` as they come) and replaces the single-column
index, of which it is a prefix.
"""

from __future__ import annotations

from alembic import op

revision = "0019"
down_revision = "0018"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index(
        "ix_logged_models_experiment_creation_time",
        "logged_models",
        ["experiment_id", "creation_time"],
    )
    op.drop_index("ix_logged_models_experiment_id", table_name="logged_models")


def downgrade() -> None:
    op.create_index("ix_logged_models_experiment_id", "logged_models", ["experiment_id"])
    op.drop_index("ix_logged_models_experiment_creation_time", table_name="logged_models")
