"""Alerts: the state machine from rule outcomes to pending → firing → resolved, with its
history, one open alert per (monitor, rule, labels).

For each outcome of an evaluation, keyed by its fingerprint (monitor, rule, labels):

* breached, no open alert: a new alert, ``firing`` at once when the rule's ``for`` is 1,
  else ``pending`` with one breach counted;
* breached, pending: one more consecutive breach; ``firing`` once there are ``for``;
* breached, firing: the value and detail are updated — no new event, no new
  notification (de-duplication);
* not breached, pending or firing: ``resolved`` (a clean evaluation ends the episode;
  the next breach opens a new alert with its own history);
* unknown: nothing changes — an unknown evaluation neither counts as a breach nor
  clears one (a window without feedback must not resolve a metric alert).

An open alert whose rule was removed from the monitor's spec is resolved, saying so.

Every state change appends an ``alert_events`` row (the previous state, the new one,
the value and the time). ``advance_alerts`` returns the transitions; those worth a
notification (``notify``) are firing, and resolved after firing (a pending alert that
clears never bothered anyone, so its resolution does not either).

It runs inside the caller's write transaction (``MonitorStore.record_evaluation`` holds
it together with the evaluation row), so a window's alerts change exactly once.
"""

from __future__ import annotations

import hashlib
from collections.abc import Collection, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, insert, select, update

from modelyard import json_codec
from modelyard.monitoring.rules import RuleOutcome, RuleSpec
from modelyard.monitoring.tables import alert_events, alerts

__all__ = [
    "OPEN_STATES",
    "STATES",
    "Alert",
    "AlertEvent",
    "AlertTransition",
    "advance_alerts",
    "fingerprint",
    "list_alert_events",
    "list_alerts",
]

STATES = ("pending", "firing", "resolved")
OPEN_STATES = ("pending", "firing")

Labels = tuple[tuple[str, str], ...]


@dataclass(frozen=True, slots=True)
class Alert:
    """One episode of a rule breaching on one set of labels."""

    id: int
    monitor: str
    rule: str
    labels: Labels
    fingerprint: str
    state: str  # pending | firing | resolved
    severity: str
    value: float | None
    detail: str | None
    breaches: int  # consecutive breaching evaluations so far
    trigger: str | None  # the pipeline this alert names (stored; the pipelines room runs it)
    started_at: int
    since: int  # when it entered ``state``
    updated_at: int
    resolved_at: int | None

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "monitor": self.monitor,
            "rule": self.rule,
            "labels": dict(self.labels),
            "fingerprint": self.fingerprint,
            "state": self.state,
            "severity": self.severity,
            "value": self.value,
            "detail": self.detail,
            "breaches": self.breaches,
            "trigger": self.trigger,
            "started_at": self.started_at,
            "since": self.since,
            "updated_at": self.updated_at,
            "resolved_at": self.resolved_at,
        }


@dataclass(frozen=True, slots=True)
class AlertEvent:
    """One transition in an alert's history."""

    id: int
    alert_id: int
    monitor: str
    previous: str | None
    state: str
    value: float | None
    detail: str | None
    at: int


@dataclass(frozen=True, slots=True)
class AlertTransition:
    """An alert that changed state in this evaluation (``alert`` is after the change)."""

    alert: Alert
    previous: str | None
    state: str

    @property
    def notify(self) -> bool:
        """Whether people hear of it: it fires, or it resolves after firing."""
        return self.state == "firing" or (self.state == "resolved" and self.previous == "firing")


def fingerprint(monitor: str, rule: str, labels: Iterable[tuple[str, str]]) -> str:
    """The identity of an alert across evaluations: sha256 of monitor, rule and sorted
    labels (hex)."""
    body = json_codec.dumps([monitor, rule, sorted((str(k), str(v)) for k, v in labels)])
    return hashlib.sha256(body).hexdigest()


def _alert(row: Any) -> Alert:
    labels = json_codec.loads_int64(row.labels)
    return Alert(
        id=row.id,
        monitor=row.monitor,
        rule=row.rule,
        labels=tuple(sorted((str(k), str(v)) for k, v in labels.items())),
        fingerprint=row.fingerprint,
        state=row.state,
        severity=row.severity,
        value=row.value,
        detail=row.detail,
        breaches=row.breaches,
        trigger=row.trigger,
        started_at=row.started_at,
        since=row.since,
        updated_at=row.updated_at,
        resolved_at=row.resolved_at,
    )


def _event(row: Any) -> AlertEvent:
    return AlertEvent(
        id=row.id,
        alert_id=row.alert_id,
        monitor=row.monitor,
        previous=row.previous,
        state=row.state,
        value=row.value,
        detail=row.detail,
        at=row.at,
    )


def _merged(outcomes: Sequence[RuleOutcome]) -> dict[tuple[str, Labels], RuleOutcome]:
    """One outcome per (rule, labels): a breach wins over unknown, unknown over clean."""
    rank = {True: 2, None: 1, False: 0}
    out: dict[tuple[str, Labels], RuleOutcome] = {}
    for outcome in outcomes:
        key = (outcome.rule.name, outcome.labels)
        held = out.get(key)
        if held is None or rank[outcome.breached] > rank[held.breached]:
            out[key] = outcome
    return out


