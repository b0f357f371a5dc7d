"""Walking the lineage graph in the database: one recursive query per question.

Edges point the way data flows (``dataset --source--> feature_view --input-->
training_set --input--> run --produced--> model --serves--> deployment_revision``), so
*upstream* follows edges backwards (what a node came from) and *downstream* forwards
(what it fed). The walk is a ``WITH RECURSIVE`` query over ``lineage_edges`` on SQLite
and PostgreSQL alike, built from the table definition (no SQL string restates the
schema): each step is an index lookup — the primary key ``(src, dst, relation)`` serves
``src``, ``ix_lineage_edges_dst`` serves ``dst`` — so the cost follows the size of the
answer, never the size of the graph, and the graph is never loaded into Python.

The recursion carries ``(edge, depth)`` rows with ``UNION`` (not ``UNION ALL``), so a
cycle, or a node reached by many paths, ends at ``depth``; ``MAX_DEPTH`` bounds an
unlimited walk and ``MAX_EDGES`` bounds the answer (``truncated`` says it was cut).

>>> with db.read() as conn:                                             # doctest: +SKIP
...     walk(conn, ["model:demand/3"], UPSTREAM, depth=None).edges
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, Integer, Select, func, literal, select

from modelyard.errors import InvalidParameter
from modelyard.store.schema import lineage_edges

UPSTREAM = "upstream"
DOWNSTREAM = "downstream"
DIRECTIONS = (UPSTREAM, DOWNSTREAM)
#: How far an unlimited walk goes (a lineage chain from a file to an alert is ~10 hops).
MAX_DEPTH = 64
#: Most edges one answer holds; a bigger neighbourhood is cut and said to be.
MAX_EDGES = 10_000


@dataclass(frozen=True, slots=True)
class Edge:
    src: str
    dst: str
    relation: str
    depth: int  # hops from the start node to the far end of this edge (1 = adjacent)

    def to_dict(self) -> dict[str, object]:
        return {"src": self.src, "dst": self.dst, "relation": self.relation, "depth": self.depth}


@dataclass(frozen=True, slots=True)
class Walk:
    start: tuple[str, ...]
    direction: str
    edges: list[Edge]
    truncated: bool

    @property
    def nodes(self) -> list[str]:
        """Every node of the answer, start nodes first, then in order of distance."""
        seen = dict.fromkeys(self.start)
        for edge in self.edges:
            seen.setdefault(edge.src if self.direction == UPSTREAM else edge.dst)
            seen.setdefault(edge.dst if self.direction == UPSTREAM else edge.src)
        return list(seen)


def check_direction(direction: str) -> str:
    if direction not in DIRECTIONS:
        raise InvalidParameter(
            f"direction {direction!r} is not one of {', '.join(DIRECTIONS)}", field="direction"
        )
    return direction


def check_depth(depth: int | None) -> int:
    """``None`` is as deep as ``MAX_DEPTH``; otherwise 1..MAX_DEPTH."""
    if depth is None:
        return MAX_DEPTH
    if isinstance(depth, bool) or not isinstance(depth, int) or not 1 <= depth <= MAX_DEPTH:
        raise InvalidParameter(
            f"depth must be a whole number from 1 to {MAX_DEPTH}, got {depth!r}", field="depth"
        )
    return depth


def walk(
    conn: Connection,
    start: Sequence[str],
    direction: str,
    *,
    depth: int | None = None,
    max_edges: int = MAX_EDGES,
) -> Walk:
    """The edges within ``depth`` hops of ``start`` in ``direction``, nearest first (each
    edge once, at the least depth it was reached); at most ``max_edges`` of them."""
    start = tuple(dict.fromkeys(start))
    query = walk_query(start, direction, depth=depth, max_edges=max_edges)
    if not start:
        return Walk(start, direction, [], False)
    rows = conn.execute(query).all()
    truncated = len(rows) > max_edges
    edges = [Edge(r.src, r.dst, r.relation, int(r.depth)) for r in rows[:max_edges]]
    return Walk(start, direction, edges, truncated)


def walk_query(
    start: Sequence[str], direction: str, *, depth: int | None = None, max_edges: int = MAX_EDGES
) -> Select[Any]:
    """The one statement ``walk`` runs: ``(src, dst, relation, depth)`` rows."""
    check_direction(direction)
    limit = check_depth(depth)
    e = lineage_edges.c
    near = e.dst if direction == UPSTREAM else e.src
    # The walk carries the edges themselves: each step joins the edges found last to the
    # edges at their far end, by index, so no step ever scans the table. The seeds are
    # one ``IN`` over the index (a start without edges has nothing to walk).
    seed = select(e.src, e.dst, e.relation, literal(1, Integer).label("depth")).where(
        near.in_(list(start))
    )
    walked = seed.cte("walked", recursive=True)
    w = walked.c
    reached_end = w.src if direction == UPSTREAM else w.dst
    step = (
        select(e.src, e.dst, e.relation, (w.depth + 1).label("depth"))
        .select_from(walked.join(lineage_edges, near == reached_end))
        .where(w.depth < limit)
    )
    r = walked.union(step).c
    nearest = func.min(r.depth).label("depth")
    return (
        select(r.src, r.dst, r.relation, nearest)
        .group_by(r.src, r.dst, r.relation)
        .order_by(nearest, r.src, r.dst, r.relation)
        .limit(max_edges + 1)
    )


def neighbours(conn: Connection, node_id: str) -> list[Edge]:
    """The edges in and out of one node (what the UI shows when a node is opened)."""
    e = lineage_edges.c
    rows = conn.execute(
        select(e.src, e.dst, e.relation).where((e.src == node_id) | (e.dst == node_id))
    ).all()
    return [Edge(r.src, r.dst, r.relation, 1) for r in rows]
