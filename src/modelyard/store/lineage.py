"""Recording lineage edges: a storage-level service every room calls when it creates a relation.

Reading the graph (queries, OpenLineage export) is the ``lineage`` room's job; writing is
here so that any room can record an edge in the same transaction as the fact it describes.
"""

from __future__ import annotations

import posixpath
from collections.abc import Iterable
from pathlib import Path, PurePath

from sqlalchemy import Connection, select

from modelyard.ids import now_ms
from modelyard.store.schema import lineage_edges
from modelyard.store.statements import insert_for


def node(kind: str, *parts: str) -> str:
    """A typed node id: ``node("run", run_id)`` → ``run:<id>``."""
    return f"{kind}:{'/'.join(parts)}"


def location(path_or_uri: str | PurePath) -> str:
    """The node of a place data lives: ``location:file:///abs/path`` for a local path (as
    OpenLineage tools name files), the URI itself for ``s3://…`` and the like."""
    text = str(path_or_uri)
    if "://" not in text:
        text = "file://" + posixpath.normpath(Path(text).expanduser().absolute().as_posix())
    return node("location", text)


def record_edges(conn: Connection, edges: Iterable[tuple[str, str, str]]) -> None:
    """Insert ``(src, dst, relation)`` edges that are not there yet (idempotent): one
    ``INSERT … ON CONFLICT DO NOTHING`` for the batch, on the edge's primary key, so a
    step recording five edges costs one statement, not ten, and two writers racing on
    one edge both succeed."""
    wanted = list(dict.fromkeys(edges))
    if not wanted:
        return
    now = now_ms()
    statement = insert_for(conn.dialect.name, lineage_edges).on_conflict_do_nothing()
    conn.execute(
        statement,
        [{"src": s, "dst": d, "relation": r, "created_at": now} for s, d, r in wanted],
    )


def edges_of(conn: Connection, node_id: str) -> list[tuple[str, str, str]]:
    """Edges that start or end at ``node_id`` (a minimal read for tests and rooms)."""
    c = lineage_edges.c
    rows = conn.execute(
        select(c.src, c.dst, c.relation).where((c.src == node_id) | (c.dst == node_id))
    ).all()
    return [(r.src, r.dst, r.relation) for r in rows]
