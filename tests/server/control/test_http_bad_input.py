"""Bad requests get a 4xx JSON error naming the field, never a 5xx (which the MLflow client
retries for minutes) and never an HTML page; they change nothing."""

from __future__ import annotations

import socket
import time
from pathlib import Path

import pytest
from tests.server.conftest import assert_error

RUNS = "/api/2.0/mlflow/runs"
ARTIFACTS = "/api/2.0/mlflow-artifacts/artifacts"


@pytest.fixture
def run_id(http, unique) -> str:
    experiment_id = http.post(
        "/api/2.0/mlflow/experiments/create", json={"name": f"bad-{unique}"}
    ).json()["experiment_id"]
    run = http.post(f"{RUNS}/create", json={"experiment_id": experiment_id}).json()["run"]
    return run["info"]["run_id"]


def wait_until(condition, timeout_s: float = 10.0) -> bool:
    deadline = time.monotonic() + timeout_s
    while not condition():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.02)
    return True


@pytest.mark.parametrize(
    ("body", "field", "needle"),
    [
        ({"metrics": [{"key": "m", "value": [1], "timestamp": 1}]}, "metrics[0].value", "number"),
        ({"metrics": [{"key": "m", "value": 1, "timestamp": "soon"}]}, "metrics[0].timestamp", ""),
        (
            {"metrics": [{"key": "m", "value": 1, "timestamp": 1, "step": 1.5}]},
            "metrics[0].step",
            "",
        ),
        ({"metrics": [{"value": 1, "timestamp": 1}]}, "metrics[0].key", "Missing value"),
        ({"metrics": {"key": "m"}}, "metrics", "list"),
        ({"params": [{"key": "p", "value": 5}]}, "params[0].value", "string"),
        ({"params": [{"key": "bad key!", "value": "1"}]}, "param key", "bad key!"),
        ({"tags": ["team"]}, "tags[0]", "object"),
    ],
)
def test_wrong_types_in_a_batch_name_the_field(http, run_id, body, field, needle):
    response = http.post(f"{RUNS}/log-batch", json={"run_id": run_id, **body})
    error = assert_error(response, 400, "INVALID_PARAMETER_VALUE", field)
    assert needle in error["message"] and field in error["message"]
    run = http.get(f"{RUNS}/get", params={"run_id": run_id}).json()["run"]
    assert "metrics" not in run["data"] and "params" not in run["data"]


@pytest.mark.parametrize(
    ("content", "needle"),
    [
        (b'{"run_id": ', "not valid JSON"),
        (b"[1, 2]", "JSON object"),
        (b'"text"', "JSON object"),
        (b"\xff\xfe\x00", "not valid JSON"),
    ],
)
def test_malformed_json_is_a_bad_request(http, content, needle):
    response = http.post(
        f"{RUNS}/log-batch", content=content, headers={"Content-Type": "application/json"}
    )
    assert needle in assert_error(response, 400, "BAD_REQUEST", "body")["message"]


def test_missing_and_mistyped_top_level_fields(http, run_id):
    assert_error(
        http.post(f"{RUNS}/log-metric", json={"key": "m", "value": 1}),
        400,
        "INVALID_PARAMETER_VALUE",
        "run_id",
    )
    assert_error(
        http.post("/api/2.0/mlflow/experiments/create", json={"name": 5}),
        400,
        "INVALID_PARAMETER_VALUE",
        "name",
    )
    assert_error(
        http.post("/api/2.0/mlflow/experiments/create", json={}),
        400,
        "INVALID_PARAMETER_VALUE",
        "name",
    )
    assert_error(
        http.get(
            "/api/2.0/mlflow/metrics/get-history",
            params={"run_id": run_id, "metric_key": "m", "max_results": "lots"},
        ),
        400,
        "INVALID_PARAMETER_VALUE",
        "max_results",
    )
    assert_error(
        http.post(f"{RUNS}/search", json={"experiment_ids": ["0"], "max_results": 0}),
        400,
        "INVALID_PARAMETER_VALUE",
        "max_results",
    )
    assert_error(
        http.post(f"{RUNS}/update", json={"run_id": run_id, "status": "DONE"}),
        400,
        "INVALID_PARAMETER_VALUE",
        "status",
    )
    assert_error(
        http.post(f"{RUNS}/search", json={"experiment_ids": [[1]]}),
        400,
        "INVALID_PARAMETER_VALUE",
        "experiment_ids[0]",
    )


