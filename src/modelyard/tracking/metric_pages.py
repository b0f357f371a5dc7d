"""A metric history read a page at a time, with memory that does not grow with it.

Why: the mlflow client reads a history in pages of 25,000 points (``metrics/get-history``
with ``max_results`` and ``page_token``), and a run of a long training job holds tens of
millions of points. An offset token makes every page decode and sort the whole history
before it; this reads only the chunks that reach into the page (``metric_chunks`` keeps
each chunk's smallest and largest (step, timestamp), in the order of an index), a batch
of them at a time, keeping at most a page of points between batches
(``store.metric_chunks.PageBuffer``).

The page token is where the page ended — the last point's (step, timestamp, value) — and
the smallest (step, timestamp) of the chunks that still held later points (``start``):
every chunk holding a point after the token starts at or after it, so the next page's
scan begins there rather than at the history's beginning. The token also holds the
newest ``chunk_id`` of the series when the page was read (``seen``): a chunk written
since that starts before ``start`` (a late batch that also logs an early step) is read
by the next page too. So a point logged while a client pages shows on a later page when
it comes after the token, as with any keyset page, and never twice. Tokens are opaque to
clients (base64 JSON); one from another listing, or altered, is refused naming
``page_token``. An offset token the servers wrote before (``legacy_offset``) still pages:
the next page is found by seeking through the history a batch at a time, once.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Iterator, Sequence
from itertools import chain
from typing import Any, NamedTuple

from sqlalchemy import Connection, Select, select, tuple_

from modelyard.errors import InvalidParameter
from modelyard.store.metric_chunks import MetricColumns, PageBuffer, PointKey
from modelyard.tracking import tables as t

#: About how many points one query decodes at most, and at least: chunks are fetched in
#: batches sized to a page between the two.
BATCH_POINTS = 65_536
MIN_BATCH_POINTS = 4_096
_FIRST_BATCH_CHUNKS = 4
_MAX_BATCH_CHUNKS = 8_192


class HistoryCursor(NamedTuple):
    """Where the next page starts (decoded from a page token)."""

    after: PointKey
    start: tuple[int, int]
    seen: int  # the newest chunk_id of the series when the previous page was read


class HistoryPage(NamedTuple):
    """One page, its token (``None`` on the last page) and what reading it cost."""

    columns: MetricColumns
    next_page_token: str | None
    chunks_read: int
    points_read: int


def read_page(
    conn: Connection, run_id: str, key: str, limit: int, page_token: str | None
) -> HistoryPage:
    """The ``limit`` points of the history after ``page_token``, in history order."""
    skip = legacy_offset(page_token)
    if skip is not None:  # a token from before keyset pages: seek page by page, once
        page_token, points_read = None, 0
        while skip > 0:
            passed = read_page(conn, run_id, key, min(skip, BATCH_POINTS), page_token)
            skip -= len(passed.columns.steps)
            points_read += passed.points_read
            page_token = passed.next_page_token
            if page_token is None:
                steps, times, values = passed.columns
                empty = MetricColumns(steps[:0], times[:0], values[:0])
                return passed._replace(columns=empty, points_read=points_read)
    cursor = decode_history_token(page_token)
    c = t.metric_chunks.c
    newest = (
        select(c.chunk_id)
        .where(c.run_id == run_id, c.key == key)
        .order_by(c.chunk_id.desc())
        .limit(1)
    )
    seen = conn.execute(newest).scalar() or 0
    page = PageBuffer(cursor.after if cursor else None, limit)
    reaches: list[tuple[tuple[int, int], tuple[int, int]]] = []  # (min, max) of each chunk
    points_read = 0
    batches = _chunk_batches(conn, run_id, key, cursor, limit)
    if cursor is not None:  # chunks written since, starting before the scan: first in order
        late = conn.execute(late_chunks_statement(run_id, key, cursor)).all()
        batches = chain([(late, (-(2**63), -(2**63)))], batches)
    for rows, frontier in batches:
        page.add([(row.chunk_id, row.points) for row in rows])
        reaches += [
            ((row.min_step, row.min_timestamp), (row.max_step, row.max_timestamp)) for row in rows
        ]
        points_read += sum(len(row.points) for row in rows) // 24
        if page.complete(frontier):
            break
    columns, last = page.page()
    token = None
    if last is not None:
        end = (last.step, last.timestamp)
        start = min(low for low, high in reaches if high >= end)
        token = encode_history_token(HistoryCursor(last, start, seen))
    return HistoryPage(columns, token, len(reaches), points_read)


def _chunk_batches(
    conn: Connection, run_id: str, key: str, cursor: HistoryCursor | None, limit: int
) -> Iterator[tuple[Sequence[Any], tuple[int, int] | None]]:
    """Batches of the chunks that may hold points after ``cursor``, in order of their
    smallest (step, timestamp), each with the frontier: the smallest (step, timestamp)
    any chunk not yet read may start at (``None`` once none is left). The first batch is
    a few chunks; later ones are sized from the points a chunk held so far, to about
    a page (at least ``MIN_BATCH_POINTS``, at most ``BATCH_POINTS``)."""
    c = t.metric_chunks.c
    stmt = chunks_statement(run_id, key, cursor)
    size = _FIRST_BATCH_CHUNKS
    resume = stmt
    while True:
        rows = conn.execute(resume.limit(size)).all()
        if len(rows) < size:
            yield rows, None
            return
        last = rows[-1]
        yield rows, (last.min_step, last.min_timestamp)
        resume = stmt.where(
            tuple_(c.min_step, c.min_timestamp, c.chunk_id)
            > tuple_(last.min_step, last.min_timestamp, last.chunk_id)
        )
        per_chunk = max(1, sum(len(row.points) for row in rows) // (24 * len(rows)))
        wanted = min(BATCH_POINTS, max(MIN_BATCH_POINTS, limit + 1))
        size = min(_MAX_BATCH_CHUNKS, max(_FIRST_BATCH_CHUNKS, wanted // per_chunk + 1))


def chunks_statement(run_id: str, key: str, cursor: HistoryCursor | None) -> Select[Any]:
    """The chunks of a series that may hold points after ``cursor``, in the order of
    ``ix_metric_chunks_range`` (a range scan of it from the cursor's ``start``)."""
    c = t.metric_chunks.c
    stmt = (
        select(c.chunk_id, c.points, c.min_step, c.min_timestamp, c.max_step, c.max_timestamp)
        .where(c.run_id == run_id, c.key == key)
        .order_by(c.min_step, c.min_timestamp, c.chunk_id)
    )
    if cursor is not None:
        after = (cursor.after.step, cursor.after.timestamp)
        stmt = stmt.where(
            tuple_(c.min_step, c.min_timestamp) >= tuple_(*cursor.start),
            tuple_(c.max_step, c.max_timestamp) >= tuple_(*after),
        )
    return stmt


def late_chunks_statement(run_id: str, key: str, cursor: HistoryCursor) -> Select[Any]:
    """The chunks written since the cursor's page that start before its scan would and
    may hold points after it (a range of the primary key: usually none)."""
    c = t.metric_chunks.c
    after = (cursor.after.step, cursor.after.timestamp)
    return select(
        c.chunk_id, c.points, c.min_step, c.min_timestamp, c.max_step, c.max_timestamp
    ).where(
        c.run_id == run_id,
        c.key == key,
        c.chunk_id > cursor.seen,
        tuple_(c.min_step, c.min_timestamp) < tuple_(*cursor.start),
        tuple_(c.max_step, c.max_timestamp) >= tuple_(*after),
    )


def encode_history_token(cursor: HistoryCursor) -> str:
    after = cursor.after
    fields = [after.step, after.timestamp, after.value, after.nan, *cursor.start, cursor.seen]
    body = {"history": fields}
    return base64.urlsafe_b64encode(json.dumps(body).encode()).decode()


def legacy_offset(token: str | None) -> int | None:
    """The offset in a page token the servers wrote before keyset pages (the MLflow
    route's ``"25000"``, ``/api/v1``'s base64 ``offset:25000``), so a client paging across
    an upgrade goes on where it was; ``None`` for any other token."""
    if not token or len(token) > 40:
        return None
    if token.isdigit():
        return int(token)
    try:
        text = base64.urlsafe_b64decode(token.encode("ascii")).decode("ascii")
    except (ValueError, UnicodeError, binascii.Error):
        return None
    label, _, number = text.partition(":")
    return int(number) if label == "offset" and number.isdigit() else None


def decode_history_token(token: str | None) -> HistoryCursor | None:
    if not token:
        return None
    try:
        fields = json.loads(base64.urlsafe_b64decode(token.encode("ascii")))["history"]
        step, timestamp, value, nan, start_step, start_timestamp, seen = fields
        ints = (step, timestamp, start_step, start_timestamp, seen)
        if not all(type(i) is int and -(2**63) <= i < 2**63 for i in ints):
            raise ValueError
        if type(nan) is not bool:
            raise ValueError
        if type(value) not in (int, float):
            raise ValueError
        after = PointKey(step, timestamp, float(value), nan)
        return HistoryCursor(after, (start_step, start_timestamp), seen)
    except (ValueError, TypeError, KeyError, UnicodeError, binascii.Error):
        raise InvalidParameter(
            f"invalid page token {token!r:.60}: pass the next_page_token of the previous "
            "page of this metric's history",
            field="page_token",
        ) from None


__all__ = [
    "BATCH_POINTS",
    "MIN_BATCH_POINTS",
    "HistoryCursor",
    "HistoryPage",
    "chunks_statement",
    "decode_history_token",
    "encode_history_token",
    "late_chunks_statement",
    "legacy_offset",
    "read_page",
]
