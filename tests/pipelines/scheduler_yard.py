"""Helpers of the scheduler tests: a clock the test moves, a registered pipeline, and an
alert written as the monitoring room writes one."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

from sqlalchemy import insert

from modelyard import json_codec
from modelyard.config import Settings
from modelyard.ids import now_ms
from modelyard.monitoring.tables import alert_events, alerts, monitors
from modelyard.pipelines import PipelineRegistry
from modelyard.serving.tables import deployments, serving_environments
from modelyard.store.engine import Database

from . import pipeline_yard as yard

HOUR_MS = 3_600_000
#: A fixed hour two days back: the test clock starts here, behind the real clock that
#: stamps pipeline runs (as a scheduler's clock is never ahead of the runs it starts).
BASE = (now_ms() // HOUR_MS - 48) * HOUR_MS


class Clock:
    def __init__(self, now: int = BASE) -> None:
        self.now = now

    def __call__(self) -> int:
        return self.now


def iso(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def register(settings: Settings, tmp_path, name: str = "nightly") -> PipelineRegistry:
    """``name``: the ``retrying`` pipeline of ``pipeline_yard`` that succeeds at once."""
    marker = tmp_path / "marker"
    marker.mkdir(exist_ok=True)
    registry = PipelineRegistry(settings)
    registry.register(
        name, f"{yard.__file__}:retrying", {"marker": str(marker), "failures": 0}, replace=True
    )
    return registry


def add_alert(
    db: Database,
    *,
    trigger: str | None,
    states: tuple[str, ...] = ("firing",),
    at: int = BASE,
    monitor: str = "shop",
) -> int:
    """An alert of ``monitor`` that went through ``states`` (its events one minute apart)."""
    with db.write() as conn:
        if conn.execute(serving_environments.select()).first() is None:
            conn.execute(
                insert(serving_environments).values(
                    name="production", requires=None, protected=False, created_at=0
                )
            )
        if conn.execute(deployments.select()).first() is None:
            conn.execute(
                insert(deployments).values(
                    name="web", environment="production", current_revision=1,
                    created_by="t", created_at=0, updated_at=0,
                )
            )  # fmt: skip
        if conn.execute(monitors.select().where(monitors.c.name == monitor)).first() is None:
            conn.execute(
                insert(monitors).values(
                    name=monitor, deployment="web", schedule="@hourly", rules="",
                    window_s=3600, enabled=True, created_by="t", created_at=0, updated_at=0,
                )
            )  # fmt: skip
        last = states[-1]
        # Unique per call: two alerts added in one millisecond must not share a fingerprint.
        fingerprint = f"fp-{uuid.uuid4().hex}"
        alert_id = conn.execute(
            insert(alerts).values(
                monitor=monitor, rule="drift", labels=json_codec.dumps({}).decode(),
                fingerprint=fingerprint,
                open_fingerprint=None if last == "resolved" else fingerprint,
                state=last, severity="warning", value=0.3, detail=None, breaches=1,
                trigger=trigger, started_at=at, since=at, updated_at=at,
                resolved_at=at if last == "resolved" else None,
            )
        ).inserted_primary_key[0]  # fmt: skip
        previous = None
        for i, state in enumerate(states):
            conn.execute(
                insert(alert_events).values(
                    alert_id=alert_id, monitor=monitor, previous=previous, state=state,
                    value=0.3, detail=None, at=at + i * 60_000,
                )
            )  # fmt: skip
            previous = state
    return int(alert_id)
