"""The native REST API under ``/api/v1``: experiments and runs as resources.

Where the MLflow-compatible API mirrors MLflow's RPC-style routes and protobuf JSON, this
one is resource-oriented (``GET /api/v1/runs/{run_id}``, ``PATCH`` to change,
``DELETE`` to delete) with flat objects and name-keyed maps for params, tags and metrics.
Handlers call the ``TrackingClient`` — never a store — so validation and conventions are
exactly those of local use; they run in a worker thread.

The table ``OPERATIONS`` is the single description of the API: the router is built from
it, and so is the OpenAPI document served at ``/api/v1/openapi.json`` (``server.control.openapi``).
Bodies and query strings are parsed by the operation's pydantic model; a validation error
becomes a 400 naming the field (``metrics[2].value``), and every domain error is rendered
by the one handler in ``server.http.errors``.

    curl -X POST localhost:5000/api/v1/experiments -d '{"name": "demand"}'
    curl -X POST localhost:5000/api/v1/runs/$RUN/batch \\
         -d '{"metrics": [{"key": "rmse", "value": 0.3, "timestamp": 1700000000000}]}'
"""

from __future__ import annotations

import functools
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

from pydantic import BaseModel, ValidationError
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from modelyard import json_codec
from modelyard.errors import BadRequest, InvalidParameter
from modelyard.server.control import native_models as m
from modelyard.server.control.context import ServerContext
from modelyard.server.control.openapi import Operation, document
from modelyard.server.http.request_body import read_body
from modelyard.server.http.threads import in_thread
from modelyard.tracking import entities as e
from modelyard.tracking.checks import check_key, check_run_id
from modelyard.tracking.mlflow_wire import metric_value_to_json

PREFIX = "/api/v1"
OPENAPI_PATH = f"{PREFIX}/openapi.json"
#: The type of each path parameter, for the OpenAPI document.
PATH_PARAMETERS: dict[str, Any] = {
    "experiment_id": m.ExperimentId,
    "run_id": m.RunId,
    "key": m.Key,
}


# -- conversions ------------------------------------------------------------------------


def experiment_out(experiment: e.Experiment) -> m.Experiment:
    return m.Experiment(
        experiment_id=experiment.experiment_id,
        name=experiment.name,
        artifact_location=experiment.artifact_location,
        lifecycle_stage=e.LifecycleStage(experiment.lifecycle_stage),
        creation_time=experiment.creation_time,
        last_update_time=experiment.last_update_time,
        tags=dict(experiment.tags),
    )


def run_out(run: e.Run) -> m.Run:
    info, data = run.info, run.data
    points = data.metric_points or {k: e.Metric(k, v, 0, 0) for k, v in data.metrics.items()}
    return m.Run(
        run_id=info.run_id,
        experiment_id=info.experiment_id,
        name=info.run_name,
        user_id=info.user_id,
        status=e.RunStatus(info.status),
        start_time=info.start_time,
        end_time=info.end_time,
        lifecycle_stage=e.LifecycleStage(info.lifecycle_stage),
        artifact_uri=info.artifact_uri,
        parent_run_id=info.parent_run_id,
        params=dict(data.params),
        tags=dict(data.tags),
        metrics={
            key: m.LatestMetric(
                value=metric_value_to_json(p.value), step=p.step, timestamp=p.timestamp
            )
            for key, p in points.items()
        },
        inputs=[
            m.DatasetInput(
                name=d.name,
                digest=d.digest,
                context=d.context,
                source_type=d.source_type,
                source=d.source,
                schema_=d.schema,
                profile=d.profile,
            )
            for d in run.inputs
        ],
    )


def _run_id(run_id: str) -> str:
    """Refuse malformed ids before they reach a query (a NUL byte is an error on
    PostgreSQL, not a miss)."""
    return check_run_id(run_id)


# -- experiments ------------------------------------------------------------------------


def list_experiments(ctx: ServerContext, *, query: m.ExperimentListQuery) -> m.ExperimentPage:
    """Experiments in id order, one page at a time."""
    page = ctx.client.search_experiments(
        query.view_type, query.max_results, query.name_like, query.page_token
    )
    return m.ExperimentPage(
        experiments=[experiment_out(x) for x in page], next_page_token=page.next_page_token
    )


