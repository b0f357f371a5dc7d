"""Alert triggers: which alerts start their pipeline — each episode that fired and names
a pipeline, once; not a pending one that cleared, not one without a trigger, not one long
resolved."""

from __future__ import annotations

from modelyard.pipelines.firings import Firings, alert_key
from modelyard.pipelines.triggers import RESOLVED_LOOKBACK_MS, due_alerts
from modelyard.tracking.backends import database_for

from .scheduler_yard import BASE, HOUR_MS, add_alert


def test_each_fired_episode_naming_a_pipeline_is_due_until_claimed(backend_settings):
    db = database_for(backend_settings)
    firing = add_alert(db, trigger="retrain", states=("pending", "firing"))
    add_alert(db, trigger=None)
    add_alert(db, trigger="retrain", states=("pending",))
    add_alert(db, trigger="retrain", states=("pending", "resolved"))
    resolved = add_alert(db, trigger="retrain", states=("firing", "resolved"), at=BASE)
    old = BASE - RESOLVED_LOOKBACK_MS - HOUR_MS
    add_alert(db, trigger="retrain", states=("firing", "resolved"), at=old)
    still_firing = add_alert(db, trigger="retrain", at=old, monitor="web")
    due = due_alerts(db, BASE + HOUR_MS)
    assert [d.alert_id for d in due] == [still_firing, resolved, firing]  # by when they fired
    first = next(d for d in due if d.alert_id == firing)
    assert first.key == alert_key(firing) and first.pipeline == "retrain"
    assert first.fired_at == BASE + 60_000  # when it fired, not when it went pending
    assert first.cause["kind"] == "alert" and first.cause["firing"] == first.key
    Firings(db).claim(
        first.key, kind="alert", source="shop", pipeline="retrain",
        due_at=first.fired_at, cause=first.cause, holder="a",
    )  # fmt: skip
    assert [d.alert_id for d in due_alerts(db, BASE + HOUR_MS)] == [still_firing, resolved]
