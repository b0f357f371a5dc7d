"""The data-plane HTTP app: a thin interface over ``serving.runtime.ServingRuntime``.

Protocols, all answering from the same runtime (routing, checks, batching, logging):

* Open Inference Protocol v2: ``/v2/health/live|ready``, ``/v2``,
  ``/v2/models/{name}[/versions/{v}][/ready|/infer]`` — JSON tensors and the binary tensor
  data extension, so the unmodified ``tritonclient[http]`` works with its defaults;
  errors are ``{"error": message}``;
* MLflow's scoring protocol: ``POST /invocations`` (``dataframe_split``,
  ``dataframe_records``, ``instances``, ``inputs``; or CSV; anything else 415), ``/ping``,
  ``/health``, ``/version`` — errors are ``{"error_code", "message"}`` as MLflow sends;
* native: ``POST /predict`` (JSON records; entity keys completed from the feature store)
  and ``POST /feedback`` (ground truth by request id);
* ``/metrics`` for Prometheus.

Bad input is a 4xx naming what is wrong; a deployment still loading is a 503; only a
failing model is a 500. Every answer carries ``X-Request-Id`` (give your own in the
request header to correlate feedback) and ``X-Modelyard-Variant``.

>>> runtime = build_runtime(settings, "web", metrics=metrics)     # doctest: +SKIP
>>> uvicorn.run(create_inference_app(runtime, metrics), port=8080)  # doctest: +SKIP
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import asynccontextmanager
from typing import Any

from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import Route

from modelyard import __version__, json_codec
from modelyard.errors import InvalidParameter, ModelyardError, PayloadTooLarge, http_status_for
from modelyard.server.http.request_body import read_body
from modelyard.server.inference import oip
from modelyard.server.inference.metrics import InferenceMetrics
from modelyard.serving.feedback import parse_feedback
from modelyard.serving.runtime import InferenceRequest, InferenceResult, ServingRuntime
from modelyard.serving.runtime import new_request_id as _new_id

_BODY_HINT = "send fewer rows per request, or raise MODELYARD_SERVE_MAX_BODY_MB"
MLFLOW_KEYS = ("dataframe_split", "dataframe_records", "instances", "inputs")
MAX_REQUEST_ID = 128
Handler = Callable[[Request], Awaitable[Response]]


def _json(body: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    return Response(json_codec.dumps(body), status, headers, media_type="application/json")


def _request_id(request: Request, given: str | None = None) -> str:
    rid = given or request.headers.get("x-request-id")
    if rid is None:
        return _new_id()
    if not 0 < len(rid) <= MAX_REQUEST_ID:
        raise InvalidParameter("request id must be 1-128 characters", field="id")
    return rid


def _answer_headers(result: InferenceResult) -> dict[str, str]:
    return {
        "x-request-id": result.request_id,
        "x-modelyard-variant": result.variant,
        "x-modelyard-version": str(result.version),
        "x-modelyard-revision": str(result.revision),
    }


def _loads(body: bytes) -> Any:
    try:
        return json_codec.loads_strict(body)
    except json_codec.UnusableValue as exc:
        raise InvalidParameter(str(exc), field=exc.field) from None
    except (ValueError, UnicodeDecodeError) as exc:
        raise InvalidParameter(f"the request is not valid JSON: {exc}", field="body") from None


class InferenceApi:
    """The handlers, over one runtime and one metrics object."""

    def __init__(self, runtime: ServingRuntime, metrics: InferenceMetrics) -> None:
        self.runtime = runtime
        self.metrics = metrics
        self.deployment = runtime.deployment
        self._in_flight = metrics.in_flight_for(self.deployment)

    async def _body(self, request: Request) -> bytes:
        """The request body, refused (413, naming the limit) past ``max_body_bytes``; a
        gzip or deflate body is inflated within that limit (``request_body.inflate``)."""
        limit = self.runtime.options.max_body_bytes
        return await read_body(request, limit, hint=_BODY_HINT, decode=True)

    # -- shared machinery ---------------------------------------------------------------

    async def _infer(
        self,
        protocol: str,
        request: InferenceRequest | Callable[[], Awaitable[InferenceRequest]],
        render: Callable[[InferenceResult], Response],
        error: Callable[[ModelyardError, int], Response],
    ) -> Response:
        started = time.perf_counter()
        self._in_flight.inc()
        variant, version, status = "", "", 500
        try:
            self.runtime.current()  # not loaded yet: 503 before anything else
            parsed = request if isinstance(request, InferenceRequest) else await request()
            result = await self.runtime.infer(parsed)
            variant, version = result.variant, str(result.version)
            response = render(result)
            status = response.status_code
            return response
        except ModelyardError as exc:
            status = _status_for(exc)
            return error(exc, status)
        finally:
            self._in_flight.dec()
            elapsed = time.perf_counter() - started if variant else None
            self.metrics.answered(self.deployment, variant, version, protocol, status, elapsed)

    def _known(self, name: str) -> None:
        """404 unless ``name`` is this deployment (or a model it serves)."""
        if name == self.deployment:
            return
        table = self.runtime.table
        if table is not None and any(v.model == name for v in table.policy.variants):
            return
        raise _UnknownModel(f"unknown model {name!r}; this server serves {self.deployment!r}")

    # -- OIP --------------------------------------------------------------------------------

    async def live(self, request: Request) -> Response:
        return Response(status_code=200)

    async def ready(self, request: Request) -> Response:
        return self._readiness()

    def _readiness(self) -> Response:
        """200 ``{"ready": true}``, or 400 with why not (loading, retrying after a failure,
        or the model refused), so a probe's log says what an operator must fix."""
        reason = self.runtime.not_ready_reason
        if reason is None:
            return _json({"ready": True}, 200)
        return _json({"ready": False, "error": reason}, 400)

    async def server_metadata(self, request: Request) -> Response:
        return _json(
            {"name": "modelyard", "version": __version__, "extensions": ["binary_tensor_data"]}
        )

    async def model_ready(self, request: Request) -> Response:
        try:
            self._known(request.path_params["name"])
            if not self.runtime.ready:
                return self._readiness()
            self._versioned(request)
        except ModelyardError as exc:
            return _json({"error": exc.message}, http_status_for(exc))
        return self._readiness()

    def _versioned(self, request: Request) -> Any:
        table = self.runtime.current()
        raw = request.path_params.get("version")
        if raw is None:
            main = max(table.policy.variants, key=lambda v: v.weight)
            return table, main, sorted({str(v.version) for v in table.policy.variants})
        for variant in table.policy.variants:
            if str(variant.version) == raw:
                return table, variant, [raw]
        served = sorted({v.version for v in table.policy.variants})
        raise _UnknownModel(
            f"{self.deployment!r} does not serve version {raw!r}; it serves {served}"
        )

    async def model_metadata(self, request: Request) -> Response:
        try:
            self._known(request.path_params["name"])
            table, variant, versions = self._versioned(request)
        except ModelyardError as exc:
            return _json({"error": exc.message}, http_status_for(exc))
        body = table.loaded[variant.name].metadata(request.path_params["name"])
        body["versions"] = versions
        return _json(body)

    async def oip_infer(self, request: Request) -> Response:
        name = request.path_params["name"]
        raw_version = request.path_params.get("version")
        box: dict[str, Any] = {}

        async def parse() -> InferenceRequest:
            self._known(name)
            version = None
            if raw_version is not None:
                if not (raw_version.isascii() and raw_version.isdigit() and len(raw_version) < 19):
                    raise _UnknownModel(f"version {raw_version[:40]!r} is not a version number")
                version = int(raw_version)
            parsed = oip.parse_request(await self._body(request), request.headers)
            box["parsed"] = parsed
            rid = _request_id(request, parsed.id)
            return InferenceRequest(rid, parsed.to_batch, parsed.key_of, version)

        def render(result: InferenceResult) -> Response:
            parsed = box["parsed"]
            header: dict[str, Any] = {
                "model_name": name,
                "model_version": str(result.version),
                "id": result.request_id,
                "parameters": {"variant": result.variant, "revision": result.revision},
            }
            body, headers = oip.encode_response(
                {result.output_name: result.outputs}, header, oip.wants_binary(parsed)
            )
            return Response(body, 200, {**headers, **_answer_headers(result)})

        def error(exc: ModelyardError, status: int) -> Response:
            return _json({"error": exc.message}, status)

        return await self._infer("oip", parse, render, error)

    # -- MLflow scoring ---------------------------------------------------------------------

    async def ping(self, request: Request) -> Response:
        if self.runtime.ready:
            return PlainTextResponse("\n")
        return PlainTextResponse("loading\n", status_code=503)

    async def version(self, request: Request) -> Response:
        return PlainTextResponse(__version__)

    async def invocations(self, request: Request) -> Response:
        async def parse() -> InferenceRequest:
            content_type = request.headers.get("content-type", "")
            kind = content_type.split(";", 1)[0].strip().lower()
            body = await self._body(request)
            rid = _request_id(request)
            if kind == "text/csv":
                return _csv_request(rid, body)
            if kind != "application/json":
                raise _Unsupported(
                    f"content type {content_type or 'none'!r} is not supported: send "
                    "application/json or text/csv"
                )
            return _mlflow_request(rid, _loads(body), b"true" not in body and b"false" not in body)

        def render(result: InferenceResult) -> Response:
            return _json({"predictions": result.outputs}, 200, _answer_headers(result))

        def error(exc: ModelyardError, status: int) -> Response:
            code = "BAD_REQUEST" if status == 400 else exc.code
            return _json({"error_code": code, "message": exc.message}, status)

        return await self._infer("mlflow", parse, render, error)

    # -- native -----------------------------------------------------------------------------

    async def predict(self, request: Request) -> Response:
        async def parse() -> InferenceRequest:
            raw = await self._body(request)
            fast = b"true" not in raw and b"false" not in raw
            body = _loads(raw)
            key = None
            version = None
            if isinstance(body, dict):
                key, version = body.get("key"), body.get("version")
                body = body.get("records")
            if version is not None and (isinstance(version, bool) or not isinstance(version, int)):
                raise InvalidParameter("version must be an integer", field="version")
            if not isinstance(body, list) or not body or not all(isinstance(r, dict) for r in body):
                raise InvalidParameter(
                    'send a list of records, or {"records": [...]} (one JSON object per row)',
                    field="records",
                )
            records: list[dict[str, Any]] = body
            rid = _request_id(request)

            def key_of(field: str) -> str | None:
                if key is not None:
                    return str(key)
                value = records[0].get(field, request.headers.get("x-modelyard-key"))
                return None if value is None else str(value)

            return InferenceRequest(
                rid, lambda spec: spec.from_records(records, fast=fast), key_of, version, records
            )

        def render(result: InferenceResult) -> Response:
            return _json(
                {
                    "request_id": result.request_id,
                    "deployment": result.deployment,
                    "revision": result.revision,
                    "variant": result.variant,
                    "model": result.model,
                    "version": result.version,
                    "predictions": result.outputs,
                    **({"contract": result.contract} if result.contract else {}),
                },
                200,
                _answer_headers(result),
            )

        def error(exc: ModelyardError, status: int) -> Response:
            return _json(exc.to_dict(), status)

        return await self._infer("native", parse, render, error)

    async def feedback(self, request: Request) -> Response:
        try:
            items = parse_feedback(_loads(await self._body(request)))
            recorded = await self.runtime.record_feedback(items)
        except ModelyardError as exc:
            return _json(exc.to_dict(), _status_for(exc))
        return _json({"recorded": recorded})


