"""auth: an optional expiry on API tokens (``auth_tokens.expires_at``)

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-06 05:00:00

Written by hand to match ``modelyard/auth/tables.py``; ``tests/store/test_migrations.py``
checks with Alembic's autogenerate comparison that the two agree. Existing tokens get no
expiry (NULL), so they keep working as before. The column is added and dropped in place
(ALTER TABLE, SQLite >= 3.35): nothing refers to ``auth_tokens``, but there is no reason
to copy it either.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("auth_tokens", sa.Column("expires_at", sa.BigInteger(), nullable=True))


def downgrade() -> None:
    op.drop_column("auth_tokens", "expires_at")
