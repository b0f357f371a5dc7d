"""A metric history read in pages: exactly the history (its order, replays folded, NaN
and signed zeros as ``history`` keeps them), and each page reads a bounded number of
chunks however long the history and however deep the page."""

from __future__ import annotations

import base64
import json
import math

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import text

from modelyard.errors import InvalidParameter
from modelyard.store.metric_chunks import history, pack_points, point_key
from modelyard.tracking.entities import Metric
from modelyard.tracking.metric_pages import (
    MIN_BATCH_POINTS,
    HistoryCursor,
    chunks_statement,
    read_page,
)
from modelyard.tracking.sql_store import SqlTrackingStore

small = st.integers(min_value=-3, max_value=3)  # few values: many ties and duplicates
value = st.sampled_from([0.0, -0.0, 1.5, -2.0, math.nan, math.inf, -math.inf])
batch = st.lists(st.tuples(small, small, value), min_size=1, max_size=12)


def same(a: float, b: float) -> bool:
    return (math.isnan(a) and math.isnan(b)) or (
        a == b and math.copysign(1, a) == math.copysign(1, b)
    )


def log(store: SqlTrackingStore, run_id: str, points: list[tuple[int, int, float]]) -> bytes:
    store.log_batch(run_id, metrics=[Metric("m", v, t, s) for s, t, v in points])
    return pack_points([p[0] for p in points], [p[1] for p in points], [p[2] for p in points])


def read_all(store: SqlTrackingStore, run_id: str, page: int) -> list[Metric]:
    got: list[Metric] = []
    token = None
    while True:
        found = store.get_metric_history(run_id, "m", page, token)
        assert len(found.items) <= page
        got += found.items
        token = found.next_page_token
        if token is None:
            return got


def assert_history(got: list[Metric], blobs: list[bytes]) -> None:
    expected = history(blobs)
    assert [(m.step, m.timestamp) for m in got] == [(s, t) for s, t, _ in expected]
    assert all(same(m.value, p[2]) for m, p in zip(got, expected, strict=True))


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(st.lists(batch, min_size=1, max_size=8), st.lists(st.integers(0, 7), max_size=3), small)
def test_pages_hold_exactly_the_history(sqlite_db, batches, replays, page):
    store = SqlTrackingStore(sqlite_db)
    run_id = store.create_run("0", "u", 0).info.run_id
    logged = batches + [batches[i % len(batches)] for i in replays]  # retried batches
    blobs = [log(store, run_id, points) for points in logged]
    assert_history(read_all(store, run_id, page + 4), blobs)


def test_a_chunk_logged_out_of_order_is_paged_in_place(metadata_db):
    store = SqlTrackingStore(metadata_db)
    run_id = store.create_run("0", "u", 0).info.run_id
    blobs = [
        log(store, run_id, [(s, 100 + s, float(s)) for s in range(b, b + 10)]) for b in (0, 10)
    ]
    blobs.append(log(store, run_id, [(3, 1, -1.0), (25, 1, -2.0)]))  # spans both, and beyond
    blobs.append(log(store, run_id, [(12, 112, 12.0), (12, 112, math.nan)]))  # a replay and NaN
    for page in (1, 3, 7, 100):
        assert_history(read_all(store, run_id, page), blobs)
    assert store.get_metric_history(run_id, "nothing", 10).items == []


def test_a_chunk_written_between_pages_that_starts_before_the_scan_is_still_read(metadata_db):
    store = SqlTrackingStore(metadata_db)
    run_id = store.create_run("0", "u", 0).info.run_id
    blobs = [log(store, run_id, [(s, 100 + s, 1.0) for s in range(b, b + 10)]) for b in (0, 10, 20)]
    first = store.get_metric_history(run_id, "m", 15)  # ends at step 14; the scan resumes at 10
    blobs.append(log(store, run_id, [(3, 1, -1.0), (25, 1, -2.0)]))  # a late, early-starting batch
    rest = read_all_from(store, run_id, 15, first.next_page_token)
    end = first.items[-1]
    after = [p for p in history(blobs) if (p[0], p[1]) > (end.step, end.timestamp)]
    assert [(m.step, m.timestamp) for m in first.items + rest] == [
        *((m.step, m.timestamp) for m in first.items),
        *((s, t) for s, t, _ in after),
    ]
    assert (25, 1) in [(m.step, m.timestamp) for m in rest]


def read_all_from(store: SqlTrackingStore, run_id: str, page: int, token: str | None) -> list:
    got: list[Metric] = []
    while token is not None:
        found = store.get_metric_history(run_id, "m", page, token)
        got += found.items
        token = found.next_page_token
    return got


