"""Recording training sets, and the runs that use them, in the lineage graph.

A recorded training set names the feature view versions and the source dataset versions
(content digests) it was built from. Edges: ``dataset → feature_view`` ("source"; also
from each ``data snapshot`` version of a file source's exact bytes),
``feature_view → training_set`` ("input"), and — when a run uses it —
``training_set → run`` ("input"), plus a dataset input on the run, so that "which data and
which feature code trained this model?" is answered by walking edges.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy import Connection, select

from modelyard.errors import NotFound
from modelyard.features.catalog import Catalog
from modelyard.features.definitions_store import definition_node
from modelyard.features.offline import TrainingSet, training_set_record
from modelyard.features.tables import feature_training_sets
from modelyard.ids import new_id, now_ms
from modelyard.store.engine import Database
from modelyard.store.lineage import node, record_edges

if TYPE_CHECKING:
    from modelyard.tracking.client import TrackingClient
    from modelyard.tracking.entities import DatasetInput


@dataclass(frozen=True)
class TrainingSetInfo:
    """A recorded training set (without its rows)."""

    training_set_id: str
    name: str
    created_at: int
    features: list[str]
    views: dict[str, dict[str, Any]]
    sources: list[dict[str, str]]
    entity_digest: str
    row_count: int
    options: dict[str, Any]

    @property
    def node(self) -> str:
        return node("training_set", self.training_set_id)


def training_set_node(training_set_id: str) -> str:
    return node("training_set", training_set_id)


def record(db: Database, catalog: Catalog, ts: TrainingSet) -> TrainingSet:
    """Store ``ts``'s provenance and its lineage edges; sets ``ts.training_set_id``."""
    ts.views = {}
    for view_name in dict.fromkeys(s["view"] for s in ts.sources):
        version = catalog.version("feature_view", view_name)
        ts.views[view_name] = {"version": version.version, "digest": version.digest}
    ts.training_set_id = new_id()
    ts_node = training_set_node(ts.training_set_id)
    edges = []
    paths = {}
    for source in ts.sources:
        view = ts.views[source["view"]]
        view_node = definition_node("feature_view", source["view"], view["version"])
        dataset = node("dataset", f"{source['name']}@{source['digest']}")
        edges += [(dataset, view_node, "source"), (view_node, ts_node, "input")]
        spec = catalog.version("feature_view", source["view"]).spec.get("source") or {}
        if spec.get("type") == "FileSource":
            paths[view_node] = str(spec["path"])
    for odfv_name in {r.partition(":")[0] for r in ts.refs}:
        if ("on_demand_feature_view", odfv_name) in catalog.records:
            version = catalog.version("on_demand_feature_view", odfv_name)
            edges.append((version.node, ts_node, "input"))
    with db.write() as conn:
        conn.execute(
            feature_training_sets.insert().values(
                training_set_id=ts.training_set_id,
                name=ts.name,
                created_at=now_ms(),
                entity_digest=ts.entity_digest,
                row_count=len(ts.frame),
                **training_set_record(ts),
            )
        )
        for view_node, path in paths.items():  # the data room's versions of the same bytes
            edges += [(v, view_node, "source") for v in _snapshots_of(conn, path)]
        record_edges(conn, edges)
    return ts


def _snapshots_of(conn: Connection, path: str) -> list[str]:
    """Dataset versions (``modelyard data snapshot``) whose stored file is exactly the file
    at ``path``: the graph then leads from a feature view to the versioned dataset."""
    from modelyard.data.client import dataset_node
    from modelyard.data.entities import FileRef
    from modelyard.data.snapshot import files_digest
    from modelyard.data.tables import dataset_versions
    from modelyard.digests import file_sha256

    file = Path(path)
    if not file.is_file():  # a glob or a folder: not matched (yet)
        return []
    digest = files_digest([FileRef(file.name, file_sha256(file), file.stat().st_size)])
    c = dataset_versions.c
    rows = conn.execute(select(c.name, c.digest).where(c.files_digest == digest)).all()
    return [dataset_node(r.name, r.digest) for r in rows]


def get(db: Database, training_set_id: str) -> TrainingSetInfo:
    c = feature_training_sets.c
    with db.read() as conn:
        row = conn.execute(
            select(feature_training_sets).where(c.training_set_id == training_set_id)
        ).first()
    if row is None:
        raise NotFound(f"no training set {training_set_id!r} is recorded")
    return TrainingSetInfo(
        training_set_id=row.training_set_id,
        name=row.name,
        created_at=int(row.created_at),
        features=json.loads(row.features),
        views=json.loads(row.views),
        sources=json.loads(row.sources),
        entity_digest=row.entity_digest,
        row_count=int(row.row_count),
        options=json.loads(row.options),
    )


def dataset_input(ts: TrainingSet | TrainingSetInfo) -> DatasetInput:
    """The training set as a run's dataset input (named, content-addressed)."""
    from modelyard.tracking.entities import DatasetInput

    features = list(ts.refs) if isinstance(ts, TrainingSet) else ts.features
    rows = len(ts.frame) if isinstance(ts, TrainingSet) else ts.row_count
    return DatasetInput(
        name=ts.name,
        digest=ts.entity_digest,
        context="training",
        source_type="feature_store",
        source=training_set_node(ts.training_set_id or ""),
        schema=json.dumps({"features": features}),
        profile=json.dumps({"num_rows": rows}),
    )


def log_to_run(db: Database, tracking: TrackingClient, run_id: str, ts: TrainingSet) -> None:
    """Record that run ``run_id`` trained on ``ts``: a dataset input and a lineage edge."""
    if ts.training_set_id is None:
        raise NotFound("this training set was not recorded (get_training_set(record=True))")
    tracking.log_inputs(run_id, [dataset_input(ts)])
    with db.write() as conn:
        record_edges(conn, [(training_set_node(ts.training_set_id), node("run", run_id), "input")])
