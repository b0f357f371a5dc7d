"""Prometheus metrics of the control plane, served at ``/metrics``.

What an operator needs to see the server is healthy and busy, in Prometheus' text format
(OpenMetrics when the scraper asks for it):

* ``modelyard_http_requests_total{route,method,status}``: requests answered, labelled by
  route *template* (``/api/2.0/mlflow/runs/get``), never the raw path, so ids in URLs
  cannot explode the label set; requests matching no route count as ``unmatched``;
* ``modelyard_http_request_duration_seconds{route,method}``: a latency histogram with
  buckets from 0.5 ms (a ``log-metric`` call) to 60 s (a large artifact);
* ``modelyard_http_requests_in_flight``;
* ``modelyard_tracking_metric_points_total`` and ``modelyard_tracking_runs_created_total``:
  what was ingested, through any API, and ``modelyard_tracking_writes_total{method}``:
  successful writes by tracking store method (all three counted at the store, as a
  ``WriteObserver`` of ``tracking.observed_store``);
* ``process_*``: memory, CPU and open files of this process.

Each app gets its own ``CollectorRegistry`` (never prometheus_client's global one), so
several apps in one process, as in tests, do not share counts. With ``--workers N`` each
worker counts its own requests: a scrape through the shared port sees one worker.

>>> metrics = ServerMetrics()                                       # doctest: +SKIP
>>> Starlette(routes=[*metrics.routes(), ...], middleware=[metrics.middleware()])
"""

from __future__ import annotations

import time
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, ProcessCollector
from prometheus_client.exposition import choose_encoder
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from modelyard.server.http.route_templates import RouteResolver
from modelyard.tracking.observed_store import StoreWrite

#: Seconds. The low end resolves the per-call logging path; the top, slow uploads.
LATENCY_BUCKETS = (
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05,
    0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0,
)  # fmt: skip
#: Any other method is counted as "other": clients choose methods, we bound labels.
KNOWN_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
METRICS_PATH = "/metrics"


class ServerMetrics:
    """The metric families of one app, and the middleware, route and store observer
    (``on_write``) that feed and expose them."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self.requests = Counter(
            "modelyard_http_requests",
            "HTTP requests answered, by route template, method and status code.",
            ("route", "method", "status"),
            registry=self.registry,
        )
        self.latency = Histogram(
            "modelyard_http_request_duration_seconds",
            "Time from receiving a request to sending the end of its response.",
            ("route", "method"),
            buckets=LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.in_flight = Gauge(
            "modelyard_http_requests_in_flight",
            "HTTP requests being handled right now.",
            registry=self.registry,
        )
        self.metric_points = Counter(
            "modelyard_tracking_metric_points",
            "Metric points accepted for storage (a retried batch is counted again).",
            registry=self.registry,
        )
        self.runs_created = Counter(
            "modelyard_tracking_runs_created", "Runs created.", registry=self.registry
        )
        self.writes = Counter(
            "modelyard_tracking_writes",
            "Successful writes to the tracking store, by store method.",
            ("method",),
            registry=self.registry,
        )
        # method -> its child: ``labels()`` checks and locks on every call. Bounded by the
        # store's write methods.
        self._writes: dict[str, Any] = {}
        ProcessCollector(registry=self.registry)

    def middleware(self) -> Middleware:
        """Put it first (outermost), so that 401s and 403s from auth are counted too."""
        return Middleware(MetricsMiddleware, metrics=self)

    def routes(self) -> list[BaseRoute]:
        return [Route(METRICS_PATH, self.exposition, methods=["GET"])]

    async def exposition(self, request: Request) -> Response:
        encode, content_type = choose_encoder(request.headers.get("accept", ""))
        return Response(encode(self.registry), headers={"Content-Type": content_type})

    def on_write(self, write: StoreWrite) -> None:
        """Count a successful tracking store write (a ``WriteObserver``)."""
        child = self._writes.get(write.method)
        if child is None:
            child = self._writes[write.method] = self.writes.labels(write.method)
        child.inc()
        if write.metric_points:
            self.metric_points.inc(write.metric_points)
        if write.method == "create_run":
            self.runs_created.inc()


class MetricsMiddleware:
    """Count and time every HTTP request (pure ASGI: no body buffering, no extra task)."""

    def __init__(self, app: ASGIApp, metrics: ServerMetrics) -> None:
        self.app = app
        self.metrics = metrics
        self._routes = RouteResolver()
        # (template, method, status) -> its counter and histogram children: ``labels()``
        # checks and locks on every call. Bounded like the label sets themselves.
        self._children: dict[tuple[str, str, int], tuple[Any, Any]] = {}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        status = 500  # if the app raises before answering, the server answers 500

        async def send_and_watch(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        metrics = self.metrics
        route = self._routes.resolve(scope)  # before routing, which rewrites the scope
        metrics.in_flight.inc()
        started = time.perf_counter()
        try:
            await self.app(scope, receive, send_and_watch)
        finally:
            elapsed = time.perf_counter() - started
            metrics.in_flight.dec()
            method = scope["method"] if scope["method"] in KNOWN_METHODS else "other"
            key = (route.template, method, status)
            children = self._children.get(key)
            if children is None:
                children = (
                    metrics.requests.labels(route.template, method, str(status)),
                    metrics.latency.labels(route.template, method),
                )
                self._children[key] = children
            children[0].inc()
            children[1].observe(elapsed)
