"""OpenLineage RunEvents built from what the rooms stored — runs, training sets,
materialisations — with the ``openlineage-python`` client's own classes (never
hand-written JSON), so what we send is what its serializer and schema say.

The mapping:

* a tracked run is a run of the job named after its experiment (``job.name``), with its
  run id as ``run.runId`` (our run ids are UUIDs already); START at its start time, then
  COMPLETE, FAIL (with an ``errorMessage`` facet) or ABORT (killed) at its end time;
  inputs and outputs are its lineage edges (datasets, training sets, models);
* a pipeline step is the nested run the pipeline records for it: the job is
  ``experiments/<experiment>/<step run name>``, a ``parent`` facet names the pipeline's
  run, and the step's artifacts (``step:`` edges) are its inputs and outputs;
* a training set is a COMPLETE run of the job ``training_set/<name>``: inputs the feature
  view versions and the datasets they read, output the training set (schema = features);
* a materialisation is a COMPLETE run of ``materialize/<view>``: the view in, the online
  store's copy out, with the rows written as ``outputStatistics``.

Datasets are named in ``settings.openlineage_namespace`` by kind and name
(``datasets/sales``) with the version in a ``version`` facet (a content digest), a
``schema`` facet, a ``dataSource`` facet (the file it was snapshotted from) and, as an
input, the ``dataQualityMetrics`` we profiled (rows, bytes, and per column the null
count, distinct count, min and max). A ``location:<uri>`` node (a file another tool
wrote) keeps the namespace and name that tool gave it.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from openlineage.client.event_v2 import InputDataset, Job, OutputDataset, Run, RunEvent, RunState
from openlineage.client.generated import data_quality_metrics_input_dataset as dq
from openlineage.client.generated import dataset_version_dataset as version_facet
from openlineage.client.generated import (
    datasource_dataset,
    error_message_run,
    parent_run,
    schema_dataset,
)
from openlineage.client.generated import output_statistics_output_dataset as output_stats
from sqlalchemy import Connection, select

from modelyard.data.tables import dataset_versions
from modelyard.features.tables import feature_materializations, feature_training_sets
from modelyard.lineage.nodes import split
from modelyard.lineage.openlineage_names import location_dataset
from modelyard.store.schema import lineage_edges
from modelyard.tracking.tables import experiments, runs

PRODUCER = "https://pypi.org/project/modelyard/"
#: Run statuses that end a run, and the OpenLineage event each becomes.
TERMINAL = {"FINISHED": RunState.COMPLETE, "FAILED": RunState.FAIL, "KILLED": RunState.ABORT}
#: A node kind → the folder its OpenLineage dataset name starts with.
DATASET_FOLDERS = {
    "dataset": "datasets",
    "training_set": "training_sets",
    "feature_view": "feature_views",
    "feature_service": "feature_services",
    "on_demand_feature_view": "feature_views",
    "model": "models",
    "logged_model": "logged_models",
    "artifact": "artifacts",
}


def iso(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, UTC).isoformat()


def run_uuid(key: str) -> str:
    """A UUID for ``key``: itself when it is one (run ids), else derived and stable."""
    try:
        return str(uuid.UUID(key))
    except ValueError:
        return str(uuid.uuid5(uuid.NAMESPACE_URL, f"modelyard:{key}"))


# -- datasets ---------------------------------------------------------------------------


def _dataset_parts(conn: Connection, namespace: str, node_id: str) -> tuple[str, str, str | None]:
    """(namespace, name, version) of a node as an OpenLineage dataset."""
    kind, rest = split(node_id)
    if kind == "location":
        ns, name = location_dataset(rest)
        return ns, name, None
    folder = DATASET_FOLDERS.get(kind, kind)
    if kind == "training_set":  # named by its name; each build is a version
        c = feature_training_sets.c
        called = conn.execute(select(c.name).where(c.training_set_id == rest)).scalar()
        return namespace, f"{folder}/{called or rest}", rest
    if kind == "model" and "/" in rest:
        name, _, version = rest.rpartition("/")
        return namespace, f"{folder}/{name}", version
    if "@" in rest:
        name, _, version = rest.rpartition("@")
        return namespace, f"{folder}/{name}", version
    return namespace, f"{folder}/{rest}", None


def _facets(conn: Connection, node_id: str, version: str | None) -> tuple[dict, dict]:
    """(dataset facets, input facets) for a node: a dataset version's schema, source and
    profile; any node's version."""
    facets: dict[str, Any] = {}
    inputs: dict[str, Any] = {}
    if version is not None:
        facets["version"] = version_facet.DatasetVersionDatasetFacet(version)
    kind, rest = split(node_id)
    if kind == "dataset" and "@" in rest:
        name, _, digest = rest.rpartition("@")
        c = dataset_versions.c
        row = conn.execute(
            select(c.schema, c.profile, c.num_rows, c.num_bytes, c.source, c.files)
            .where(c.name == name, c.digest == digest)
            .order_by(c.version.desc())
            .limit(1)
        ).first()
        if row is not None:
            facets["schema"] = schema_dataset.SchemaDatasetFacet(
                fields=[
                    schema_dataset.SchemaDatasetFacetFields(name=f["name"], type=f.get("type"))
                    for f in json.loads(row.schema)
                ]
            )
            facets["dataSource"] = datasource_dataset.DatasourceDatasetFacet(
                name=name, uri=row.source
            )
            inputs["dataQualityMetrics"] = _quality(row)
    return facets, inputs