def create_experiment(ctx: ServerContext, *, body: m.ExperimentIn) -> m.Experiment:
    """Names are unique among active and deleted experiments."""
    experiment_id = ctx.client.create_experiment(
        body.name, artifact_location=body.artifact_location, tags=body.tags
    )
    return experiment_out(ctx.client.get_experiment(experiment_id))


def get_experiment(ctx: ServerContext, *, experiment_id: str) -> m.Experiment:
    return experiment_out(ctx.client.get_experiment(experiment_id))


def rename_experiment(
    ctx: ServerContext, *, experiment_id: str, body: m.ExperimentPatch
) -> m.Experiment:
    ctx.client.rename_experiment(experiment_id, body.name)
    return experiment_out(ctx.client.get_experiment(experiment_id))


def delete_experiment(ctx: ServerContext, *, experiment_id: str) -> None:
    """Soft delete: the experiment and its runs move to the deleted stage (restorable)."""
    ctx.client.delete_experiment(experiment_id)


def restore_experiment(ctx: ServerContext, *, experiment_id: str) -> m.Experiment:
    ctx.client.restore_experiment(experiment_id)
    return experiment_out(ctx.client.get_experiment(experiment_id))


# -- runs -------------------------------------------------------------------------------


def create_run(ctx: ServerContext, *, body: m.RunIn) -> m.Run:
    """A new RUNNING run; a name is generated when none is given."""
    run = ctx.client_as(None).create_run(  # with --auth, the token's user
        body.experiment_id,
        run_name=body.name,
        tags=body.tags,
        start_time=body.start_time,
        parent_run_id=body.parent_run_id,
        record_system_tags=False,  # the caller's machine, not the server's, runs it
    )
    return run_out(run)


def search_runs(ctx: ServerContext, *, body: m.RunSearch) -> m.RunPage:
    """Runs of the given experiments matching ``filter`` (MLflow's grammar), ordered by
    ``order_by`` (default: newest first)."""
    page = ctx.client.search_runs(
        body.experiment_ids,
        filter_string=body.filter or None,
        run_view_type=body.view_type,
        max_results=body.max_results,
        order_by=body.order_by,
        page_token=body.page_token or None,
    )
    return m.RunPage(runs=[run_out(r) for r in page], next_page_token=page.next_page_token)


def get_run(ctx: ServerContext, *, run_id: str) -> m.Run:
    return run_out(ctx.client.get_run(_run_id(run_id)))


def update_run(ctx: ServerContext, *, run_id: str, body: m.RunPatch) -> m.Run:
    """Change status and/or name. A terminal status, or an ``end_time``, ends the run."""
    run_id = _run_id(run_id)
    status = body.status
    if body.end_time is not None or (status is not None and status.is_terminal):
        current = status or ctx.client.get_run(run_id).info.status
        ctx.client.set_terminated(run_id, current, end_time=body.end_time)
        status = None
    if status is not None or body.name is not None:
        ctx.client.update_run(run_id, status=status, name=body.name)
    return run_out(ctx.client.get_run(run_id))


def delete_run(ctx: ServerContext, *, run_id: str) -> None:
    """Soft delete (restorable until garbage collection purges it)."""
    ctx.client.delete_run(_run_id(run_id))


def restore_run(ctx: ServerContext, *, run_id: str) -> m.Run:
    run_id = _run_id(run_id)
    ctx.client.restore_run(run_id)
    return run_out(ctx.client.get_run(run_id))


def log_batch(ctx: ServerContext, *, run_id: str, body: m.BatchIn) -> m.BatchResult:
    """All or nothing, in one transaction, and safe to retry: a replayed metric point
    (same key, step, timestamp and value) is stored once, a param again with its value
    is accepted, a tag is overwritten."""
    ctx.client.log_batch(
        _run_id(run_id),
        metrics=[e.Metric(x.key, x.value, x.timestamp, x.step) for x in body.metrics],
        params=[e.Param(k, v) for k, v in body.params.items()],
        tags=[e.RunTag(k, v) for k, v in body.tags.items()],
    )
    return m.BatchResult(metrics=len(body.metrics), params=len(body.params), tags=len(body.tags))