def test_a_page_reads_a_bounded_number_of_points_however_deep(sqlite_db):
    store = SqlTrackingStore(sqlite_db)
    run_id = store.create_run("0", "u", 0).info.run_id
    size, per_batch, page = 200_000, 1000, 2000
    for start in range(0, size, per_batch):
        points = [Metric("loss", float(s), 1000 + s, s) for s in range(start, start + per_batch)]
        store.log_batch(run_id, metrics=points)
    # A late chunk spanning the whole history (a retried early step, and a last one).
    store.log_batch(run_id, metrics=[Metric("loss", -1.0, 5, 3), Metric("loss", 0.5, 9, size)])
    reads, seen, token = [], 0, None
    while True:
        with sqlite_db.read() as conn:
            found = read_page(conn, run_id, "loss", page, token)
        reads.append(found.points_read)
        seen += len(found.columns.steps)
        token = found.next_page_token
        if token is None:
            break
    assert seen == size + 2 and len(reads) == -(-seen // page)
    # What a page decodes: a first batch of four chunks, then chunks for about a page or
    # MIN_BATCH_POINTS and one more, and the spanning chunk -- at the first page and the
    # hundredth alike.
    bound = 4 * per_batch + max(page, MIN_BATCH_POINTS) + per_batch + 2
    assert max(reads) <= bound, reads
    assert reads[-2] <= reads[1], reads


def test_the_page_query_is_a_range_scan_of_the_index(sqlite_db):
    cursor = HistoryCursor(point_key(1000, 5, 0.5), (990, 3), 0)
    stmt = chunks_statement("a" * 32, "loss", cursor).limit(64)
    compiled = stmt.compile(sqlite_db.engine, compile_kwargs={"literal_binds": True})
    with sqlite_db.read() as conn:
        plan = " ".join(row.detail for row in conn.execute(text(f"EXPLAIN QUERY PLAN {compiled}")))
    assert "USING INDEX ix_metric_chunks_range" in plan and "min_step" in plan, plan
    assert "TEMP B-TREE" not in plan, plan  # read in index order: no sort


def token(fields: object) -> str:
    return base64.urlsafe_b64encode(json.dumps(fields).encode()).decode()


@pytest.mark.parametrize(
    "bad",
    [
        "not base64!",
        token({"offset": 5}),  # a run search's token
        token({"history": [1, 2, 0.5, False, 0, 0]}),
        token({"history": [1, 2, "x", False, 0, 0, 0]}),
        token({"history": [1, 2, 0.5, "no", 0, 0, 0]}),
        token({"history": [2**63, 2, 0.5, False, 0, 0, 0]}),
        token({"history": [1, 2, 0.5, False, 0, 0, -(2**63) - 1]}),
        token({"history": [True, 2, 0.5, False, 0, 0, 0]}),
        token([1, 2, 3]),
    ],
)
def test_a_bad_page_token_is_refused_naming_it(sqlite_db, bad):
    store = SqlTrackingStore(sqlite_db)
    run_id = store.create_run("0", "u", 0).info.run_id
    with pytest.raises(InvalidParameter) as raised:
        store.get_metric_history(run_id, "m", 10, bad)
    assert raised.value.field == "page_token"


@pytest.mark.parametrize("bad", [0, -1, 100_001])
def test_a_page_size_out_of_range_is_refused(sqlite_db, bad):
    store = SqlTrackingStore(sqlite_db)
    run_id = store.create_run("0", "u", 0).info.run_id
    with pytest.raises(InvalidParameter) as raised:
        store.get_metric_history(run_id, "m", bad)
    assert raised.value.field == "max_results"


@pytest.mark.parametrize(
    "legacy", [str, lambda n: base64.b64encode(f"offset:{n}".encode()).decode()]
)
def test_an_offset_token_from_before_the_upgrade_still_pages(sqlite_db, legacy):
    store = SqlTrackingStore(sqlite_db)
    run_id = store.create_run("0", "u", 0).info.run_id
    blobs = [log(store, run_id, [(s, 100 + s, 1.0) for s in range(b, b + 10)]) for b in (0, 10)]
    rest = read_all_from(store, run_id, 4, legacy(7))  # what the servers answered before
    assert [m.step for m in rest] == [p[0] for p in history(blobs)][7:]
    beyond = store.get_metric_history(run_id, "m", 4, legacy(25))
    assert beyond.items == [] and beyond.next_page_token is None


def test_a_chunk_a_replica_of_the_release_before_wrote_is_read_on_every_page(metadata_db):
    """During a rolling upgrade, an older replica writes chunks without their range: the
    columns' defaults make the chunk reach into every page, so none of its points is lost."""
    store = SqlTrackingStore(metadata_db)
    run_id = store.create_run("0", "ann", 0).info.run_id
    blobs = [log(store, run_id, [(s, s, float(s)) for s in range(0, 40, 2)])]
    older = [(s, s, -float(s)) for s in range(1, 40, 2)]
    blobs.append(pack_points([p[0] for p in older], [p[1] for p in older], [p[2] for p in older]))
    with metadata_db.write() as conn:  # the columns the release before wrote
        conn.execute(
            text(
                "INSERT INTO metric_chunks (run_id, key, chunk_id, points) "
                "VALUES (:run_id, 'm', 1, :points)"
            ),
            {"run_id": run_id, "points": blobs[1]},
        )
    for page in (3, 7, 1000):
        assert_history(read_all(store, run_id, page), blobs)
