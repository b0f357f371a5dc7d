"""OpenLineage RunEvents from other tools (Airflow, Spark, dbt), joined to our graph.

An event says that a run of job ``namespace/name`` read ``inputs`` and wrote ``outputs``.
We keep what the graph needs, as edges: ``location:<input uri> --input--> job:<ns>/<name>``
and ``job --output--> location:<output uri>`` (outputs only once the run COMPLETEs or is
RUNNING: a failed or aborted run wrote nothing anyone should trust). The dataset's
``(namespace, name)`` becomes the URI of its location (``openlineage_names``) — the same
node a ``data snapshot`` of that file links its dataset version from — so "which job
wrote the file behind sales@4?" is one more hop upstream. Datasets already snapshotted
from that place before this event are linked too (their recorded source path matches).

Validation comes first and is complete: every field we rely on is checked and a bad
event is refused as a whole with ``InvalidParameter`` naming the field
(``run.runId``, ``inputs[2].name``), so nothing half-recorded is left behind.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, select

from modelyard.data.tables import dataset_versions
from modelyard.errors import InvalidParameter
from modelyard.lineage.openlineage_names import location_dataset, location_node, location_uri
from modelyard.store.engine import Database
from modelyard.store.lineage import location, node, record_edges

EVENT_TYPES = ("START", "RUNNING", "COMPLETE", "ABORT", "FAIL", "OTHER")
#: Event types after which a run's outputs are recorded.
WROTE = ("RUNNING", "COMPLETE")
MAX_NAME = 400
MAX_DATASETS = 1000


@dataclass(frozen=True, slots=True)
class Accepted:
    """What one event added: the job's node and the edges recorded."""

    job: str
    run_id: str
    event_type: str
    edges: list[tuple[str, str, str]]

    def to_dict(self) -> dict[str, Any]:
        return {
            "job": self.job,
            "run_id": self.run_id,
            "event_type": self.event_type,
            "edges": [{"src": s, "dst": d, "relation": r} for s, d, r in self.edges],
        }


def _bad(field: str, why: str) -> InvalidParameter:
    return InvalidParameter(f"OpenLineage event field {field} {why}", field=field)


def _text(body: Mapping[str, Any], key: str, where: str) -> str:
    value = body.get(key)
    field = f"{where}.{key}" if where else key
    if not isinstance(value, str) or not value.strip():
        raise _bad(field, f"must be a non-empty string, got {value!r}")
    if len(value) > MAX_NAME:
        raise _bad(field, f"is longer than {MAX_NAME} characters")
    return value


def _object(body: Mapping[str, Any], key: str) -> Mapping[str, Any]:
    value = body.get(key)
    if not isinstance(value, Mapping):
        raise _bad(key, f"must be an object, got {type(value).__name__}")
    return value


def _datasets(body: Mapping[str, Any], key: str) -> list[tuple[str, str]]:
    value = body.get(key, [])
    if value is None:
        return []
    if not isinstance(value, list):
        raise _bad(key, f"must be a list, got {type(value).__name__}")
    if len(value) > MAX_DATASETS:
        raise _bad(key, f"lists more than {MAX_DATASETS} datasets")
    out = []
    for i, item in enumerate(value):
        where = f"{key}[{i}]"
        if not isinstance(item, Mapping):
            raise _bad(where, f"must be an object, got {type(item).__name__}")
        out.append((_text(item, "namespace", where), _text(item, "name", where)))
    return out


def parse_event(body: Any) -> tuple[str, str, str, list[tuple[str, str]], list[tuple[str, str]]]:
    """``(event type, run id, job node, inputs, outputs)`` of a RunEvent, or the field
    that is wrong."""
    if not isinstance(body, Mapping):
        raise _bad("event", f"must be a JSON object, got {type(body).__name__}")
    event_type = body.get("eventType")
    if event_type not in EVENT_TYPES:
        raise _bad("eventType", f"must be one of {', '.join(EVENT_TYPES)}, got {event_type!r}")
    when = _text(body, "eventTime", "")
    try:
        datetime.fromisoformat(when.replace("Z", "+00:00"))
    except ValueError:
        raise _bad("eventTime", f"must be an ISO 8601 time, got {when!r}") from None
    run = _object(body, "run")
    run_id = _text(run, "runId", "run")
    try:
        uuid.UUID(run_id)
    except ValueError:
        raise _bad("run.runId", f"must be a UUID, got {run_id!r}") from None
    job = _object(body, "job")
    job_node = node("job", f"{_text(job, 'namespace', 'job')}/{_text(job, 'name', 'job')}")
    inputs, outputs = _datasets(body, "inputs"), _datasets(body, "outputs")
    return str(event_type), run_id, job_node, inputs, outputs


def ingest(db: Database, body: Any) -> Accepted:
    """Record an OpenLineage RunEvent's inputs and outputs as edges (idempotent)."""
    event_type, run_id, job_node, inputs, outputs = parse_event(body)
    edges = [(location_node(location_uri(ns, name)), job_node, "input") for ns, name in inputs]
    written = [location_node(location_uri(ns, name)) for ns, name in outputs]
    if event_type in WROTE:
        edges += [(job_node, place, "output") for place in written]
    with db.write() as conn:
        edges += _snapshots_of(conn, [e[1] for e in edges if e[0] == job_node])
        record_edges(conn, edges)
    return Accepted(job_node, run_id, event_type, edges)


def _snapshots_of(conn: Connection, places: list[str]) -> list[tuple[str, str, str]]:
    """``location → dataset version`` for versions snapshotted from these places before
    (a version snapshotted later links itself: ``DataClient.snapshot``)."""
    if not places:
        return []
    c = dataset_versions.c
    wanted: dict[str, str] = {}
    for place in places:
        uri = place.partition(":")[2]
        ns, path = location_dataset(uri)
        wanted[uri] = place
        if ns == "file":
            wanted[path] = place
    rows = conn.execute(select(c.name, c.digest, c.source).where(c.source.in_(list(wanted)))).all()
    out = []
    for row in rows:
        place = wanted[row.source]
        absolute = row.source.startswith("/") or "://" in row.source  # relative: unknowable
        if absolute and location(row.source) == place:
            out.append((place, node("dataset", f"{row.name}@{row.digest}"), "snapshot_of"))
    return out
