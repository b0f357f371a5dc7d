"""Alerts: pending → firing after `for` consecutive breaches, one open alert per (monitor,
rule, labels), a re-breach while firing updates the value without a new notification, a
clean evaluation resolves, an unknown one changes nothing; every transition is history."""

from __future__ import annotations

import pytest
from sqlalchemy import insert

from modelyard.errors import Conflict
from modelyard.monitoring.alerts import advance_alerts, fingerprint
from modelyard.monitoring.observations import Observation
from modelyard.monitoring.rules import evaluate_rules, parse_rules
from modelyard.monitoring.store import MonitorStore
from modelyard.monitoring.tables import alerts

HOUR = 3_600_000

RULES = """
window: 1h
rules:
  - name: errors
    error_rate: {above: 0.01}
    for: 3
    severity: critical
    trigger: retrain-demand
  - name: latency
    latency_p99_ms: {above: 250}
  - name: mae
    metric: {name: mae, above: 12, slice: "region=*"}
    for: 2
"""


class Clock:
    def __init__(self) -> None:
        self.now = 10 * HOUR

    def __call__(self) -> int:
        return self.now


def _evaluator(db, deployment):
    deployment(db, "web")
    clock = Clock()
    store = MonitorStore(db, clock=clock)
    store.create("web-slo", "web", schedule="0 * * * *", rules=RULES, created_by="ana")
    return Evaluator(store, clock)


@pytest.fixture
def monitor(sqlite_db, deployment):
    """The state machine's logic, on SQLite."""
    return _evaluator(sqlite_db, deployment)


@pytest.fixture
def any_monitor(metadata_db, deployment):
    """For what depends on the database: once per backend."""
    return _evaluator(metadata_db, deployment)


class Evaluator:
    """Evaluates hourly windows one after the other, as the scheduler would."""

    def __init__(self, store: MonitorStore, clock: Clock) -> None:
        self.store, self.clock, self.window = store, clock, 0
        self.spec = parse_rules(RULES)

    def run(self, *observations: Observation):
        start = self.window * HOUR
        self.window += 1
        self.clock.now = start + HOUR + 60_000
        outcomes = evaluate_rules(self.spec, observations)
        return self.store.record_evaluation(
            "web-slo", start, start + HOUR, observations=observations, outcomes=outcomes
        )


def errors(value):
    return Observation("error_rate", value, count=1000)


def latency(value, variant="blue"):
    return Observation("latency_p99_ms", value, (("variant", variant),))


def mae(value, region):
    return Observation("metric", value, (("metric", "mae"), ("slice", f"region={region}")))


def states(result):
    return [(t.alert.rule, t.previous, t.state, t.notify) for t in result.transitions]


def test_pending_then_firing_after_for_consecutive_breaches(monitor):
    first = monitor.run(errors(0.05))
    assert states(first) == [("errors", None, "pending", False)]
    assert monitor.run(errors(0.06)).transitions == []  # still pending: 2 of 3
    third = monitor.run(errors(0.07))
    assert states(third) == [("errors", "pending", "firing", True)]
    alert = third.transitions[0].alert
    assert (alert.severity, alert.trigger, alert.value, alert.breaches) == (
        "critical", "retrain-demand", 0.07, 3,
    )  # fmt: skip
    assert alert.started_at == first.transitions[0].alert.since


def test_a_re_breach_while_firing_updates_the_value_and_notifies_nobody(monitor):
    assert states(monitor.run(latency(300))) == [("latency", None, "firing", True)]
    again = monitor.run(latency(900))
    assert again.transitions == []
    [alert] = monitor.store.alerts("web-slo", open_only=True)
    assert alert.value == 900 and alert.breaches == 2 and alert.state == "firing"
    assert "900" in alert.detail
    assert len(monitor.store.alerts("web-slo")) == 1  # no duplicate


def test_a_clean_evaluation_resolves_and_a_new_breach_is_a_new_alert(monitor):
    monitor.run(latency(300))
    resolved = monitor.run(latency(100))
    assert states(resolved) == [("latency", "firing", "resolved", True)]
    assert resolved.transitions[0].alert.resolved_at == monitor.clock.now
    assert monitor.store.alerts("web-slo", open_only=True) == []
    monitor.run(latency(400))
    history = monitor.store.alerts("web-slo")
    assert [a.state for a in history] == ["firing", "resolved"]  # newest first
    assert history[0].fingerprint == history[1].fingerprint and history[0].id != history[1].id


def test_a_pending_alert_that_clears_resolves_quietly(monitor):
    monitor.run(errors(0.05))
    cleared = monitor.run(errors(0.001))
    assert states(cleared) == [("errors", "pending", "resolved", False)]


