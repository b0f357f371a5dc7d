"""Prometheus metrics of the data plane, served at ``/metrics`` of the inference app.

* ``modelyard_inference_requests_total{deployment,variant,version,protocol,status}``;
* ``modelyard_inference_request_duration_seconds{deployment,variant,version}``: buckets
  from 0.25 ms to 60 s (peers stop at 10 s, and slow models then vanish into ``+Inf``);
* ``modelyard_inference_batch_size{deployment,model,version}``: rows per model call;
* ``modelyard_inference_requests_in_flight{deployment}``;
* ``modelyard_inference_model_load_seconds{deployment,model,version}``;
* ``modelyard_inference_shadow_requests_total{deployment,variant,version,status}`` and
  ``modelyard_inference_shadow_duration_seconds``;
* ``modelyard_inference_prediction_log_dropped_total{deployment,reason}`` and
  ``…_written_total``;
* ``modelyard_inference_revision{deployment}``, ``…_automatic_changes_total{deployment,action}``,
  ``…_contract_violations_total{deployment,mode}``;
* ``process_*``.

The registry is the app's own (never the global one). Label children are cached, so a
request costs a dictionary lookup and an increment per metric.

With several worker processes (``modelyard serve --workers N``) each worker counts in
its own memory-mapped files under ``PROMETHEUS_MULTIPROC_DIR`` (set by the CLI before
the workers start), and ``/metrics`` — whichever worker answers — adds up every
worker's files, so counters and histograms are the whole server's. Gauges combine as
their meaning asks: requests in flight are summed over live workers, the revision and
model load time are the latest value. ``process_*`` is then left out: it describes one
process.
"""

from __future__ import annotations

import os
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, ProcessCollector
from prometheus_client.exposition import choose_encoder
from starlette.requests import Request
from starlette.responses import Response

from modelyard.serving.runtime import Observer

LATENCY_BUCKETS = (
    0.00025, 0.0005, 0.001, 0.002, 0.005, 0.01, 0.025, 0.05, 0.1,
    0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0,
)  # fmt: skip
BATCH_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024)


class InferenceMetrics(Observer):
    """The metric families of one inference app, fed by handlers and the runtime."""

    def __init__(self) -> None:
        #: Set in each worker of a multi-process server (see the module's docstring).
        self.multiprocess_dir = os.environ.get("PROMETHEUS_MULTIPROC_DIR") or None
        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        self.requests = Counter(
            "modelyard_inference_requests",
            "Inference requests answered, by deployment, variant, version, protocol, status.",
            ("deployment", "variant", "version", "protocol", "status"),
            registry=r,
        )
        self.latency = Histogram(
            "modelyard_inference_request_duration_seconds",
            "Time from receiving an inference request to its answer being ready.",
            ("deployment", "variant", "version"),
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.batch_size = Histogram(
            "modelyard_inference_batch_size",
            "Rows per model call (micro-batches join the rows of concurrent requests).",
            ("deployment", "model", "version"),
            buckets=BATCH_BUCKETS,
            registry=r,
        )
        self.in_flight = Gauge(
            "modelyard_inference_requests_in_flight",
            "Inference requests being handled right now.",
            ("deployment",),
            registry=r,
            multiprocess_mode="livesum",
        )
        self.load_seconds = Gauge(
            "modelyard_inference_model_load_seconds",
            "Seconds it took to fetch and load a model version.",
            ("deployment", "model", "version"),
            registry=r,
            multiprocess_mode="mostrecent",
        )
        self.shadow_requests = Counter(
            "modelyard_inference_shadow_requests",
            "Requests mirrored to shadow versions, by outcome (error: failed, timed out or "
            "skipped because too many shadows were running).",
            ("deployment", "variant", "version", "status"),
            registry=r,
        )
        self.shadow_latency = Histogram(
            "modelyard_inference_shadow_duration_seconds",
            "Time a shadow took to answer (never added to the primary's latency).",
            ("deployment", "variant"),
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.dropped_records = Counter(
            "modelyard_inference_prediction_log_dropped",
            "Prediction log records dropped (queue full, store error) instead of blocking.",
            ("deployment", "reason"),
            registry=r,
        )
        self.log_written = Counter(
            "modelyard_inference_prediction_log_written",
            "Prediction log records written to the artifact store.",
            ("deployment",),
            registry=r,
        )
        self.revision_gauge = Gauge(
            "modelyard_inference_revision",
            "The deployment revision this data plane serves.",
            ("deployment",),
            registry=r,
            multiprocess_mode="mostrecent",
        )
        self.automatic_changes = Counter(
            "modelyard_inference_automatic_changes",
            "Canary rollbacks and promotions this data plane recorded on its own.",
            ("deployment", "action"),
            registry=r,
        )
        self.contract_violations = Counter(
            "modelyard_inference_contract_violations",
            "Requests that broke the deployment's data contract, by mode (reject or flag).",
            ("deployment", "mode"),
            registry=r,
        )
        if not self.multiprocess_dir:
            ProcessCollector(registry=r)
        self._children: dict[tuple[Any, ...], Any] = {}

    def _child(self, metric: Any, *labels: str) -> Any:
        key = (id(metric), *labels)
        child = self._children.get(key)
        if child is None:
            child = self._children[key] = metric.labels(*labels)
        return child

    # -- fed by the handlers --------------------------------------------------------------

    def answered(
        self,
        deployment: str,
        variant: str,
        version: str,
        protocol: str,
        status: int,
        seconds: float | None,
    ) -> None:
        self._child(self.requests, deployment, variant, version, protocol, str(status)).inc()
        if seconds is not None:
            self._child(self.latency, deployment, variant, version).observe(seconds)

    def in_flight_for(self, deployment: str) -> Any:
        return self._child(self.in_flight, deployment)

    def log_written_for(self, deployment: str) -> Any:
        return self._child(self.log_written, deployment)

    # -- Observer (fed by the runtime) ------------------------------------------------------

    def model_loaded(self, deployment: str, model: str, version: int, seconds: float) -> None:
        self._child(self.load_seconds, deployment, model, str(version)).set(seconds)

    def batch(self, deployment: str, model: str, version: int, size: int) -> None:
        self._child(self.batch_size, deployment, model, str(version)).observe(size)

    def shadow(self, deployment: str, variant: str, version: int, ok: bool, s: float) -> None:
        status = "ok" if ok else "error"
        self._child(self.shadow_requests, deployment, variant, str(version), status).inc()
        if ok:
            self._child(self.shadow_latency, deployment, variant).observe(s)

    def log_dropped(self, deployment: str, reason: str, n: int) -> None:
        self._child(self.dropped_records, deployment, reason).inc(n)

    def revision(self, deployment: str, revision: int) -> None:
        self._child(self.revision_gauge, deployment).set(revision)

    def automatic(self, deployment: str, action: str, reason: str) -> None:
        self._child(self.automatic_changes, deployment, action).inc()

    def contract_violation(self, deployment: str, mode: str) -> None:
        self._child(self.contract_violations, deployment, mode).inc()

    async def exposition(self, request: Request) -> Response:
        encode, content_type = choose_encoder(request.headers.get("accept", ""))
        registry = self.registry
        if self.multiprocess_dir:
            from prometheus_client.multiprocess import MultiProcessCollector

            registry = CollectorRegistry()
            MultiProcessCollector(registry, path=self.multiprocess_dir)
        return Response(encode(registry), headers={"Content-Type": content_type})
