"""auth: users and their API tokens (stored as SHA-256 digests)

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-26 14:05:00

Written by hand to match ``modelyard/auth/tables.py``; ``tests/store/test_migrations.py``
checks with Alembic's autogenerate comparison that the two agree.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "auth_users",
        sa.Column("name", sa.String(length=256), nullable=False),
        sa.Column("role", sa.String(length=16), nullable=False),
        sa.Column("created_at", sa.BigInteger(), nullable=False),
        sa.Column("disabled", sa.Boolean(), server_default=sa.false(), nullable=False),
        sa.CheckConstraint(
            "role IN ('viewer', 'editor', 'approver', 'admin')", name="ck_auth_users_role"
        ),
        sa.PrimaryKeyConstraint("name", name=op.f("pk_auth_users")),
    )
    op.create_table(
        "auth_tokens",
        sa.Column("token_id", sa.String(length=32), nullable=False),
        sa.Column("user_name", sa.String(length=256), nullable=False),
        sa.Column("token_sha256", sa.String(length=64), nullable=False),
        sa.Column("label", sa.String(length=256), nullable=True),
        sa.Column("created_at", sa.BigInteger(), nullable=False),
        sa.Column("last_used_at", sa.BigInteger(), nullable=True),
        sa.Column("revoked_at", sa.BigInteger(), nullable=True),
        sa.ForeignKeyConstraint(
            ["user_name"],
            ["auth_users.name"],
            name=op.f("fk_auth_tokens_user_name_auth_users"),
            ondelete="CASCADE",
            onupdate="CASCADE",
        ),
        sa.PrimaryKeyConstraint("token_id", name=op.f("pk_auth_tokens")),
    )
    with op.batch_alter_table("auth_tokens", schema=None) as batch_op:
        batch_op.create_index("ix_auth_tokens_user_name", ["user_name"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("auth_tokens", schema=None) as batch_op:
        batch_op.drop_index("ix_auth_tokens_user_name")
    op.drop_table("auth_tokens")
    op.drop_table("auth_users")
