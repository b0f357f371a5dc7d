"""Alert triggers: a monitor's alert that names a pipeline starts it, once per firing
episode.

A rule in a monitor's spec may say ``trigger: retrain-demand`` (a registered pipeline);
each alert it raises carries that name (``monitoring.alerts.Alert.trigger``). An alert row
is one episode — pending → firing → resolved; the next breach opens a new alert — so
"once per firing" is once per alert id that reached ``firing``: its firing key is
``alert:<id>`` (``firings``), claimed by exactly one scheduler, ever.

An alert still firing is started however old it is; one that fired and resolved while no
scheduler ran is started if it fired within ``RESOLVED_LOOKBACK_MS`` (a day): retraining
for a drift episode that is long over is not what anyone asked for. A pending alert that
resolved without firing starts nothing.

The run's cause is the alert: ``{"kind": "alert", "alert_id": 7, "monitor": "shop",
"rule": "drift", "labels": {...}, "fired_at": ..., "firing": "alert:7"}``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import or_, select

from modelyard import json_codec
from modelyard.monitoring.tables import alert_events, alerts
from modelyard.pipelines.firings import Firings, alert_key
from modelyard.store.engine import Database

__all__ = ["RESOLVED_LOOKBACK_MS", "TriggeredAlert", "due_alerts"]

#: How long after it fired a resolved alert's trigger is still started (ms): a day.
RESOLVED_LOOKBACK_MS = 24 * 3_600_000


@dataclass(frozen=True, slots=True)
class TriggeredAlert:
    """An alert whose pipeline is to start: the firing key, the pipeline and the cause."""

    key: str
    alert_id: int
    monitor: str
    pipeline: str
    fired_at: int
    cause: dict[str, Any]


def due_alerts(db: Database, now: int) -> list[TriggeredAlert]:
    """Alerts naming a pipeline that reached ``firing`` and whose pipeline was not
    started yet, oldest first."""
    a, e = alerts.c, alert_events.c
    query = (
        select(a.id, a.monitor, a.rule, a.labels, a.trigger, a.state, e.at)
        .join(alert_events, e.alert_id == a.id)
        .where(
            a.trigger.is_not(None),
            e.state == "firing",
            or_(a.state == "firing", e.at >= now - RESOLVED_LOOKBACK_MS),
        )
        .order_by(e.at, a.id)
    )
    with db.read() as conn:
        rows = conn.execute(query).all()
    first: dict[int, Any] = {}
    for row in rows:
        first.setdefault(row.id, row)  # the first time it fired
    claimed = Firings(db).existing(alert_key(i) for i in first)
    out = []
    for alert_id, row in first.items():
        key = alert_key(alert_id)
        if key in claimed:
            continue
        cause = {
            "kind": "alert",
            "alert_id": alert_id,
            "monitor": row.monitor,
            "rule": row.rule,
            "labels": json_codec.loads_int64(row.labels),
            "fired_at": int(row.at),
            "firing": key,
        }
        out.append(TriggeredAlert(key, alert_id, row.monitor, row.trigger, int(row.at), cause))
    return out