class _UnknownModel(ModelyardError):
    code = "RESOURCE_DOES_NOT_EXIST"


class _Unsupported(ModelyardError):
    """415: the MLflow scoring server's answer to a content type it does not read."""

    code = "BAD_REQUEST"


def _mlflow_request(rid: str, body: Any, fast: bool = True) -> InferenceRequest:
    """``fast``: the body holds no JSON booleans, so numeric rows may take the one-step
    conversion (see ``InputSpec._fast``)."""
    if not isinstance(body, dict):
        raise InvalidParameter(
            f"the body must be a JSON object with one of {', '.join(MLFLOW_KEYS)}", field="body"
        )
    present = [k for k in MLFLOW_KEYS if k in body]
    unknown = sorted(set(body) - {*MLFLOW_KEYS, "params"})
    if len(present) != 1 or unknown:
        raise InvalidParameter(
            f"the body must hold exactly one of {', '.join(MLFLOW_KEYS)} (and optionally "
            f"params); it has {sorted(body)}",
            field="body",
        )
    kind = present[0]
    payload = body[kind]
    params = body.get("params")
    if not isinstance(params, dict):
        params = {}

    def key_of(field: str) -> str | None:
        if field in params:
            return str(params[field])
        first = _first_row(kind, payload)
        value = first.get(field) if first else None
        return None if value is None else str(value)

    if kind == "dataframe_split":
        if not isinstance(payload, dict):
            raise InvalidParameter("dataframe_split must be an object", field=kind)
        return InferenceRequest(
            rid,
            lambda spec: spec.from_split(payload.get("columns"), payload.get("data"), fast=fast),
            key_of,
        )
    if kind == "dataframe_records":
        return InferenceRequest(rid, lambda spec: spec.from_records(payload, fast=fast), key_of)
    return InferenceRequest(rid, lambda spec: spec.from_instances(payload, fast=fast), key_of)


