"""MLflow REST API 2.0 (tracking): what the unmodified ``mlflow`` client and UI call.

Every route exists under ``/api/2.0/mlflow`` and ``/ajax-api/2.0/mlflow``. GET handlers read
the query string, the others a JSON body; each handler is a plain function
``(ServerContext, Fields) -> dict`` run in a worker thread, calling the ``TrackingClient``
(never a store) so that validation and team conventions apply exactly as they do locally.
Empty success is ``{}``; errors are rendered by ``server.http.errors``.

The registry, logged models and ``runs/outputs`` are ``mlflow_registry_api``'s routes
(mounted first); a run's model inputs and outputs and the metrics it logs against a
logged model are kept in the registry room's tables (``LoggedModelStore``).
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route
from starlette.types import Receive, Scope, Send

from modelyard import json_codec
from modelyard.artifacts.repository import validate_artifact_path
from modelyard.errors import InvalidParameter, NotFound, NotImplementedFeature
from modelyard.ids import now_ms
from modelyard.registry.entities import ModelMetric
from modelyard.registry.logged_models import LoggedModelStore
from modelyard.server.control.context import ServerContext
from modelyard.server.control.run_json_cache import search_answer
from modelyard.server.http import threads
from modelyard.server.http.auth_middleware import current_principal
from modelyard.server.http.request_body import query_fields_of, receive_json_object
from modelyard.server.http.threads import in_thread
from modelyard.tracking import mlflow_wire as wire
from modelyard.tracking.checks import check_batch_sizes
from modelyard.tracking.entities import Metric, Param, RunStatus, RunTag
from modelyard.tracking.mlflow_wire import Fields
from modelyard.tracking.run_context import TAG_USER
from modelyard.tracking.store import HISTORY_PAGE, MAX_HISTORY_PAGE

PREFIXES = ("/api/2.0/mlflow", "/ajax-api/2.0/mlflow")
MAX_BATCH_ITEMS = 1000
#: MLflow's cap on one page of a run search.
MAX_RUNS_PAGE = 50_000

Handler = Callable[[ServerContext, Fields], "dict[str, Any] | json_codec.Encoded"]


# -- experiments ------------------------------------------------------------------------


def create_experiment(ctx: ServerContext, f: Fields) -> dict[str, Any]:
    experiment_id = ctx.client.create_experiment(
        f.text("name", required=True),
        artifact_location=absolute_location(f.text("artifact_location") or None),
        tags=wire.tags_from_json(f.objects("tags")),
    )
    return {"experiment_id": experiment_id}


def absolute_location(location: str | None) -> str | None:
    """A relative ``artifact_location`` made absolute against the server's working
    folder, as MLflow's server records it (a URI or an absolute path is kept). It is the
    experiment's recorded location only: runs' files go to the artifact store."""
    if not location or "://" in location or location.startswith(("/", "file:")):
        return location
    return str(Path.cwd() / location)


def get_experiment(ctx: ServerContext, f: Fields) -> dict[str, Any]:
    experiment = ctx.client.get_experiment(f.ident("experiment_id", required=True))
    return {"experiment": wire.experiment_to_json(experiment)}


def get_experiment_by_name(ctx: ServerContext, f: Fields) -> dict[str, Any]:
    name = f.text("experiment_name", required=True)
    experiment = ctx.client.get_experiment_by_name(name)
    if experiment is None:
        raise NotFound(f"Could not find experiment with name {name}", field="experiment_name")
    return {"experiment": wire.experiment_to_json(experiment)}


#: MLflow's order when a search names none.
EXPERIMENT_ORDER = ("creation_time DESC", "experiment_id ASC")


def search_experiments(ctx: ServerContext, f: Fields) -> dict[str, Any]:
    page = ctx.client.search_experiments(
        f.text("view_type", default="ACTIVE_ONLY"),
        f.integer("max_results", default=1000),
        page_token=f.text("page_token") or None,
        filter_string=f.text("filter"),
        order_by=f.texts("order_by") or EXPERIMENT_ORDER,
    )
    return wire.prune(
        {
            "experiments": [wire.experiment_to_json(e) for e in page],
            "next_page_token": page.next_page_token,
        }
    )


def update_experiment(ctx: ServerContext, f: Fields) -> dict[str, Any]:
    experiment_id = f.ident("experiment_id", required=True)
    new_name = f.text("new_name")
    if new_name:
        ctx.client.rename_experiment(experiment_id, new_name)
    else:
        ctx.client.get_experiment(experiment_id)
    return {}


def delete_experiment(ctx: ServerContext, f: Fields) -> dict[str, Any]:
    ctx.client.delete_experiment(f.ident("experiment_id", required=True))
    return {}


def restore_experiment(ctx: ServerContext, f: Fields) -> dict[str, Any]:
    ctx.client.restore_experiment(f.ident("experiment_id", required=True))
    return {}


def delete_experiment_tag(ctx: ServerContext, f: Fields) -> dict[str, Any]:
    ctx.client.delete_experiment_tag(
        f.ident("experiment_id", required=True), f.text("key", required=True)
    )
    return {}


def set_experiment_tag(ctx: ServerContext, f: Fields) -> dict[str, Any]:
    ctx.client.set_experiment_tag(
        f.ident("experiment_id", required=True),
        f.text("key", required=True),
        f.text("value", default=""),
    )
    return {}


# -- runs -------------------------------------------------------------------------------


def create_run(ctx: ServerContext, f: Fields) -> dict[str, Any]:
    tags = wire.tags_from_json(f.objects("tags"))
    principal = current_principal()
    if principal is not None:  # with --auth the token says who, not the client's tags
        tags.update({"mlflow.user": principal.user, TAG_USER: principal.user})
    parent = tags.get(wire.PARENT_RUN_TAG) or None
    if parent is not None and not _run_exists(ctx, parent):
        parent = None  # kept as the tag, as MLflow keeps it: a parent we do not know
    run = ctx.client_as(f.text("user_id")).create_run(
        f.ident("experiment_id") or "0",
        run_name=f.text("run_name") or None,
        tags=tags,
        start_time=f.integer("start_time"),
        parent_run_id=parent,
        record_system_tags=False,  # the caller's machine, not ours, is where the run runs
    )
    return {"run": wire.run_to_json(run)}


def _run_exists(ctx: ServerContext, run_id: str) -> bool:
    try:
        ctx.client.get_run(run_id)
    except (NotFound, InvalidParameter):
        return False
    return True


def get_run(ctx: ServerContext, f: Fields) -> dict[str, Any]:
    run = ctx.client.get_run(f.run_id())
    body = wire.run_to_json(run)
    inputs, outputs = _logged_models(ctx).models_of_run(run.info.run_id)
    if inputs:
        body.setdefault("inputs", {})["model_inputs"] = [{"model_id": m} for m in inputs]
    if outputs:
        body["outputs"] = {"model_outputs": [{"model_id": m, "step": s} for m, s in outputs]}
    return {"run": body}


def _logged_models(ctx: ServerContext) -> LoggedModelStore:
    """The store of MLflow 3 logged models, in the tracking store's database."""
    return LoggedModelStore(ctx.client.artifacts.db)


