"""registry: each version's files digest, and quality-gate verdicts in their own table

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-06 05:10:00

Written by hand to match ``modelyard/registry/tables.py``; ``tests/store/test_migrations.py``
checks with Alembic's autogenerate comparison that the two agree. Existing versions get
their digest from the artifact index (``modelyard.digests.tree_digest`` over the frozen
files' paths and content digests), so they verify on load like new ones. Gate verdicts
that were only tags (``modelyard.gate.status``, which a client could set) are *not*
carried over: a version promoted under a required gate must be gated again.

``model_versions`` is altered in place (ALTER TABLE ADD/DROP COLUMN, SQLite ≥ 3.35):
batch mode would copy and drop the table, and the drop would cascade to its tags,
aliases, approvals and cards.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from modelyard.digests import tree_digest

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("model_versions", sa.Column("files_digest", sa.String(length=64), nullable=True))
    op.create_table(
        "gate_verdicts",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("name", sa.String(length=256), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("passed", sa.Boolean(), nullable=False),
        sa.Column("files_digest", sa.String(length=64), nullable=True),
        sa.Column("policy", sa.String(length=256), nullable=False),
        sa.Column("summary", sa.Text(), nullable=False),
        sa.Column("report", sa.String(length=1024), nullable=True),
        sa.Column("created_by", sa.String(length=256), nullable=False),
        sa.Column("created_at", sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(
            ["name", "version"],
            ["model_versions.name", "model_versions.version"],
            name="fk_gate_verdicts_name_model_versions",
            ondelete="CASCADE",
            onupdate="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_gate_verdicts")),
    )
    op.create_index("ix_gate_verdicts_name_version", "gate_verdicts", ["name", "version"])
    _backfill_digests(op.get_bind())


def _backfill_digests(conn: sa.Connection) -> None:
    versions = sa.table(
        "model_versions",
        sa.column("name"),
        sa.column("version"),
        sa.column("storage_location"),
        sa.column("files_digest"),
    )
    entries = sa.table("artifact_entries", sa.column("path"), sa.column("digest"))
    rows = conn.execute(
        sa.select(versions.c.name, versions.c.version, versions.c.storage_location)
    ).all()
    for name, version, location in rows:
        base = str(location).strip("/")
        files = conn.execute(
            sa.select(entries.c.path, entries.c.digest).where(
                entries.c.path >= f"{base}/", entries.c.path < f"{base}0"
            )
        ).all()
        if not files:
            continue  # nothing stored (a version whose files were never frozen here)
        digest = tree_digest((path[len(base) + 1 :], sha) for path, sha in files)
        conn.execute(
            sa.update(versions)
            .where(versions.c.name == name, versions.c.version == version)
            .values(files_digest=digest)
        )


def downgrade() -> None:
    op.drop_index("ix_gate_verdicts_name_version", table_name="gate_verdicts")
    op.drop_table("gate_verdicts")
    op.drop_column("model_versions", "files_digest")
