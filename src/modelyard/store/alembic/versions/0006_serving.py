"""serving: environments, deployments, revisions (traffic policies), feedback

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-26 16:00:00

Written by hand to match ``modelyard/serving/tables.py``; ``tests/store/test_migrations.py``
checks with Alembic's autogenerate comparison that the two agree.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "serving_environments",
        sa.Column("name", sa.String(length=256), nullable=False),
        sa.Column("requires", sa.String(length=256), nullable=True),
        sa.Column("protected", sa.Boolean(), nullable=False),
        sa.Column("description", sa.Text(), nullable=True),
        sa.Column("created_at", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("name", name=op.f("pk_serving_environments")),
    )
    op.create_table(
        "deployments",
        sa.Column("name", sa.String(length=256), nullable=False),
        sa.Column("environment", sa.String(length=256), nullable=False),
        sa.Column("current_revision", sa.Integer(), nullable=False),
        sa.Column("description", sa.Text(), nullable=True),
        sa.Column("created_by", sa.String(length=256), nullable=False),
        sa.Column("created_at", sa.BigInteger(), nullable=False),
        sa.Column("updated_at", sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(
            ["environment"],
            ["serving_environments.name"],
            name=op.f("fk_deployments_environment_serving_environments"),
            ondelete="RESTRICT",
        ),
        sa.PrimaryKeyConstraint("name", name=op.f("pk_deployments")),
    )
    op.create_table(
        "deployment_revisions",
        sa.Column("deployment", sa.String(length=256), nullable=False),
        sa.Column("revision", sa.Integer(), nullable=False),
        sa.Column("action", sa.String(length=32), nullable=False),
        sa.Column("policy", sa.Text(), nullable=False),
        sa.Column("reason", sa.Text(), nullable=True),
        sa.Column("restores", sa.Integer(), nullable=True),
        sa.Column("created_by", sa.String(length=256), nullable=False),
        sa.Column("created_at", sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(
            ["deployment"],
            ["deployments.name"],
            name=op.f("fk_deployment_revisions_deployment_deployments"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("deployment", "revision", name=op.f("pk_deployment_revisions")),
    )
    op.create_table(
        "deployment_versions",
        sa.Column("model_name", sa.String(length=256), nullable=False),
        sa.Column("model_version", sa.Integer(), nullable=False),
        sa.Column("environment", sa.String(length=256), nullable=False),
        sa.Column("deployment", sa.String(length=256), nullable=False),
        sa.Column("first_revision", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint(
            "model_name", "model_version", "environment", name=op.f("pk_deployment_versions")
        ),
    )
    op.create_table(
        "serving_feedback",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("deployment", sa.String(length=256), nullable=False),
        sa.Column("request_id", sa.String(length=128), nullable=False),
        sa.Column("row", sa.Integer(), nullable=False),
        sa.Column("value", sa.Float(), nullable=True),
        sa.Column("label", sa.Text(), nullable=True),
        sa.Column("correct", sa.Boolean(), nullable=True),
        sa.Column("variant", sa.String(length=256), nullable=True),
        sa.Column("model_version", sa.Integer(), nullable=True),
        sa.Column("created_at", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_serving_feedback")),
    )
    with op.batch_alter_table("serving_feedback", schema=None) as batch_op:
        batch_op.create_index(
            "ix_serving_feedback_deployment_created_at",
            ["deployment", "created_at"],
            unique=False,
        )
        batch_op.create_index("ix_serving_feedback_request_id", ["request_id"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("serving_feedback", schema=None) as batch_op:
        batch_op.drop_index("ix_serving_feedback_request_id")
        batch_op.drop_index("ix_serving_feedback_deployment_created_at")
    op.drop_table("serving_feedback")
    op.drop_table("deployment_versions")
    op.drop_table("deployment_revisions")
    op.drop_table("deployments")
    op.drop_table("serving_environments")