def _link_metrics(ctx: ServerContext, run_id: str, points: list[tuple[str, ModelMetric]]) -> None:
    """Points a run logged against logged models (``model_id``), which keep them too."""
    by_model: dict[str, list[ModelMetric]] = {}
    for model_id, point in points:
        by_model.setdefault(model_id, []).append(point)
    store = _logged_models(ctx)
    for model_id, linked in by_model.items():
        store.log_metrics(model_id, run_id, linked)


def _model_metric(f: Fields, metric: Metric) -> ModelMetric:
    return ModelMetric(
        metric.key,
        metric.value,
        metric.timestamp,
        metric.step,
        dataset_name=f.text("dataset_name") or None,
        dataset_digest=f.text("dataset_digest") or None,
    )


def update_run(ctx: ServerContext, f: Fields) -> dict[str, Any]:
    run_id = f.run_id()
    status = _status(f)
    end_time = f.integer("end_time")
    run_name = f.text("run_name") or None
    if end_time is not None:
        if status is None:
            status = ctx.client.get_run(run_id).info.status
        info = ctx.client.set_terminated(run_id, status, end_time=end_time)
        if run_name:
            info = ctx.client.update_run(run_id, name=run_name)
    else:
        info = ctx.client.update_run(run_id, status=status, name=run_name)
    return {"run_info": wire.run_info_to_json(info)}


def _status(f: Fields) -> str | None:
    status = f.text("status")
    if status is None:
        return None
    try:
        return str(RunStatus(status))
    except ValueError:
        raise InvalidParameter(
            f"unknown run status {status!r}; use one of " + ", ".join(s.value for s in RunStatus),
            field="status",
        ) from None


def delete_run(ctx: ServerContext, f: Fields) -> dict[str, Any]:
    ctx.client.delete_run(f.run_id())
    return {}