def _first_row(kind: str, payload: Any) -> dict[str, Any] | None:
    if kind == "dataframe_split" and isinstance(payload, dict):
        columns, data = payload.get("columns"), payload.get("data")
        if isinstance(columns, list) and isinstance(data, list) and data:
            row = data[0]
            if isinstance(row, list):
                return dict(zip(columns, row, strict=False))
    if isinstance(payload, list) and payload and isinstance(payload[0], dict):
        return payload[0]
    return None


def _csv_request(rid: str, body: bytes) -> InferenceRequest:
    import io

    import pandas as pd

    try:
        frame = pd.read_csv(io.BytesIO(body))
    except (ValueError, UnicodeDecodeError) as exc:
        raise InvalidParameter(f"the CSV body cannot be read: {exc}", field="body") from None
    columns = {str(c): frame[c].to_numpy() for c in frame.columns}
    first = frame.iloc[0].to_dict() if len(frame) else {}

    def key_of(field: str) -> str | None:
        value = first.get(field)
        return None if value is None else str(value)

    return InferenceRequest(rid, lambda spec: spec.from_columns(columns), key_of)


def _status_for(exc: ModelyardError) -> int:
    """The data plane's status: the shared table, but 415 for an unsupported content type
    and 413 for a body over the limit (what scoring clients expect)."""
    if isinstance(exc, _Unsupported):
        return 415
    if isinstance(exc, PayloadTooLarge):
        return 413
    return http_status_for(exc)


