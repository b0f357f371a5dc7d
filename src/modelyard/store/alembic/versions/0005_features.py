"""features: versioned definitions, training sets, materialisation watermarks, services of models

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-26 12:00:00

Written by hand to match ``modelyard/features/tables.py``; ``tests/store/test_migrations.py``
checks with Alembic's autogenerate comparison that an upgraded database has exactly the
schema the code declares.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "feature_definitions",
        sa.Column("kind", sa.String(length=32), nullable=False),
        sa.Column("name", sa.String(length=128), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("digest", sa.String(length=64), nullable=False),
        sa.Column("data_digest", sa.String(length=64), nullable=False),
        sa.Column("spec", sa.Text(), nullable=False),
        sa.Column("code", sa.Text(), nullable=False),
        sa.Column("origin", sa.String(length=1024), nullable=False),
        sa.Column("created_at", sa.BigInteger(), nullable=False),
        sa.Column("created_by", sa.String(length=256), nullable=False),
        sa.PrimaryKeyConstraint("kind", "name", "version", name=op.f("pk_feature_definitions")),
    )
    op.create_table(
        "feature_training_sets",
        sa.Column("training_set_id", sa.String(length=32), nullable=False),
        sa.Column("name", sa.String(length=256), nullable=False),
        sa.Column("created_at", sa.BigInteger(), nullable=False),
        sa.Column("features", sa.Text(), nullable=False),
        sa.Column("views", sa.Text(), nullable=False),
        sa.Column("sources", sa.Text(), nullable=False),
        sa.Column("entity_digest", sa.String(length=64), nullable=False),
        sa.Column("row_count", sa.BigInteger(), nullable=False),
        sa.Column("options", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("training_set_id", name=op.f("pk_feature_training_sets")),
    )
    with op.batch_alter_table("feature_training_sets", schema=None) as batch_op:
        batch_op.create_index("ix_feature_training_sets_name", ["name"], unique=False)
    op.create_table(
        "feature_materializations",
        sa.Column("store", sa.String(length=64), nullable=False),
        sa.Column("view", sa.String(length=128), nullable=False),
        sa.Column("data_digest", sa.String(length=64), nullable=False),
        sa.Column("start_us", sa.BigInteger(), nullable=False),
        sa.Column("watermark_us", sa.BigInteger(), nullable=False),
        sa.Column("rows", sa.BigInteger(), nullable=False),
        sa.Column("updated_at", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint(
            "store", "view", "data_digest", name=op.f("pk_feature_materializations")
        ),
    )
    op.create_table(
        "feature_service_models",
        sa.Column("model_name", sa.String(length=256), nullable=False),
        sa.Column("model_version", sa.String(length=64), nullable=False),
        sa.Column("service", sa.String(length=128), nullable=False),
        sa.Column("service_version", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint(
            "model_name", "model_version", name=op.f("pk_feature_service_models")
        ),
    )


def downgrade() -> None:
    op.drop_table("feature_service_models")
    op.drop_table("feature_materializations")
    with op.batch_alter_table("feature_training_sets", schema=None) as batch_op:
        batch_op.drop_index("ix_feature_training_sets_name")
    op.drop_table("feature_training_sets")
    op.drop_table("feature_definitions")
