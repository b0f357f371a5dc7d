"""MLflow REST API 2.0 (model registry and MLflow 3 logged models), over ``RegistryClient``.

What the unmodified MLflow client calls for ``log_model(..., registered_model_name=…)``,
``register_model``, aliases, stages and ``mlflow.pyfunc.load_model("models:/name@alias")``:
``registered-models/*``, ``model-versions/*``, ``logged-models*`` and ``runs/outputs``,
under ``/api/2.0/mlflow`` and ``/ajax-api/2.0/mlflow``. Handlers call the client, never a
store, so the promotion policy and the audit trail apply exactly as they do locally.

Mount these routes beside ``mlflow_api.routes``::

    routes = [*registry_routes(registry), *mlflow_api.routes(ctx), …]

Versions are strings on the wire; versions are always ``READY`` (their files are copied
before the row commits); ``get-download-uri`` answers a ``mlflow-artifacts:/`` URI the
client fetches through the artifact proxy, or, for a version kept as metadata only (its
source names no files here, as MLflow allows), the source as given.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from modelyard import json_codec
from modelyard.registry.client import RegistryClient
from modelyard.registry.entities import Actor, ModelVersion, RegisteredModel
from modelyard.registry.uris import check_version
from modelyard.server.control import mlflow_logged_models_api as logged_models_api
from modelyard.server.control.context import ServerLimits
from modelyard.server.http.request_body import read_json, read_json_object
from modelyard.tracking import mlflow_wire as wire
from modelyard.tracking.mlflow_wire import Fields

PREFIXES = ("/api/2.0/mlflow", "/ajax-api/2.0/mlflow")
DEFAULT_SEARCH_RESULTS = 100
#: MLflow's order of a model-version search that names none.
VERSION_ORDER = ("last_updated_timestamp DESC", "name ASC", "version_number DESC")

Handler = Callable[[RegistryClient, Fields], dict[str, Any]]
ActorOf = Callable[[Request], Actor | None]

# -- entities → JSON ----------------------------------------------------------------------


def model_version_to_json(v: ModelVersion) -> dict[str, Any]:
    # ``description`` is always sent (``""`` when unset): MLflow's server does, and its
    # client turns an absent one into None.
    return {"description": v.description or ""} | wire.prune(
        {
            "name": v.name,
            "version": str(v.version),
            "creation_timestamp": v.creation_time,
            "last_updated_timestamp": v.last_updated_time,
            "user_id": v.created_by,
            "current_stage": v.stage.value,
            "description": v.description,
            "source": v.source,
            "run_id": v.run_id,
            "status": v.status,
            "tags": wire.tags_to_json(v.tags),
            "run_link": v.run_link,
            "aliases": list(v.aliases),
            "model_id": v.model_id,
        }
    )


def registered_model_to_json(m: RegisteredModel) -> dict[str, Any]:
    return wire.prune(
        {
            "name": m.name,
            "creation_timestamp": m.creation_time,
            "last_updated_timestamp": m.last_updated_time,
            "user_id": m.created_by,
            "description": m.description,
            "latest_versions": [model_version_to_json(v) for v in m.latest_versions],
            "tags": wire.tags_to_json(m.tags),
            "aliases": [{"alias": a, "version": str(v)} for a, v in m.aliases.items()],
        }
    )


# -- registered models --------------------------------------------------------------------


def create_registered_model(reg: RegistryClient, f: Fields) -> dict[str, Any]:
    model = reg.create_registered_model(
        f.text("name", required=True),
        f.text("description") or None,
        wire.tags_from_json(f.objects("tags")),
    )
    return {"registered_model": registered_model_to_json(model)}


def get_registered_model(reg: RegistryClient, f: Fields) -> dict[str, Any]:
    return {"registered_model": registered_model_to_json(reg.get_registered_model(_name(f)))}


def rename_registered_model(reg: RegistryClient, f: Fields) -> dict[str, Any]:
    model = reg.rename_registered_model(_name(f), f.text("new_name", required=True))
    return {"registered_model": registered_model_to_json(model)}


def update_registered_model(reg: RegistryClient, f: Fields) -> dict[str, Any]:
    model = reg.update_registered_model(_name(f), f.text("description") or None)
    return {"registered_model": registered_model_to_json(model)}


def delete_registered_model(reg: RegistryClient, f: Fields) -> dict[str, Any]:
    reg.delete_registered_model(_name(f))
    return {}


def search_registered_models(reg: RegistryClient, f: Fields) -> dict[str, Any]:
    page = reg.search_registered_models(
        f.text("filter") or None,
        f.integer("max_results", default=DEFAULT_SEARCH_RESULTS),
        f.text("page_token") or None,
        f.texts("order_by"),
    )
    return wire.prune(
        {
            "registered_models": [registered_model_to_json(m) for m in page],
            "next_page_token": page.next_page_token,
        }
    )


def set_registered_model_tag(reg: RegistryClient, f: Fields) -> dict[str, Any]:
    reg.set_registered_model_tag(
        _name(f), f.text("key", required=True), f.text("value", default="")
    )
    return {}


def delete_registered_model_tag(reg: RegistryClient, f: Fields) -> dict[str, Any]:
    reg.delete_registered_model_tag(_name(f), f.text("key", required=True))
    return {}


def set_alias(reg: RegistryClient, f: Fields) -> dict[str, Any]:
    reg.set_registered_model_alias(_name(f), f.text("alias", required=True), _version(f))
    return {}


def delete_alias(reg: RegistryClient, f: Fields) -> dict[str, Any]:
    reg.delete_registered_model_alias(_name(f), f.text("alias", required=True))
    return {}


def get_alias(reg: RegistryClient, f: Fields) -> dict[str, Any]:
    version = reg.get_model_version_by_alias(_name(f), f.text("alias", required=True))
    return {"model_version": model_version_to_json(version)}


def get_latest_versions(reg: RegistryClient, f: Fields) -> dict[str, Any]:
    versions = reg.get_latest_versions(_name(f), f.texts("stages") or None)
    return wire.prune({"model_versions": [model_version_to_json(v) for v in versions]})


# -- model versions -------------------------------------------------------------------------


def create_model_version(reg: RegistryClient, f: Fields) -> dict[str, Any]:
    version = reg.create_model_version(
        _name(f),
        f.text("source", required=True),
        run_id=f.ident("run_id"),
        description=f.text("description") or None,
        tags=wire.tags_from_json(f.objects("tags")),
        run_link=f.text("run_link") or None,
        model_id=f.text("model_id") or None,
    )
    return {"model_version": model_version_to_json(version)}


def get_model_version(reg: RegistryClient, f: Fields) -> dict[str, Any]:
    return {"model_version": model_version_to_json(reg.get_model_version(_name(f), _version(f)))}


def update_model_version(reg: RegistryClient, f: Fields) -> dict[str, Any]:
    version = reg.update_model_version(_name(f), _version(f), f.text("description") or None)
    return {"model_version": model_version_to_json(version)}


def delete_model_version(reg: RegistryClient, f: Fields) -> dict[str, Any]:
    reg.delete_model_version(_name(f), _version(f))
    return {}


def search_model_versions(reg: RegistryClient, f: Fields) -> dict[str, Any]:
    page = reg.search_model_versions(
        f.text("filter") or None,
        f.integer("max_results", default=1000),
        f.text("page_token") or None,
        f.texts("order_by") or VERSION_ORDER,
    )
    return wire.prune(
        {
            "model_versions": [model_version_to_json(v) for v in page],
            "next_page_token": page.next_page_token,
        }
    )


def get_download_uri(reg: RegistryClient, f: Fields) -> dict[str, Any]:
    return {"artifact_uri": reg.get_download_uri(_name(f), _version(f))}


def set_model_version_tag(reg: RegistryClient, f: Fields) -> dict[str, Any]:
    reg.set_model_version_tag(
        _name(f), _version(f), f.text("key", required=True), f.text("value", default="")
    )
    return {}


def delete_model_version_tag(reg: RegistryClient, f: Fields) -> dict[str, Any]:
    reg.delete_model_version_tag(_name(f), _version(f), f.text("key", required=True))
    return {}


def transition_stage(reg: RegistryClient, f: Fields) -> dict[str, Any]:
    version = reg.transition_model_version_stage(
        _name(f),
        _version(f),
        f.text("stage", required=True),
        f.boolean("archive_existing_versions"),
    )
    return {"model_version": model_version_to_json(version)}


def _name(f: Fields) -> str:
    return str(f.text("name", required=True))


def _version(f: Fields) -> int:
    value = f.ident("version", required=True)
    return check_version(value)


# -- routing -------------------------------------------------------------------------------

GET, POST, PATCH, DELETE = ("GET",), ("POST",), ("PATCH",), ("DELETE",)
ENDPOINTS: list[tuple[str, tuple[str, ...], Handler]] = [
    ("/registered-models/create", POST, create_registered_model),
    ("/registered-models/get", GET, get_registered_model),
    ("/registered-models/rename", POST, rename_registered_model),
    ("/registered-models/update", PATCH, update_registered_model),
    ("/registered-models/delete", DELETE, delete_registered_model),
    ("/registered-models/search", ("GET", "POST"), search_registered_models),
    ("/registered-models/set-tag", POST, set_registered_model_tag),
    ("/registered-models/delete-tag", DELETE, delete_registered_model_tag),
    ("/registered-models/alias", POST, set_alias),
    ("/registered-models/alias", DELETE, delete_alias),
    ("/registered-models/alias", GET, get_alias),
    ("/registered-models/get-latest-versions", ("GET", "POST"), get_latest_versions),
    ("/model-versions/create", POST, create_model_version),
    ("/model-versions/get", GET, get_model_version),
    ("/model-versions/update", PATCH, update_model_version),
    ("/model-versions/delete", DELETE, delete_model_version),
    ("/model-versions/search", ("GET", "POST"), search_model_versions),
    ("/model-versions/get-download-uri", GET, get_download_uri),
    ("/model-versions/set-tag", POST, set_model_version_tag),
    ("/model-versions/delete-tag", DELETE, delete_model_version_tag),
    ("/model-versions/transition-stage", POST, transition_stage),
    *logged_models_api.ENDPOINTS,
]


def _endpoint(
    registry: RegistryClient, handler: Handler, limits: ServerLimits, actor_of: ActorOf | None
) -> Callable[[Request], Awaitable[Response]]:
    """GET fields from the query string, others from the JSON body; path parameters
    (``/logged-models/{model_id}``) override both. The answer is written by the one codec
    (``json_codec.dumps``: the bytes ``JSONResponse`` wrote, ~10× faster with orjson —
    a page of 100 registered models with their latest versions is ~140 kB, 1.1 → 0.1 ms)."""

    async def call(request: Request) -> Response:
        path = request.path_params
        if request.method in ("GET", "HEAD"):
            fields = Fields.from_query([*request.query_params.multi_items(), *path.items()])
        elif path:
            fields = Fields({**await read_json_object(request, limits.max_json_bytes), **path})
        else:
            fields = await read_json(request, limits.max_json_bytes)
        actor = actor_of(request) if actor_of else None
        client = registry.for_clients(actor)  # refuses the reserved modelyard.* tags
        answer = await run_in_threadpool(handler, client, fields)
        return Response(json_codec.dumps(answer), media_type="application/json")

    call.__name__ = handler.__name__
    return call


def registry_routes(
    registry: RegistryClient,
    *,
    limits: ServerLimits | None = None,
    actor_of: ActorOf | None = None,
) -> list[BaseRoute]:
    """The routes to mount before the tracking API's. ``actor_of`` names the request's
    authenticated user (None: the server's own user acts)."""
    limits = limits or ServerLimits()
    by_path: dict[str, dict[str, Handler]] = {}
    for path, methods, handler in ENDPOINTS:
        for method in methods:
            by_path.setdefault(path, {})[method] = handler
    routes: list[BaseRoute] = []
    for prefix in PREFIXES:
        for path, handlers in by_path.items():
            for method, handler in handlers.items():
                routes.append(
                    Route(
                        prefix + path,
                        _endpoint(registry, handler, limits, actor_of),
                        methods=[method],
                    )
                )
    return [*routes, *logged_models_api.file_routes(registry, PREFIXES)]