def create_inference_app(
    runtime: ServingRuntime,
    metrics: InferenceMetrics | None = None,
    *,
    middleware: Sequence[Middleware] = (),
) -> Starlette:
    """The data-plane app over ``runtime`` (started and stopped with the app), behind
    ``middleware`` (``inference_auth.inference_auth`` for ``modelyard serve --auth``)."""
    metrics = metrics or InferenceMetrics()
    runtime.observer = metrics
    api = InferenceApi(runtime, metrics)

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        await runtime.start()
        try:
            yield
        finally:
            await runtime.stop()

    model = "/v2/models/{name}"
    versioned = "/v2/models/{name}/versions/{version}"
    routes = [  # the hot paths first: routes are matched in order
        Route("/invocations", api.invocations, methods=["POST"]),
        Route(f"{model}/infer", api.oip_infer, methods=["POST"]),
        Route("/predict", api.predict, methods=["POST"]),
        Route("/v2/health/live", api.live, methods=["GET"]),
        Route("/v2/health/ready", api.ready, methods=["GET"]),
        Route("/v2", api.server_metadata, methods=["GET"]),
        Route(model, api.model_metadata, methods=["GET"]),
        Route(versioned, api.model_metadata, methods=["GET"]),
        Route(f"{model}/ready", api.model_ready, methods=["GET"]),
        Route(f"{versioned}/ready", api.model_ready, methods=["GET"]),
        Route(f"{versioned}/infer", api.oip_infer, methods=["POST"]),
        Route("/ping", api.ping, methods=["GET"]),
        Route("/health", api.ping, methods=["GET"]),
        Route("/version", api.version, methods=["GET"]),
        Route("/feedback", api.feedback, methods=["POST"]),
        Route("/metrics", metrics.exposition, methods=["GET"]),
    ]
    return Starlette(
        routes=routes,
        lifespan=lifespan,
        exception_handlers=_handlers(),
        middleware=list(middleware),
    )


def _handlers() -> dict[Any, Any]:
    async def not_found(request: Request, exc: Exception) -> Response:
        status = getattr(exc, "status_code", 404)
        if status == 405:
            return _json({"error": f"{request.url.path} does not accept {request.method}"}, 405)
        return _json({"error": f"no endpoint {request.method} {request.url.path}"}, status)

    async def unexpected(request: Request, exc: Exception) -> Response:
        return _json({"error": f"internal server error ({type(exc).__name__})"}, 500)

    from starlette.exceptions import HTTPException

    return {HTTPException: not_found, Exception: unexpected}


