"""Recording lineage edges: idempotent, one statement per batch, safe when two writers
record the same edge, on SQLite and PostgreSQL."""

from __future__ import annotations

import threading

from sqlalchemy import event, func, select

from modelyard.store.engine import Database
from modelyard.store.lineage import edges_of, record_edges
from modelyard.store.schema import lineage_edges


def count(db: Database) -> int:
    with db.read() as conn:
        return conn.execute(select(func.count()).select_from(lineage_edges)).scalar_one()


def test_edges_are_recorded_once_however_often_they_are_given(metadata_db):
    edges = [("dataset:a", "run:1", "input"), ("run:1", "model:m/1", "produced")]
    with metadata_db.write() as conn:
        record_edges(conn, [*edges, edges[0]])
    with metadata_db.write() as conn:
        record_edges(conn, edges)
        record_edges(conn, [])
    assert count(metadata_db) == 2
    with metadata_db.read() as conn:
        assert sorted(edges_of(conn, "run:1")) == sorted(edges)


def test_a_batch_is_one_statement(metadata_db):
    statements = []

    def seen(conn, cursor, statement, *args):
        if "lineage_edges" in statement:
            statements.append(statement)

    event.listen(metadata_db.engine, "before_cursor_execute", seen)
    try:
        with metadata_db.write() as conn:
            record_edges(conn, [(f"step:{i}", f"artifact:{i}", "output") for i in range(20)])
    finally:
        event.remove(metadata_db.engine, "before_cursor_execute", seen)
    assert count(metadata_db) == 20
    assert len(statements) == 1


def test_two_writers_recording_the_same_edges_both_succeed(metadata_db):
    edges = [(f"run:{i}", "model:m/1", "produced") for i in range(50)]
    errors = []
    start = threading.Barrier(2)

    def write() -> None:
        start.wait()
        try:
            with metadata_db.write() as conn:
                record_edges(conn, edges)
        except Exception as exc:  # pragma: no cover - the failure this test is about
            errors.append(exc)

    threads = [threading.Thread(target=write) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == [] and count(metadata_db) == 50
