"""The monitoring report of a deployment: drift over time, live metrics over time per
slice, traffic, alerts and the latest window's histograms — one self-contained HTML page.

Drift over time comes from the stored evaluations of the deployment's monitors (nothing is
recomputed: each point is what the monitor decided then). Live metrics, requests, errors
and latency come from the prediction log and feedback in time buckets, in one streaming
pass (``log_windows.rolling_metrics``). The latest window is evaluated now against the
versions' reference profiles, for its reference-vs-current histograms.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from modelyard.durations import parse_duration
from modelyard.errors import InvalidParameter

if TYPE_CHECKING:
    from modelyard.monitoring.monitors import MonitorService
    from modelyard.monitoring.results import DriftReport
    from modelyard.monitoring.store import Evaluation

#: Buckets of the live charts for a window up to a day; longer windows use hours or days.
_STEPS = ((timedelta(days=1), "15m"), (timedelta(days=8), "1h"))


@dataclass
class MonitorReportData:
    """What the page draws (kept apart from the HTML so tests can check the numbers)."""

    deployment: str
    monitors: list[str]
    start_ms: int
    end_ms: int
    drift_over_time: dict[str, dict[str, list[tuple[int, float | None]]]]
    drift_thresholds: dict[str, float]
    metrics_over_time: dict[str, dict[str, list[Any]]]
    latest_drift: DriftReport | None
    alerts: list[dict[str, Any]]


def step_for(window: timedelta) -> str:
    for longest, step in _STEPS:
        if window <= longest:
            return step
    return "1d"


def report_data(
    service: MonitorService,
    deployment: str,
    *,
    window: str | timedelta = "7d",
    end_ms: int | None = None,
    step: str | None = None,
) -> MonitorReportData:
    from modelyard.monitoring.log_windows import evaluate_window, rolling_metrics

    span = parse_duration(window, "window")
    if span <= timedelta(0):
        raise InvalidParameter(f"window must be longer than zero, got {window!r}", field="window")
    service.deployments.get(deployment)  # NotFound naming it
    end = int(service.clock() if end_ms is None else end_ms)
    start = end - int(span.total_seconds() * 1000)
    monitors = service.list(deployment)
    drift, thresholds = _drift_over_time(
        [e for m in monitors for e in service.store.evaluations(m.name, since=start, until=end)]
    )
    slices = sorted({c for m in monitors for c in m.spec.slice_columns()})
    metrics = sorted({n for m in monitors for n in m.spec.metric_names()}) or None
    rolling = rolling_metrics(
        service.artifacts,
        service.db,
        deployment,
        start,
        end,
        step=step or step_for(span),
        slices=slices,
        metrics=metrics,
        memory_limit=service.registry.settings.monitor_memory_limit,
    )
    last = max((m.window_s for m in monitors), default=3600) * 1000
    refs = service.references(deployment)
    latest = evaluate_window(
        service.artifacts,
        service.db,
        deployment,
        max(start, end - last),
        end,
        reference=refs.inputs or None,
        prediction_reference=refs.predictions or None,
        memory_limit=service.registry.settings.monitor_memory_limit,
    )
    alerts = [_alert_row(a.to_dict()) for m in monitors for a in service.store.alerts(m.name)]
    return MonitorReportData(
        deployment,
        [m.name for m in monitors],
        start,
        end,
        drift,
        thresholds,
        _metrics_over_time(rolling),
        latest.input_drift,
        alerts,
    )


def render(data: MonitorReportData) -> str:
    from modelyard.monitoring.html_report import render_monitor_report

    names = ", ".join(data.monitors) or "no monitors yet"
    return render_monitor_report(
        title=f"Monitoring: {data.deployment}",
        subtitle=f"monitors: {names}",
        drift_over_time=data.drift_over_time,
        drift_thresholds=data.drift_thresholds,
        metrics_over_time=data.metrics_over_time,
        latest_drift=data.latest_drift,
        alerts=data.alerts,
    )


def _line(labels: dict[str, str], *keys: str) -> str:
    parts = [f"{k} {labels[k]}" if k != "variant" else labels[k] for k in keys if labels.get(k)]
    return " · ".join(parts) or "all"


def _drift_over_time(
    evaluations: list[Evaluation],
) -> tuple[dict[str, dict[str, list[tuple[int, float | None]]]], dict[str, float]]:
    charts: dict[str, dict[str, list[tuple[int, float | None]]]] = defaultdict(
        lambda: defaultdict(list)
    )
    thresholds: dict[str, float] = {}
    for e in sorted(evaluations, key=lambda e: e.window_end):
        for o in e.observations:
            labels = dict(o.labels)
            if labels.get("slice"):
                continue  # per-slice drift is in the latest window's section
            line = _line(labels, "variant", "version")
            if o.name == "drift_share":
                title = "Share of features drifted"
                thresholds.setdefault(title, 0.5)
            elif o.name == "feature_drift":
                title = f"{labels.get('feature')} ({labels.get('method')})"
            elif o.name == "prediction_drift":
                title = f"predictions ({labels.get('method')})"
            else:
                continue
            if o.threshold is not None:
                thresholds.setdefault(title, o.threshold)
            charts[title][line].append((e.window_end, o.value))
    return {k: dict(v) for k, v in charts.items()}, thresholds


def _metrics_over_time(rolling: Any) -> dict[str, dict[str, list[Any]]]:
    charts: dict[str, dict[str, list[Any]]] = defaultdict(lambda: defaultdict(list))
    for s in rolling.requests:
        line = f"{s.variant} · version {s.version}"
        charts["requests"][line].append((s.bucket_ms, float(s.requests)))
        charts["error rate"][line].append((s.bucket_ms, s.error_rate))
        charts["latency p99 (ms)"][line].append((s.bucket_ms, s.latency_p99_ms))
    for c in rolling.coverage:
        line = f"{c.variant} · version {c.version}" + (f" · {c.slice}" if c.slice else "")
        charts["feedback coverage"][line].append((c.bucket_ms, c.share))
    for m in rolling.live:
        line = f"{m.variant} · version {m.version}" + (f" · {m.slice}" if m.slice else "")
        charts[m.name][line].append((m.bucket_ms, m.value, m.ci_low, m.ci_high))
    return {k: {line: sorted(points) for line, points in v.items()} for k, v in charts.items()}


def _alert_row(alert: dict[str, Any]) -> dict[str, Any]:
    keep = ("monitor", "rule", "state", "severity", "value", "labels", "since", "trigger")
    row = {k: alert.get(k) for k in keep}
    row["since_ms"] = row.pop("since")
    return row