def restore_run(ctx: ServerContext, f: Fields) -> dict[str, Any]:
    ctx.client.restore_run(f.run_id())
    return {}


def log_metric(ctx: ServerContext, f: Fields) -> dict[str, Any]:
    run_id = f.run_id()  # MLflow's order: the run, then the point's fields
    metric = wire.metric_from_json(f, default_timestamp=now_ms())
    model_id = f.text("model_id") or None
    if model_id is not None:
        _logged_models(ctx).get(model_id)  # before the run's copy: all or nothing
    ctx.client.log_metric(run_id, metric.key, metric.value, metric.step, metric.timestamp)
    if model_id is not None:
        _link_metrics(ctx, run_id, [(model_id, _model_metric(f, metric))])
    return {}


def log_param(ctx: ServerContext, f: Fields) -> dict[str, Any]:
    run_id = f.run_id()
    ctx.client.log_param(run_id, f.text("key", required=True), f.text("value", required=True))
    return {}


def set_tag(ctx: ServerContext, f: Fields) -> dict[str, Any]:
    run_id = f.run_id()
    ctx.client.set_tag(run_id, f.text("key", required=True), f.text("value", default=""))
    return {}


def delete_tag(ctx: ServerContext, f: Fields) -> dict[str, Any]:
    ctx.client.delete_tag(f.run_id(), f.text("key", required=True))
    return {}


def log_batch(
    ctx: ServerContext, f: Fields, raw: Mapping[str, Any] | None = None
) -> dict[str, Any]:
    """All or nothing, and safe to replay: a repeated metric point is stored once. Each
    point needs its timestamp, as MLflow's server requires."""
    run_id = f.run_id()
    metrics = plain_metrics(raw.get("metrics")) if raw is not None else None
    if metrics is None:  # anything unusual: read field by field, naming a bad one
        metrics = [wire.metric_from_json(m) for m in f.objects("metrics")]
    params = [
        Param(p.text("key", required=True), p.text("value", required=True))
        for p in f.objects("params")
    ]
    tags = [
        RunTag(t.text("key", required=True), t.text("value", default="")) for t in f.objects("tags")
    ]
    check_batch_sizes(len(metrics), len(params), len(tags))
    if len(metrics) + len(params) + len(tags) > MAX_BATCH_ITEMS:
        raise InvalidParameter(
            f"a batch may hold at most {MAX_BATCH_ITEMS} metrics, params and tags together, "
            f"got {len(metrics) + len(params) + len(tags)}",
            field="metrics",
        )
    linked = (
        [
            (str(m.text("model_id")), _model_metric(m, metric))
            for m, metric in zip(f.objects("metrics"), metrics, strict=True)
            if m.has("model_id")
        ]
        if _names_models(raw, f)
        else []
    )
    for model_id in {model_id for model_id, _ in linked}:
        _logged_models(ctx).get(model_id)
    ctx.client.log_batch(run_id, metrics=metrics, params=params, tags=tags)
    if linked:
        _link_metrics(ctx, run_id, linked)
    return {}


def _names_models(raw: Mapping[str, Any] | None, f: Fields) -> bool:
    """Whether any metric of the batch names a logged model (one cheap pass: batches
    rarely do, and this is the logging path)."""
    items = raw.get("metrics") if raw is not None else None
    if type(items) is list:
        return any(type(m) is dict and m.get("model_id") for m in items)
    return any(m.has("model_id") for m in f.objects("metrics"))


def plain_metrics(items: Any) -> list[Metric] | None:
    """Metric points as clients send them (string key, number value, integer timestamp
    and step), read in one pass: ``Fields`` costs ~8 µs a point, a third of a 1,000-point
    batch. Returns None when any point is anything else, for the field-by-field reader
    and its errors; ranges are checked by the tracking client either way."""
    if type(items) is not list:
        return None
    out = []
    for item in items:
        if type(item) is not dict:
            return None
        key: Any = item.get("key")  # JSON: checked by type below
        value: Any = item.get("value")
        timestamp, step = item.get("timestamp"), item.get("step")
        if step is None:
            step = 0
        if (
            type(key) is not str
            or type(value) not in _NUMBER
            or type(timestamp) is not int
            or type(step) is not int
        ):
            return None
        out.append(Metric(key, float(value), timestamp, step))
    return out


_NUMBER = (float, int)