def _quality(row: Any) -> dq.DataQualityMetricsInputDatasetFacet:
    profile = json.loads(row.profile)
    rows = int(row.num_rows)
    columns = {}
    for column, stats in (profile.get("columns") or {}).items():
        nulls = stats.get("null_fraction")
        columns[column] = dq.ColumnMetrics(
            nullCount=None if nulls is None else round(nulls * rows),
            distinctCount=stats.get("distinct"),
            min=_number(stats.get("min")),
            max=_number(stats.get("max")),
        )
    return dq.DataQualityMetricsInputDatasetFacet(
        columnMetrics=columns,
        rowCount=rows,
        bytes=int(row.num_bytes),
        fileCount=len(json.loads(row.files)),
    )


def _number(value: Any) -> float | None:
    return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else None


def input_dataset(conn: Connection, namespace: str, node_id: str) -> InputDataset:
    ns, name, version = _dataset_parts(conn, namespace, node_id)
    facets, inputs = _facets(conn, node_id, version)
    return InputDataset(ns, name, facets=facets, inputFacets=inputs)


def output_dataset(
    conn: Connection, namespace: str, node_id: str, extra: dict[str, Any] | None = None
) -> OutputDataset:
    ns, name, version = _dataset_parts(conn, namespace, node_id)
    facets, _ = _facets(conn, node_id, version)
    return OutputDataset(ns, name, facets={**facets, **(extra or {})})


def _linked(conn: Connection, node_id: str) -> tuple[list[str], list[str]]:
    """(nodes with an edge into ``node_id``, nodes it has an edge to)."""
    e = lineage_edges.c
    into = conn.execute(select(e.src).where(e.dst == node_id).distinct()).scalars().all()
    out = conn.execute(select(e.dst).where(e.src == node_id).distinct()).scalars().all()
    return sorted(into), sorted(out)


def _event(
    state: RunState,
    at_ms: int,
    run_id: str,
    job: Job,
    inputs: Sequence[InputDataset],
    outputs: Sequence[OutputDataset],
    run_facets: dict[str, Any] | None = None,
) -> RunEvent:
    return RunEvent(
        eventType=state,
        eventTime=iso(at_ms),
        run=Run(runId=run_id, facets=run_facets or {}),
        job=job,
        inputs=list(inputs),
        outputs=list(outputs),
        producer=PRODUCER,
    )


# -- runs, training sets, materialisations ----------------------------------------------


