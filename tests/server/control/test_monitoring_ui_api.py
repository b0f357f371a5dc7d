"""The monitoring JSON of the web UI, over the real rooms: a deployment served a drifted
hour, its monitor evaluated the window; the report carries drift per feature over time from
the stored evaluation, the latest window's reference-vs-current histograms, live metrics
per time bucket, and the alerts with their history. Bad input is a 400 naming the field."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from starlette.testclient import TestClient
from tests.monitoring.monitor_yard import END, HOUR_MS, RULES, Yard, sales, service, yard
from tests.server.conftest import assert_error

from modelyard.config import Settings
from modelyard.data.client import DataClient
from modelyard.monitoring import references
from modelyard.registry.client import RegistryClient
from modelyard.server.control.app import create_app
from modelyard.serving.deployments import DeploymentService
from modelyard.tracking.client import TrackingClient

__all__ = ["yard"]  # the fixture, used by name

REPORT = "/api/v1/monitoring/deployments/shop"
#: The monitor yard's rules and one per slice of ``promo``, so live metrics come per slice.
SLICED_RULES = RULES.replace(
    "notify:",
    '  - name: mae per promo\n    metric: {name: mae, above: 5.0, slice: "promo=*"}\nnotify:',
)


def _yard(tmp: Path) -> Yard:
    settings = Settings(home=tmp / "yard", user="ana")
    registry = references.recording_references(RegistryClient.from_settings(settings))
    return Yard(
        settings,
        TrackingClient.from_settings(settings),
        registry,
        DataClient(registry.db, registry.artifacts, settings),
        DeploymentService(registry.db, registry),
        tmp,
    )


@pytest.fixture(scope="module")
def drifted(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TestClient]:
    """One yard for the module (read-only tests): a drifted hour evaluated by a monitor."""
    yard = _yard(tmp_path_factory.mktemp("monitoring-ui"))
    try:
        yard.train()
        yard.deployments.create("shop", "models:/demand/1")
        current = sales(400, seed=7, price_shift=3.0)
        yard.serve(current, version=1, start_ms=END - HOUR_MS, prefix="r")
        yard.feedback(current, prefix="r")
        monitors = service(yard)
        monitors.create("shop-drift", "shop", schedule="*/15 * * * *", rules=SLICED_RULES)
        assert monitors.run("shop-drift", end_ms=END).evaluation.status == "breached"
        app = create_app(yard.settings, yard.tracking, registry=yard.registry)
        with TestClient(app) as client:
            yield client
    finally:
        yard.tracking.close()


def test_the_report_draws_drift_per_feature_from_the_stored_evaluation(
    drifted: TestClient,
) -> None:
    body = drifted.get(REPORT, params={"window": "1d", "end_ms": END}).json()
    assert body["deployment"] == "shop" and [m["name"] for m in body["monitors"]] == ["shop-drift"]
    charts = {c["title"]: c for c in body["drift_over_time"]}
    price = next(c for title, c in charts.items() if title.startswith("price ("))
    (line,) = price["lines"]
    assert [p[0] for p in line["points"]] == [END]  # one evaluated window, at its end
    assert price["threshold"] is not None
    assert "Share of features drifted" in charts


def test_the_latest_window_has_reference_and_current_histograms(drifted: TestClient) -> None:
    body = drifted.get(REPORT, params={"window": "1d", "end_ms": END}).json()
    columns = body["latest_drift"]["columns"]
    assert columns["price"]["drifted"] is True and columns["temperature"]["drifted"] is False
    histogram = columns["price"]["histogram"]
    assert len(histogram["labels"]) == len(histogram["reference"]) == len(histogram["current"])
    assert sum(histogram["reference"]) == pytest.approx(1.0)
    assert sum(histogram["current"]) == pytest.approx(1.0)


def test_live_metrics_come_per_bucket_from_the_prediction_log(drifted: TestClient) -> None:
    body = drifted.get(REPORT, params={"window": "1d", "end_ms": END, "step": "1h"}).json()
    charts = {c["title"]: c for c in body["metrics_over_time"]}
    (requests,) = charts["requests"]["lines"]
    assert sum(p[1] for p in requests["points"]) == 400
    assert "mae" in charts  # from the feedback, per bucket with its interval
    assert all(len(p) == 4 for line in charts["mae"]["lines"] for p in line["points"])
    names = [line["name"] for line in charts["mae"]["lines"]]
    assert "primary · version 1" in names  # all rows, and a line per promo value
    assert len([n for n in names if "promo" in n]) == 2, names


def test_alerts_come_with_their_history(drifted: TestClient) -> None:
    body = drifted.get(REPORT, params={"window": "1d", "end_ms": END}).json()
    firing = {a["rule"]: a for a in body["alerts"] if a["state"] == "firing"}
    assert {"input drift", "price drifted"} <= set(firing)
    events = drifted.get(f"/api/v1/monitoring/alerts/{firing['price drifted']['id']}/events")
    assert [e["state"] for e in events.json()["events"]][-1] == "firing"
    listed = drifted.get("/api/v1/monitoring/monitors").json()["monitors"]
    assert {a["rule"] for a in listed[0]["open_alerts"]} >= {"input drift", "price drifted"}


def test_evaluations_are_listed_newest_first_without_observations(drifted: TestClient) -> None:
    (evaluation,) = drifted.get(f"{REPORT}/evaluations").json()["evaluations"]
    assert evaluation["status"] == "breached" and evaluation["rows"] == 400
    assert evaluation["window_end"] == END and "observations" not in evaluation


def test_a_deployment_without_monitors_or_traffic_has_an_empty_report(yard: Yard) -> None:
    yard.train()
    yard.deployments.create("quiet", "models:/demand/1")
    with TestClient(create_app(yard.settings, yard.tracking, registry=yard.registry)) as client:
        body = client.get("/api/v1/monitoring/deployments/quiet").json()
    assert body["monitors"] == [] and body["drift_over_time"] == [] and body["alerts"] == []


@pytest.mark.parametrize(
    ("path", "params", "field"),
    [
        (REPORT, {"window": "0s"}, "window"),
        (REPORT, {"window": "40d"}, "window"),
        (REPORT, {"window": "soon"}, "window"),
        (REPORT, {"window": "1d", "step": "1s"}, "step"),
        (REPORT, {"end_ms": "-5"}, "end_ms"),
        (f"{REPORT}/evaluations", {"limit": "0"}, "limit"),
        (f"{REPORT}/evaluations", {"limit": "many"}, "limit"),
        ("/api/v1/monitoring/alerts/x1/events", {}, "id"),
    ],
)
def test_bad_input_is_refused_naming_the_field(
    drifted: TestClient, path: str, params: dict, field: str
) -> None:
    assert_error(drifted.get(path, params=params), 400, "INVALID_PARAMETER_VALUE", field)


def test_unknown_deployments_and_alerts_are_404(drifted: TestClient) -> None:
    assert_error(drifted.get("/api/v1/monitoring/deployments/nope"), 404, "RESOURCE_DOES_NOT_EXIST")
    assert_error(
        drifted.get("/api/v1/monitoring/alerts/999999/events"), 404, "RESOURCE_DOES_NOT_EXIST"
    )