def test_unknown_neither_counts_nor_clears(monitor):
    monitor.run(errors(0.05), latency(300))
    nothing = Observation("error_rate", None, reason="no requests in the window")
    quiet = monitor.run(nothing, Observation("latency_p99_ms", None, (("variant", "blue"),)))
    assert quiet.evaluation.status == "unknown" and quiet.transitions == []
    open_alerts = {a.rule: a for a in monitor.store.alerts("web-slo", open_only=True)}
    assert open_alerts["errors"].breaches == 1 and open_alerts["latency"].state == "firing"
    assert monitor.run(errors(0.05)).transitions == []  # 2 of 3: unknown did not count


def test_alerts_are_kept_per_labels(monitor):
    first = monitor.run(
        mae(20, "north"), mae(5, "south"), latency(300, "blue"), latency(1, "green")
    )
    assert sorted(states(first)) == [
        ("latency", None, "firing", True),
        ("mae", None, "pending", False),
    ]
    second = monitor.run(mae(20, "north"), mae(30, "south"))
    fired = [(dict(t.alert.labels), t.state) for t in second.transitions]
    assert fired == [
        ({"metric": "mae", "slice": "region=north"}, "firing"),
        ({"metric": "mae", "slice": "region=south"}, "pending"),
    ]


def test_every_transition_is_in_the_history(any_monitor):
    monitor = any_monitor
    for value in (0.05, 0.05, 0.05, 0.05, 0.0):
        monitor.run(errors(value))
    events = monitor.store.alert_events(monitor="web-slo")
    assert [(e.previous, e.state, e.value) for e in events] == [
        (None, "pending", 0.05), ("pending", "firing", 0.05), ("firing", "resolved", 0.0),
    ]  # fmt: skip
    assert [e.at for e in events] == [HOUR + 60_000, 3 * HOUR + 60_000, 5 * HOUR + 60_000]
    [alert] = monitor.store.alerts("web-slo")
    assert monitor.store.alert_events(alert_id=alert.id) == events


def test_a_window_written_twice_moves_alerts_once(monitor):
    first = monitor.run(latency(300))
    monitor.window -= 1  # the same window again (a retry, or a second scheduler)
    again = monitor.run(latency(300))
    assert not again.created and again.transitions == []
    assert again.evaluation == first.evaluation
    assert len(monitor.store.alert_events(monitor="web-slo")) == 1


def test_alerts_of_a_removed_rule_resolve(monitor):
    monitor.run(latency(300))
    monitor.store.update("web-slo", rules="rules:\n  - {name: errors, error_rate: {above: 0.5}}")
    monitor.spec = parse_rules(monitor.store.get("web-slo").rules)
    done = monitor.run(errors(0.01))
    assert states(done) == [("latency", "firing", "resolved", True)]
    assert "was removed" in done.transitions[0].alert.detail


def test_duplicate_outcomes_count_once_with_the_breach_winning(monitor):
    spec = monitor.spec
    outcomes = evaluate_rules(spec, [latency(100), latency(300)])  # same labels twice
    with monitor.store.db.write() as conn:
        done = advance_alerts(conn, "web-slo", outcomes, at=1)
    assert [(t.state, t.alert.value) for t in done] == [("firing", 300)]


def test_the_fingerprint_ignores_label_order_and_tells_labels_apart():
    a = fingerprint("m", "r", [("slice", "x"), ("variant", "b")])
    assert a == fingerprint("m", "r", [("variant", "b"), ("slice", "x")])
    assert a != fingerprint("m", "r", [("slice", "x"), ("variant", "c")])
    assert a != fingerprint("m", "r2", [("slice", "x"), ("variant", "b")])
    assert len(a) == 64


def test_a_clash_with_another_writer_writes_nothing_and_says_retry(any_monitor):
    monitor = any_monitor
    # Another writer's open alert, committed after this evaluation read the open alerts
    # (made invisible to that read here by its state, so the clash is certain).
    key = fingerprint("web-slo", "latency", [("variant", "blue")])
    with monitor.store.db.write() as conn:
        conn.execute(
            insert(alerts).values(
                monitor="web-slo",
                rule="latency",
                labels="{}",
                fingerprint=key,
                open_fingerprint=key,
                state="resolved",
                severity="warning",
                breaches=1,
                started_at=0,
                since=0,
                updated_at=0,
            )
        )
    with pytest.raises(Conflict, match="at the same time"):
        monitor.run(latency(300))
    assert monitor.store.evaluations("web-slo") == []
