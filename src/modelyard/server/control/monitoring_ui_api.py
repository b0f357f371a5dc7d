"""Monitoring as JSON for the web UI: a deployment's monitors, drift per feature over time,
the latest window's reference-vs-current histograms, live metrics per slice, and alerts
with their history.

* ``GET /api/v1/monitoring/monitors``: every monitor (its deployment, schedule, window,
  last run) with its open alerts, for the index page;
* ``GET /api/v1/monitoring/deployments/{name}?window=7d&step=&end_ms=``: the deployment's
  report over ``[end_ms - window, end_ms)`` (``end_ms`` defaults to now),
  ``monitoring.monitor_report.report_data`` as the ``modelyard monitor report`` page
  draws it: drift over time from the stored evaluations (each point is what a monitor
  decided then, nothing recomputed), live metrics per slice and time bucket from the
  prediction log and feedback (``log_windows.rolling_metrics``), the latest window
  evaluated now against the stored reference profiles (``ColumnDrift.histogram``: bin
  labels, reference and current shares), and the alerts;
* ``GET /api/v1/monitoring/deployments/{name}/evaluations?limit=50``: the stored
  evaluations of its monitors, newest first, without their observations (status, rows,
  window, detail);
* ``GET /api/v1/monitoring/alerts/{id}/events``: one alert's transitions, oldest first.

All are GETs: with ``--auth`` a viewer reads them.
"""

from __future__ import annotations

import math
from datetime import timedelta
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from modelyard import json_codec
from modelyard.durations import parse_duration
from modelyard.errors import InvalidParameter, NotFound
from modelyard.registry.client import RegistryClient
from modelyard.server.http.threads import in_thread
from modelyard.serving.deployments import DeploymentService, check_deployment_name

PREFIX = "/api/v1/monitoring"
DEFAULT_WINDOW = "7d"
#: The longest window the page may ask for: drift over time reads every evaluation in it.
MAX_WINDOW = timedelta(days=31)
#: At most this many buckets per line of a live chart: a chart, not an export.
MAX_BUCKETS = 2000
DEFAULT_EVALUATIONS = 50
MAX_EVALUATIONS = 1000


def json_response(body: Any, status: int = 200) -> Response:
    return Response(json_codec.dumps(body), status, media_type="application/json")


def _finite(value: Any) -> float | None:
    if value is None:
        return None
    value = float(value)
    return value if math.isfinite(value) else None


def _points(points: Any) -> list[list[float | None]]:
    """``(t, value[, low, high])`` tuples as JSON arrays; NaN and infinities as null."""
    return [[int(p[0]), *(_finite(v) for v in p[1:])] for p in points]


def _charts(charts: dict[str, Any], thresholds: dict[str, float] | None = None) -> list[Any]:
    """Chart title → line → points, as a list of charts (sorted by title) of lines."""
    out = []
    for title in sorted(charts):
        lines = charts[title]
        out.append(
            {
                "title": title,
                "threshold": _finite((thresholds or {}).get(title)),
                "lines": [{"name": n, "points": _points(lines[n])} for n in sorted(lines)],
            }
        )
    return out


def _window(raw: str) -> str:
    span = parse_duration(raw, "window")
    if not timedelta(0) < span <= MAX_WINDOW:
        raise InvalidParameter(
            f"window must be longer than zero and at most {MAX_WINDOW.days} days, got {raw!r}",
            field="window",
        )
    return raw


def _step(raw: str | None, window: str) -> str | None:
    if raw is None:
        return None
    bucket = parse_duration(raw, "step")
    if bucket <= timedelta(0) or parse_duration(window, "window") / bucket > MAX_BUCKETS:
        raise InvalidParameter(
            f"step {raw!r} makes more than {MAX_BUCKETS} buckets of window {window!r}; "
            "choose a longer step",
            field="step",
        )
    return raw


def _end_ms(raw: str | None) -> int | None:
    if raw is None:
        return None
    if not raw.isdigit() or len(raw) > 15:
        raise InvalidParameter(
            f"end_ms must be milliseconds since the epoch, got {raw[:40]!r}", field="end_ms"
        )
    return int(raw)


