"""The monitoring tables hold their invariants themselves, whoever writes: a window is
written once per monitor, and a (monitor, rule, labels) has at most one open alert."""

from __future__ import annotations

import pytest
from sqlalchemy import delete, insert, select, update
from sqlalchemy.exc import IntegrityError

from modelyard.monitoring.tables import (
    alert_events,
    alerts,
    monitor_evaluations,
    monitors,
    reference_profiles,
)
from modelyard.serving.tables import deployments


def _monitor(db, deployment, name="web-drift"):
    deployment(db, "web")
    with db.write() as conn:
        conn.execute(
            insert(monitors).values(
                name=name,
                deployment="web",
                schedule="*/15 * * * *",
                rules="rules: []",
                window_s=3600,
                enabled=True,
                created_by="t",
                created_at=0,
                updated_at=0,
            )
        )
    return name


def _evaluation(start, end):
    return dict(
        monitor="web-drift", window_start=start, window_end=end, status="ok",
        observations="[]", outcomes="[]", created_at=0,
    )  # fmt: skip


def _alert(fingerprint, state="firing"):
    return dict(
        monitor="web-drift", rule="r", labels="{}", fingerprint=fingerprint,
        open_fingerprint=None if state == "resolved" else fingerprint, state=state,
        severity="warning", breaches=1, started_at=0, since=0, updated_at=0,
    )  # fmt: skip


def test_a_window_is_written_once(metadata_db, deployment):
    _monitor(metadata_db, deployment)
    with metadata_db.write() as conn:
        conn.execute(insert(monitor_evaluations).values(**_evaluation(0, 3600)))
        conn.execute(insert(monitor_evaluations).values(**_evaluation(3600, 7200)))
    with pytest.raises(IntegrityError), metadata_db.write() as conn:
        conn.execute(insert(monitor_evaluations).values(**_evaluation(0, 3600)))


def test_one_open_alert_per_fingerprint_while_resolved_ones_pile_up(metadata_db, deployment):
    _monitor(metadata_db, deployment)
    with metadata_db.write() as conn:
        conn.execute(insert(alerts).values(**_alert("f1", "resolved")))
        conn.execute(insert(alerts).values(**_alert("f1", "resolved")))
        conn.execute(insert(alerts).values(**_alert("f1", "pending")))
        conn.execute(insert(alerts).values(**_alert("f2", "firing")))
    with pytest.raises(IntegrityError), metadata_db.write() as conn:
        conn.execute(insert(alerts).values(**_alert("f1", "firing")))


def test_deleting_a_deployment_takes_its_monitors_and_their_history(metadata_db, deployment):
    _monitor(metadata_db, deployment)
    with metadata_db.write() as conn:
        conn.execute(insert(monitor_evaluations).values(**_evaluation(0, 3600)))
        alert_id = conn.execute(insert(alerts).values(**_alert("f1"))).inserted_primary_key[0]
        conn.execute(
            insert(alert_events).values(
                alert_id=alert_id, monitor="web-drift", state="firing", at=0
            )
        )
        conn.execute(delete(deployments).where(deployments.c.name == "web"))
    with metadata_db.read() as conn:
        for table in (monitors, monitor_evaluations, alerts, alert_events):
            assert conn.execute(select(table)).first() is None, table.name


def test_a_reference_profile_needs_its_model_version(metadata_db):
    row = dict(
        model_name="churn", model_version=3, kind="input", artifact_path="p",
        digest="0" * 64, rows=10, created_at=0,
    )  # fmt: skip
    with pytest.raises(IntegrityError), metadata_db.write() as conn:
        conn.execute(insert(reference_profiles).values(**row))


def test_resolving_frees_the_fingerprint(metadata_db, deployment):
    _monitor(metadata_db, deployment)
    with metadata_db.write() as conn:
        conn.execute(insert(alerts).values(**_alert("f1", "firing")))
        conn.execute(
            update(alerts).where(alerts.c.open_fingerprint == "f1")
            .values(state="resolved", open_fingerprint=None)
        )  # fmt: skip
        conn.execute(insert(alerts).values(**_alert("f1", "pending")))
    with metadata_db.read() as conn:
        states = conn.execute(select(alerts.c.state).order_by(alerts.c.id)).scalars().all()
    assert states == ["resolved", "pending"]
