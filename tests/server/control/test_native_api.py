"""The native ``/api/v1`` API, through a real server process: resources, paging, idempotent
batches, and bad input answered with a 4xx naming the field (never a 5xx)."""

from __future__ import annotations

import math

import pytest
from tests.server.conftest import assert_error

from modelyard.server.control.native_api import OPERATIONS, field_name
from modelyard.server.control.native_models import BatchIn

V1 = "/api/v1"


@pytest.fixture
def experiment(http, unique) -> dict:
    response = http.post(f"{V1}/experiments", json={"name": f"native-{unique}"})
    assert response.status_code == 201, response.text
    return response.json()


@pytest.fixture
def run(http, experiment) -> dict:
    response = http.post(f"{V1}/runs", json={"experiment_id": experiment["experiment_id"]})
    assert response.status_code == 201, response.text
    return response.json()


def point(key: str, value: float | str, step: int, timestamp: int = 1_700_000_000_000) -> dict:
    return {"key": key, "value": value, "step": step, "timestamp": timestamp}


# -- experiments ------------------------------------------------------------------------


def test_an_experiment_is_created_read_renamed_deleted_and_restored(http, unique):
    created = http.post(
        f"{V1}/experiments", json={"name": f"crud-{unique}", "tags": {"team": "retail"}}
    )
    assert created.status_code == 201
    experiment = created.json()
    path = f"{V1}/experiments/{experiment['experiment_id']}"
    assert experiment["tags"] == {"team": "retail"}
    assert experiment["lifecycle_stage"] == "active"
    assert http.get(path).json() == experiment

    renamed = http.patch(path, json={"name": f"crud-{unique}-v2"})
    assert renamed.status_code == 200 and renamed.json()["name"] == f"crud-{unique}-v2"

    deleted = http.delete(path)
    assert deleted.status_code == 204 and deleted.content == b""
    assert http.get(path).json()["lifecycle_stage"] == "deleted"
    active = http.get(f"{V1}/experiments", params={"name_like": f"crud-{unique}%"}).json()
    assert active["experiments"] == []
    gone = http.get(
        f"{V1}/experiments", params={"name_like": f"crud-{unique}%", "view_type": "DELETED_ONLY"}
    ).json()
    assert [e["experiment_id"] for e in gone["experiments"]] == [experiment["experiment_id"]]

    restored = http.post(f"{path}/restore")
    assert restored.status_code == 200 and restored.json()["lifecycle_stage"] == "active"


def test_experiment_names_are_unique(http, experiment):
    again = http.post(f"{V1}/experiments", json={"name": experiment["name"]})
    assert_error(again, 400, "RESOURCE_ALREADY_EXISTS", "name")


def test_experiments_are_listed_page_by_page(http, unique):
    ids = [
        http.post(f"{V1}/experiments", json={"name": f"page-{unique}-{i}"}).json()["experiment_id"]
        for i in range(5)
    ]
    seen: list[str] = []
    token = None
    pages = 0
    while True:
        params = {"name_like": f"page-{unique}-%", "max_results": 2}
        if token:
            params["page_token"] = token
        page = http.get(f"{V1}/experiments", params=params).json()
        seen += [e["experiment_id"] for e in page["experiments"]]
        pages += 1
        token = page["next_page_token"]
        if token is None:
            break
    assert seen == ids and pages == 3


def test_the_default_experiment_cannot_be_deleted(http):
    assert_error(http.delete(f"{V1}/experiments/0"), 400, "INVALID_PARAMETER_VALUE")


# -- runs -------------------------------------------------------------------------------


def test_a_run_is_created_renamed_ended_deleted_and_restored(http, experiment):
    created = http.post(
        f"{V1}/runs",
        json={
            "experiment_id": experiment["experiment_id"],
            "name": "baseline",
            "tags": {"model": "gbm"},
            "start_time": 1_700_000_000_000,
        },
    ).json()
    assert created["status"] == "RUNNING" and created["end_time"] is None
    assert created["name"] == "baseline" and created["tags"]["model"] == "gbm"
    assert created["start_time"] == 1_700_000_000_000
    path = f"{V1}/runs/{created['run_id']}"
    assert http.get(path).json() == created

    renamed = http.patch(path, json={"name": "baseline-2"}).json()
    assert renamed["name"] == "baseline-2" and renamed["status"] == "RUNNING"
    ended = http.patch(path, json={"status": "FINISHED"}).json()
    assert ended["status"] == "FINISHED" and ended["end_time"] >= created["start_time"]

    assert http.delete(path).status_code == 204
    assert http.get(path).json()["lifecycle_stage"] == "deleted"
    restored = http.post(f"{path}/restore")
    assert restored.status_code == 200 and restored.json()["lifecycle_stage"] == "active"


