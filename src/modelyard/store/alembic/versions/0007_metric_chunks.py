"""tracking: metric history as packed chunks (``metric_chunks``) instead of a row a point,
run revisions, a covering index for search, clustered params and tags

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-26 17:30:00

Written by hand to match ``modelyard/tracking/tables.py``; ``tests/store/test_migrations.py``
checks with Alembic's autogenerate comparison that the two agree. Existing histories are
copied across, one chunk per (run, key) of at most ``_CHUNK`` points, and the old table is
dropped; downgrading unpacks them again. ``run_revisions`` starts empty (revision 0).
On SQLite, ``params`` and ``tags`` are rebuilt as ``WITHOUT ROWID`` tables (clustered on
their primary key); PostgreSQL has no such distinction.
"""

from __future__ import annotations

import itertools
import math

import sqlalchemy as sa
from alembic import op

from modelyard.store.metric_chunks import next_chunk_id, pack_points, unpack_points

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None

_CHUNK = 10_000
_COLUMNS = ("run_id", "key", "step", "timestamp", "value", "is_nan")

_old_metrics = sa.table(
    "metrics",
    sa.column("run_id", sa.String),
    sa.column("key", sa.String),
    sa.column("step", sa.BigInteger),
    sa.column("timestamp", sa.BigInteger),
    sa.column("value", sa.Float),
    sa.column("is_nan", sa.Boolean),
)
_chunks = sa.table(
    "metric_chunks",
    sa.column("chunk_id", sa.BigInteger),
    sa.column("run_id", sa.String),
    sa.column("key", sa.String),
    sa.column("points", sa.LargeBinary),
)


def _create_chunks_table() -> None:
    op.create_table(
        "metric_chunks",
        sa.Column("run_id", sa.String(length=32), nullable=False),
        sa.Column("key", sa.String(length=250), nullable=False),
        sa.Column("chunk_id", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("points", sa.LargeBinary(), nullable=False),
        sa.ForeignKeyConstraint(
            ["run_id"],
            ["runs.run_id"],
            name=op.f("fk_metric_chunks_run_id_runs"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("run_id", "key", "chunk_id", name=op.f("pk_metric_chunks")),
        sqlite_with_rowid=False,
    )


def _create_points_table() -> None:
    op.create_table(
        "metrics",
        sa.Column("run_id", sa.String(length=32), nullable=False),
        sa.Column("key", sa.String(length=250), nullable=False),
        sa.Column("step", sa.BigInteger(), nullable=False),
        sa.Column("timestamp", sa.BigInteger(), nullable=False),
        sa.Column("value", sa.Float(), nullable=False),
        sa.Column("is_nan", sa.Boolean(), nullable=False),
        sa.ForeignKeyConstraint(
            ["run_id"], ["runs.run_id"], name=op.f("fk_metrics_run_id_runs"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint(
            "run_id", "key", "step", "timestamp", "value", "is_nan", name=op.f("pk_metrics")
        ),
        sqlite_with_rowid=False,
    )


def _rebuild_keyed_table(name: str, without_rowid: bool) -> None:
    """SQLite: ``name`` (run_id, key, value) rebuilt with or without a rowid. Nothing
    references these tables, so dropping the old one cascades nowhere."""
    if op.get_bind().dialect.name != "sqlite":
        return
    op.create_table(
        f"_{name}_rebuilt",
        sa.Column("run_id", sa.String(length=32), nullable=False),
        sa.Column("key", sa.String(length=250), nullable=False),
        sa.Column("value", sa.Text(), nullable=False),
        sa.ForeignKeyConstraint(
            ["run_id"], ["runs.run_id"], name=op.f(f"fk_{name}_run_id_runs"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("run_id", "key", name=op.f(f"pk_{name}")),
        sqlite_with_rowid=not without_rowid,
    )
    op.execute(
        f"INSERT INTO _{name}_rebuilt (run_id, key, value) SELECT run_id, key, value FROM {name}"
    )
    op.drop_table(name)
    op.rename_table(f"_{name}_rebuilt", name)


def _search_index(covering: bool) -> None:
    old, new = (
        ("ix_runs_experiment_id_start_time", "ix_runs_search")
        if covering
        else ("ix_runs_search", "ix_runs_experiment_id_start_time")
    )
    columns = ["experiment_id", "start_time"]
    if covering:
        columns += ["run_id", "lifecycle_stage"]
    op.drop_index(old, table_name="runs")
    op.create_index(new, "runs", columns, unique=False)


def upgrade() -> None:
    op.create_table(
        "run_revisions",
        sa.Column("run_id", sa.String(length=32), nullable=False),
        sa.Column("revision", sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(
            ["run_id"],
            ["runs.run_id"],
            name=op.f("fk_run_revisions_run_id_runs"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("run_id", name=op.f("pk_run_revisions")),
        sqlite_with_rowid=False,
    )
    _search_index(covering=True)
    for name in ("params", "tags"):
        _rebuild_keyed_table(name, without_rowid=True)
    _create_chunks_table()
    bind = op.get_bind()
    m = _old_metrics.c
    # Streamed (a server-side cursor on PostgreSQL): a store's whole history need not fit
    # in memory, only one chunk of one series at a time.
    rows = bind.execute(
        sa.select(m.run_id, m.key, m.step, m.timestamp, m.value, m.is_nan)
        .order_by(m.run_id, m.key, m.step, m.timestamp, m.value)
        .execution_options(stream_results=True, yield_per=_CHUNK)
    )
    for (run_id, key), series in itertools.groupby(rows, key=lambda r: (r[0], r[1])):
        while batch := list(itertools.islice(series, _CHUNK)):
            points = pack_points(
                [r[2] for r in batch],
                [r[3] for r in batch],
                [math.nan if r[5] else r[4] for r in batch],
            )
            bind.execute(
                _chunks.insert().values(
                    run_id=run_id, key=key, chunk_id=next_chunk_id(), points=points
                )
            )
    op.drop_table("metrics")


def downgrade() -> None:
    for name in ("params", "tags"):
        _rebuild_keyed_table(name, without_rowid=False)
    _search_index(covering=False)
    _create_points_table()
    bind = op.get_bind()
    c = _chunks.c
    chunks = bind.execute(
        sa.select(c.run_id, c.key, c.points)
        .order_by(c.run_id, c.key, c.chunk_id)
        .execution_options(stream_results=True, yield_per=100)
    )
    # The old primary key holds each point once: fold replayed points, series by series.
    for (run_id, key), series in itertools.groupby(chunks, key=lambda r: (r[0], r[1])):
        seen: set[tuple[int, int, float, bool]] = set()
        rows = []
        for _, _, chunk in series:
            for step, timestamp, value in unpack_points(chunk):
                nan = math.isnan(value)
                point = (step, timestamp, 0.0 if nan else value, nan)
                if point not in seen:
                    seen.add(point)
                    rows.append(dict(zip(_COLUMNS, (run_id, key, *point), strict=True)))
        if rows:
            bind.execute(_old_metrics.insert(), rows)
    op.drop_table("metric_chunks")
    op.drop_table("run_revisions")
