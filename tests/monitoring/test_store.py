"""MonitorStore: monitors are created only on a real deployment with a valid schedule and
rules; evaluations are written once per window and read back for charts; reference
profile rows are stored once per (model, version, kind). Same behaviour on both backends."""

from __future__ import annotations

import pytest
from sqlalchemy import insert

from modelyard.errors import AlreadyExists, InvalidParameter, NotFound
from modelyard.monitoring.observations import Observation
from modelyard.monitoring.rules import evaluate_rules, parse_rules
from modelyard.monitoring.store import MonitorStore
from modelyard.registry.tables import model_versions, registered_models

RULES = "window: 30m\nrules:\n  - name: drift\n    drift_share: {above: 0.3}\n"
HOUR = 3_600_000


@pytest.fixture
def store(metadata_db, deployment):
    deployment(metadata_db, "web")
    deployment(metadata_db, "api")
    return MonitorStore(metadata_db, clock=lambda: 1_000)


def test_create_get_list_update_delete(store):
    m = store.create("web-drift", "web", schedule=" */15 * * * * ", rules=RULES, created_by="ana")
    assert (m.deployment, m.schedule, m.window_s, m.enabled, m.last_run_at) == (
        "web", "*/15 * * * *", 1800, True, None,
    )  # fmt: skip
    assert m.spec.rules[0].name == "drift" and m.rules == RULES
    store.create("api-drift", "api", schedule="@hourly", rules=RULES.encode(), created_by="bo")
    assert store.get("web-drift") == m
    assert [x.name for x in store.list()] == ["api-drift", "web-drift"]
    assert [x.name for x in store.list(deployment="api")] == ["api-drift"]
    changed = store.update("web-drift", schedule="0 * * * *", enabled=False)
    assert (changed.schedule, changed.enabled) == ("0 * * * *", False)
    assert [x.name for x in store.list(enabled=True)] == ["api-drift"]
    store.mark_run("api-drift", at=5)
    assert store.get("api-drift").last_run_at == 5
    store.delete("web-drift")
    with pytest.raises(NotFound, match="no monitor 'web-drift'"):
        store.get("web-drift")


def test_bad_monitors_are_refused_naming_the_field(store):
    good = dict(schedule="* * * * *", rules=RULES, created_by="ana")
    store.create("m", "web", **good)
    with pytest.raises(AlreadyExists, match="monitor 'm' already exists") as e:
        store.create("m", "web", **good)
    assert e.value.field == "name"
    with pytest.raises(NotFound, match="no deployment 'nope'") as e:
        store.create("m2", "nope", **good)
    assert e.value.field == "deployment"
    with pytest.raises(InvalidParameter, match="monitor name") as e:
        store.create("Bad Name", "web", **good)
    with pytest.raises(InvalidParameter, match="has 4 fields") as e:
        store.create("m3", "web", **{**good, "schedule": "* * * *"})
    assert e.value.field == "schedule"
    with pytest.raises(InvalidParameter, match="did you mean 'window'"):
        store.create("m4", "web", **{**good, "rules": "windw: 1h\nrules: []"})
    with pytest.raises(InvalidParameter, match="not UTF-8"):
        store.create("m5", "web", **{**good, "rules": b"\xff\xfe"})
    with pytest.raises(NotFound, match="no monitor 'ghost'"):
        store.update("ghost", enabled=False)
    with pytest.raises(NotFound, match="no monitor 'ghost'"):
        store.delete("ghost")
    with pytest.raises(NotFound, match="no monitor 'ghost'"):
        store.evaluations("ghost")
    assert [m.name for m in store.list()] == ["m"]  # nothing half-written


def record(store, start, share, **extra):
    spec = parse_rules(RULES)
    obs = [Observation("drift_share", share, count=500)]
    return store.record_evaluation(
        "m", start, start + HOUR, observations=obs, outcomes=evaluate_rules(spec, obs), **extra
    )