def test_a_child_run_names_its_parent(http, experiment, run):
    child = http.post(
        f"{V1}/runs",
        json={"experiment_id": experiment["experiment_id"], "parent_run_id": run["run_id"]},
    ).json()
    assert child["parent_run_id"] == run["run_id"]
    elsewhere = http.post(f"{V1}/runs", json={"experiment_id": "0", "parent_run_id": run["run_id"]})
    assert_error(elsewhere, 400, "INVALID_PARAMETER_VALUE", "parent_run_id")


def test_a_run_in_a_missing_experiment_is_a_404(http):
    missing = http.post(f"{V1}/runs", json={"experiment_id": "987654321"})
    assert_error(missing, 404, "RESOURCE_DOES_NOT_EXIST", "experiment_id")


# -- logging ----------------------------------------------------------------------------


def test_a_batch_is_logged_and_read_back(http, run):
    path = f"{V1}/runs/{run['run_id']}"
    batch = {
        "metrics": [point("rmse", 0.5, 0), point("rmse", 0.25, 1), point("nan", "NaN", 0)],
        "params": {"lr": "0.1", "depth": "6"},
        "tags": {"stage": "tuning"},
    }
    answer = http.post(f"{path}/batch", json=batch)
    assert answer.status_code == 200
    assert answer.json() == {"metrics": 3, "params": 2, "tags": 1}
    logged = http.get(path).json()
    assert logged["params"] == {"lr": "0.1", "depth": "6"}
    assert logged["tags"]["stage"] == "tuning"
    assert logged["metrics"]["rmse"] == {"value": 0.25, "step": 1, "timestamp": 1_700_000_000_000}
    assert logged["metrics"]["nan"]["value"] == "NaN"


def test_a_replayed_batch_stores_each_point_once(http, run):
    path = f"{V1}/runs/{run['run_id']}"
    batch = {
        "metrics": [point("loss", 1 / (i + 1), i) for i in range(50)],
        "params": {"lr": "0.1"},
        "tags": {"stage": "a"},
    }
    for _ in range(3):  # a client retrying after lost answers
        assert http.post(f"{path}/batch", json=batch).status_code == 200
    history = http.get(f"{path}/metrics/loss").json()
    assert [p["step"] for p in history["points"]] == list(range(50))
    assert http.get(path).json()["params"] == {"lr": "0.1"}


def test_a_batch_is_all_or_nothing(http, run):
    path = f"{V1}/runs/{run['run_id']}"
    assert http.post(f"{path}/batch", json={"params": {"lr": "0.1"}}).status_code == 200
    clash = http.post(
        f"{path}/batch", json={"metrics": [point("m", 1.0, 0)], "params": {"lr": "0.2"}}
    )
    body = assert_error(clash, 400, "INVALID_PARAMETER_VALUE")
    assert "immutable" in body["message"]
    assert http.get(path).json()["metrics"] == {}


def test_metric_history_is_paged_and_keys_may_hold_slashes(http, run):
    path = f"{V1}/runs/{run['run_id']}"
    values = [0.5, math.inf, -math.inf, 0.125, 1e-300, 7.0, 1 / 3]
    wire = [v if math.isfinite(v) else ("Infinity" if v > 0 else "-Infinity") for v in values]
    batch = {"metrics": [point("train/loss", w, i) for i, w in enumerate(wire)]}
    assert http.post(f"{path}/batch", json=batch).status_code == 200

    got: list[dict] = []
    token = None
    while True:
        params: dict = {"max_results": 3}
        if token:
            params["page_token"] = token
        page = http.get(f"{path}/metrics/train/loss", params=params).json()
        assert page["key"] == "train/loss" and len(page["points"]) <= 3
        got += page["points"]
        token = page["next_page_token"]
        if token is None:
            break
    assert [p["value"] for p in got] == wire
    encoded = http.get(f"{path}/metrics/train%2Floss").json()
    assert [p["value"] for p in encoded["points"]] == wire


def test_a_run_logged_natively_is_an_ordinary_mlflow_run(http, run):
    batch = {"metrics": [point("acc", 0.9, 3)], "params": {"model": "rf"}}
    http.post(f"{V1}/runs/{run['run_id']}/batch", json=batch)
    mlflow = http.get("/api/2.0/mlflow/runs/get", params={"run_id": run["run_id"]}).json()
    data = mlflow["run"]["data"]
    assert data["params"] == [{"key": "model", "value": "rf"}]
    assert [m["value"] for m in data["metrics"]] == [0.9]

    http.post(
        "/api/2.0/mlflow/runs/log-metric",
        json={"run_id": run["run_id"], "key": "f1", "value": 0.8, "timestamp": 5, "step": 0},
    )
    assert http.get(f"{V1}/runs/{run['run_id']}").json()["metrics"]["f1"]["value"] == 0.8


