"""The control-plane HTTP app, composed explicitly from its parts.

``create_app(settings, client)`` takes the tracking client it serves (so tests and
embedding code choose the stores) and assembles the APIs from per-API route lists and a
middleware list; authentication, the native ``/api/v1`` API and ``/metrics`` slot in as
another middleware and more route lists.

>>> app = create_app(settings, TrackingClient.from_settings(settings))  # doctest: +SKIP
>>> uvicorn.run(app, host="127.0.0.1", port=5000)                      # doctest: +SKIP

``app_from_env`` is the factory uvicorn's worker processes import
(``modelyard.server.control.app:app_from_env``); it reads ``Settings()`` (``MODELYARD_*``).
"""

from __future__ import annotations

import gc
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager

from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import BaseRoute, Route

from modelyard import __version__
from modelyard.config import Settings, load_settings
from modelyard.errors import InvalidParameter, ModelyardError, StoreUnavailable
from modelyard.lineage.service import LineageService
from modelyard.monitoring.references import recording_references
from modelyard.monitoring.store import MonitorStore
from modelyard.registry.client import RegistryClient
from modelyard.server.control import (
    artifacts_api,
    data_ui_api,
    deployments_ui_api,
    mlflow_api,
    monitoring_ui_api,
    native_api,
    registry_ui_api,
    review_ui_api,
    session_ui_api,
    ui_api,
    ui_routes,
)
from modelyard.server.control.auth import actor_of
from modelyard.server.control.context import ServerContext, ServerLimits
from modelyard.server.control.lineage_api import (
    lineage_routes,
    openlineage_emitter,
    start_following,
)
from modelyard.server.control.metrics import ServerMetrics
from modelyard.server.control.mlflow_registry_api import registry_routes
from modelyard.server.control.monitoring_metrics import MonitoringCollector, store_reader
from modelyard.server.control.prerender import Prerenderer
from modelyard.server.control.run_json_cache import RunJsonCache
from modelyard.server.http.errors import exception_handlers
from modelyard.server.http.route_index import indexed
from modelyard.store.engine import Database
from modelyard.store.migrations import current_revision
from modelyard.tracking.client import TrackingClient
from modelyard.tracking.observed_store import ObservedStore, WriteObserver


def system_routes(ctx: ServerContext) -> list[BaseRoute]:
    store_type = "SqlStore"

    async def health(request: Request) -> Response:
        return PlainTextResponse("OK")

    async def version(request: Request) -> Response:
        return PlainTextResponse(__version__)

    async def server_info(request: Request) -> Response:
        return JSONResponse(
            {
                "store_type": store_type,
                "multipart_uploads_enabled": False,
                "multipart_downloads_enabled": False,
                "workspaces_enabled": False,
            }
        )

    return [
        Route("/health", health, methods=["GET"]),
        Route("/version", version, methods=["GET"]),
        Route("/api/3.0/mlflow/server-info", server_info, methods=["GET"]),
        Route("/ajax-api/3.0/mlflow/server-info", server_info, methods=["GET"]),
    ]


def readiness_route(db: Database) -> Route:
    """``GET /ready``: 200 with the schema revision once the metadata database answers,
    503 while it does not (a load balancer or Kubernetes readiness probe takes the replica
    out of rotation until it does; ``/health`` stays the liveness check, so a database
    outage does not restart every replica). Open without a token, as ``/health`` is."""

    async def ready(request: Request) -> Response:
        revision = await run_in_threadpool(current_revision, db)
        if revision is None:  # unreachable, or no schema (nothing to serve either way)
            raise StoreUnavailable("the metadata store is unreachable or has no schema")
        return JSONResponse({"status": "ready", "schema_revision": revision})

    return Route("/ready", ready, methods=["GET"])


#: One clause of each kind: searching with it once at start-up pays SQLAlchemy's one-time
#: costs of compiling a search (~10 ms), which would otherwise land on the first user's.
_WARM_UP_FILTER = "metrics.m < 0 and params.p = 'x' and tags.t = 'x' and attributes.status = 'x'"