def run_events(conn: Connection, namespace: str, run_id: str) -> list[RunEvent]:
    """START, and the end event once the run ended (none for an unknown run)."""
    r, x = runs.c, experiments.c
    row = conn.execute(
        select(r.run_id, r.run_name, r.status, r.start_time, r.end_time, r.parent_run_id, x.name)
        .select_from(runs.join(experiments, x.experiment_id == r.experiment_id))
        .where(r.run_id == run_id)
    ).first()
    if row is None:
        return []
    into, out = _linked(conn, f"run:{run_id}")
    step_in, step_out = _linked(conn, f"step:{run_id}")  # a pipeline step's own run
    inputs = [input_dataset(conn, namespace, n) for n in [*into, *step_in] if _is_data(n)]
    outputs = [output_dataset(conn, namespace, n) for n in [*out, *step_out] if _is_data(n)]
    job = Job(namespace=namespace, name=f"experiments/{row.name}")
    facets: dict[str, Any] = {}
    if row.parent_run_id:  # a pipeline step (or any nested run): its job is its own name
        job = Job(namespace=namespace, name=f"experiments/{row.name}/{row.run_name}")
        facets["parent"] = parent_run.ParentRunFacet(
            run=parent_run.Run(runId=run_uuid(row.parent_run_id)),
            job=parent_run.Job(namespace=namespace, name=f"experiments/{row.name}"),
        )
    start = _event(RunState.START, int(row.start_time), run_uuid(run_id), job, inputs, [], facets)
    events = [start]
    state = TERMINAL.get(row.status)
    if state is not None:
        facets = dict(facets)
        if state is RunState.FAIL:
            facets["errorMessage"] = error_message_run.ErrorMessageRunFacet(
                message=f"run {run_id} ended {row.status}", programmingLanguage="python"
            )
        end = int(row.end_time or row.start_time)
        events.append(_event(state, end, run_uuid(run_id), job, inputs, outputs, facets))
    return events


def _is_data(node_id: str) -> bool:
    return split(node_id)[0] in DATASET_FOLDERS or node_id.startswith("location:")


def training_set_events(conn: Connection, namespace: str, training_set_id: str) -> list[RunEvent]:
    c = feature_training_sets.c
    row = conn.execute(
        select(c.name, c.created_at, c.features, c.row_count).where(
            c.training_set_id == training_set_id
        )
    ).first()
    if row is None:
        return []
    node_id = f"training_set:{training_set_id}"
    views, _ = _linked(conn, node_id)
    sources = sorted({s for v in views for s in _linked(conn, v)[0]})
    inputs = [input_dataset(conn, namespace, n) for n in [*views, *sources] if _is_data(n)]
    schema = schema_dataset.SchemaDatasetFacet(
        fields=[schema_dataset.SchemaDatasetFacetFields(name=f) for f in json.loads(row.features)]
    )
    stats = output_stats.OutputStatisticsOutputDatasetFacet(rowCount=int(row.row_count))
    output = output_dataset(conn, namespace, node_id, {"schema": schema})
    output.outputFacets = {"outputStatistics": stats}
    job = Job(namespace=namespace, name=f"training_set/{row.name}")
    at = int(row.created_at)
    run_id = run_uuid(training_set_id)
    return [
        _event(RunState.START, at, run_id, job, inputs, []),
        _event(RunState.COMPLETE, at, run_id, job, inputs, [output]),
    ]


def materialization_events(conn: Connection, namespace: str, since_ms: int) -> list[RunEvent]:
    """One COMPLETE per materialisation state written since ``since_ms`` (a view's rows
    copied into one online store)."""
    c = feature_materializations.c
    rows = conn.execute(
        select(c.store, c.view, c.data_digest, c.rows, c.watermark_us, c.updated_at)
        .where(c.updated_at >= since_ms)
        .order_by(c.updated_at)
    ).all()
    out = []
    for row in rows:
        job = Job(namespace=namespace, name=f"materialize/{row.view}")
        view = InputDataset(namespace, f"feature_views/{row.view}")
        target = OutputDataset(
            namespace,
            f"online_stores/{row.store}/{row.view}",
            facets={"version": version_facet.DatasetVersionDatasetFacet(row.data_digest)},
            outputFacets={
                "outputStatistics": output_stats.OutputStatisticsOutputDatasetFacet(
                    rowCount=int(row.rows)
                )
            },
        )
        key = f"materialize:{row.store}:{row.view}:{row.data_digest}:{row.watermark_us}"
        out.append(
            _event(RunState.COMPLETE, int(row.updated_at), run_uuid(key), job, [view], [target])
        )
    return out
