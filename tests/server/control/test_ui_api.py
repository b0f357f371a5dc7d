"""What the web UI reads beyond the MLflow and native APIs, through a real server: metric
histories down-sampled on the server, a run's files served so they can never run as
pages of the server's origin, and Parquet heads."""

from __future__ import annotations

import io

import httpx
import pytest
from tests.server.conftest import assert_error

V1 = "/api/v1"
ARTIFACTS = "/api/2.0/mlflow-artifacts/artifacts"


@pytest.fixture
def run(http: httpx.Client, unique: str) -> dict:
    experiment = http.post(f"{V1}/experiments", json={"name": f"ui-api-{unique}"}).json()
    created = http.post(f"{V1}/runs", json={"experiment_id": experiment["experiment_id"]})
    assert created.status_code == 201, created.text
    return created.json()


def log_points(http: httpx.Client, run_id: str, key: str, values: list[float | str]) -> None:
    for start in range(0, len(values), 1000):
        metrics = [
            {"key": key, "value": v, "step": s, "timestamp": 1_700_000_000_000 + 10 * s}
            for s, v in enumerate(values[start : start + 1000], start)
        ]
        response = http.post(f"{V1}/runs/{run_id}/batch", json={"metrics": metrics})
        assert response.status_code == 200, response.text


def put_artifact(http: httpx.Client, run: dict, name: str, body: bytes) -> None:
    root = run["artifact_uri"].removeprefix("mlflow-artifacts:/")
    assert http.put(f"{ARTIFACTS}/{root}/{name}", content=body).status_code == 200


def samples(http: httpx.Client, run_id: str, **params: object) -> httpx.Response:
    return http.get(f"{V1}/runs/{run_id}/metric-samples", params=params)


def test_a_long_history_comes_down_sampled_with_its_spike(http: httpx.Client, run: dict) -> None:
    values: list[float | str] = [float(s % 100) for s in range(20_000)]
    values[12_345] = 1000.0
    log_points(http, run["run_id"], "loss", values)
    body = samples(http, run["run_id"], key="loss", max_points=500).json()
    assert body["total"] == 20_000 and body["x"] == "step"
    assert len(body["step"]) == len(body["timestamp"]) == len(body["value"]) == 500
    assert body["step"][0] == 0 and body["step"][-1] == 19_999
    assert 1000.0 in body["value"] and 12_345 in body["step"]
    assert body["step"] == sorted(body["step"])


def test_a_short_history_comes_whole_and_non_finite_values_are_counted(
    http: httpx.Client, run: dict
) -> None:
    log_points(http, run["run_id"], "acc", [0.5, "NaN", 0.7, "Infinity"])
    body = samples(http, run["run_id"], key="acc").json()
    assert body["value"] == [0.5, 0.7] and body["step"] == [0, 2]
    assert body["total"] == 4 and body["non_finite"] == 2


def test_the_time_axis_samples_in_time_order(http: httpx.Client, run: dict) -> None:
    metrics = [
        {"key": "t", "value": float(v), "step": s, "timestamp": ts}
        for s, (v, ts) in enumerate([(1, 3000), (2, 1000), (3, 2000)])
    ]
    http.post(f"{V1}/runs/{run['run_id']}/batch", json={"metrics": metrics})
    body = samples(http, run["run_id"], key="t", x="timestamp").json()
    assert body["timestamp"] == [1000, 2000, 3000] and body["value"] == [2.0, 3.0, 1.0]


def test_polling_a_history_is_a_304_until_the_run_changes(http: httpx.Client, run: dict) -> None:
    log_points(http, run["run_id"], "loss", [1.0, 0.5])
    first = samples(http, run["run_id"], key="loss")
    etag = first.headers["etag"]
    assert first.headers["cache-control"] == "private, no-cache"
    unchanged = http.get(
        f"{V1}/runs/{run['run_id']}/metric-samples",
        params={"key": "loss"},
        headers={"If-None-Match": etag},
    )
    assert unchanged.status_code == 304 and unchanged.content == b""
    other_key = samples(http, run["run_id"], key="acc")
    assert other_key.headers["etag"] != etag  # another query, another tag
    log_points(http, run["run_id"], "other", [3.0])  # any write to the run moves it
    moved = http.get(
        f"{V1}/runs/{run['run_id']}/metric-samples",
        params={"key": "loss"},
        headers={"If-None-Match": etag},
    )
    assert moved.status_code == 200 and moved.headers["etag"] != etag


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({}, "key"),
        ({"key": "loss", "max_points": "many"}, "max_points"),
        ({"key": "loss", "max_points": 2}, "max_points"),
        ({"key": "loss", "max_points": 10**6}, "max_points"),
        ({"key": "loss", "x": "epoch"}, "x"),
        ({"key": "bad\u0000key"}, "metric key"),
    ],
)
def test_bad_sample_requests_name_the_field(
    http: httpx.Client, run: dict, params: dict, field: str
) -> None:
    assert_error(samples(http, run["run_id"], **params), 400, "INVALID_PARAMETER_VALUE", field)


