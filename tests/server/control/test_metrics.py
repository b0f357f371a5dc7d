"""``/metrics``: Prometheus text exposition that a real Prometheus parser reads.

Scraped from a live server process before and after some traffic; counts are compared as
differences, since the session's server is shared with other tests.
"""

from __future__ import annotations

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import Mount, Route

from modelyard.server.control.metrics import LATENCY_BUCKETS, ServerMetrics

API = "/api/2.0/mlflow"


def scrape(http: httpx.Client) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """Every sample, keyed by (sample name, sorted labels)."""
    response = http.get("/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain; version=")
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(response.text)
        for s in family.samples
    }


def value(samples, name: str, **labels: str) -> float:
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)


def test_requests_are_counted_by_route_template_method_and_status(http, unique):
    before = scrape(http)
    experiment_id = http.post(f"{API}/experiments/create", json={"name": f"m-{unique}"}).json()[
        "experiment_id"
    ]
    run_id = http.post(f"{API}/runs/create", json={"experiment_id": experiment_id}).json()["run"][
        "info"
    ]["run_id"]
    for _ in range(2):
        assert http.get(f"{API}/runs/get", params={"run_id": run_id}).status_code == 200
    assert http.get(f"{API}/runs/get", params={"run_id": "f" * 32}).status_code == 404
    assert http.get(f"{API}/logged-models/m-{unique}").status_code == 404
    assert http.get(f"/no/such/{unique}").status_code == 404
    after = scrape(http)

    def delta(route: str, method: str, status: str) -> float:
        labels = {"route": route, "method": method, "status": status}
        return value(after, "modelyard_http_requests_total", **labels) - value(
            before, "modelyard_http_requests_total", **labels
        )

    assert delta(f"{API}/runs/create", "POST", "200") == 1
    assert delta(f"{API}/runs/get", "GET", "200") == 2
    assert delta(f"{API}/runs/get", "GET", "404") == 1
    assert delta(f"{API}/logged-models/{{model_id}}", "GET", "404") == 1  # the id is no label
    assert delta("unmatched", "GET", "404") == 1
    assert not any(unique in str(labels) for _, labels in after)
    assert delta("/metrics", "GET", "200") == 1  # the first scrape


def test_latency_is_a_histogram_with_buckets_up_to_60_seconds(http):
    http.get("/health")
    samples = scrape(http)
    route = {"route": "/health", "method": "GET"}
    buckets = {
        labels: v
        for (name, labels), v in samples.items()
        if name == "modelyard_http_request_duration_seconds_bucket"
        and dict(labels).items() >= route.items()
    }
    les = sorted(float(dict(labels)["le"]) for labels in buckets)
    assert les == [*LATENCY_BUCKETS, float("inf")] and max(LATENCY_BUCKETS) == 60.0
    count = value(samples, "modelyard_http_request_duration_seconds_count", **route)
    assert count >= 1 and buckets[tuple(sorted({**route, "le": "+Inf"}.items()))] == count
    assert 0 < value(samples, "modelyard_http_request_duration_seconds_sum", **route) < count


def test_in_flight_requests_include_the_scrape_itself(http):
    assert value(scrape(http), "modelyard_http_requests_in_flight") == 1


def test_ingested_metric_points_and_created_runs_are_counted(http, unique):
    before = scrape(http)
    experiment_id = http.post(f"{API}/experiments/create", json={"name": f"i-{unique}"}).json()[
        "experiment_id"
    ]
    run_ids = [
        http.post(f"{API}/runs/create", json={"experiment_id": experiment_id}).json()["run"][
            "info"
        ]["run_id"]
        for _ in range(2)
    ]
    points = [{"key": "loss", "value": 1.0 / (s + 1), "timestamp": 1, "step": s} for s in range(5)]
    batch = {"run_id": run_ids[0], "metrics": points, "params": [{"key": "p", "value": "1"}]}
    assert http.post(f"{API}/runs/log-batch", json=batch).status_code == 200
    one = {"run_id": run_ids[1], "key": "acc", "value": 0.5, "timestamp": 1, "step": 0}
    assert http.post(f"{API}/runs/log-metric", json=one).status_code == 200
    after = scrape(http)
    for name, expected in (
        ("modelyard_tracking_metric_points_total", 6),
        ("modelyard_tracking_runs_created_total", 2),
    ):
        assert value(after, name) - value(before, name) == expected, name
    assert value(after, "process_resident_memory_bytes") > 0


def test_openmetrics_is_served_when_the_scraper_asks(http):
    response = http.get("/metrics", headers={"Accept": "application/openmetrics-text"})
    assert response.headers["content-type"].startswith("application/openmetrics-text")
    assert response.text.rstrip().endswith("# EOF")


@pytest.mark.anyio
async def test_mounted_routes_are_labelled_with_the_mount_prefix():
    async def show(request: Request) -> Response:
        return PlainTextResponse(request.path_params["name"])

    metrics = ServerMetrics()
    app = Starlette(
        routes=[*metrics.routes(), Mount("/api/v1", routes=[Route("/models/{name}", show)])],
        middleware=[metrics.middleware()],
    )
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://yard") as http:
        assert (await http.get("/api/v1/models/churn")).text == "churn"
        assert (await http.post("/api/v1/models/churn")).status_code == 405
        samples = {
            tuple(sorted(s.labels.items())): s.value
            for family in text_string_to_metric_families((await http.get("/metrics")).text)
            for s in family.samples
            if s.name == "modelyard_http_requests_total"
        }
    route = "/api/v1/models/{name}"
    assert samples[(("method", "GET"), ("route", route), ("status", "200"))] == 1
    assert samples[(("method", "POST"), ("route", route), ("status", "405"))] == 1


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


def test_each_app_has_its_own_registry():
    first, second = ServerMetrics(), ServerMetrics()
    first.runs_created.inc()
    assert second.registry.get_sample_value("modelyard_tracking_runs_created_total") == 0