def log_inputs(ctx: ServerContext, f: Fields) -> dict[str, Any]:
    run_id = f.run_id()
    model_ids = [m.text("model_id", required=True) for m in f.objects("models")]
    datasets = [wire.dataset_input_from_json(d) for d in f.objects("datasets")]
    ctx.client.get_run(run_id)
    store = _logged_models(ctx)
    for model_id in model_ids:
        store.get(model_id)
    if datasets:
        ctx.client.log_inputs(run_id, datasets)
    if model_ids:
        store.record_inputs(run_id, model_ids)
    return {}


def search_runs(ctx: ServerContext, f: Fields) -> dict[str, Any] | json_codec.Encoded:
    experiment_ids = f.texts("experiment_ids")
    if not experiment_ids:
        return {}
    max_results = f.integer("max_results", default=1000)
    if not 0 < max_results <= MAX_RUNS_PAGE:
        raise wire.invalid_value(
            "max_results", max_results, f"must be an integer from 1 to {MAX_RUNS_PAGE}"
        )
    search: dict[str, Any] = {
        "filter_string": f.text("filter") or None,
        "run_view_type": f.text("run_view_type", default="ACTIVE_ONLY"),
        "max_results": max_results,
        "order_by": f.texts("order_by"),
        "page_token": f.text("page_token") or None,
    }
    # Runs rendered for an earlier search are reused while their revision holds (the
    # server always stands on a local SQL store, which keeps revisions).
    found = ctx.client.search_run_revisions(experiment_ids, **search)
    return search_answer(ctx.run_json.render(ctx.client, found.items), found.next_page_token)


def get_metric_history(ctx: ServerContext, f: Fields) -> dict[str, Any]:
    """One page of a metric's history. A request for more than a store's page gets a
    page of ``MAX_HISTORY_PAGE`` points and a token for the rest (the mlflow client
    follows tokens), so a server never holds more than that of a history."""
    run_id = f.run_id()
    key = f.text("metric_key", required=True)
    max_results = f.integer("max_results", default=HISTORY_PAGE)
    if max_results < 1:
        raise InvalidParameter(
            f"max_results must be a positive integer, got {max_results}", field="max_results"
        )
    page = ctx.client.get_metric_history_page(
        run_id, key, min(max_results, MAX_HISTORY_PAGE), f.text("page_token") or None
    )
    return wire.prune(
        {
            "metrics": [wire.metric_to_json(m) for m in page.items],
            "next_page_token": page.next_page_token,
        }
    )


def list_artifacts(ctx: ServerContext, f: Fields) -> dict[str, Any]:
    """The tracking-API listing (``artifacts/list?run_id&path``) the MLflow UI uses."""
    run = ctx.client.get_run(f.run_id())
    path = (f.text("path") or "").strip("/") or None
    if path is not None:
        try:
            validate_artifact_path(path)
        except InvalidParameter as bad:  # MLflow's wording first
            raise InvalidParameter(f"Invalid path: {bad.message}", field="path") from None
    files = ctx.client.list_artifacts(run.info.run_id, path)
    return wire.prune(
        {
            "root_uri": run.info.artifact_uri,
            "files": [
                wire.prune({"path": e.path, "is_dir": e.is_dir, "file_size": e.file_size})
                for e in files
            ],
        }
    )


# -- not yet ----------------------------------------------------------------------------


def _not_implemented(what: str) -> Handler:
    def handler(ctx: ServerContext, f: Fields) -> dict[str, Any]:
        raise NotImplementedFeature(f"{what} are not supported by this modelyard server yet")

    return handler


# -- routing ----------------------------------------------------------------------------

GET, POST = ("GET",), ("POST",)
ENDPOINTS: list[tuple[str, tuple[str, ...], Handler]] = [
    ("/experiments/create", POST, create_experiment),
    ("/experiments/get", GET, get_experiment),
    ("/experiments/get-by-name", GET, get_experiment_by_name),
    ("/experiments/search", ("GET", "POST"), search_experiments),
    ("/experiments/list", GET, search_experiments),
    ("/experiments/update", POST, update_experiment),
    ("/experiments/delete", POST, delete_experiment),
    ("/experiments/restore", POST, restore_experiment),
    ("/experiments/set-experiment-tag", POST, set_experiment_tag),
    ("/experiments/delete-experiment-tag", POST, delete_experiment_tag),
    ("/runs/create", POST, create_run),
    ("/runs/get", GET, get_run),
    ("/runs/update", POST, update_run),
    ("/runs/delete", POST, delete_run),
    ("/runs/restore", POST, restore_run),
    ("/runs/log-metric", POST, log_metric),
    ("/runs/log-parameter", POST, log_param),
    ("/runs/log-batch", POST, log_batch),
    ("/runs/set-tag", POST, set_tag),
    ("/runs/delete-tag", POST, delete_tag),
    ("/runs/search", POST, search_runs),
    ("/runs/log-inputs", POST, log_inputs),
    ("/runs/log-model", POST, _not_implemented("legacy run models (runs/log-model)")),
    ("/metrics/get-history", GET, get_metric_history),
    ("/artifacts/list", GET, list_artifacts),
]


