"""``LineageService``: questions to the one graph, answered as a node-and-edge document.

>>> lineage = LineageService.from_settings(settings)                    # doctest: +SKIP
>>> doc = lineage.trace("sales@4", DOWNSTREAM)                          # doctest: +SKIP
>>> doc.impact["deployments"]                                           # doctest: +SKIP
['web']

``RemoteLineage`` asks a server the same question over its native API.

``trace`` resolves what the user named (``refs``), walks the edge table in SQL
(``graph``), adds a prediction's edges from the prediction log (``predictions``) and
describes every node (``nodes``). Downstream answers carry ``impact``: the training
sets, runs, model versions and *live* deployments (whose revision in force is reached)
that depend on the start — what to retrain or roll back when a source was wrong.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote

from modelyard.config import Settings, load_settings
from modelyard.http_transport import HttpTransport
from modelyard.lineage import graph
from modelyard.lineage.graph import DOWNSTREAM, UPSTREAM, Edge
from modelyard.lineage.nodes import Node, describe, split
from modelyard.lineage.predictions import edges_of
from modelyard.lineage.refs import resolve
from modelyard.store.engine import Database

#: The kinds an impact analysis lists, in the order a reader acts on them.
IMPACT_KINDS = {
    "training_set": "training_sets",
    "run": "runs",
    "model": "model_versions",
}


@dataclass
class LineageDocument:
    """The answer to one question: ``start`` nodes, ``nodes`` and ``edges`` (each edge
    with the hops from the start), ``truncated`` when ``graph.MAX_EDGES`` cut it."""

    ref: str
    start: str
    direction: str
    depth: int | None
    nodes: dict[str, Node]
    edges: list[Edge]
    truncated: bool
    impact: dict[str, list[str]] | None = field(default=None)

    def to_dict(self) -> dict[str, Any]:
        body: dict[str, Any] = {
            "ref": self.ref,
            "start": self.start,
            "direction": self.direction,
            "depth": self.depth,
            "truncated": self.truncated,
            "nodes": [n.to_dict() for n in self.nodes.values()],
            "edges": [e.to_dict() for e in self.edges],
        }
        if self.impact is not None:
            body["impact"] = self.impact
        return body


def document_from_dict(body: dict[str, Any]) -> LineageDocument:
    """A document as ``to_dict`` wrote it (what the server's ``GET /api/v1/lineage`` sends)."""
    nodes = {}
    for item in body["nodes"]:
        facts = {k: v for k, v in item.items() if k not in ("id", "kind", "label")}
        nodes[item["id"]] = Node(item["id"], item["kind"], item["label"], facts)
    edges = [Edge(e["src"], e["dst"], e["relation"], int(e["depth"])) for e in body["edges"]]
    return LineageDocument(
        ref=body["ref"],
        start=body["start"],
        direction=body["direction"],
        depth=body["depth"],
        nodes=nodes,
        edges=edges,
        truncated=bool(body["truncated"]),
        impact=body.get("impact"),
    )


class RemoteLineage:
    """``LineageService.trace`` asked of a ``modelyard server`` (``MODELYARD_TRACKING_URI``)."""

    def __init__(self, transport: HttpTransport) -> None:
        self.transport = transport

    def trace(
        self,
        ref: str,
        direction: str = UPSTREAM,
        *,
        depth: int | None = None,
        deployment: str | None = None,
        since_ms: int | None = None,
    ) -> LineageDocument:
        graph.check_direction(direction)
        body = self.transport.call(
            "GET",
            "/api/v1/lineage/" + quote(ref, safe=":/@"),
            params={
                "direction": direction,
                "depth": depth,
                "deployment": deployment,
                "since_ms": since_ms,
            },
        )
        return document_from_dict(body)


class LineageService:
    def __init__(self, db: Database, artifacts: Any = None) -> None:
        self.db = db
        self.artifacts = artifacts

    @classmethod
    def from_settings(cls, settings: Settings | None = None) -> LineageService:
        from modelyard.artifacts.blobs import open_blob_store
        from modelyard.artifacts.repository import ArtifactRepository
        from modelyard.tracking.backends import database_for

        settings = settings or load_settings()
        db = database_for(settings)
        return cls(db, ArtifactRepository(db, open_blob_store(settings.resolved_artifacts_uri())))

    def trace(
        self,
        ref: str,
        direction: str = UPSTREAM,
        *,
        depth: int | None = None,
        deployment: str | None = None,
        since_ms: int | None = None,
    ) -> LineageDocument:
        """Everything ``ref`` came from (``upstream``) or fed (``downstream``) within
        ``depth`` hops (``None``: all of it, up to ``graph.MAX_DEPTH``). ``deployment``
        and ``since_ms`` narrow the prediction-log search for a request id."""
        graph.check_direction(direction)
        limit = graph.check_depth(depth)
        found = resolve(self.db, self.artifacts, ref, deployment=deployment, since_ms=since_ms)
        first: list[Edge] = []
        starts = [found.node]
        if found.served:  # a prediction: its edges come from the log, the rest from SQL
            if direction == UPSTREAM:
                first = [Edge(s, d, r, 1) for s, d, r in edges_of(found.served)]
                starts = list(dict.fromkeys(e.src for e in first))
            else:
                starts = []
        with self.db.read() as conn:
            if first and limit == 1:
                walked = graph.Walk(tuple(starts), direction, [], False)
            else:
                walked = graph.walk(conn, starts, direction, depth=limit - 1 if first else limit)
            edges = first + [
                Edge(e.src, e.dst, e.relation, e.depth + (1 if first else 0)) for e in walked.edges
            ]
            ids = dict.fromkeys([found.node])
            for e in edges:
                ids.setdefault(e.src)
                ids.setdefault(e.dst)
            nodes = describe(conn, ids)
        if found.served:
            nodes[found.node].label = f"request {found.ref}"
            nodes[found.node].attributes = {"served": [s.to_dict() for s in found.served]}
        doc = LineageDocument(
            ref=ref,
            start=found.node,
            direction=direction,
            depth=depth,
            nodes=nodes,
            edges=edges,
            truncated=walked.truncated,
        )
        if direction == DOWNSTREAM:
            doc.impact = impact(nodes, found.node)
        return doc


def impact(nodes: dict[str, Node], start: str) -> dict[str, list[str]]:
    """What depends on ``start``: labels of training sets, runs and model versions, and
    the deployments serving from a reached revision right now (``live``)."""
    out: dict[str, list[str]] = {name: [] for name in IMPACT_KINDS.values()}
    live: dict[str, None] = {}
    for n in nodes.values():
        if n.id == start:
            continue
        if n.kind in IMPACT_KINDS:  # ids to act on: a run id, models:/name/3
            out[IMPACT_KINDS[n.kind]].append(n.label if n.kind == "model" else split(n.id)[1])
        elif n.kind == "deployment_revision" and n.attributes.get("live"):
            live.setdefault(str(n.attributes["deployment"]))
    out["live_deployments"] = sorted(live)
    return out
