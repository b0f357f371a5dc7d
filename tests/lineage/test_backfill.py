"""Edges of deployments, monitors and alerts stored before the rooms wrote them are
rebuilt from the rooms' rows, exactly as the rooms write them now, and only once."""

from __future__ import annotations

from sqlalchemy import delete, select

from modelyard.lineage.backfill import backfill
from modelyard.store.schema import lineage_edges

RELATIONS = ("serves", "shadows", "revision_of", "monitors", "raised")


def written(db) -> set[tuple[str, str, str]]:
    e = lineage_edges.c
    with db.read() as conn:
        rows = conn.execute(select(e.src, e.dst, e.relation).where(e.relation.in_(RELATIONS)))
        return {(r.src, r.dst, r.relation) for r in rows}


def test_backfill_rebuilds_what_the_rooms_write(story):
    db = story.registry.db
    before = written(db)
    assert ("deployment:web", "monitor:web-drift", "monitors") in before
    with db.write() as conn:  # a store from before issue 14
        conn.execute(delete(lineage_edges).where(lineage_edges.c.relation.in_(RELATIONS)))
    assert written(db) == set()
    counts = backfill(db)
    assert counts == {"deployment_revision": 2, "monitor": 1, "alert": 0}
    assert written(db) == before
    backfill(db)  # idempotent
    assert written(db) == before
