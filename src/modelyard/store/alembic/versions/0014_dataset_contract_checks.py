"""data: the verdict of each contract check made on a dataset version

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-06 09:20:00

Written by hand to match ``modelyard/data/tables.py`` (``dataset_contract_checks``);
``tests/store/test_migrations.py`` checks with Alembic's autogenerate comparison that they
agree. Nothing to backfill: checks made before this revision were not stored.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0014"
down_revision = "0013"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "dataset_contract_checks",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("name", sa.String(length=256), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("contract", sa.String(length=256), nullable=False),
        sa.Column("contract_digest", sa.String(length=64), nullable=False),
        sa.Column("passed", sa.Boolean(), nullable=False),
        sa.Column("checks", sa.Integer(), nullable=False),
        sa.Column("failed", sa.Integer(), nullable=False),
        sa.Column("warnings", sa.Integer(), nullable=False),
        sa.Column("summary", sa.Text(), nullable=False),
        sa.Column("checked_at", sa.BigInteger(), nullable=False),
        sa.Column("checked_by", sa.String(length=256), nullable=False),
        sa.ForeignKeyConstraint(
            ["name", "version"],
            ["dataset_versions.name", "dataset_versions.version"],
            name="fk_dataset_contract_checks_name_dataset_versions",
            ondelete="CASCADE",
            onupdate="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_dataset_contract_checks")),
    )
    op.create_index(
        "ix_dataset_contract_checks_name_version",
        "dataset_contract_checks",
        ["name", "version"],
    )


def downgrade() -> None:
    op.drop_index("ix_dataset_contract_checks_name_version", table_name="dataset_contract_checks")
    op.drop_table("dataset_contract_checks")
