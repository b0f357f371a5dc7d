"""Monitors, end to end over the real rooms: a model registered from a run that trained on a
dataset version gets its reference profiles at registration; a deployment serves it; the
prediction log and feedback of a window are evaluated against a rules file; alerts fire,
are stored once per window and reach the log; a second scheduler cannot evaluate the
same monitor at once; a version without a reference is reported as unknown, not as clean."""

from __future__ import annotations

import logging

import pytest

from modelyard.errors import Conflict, IntegrityViolation, NotFound
from modelyard.monitoring import references
from modelyard.monitoring.store import MonitorStore
from modelyard.store.leases import Leases

from .monitor_yard import END, FEATURES, HOUR_MS, RULES, sales, service, yard

__all__ = ["yard"]  # the fixture, used by name


def test_registering_a_version_trained_on_a_dataset_version_stores_its_reference_once(yard):
    version = yard.train()

    stored = MonitorStore(yard.registry.db).list_reference_profiles("demand")
    assert [(r.model_version, r.kind) for r in stored] == [(1, "input"), (1, "predictions")]
    assert {r.source for r in stored} >= {"sales@1"}
    inputs = references.load_reference(
        yard.registry.db, yard.registry.artifacts, "demand", version, "input"
    )
    assert list(inputs.columns) == FEATURES and inputs.rows == 3000
    predictions = references.load_reference(
        yard.registry.db, yard.registry.artifacts, "demand", version, "predictions"
    )
    assert list(predictions.columns) == ["prediction"]


def test_a_reference_whose_bytes_changed_is_refused(yard):
    yard.train()
    record = MonitorStore(yard.registry.db).get_reference_profile("demand", 1, "input")
    other = references.load_reference(
        yard.registry.db, yard.registry.artifacts, "demand", 1, "predictions"
    )
    yard.registry.artifacts.log_bytes(record.artifact_path, other.to_bytes())
    with pytest.raises(IntegrityViolation, match="changed after it was stored"):
        references.load_reference(yard.registry.db, yard.registry.artifacts, "demand", 1, "input")


def test_a_drifted_window_fires_alerts_once_and_records_the_evaluation(yard, caplog):
    yard.train()
    yard.deployments.create("shop", "models:/demand/1")
    current = sales(400, seed=7, price_shift=3.0)  # prices up 1.5 σ
    yard.serve(current, version=1, start_ms=END - HOUR_MS, prefix="r")
    yard.feedback(current, prefix="r")
    monitors = service(yard)
    monitors.create("shop-drift", "shop", schedule="*/15 * * * *", rules=RULES)

    with caplog.at_level(logging.INFO, logger="modelyard.monitoring.alerts"):
        run = monitors.run("shop-drift", end_ms=END)

    assert run.created and run.evaluation.status == "breached"
    outcomes = {(o["rule"], o["labels"].get("feature")): o for o in run.evaluation.outcomes}
    assert outcomes[("price drifted", "price")]["breached"] is True
    assert outcomes[("input drift", None)]["breached"] is True
    assert outcomes[("coverage", None)]["breached"] is False  # half the rows have feedback
    firing = {t.alert.rule for t in run.transitions if t.state == "firing"}
    assert {"input drift", "price drifted"} <= firing
    assert "firing" in caplog.text and "price drifted" in caplog.text
    coverage = next(o for o in run.evaluation.observations if o.name == "feedback_coverage")
    assert coverage.value == pytest.approx(0.5)
    mae = next(
        o
        for o in run.evaluation.observations
        if o.name == "metric" and o.label("metric") == "mae" and o.label("slice") is None
    )
    # A linear model on the same relation: the live error is the noise's, about 0.8.
    assert 0.4 < mae.value < 1.5 and mae.count == 200

    again = monitors.run("shop-drift", end_ms=END)
    assert not again.created and again.transitions == []
    assert again.evaluation.id == run.evaluation.id
    assert [e.window_end for e in monitors.store.evaluations("shop-drift")] == [END]


def test_an_undrifted_window_is_ok_and_raises_no_alert(yard):
    yard.train()
    yard.deployments.create("shop", "models:/demand/1")
    current = sales(400, seed=8)
    yard.serve(current, version=1, start_ms=END - HOUR_MS, prefix="r")
    yard.feedback(current, prefix="r")
    monitors = service(yard)
    monitors.create("shop-drift", "shop", schedule="@hourly", rules=RULES)

    run = monitors.run("shop-drift", end_ms=END)

    assert run.evaluation.status == "ok", run.evaluation.outcomes
    assert run.transitions == []


def test_a_version_without_a_reference_is_unknown_with_the_reason_never_clean(yard):
    yard.train(log_dataset=False)
    yard.deployments.create("shop", "models:/demand/1")
    yard.serve(sales(50, seed=9), version=1, start_ms=END - HOUR_MS, prefix="r")
    monitors = service(yard)
    monitors.create("shop-drift", "shop", schedule="@hourly", rules=RULES)

    run = monitors.run("shop-drift", end_ms=END)

    drift = next(o for o in run.evaluation.outcomes if o["rule"] == "input drift")
    assert drift["breached"] is None
    assert "logged no training dataset version" in drift["detail"]
    assert run.evaluation.status in ("unknown", "breached")  # coverage 0 may breach
    assert "monitor reference models:/demand/1" in (run.evaluation.detail or "")


def test_an_empty_window_is_unknown_not_ok(yard):
    yard.train()
    yard.deployments.create("shop", "models:/demand/1")
    monitors = service(yard)
    monitors.create("shop-drift", "shop", schedule="@hourly", rules=RULES)

    run = monitors.run("shop-drift", end_ms=END)

    assert run.evaluation.status == "unknown"
    assert all(o["breached"] is None for o in run.evaluation.outcomes)


def test_a_monitor_held_by_another_scheduler_is_not_evaluated_twice(yard):
    yard.train()
    yard.deployments.create("shop", "models:/demand/1")
    monitors = service(yard, holder="scheduler-a")
    monitors.create("shop-drift", "shop", schedule="@hourly", rules=RULES)
    held = Leases(yard.registry.db).acquire("monitor:shop-drift", "scheduler-b", ttl_s=60)
    assert held is not None

    with pytest.raises(Conflict, match="scheduler-b"):
        monitors.run("shop-drift", end_ms=END)
    assert monitors.store.evaluations("shop-drift") == []


def test_a_monitor_of_an_unknown_deployment_is_refused(yard):
    with pytest.raises(NotFound, match="nope"):
        service(yard).create("m", "nope", schedule="@hourly", rules=RULES)


def test_a_version_trained_on_a_feature_store_training_set_is_unknown_with_the_reason(yard):
    from modelyard.tracking.entities import DatasetInput

    training_set = DatasetInput(
        name="demand", digest="ab" * 16, context="training", source_type="feature_store",
        source="training_set:7",
    )  # fmt: skip
    yard.train(log_dataset=False, inputs=(training_set,))
    yard.deployments.create("shop", "models:/demand/1")
    yard.serve(sales(50, seed=9), version=1, start_ms=END - HOUR_MS, prefix="r")
    monitors = service(yard)
    monitors.create("shop-drift", "shop", schedule="@hourly", rules=RULES)

    run = monitors.run("shop-drift", end_ms=END)

    drift = next(o for o in run.evaluation.outcomes if o["rule"] == "input drift")
    assert drift["breached"] is None
    assert "feature-store training set keeps no rows" in drift["detail"]
