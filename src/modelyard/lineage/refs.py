"""What a user names, as a node of the graph.

The names people already use elsewhere in modelyard are accepted as they are:

* ``models:/demand/3``, ``models:/demand@champion``, ``models:/demand/latest`` — a model
  version (``model:demand/3``);
* ``sales@4``, ``sales@latest``, ``sales@<digest prefix>`` — a dataset version
  (``dataset:sales@<digest>``, since the graph knows contents, not numbers);
* a feature view ``daily_sales`` (its newest version) or ``daily_sales@2``;
* a run id, a training set id, a deployment name (``web``) or one revision (``web/4``),
  a monitor name;
* a request id the data plane answered — resolved through the prediction log;
* any node id as the graph spells it (``kind:...``), e.g. ``dataset:sales@9f…``,
  ``training_set:…``, ``alert:12``, ``job:airflow/etl.load``.

``NAME@N`` is a dataset version when one exists (the data room's spelling), else a
feature definition's version. A bare name that two rooms both know (a dataset and a
feature view both called ``sales``) is refused with both spellings to choose from, never
guessed.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Connection, func, select

from modelyard.data.tables import dataset_versions
from modelyard.errors import InvalidParameter, NotFound
from modelyard.features.tables import feature_definitions, feature_training_sets
from modelyard.lineage.predictions import Served, find_prediction, prediction_node
from modelyard.monitoring.tables import monitors
from modelyard.registry.tables import model_aliases, model_versions
from modelyard.registry.uris import ModelRef, parse_model_uri
from modelyard.serving.tables import deployment_revisions, deployments
from modelyard.store.engine import Database
from modelyard.store.lineage import node
from modelyard.store.schema import lineage_edges
from modelyard.tracking.tables import runs

#: Node kinds a ``kind:rest`` reference may name directly.
KINDS = (
    "alert", "artifact", "dataset", "deployment", "deployment_revision", "feature_service",
    "feature_view", "job", "location", "logged_model", "model", "monitor",
    "on_demand_feature_view", "prediction", "run", "step", "training_set",
)  # fmt: skip
DEFINITION_KINDS = ("feature_view", "feature_service", "on_demand_feature_view")
_RUN_ID = re.compile(r"^[0-9a-f]{32}$")
MAX_REF_LENGTH = 512


@dataclass(frozen=True, slots=True)
class Resolved:
    """The graph node(s) a reference names; ``served`` holds a prediction's log rows."""

    ref: str
    node: str
    served: tuple[Served, ...] = field(default=())


def resolve(
    db: Database,
    artifacts: Any,
    ref: str,
    *,
    deployment: str | None = None,
    since_ms: int | None = None,
) -> Resolved:
    """The node ``ref`` names; ``NotFound`` (field ``id``) when nothing is called that."""
    if not isinstance(ref, str) or not ref.strip() or len(ref) > MAX_REF_LENGTH:
        raise InvalidParameter(
            f"a lineage id must be 1-{MAX_REF_LENGTH} characters, got {ref!r}", field="id"
        )
    ref = ref.strip()
    if ref.startswith("models:/"):
        with db.read() as conn:
            return Resolved(ref, _model(conn, ref))
    kind, colon, rest = ref.partition(":")
    if colon and kind in KINDS:
        return _typed(db, artifacts, ref, kind, rest, deployment, since_ms)
    with db.read() as conn:
        found = _bare(conn, ref)
    if len(found) > 1:
        raise InvalidParameter(
            f"{ref!r} names more than one thing: {' or '.join(found)}; pass one of them",
            field="id",
        )
    if found:
        return Resolved(ref, found[0])
    if artifacts is None:
        raise NotFound(f"nothing in the lineage graph is called {ref!r}", field="id")
    try:
        served = find_prediction(artifacts, db, ref, deployment=deployment, since_ms=since_ms)
    except NotFound as exc:
        raise NotFound(
            f"nothing in the lineage graph is called {ref!r}: it is no model URI, dataset "
            "version, feature view, run, training set, deployment or monitor, and "
            f"{exc.message}",
            field="id",
        ) from exc
    return Resolved(ref, prediction_node(ref), tuple(served))


def _typed(
    db: Database,
    artifacts: Any,
    ref: str,
    kind: str,
    rest: str,
    deployment: str | None,
    since_ms: int | None,
) -> Resolved:
    if kind == "prediction":
        served = find_prediction(artifacts, db, rest, deployment=deployment, since_ms=since_ms)
        return Resolved(ref, ref, tuple(served))
    with db.read() as conn:
        if kind == "dataset" and "@" in rest and not _is_edge_node(conn, ref):
            return Resolved(ref, _dataset(conn, rest))
        if kind in DEFINITION_KINDS and "@" not in rest:
            return Resolved(ref, _definition(conn, kind, rest))
        if not _is_edge_node(conn, ref) and not _is_entity(conn, kind, rest):
            raise NotFound(f"the lineage graph has no node {ref!r}", field="id")
    return Resolved(ref, ref)


