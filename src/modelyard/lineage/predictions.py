"""A prediction's place in the graph: its request id, looked up in the prediction log.

Predictions are too many to be rows of the metadata database, so they are not edges:
a ``prediction:<request id>`` node is resolved on demand from the Parquet log
(``serving.prediction_log``), which records for each answered variant the deployment,
the revision in force and the model version. The lookup reads only what it must: the
files of one deployment when it is known (named by the caller, or found through the
feedback table, which is indexed by request id), else of every deployment's
partitions, optionally only the hours since ``since_ms``; DuckDB reads just the
``request_id`` column of each row group first and the other few columns of matching
rows (the inputs and outputs JSON never). A writer's request ids share its prefix and
count up (``serving.runtime.new_request_id``), so the row groups' min/max statistics
rule out most files by their footers. A remote artifact store's files are copied
into a temporary folder removed before returning.
"""

from __future__ import annotations

import os
import tempfile
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select

from modelyard.errors import InvalidParameter, MissingExtra, NotFound
from modelyard.features.relations import literal
from modelyard.serving.prediction_log import PREFIX, partition_path
from modelyard.serving.tables import serving_feedback
from modelyard.store.lineage import node

#: The last millisecond of year 9999 (a later time has no hour partition).
MAX_TIME_MS = 253_402_300_799_999
#: The columns read for a prediction (never the logged inputs or outputs).
COLUMNS = ("request_id", "deployment", "revision", "variant", "model", "version", "role", "status")


@dataclass(frozen=True, slots=True)
class Served:
    """One variant's answer (or mirrored shadow call) to a request."""

    request_id: str
    ts_ms: int
    deployment: str
    revision: int
    variant: str
    model: str
    version: int
    role: str  # primary | shadow
    status: str  # ok | error

    def to_dict(self) -> dict[str, Any]:
        return {
            "ts_ms": self.ts_ms,
            "deployment": self.deployment,
            "revision": self.revision,
            "variant": self.variant,
            "model": self.model,
            "version": self.version,
            "role": self.role,
            "status": self.status,
        }


def prediction_node(request_id: str) -> str:
    return node("prediction", request_id)


def edges_of(served: Sequence[Served]) -> list[tuple[str, str, str]]:
    """The prediction's incoming edges: the revision that routed it, the versions that
    computed it (``predicted``; a shadow's ``shadowed``)."""
    out: dict[tuple[str, str, str], None] = {}
    for s in served:
        target = prediction_node(s.request_id)
        revision = node("deployment_revision", s.deployment, str(s.revision))
        out[(revision, target, "routed")] = None
        relation = "predicted" if s.role == "primary" else "shadowed"
        out[(node("model", s.model, str(s.version)), target, relation)] = None
    return list(out)


def find_prediction(
    artifacts: Any,
    db: Any,
    request_id: str,
    *,
    deployment: str | None = None,
    since_ms: int | None = None,
) -> list[Served]:
    """Every logged answer to ``request_id`` (primary and shadows), oldest first; raises
    ``NotFound`` when the log has none (the log is written a few seconds after the
    answer: a request just served may not be there yet)."""
    if since_ms is not None and not 0 <= since_ms <= MAX_TIME_MS:
        raise InvalidParameter(
            f"since_ms must be milliseconds since 1970 (0 to {MAX_TIME_MS}), got {since_ms}",
            field="since_ms",
        )
    deployments = [deployment] if deployment else _feedback_deployments(db, request_id)
    found = _scan(artifacts, request_id, deployments or None, since_ms)
    if not found and not deployment and deployments:  # feedback named another deployment
        found = _scan(artifacts, request_id, None, since_ms)
    if not found:
        where = f" of deployment {deployment!r}" if deployment else ""
        raise NotFound(
            f"request {request_id!r} is not in the prediction log{where} (predictions are "
            "logged a few seconds after they are served; a logging failure drops them)",
            field="request_id",
        )
    return found


def _feedback_deployments(db: Any, request_id: str) -> list[str]:
    c = serving_feedback.c
    with db.read() as conn:
        rows = conn.execute(select(c.deployment).where(c.request_id == request_id).distinct())
        return [r.deployment for r in rows]


def _files(
    artifacts: Any, deployments: list[str] | None, since_ms: int | None
) -> list[tuple[str, str]]:
    """``(artifact path, digest)`` of the Parquet files that may hold the request."""
    prefixes = [f"{PREFIX}/deployment={d}" for d in deployments] if deployments else [PREFIX]
    out: dict[str, str] = {}
    for prefix in prefixes:
        for path, digest in artifacts.digests_under(prefix):
            full = f"{prefix}/{path}"
            if not full.endswith(".parquet"):
                continue
            if since_ms is not None and _hour_of(full) < _hour_of(partition_path("x", since_ms)):
                continue
            out.setdefault(digest, full)
    return [(path, digest) for digest, path in out.items()]


def _hour_of(path: str) -> str:
    for part in path.split("/"):
        if part.startswith("hour="):
            return part
    return ""


#: One in-memory DuckDB per process: opening one costs ~15 ms of CPU, three times the
#: lookup itself; each lookup takes a cursor of it (cheap, and safe across threads).
_DUCKDB: Any = None
_DUCKDB_LOCK = threading.Lock()


def _cursor(duckdb: Any) -> Any:
    global _DUCKDB
    with _DUCKDB_LOCK:
        if _DUCKDB is None:
            _DUCKDB = duckdb.connect(":memory:", config={"threads": 1})
        return _DUCKDB.cursor()


def _scan(
    artifacts: Any, request_id: str, deployments: list[str] | None, since_ms: int | None
) -> list[Served]:
    files = _files(artifacts, deployments, since_ms)
    if not files:
        return []
    try:
        import duckdb
    except ImportError as exc:
        raise MissingExtra("duckdb", "features", "Tracing a prediction") from exc
    with tempfile.TemporaryDirectory(prefix="modelyard-lineage-") as folder:
        paths = []
        for _, digest in files:
            local = artifacts.blobs.local_path(digest)
            if local is None:
                local = artifacts.blobs.download(digest, os.path.join(folder, f"{digest}.parquet"))
            paths.append(local)
        listed = "[" + ", ".join(literal(p) for p in paths) + "]"
        columns = ", ".join(COLUMNS)
        con = _cursor(duckdb)
        try:
            rows = con.execute(
                f"SELECT {columns}, epoch_ms(ts) AS ts_ms "
                f"FROM read_parquet({listed}, union_by_name = true) "
                "WHERE request_id = ? ORDER BY ts_ms, role",
                [request_id],
            ).fetchall()
        finally:
            con.close()
    return [
        Served(
            request_id=r[0],
            deployment=r[1],
            revision=int(r[2]),
            variant=r[3],
            model=r[4],
            version=int(r[5]),
            role=r[6],
            status=r[7],
            ts_ms=int(r[8]),
        )
        for r in rows
    ]