def get_metric_history(
    ctx: ServerContext, *, run_id: str, key: str, query: m.MetricHistoryQuery
) -> m.MetricHistory:
    """Every point of one metric, in (step, timestamp, value) order, paged. Keys may hold
    slashes (``train/loss``): send them as they are or percent-encoded."""
    run_id = _run_id(run_id)
    check_key(key, "metric")
    page = ctx.client.get_metric_history_page(run_id, key, query.max_results, query.page_token)
    return m.MetricHistory(
        key=key,
        points=[
            m.MetricPoint(value=metric_value_to_json(p.value), step=p.step, timestamp=p.timestamp)
            for p in page.items
        ],
        next_page_token=page.next_page_token,
    )


def list_artifacts(ctx: ServerContext, *, run_id: str, query: m.ArtifactQuery) -> m.ArtifactList:
    """The direct children of ``path`` (the run's artifact root by default); paths are
    relative to that root."""
    run = ctx.client.get_run(_run_id(run_id))
    path = query.path.strip("/") or None
    files = ctx.client.list_artifacts(run.info.run_id, path)
    return m.ArtifactList(
        root_uri=run.info.artifact_uri,
        files=[m.ArtifactFile(path=f.path, is_dir=f.is_dir, file_size=f.file_size) for f in files],
    )


# -- the table --------------------------------------------------------------------------

EXP, RUN = f"{PREFIX}/experiments", f"{PREFIX}/runs"
OPERATIONS: list[Operation] = [
    Operation("GET", EXP, list_experiments, "List experiments", "experiments",
              query=m.ExperimentListQuery, response=m.ExperimentPage),
    Operation("POST", EXP, create_experiment, "Create an experiment", "experiments",
              status=201, body=m.ExperimentIn, response=m.Experiment),
    Operation("GET", f"{EXP}/{{experiment_id}}", get_experiment, "Get an experiment",
              "experiments", response=m.Experiment),
    Operation("PATCH", f"{EXP}/{{experiment_id}}", rename_experiment, "Rename an experiment",
              "experiments", body=m.ExperimentPatch, response=m.Experiment),
    Operation("DELETE", f"{EXP}/{{experiment_id}}", delete_experiment,
              "Delete an experiment (soft)", "experiments", status=204),
    Operation("POST", f"{EXP}/{{experiment_id}}/restore", restore_experiment,
              "Restore a deleted experiment", "experiments", response=m.Experiment),
    Operation("POST", RUN, create_run, "Create a run", "runs",
              status=201, body=m.RunIn, response=m.Run),
    Operation("POST", f"{RUN}/search", search_runs, "Search runs", "runs",
              body=m.RunSearch, response=m.RunPage),
    Operation("GET", f"{RUN}/{{run_id}}", get_run, "Get a run", "runs", response=m.Run),
    Operation("PATCH", f"{RUN}/{{run_id}}", update_run, "End or rename a run", "runs",
              body=m.RunPatch, response=m.Run),
    Operation("DELETE", f"{RUN}/{{run_id}}", delete_run, "Delete a run (soft)", "runs",
              status=204),
    Operation("POST", f"{RUN}/{{run_id}}/restore", restore_run, "Restore a deleted run",
              "runs", response=m.Run),
    Operation("POST", f"{RUN}/{{run_id}}/batch", log_batch,
              "Log metrics, params and tags (idempotent)", "runs",
              body=m.BatchIn, response=m.BatchResult),
    Operation("GET", f"{RUN}/{{run_id}}/metrics/{{key}}", get_metric_history,
              "Get a metric's history", "runs", query=m.MetricHistoryQuery,
              response=m.MetricHistory, greedy=frozenset({"key"})),
    Operation("GET", f"{RUN}/{{run_id}}/artifacts", list_artifacts, "List a run's artifacts",
              "runs", query=m.ArtifactQuery, response=m.ArtifactList),
]  # fmt: skip


# -- request parsing and routing --------------------------------------------------------


def field_name(loc: tuple[int | str, ...]) -> str:
    """``("metrics", 2, "value")`` → ``metrics[2].value``; a map key is ``tags.<key>``."""
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        elif part != "[key]":
            out += f".{part}" if out else part
    return out or "body"


