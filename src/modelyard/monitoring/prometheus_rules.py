"""Monitors' rules as a Prometheus alerting-rules file (``modelyard monitor rules
--prometheus``), for teams whose alerts go through Prometheus and Alertmanager.

One rule group per monitor (``modelyard-monitor-<name>``), one alerting rule per rule,
over the gauges the control plane exports at ``/metrics``
(``server/control/monitoring_metrics.py``; every family carries ``monitor``,
``deployment``, ``model``, ``version`` and ``variant``):

* ``modelyard_drift_share`` — ``drift_share: {above: x}``;
* ``modelyard_feature_drift_score{feature,method}`` and ``modelyard_feature_drifted``
  (1 or 0, by the column's own method and threshold) — ``feature_drift``, and
  ``drift_share`` over named ``features``;
* ``modelyard_prediction_drift_score{method}`` — ``prediction_drift: {above: x}``;
* ``modelyard_live_metric{metric,slice}`` — ``metric`` (``slice=""`` is the whole window);
* ``modelyard_feedback_coverage`` — ``feedback_coverage``;
* ``modelyard_alert_state{monitor,rule,severity}`` (0 resolved, 1 pending, 2 firing) —
  rules no gauge can express exactly (``prediction_drift`` by its own threshold, a metric
  with ``min_count``, bounds on the share of named features below a value): Prometheus
  then mirrors modelyard's own alert, so the two never disagree.

and over the data plane's own metrics (``server/inference/metrics.py``), evaluated by
Prometheus continuously over the monitor's window:

* ``latency_p99_ms``: ``histogram_quantile(0.99, …modelyard_inference_request_duration_
  seconds_bucket…) * 1000``, per variant and version (an estimate from the histogram's
  buckets, where modelyard's own evaluation reads exact latencies from the log);
* ``error_rate``: the share of ``modelyard_inference_requests_total`` whose ``status`` is
  not 2xx (the prediction log counts every non-ok answer as an error too);
* ``requests``: ``increase(modelyard_inference_requests_total[window])``.

``for: N`` (N consecutive breaching evaluations) becomes Prometheus' ``for`` of (N-1)
times the schedule's interval: the gauges change once per evaluation, so a breach seen
for that long has been seen by N evaluations. Rules mirroring ``modelyard_alert_state``
use ``for: 0s``: modelyard has applied ``for`` already. Labels: ``severity``,
``monitor``, ``deployment``, ``rule`` and, when the rule names one, ``trigger``.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Sequence
from datetime import timedelta
from typing import Any

from modelyard.monitoring.rules import Bounds, RuleSpec
from modelyard.monitoring.store import Monitor

__all__ = ["GAUGES", "alert_name", "prometheus_rules", "render_prometheus_rules"]

#: The gauges (and data-plane metrics) the generated rules read.
GAUGES = (
    "modelyard_drift_share",
    "modelyard_feature_drift_score",
    "modelyard_feature_drifted",
    "modelyard_prediction_drift_score",
    "modelyard_live_metric",
    "modelyard_feedback_coverage",
    "modelyard_alert_state",
)
LATENCY = "modelyard_inference_request_duration_seconds_bucket"
REQUESTS = "modelyard_inference_requests_total"
#: The labels a per-window gauge carries besides monitor and deployment.
SERIES = ("model", "version", "variant")
_RE2_SPECIAL = re.compile(r"([\\.+*?()|\[\]{}^$])")


def prometheus_rules(monitors: Iterable[Monitor]) -> dict[str, Any]:
    """The rules file as a mapping (``{"groups": [...]}``), monitors in name order."""
    groups = []
    for monitor in sorted(monitors, key=lambda m: m.name):
        step = monitor.cron.interval()
        rules = [_rule(monitor, rule, step) for rule in monitor.spec.rules]
        groups.append({"name": f"modelyard-monitor-{monitor.name}", "rules": rules})
    return {"groups": groups}


def render_prometheus_rules(monitors: Iterable[Monitor]) -> str:
    """The rules file as YAML text, for ``promtool check rules`` and Prometheus."""
    import yaml

    header = (
        "# Prometheus alerting rules of modelyard monitors (modelyard monitor rules "
        "--prometheus).\n# Generated: edit the monitors' rules, not this file.\n"
    )
    body = yaml.safe_dump(
        prometheus_rules(monitors), sort_keys=False, allow_unicode=True, width=1000
    )
    return header + body


def alert_name(rule: str) -> str:
    """A rule's name as a Prometheus alert name (``input drift`` → ``ModelyardInputDrift``):
    alert names must be metric-name-like; the rule's own name stays in the ``rule`` label."""
    words = re.findall(r"[A-Za-z0-9]+", rule)
    name = "".join(w[:1].upper() + w[1:] for w in words)
    return f"Modelyard{name or 'Rule'}"


def _rule(monitor: Monitor, rule: RuleSpec, step: timedelta) -> dict[str, Any]:
    expr, mirrored = _expression(monitor, rule)
    pending_for = timedelta(0) if mirrored else step * (rule.for_ - 1)
    labels = {
        "severity": rule.severity,
        "monitor": monitor.name,
        "deployment": monitor.deployment,
        "rule": rule.name,
    }
    if rule.trigger:
        labels["trigger"] = rule.trigger
    summary = (
        f"{monitor.deployment}: {rule.name} ({rule.kind}) breached, value {{{{ $value }}}}"
        f" (monitor {monitor.name})"
    )
    description = rule.description or _describe(rule)
    if mirrored:
        description += " Mirrors modelyard's own alert state (modelyard_alert_state)."
    return {
        "alert": alert_name(rule.name),
        "expr": expr,
        "for": _duration(pending_for),
        "labels": labels,
        "annotations": {"summary": _literal(summary), "description": _literal(description)},
    }