def _bare(conn: Connection, ref: str) -> list[str]:
    """Every node a reference without a kind could mean."""
    found: list[str] = []
    name, at, tail = ref.partition("@")
    if at:  # NAME@N is a dataset version first, as everywhere in modelyard
        try:
            return [_dataset(conn, ref)]
        except NotFound:
            pass
        if tail.isdigit():
            for kind in DEFINITION_KINDS:
                if _definition_exists(conn, kind, name, int(tail)):
                    found.append(node(kind, ref))
        return found
    for kind in DEFINITION_KINDS:
        try:
            found.append(_definition(conn, kind, ref))
        except NotFound:
            pass
    if _RUN_ID.match(ref) and _exists(conn, runs.c.run_id == ref):
        step = node("step", ref)  # a pipeline step's run is named as a step in the graph
        found.append(step if _is_edge_node(conn, step) else node("run", ref))
    if _exists(conn, feature_training_sets.c.training_set_id == ref):
        found.append(node("training_set", ref))
    if _exists(conn, deployments.c.name == ref):
        found.append(node("deployment", ref))
    dep, slash, rev = ref.rpartition("/")
    if slash and rev.isdigit():
        c = deployment_revisions.c
        if _exists(conn, (c.deployment == dep) & (c.revision == int(rev))):
            found.append(node("deployment_revision", dep, rev))
    if _exists(conn, monitors.c.name == ref):
        found.append(node("monitor", ref))
    if _exists(conn, dataset_versions.c.name == ref):
        found.append(_dataset(conn, ref))
    return list(dict.fromkeys(found))


def _exists(conn: Connection, condition: Any) -> bool:
    return conn.execute(select(func.count()).where(condition).limit(1)).scalar() != 0


def _is_edge_node(conn: Connection, node_id: str) -> bool:
    e = lineage_edges.c
    return (
        conn.execute(select(e.src).where(e.src == node_id).limit(1)).first() is not None
        or conn.execute(select(e.dst).where(e.dst == node_id).limit(1)).first() is not None
    )


def _is_entity(conn: Connection, kind: str, rest: str) -> bool:
    """Whether a node with no edges yet is still a real thing (a run that read nothing)."""
    if kind in ("run", "step"):  # a pipeline step is a nested run
        return _exists(conn, runs.c.run_id == rest)
    if kind == "training_set":
        return _exists(conn, feature_training_sets.c.training_set_id == rest)
    if kind == "deployment":
        return _exists(conn, deployments.c.name == rest)
    if kind == "monitor":
        return _exists(conn, monitors.c.name == rest)
    return False


def _model(conn: Connection, uri: str) -> str:
    ref = parse_model_uri(uri)
    if not isinstance(ref, ModelRef):
        raise InvalidParameter(
            f"{uri!r} names no registered model version; use models:/NAME/VERSION or "
            "models:/NAME@ALIAS (a run is named by its id)",
            field="id",
        )
    v = model_versions.c
    if ref.version is not None:
        version = conn.execute(
            select(v.version).where(v.name == ref.name, v.version == ref.version)
        ).scalar()
    elif ref.alias is not None:
        a = model_aliases.c
        version = conn.execute(
            select(a.version).where(a.name == ref.name, a.alias == ref.alias)
        ).scalar()
    elif ref.latest:
        version = conn.execute(select(func.max(v.version)).where(v.name == ref.name)).scalar()
    else:
        version = conn.execute(
            select(func.max(v.version)).where(v.name == ref.name, v.stage == ref.stage)
        ).scalar()
    if version is None:
        raise NotFound(f"{uri!r} names no model version", field="id")
    return node("model", ref.name, str(version))


def _dataset(conn: Connection, ref: str) -> str:
    """``sales``, ``sales@4``, ``sales@latest`` or ``sales@<digest prefix>``."""
    name, _, tail = ref.partition("@")
    c = dataset_versions.c
    query = select(c.name, c.digest).where(c.name == name)
    if tail.isdigit():
        query = query.where(c.version == int(tail))
    elif tail and tail != "latest":
        query = query.where(c.digest.startswith(tail.lower()))
    rows = conn.execute(query.order_by(c.version.desc())).all()
    digests = list(dict.fromkeys(r.digest for r in rows))
    if not digests:
        raise NotFound(f"no dataset version {ref!r}", field="id")
    if tail and not tail.isdigit() and tail != "latest" and len(digests) > 1:
        raise InvalidParameter(
            f"digest prefix {tail!r} of dataset {name!r} is ambiguous; give more of it",
            field="id",
        )
    return node("dataset", f"{name}@{digests[0]}")


def _definition(conn: Connection, kind: str, ref: str) -> str:
    """A feature definition ``name`` (its newest version) or ``name@version``."""
    name, at, tail = ref.partition("@")
    c = feature_definitions.c
    if at:
        if not tail.isdigit() or not _definition_exists(conn, kind, name, int(tail)):
            raise NotFound(f"no {kind.replace('_', ' ')} {ref!r}", field="id")
        return node(kind, ref)
    version = conn.execute(
        select(func.max(c.version)).where(c.kind == kind, c.name == name)
    ).scalar()
    if version is None:
        raise NotFound(f"no {kind.replace('_', ' ')} {ref!r}", field="id")
    return node(kind, f"{name}@{version}")


def _definition_exists(conn: Connection, kind: str, name: str, version: int) -> bool:
    c = feature_definitions.c
    return _exists(conn, (c.kind == kind) & (c.name == name) & (c.version == version))