@pytest.mark.parametrize(
    ("path", "body", "field"),
    [
        (f"{RUNS}/create", {"experiment_id": "0", "start_time": 10**30}, "start_time"),
        (f"{RUNS}/create", {"experiment_id": "9" * 30}, None),
        (f"{RUNS}/search", {"experiment_ids": ["9" * 30]}, None),
        (f"{RUNS}/log-metric", {"key": "m", "value": 1, "timestamp": 1, "step": -(2**70)}, "step"),
    ],
)
def test_numbers_past_int64_are_400_not_500(http, run_id, path, body, field):
    response = http.post(path, json={"run_id": run_id, **body})
    assert "out of range" in response.text or "64-bit" in response.text
    assert_error(response, 400, "INVALID_PARAMETER_VALUE", field)


def test_unknown_entities_are_404(http):
    unknown = "0123456789abcdef0123456789abcdef"
    assert_error(
        http.get(f"{RUNS}/get", params={"run_id": unknown}),
        404,
        "RESOURCE_DOES_NOT_EXIST",
        "run_id",
    )
    assert_error(
        http.post(
            f"{RUNS}/log-metric", json={"run_id": unknown, "key": "m", "value": 1, "timestamp": 1}
        ),
        404,
        "RESOURCE_DOES_NOT_EXIST",
        "run_id",
    )
    assert_error(
        http.get("/api/2.0/mlflow/experiments/get", params={"experiment_id": "98765"}),
        404,
        "RESOURCE_DOES_NOT_EXIST",
        "experiment_id",
    )
    body = assert_error(
        http.get("/api/2.0/mlflow/experiments/get-by-name", params={"experiment_name": "nope"}),
        404,
        "RESOURCE_DOES_NOT_EXIST",
    )
    assert "nope" in body["message"]
    assert_error(
        http.get(f"{ARTIFACTS}/0/{unknown}/artifacts/x.txt"), 404, "RESOURCE_DOES_NOT_EXIST", "path"
    )


@pytest.mark.parametrize(
    "path",
    [
        "/api/2.0/mlflow/runs/frobnicate",
        "/api/2.0/nothing",
        "/ajax-api/2.0/mlflow/x",
        "/nope",
        "/api/2.0/mlflow-artifacts/other",
    ],
)
def test_unknown_routes_are_json_404(http, path):
    assert_error(http.get(path), 404, "ENDPOINT_NOT_FOUND")
    assert_error(http.post(path, json={}), 404, "ENDPOINT_NOT_FOUND")


def test_a_wrong_method_is_a_json_405(http):
    response = http.get(f"{RUNS}/create")
    assert_error(response, 405, "BAD_REQUEST")
    assert "POST" in response.headers["allow"]


def test_duplicates_and_conflicts_are_4xx(http, run_id, unique):
    assert_error(
        http.post("/api/2.0/mlflow/experiments/create", json={"name": f"bad-{unique}"}),
        400,
        "RESOURCE_ALREADY_EXISTS",
        "name",
    )
    http.post(f"{RUNS}/log-parameter", json={"run_id": run_id, "key": "p", "value": "1"})
    assert_error(
        http.post(f"{RUNS}/log-parameter", json={"run_id": run_id, "key": "p", "value": "2"}),
        400,
        "INVALID_PARAMETER_VALUE",
        "params.p",
    )
    assert_error(
        http.post("/api/2.0/mlflow/experiments/delete", json={"experiment_id": "0"}),
        400,
        "INVALID_PARAMETER_VALUE",
        "experiment_id",
    )


def test_batch_limits(http, run_id):
    metrics = [{"key": "m", "value": 1, "timestamp": 1, "step": i} for i in range(1001)]
    assert_error(
        http.post(f"{RUNS}/log-batch", json={"run_id": run_id, "metrics": metrics}),
        400,
        "INVALID_PARAMETER_VALUE",
        "metrics",
    )
    params = [{"key": f"p{i}", "value": "v"} for i in range(101)]
    assert_error(
        http.post(f"{RUNS}/log-batch", json={"run_id": run_id, "params": params}),
        400,
        "INVALID_PARAMETER_VALUE",
        "params",
    )


def test_a_body_over_the_limit_is_a_400_naming_it(http, run_id):
    huge = {"run_id": run_id, "tags": [{"key": "t", "value": "x" * (2 << 20)}]}
    body = assert_error(http.post(f"{RUNS}/log-batch", json=huge), 400, "BAD_REQUEST", "body")
    assert "1048576" in body["message"]


def test_the_ajax_prefix_speaks_the_same_api(http, run_id):
    run = http.get(f"/ajax-api/2.0/mlflow/runs/get?run_id={run_id}").json()["run"]
    assert run["info"]["run_uuid"] == run["info"]["run_id"] == run_id


