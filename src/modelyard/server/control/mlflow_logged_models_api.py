"""MLflow 3 logged models over REST: what ``log_model``, ``create_logged_model``,
``search_logged_models``, ``log_outputs`` and the MLflow UI's model pages call.

Handlers take the request's ``RegistryClient`` (``for_clients``: the ``modelyard.*`` tags
are refused) and its ``Fields``, as in ``mlflow_registry_api``, which mounts them. Two
rules differ from MLflow on purpose (README, "Coming from MLflow"): a finalized (READY)
model cannot be reopened or failed, since its files are then immutable; a ``source_run_id``
naming no run is stored as given, and its lineage edge recorded as unresolved.
"""

from __future__ import annotations

from typing import Any

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from modelyard.artifacts.repository import validate_artifact_path
from modelyard.registry.client import RegistryClient
from modelyard.registry.entities import LoggedModel, ModelMetric
from modelyard.registry.logged_model_search import DatasetRef, ModelOrder
from modelyard.tracking import mlflow_wire as wire
from modelyard.tracking.mlflow_wire import Fields

ARTIFACT_SCHEME = "mlflow-artifacts:/"
DEFAULT_SEARCH_RESULTS = 100


def logged_model_to_json(m: LoggedModel) -> dict[str, Any]:
    info = wire.prune(
        {
            "model_id": m.model_id,
            "experiment_id": m.experiment_id,
            "name": m.name,
            "creation_timestamp_ms": m.creation_time,
            "last_updated_timestamp_ms": m.last_updated_time,
            "artifact_uri": ARTIFACT_SCHEME + m.artifact_location,
            "status": m.status,
            "model_type": m.model_type,
            "source_run_id": m.source_run_id,
            "tags": wire.tags_to_json(m.tags),
        }
    )
    data = {
        "params": wire.tags_to_json(m.params),
        "metrics": [model_metric_to_json(m.model_id, p) for p in m.metrics],
    }
    return {"info": info, "data": wire.prune(data)}


def model_metric_to_json(model_id: str, p: ModelMetric) -> dict[str, Any]:
    return wire.prune(
        {
            "key": p.key,
            "value": wire.metric_value_to_json(p.value),
            "timestamp": p.timestamp,
            "step": p.step,
            "model_id": model_id,
            "run_id": p.run_id,
            "dataset_name": p.dataset_name,
            "dataset_digest": p.dataset_digest,
        }
    )


def create_logged_model(reg: RegistryClient, f: Fields) -> dict[str, Any]:
    experiment_id = f.ident("experiment_id", required=True)
    reg.tracking.get_experiment(experiment_id)
    tags = wire.tags_from_json(f.objects("tags"))
    reg.check_client_tags(tags, "logged model")
    model = reg.logged_models.create(
        experiment_id,
        f.text("name") or None,
        source_run_id=f.ident("source_run_id", numeric=False),
        model_type=f.text("model_type"),
        params=wire.tags_from_json(f.objects("params")),
        tags=tags,
    )
    return {"model": logged_model_to_json(model)}


def get_logged_model(reg: RegistryClient, f: Fields) -> dict[str, Any]:
    return {"model": logged_model_to_json(reg.logged_models.get(_model_id(f)))}


def finalize_logged_model(reg: RegistryClient, f: Fields) -> dict[str, Any]:
    model = reg.logged_models.set_status(_model_id(f), f.text("status", required=True))
    return {"model": logged_model_to_json(model)}


def delete_logged_model(reg: RegistryClient, f: Fields) -> dict[str, Any]:
    reg.logged_models.delete(_model_id(f))
    return {}


def search_logged_models(reg: RegistryClient, f: Fields) -> dict[str, Any]:
    datasets = [
        DatasetRef(d.text("dataset_name", required=True), d.text("dataset_digest"))
        for d in f.objects("datasets")
    ]
    order_by = [
        ModelOrder(o.text("field_name", required=True), o.boolean("ascending", default=True))
        for o in f.objects("order_by")
    ]
    page = reg.logged_models.search(
        f.texts("experiment_ids"),
        f.integer("max_results", default=DEFAULT_SEARCH_RESULTS),
        f.text("page_token") or None,
        filter_string=f.text("filter") or None,
        datasets=datasets,
        order_by=order_by,
    )
    return wire.prune(
        {"models": [logged_model_to_json(m) for m in page], "next_page_token": page.next_page_token}
    )