def _limit(request: Request) -> int:
    raw = request.query_params.get("limit") or str(DEFAULT_EVALUATIONS)
    try:
        value = int(raw)
    except ValueError:
        raise InvalidParameter(
            f"limit must be an integer, got {raw[:40]!r}", field="limit"
        ) from None
    if not 1 <= value <= MAX_EVALUATIONS:
        raise InvalidParameter(
            f"limit must be in [1, {MAX_EVALUATIONS}], got {value}", field="limit"
        )
    return value


def _alert_id(request: Request) -> int:
    raw = request.path_params["alert_id"]
    if not raw.isdigit() or len(raw) > 18:
        raise InvalidParameter(f"alert id must be a positive integer, got {raw[:40]!r}", field="id")
    return int(raw)


def routes(registry: RegistryClient) -> list[BaseRoute]:
    from modelyard.monitoring.monitors import MonitorService

    # No notifications are sent from here: the environment (notifier secrets) stays out.
    service = MonitorService(registry, DeploymentService(registry.db, registry), environ={})

    def monitors() -> dict[str, Any]:
        found = service.list()
        open_alerts: dict[str, list[dict[str, Any]]] = {}
        for alert in service.store.open_alerts():
            open_alerts.setdefault(alert.monitor, []).append(alert.to_dict())
        return {
            "monitors": [{**m.to_dict(), "open_alerts": open_alerts.get(m.name, [])} for m in found]
        }

    def report(name: str, window: str, step: str | None, end_ms: int | None) -> dict[str, Any]:
        from modelyard.monitoring.monitor_report import report_data

        data = report_data(service, name, window=window, step=step, end_ms=end_ms)
        latest = data.latest_drift.to_dict() if data.latest_drift is not None else None
        found = {m.name: m for m in service.list(name)}  # one read, not one per monitor
        return {
            "deployment": data.deployment,
            "monitors": [found[m].to_dict() for m in data.monitors if m in found],
            "start_ms": data.start_ms,
            "end_ms": data.end_ms,
            "drift_over_time": _charts(data.drift_over_time, data.drift_thresholds),
            "metrics_over_time": _charts(data.metrics_over_time),
            "latest_drift": latest,
            "alerts": [
                a.to_dict() for m in data.monitors for a in service.store.alerts(m, limit=200)
            ],
        }

    def evaluations(name: str, limit: int) -> dict[str, Any]:
        service.deployments.get(name)  # NotFound naming it
        found = [
            e for m in service.list(name) for e in service.store.evaluations(m.name, limit=limit)
        ]
        found.sort(key=lambda e: (e.window_end, e.monitor), reverse=True)
        keep = ("id", "monitor", "window_start", "window_end", "status", "rows", "detail")
        return {"evaluations": [{k: e.to_dict()[k] for k in keep} for e in found[:limit]]}

    def events(alert_id: int) -> dict[str, Any]:
        found = service.store.alert_events(alert_id=alert_id)
        if not found:
            raise NotFound(f"alert {alert_id} does not exist", field="id")
        return {
            "events": [
                {
                    "id": e.id,
                    "alert_id": e.alert_id,
                    "monitor": e.monitor,
                    "previous": e.previous,
                    "state": e.state,
                    "value": _finite(e.value),
                    "detail": e.detail,
                    "at": e.at,
                }
                for e in found
            ]
        }

    async def get_monitors(request: Request) -> Response:
        return json_response(await in_thread(monitors))

    async def get_report(request: Request) -> Response:
        name = check_deployment_name(request.path_params["name"])
        q = request.query_params
        window = _window(q.get("window") or DEFAULT_WINDOW)
        step = _step(q.get("step") or None, window)
        end_ms = _end_ms(q.get("end_ms") or None)
        return json_response(await in_thread(report, name, window, step, end_ms))

    async def get_evaluations(request: Request) -> Response:
        name = check_deployment_name(request.path_params["name"])
        return json_response(await in_thread(evaluations, name, _limit(request)))

    async def get_events(request: Request) -> Response:
        return json_response(await in_thread(events, _alert_id(request)))

    return [
        Route(PREFIX + "/monitors", get_monitors, methods=["GET"]),
        Route(PREFIX + "/deployments/{name}", get_report, methods=["GET"]),
        Route(PREFIX + "/deployments/{name}/evaluations", get_evaluations, methods=["GET"]),
        Route(PREFIX + "/alerts/{alert_id}/events", get_events, methods=["GET"]),
    ]