def advance_alerts(
    conn: Connection,
    monitor: str,
    outcomes: Sequence[RuleOutcome],
    *,
    at: int,
    rules: Collection[str] | None = None,
) -> list[AlertTransition]:
    """Apply one evaluation's ``outcomes`` to ``monitor``'s alerts at time ``at`` (ms),
    inside the caller's transaction; returns every transition, in outcome order.

    ``rules``: the names of the monitor's current rules; open alerts of any other rule
    are resolved (the rule was removed). None leaves them alone.
    """
    c = alerts.c
    rows = conn.execute(
        select(alerts).where(c.monitor == monitor, c.state.in_(OPEN_STATES)).order_by(c.id)
    )
    open_alerts = {alert.fingerprint: alert for alert in map(_alert, rows)}
    transitions: list[AlertTransition] = []
    for (rule_name, labels), outcome in _merged(outcomes).items():
        key = fingerprint(monitor, rule_name, labels)
        current = open_alerts.pop(key, None)
        if outcome.breached is True:
            transitions.extend(_breach(conn, monitor, key, outcome, current, at))
        elif outcome.breached is False and current is not None:
            transitions.append(_resolve(conn, current, outcome.value, outcome.detail, at))
    if rules is not None:
        for current in open_alerts.values():
            if current.rule not in rules:
                why = f"the rule {current.rule!r} was removed from the monitor"
                transitions.append(_resolve(conn, current, current.value, why, at))
    return transitions


def _breach(
    conn: Connection,
    monitor: str,
    key: str,
    outcome: RuleOutcome,
    current: Alert | None,
    at: int,
) -> list[AlertTransition]:
    rule: RuleSpec = outcome.rule
    if current is None:
        state = "firing" if rule.for_ <= 1 else "pending"
        row: dict[str, Any] = {
            "monitor": monitor,
            "rule": rule.name,
            "labels": json_codec.dumps(dict(outcome.labels)).decode(),
            "fingerprint": key,
            "open_fingerprint": key,
            "state": state,
            "severity": rule.severity,
            "value": outcome.value,
            "detail": outcome.detail,
            "breaches": 1,
            "trigger": rule.trigger,
            "started_at": at,
            "since": at,
            "updated_at": at,
            "resolved_at": None,
        }
        inserted = conn.execute(insert(alerts).values(**row)).inserted_primary_key
        assert inserted is not None
        del row["open_fingerprint"]
        created = Alert(id=int(inserted[0]), **{**row, "labels": outcome.labels})
        _record(conn, created, None, outcome.value, outcome.detail, at)
        return [AlertTransition(created, None, state)]
    breaches = current.breaches + 1
    state = "firing" if current.state == "firing" or breaches >= rule.for_ else "pending"
    changes: dict[str, Any] = {
        "value": outcome.value,
        "detail": outcome.detail,
        "breaches": breaches,
        "severity": rule.severity,
        "trigger": rule.trigger,
        "updated_at": at,
    }
    if state != current.state:
        changes["state"] = state
        changes["since"] = at
    conn.execute(update(alerts).where(alerts.c.id == current.id).values(**changes))
    after = _replace(current, changes)
    if state == current.state:
        return []  # still pending (counting) or still firing: de-duplicated
    _record(conn, after, current.state, outcome.value, outcome.detail, at)
    return [AlertTransition(after, current.state, state)]


def _resolve(
    conn: Connection, current: Alert, value: float | None, detail: str | None, at: int
) -> AlertTransition:
    changes: dict[str, Any] = {
        "state": "resolved",
        "open_fingerprint": None,
        "value": value,
        "detail": detail,
        "since": at,
        "updated_at": at,
        "resolved_at": at,
    }
    conn.execute(update(alerts).where(alerts.c.id == current.id).values(**changes))
    changes.pop("open_fingerprint")
    after = _replace(current, changes)
    _record(conn, after, current.state, value, detail, at)
    return AlertTransition(after, current.state, "resolved")


def _replace(alert: Alert, changes: dict[str, Any]) -> Alert:
    fields = alert.to_dict()
    fields.update(changes)
    fields["labels"] = alert.labels
    return Alert(**fields)


def _record(
    conn: Connection,
    alert: Alert,
    previous: str | None,
    value: float | None,
    detail: str | None,
    at: int,
) -> None:
    conn.execute(
        insert(alert_events).values(
            alert_id=alert.id,
            monitor=alert.monitor,
            previous=previous,
            state=alert.state,
            value=value,
            detail=detail,
            at=at,
        )
    )


def list_alerts(
    conn: Connection,
    monitor: str | None = None,
    *,
    states: Collection[str] | None = None,
    limit: int | None = None,
) -> list[Alert]:
    """Alerts, newest first; ``states`` picks some (``OPEN_STATES``: the open ones)."""
    c = alerts.c
    query = select(alerts).order_by(c.id.desc())
    if monitor is not None:
        query = query.where(c.monitor == monitor)
    if states is not None:
        query = query.where(c.state.in_(tuple(states)))
    if limit is not None:
        query = query.limit(limit)
    return [_alert(row) for row in conn.execute(query)]


def list_alert_events(
    conn: Connection,
    *,
    alert_id: int | None = None,
    monitor: str | None = None,
    limit: int | None = None,
) -> list[AlertEvent]:
    """An alert's or a monitor's transitions, oldest first (the last ``limit`` of them)."""
    c = alert_events.c
    query = select(alert_events).order_by(c.id.desc())
    if alert_id is not None:
        query = query.where(c.alert_id == alert_id)
    if monitor is not None:
        query = query.where(c.monitor == monitor)
    if limit is not None:
        query = query.limit(limit)
    return [_event(row) for row in reversed(conn.execute(query).all())]