def test_replaying_a_batch_adds_no_duplicates(http, run_id):
    batch = {
        "run_id": run_id,
        "metrics": [
            {"key": "loss", "value": 1 / (i + 1), "timestamp": 1000 + i, "step": i}
            for i in range(200)
        ]
        + [
            {"key": "odd", "value": v, "timestamp": 5, "step": 0}
            for v in ("NaN", "Infinity", "-Infinity")
        ],
        "params": [{"key": "lr", "value": "0.1"}],
        "tags": [{"key": "team", "value": "a"}],
    }
    for _ in range(3):  # e.g. a client retrying after a lost answer
        response = http.post(f"{RUNS}/log-batch", json=batch)
        assert response.status_code == 200 and response.json() == {}
    history = http.get(
        "/api/2.0/mlflow/metrics/get-history", params={"run_id": run_id, "metric_key": "loss"}
    ).json()["metrics"]
    assert [m["step"] for m in history] == list(range(200))
    odd = http.get(
        "/api/2.0/mlflow/metrics/get-history", params={"run_id": run_id, "metric_key": "odd"}
    ).json()["metrics"]
    assert sorted(m["value"] for m in odd) == ["-Infinity", "Infinity", "NaN"]


def test_history_pages(http, run_id):
    metrics = [{"key": "m", "value": i, "timestamp": 1, "step": i} for i in range(5)]
    http.post(f"{RUNS}/log-batch", json={"run_id": run_id, "metrics": metrics})
    seen, token = [], None
    while True:
        params = {"run_id": run_id, "metric_key": "m", "max_results": "2"}
        page = http.get(
            "/api/2.0/mlflow/metrics/get-history",
            params={**params, **({"page_token": token} if token else {})},
        ).json()
        seen += [m["step"] for m in page["metrics"]]
        token = page.get("next_page_token")
        if not token:
            break
    assert seen == [0, 1, 2, 3, 4]


class TestArtifactProxy:
    def test_put_get_list_delete(self, http, run_id):
        root = f"0/{run_id}/artifacts"
        assert http.get(ARTIFACTS, params={"path": root}).json() == {}
        assert http.put(f"{ARTIFACTS}/{root}/dir/a.txt", content=b"hello").json() == {}
        got = http.get(f"{ARTIFACTS}/{root}/dir/a.txt")
        assert got.content == b"hello" and got.headers["content-type"].startswith("text/plain")
        assert http.get(ARTIFACTS, params={"path": root}).json() == {
            "files": [{"path": "dir", "is_dir": True}]
        }
        assert http.get(ARTIFACTS, params={"path": f"{root}/dir"}).json() == {
            "files": [{"path": "a.txt", "is_dir": False, "file_size": 5}]
        }
        assert http.delete(f"{ARTIFACTS}/{root}/dir").json() == {}
        assert http.delete(f"{ARTIFACTS}/{root}/dir").json() == {}  # idempotent
        assert http.get(f"{ARTIFACTS}/{root}/dir/a.txt").status_code == 404

    def test_bad_paths_are_400(self, http, run_id):
        root = f"0/{run_id}/artifacts"
        http.put(f"{ARTIFACTS}/{root}/file.txt", content=b"x")
        assert_error(
            http.put(f"{ARTIFACTS}/{root}/file.txt/below.txt", content=b"y"),
            400,
            "INVALID_PARAMETER_VALUE",
            "path",
        )
        assert_error(
            http.put(f"{ARTIFACTS}/{root}/a%2F%2Fb", content=b"y"),
            400,
            "INVALID_PARAMETER_VALUE",
            "path",
        )

    def test_a_client_vanishing_mid_upload_leaves_nothing(self, live_server, http, run_id):
        path = f"{ARTIFACTS}/0/{run_id}/artifacts/partial.bin"
        blobs = Path(live_server.home) / "artifacts" / "blobs"
        before = sorted(p for p in blobs.rglob("*") if p.is_file())
        tmp = Path(live_server.home) / "artifacts" / "tmp"
        host, port = live_server.url.removeprefix("http://").split(":")
        with socket.create_connection((host, int(port))) as sock:
            sock.sendall(
                f"PUT {path} HTTP/1.1\r\nHost: {host}\r\nContent-Length: {10 << 20}\r\n"
                "Content-Type: application/octet-stream\r\n\r\n".encode()
            )
            sock.sendall(b"\x01" * (3 << 20))
            assert wait_until(lambda: any(tmp.iterdir())), "the upload never started spooling"
        assert wait_until(lambda: not any(tmp.iterdir()))
        assert not any(tmp.iterdir()), "the spool file of the aborted upload is still there"
        assert http.get(path).status_code == 404
        assert sorted(p for p in blobs.rglob("*") if p.is_file()) == before
        assert "Traceback" not in live_server.log_text()