def test_artifacts_are_listed_relative_to_the_run_root(http, run):
    root = run["artifact_uri"].split(":/", 1)[1]
    for name in ("model/MLmodel", "model/model.skops", "notes.txt"):
        put = http.put(f"/api/2.0/mlflow-artifacts/artifacts/{root}/{name}", content=b"x" * 3)
        assert put.status_code == 200
    top = http.get(f"{V1}/runs/{run['run_id']}/artifacts").json()
    assert top["root_uri"] == run["artifact_uri"]
    assert top["files"] == [
        {"path": "model", "is_dir": True, "file_size": None},
        {"path": "notes.txt", "is_dir": False, "file_size": 3},
    ]
    inner = http.get(f"{V1}/runs/{run['run_id']}/artifacts", params={"path": "model"}).json()
    assert [f["path"] for f in inner["files"]] == ["model/MLmodel", "model/model.skops"]


# -- search -----------------------------------------------------------------------------


def test_runs_are_searched_filtered_ordered_and_paged(http, experiment):
    exp_id = experiment["experiment_id"]
    for i in range(7):
        run_id = http.post(f"{V1}/runs", json={"experiment_id": exp_id}).json()["run_id"]
        batch = {
            "metrics": [point("rmse", i / 10, 0)],
            "params": {"model": "gbm" if i % 2 else "ridge"},
        }
        http.post(f"{V1}/runs/{run_id}/batch", json=batch)
    query = {
        "experiment_ids": [exp_id],
        "filter": "params.model = 'gbm' and metrics.rmse > 0.1",
        "order_by": ["metrics.rmse DESC"],
        "max_results": 1,
    }
    found: list[float] = []
    while True:
        page = http.post(f"{V1}/runs/search", json=query).json()
        found += [r["metrics"]["rmse"]["value"] for r in page["runs"]]
        if not page["next_page_token"]:
            break
        query["page_token"] = page["next_page_token"]
    assert found == [0.5, 0.3]


def test_a_bad_filter_is_a_400_naming_the_filter(http, experiment):
    bad = http.post(
        f"{V1}/runs/search",
        json={"experiment_ids": [experiment["experiment_id"]], "filter": "metrics.rmse <<< 1"},
    )
    assert_error(bad, 400, "INVALID_PARAMETER_VALUE", "filter")


# -- bad input --------------------------------------------------------------------------


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
        ({"metrics": [{"key": "m", "value": 1}]}, "metrics[0].timestamp", "missing"),
        ({"metrics": [{"key": "m", "value": 1, "timestamp": -1}]}, "metrics[0].timestamp", ""),
        ({"metrics": [{"key": "m", "value": 1, "timestamp": 2**63}]}, "metrics[0].timestamp", ""),
        ({"metrics": {"key": "m"}}, "metrics", "array"),
        ({"params": {"p": 5}}, "params.p", "string"),
        ({"params": {"bad key!": "1"}}, "params.bad key!", "invalid key 'bad key!'"),
        ({"tags": ["team"]}, "tags", "object"),
        ({"metric": []}, "metric", "unknown field"),
    ],
)
def test_wrong_input_in_a_batch_names_the_field_and_changes_nothing(http, run, body, field, needle):
    path = f"{V1}/runs/{run['run_id']}"
    error = assert_error(
        http.post(f"{path}/batch", json=body), 400, "INVALID_PARAMETER_VALUE", field
    )
    assert needle in error["message"] and field.split(".")[0] in error["message"]
    logged = http.get(path).json()
    assert logged["metrics"] == {} and logged["params"] == {}


@pytest.mark.parametrize(
    ("content", "code", "needle"),
    [
        (b'{"name": ', "BAD_REQUEST", "not valid JSON"),
        (b"[1, 2]", "BAD_REQUEST", "JSON object"),
        (b'"text"', "BAD_REQUEST", "JSON object"),
        (b"\xff\xfe\x00", "BAD_REQUEST", "not valid JSON"),
    ],
)
def test_malformed_bodies_are_bad_requests(http, content, code, needle):
    response = http.post(
        f"{V1}/experiments", content=content, headers={"Content-Type": "application/json"}
    )
    assert needle in assert_error(response, 400, code, "body")["message"]


@pytest.mark.parametrize(
    ("content", "field", "needle"),
    [
        (b'{"name": "\\ud800"}', "name", "surrogate"),
        (b'{"name": "n", "tags": {"t": ' + b"9" * 5000 + b"}}", "tags.t", "5000 digits"),
    ],
)
def test_values_nothing_can_take_are_invalid_naming_the_field(http, content, field, needle):
    response = http.post(
        f"{V1}/experiments", content=content, headers={"Content-Type": "application/json"}
    )
    assert needle in assert_error(response, 400, "INVALID_PARAMETER_VALUE", field)["message"]