def test_samples_of_a_missing_run_are_a_404(http: httpx.Client) -> None:
    response = samples(http, "0123456789abcdef0123456789abcdef", key="loss")
    assert_error(response, 404, "RESOURCE_DOES_NOT_EXIST")
    assert_error(samples(http, "../x", key="loss"), 404, "ENDPOINT_NOT_FOUND")


def test_an_html_artifact_is_served_as_a_download_that_cannot_run(
    http: httpx.Client, run: dict
) -> None:
    page = b"<script>alert(document.cookie)</script>"
    put_artifact(http, run, "report.html", page)
    response = http.get(
        f"{V1}/runs/{run['run_id']}/artifact-content", params={"path": "report.html"}
    )
    assert response.status_code == 200 and response.content == page
    assert response.headers["content-disposition"] == "attachment"
    assert response.headers["content-security-policy"].startswith("sandbox")
    assert response.headers["x-content-type-options"] == "nosniff"


def test_the_mlflow_artifact_proxy_serves_files_sandboxed_too(
    http: httpx.Client, run: dict
) -> None:
    """Opened directly in the browser, an HTML artifact gets an opaque origin: its scripts
    cannot read the UI's token from this origin's storage."""
    put_artifact(http, run, "page.html", b"<script>alert(sessionStorage.length)</script>")
    root = run["artifact_uri"].removeprefix("mlflow-artifacts:/")
    response = http.get(f"{ARTIFACTS}/{root}/page.html")
    assert response.status_code == 200 and response.headers["content-type"].startswith("text/html")
    assert response.headers["content-security-policy"] == "sandbox"
    assert response.headers["x-content-type-options"] == "nosniff"


@pytest.mark.parametrize(
    ("path", "status", "field"),
    [("../../etc/passwd", 400, "path"), ("", 400, "path"), ("missing.txt", 404, "path")],
)
def test_bad_artifact_paths_are_refused(
    http: httpx.Client, run: dict, path: str, status: int, field: str
) -> None:
    response = http.get(f"{V1}/runs/{run['run_id']}/artifact-content", params={"path": path})
    code = "INVALID_PARAMETER_VALUE" if status == 400 else "RESOURCE_DOES_NOT_EXIST"
    assert_error(response, status, code, field)


def test_a_parquet_head_comes_as_columns_and_rows(http: httpx.Client, run: dict) -> None:
    pa = pytest.importorskip("pyarrow")
    pq = pytest.importorskip("pyarrow.parquet")
    buffer = io.BytesIO()
    table = pa.table({"sku": [f"s{i}" for i in range(300)], "units": list(range(300))})
    pq.write_table(table, buffer)
    put_artifact(http, run, "data/sales.parquet", buffer.getvalue())
    url = f"{V1}/runs/{run['run_id']}/artifact-table"
    body = http.get(url, params={"path": "data/sales.parquet", "rows": 5}).json()
    assert body == {
        "columns": ["sku", "units"],
        "rows": [["s0", 0], ["s1", 1], ["s2", 2], ["s3", 3], ["s4", 4]],
        "total_rows": 300,
    }
    put_artifact(http, run, "notes.txt", b"not a table")
    refused = http.get(url, params={"path": "notes.txt"})
    assert_error(refused, 400, "INVALID_PARAMETER_VALUE", "path")
    put_artifact(http, run, "broken.parquet", b"PAR1 this is not parquet")
    broken = http.get(url, params={"path": "broken.parquet"})
    assert (
        "not a readable Parquet file"
        in assert_error(broken, 400, "INVALID_PARAMETER_VALUE", "path")["message"]
    )