#: Longest a thread holding the GIL keeps a waiting one waiting (CPython's default: 5 ms).
#: The event loop shares the process with the prediction log's writer and the revision
#: poller: with the default, a request arriving while one of them runs Python waits up
#: to 5 ms for the GIL — the tail latency of a 0.2 ms request.
SWITCH_INTERVAL_S = 0.0005


def tune_process() -> None:
    """Process-wide settings for a data-plane process (the server, each worker)."""
    import sys

    sys.setswitchinterval(SWITCH_INTERVAL_S)


def preflight(settings: Any, target: str) -> tuple[Any, Any]:
    """Open the registry and the serving target for ``target`` (a deployment name, a
    ``models:/`` URI or a saved model folder), failing fast — before any port is bound —
    on an unknown deployment (NotFound) or a version that holds no saved model
    (InvalidState): retrying could never help."""
    from pathlib import Path

    from modelyard.registry.client import RegistryClient
    from modelyard.serving.deployments import DeploymentService
    from modelyard.serving.loading import check_servable
    from modelyard.serving.packaging import FolderRegistry
    from modelyard.serving.runtime import DeploymentTarget, ModelTarget

    registry: Any
    if (Path(target) / "MLmodel.json").is_file():  # a saved model folder (a built image)
        registry = FolderRegistry(target)
        serving_target: Any = ModelTarget(registry, f"models:/{registry.version.name}/1")
    elif target.startswith("models:/"):
        registry = RegistryClient.from_settings(settings)
        serving_target = ModelTarget(registry, target)
    else:
        registry = RegistryClient.from_settings(settings)
        service = DeploymentService(registry.db, registry)
        service.get(target)
        serving_target = DeploymentTarget(service, target)
    check_servable(registry, serving_target)
    return registry, serving_target


def build_runtime(
    settings: Any, target: str, *, metrics: InferenceMetrics, freeze_gc: bool = False
) -> ServingRuntime:
    """Open the stores ``settings`` name and the runtime for ``target`` (a deployment name
    or a ``models:/`` URI). Raises NotFound for an unknown deployment. ``freeze_gc``: the
    runtime owns its process (see ``ServingOptions.freeze_gc``)."""
    from modelyard.serving.feedback import FeedbackStore
    from modelyard.serving.loading import BatchingOptions
    from modelyard.serving.prediction_log import PredictionLog
    from modelyard.serving.runtime import ServingOptions

    registry, serving_target = preflight(settings, target)
    name = serving_target.name
    prediction_log = None
    if settings.serve_log_predictions and registry.artifacts is not None:
        written = metrics.log_written_for(name)
        prediction_log = PredictionLog(
            registry.artifacts,
            max_queue=settings.serve_log_max_queue,
            flush_interval_s=settings.serve_log_flush_s,
            on_drop=lambda reason, n: metrics.log_dropped(name, reason, n),
            on_write=written.inc,
        )
    options = ServingOptions(
        poll_interval_s=settings.serve_poll_interval_s,
        batching=BatchingOptions(
            max_batch_size=settings.serve_batch_max_size,
            max_wait_ms=settings.serve_batch_max_wait_ms,
        ),
        compiled=settings.serve_compiled,
        shadow_timeout_s=settings.serve_shadow_timeout_s,
        trusted=settings.serve_trusted,
        max_body_bytes=int(settings.serve_max_body_mb * 1024 * 1024),
        freeze_gc=freeze_gc,
    )

    def features() -> Any:
        from modelyard.features.client import FeatureStore

        return FeatureStore.from_settings(settings)

    return ServingRuntime(
        serving_target,
        registry,
        options=options,
        prediction_log=prediction_log,
        feedback=FeedbackStore(registry.db) if registry.db is not None else None,
        features=features,
        observer=metrics,
    )


def app_from_env() -> Starlette:
    """The app for ``uvicorn --factory`` workers: reads ``MODELYARD_SERVE_*`` settings."""
    from modelyard.serving.settings import ServingSettings

    settings = ServingSettings(tracking_uri=None)
    if not settings.serve_target:
        raise InvalidParameter(
            "set MODELYARD_SERVE_TARGET to a deployment name or models:/NAME@ALIAS",
            field="serve_target",
        )
    tune_process()
    metrics = InferenceMetrics()
    middleware = []
    if settings.serve_auth:
        from modelyard.server.inference.auth import inference_auth

        middleware.append(inference_auth(settings))
    return create_inference_app(
        build_runtime(settings, settings.serve_target, metrics=metrics, freeze_gc=True),
        metrics,
        middleware=middleware,
    )