def test_an_oversized_body_is_refused_naming_the_limit(http, run):
    huge = {"tags": {"t": "x" * (2 << 20)}}
    response = http.post(f"{V1}/runs/{run['run_id']}/batch", json=huge)
    assert "limit is" in assert_error(response, 400, "BAD_REQUEST", "body")["message"]


@pytest.mark.parametrize(
    ("method", "path", "kwargs", "status", "code", "field"),
    [
        ("GET", "/experiments", {"params": {"max_results": "0"}}, 400, None, "max_results"),
        ("GET", "/experiments", {"params": {"max_results": "many"}}, 400, None, "max_results"),
        ("GET", "/experiments", {"params": {"view_type": "SOME"}}, 400, None, "view_type"),
        ("GET", "/experiments", {"params": {"page_token": "%%%"}}, 400, None, "page_token"),
        ("GET", "/experiments/abc", {}, 400, None, "experiment_id"),
        ("GET", "/experiments/99999999999999999999", {}, 400, None, "experiment_id"),
        ("GET", "/experiments/987654321", {}, 404, "RESOURCE_DOES_NOT_EXIST", "experiment_id"),
        ("PATCH", "/experiments/0", {"json": {}}, 400, None, "name"),
        ("POST", "/experiments", {"json": {"name": 5}}, 400, None, "name"),
        ("POST", "/experiments", {"json": {"name": ""}}, 400, None, "name"),
        ("POST", "/runs", {"json": {"experiment_id": 1}}, 400, None, "experiment_id"),
        ("GET", "/runs/no-such-run", {}, 404, "RESOURCE_DOES_NOT_EXIST", "run_id"),
        ("GET", "/runs/bad%00id", {}, 400, None, "run_id"),
        ("DELETE", "/runs/no-such-run", {}, 404, "RESOURCE_DOES_NOT_EXIST", "run_id"),
        ("POST", "/runs/no-such-run/batch", {"json": {}}, 404, "RESOURCE_DOES_NOT_EXIST", "run_id"),
        ("PATCH", "/runs/no-such-run", {"json": {"status": "DONE"}}, 400, None, "status"),
        ("POST", "/runs/search", {"json": {}}, 400, None, "experiment_ids"),
        ("POST", "/runs/search", {"json": {"experiment_ids": ["0"], "max_results": 0}}, 400,
         None, "max_results"),
        ("GET", "/runs/no-such-run/metrics/loss", {}, 404, "RESOURCE_DOES_NOT_EXIST", "run_id"),
    ],
)  # fmt: skip
def test_bad_requests_are_4xx_naming_the_field(http, method, path, kwargs, status, code, field):
    response = http.request(method, V1 + path, **kwargs)
    assert_error(response, status, code or "INVALID_PARAMETER_VALUE", field)


def test_an_unknown_route_or_method_is_a_json_error(http):
    assert_error(http.get(f"{V1}/nothing-here"), 404, "ENDPOINT_NOT_FOUND")
    wrong = http.put(f"{V1}/experiments")
    assert_error(wrong, 405, "BAD_REQUEST")
    assert set(wrong.headers["allow"].replace(" ", "").split(",")) >= {"GET", "POST"}


def test_a_page_token_from_elsewhere_is_refused(http, run):
    token = http.get(f"{V1}/experiments", params={"max_results": 1}).json()["next_page_token"]
    history = http.get(f"{V1}/runs/{run['run_id']}/metrics/m", params={"page_token": token})
    assert_error(history, 400, "INVALID_PARAMETER_VALUE", "page_token")


# -- the document -----------------------------------------------------------------------


def test_the_openapi_document_describes_every_operation(http):
    doc = http.get(f"{V1}/openapi.json").json()
    assert doc["openapi"].startswith("3.1")
    documented = {(method.upper(), path) for path, ops in doc["paths"].items() for method in ops}
    assert documented == {(op.method, op.path) for op in OPERATIONS}
    schemas = doc["components"]["schemas"]
    for path, ops in doc["paths"].items():
        for method, op in ops.items():
            assert op["responses"]["400"]["content"]["application/json"]["schema"] == {
                "$ref": "#/components/schemas/ErrorBody"
            }, (method, path)
            for response in op["responses"].values():
                ref = response.get("content", {}).get("application/json", {}).get("schema")
                if ref:
                    assert ref["$ref"].rsplit("/", 1)[-1] in schemas
    batch = schemas["BatchIn"]
    assert batch["additionalProperties"] is False
    assert batch["properties"]["metrics"]["maxItems"] == 1000


def test_field_names():
    assert field_name(("metrics", 2, "value")) == "metrics[2].value"
    assert field_name(("tags", "a b", "[key]")) == "tags.a b"
    assert field_name(()) == "body"
    assert BatchIn.model_validate_json("{}").metrics == []
