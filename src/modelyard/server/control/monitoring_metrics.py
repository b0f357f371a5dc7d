"""Monitoring gauges on the control plane's ``/metrics``: drift scores, live metrics,
feedback coverage and alert states, read from the metadata store at scrape time.

The server is stateless over the store, so every replica answers the same values: each
scrape reads the latest evaluation of every monitor and the open alerts (two indexed
queries, cached for ``ttl_s`` so a burst of scrapers costs one read). The families, with a
fixed label set each (a label an observation lacks is empty):

* ``modelyard_drift_share{monitor,deployment,model,version,variant}``
* ``modelyard_feature_drift_score{…,feature,method}`` and ``modelyard_feature_drifted``
  (1 when the score crosses its method's threshold: a p-value below, a distance above)
* ``modelyard_prediction_drift_score{…,method}``
* ``modelyard_live_metric{…,metric,slice}``
* ``modelyard_feedback_coverage{…}``
* ``modelyard_alert_state{monitor,rule,severity}``: 0 resolved, 1 pending, 2 firing
* ``modelyard_monitor_last_evaluation_timestamp_seconds{monitor,deployment}``

``monitoring.prometheus_rules`` writes alerting rules over exactly these names.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass

from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from modelyard.monitoring.observations import Observation
from modelyard.monitoring.store import MonitorStore

#: Labels every per-window family carries, in order.
BASE_LABELS = ("monitor", "deployment", "model", "version", "variant")
#: Drift methods whose score is a p-value: drifted when the score is *below* the threshold.
P_VALUE_METHODS = frozenset({"ks", "chi2"})
ALERT_STATES = {"resolved": 0, "pending": 1, "firing": 2}


@dataclass(frozen=True, slots=True)
class LatestEvaluation:
    monitor: str
    deployment: str
    evaluated_at_ms: int
    observations: Sequence[Observation]


@dataclass(frozen=True, slots=True)
class AlertState:
    monitor: str
    rule: str
    severity: str
    state: str


Snapshot = tuple[list[LatestEvaluation], list[AlertState]]


def drifted(observation: Observation) -> bool | None:
    """Whether a drift observation drifted (None when unknown): the window's own verdict
    (its ``drifted`` label: it counts the missing rate too), else score vs threshold."""
    verdict = observation.label("drifted")
    if verdict is not None:
        return verdict.lower() == "true"
    if observation.value is None or observation.threshold is None:
        return None
    if observation.label("method") in P_VALUE_METHODS:
        return observation.value < observation.threshold
    return observation.value >= observation.threshold


class MonitoringCollector(Collector):
    """A prometheus_client collector over ``read()`` (the store's latest evaluations and
    open alerts), cached for ``ttl_s`` seconds."""

    def __init__(self, read: Callable[[], Snapshot], *, ttl_s: float = 5.0) -> None:
        self._read = read
        self._ttl_s = ttl_s
        self._lock = threading.Lock()
        self._cached: tuple[float, Snapshot] | None = None

    def snapshot(self) -> Snapshot:
        with self._lock:
            now = time.monotonic()
            if self._cached is None or now - self._cached[0] > self._ttl_s:
                self._cached = (now, self._read())
            return self._cached[1]

    def collect(self) -> Iterator[GaugeMetricFamily]:
        evaluations, alerts = self.snapshot()
        yield from families(evaluations, alerts)


def families(
    evaluations: Iterable[LatestEvaluation], alerts: Iterable[AlertState]
) -> Iterator[GaugeMetricFamily]:
    share = _family("drift_share", "Share of input features drifted in the latest window.")
    score = _family(
        "feature_drift_score",
        "Drift score of one input feature in the latest window (see the method label).",
        ("feature", "method"),
    )
    flagged = _family(
        "feature_drifted",
        "1 when the feature's drift score crossed its method's threshold.",
        ("feature", "method"),
    )
    predictions = _family(
        "prediction_drift_score",
        "Drift score of the predictions against the version's reference.",
        ("method",),
    )
    live = _family(
        "live_metric",
        "A live metric from feedback in the latest window, by metric and slice.",
        ("metric", "slice"),
    )
    coverage = _family(
        "feedback_coverage", "Share of the window's predictions that have feedback yet."
    )
    last = GaugeMetricFamily(
        "modelyard_monitor_last_evaluation_timestamp_seconds",
        "When the monitor's latest window was evaluated (Unix time).",
        labels=["monitor", "deployment"],
    )
    for evaluation in evaluations:
        last.add_metric(
            [evaluation.monitor, evaluation.deployment], evaluation.evaluated_at_ms / 1000
        )
        for o in evaluation.observations:
            base = _base(evaluation, o)
            if o.name == "feature_drift":
                crossed = drifted(o)  # known even without a score: an all-null column
                if crossed is not None:
                    extra = [o.label("feature") or "", o.label("method") or ""]
                    flagged.add_metric([*base, *extra], 1.0 if crossed else 0.0)
            if o.value is None:
                continue  # unknown: absent, so a rule's `absent()` or staleness shows it
            if o.name == "drift_share":
                share.add_metric(base, o.value)
            elif o.name == "feature_drift":
                extra = [o.label("feature") or "", o.label("method") or ""]
                score.add_metric([*base, *extra], o.value)
            elif o.name == "prediction_drift":
                predictions.add_metric([*base, o.label("method") or ""], o.value)
            elif o.name == "metric":
                live.add_metric([*base, o.label("metric") or "", o.label("slice") or ""], o.value)
            elif o.name == "feedback_coverage":
                coverage.add_metric(base, o.value)
    state = GaugeMetricFamily(
        "modelyard_alert_state",
        "A monitor rule's alert: 0 resolved, 1 pending, 2 firing.",
        labels=["monitor", "rule", "severity"],
    )
    for alert in alerts:
        state.add_metric(
            [alert.monitor, alert.rule, alert.severity], ALERT_STATES.get(alert.state, 0)
        )
    yield from (share, score, flagged, predictions, live, coverage, last, state)


def _family(name: str, documentation: str, extra: Sequence[str] = ()) -> GaugeMetricFamily:
    return GaugeMetricFamily(f"modelyard_{name}", documentation, labels=[*BASE_LABELS, *extra])


def _base(evaluation: LatestEvaluation, o: Observation) -> list[str]:
    return [
        evaluation.monitor,
        evaluation.deployment,
        o.label("model") or "",
        o.label("version") or "",
        o.label("variant") or "",
    ]


def store_reader(store: MonitorStore) -> Callable[[], Snapshot]:
    """``read`` over a ``MonitorStore``: its latest evaluations and open alerts."""

    def read() -> Snapshot:
        evaluations = [
            LatestEvaluation(e.monitor, e.deployment, e.created_at, e.observations)
            for e in store.latest_evaluations()
        ]
        alerts = [AlertState(a.monitor, a.rule, a.severity, a.state) for a in store.open_alerts()]
        return evaluations, alerts

    return read
