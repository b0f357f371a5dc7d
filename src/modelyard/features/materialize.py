"""Copy the latest feature values per entity from the offline sources to the online store.

DuckDB reduces the window to one row per entity (latest event time, then the same
tie-break as training sets) and streams the result as Arrow batches of ``chunk_rows``;
each batch is encoded with NumPy and written in one transaction. Memory is bounded by the
chunk size and DuckDB's memory limit (it spills beyond it), never by the size of the
source — Feast materialises in one in-memory process and runs for hours or runs out.

``materialize_incremental`` continues from the watermark recorded per (online store,
view, data digest): the end of the last successful window. The window is inclusive at
both ends, so a row at exactly the watermark is re-read harmlessly (writes are idempotent
and never replace a newer value).
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC
from typing import Any

from sqlalchemy import select

from modelyard.errors import InvalidParameter
from modelyard.features.definitions import FeatureView
from modelyard.features.offline import tie_break
from modelyard.features.online.base import KEY_SEPARATOR, OnlineStore, OnlineTable
from modelyard.features.online.codec import RowCodec
from modelyard.features.relations import Session, arrow_reader, quote
from modelyard.features.tables import feature_materializations
from modelyard.ids import now_ms
from modelyard.store.engine import Database

#: Values (rows × columns) per chunk when no row count is given: about 32 MiB of floats,
#: so a wide view gets shorter chunks and memory stays bounded whatever the width.
CHUNK_VALUES = 4_000_000
MAX_CHUNK_ROWS = 200_000
#: Up to this many features a row is sorted by key before writing (cheap, and it makes
#: B-tree appends); wider rows cost more to sort than random inserts cost.
_SORT_MAX_FEATURES = 32
#: The names the streamed rows give the online key and the event time (µs); the feature
#: columns keep their own names, and every column is read by its name.
KEY_COLUMN = "__key"
TS_COLUMN = "__ts_us"


@dataclass(frozen=True)
class MaterializeReport:
    """One view's materialisation: rows written, the window (µs since the epoch) and time."""

    view: str
    rows: int
    start_us: int | None
    end_us: int
    seconds: float
    chunks: int