def warm_up_search(client: TrackingClient) -> None:
    """One search of the default experiment that matches nothing, before serving."""
    try:
        client.search_run_revisions(["0"], _WARM_UP_FILTER, max_results=1)
    except ModelyardError:  # a store without revisions, say: a head start only
        pass


def observed_client(client: TrackingClient, *observers: WriteObserver) -> TrackingClient:
    """``client`` over a store that tells ``observers`` about each successful write."""
    return TrackingClient(
        ObservedStore(client.store, observers),
        client.artifacts,
        client.settings,
        system=client.system,
    )


def create_app(
    settings: Settings,
    client: TrackingClient,
    *,
    limits: ServerLimits | None = None,
    middleware: Sequence[Middleware] = (),
    registry: RegistryClient | None = None,
) -> Starlette:
    """The server app over ``client``'s stores.

    ``client`` must use local stores: a server in front of another server would forward
    every request through itself.
    """
    if settings.is_remote or client.settings.is_remote:
        raise InvalidParameter(
            "the server needs a local metadata store, not a tracking URI "
            f"({client.settings.tracking_uri or settings.tracking_uri!r}); unset "
            "MODELYARD_TRACKING_URI and set MODELYARD_STORE_URI instead",
            field="tracking_uri",
        )
    registry = registry or recording_references(RegistryClient.from_settings(settings))
    metrics = ServerMetrics()
    # Drift, live metrics and alert states, read from the store at scrape time.
    metrics.registry.register(MonitoringCollector(store_reader(MonitorStore(registry.db))))
    run_json = RunJsonCache()
    prerender = Prerenderer(run_json, client)
    # Every write through the server is counted (runs created, points logged, writes by
    # method), and the runs it changed are rendered for search answers in the background.
    # Every write through the server is a client's request: modelyard.* tags are refused.
    openlineage = openlineage_emitter(settings, registry.db)  # runs out as OpenLineage events
    client = observed_client(
        TrackingClient(client.store, client.artifacts, client.settings, system=False),
        metrics,
        prerender,
        *([openlineage] if openlineage else []),
    )
    inline_writes = client.settings.resolved_store_uri().startswith("sqlite")
    ctx = ServerContext(settings, client, limits or ServerLimits(), inline_writes, run_json)

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        warm_up_search(client)
        # What start-up built (modules, compiled statements, ~100,000 objects) stays for
        # the process's life: frozen out of the collector, a full collection no longer
        # walks it. Each walk held the GIL 40-90 ms on a loaded machine, once per ~350
        # logged batches: 64 clients' p99 went from 87-181 to 43-71 ms (scale.py, A/B).
        gc.collect()
        gc.freeze()
        prerender.start()
        start_following(openlineage, settings)
        yield
        prerender.stop()
        client.flush()
        if openlineage is not None:
            openlineage.close()

    return Starlette(
        routes=indexed(  # fixed paths found by one dict lookup (server.http.route_index)
            [
                *system_routes(ctx),
                readiness_route(registry.db),
                *metrics.routes(),
                *native_api.routes(ctx),
                *registry_routes(registry, limits=ctx.limits, actor_of=actor_of),
                *mlflow_api.routes(ctx),
                *artifacts_api.routes(ctx),
                *lineage_routes(LineageService(registry.db, client.artifacts)),
                *ui_api.routes(ctx),
                *registry_ui_api.routes(registry, actor_of),
                *deployments_ui_api.routes(registry, actor_of),
                *review_ui_api.routes(registry, actor_of),
                *session_ui_api.routes(registry, actor_of),
                *monitoring_ui_api.routes(registry),
                *data_ui_api.routes(registry),
                *ui_routes.routes(),  # the web UI: `/` and `/static/...`
            ]
        ),
        middleware=[metrics.middleware(), *middleware],  # outermost: counts auth's 401/403
        exception_handlers=exception_handlers(),
        lifespan=lifespan,
    )


def app_from_env() -> Starlette:
    """Build the app from ``MODELYARD_*`` settings (for ``uvicorn --factory`` workers)."""
    settings = load_settings(tracking_uri=None)
    return create_app(settings, TrackingClient.from_settings(settings))
