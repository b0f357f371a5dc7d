"""Deployments as JSON for the web UI: traffic, revisions, live charts, the A/B report, and
the traffic changes an editor makes from the page.

* ``GET  /api/v1/deployments``: every deployment with its current traffic policy;
* ``GET  /api/v1/deployments/{name}``: one, with its revision history (newest first);
* ``GET  /api/v1/deployments/{name}/traffic?window=1h&step=1m``: requests, errors, error
  rate and latency p50/p99 per variant and time bucket, from the prediction log
  (``monitoring.log_windows.rolling_metrics``: one DuckDB pass over the window's files);
  ``step`` defaults to what the monitoring report uses for the window;
* ``GET  /api/v1/deployments/{name}/predictions?window=1h&limit=20``: the newest logged
  answers in the window (request id, time, variant, version, status, latency, outputs),
  for the page to link each to its review;
* ``GET  /api/v1/deployments/{name}/ab-report``: ``serving.ab_report.ab_report_for``,
  or ``{"available": false, "reason": ...}`` while there is nothing to compare (no
  logged predictions with feedback on an A/B test's variants yet);
* ``POST /api/v1/deployments/{name}/switch`` ``{"model_uri"?, "reason"?}`` (blue-green),
  ``.../promote`` ``{"variant"?, "reason"?}``, ``.../rollback`` ``{"revision"?,
  "reason"?}``: declared ``editor``; ``DeploymentService`` acts as the authenticated user,
  so admission (approvals, gates, environments) and the audit trail apply as in
  ``modelyard deploy``.

A policy's sticky-assignment salt is left out of the answers: knowing it, a client could
choose which variant answers it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict
from datetime import timedelta
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from modelyard import json_codec
from modelyard.auth.roles import Role
from modelyard.durations import parse_duration
from modelyard.errors import InvalidParameter
from modelyard.ids import now_ms
from modelyard.registry.client import RegistryClient
from modelyard.registry.entities import Actor
from modelyard.server.http.auth_middleware import requires
from modelyard.server.http.request_body import read_json_object
from modelyard.server.http.threads import in_thread
from modelyard.serving.deployments import (
    Deployment,
    DeploymentService,
    Revision,
    check_deployment_name,
)
from modelyard.serving.policy import TrafficPolicy

PREFIX = "/api/v1/deployments"
DEFAULT_WINDOW = "1h"
#: The longest window the page may ask for (a week of hourly buckets).
MAX_WINDOW = timedelta(days=8)
#: At most this many buckets per variant: a chart, not an export.
MAX_BUCKETS = 2000
DEFAULT_HISTORY = 100
DEFAULT_PREDICTIONS = 20
MAX_PREDICTIONS = 500
MAX_BODY = 64 * 1024
MAX_TEXT = 1000

ActorOf = Callable[[Request], Actor | None]


def json_response(body: Any, status: int = 200) -> Response:
    return Response(json_codec.dumps(body), status, media_type="application/json")


def policy_json(policy: TrafficPolicy) -> dict[str, Any]:
    body = policy.to_dict()
    body.pop("salt", None)
    return body


def deployment_json(d: Deployment) -> dict[str, Any]:
    body = asdict(d)
    body["policy"] = policy_json(d.policy)
    return body


def revision_json(r: Revision) -> dict[str, Any]:
    body = asdict(r)
    body["policy"] = policy_json(r.policy)
    return body


def _window(window: str) -> timedelta:
    span = parse_duration(window, "window")
    if not timedelta(0) < span <= MAX_WINDOW:
        raise InvalidParameter(
            f"window must be longer than zero and at most {MAX_WINDOW.days} days, got {window!r}",
            field="window",
        )
    return span


def _limit(raw: str | None) -> int:
    text = raw or str(DEFAULT_PREDICTIONS)
    if not text.isdigit() or not 1 <= int(text) <= MAX_PREDICTIONS:
        raise InvalidParameter(
            f"limit must be an integer in [1, {MAX_PREDICTIONS}], got {text[:40]!r}", field="limit"
        )
    return int(text)


def default_step(window: timedelta) -> str:
    """The bucket the monitoring report draws a window of this length with (about
    60 buckets for short windows)."""
    if window <= timedelta(hours=1):
        return "1m"
    if window <= timedelta(hours=6):
        return "5m"
    if window <= timedelta(days=1):
        return "15m"
    return "1h"


def traffic(
    service: DeploymentService, name: str, window: str, step: str | None, end_ms: int
) -> dict[str, Any]:
    """Per variant and bucket: requests, errors, error rate, latency p50/p99 (ms)."""
    from modelyard.monitoring.log_windows import rolling_metrics

    span = _window(window)
    step = step or default_step(span)
    bucket = parse_duration(step, "step")
    if bucket <= timedelta(0) or span / bucket > MAX_BUCKETS:
        raise InvalidParameter(
            f"step {step!r} makes more than {MAX_BUCKETS} buckets of window {window!r}; "
            "choose a longer step",
            field="step",
        )
    service.get(name)  # NotFound naming it
    start = end_ms - int(span / timedelta(milliseconds=1))
    rolled = rolling_metrics(service.registry.artifacts, service.db, name, start, end_ms, step=step)
    return {
        "deployment": name,
        "start_ms": rolled.start_ms,
        "end_ms": rolled.end_ms,
        "step_ms": rolled.step_ms,
        "buckets": [
            {
                "variant": s.variant,
                "version": s.version,
                "bucket_ms": s.bucket_ms,
                "requests": s.requests,
                "errors": s.errors,
                "error_rate": s.error_rate,
                "latency_p50_ms": s.latency_p50_ms,
                "latency_p99_ms": s.latency_p99_ms,
            }
            for s in rolled.requests
        ],
    }


def recent_predictions(
    service: DeploymentService, name: str, window: str, limit: int, end_ms: int
) -> dict[str, Any]:
    """The newest ``limit`` primary answers logged in the window, newest first."""
    from modelyard.monitoring.prediction_rows import LogWindow

    span = _window(window)
    service.get(name)
    start = end_ms - int(span / timedelta(milliseconds=1))
    with LogWindow(service.registry.artifacts, name, start, end_ms) as log:
        cursor = log.con.execute(
            "SELECT request_id, epoch_ms(ts) AS ts_ms, variant, version, status, latency_ms, "
            "outputs, error FROM log WHERE role = 'primary' ORDER BY ts DESC LIMIT ?",
            [limit],
        )
        names = [d[0] for d in cursor.description]
        rows = [dict(zip(names, values, strict=True)) for values in cursor.fetchall()]
    return {"deployment": name, "start_ms": start, "end_ms": end_ms, "predictions": rows}


def ab_report(service: DeploymentService, name: str) -> dict[str, Any]:
    from modelyard.serving.ab_report import ab_report_for
    from modelyard.serving.feedback import FeedbackStore

    service.get(name)
    try:
        report = ab_report_for(service.registry.artifacts, FeedbackStore(service.db), name)
    except InvalidParameter as exc:  # nothing to compare yet: a state of the page, not an error
        return {"available": False, "reason": exc.message}
    overall = report.overall
    if overall is None or overall.control.n + overall.treatment.n == 0:
        return {
            "available": False,
            "reason": f"no feedback on an A/B test's variants {report.control!r} and "
            f"{report.treatment!r} of {name!r} yet (`modelyard deploy ab` starts one)",
        }
    return {"available": True, **report.to_dict(), "text": report.render()}


def _text(body: dict[str, Any], key: str) -> str | None:
    value = body.get(key)
    if value is None or value == "":
        return None
    if not isinstance(value, str) or len(value) > MAX_TEXT:
        raise InvalidParameter(
            f"{key} must be a string of at most {MAX_TEXT} characters", field=key
        )
    return value


def _revision(body: dict[str, Any]) -> int | None:
    value = body.get("revision")
    if value is None or value == "":
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise InvalidParameter(
            f"revision must be a positive integer, got {value!r}", field="revision"
        )
    return value


def routes(registry: RegistryClient, actor_of: ActorOf) -> list[BaseRoute]:
    base = DeploymentService(registry.db, registry)

    def service_for(request: Request) -> DeploymentService:
        actor = actor_of(request)
        return base.as_actor(actor) if actor is not None else base

    def name_of(request: Request) -> str:
        return check_deployment_name(request.path_params["name"])

    async def list_all(request: Request) -> Response:
        found = await in_thread(base.list)
        return json_response({"deployments": [deployment_json(d) for d in found]})

    async def get_one(request: Request) -> Response:
        name = name_of(request)

        def read() -> dict[str, Any]:
            deployment = base.get(name)
            history = base.history(name, DEFAULT_HISTORY)
            return {
                "deployment": deployment_json(deployment),
                "history": [revision_json(r) for r in history],
            }

        return json_response(await in_thread(read))

    async def get_traffic(request: Request) -> Response:
        q = request.query_params
        window = q.get("window") or DEFAULT_WINDOW
        body = await in_thread(
            traffic, base, name_of(request), window, q.get("step") or None, now_ms()
        )
        return json_response(body)

    async def get_predictions(request: Request) -> Response:
        q = request.query_params
        body = await in_thread(
            recent_predictions,
            base,
            name_of(request),
            q.get("window") or DEFAULT_WINDOW,
            _limit(q.get("limit")),
            now_ms(),
        )
        return json_response(body)

    async def get_ab(request: Request) -> Response:
        return json_response(await in_thread(ab_report, base, name_of(request)))

    @requires(Role.EDITOR)
    async def switch(request: Request) -> Response:
        body = await read_json_object(request, MAX_BODY)
        service, name = service_for(request), name_of(request)
        changed = await in_thread(
            service.switch, name, _text(body, "model_uri"), reason=_text(body, "reason")
        )
        return json_response({"deployment": deployment_json(changed)})

    @requires(Role.EDITOR)
    async def promote(request: Request) -> Response:
        body = await read_json_object(request, MAX_BODY)
        service, name = service_for(request), name_of(request)
        changed = await in_thread(
            service.promote, name, _text(body, "variant"), reason=_text(body, "reason")
        )
        found = changed if changed is not None else await in_thread(service.get, name)
        return json_response({"deployment": deployment_json(found)})

    @requires(Role.EDITOR)
    async def rollback(request: Request) -> Response:
        body = await read_json_object(request, MAX_BODY)
        service, name = service_for(request), name_of(request)
        changed = await in_thread(
            service.rollback, name, _revision(body), reason=_text(body, "reason")
        )
        found = changed if changed is not None else await in_thread(service.get, name)
        return json_response({"deployment": deployment_json(found)})

    return [
        Route(PREFIX, list_all, methods=["GET"]),
        Route(PREFIX + "/{name}", get_one, methods=["GET"]),
        Route(PREFIX + "/{name}/traffic", get_traffic, methods=["GET"]),
        Route(PREFIX + "/{name}/predictions", get_predictions, methods=["GET"]),
        Route(PREFIX + "/{name}/ab-report", get_ab, methods=["GET"]),
        Route(PREFIX + "/{name}/switch", switch, methods=["POST"]),
        Route(PREFIX + "/{name}/promote", promote, methods=["POST"]),
        Route(PREFIX + "/{name}/rollback", rollback, methods=["POST"]),
    ]
