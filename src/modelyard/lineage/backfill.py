"""Edges for relations recorded before their room wrote edges for them.

Deployment revisions, monitors and alerts became edges of the graph with issue 14; a
store that already held them would otherwise show models with no deployments. Each of
these relations is fully described by the room's own rows, so the edges are rebuilt from
them exactly as the room writes them today (``serving.deployments.revision_edges``,
``monitors``, ``raised``) — idempotent, so running it twice changes nothing.

>>> backfill(db)                                                         # doctest: +SKIP
{'deployment_revision': 12, 'monitor': 2, 'alert': 5}
"""

from __future__ import annotations

import json

from sqlalchemy import select

from modelyard.monitoring.tables import alerts, monitors
from modelyard.serving.deployments import revision_edges
from modelyard.serving.policy import TrafficPolicy
from modelyard.serving.tables import deployment_revisions
from modelyard.store.engine import Database
from modelyard.store.lineage import node, record_edges

BATCH = 1000


def backfill(db: Database) -> dict[str, int]:
    """Record the edges of every stored revision, monitor and alert; returns how many
    rows of each were read."""
    counts = {"deployment_revision": 0, "monitor": 0, "alert": 0}
    r = deployment_revisions.c
    with db.read() as conn:
        revisions = conn.execute(select(r.deployment, r.revision, r.policy)).all()
        watched = conn.execute(select(monitors.c.name, monitors.c.deployment)).all()
        raised = conn.execute(select(alerts.c.id, alerts.c.monitor)).all()
    edges: list[tuple[str, str, str]] = []
    for row in revisions:
        policy = TrafficPolicy.from_dict(json.loads(row.policy))
        edges += revision_edges(row.deployment, int(row.revision), policy)
    edges += [
        (node("deployment", m.deployment), node("monitor", m.name), "monitors") for m in watched
    ]
    edges += [(node("monitor", a.monitor), node("alert", str(a.id)), "raised") for a in raised]
    for start in range(0, len(edges), BATCH):
        with db.write() as conn:
            record_edges(conn, edges[start : start + BATCH])
    counts.update(deployment_revision=len(revisions), monitor=len(watched), alert=len(raised))
    return counts
