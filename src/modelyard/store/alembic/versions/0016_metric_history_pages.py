"""tracking: metric history read in pages with bounded memory (issue 20)

Revision ID: 0016
Revises: 0015
Create Date: 2026-12-06 11:00:00

Each ``metric_chunks`` row gains the smallest and largest (step, timestamp) of its points,
and an index in that order, so a page of a history reads only the chunks that reach into
it (``tracking/metric_pages.py``). Existing chunks are back-filled from their blobs, a
batch of rows at a time. The columns keep a default on both databases, for a replica of
the previous release still serving while a rolling upgrade replaces it (it writes chunks
without them): the widest range there is (``RANGE_UNKNOWN``), so such a chunk reaches
into every page and is always read — slower for those chunks, never a point missed.
Written by hand to match the table definitions; ``tests/store/test_migrations.py`` checks
with Alembic's autogenerate comparison that they agree.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from modelyard.store.metric_chunks import point_range, unpack_points

revision = "0016"
down_revision = "0015"
branch_labels = None
depends_on = None

_COLUMNS = ("min_step", "min_timestamp", "max_step", "max_timestamp")
#: int64's bounds, as ``tracking/tables.py``'s ``RANGE_UNKNOWN`` (a migration keeps its own).
RANGE_UNKNOWN = (str(-(2**63)), str(2**63 - 1))
_BATCH = 1_000

_chunks = sa.table(
    "metric_chunks",
    sa.column("run_id", sa.String),
    sa.column("key", sa.String),
    sa.column("chunk_id", sa.BigInteger),
    sa.column("points", sa.LargeBinary),
    *(sa.column(name, sa.BigInteger) for name in _COLUMNS),
)


def upgrade() -> None:
    for name in _COLUMNS:
        default = RANGE_UNKNOWN[0] if name.startswith("min") else RANGE_UNKNOWN[1]
        op.add_column(
            "metric_chunks",
            sa.Column(name, sa.BigInteger(), nullable=False, server_default=sa.text(default)),
        )
    _back_fill()
    op.create_index(
        "ix_metric_chunks_range",
        "metric_chunks",
        [
            "run_id",
            "key",
            "min_step",
            "min_timestamp",
            "chunk_id",
            "max_step",
            "max_timestamp",
        ],
    )


def _back_fill() -> None:
    """Each chunk's range from its points, ``_BATCH`` rows a query (keyset on the key)."""
    conn = op.get_bind()
    c = _chunks.c
    key_columns = (c.run_id, c.key, c.chunk_id)
    update = (
        _chunks.update()
        .where(
            c.run_id == sa.bindparam("b_run_id"),
            c.key == sa.bindparam("b_key"),
            c.chunk_id == sa.bindparam("b_chunk_id"),
        )
        .values({name: sa.bindparam(f"b_{name}") for name in _COLUMNS})
    )
    last: tuple[str, str, int] | None = None
    while True:
        stmt = sa.select(*key_columns, c.points).order_by(*key_columns).limit(_BATCH)
        if last is not None:
            stmt = stmt.where(sa.tuple_(*key_columns) > sa.tuple_(*last))
        rows = conn.execute(stmt).all()
        if not rows:
            return
        values = []
        for row in rows:
            points = list(unpack_points(row.points))
            ranges = point_range([p[0] for p in points], [p[1] for p in points])
            values.append(
                {
                    "b_run_id": row.run_id,
                    "b_key": row.key,
                    "b_chunk_id": row.chunk_id,
                    **{f"b_{name}": v for name, v in zip(_COLUMNS, ranges, strict=True)},
                }
            )
        conn.execute(update, values)
        last = (rows[-1].run_id, rows[-1].key, rows[-1].chunk_id)


def downgrade() -> None:
    op.drop_index("ix_metric_chunks_range", table_name="metric_chunks")
    for name in reversed(_COLUMNS):
        op.drop_column("metric_chunks", name)
