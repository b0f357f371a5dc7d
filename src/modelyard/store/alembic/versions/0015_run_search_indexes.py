"""tracking: indexes for run search at a million runs (issue 20)

Revision ID: 0015
Revises: 0014
Create Date: 2026-12-06 11:00:00

Reserved while the change is being written (several engineers add revisions at once);
filled in by the change it names. Written by hand to match the table definitions;
``tests/store/test_migrations.py`` checks with Alembic's autogenerate comparison that they
agree.
"""

from __future__ import annotations

revision = "0015"
down_revision = "0014"
branch_labels = None
depends_on = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