def set_logged_model_tags(reg: RegistryClient, f: Fields) -> dict[str, Any]:
    model_id = _model_id(f)
    tags = wire.tags_from_json(f.objects("tags"))
    reg.check_client_tags(tags, "logged model")
    reg.logged_models.set_tags(model_id, tags)
    return {}


def delete_logged_model_tag(reg: RegistryClient, f: Fields) -> dict[str, Any]:
    model_id = _model_id(f)
    key = f.text("tag_key", required=True)
    reg.check_client_tags([key], "logged model")
    reg.logged_models.delete_tag(model_id, key)
    return {}


def log_logged_model_params(reg: RegistryClient, f: Fields) -> dict[str, Any]:
    model_id = _model_id(f)
    reg.logged_models.log_params(model_id, wire.tags_from_json(f.objects("params")))
    return {}


def log_run_outputs(reg: RegistryClient, f: Fields) -> dict[str, Any]:
    """``runs/outputs``: the run produced these logged models (shown on the run, and a
    lineage edge each)."""
    run_id = f.run_id()
    outputs = [
        (m.text("model_id", required=True), m.integer("step", default=0))
        for m in f.objects("models")
    ]
    reg.tracking.get_run(run_id)
    reg.logged_models.record_outputs(run_id, outputs)
    return {}


def list_logged_model_artifacts(reg: RegistryClient, f: Fields) -> dict[str, Any]:
    """The MLflow UI's listing of a logged model's files (``artifact_directory_path``)."""
    model = reg.logged_models.get(_model_id(f))
    root = model.artifact_location
    sub = (f.text("artifact_directory_path") or "").strip("/")
    prefix = f"{root}/{validate_artifact_path(sub, 'artifact_directory_path')}" if sub else root
    files = reg.artifacts.list(prefix, relative_to=root)
    return wire.prune(
        {
            "root_uri": ARTIFACT_SCHEME + root,
            "files": [
                wire.prune({"path": e.path, "is_dir": e.is_dir, "file_size": e.file_size})
                for e in files
            ],
        }
    )


def _model_id(f: Fields) -> str:
    return str(f.text("model_id", required=True))


GET, POST, PATCH, DELETE = ("GET",), ("POST",), ("PATCH",), ("DELETE",)
ENDPOINTS = [
    ("/logged-models", POST, create_logged_model),
    ("/logged-models/search", POST, search_logged_models),
    ("/logged-models/{model_id}", GET, get_logged_model),
    ("/logged-models/{model_id}", PATCH, finalize_logged_model),
    ("/logged-models/{model_id}", DELETE, delete_logged_model),
    ("/logged-models/{model_id}/tags", PATCH, set_logged_model_tags),
    ("/logged-models/{model_id}/tags/{tag_key:path}", DELETE, delete_logged_model_tag),
    ("/logged-models/{model_id}/params", POST, log_logged_model_params),
    ("/logged-models/{model_id}/artifacts/directories", GET, list_logged_model_artifacts),
    ("/runs/outputs", POST, log_run_outputs),
]


def file_routes(registry: RegistryClient, prefixes: tuple[str, ...]) -> list[BaseRoute]:
    """``logged-models/{id}/artifacts/files?artifact_file_path=``: one file's bytes."""

    async def download(request: Request) -> Response:
        model_id = request.path_params["model_id"]
        path = request.query_params.get("artifact_file_path") or ""
        validate_artifact_path(path, "artifact_file_path")
        model = await run_in_threadpool(registry.logged_models.get, model_id)
        data = await run_in_threadpool(
            registry.artifacts.read_bytes, f"{model.artifact_location}/{path}"
        )
        return Response(data, media_type="application/octet-stream")

    return [
        Route(f"{prefix}/logged-models/{{model_id}}/artifacts/files", download, methods=["GET"])
        for prefix in prefixes
    ]