def test_evaluations_are_written_once_and_read_back_in_window_order(store):
    store.create("m", "web", schedule="0 * * * *", rules=RULES, created_by="ana")
    drift = {"share_drifted": 0.5, "columns": {"price": {"drifted": True, "score": 0.01}}}
    first = record(store, 2 * HOUR, 0.5, rows=500, drift=drift)
    assert first.created and first.evaluation.status == "breached"
    assert first.evaluation.drift == drift and first.evaluation.rows == 500
    assert first.evaluation.observations == [Observation("drift_share", 0.5, count=500)]
    assert first.evaluation.outcomes[0]["breached"] is True
    assert [t.state for t in first.to_notify] == ["firing"]
    again = record(store, 2 * HOUR, 0.1)  # same window, other values: the first one stays
    assert not again.created and again.evaluation == first.evaluation and again.transitions == []
    record(store, 0, 0.1)
    record(store, HOUR, 0.2)
    history = store.evaluations("m")
    assert [e.window_start for e in history] == [0, HOUR, 2 * HOUR]
    assert [e.status for e in history] == ["ok", "ok", "breached"]
    assert [e.window_start for e in store.evaluations("m", limit=2)] == [HOUR, 2 * HOUR]
    assert [e.window_start for e in store.evaluations("m", since=HOUR + 1)] == [HOUR, 2 * HOUR]
    assert [e.window_start for e in store.evaluations("m", until=HOUR)] == [0]
    assert store.get_evaluation("m", HOUR, 2 * HOUR) == history[1]
    assert store.get_evaluation("m", 5, 6) is None
    assert store.get("m").last_run_at == 1_000


def test_an_evaluation_that_failed_is_stored_as_an_error(store):
    store.create("m", "web", schedule="0 * * * *", rules=RULES, created_by="ana")
    done = store.record_evaluation(
        "m", 0, HOUR, observations=[], outcomes=[], status="error", detail="log unreadable"
    )
    assert (done.evaluation.status, done.evaluation.detail) == ("error", "log unreadable")


def test_bad_evaluations_are_refused(store):
    store.create("m", "web", schedule="0 * * * *", rules=RULES, created_by="ana")
    with pytest.raises(InvalidParameter, match="ends"):
        store.record_evaluation("m", HOUR, 0, observations=[], outcomes=[])
    with pytest.raises(InvalidParameter, match="status 'meh'"):
        store.record_evaluation("m", 0, HOUR, observations=[], outcomes=[], status="meh")
    with pytest.raises(NotFound, match="no monitor 'x'"):
        store.record_evaluation("x", 0, HOUR, observations=[], outcomes=[])
    assert store.evaluations("m") == []


def add_version(db, name="churn", version=3):
    with db.write() as conn:
        conn.execute(
            insert(registered_models).values(
                name=name,
                next_version=version + 1,
                created_by="t",
                creation_time=0,
                last_updated_time=0,
            )
        )
        conn.execute(
            insert(model_versions).values(
                name=name,
                version=version,
                source="s",
                storage_location="l",
                stage="None",
                status="READY",
                created_by="t",
                creation_time=0,
                last_updated_time=0,
            )
        )


def test_reference_profiles_are_stored_once_per_version_and_kind(store, metadata_db):
    add_version(metadata_db)
    digest = "ab" * 32
    put = dict(artifact_path="profiles/churn/3/input.bin", digest=digest, rows=10_000)
    row = store.put_reference_profile("churn", 3, "input", source="sales@3", **put)
    assert store.get_reference_profile("churn", 3, "input") == row
    store.put_reference_profile("churn", 3, "predictions", **put)
    assert [p.kind for p in store.list_reference_profiles("churn")] == ["input", "predictions"]
    with pytest.raises(AlreadyExists, match="input reference profile of churn version 3"):
        store.put_reference_profile("churn", 3, "input", **put)
    again = store.put_reference_profile("churn", 3, "input", replace=True, **{**put, "rows": 7})
    assert store.get_reference_profile("churn", 3, "input").rows == 7 == again.rows
    with pytest.raises(NotFound, match="no input reference profile of churn version 4"):
        store.get_reference_profile("churn", 4)
    with pytest.raises(NotFound, match="no model version churn version 9"):
        store.put_reference_profile("churn", 9, "input", **put)
    with pytest.raises(InvalidParameter, match="profile kind 'output'"):
        store.put_reference_profile("churn", 3, "output", **put)
    with pytest.raises(InvalidParameter, match="sha256"):
        store.put_reference_profile("churn", 3, "input", **{**put, "digest": "xyz"})
    with pytest.raises(InvalidParameter, match="rows"):
        store.put_reference_profile("churn", 3, "input", **{**put, "rows": -1})


def test_the_latest_evaluation_of_each_monitor_and_the_open_alerts(store):
    store.create("m", "web", schedule="0 * * * *", rules=RULES, created_by="ana")
    store.create("n", "api", schedule="0 * * * *", rules=RULES, created_by="ana")
    record(store, HOUR, 0.9)
    backfill = record(store, 0, 0.1)  # written later, but an older window
    assert backfill.created and backfill.transitions == []  # history only: alerts stay
    latest = store.latest_evaluations()
    assert [(e.monitor, e.deployment, e.window_start) for e in latest] == [("m", "web", HOUR)]
    assert [(a.monitor, a.rule, a.state) for a in store.open_alerts()] == [("m", "drift", "firing")]
    assert store.evaluations("m")[0].deployment == "web"