#: Handlers short enough to run on the event loop (see ``MlflowEndpoint``): each is one
#: SQLite transaction on the logging path (at most ``MAX_BATCH_ITEMS`` rows, a few ms),
#: where a hop to a worker thread and back cost as much as the rest of a small request.
INLINE_HANDLERS = frozenset({"log_metric", "log_param", "set_tag", "log_batch", "create_run"})
_JSON_HEADERS = [(b"content-type", b"application/json")]


class MlflowEndpoint:
    """The ASGI app of one MLflow endpoint: GET fields come from the query string, the
    others from the JSON body; the answer is a JSON object.

    Plain ASGI rather than a ``Request``/``JSONResponse`` endpoint: this is the per-call
    logging path, where those objects were a measurable share of a request. Errors are
    raised, and rendered by ``server.http.errors`` as for every route.

    The handler runs in a worker thread, except the ``INLINE_HANDLERS`` when the context
    allows it (``ServerContext.inline_writes``: SQLite): those run on the event loop when
    no other handler is in a thread (``threads.inline``), which saves two thread switches
    (~40% of a ``log-metric`` round trip). SQLite takes one writer at a time, so writes
    queued on the loop lose no throughput. The price: a write that meets the write lock
    held by another *process* (a second server worker, a CLI command) holds up the loop
    until it gets the lock; the writes after it go to threads for a while.
    """

    def __init__(self, ctx: ServerContext, handler: Handler) -> None:
        self.ctx = ctx
        self.handler = handler
        self.__name__ = handler.__name__
        self.wants_raw = "raw" in inspect.signature(handler).parameters
        self.inline = ctx.inline_writes and handler.__name__ in INLINE_HANDLERS

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        ctx = self.ctx
        args: tuple[Any, ...]
        if scope["method"] in ("GET", "HEAD"):
            args = (ctx, query_fields_of(scope))
        else:
            data = await receive_json_object(scope, receive, ctx.limits.max_json_bytes)
            args = (ctx, Fields(data), data) if self.wants_raw else (ctx, Fields(data))
        if self.inline:
            answer = await threads.inline(self.handler, *args)
        else:
            answer = await in_thread(self.handler, *args)
        if isinstance(answer, json_codec.Encoded):
            body: bytes = answer
        else:
            body = json_codec.dumps(answer) if answer else b"{}"
        await send(
            {
                "type": "http.response.start",
                "status": 200,
                "headers": [(b"content-length", str(len(body)).encode()), *_JSON_HEADERS],
            }
        )
        await send({"type": "http.response.body", "body": body})


#: MLflow resources this server does not hold (GenAI traces and their assessments,
#: evaluation datasets, issues, scorers, the AI gateway, prompt-lab runs). A client that
#: probes one is answered as MLflow answers an unknown resource: 404
#: ``RESOURCE_DOES_NOT_EXIST``, which its clients handle, rather than a missing endpoint.
OUT_OF_SCOPE = ("traces", "datasets", "issues", "scorers", "gateway", "runs/create-promptlab-run")
OUT_OF_SCOPE_PREFIXES = (*PREFIXES, "/api/3.0/mlflow", "/ajax-api/3.0/mlflow")
_ALL_METHODS = ["GET", "POST", "PUT", "PATCH", "DELETE"]


async def not_held(request: Request) -> Response:
    path = request.url.path
    raise NotFound(
        f"No such resource: {path} (this modelyard server holds MLflow's experiments, runs, "
        "artifacts, logged models and model registry, not GenAI traces, evaluation "
        "datasets, issues, scorers or the AI gateway)",
        field="path",
    )


def routes(ctx: ServerContext) -> list[BaseRoute]:
    served = [
        Route(prefix + path, MlflowEndpoint(ctx, handler), methods=list(methods))
        for prefix in PREFIXES
        for path, methods, handler in ENDPOINTS
    ]
    probed = [
        Route(f"{prefix}/{resource}{tail}", not_held, methods=_ALL_METHODS)
        for prefix in OUT_OF_SCOPE_PREFIXES
        for resource in OUT_OF_SCOPE
        for tail in ("", "/{rest:path}")
    ]
    return [*served, *probed]