def to_us(value: Any, field: str) -> int:
    """A point in time as microseconds since the epoch; naive times are UTC."""
    import pandas as pd

    if isinstance(value, (int, float)) and not isinstance(value, bool):
        raise InvalidParameter(
            f"{field} {value!r} is a number; pass a datetime or an ISO date like 2024-01-31",
            field=field,
        )
    try:
        ts = pd.Timestamp(value)
    except (ValueError, TypeError) as exc:
        raise InvalidParameter(
            f"{field} {value!r} is not a point in time; pass a datetime or an ISO date",
            field=field,
        ) from exc
    if ts is pd.NaT:
        raise InvalidParameter(f"{field} is missing", field=field)
    if ts.tzinfo is None:
        ts = ts.tz_localize(UTC)
    return int(ts.value // 1_000)


def now_us() -> int:
    return time.time_ns() // 1_000


def online_table(view: FeatureView) -> OnlineTable:
    single_int = len(view.join_keys) == 1 and view.key_dtypes[view.join_keys[0]] == "int64"
    return OnlineTable(view.name, view.data_digest, single_int)


def key_sql(view: FeatureView, prefix: str = "") -> str:
    """The online key as SQL: the int64 itself, or the keys as text joined by 0x1F."""
    if len(view.join_keys) == 1:
        return prefix + quote(view.join_keys[0])
    parts = ", ".join(f"CAST({prefix}{quote(k)} AS VARCHAR)" for k in view.join_keys)
    return f"concat_ws(chr({ord(KEY_SEPARATOR)}), {parts})"


def materialize_view(
    session: Session,
    view: FeatureView,
    store: OnlineStore,
    *,
    start_us: int | None,
    end_us: int,
    chunk_rows: int | None = None,
) -> MaterializeReport:
    """Write the latest row per entity with ``start <= event_ts <= end`` to ``store``.

    The latest event time per entity is found on the keys and times alone (DuckDB reads
    only those columns); the feature columns then stream through a hash join, never
    through a sort. Only when an entity has several rows at its latest time does the
    documented tie-break run (a window over all columns). Narrow rows arrive sorted by
    key, so the online store's B-tree is appended to rather than split at random, and a
    tie shows as the same key twice in a row: it is noticed while streaming, before the
    chunk holding it is written, and the view is then written again with the tie-break.
    Wide rows are not sorted, so for them ties are looked for first.
    """
    began = time.perf_counter()
    rel = session.view(view)
    table = online_table(view)
    codec = RowCodec([f.dtype for f in view.schema])
    keys = ", ".join(quote(k) for k in view.join_keys)
    where = f"__ts <= make_timestamptz({end_us})"
    if start_us is not None:
        where += f" AND __ts >= make_timestamptz({start_us})"
    # An entity without a key cannot be looked up (nor joined offline).
    where += "".join(f" AND {quote(k)} IS NOT NULL" for k in view.join_keys)
    width = len(view.feature_names)
    sort = width <= _SORT_MAX_FEATURES
    order = f" ORDER BY {KEY_COLUMN}" if sort else ""
    con = session.con
    on = " AND ".join(f"r.{quote(k)} = l.{quote(k)}" for k in view.join_keys)
    latest = (
        f"WITH r AS (SELECT * FROM ({rel.sql}) WHERE {where}), "
        f"l AS (SELECT {keys}, max(__ts) AS __latest FROM r GROUP BY {keys}) "
        f"SELECT {key_sql(view, 'r.')} AS {KEY_COLUMN}, epoch_us(r.__ts) AS {TS_COLUMN}, "
        f"{', '.join('r.' + quote(f) for f in view.feature_names)} "
        f"FROM r JOIN l ON {on} AND r.__ts = l.__latest{order}"
    )
    broken = (
        f"SELECT {key_sql(view)} AS {KEY_COLUMN}, epoch_us(__ts) AS {TS_COLUMN}, "
        f"{', '.join(quote(f) for f in view.feature_names)} "
        f"FROM ({rel.sql}) WHERE {where} QUALIFY row_number() OVER (PARTITION BY {keys} "
        f"ORDER BY __ts DESC, {tie_break(view)}) = 1{order}"
    )
    if chunk_rows is None:
        chunk_rows = max(1_000, min(MAX_CHUNK_ROWS, CHUNK_VALUES // (width + 2)))
    con.execute("SET preserve_insertion_order = false")
    try:
        if not sort and _has_ties(session, rel.sql, where, keys):
            latest = broken
        try:
            rows, chunks = _stream(
                session, latest, view, codec, store, table, chunk_rows, check=sort
            )
        except _Tie:  # some entity has several rows at its latest time
            rows, chunks = _stream(
                session, broken, view, codec, store, table, chunk_rows, check=False
            )
    finally:
        con.execute("SET preserve_insertion_order = true")
    return MaterializeReport(view.name, rows, start_us, end_us, time.perf_counter() - began, chunks)


class _Tie(Exception):
    """A key repeats in rows sorted by key: the tie-break query is needed."""


def _has_ties(session: Session, sql: str, where: str, keys: str) -> bool:
    """Whether some entity has several rows at one event time."""
    # fetchall, not fetchone: an unfinished result would keep the connection busy for
    # the stream that follows.
    found = session.con.execute(
        f"SELECT 1 FROM ({sql}) WHERE {where} GROUP BY {keys}, __ts HAVING count(*) > 1 LIMIT 1"
    ).fetchall()
    return bool(found)


def _stream(
    session: Session,
    sql: str,
    view: FeatureView,
    codec: RowCodec,
    store: OnlineStore,
    table: OnlineTable,
    chunk_rows: int,
    *,
    check: bool,
) -> tuple[int, int]:
    """Write the rows of ``sql`` chunk by chunk: ``(rows, chunks)``. With ``check`` (rows
    sorted by key) raise ``_Tie`` as soon as a key repeats, before its chunk is written."""
    import pyarrow.compute as pc

    rows = chunks = 0
    last: Any = None
    reader = arrow_reader(session.con, sql, chunk_rows)
    try:
        for batch in reader:
            n = batch.num_rows
            if not n:
                continue
            key = batch.column(KEY_COLUMN)
            if check:
                if key[0].as_py() == last or (
                    n > 1 and pc.any(pc.equal(key.slice(1), key.slice(0, n - 1))).as_py()
                ):
                    raise _Tie
                last = key[n - 1].as_py()
            store.write(
                table,
                key.to_numpy() if table.int_key else key.to_pylist(),
                batch.column(TS_COLUMN).to_numpy(),
                codec.encode_columns([batch.column(name) for name in view.feature_names]),
            )
            rows += n
            chunks += 1
    finally:
        reader.close()  # a result left unread keeps the connection busy
    return rows, chunks


# --------------------------------------------------------------------------- watermarks
def watermark(db: Database, store: OnlineStore, view: FeatureView) -> int | None:
    """End (µs) of the last successful materialisation of this view version, if any."""
    c = feature_materializations.c
    with db.read() as conn:
        mark = conn.execute(
            select(c.watermark_us).where(
                c.store == store.store_id, c.view == view.name, c.data_digest == view.data_digest
            )
        ).scalar_one_or_none()
    return None if mark is None else int(mark)


def record_watermark(
    db: Database, store: OnlineStore, report: MaterializeReport, view: FeatureView
) -> None:
    """Advance the watermark (never backwards: an older window leaves it where it was)."""
    c = feature_materializations.c
    pk = (c.store == store.store_id) & (c.view == view.name) & (c.data_digest == view.data_digest)
    with db.write() as conn:
        row = conn.execute(select(c.start_us, c.watermark_us, c.rows).where(pk)).first()
        if row is None:
            conn.execute(
                feature_materializations.insert().values(
                    store=store.store_id,
                    view=view.name,
                    data_digest=view.data_digest,
                    start_us=report.start_us if report.start_us is not None else 0,
                    watermark_us=report.end_us,
                    rows=report.rows,
                    updated_at=now_ms(),
                )
            )
            return
        start = row.start_us if report.start_us is None else min(row.start_us, report.start_us)
        conn.execute(
            feature_materializations.update()
            .where(pk)
            .values(
                start_us=start,
                watermark_us=max(row.watermark_us, report.end_us),
                rows=row.rows + report.rows,
                updated_at=now_ms(),
            )
        )


def incremental_start(
    db: Database, store: OnlineStore, view: FeatureView, end_us: int
) -> int | None:
    """Where an incremental run starts: the watermark, else ``end - ttl``, else the start."""
    mark = watermark(db, store, view)
    if mark is not None:
        return mark
    if view.ttl:
        return end_us - int(view.ttl.total_seconds() * 1_000_000)
    return None


def check_window(start_us: int | None, end_us: int) -> None:
    if start_us is not None and start_us > end_us:
        raise InvalidParameter("materialisation start is after its end; swap them", field="start")


def views_to_materialize(catalog: Any, names: Sequence[str] | None) -> list[FeatureView]:
    """The named views (all online views when none are named)."""
    if names:
        return [catalog.view(n) for n in names]
    views = [catalog.view(n) for n in catalog.names("feature_view")]
    return [v for v in views if v.online]
