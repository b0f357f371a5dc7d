"""The control plane's monitoring gauges: drift, live metrics, coverage and alert states,
read from the store at scrape time, in Prometheus' text format (checked with
prometheus_client's own parser), and the Grafana panels that query them."""

from __future__ import annotations

import json
import re
from pathlib import Path

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.parser import text_string_to_metric_families

from modelyard.monitoring.observations import Observation
from modelyard.server.control.monitoring_metrics import (
    AlertState,
    LatestEvaluation,
    MonitoringCollector,
    drifted,
)

from ...monitoring.monitor_yard import yard

__all__ = ["yard"]  # the fixture, used by name
DASHBOARD = Path(__file__).parents[3] / "deploy" / "grafana-dashboard.json"
VERSION = (("model", "demand"), ("variant", "blue"), ("version", "3"))


def evaluation(*observations: Observation) -> LatestEvaluation:
    return LatestEvaluation("demand-drift", "demand", 1_700_000_000_000, list(observations))


def scrape(collector: MonitoringCollector) -> dict[str, list]:
    registry = CollectorRegistry()
    registry.register(collector)
    text = generate_latest(registry).decode()
    return {f.name: f.samples for f in text_string_to_metric_families(text)}


def test_each_observation_becomes_a_gauge_with_its_labels():
    reads = []

    def read():
        reads.append(1)
        return (
            [
                evaluation(
                    Observation("drift_share", 0.4, VERSION),
                    Observation(
                        "feature_drift",
                        0.31,
                        (*VERSION, ("feature", "price"), ("method", "wasserstein")),
                        threshold=0.1,
                    ),
                    Observation(
                        "feature_drift",
                        0.2,
                        (*VERSION, ("feature", "promo"), ("method", "ks")),
                        threshold=0.05,
                    ),
                    Observation("prediction_drift", 0.05, (*VERSION, ("method", "psi"))),
                    Observation(
                        "metric", 12.5, (*VERSION, ("metric", "mae"), ("slice", "region=north"))
                    ),
                    Observation("feedback_coverage", 0.25, VERSION),
                    Observation("metric", None, (*VERSION, ("metric", "rmse")), reason="none"),
                )
            ],
            [AlertState("demand-drift", "input drift", "warning", "firing")],
        )

    samples = scrape(MonitoringCollector(read))

    share = samples["modelyard_drift_share"][0]
    assert share.value == 0.4
    assert share.labels == {
        "monitor": "demand-drift",
        "deployment": "demand",
        "model": "demand",
        "version": "3",
        "variant": "blue",
    }
    scores = {s.labels["feature"]: s.value for s in samples["modelyard_feature_drift_score"]}
    assert scores == {"price": 0.31, "promo": 0.2}
    # A distance drifts above its threshold, a p-value below it.
    flags = {s.labels["feature"]: s.value for s in samples["modelyard_feature_drifted"]}
    assert flags == {"price": 1.0, "promo": 0.0}
    (mae,) = samples["modelyard_live_metric"]  # rmse is unknown: absent, not zero
    assert (mae.labels["metric"], mae.labels["slice"], mae.value) == ("mae", "region=north", 12.5)
    assert samples["modelyard_feedback_coverage"][0].value == 0.25
    assert samples["modelyard_prediction_drift_score"][0].labels["method"] == "psi"
    (alert,) = samples["modelyard_alert_state"]
    assert alert.value == 2 and alert.labels["rule"] == "input drift"
    assert samples["modelyard_monitor_last_evaluation_timestamp_seconds"][0].value == 1.7e9


def test_scrapes_within_the_cache_time_read_the_store_once():
    reads = []

    def read():
        reads.append(1)
        return [], []

    collector = MonitoringCollector(read, ttl_s=60)
    scrape(collector)
    scrape(collector)
    assert len(reads) == 1


def test_an_unknown_threshold_or_value_is_not_called_drifted_or_clean():
    assert drifted(Observation("feature_drift", 0.3, (("method", "psi"),))) is None
    assert drifted(Observation("feature_drift", None, (("method", "psi"),), threshold=0.1)) is None


def test_the_grafana_dashboard_queries_only_monitoring_gauges_that_exist():
    dashboard = json.loads(DASHBOARD.read_text())
    queried = {
        name
        for panel in dashboard["panels"]
        for target in panel.get("targets", [])
        for name in re.findall(
            r"modelyard_(?:drift|feature|prediction|live|feedback|alert)\w*", target["expr"]
        )
    }
    observations = [
        Observation("drift_share", 0.4, VERSION),
        Observation(
            "feature_drift", 0.3, (*VERSION, ("feature", "x"), ("method", "psi")), threshold=0.1
        ),
        Observation("prediction_drift", 0.05, (*VERSION, ("method", "psi"))),
        Observation("metric", 1.0, (*VERSION, ("metric", "mae"))),
        Observation("feedback_coverage", 0.5, VERSION),
    ]
    exported = set(
        scrape(
            MonitoringCollector(
                lambda: ([evaluation(*observations)], [AlertState("m", "r", "info", "pending")])
            )
        )
    )
    assert len(queried) == 6
    assert queried <= exported, queried - exported


def test_the_servers_metrics_show_a_monitors_latest_window_and_its_alerts(yard):
    """The whole path: a monitor evaluated over the stores, scraped through the app."""
    import anyio
    import httpx

    from modelyard.server.control.app import create_app

    from ...monitoring.monitor_yard import END, HOUR_MS, RULES, sales, service

    yard.train()
    yard.deployments.create("shop", "models:/demand/1")
    current = sales(300, seed=7, price_shift=3.0)
    yard.serve(current, version=1, start_ms=END - HOUR_MS, prefix="r")
    yard.feedback(current, prefix="r")
    monitors = service(yard)
    monitors.create("shop-drift", "shop", schedule="@hourly", rules=RULES)
    monitors.run("shop-drift", end_ms=END)
    app = create_app(yard.settings, yard.tracking, registry=yard.registry)

    async def scrape_app() -> str:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://yard") as http:
            return (await http.get("/metrics")).text

    text = anyio.run(scrape_app)
    samples = {f.name: f.samples for f in text_string_to_metric_families(text)}
    (share,) = samples["modelyard_drift_share"]
    assert share.labels["monitor"] == "shop-drift" and share.value > 0.3
    price = next(s for s in samples["modelyard_feature_drifted"] if s.labels["feature"] == "price")
    assert price.value == 1.0
    states = {s.labels["rule"]: s.value for s in samples["modelyard_alert_state"]}
    assert states["input drift"] == 2  # firing


def test_a_column_that_drifted_through_its_missing_rate_is_flagged_without_a_score():
    all_null = Observation(
        "feature_drift",
        None,
        (*VERSION, ("feature", "price"), ("method", "wasserstein"), ("drifted", "true")),
        threshold=0.1,
        reason="no current values: all null",
    )
    samples = scrape(MonitoringCollector(lambda: ([evaluation(all_null)], [])))
    (flag,) = samples["modelyard_feature_drifted"]
    assert flag.value == 1.0
    assert (
        "modelyard_feature_drift_score" not in samples
        or not samples["modelyard_feature_drift_score"]
    )