def _literal(text: str) -> str:
    """Annotation text with Go-template delimiters in user text made harmless: only the
    ``{{ $value }}`` we write stays a template."""
    return text.replace("{{ $value }}", "\0").replace("{{", "{ {").replace("\0", "{{ $value }}")


def _describe(rule: RuleSpec) -> str:
    condition = rule.condition
    bounds = [
        f"{word} {_number(value)}"
        for word, value in (("above", condition.above), ("below", condition.below))
        if value is not None
    ]
    how = f"when {' or '.join(bounds)}" if bounds else "by each column's own method and threshold"
    return f"modelyard rule {rule.name!r}: {rule.kind} breaches {how}."


def _duration(delta: timedelta) -> str:
    seconds = int(delta.total_seconds())
    if seconds == 0:
        return "0s"
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds % size == 0:
            return f"{seconds // size}{unit}"
    return f"{seconds}s"


def _quote(value: str) -> str:
    """A PromQL string literal (Go escapes; JSON's are a subset PromQL reads)."""
    return json.dumps(value)


def _selector(name: str, matchers: Sequence[tuple[str, str, str]]) -> str:
    inside = ",".join(f"{label}{op}{_quote(value)}" for label, op, value in matchers)
    return f"{name}{{{inside}}}"


def _any_of(values: Iterable[str]) -> str:
    return "|".join(_RE2_SPECIAL.sub(r"\\\1", v) for v in values)


def _compare(series: str, bounds: Bounds) -> str:
    """``series`` beyond the bounds: ``x > above``, ``x < below``, or either."""
    checks = []
    if bounds.above is not None:
        checks.append(f"{series} > {_number(bounds.above)}")
    if bounds.below is not None:
        checks.append(f"{series} < {_number(bounds.below)}")
    return checks[0] if len(checks) == 1 else f"({checks[0]}) or ({checks[1]})"


def _number(value: float) -> str:
    return repr(float(value))


def _expression(monitor: Monitor, rule: RuleSpec) -> tuple[str, bool]:
    """The PromQL of ``rule``, and whether it mirrors modelyard's alert state."""
    own = [("monitor", "=", monitor.name), ("deployment", "=", monitor.deployment)]
    plane = [("deployment", "=", monitor.deployment)]
    window = _duration(monitor.spec.window)
    kind = rule.kind
    bounds = rule.condition
    if kind == "drift_share":
        share = rule.drift_share
        assert share is not None
        if share.features is None:
            return _compare(_selector("modelyard_drift_share", own), share), False
        if share.below is not None:
            return _mirror(monitor, rule), True
        flags = _selector(
            "modelyard_feature_drifted", [*own, ("feature", "=~", _any_of(share.features))]
        )
        by = ", ".join(("monitor", "deployment", *SERIES))
        ratio = f"sum by ({by}) ({flags}) / {len(share.features)}"
        return _compare(ratio, share), False
    if kind == "feature_drift":
        condition = rule.feature_drift
        assert condition is not None
        matchers = list(own)
        wanted = (condition.feature,) if condition.feature else condition.features
        if wanted:
            matchers.append(("feature", "=~", _any_of(wanted)))
        if condition.bounded():
            return _compare(_selector("modelyard_feature_drift_score", matchers), condition), False
        return f"{_selector('modelyard_feature_drifted', matchers)} == 1", False
    if kind == "prediction_drift":
        if not bounds.bounded():
            return _mirror(monitor, rule), True
        return _compare(_selector("modelyard_prediction_drift_score", own), bounds), False
    if kind == "metric":
        metric = rule.metric
        assert metric is not None
        if metric.min_count is not None:
            return _mirror(monitor, rule), True
        matchers = [*own, ("metric", "=", metric.name)]
        if metric.slice is None:
            matchers.append(("slice", "=", ""))
        else:
            column, _, value = metric.slice.partition("=")
            if value.strip() == "*":
                matchers.append(("slice", "=~", f"{_any_of([column.strip()])}=.*"))
            else:
                matchers.append(("slice", "=", f"{column.strip()}={value.strip()}"))
        if metric.variant is not None:
            matchers.append(("variant", "=", metric.variant))
        return _compare(_selector("modelyard_live_metric", matchers), metric), False
    if kind == "feedback_coverage":
        return _compare(_selector("modelyard_feedback_coverage", own), bounds), False
    if kind == "latency_p99_ms":
        buckets = f"rate({_selector(LATENCY, plane)}[{window}])"
        p99 = f"histogram_quantile(0.99, sum by (le, variant, version) ({buckets})) * 1000"
        return _compare(p99, bounds), False
    if kind == "error_rate":
        errors = f"rate({_selector(REQUESTS, [*plane, ('status', '!~', '2..')])}[{window}])"
        total = f"rate({_selector(REQUESTS, plane)}[{window}])"
        ratio = (
            f"(sum by (variant, version) ({errors}) or sum by (variant, version) ({total}) * 0)"
            f" / sum by (variant, version) ({total})"
        )
        return _compare(ratio, bounds), False
    if kind == "requests":
        count = f"sum by (variant, version) (increase({_selector(REQUESTS, plane)}[{window}]))"
        return _compare(count, bounds), False
    raise AssertionError(f"no Prometheus expression for rule kind {kind!r}")  # pragma: no cover


def _mirror(monitor: Monitor, rule: RuleSpec) -> str:
    state = _selector(
        "modelyard_alert_state", [("monitor", "=", monitor.name), ("rule", "=", rule.name)]
    )
    return f"{state} == 2"