def invalid(exc: ValidationError, where: str) -> InvalidParameter | BadRequest:
    """The first validation error, as the 400 the caller sees."""
    error = exc.errors(include_url=False)[0]
    kind, loc = error["type"], tuple(error["loc"])
    if kind == "json_invalid":
        return BadRequest(f"request body is not valid JSON: {error['msg']}", field="body")
    if not loc:
        return BadRequest(f"the {where} must be a JSON object: {error['msg']}", field="body")
    name = field_name(loc)
    if kind == "missing":
        return InvalidParameter(f"missing required field {name!r}", field=name)
    if kind == "extra_forbidden":
        return InvalidParameter(f"unknown field {name!r} (check its spelling)", field=name)
    message = str(error["msg"]).removeprefix("Value error, ")
    got = repr(error.get("input"))[:80]
    if loc[-1] == "[key]":
        parent = field_name(loc[:-2])
        return InvalidParameter(f"invalid key {got} in field {parent!r}: {message}", field=name)
    return InvalidParameter(f"field {name!r}: {message} (got {got})", field=name)


async def parse_body(request: Request, model: type[BaseModel], limit: int) -> BaseModel:
    raw = await read_body(request, limit)
    try:
        return model.model_validate_json(raw if raw.strip() else b"{}")
    except ValidationError as exc:
        # pydantic refuses a lone surrogate or a too-long integer as invalid JSON at a
        # column; the shared JSON codec names the field, as on the MLflow API.
        found = json_codec.find_unusable(raw) if _is_json_error(exc) else None
        if found is not None:
            raise InvalidParameter(str(found), field=found.field) from None
        raise invalid(exc, "request body") from None


def _is_json_error(exc: ValidationError) -> bool:
    return exc.errors(include_url=False)[0]["type"] == "json_invalid"


def parse_query(request: Request, model: type[BaseModel]) -> BaseModel:
    try:
        return model.model_validate(dict(request.query_params))
    except ValidationError as exc:
        raise invalid(exc, "query string") from None


def endpoint(ctx: ServerContext, op: Operation) -> Callable[[Request], Awaitable[Response]]:
    async def call(request: Request) -> Response:
        kwargs: dict[str, Any] = dict(request.path_params)
        if op.query is not None:
            kwargs["query"] = parse_query(request, op.query)
        if op.body is not None:
            kwargs["body"] = await parse_body(request, op.body, ctx.limits.max_json_bytes)
        result = await in_thread(op.handler, ctx, **kwargs)
        if result is None:
            return Response(status_code=op.status)
        return Response(
            result.model_dump_json(), status_code=op.status, media_type="application/json"
        )

    call.__name__ = op.handler.__name__
    return call


def path_endpoint(
    ctx: ServerContext, ops: list[Operation]
) -> Callable[[Request], Awaitable[Response]]:
    """One route per path, dispatching on the method, so that a wrong method is a 405
    whose ``Allow`` header lists every method the path has."""
    by_method = {op.method: endpoint(ctx, op) for op in ops}
    if "GET" in by_method:
        by_method["HEAD"] = by_method["GET"]

    async def call(request: Request) -> Response:
        return await by_method[request.method](request)

    return call


@functools.cache
def openapi_document() -> Mapping[str, Any]:
    from modelyard import __version__

    return document(OPERATIONS, PATH_PARAMETERS, version=__version__)


def routes(ctx: ServerContext) -> list[BaseRoute]:
    async def openapi(request: Request) -> Response:
        return JSONResponse(openapi_document())

    by_path: dict[str, list[Operation]] = {}
    for op in OPERATIONS:
        by_path.setdefault(op.route_path, []).append(op)
    out: list[BaseRoute] = [Route(OPENAPI_PATH, openapi, methods=["GET"])]
    # ``/runs/search`` must be tried before ``/runs/{run_id}``: static paths first.
    for path in sorted(by_path, key=lambda p: ("{" in p, p)):
        ops = by_path[path]
        methods = [op.method for op in ops]
        out.append(Route(path, path_endpoint(ctx, ops), methods=methods))
    return out
