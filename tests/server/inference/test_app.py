"""The data-plane app over real HTTP (uvicorn in a thread): the three protocols, input
checks that name what is wrong, metrics, feedback, shadows, A/B stickiness, contracts,
and the canary judge rolling back on its own."""

from __future__ import annotations

import csv
import io
import time

import httpx
import numpy as np
import pytest
from prometheus_client.parser import text_string_to_metric_families
from tests.serving.conftest import FEATURES, frame, make_yard, serve_in_process, wait_until

from modelyard.serving.feedback import FeedbackStore
from modelyard.serving.prediction_log import read_predictions

ROW = {"x0": 1.0, "x1": -0.5, "x2": 0.25, "x3": 2.0}


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    """A deployment of one regressor, a shadow that always fails, and a live server."""
    yard = make_yard(tmp_path_factory.mktemp("inference"))
    v1 = yard.regressor()
    yard.deployments.create("web", v1.uri)
    server, runtime = serve_in_process(yard, "web")
    with server:
        wait_until(lambda: runtime.ready, what="the first revision")
        with httpx.Client(base_url=server.url, timeout=10) as http:
            yield yard, runtime, http


def expected(yard, rows):
    model = yard.registry.load_model("models:/demand/1")
    import pandas as pd

    return model.predict(pd.DataFrame(rows)[FEATURES]).tolist()


def test_the_three_protocols_agree(served):
    yard, _, http = served
    want = expected(yard, [ROW])
    split = {"columns": FEATURES, "data": [[ROW[c] for c in FEATURES]]}
    answers = [
        http.post("/invocations", json={"dataframe_split": split}).json()["predictions"],
        http.post("/invocations", json={"dataframe_records": [ROW]}).json()["predictions"],
        http.post("/invocations", json={"instances": [[ROW[c] for c in FEATURES]]}).json()[
            "predictions"
        ],
        http.post("/invocations", json={"inputs": {c: [ROW[c]] for c in FEATURES}}).json()[
            "predictions"
        ],
        http.post("/predict", json=[ROW]).json()["predictions"],
        http.post("/predict", json={"records": [ROW]}).json()["predictions"],
    ]
    body = io.StringIO()
    writer = csv.DictWriter(body, FEATURES)
    writer.writeheader()
    writer.writerow(ROW)
    csv_answer = http.post(
        "/invocations", content=body.getvalue(), headers={"content-type": "text/csv"}
    )
    answers.append(csv_answer.json()["predictions"])
    oip = http.post(
        "/v2/models/web/infer",
        json={"inputs": [{"name": c, "shape": [1], "datatype": "FP64", "data": [ROW[c]]}
                         for c in FEATURES]},
    ).json()  # fmt: skip
    answers.append(oip["outputs"][0]["data"])
    for answer in answers:
        assert answer == pytest.approx(want)
    assert oip["model_name"] == "web" and oip["model_version"] == "1"
    assert oip["outputs"][0]["datatype"] == "FP64" and oip["outputs"][0]["shape"] == [1]


def test_health_metadata_and_versions(served):
    _, _, http = served
    for path in ("/v2/health/live", "/v2/health/ready", "/v2/models/web/ready",
                 "/v2/models/web/versions/1/ready", "/ping", "/health"):  # fmt: skip
        assert http.get(path).status_code == 200, path
    assert http.get("/v2").json()["extensions"] == ["binary_tensor_data"]
    meta = http.get("/v2/models/web").json()
    assert meta["versions"] == ["1"] and meta["platform"] == "modelyard-sklearn"
    assert meta["inputs"] == [{"name": c, "datatype": "FP64", "shape": [-1]} for c in FEATURES]
    assert http.get("/v2/models/demand").status_code == 200  # the registered name works too
    assert http.get("/v2/models/nope").status_code == 404
    assert http.get("/v2/models/web/versions/7").status_code == 404
    assert http.get("/version").text


@pytest.mark.parametrize(
    ("path", "body", "status", "names"),
    [
        ("/invocations", {"dataframe_records": [{"x0": 1, "x1": 2, "x2": 3}]}, 400, "'x3'"),
        ("/invocations", {"dataframe_records": [{**ROW, "x2": "high"}]}, 400, "'x2'"),
        ("/invocations", {"dataframe_split": {"columns": FEATURES, "data": [[1, 2]]}}, 400,
         "4 columns"),
        ("/invocations", {"dataframe_records": [ROW], "instances": [[1, 2, 3, 4]]}, 400,
         "exactly one"),
        ("/invocations", {"instances": [[1, 2, 3]]}, 400, "rows of 4 values"),
        ("/invocations", [1, 2], 400, "JSON object"),
        ("/predict", {"records": [{**ROW, "x1": None, "x0": True}]}, 400, "'x0'"),
        ("/predict", {"records": []}, 400, "list of records"),
        ("/v2/models/web/infer", {"inputs": [{"name": "x0", "shape": [2], "datatype": "FP64",
                                               "data": [1.0]}]}, 400, "'x0'"),
        ("/v2/models/web/infer", {"inputs": [{"name": "x0", "shape": [1], "datatype": "BYTES",
                                               "data": ["a"]}, *[{"name": c, "shape": [1],
                                               "datatype": "FP64", "data": [1.0]}
                                              for c in FEATURES[1:]]]}, 400, "'x0'"),
        ("/v2/models/web/infer", {"inputs": [{"name": "input-0", "shape": [1, 3],
                                               "datatype": "FP64", "data": [1, 2, 3]}]}, 400,
         "[-1, 4]"),
        ("/v2/models/web/infer", {"inputs": [{"name": "x0", "shape": [1], "datatype": "FP99",
                                               "data": [1]}]}, 400, "datatype"),
        ("/v2/models/web/infer", {"inputs": "nope"}, 400, "inputs"),
        ("/v2/models/other/infer", {"inputs": []}, 404, "unknown model"),
        ("/v2/models/web/versions/3/infer", {"inputs": [{"name": "input-0", "shape": [1, 4],
                                                          "datatype": "FP64",
                                                          "data": [1, 2, 3, 4]}]}, 404, "[1]"),
    ],
)  # fmt: skip
def test_bad_input_is_4xx_naming_the_problem(served, path, body, status, names):
    _, _, http = served
    response = http.post(path, json=body)
    assert response.status_code == status, response.text
    payload = response.json()
    message = payload.get("message") or payload.get("error")
    assert names in message, message


def test_unreadable_bodies_and_content_types(served):
    _, _, http = served
    r = http.post("/invocations", content=b"x0\n1", headers={"content-type": "text/plain"})
    assert r.status_code == 415 and "text/csv" in r.json()["message"]
    r = http.post(
        "/invocations", content=b"{not json", headers={"content-type": "application/json"}
    )
    assert r.status_code == 400
    r = http.post("/v2/models/web/infer", content=b"\xff\xfe",
                  headers={"inference-header-content-length": "99"})  # fmt: skip
    assert r.status_code == 400 and "exceeds" in r.json()["error"]
    r = http.post("/invocations", content=b"x0,x1\n1,2\n", headers={"content-type": "text/csv"})
    assert r.status_code == 400 and "x2" in r.json()["message"]
    assert http.get("/invocations").status_code == 405
    assert http.post("/feedback", json={"value": 1}).status_code == 400


def test_a_body_over_the_limit_is_413_naming_it_on_every_protocol(served):
    _, runtime, http = served
    runtime.options.max_body_bytes, default = 100, runtime.options.max_body_bytes
    try:
        records = [ROW] * 10  # ~400 bytes of JSON
        answers = [
            http.post("/invocations", json={"dataframe_records": records}),
            http.post("/predict", json=records),
            http.post(
                "/v2/models/web/infer",
                json={
                    "inputs": [
                        {"name": k, "shape": [10], "datatype": "FP64", "data": [v] * 10}
                        for k, v in ROW.items()
                    ]
                },
            ),
            http.post("/feedback", json=[{"request_id": "r", "value": 1.0}] * 10),
        ]
        for answer in answers:
            assert answer.status_code == 413, answer.text
            assert "limit is 100 bytes" in answer.text
            assert "MODELYARD_SERVE_MAX_BODY_MB" in answer.text  # what a scoring client can do
        small = http.post("/invocations", json={"dataframe_records": [ROW]})
        assert small.status_code == 200  # the limit refuses, it does not break the server
    finally:
        runtime.options.max_body_bytes = default


def test_metrics_feedback_and_prediction_log(served):
    yard, runtime, http = served
    r = http.post("/predict", json=[ROW, ROW], headers={"x-request-id": "req-feedback-1"})
    assert r.headers["x-request-id"] == "req-feedback-1"
    assert r.headers["x-modelyard-variant"] == "primary"
    ok = http.post("/feedback", json=[{"request_id": "req-feedback-1", "row": 1, "value": 2.5},
                                      {"request_id": "unknown-id", "label": "x"}])  # fmt: skip
    assert ok.json() == {"recorded": 2}
    rows = FeedbackStore(yard.registry.db).frame("web")
    known = rows[rows["request_id"] == "req-feedback-1"].iloc[0]
    assert known["variant"] == "primary" and known["model_version"] == 1 and known["row"] == 1
    http.post("/invocations", json={"dataframe_records": [{"x0": "bad"}]})
    families = {f.name: f for f in text_string_to_metric_families(http.get("/metrics").text)}
    requests = {
        (s.labels["protocol"], s.labels["status"], s.labels["version"]): s.value
        for s in families["modelyard_inference_requests"].samples
        if s.name.endswith("_total")
    }
    assert requests[("native", "200", "1")] >= 1 and requests[("mlflow", "400", "")] >= 1
    buckets = [s.labels["le"] for s in families["modelyard_inference_request_duration_seconds"]
               .samples if s.name.endswith("_bucket")]  # fmt: skip
    assert "60.0" in buckets
    for name in ("modelyard_inference_batch_size", "modelyard_inference_requests_in_flight",
                 "modelyard_inference_model_load_seconds", "modelyard_inference_revision",
                 "modelyard_inference_prediction_log_dropped",
                 "modelyard_inference_shadow_requests"):  # fmt: skip
        assert name in families, name
    runtime.log.flush()
    logged = read_predictions(yard.registry.artifacts, "web")
    mine = logged[logged["request_id"] == "req-feedback-1"].iloc[0]
    assert mine["variant"] == "primary" and mine["version"] == 1 and mine["n_rows"] == 2
    assert '"x0":[1.0,1.0]' in mine["inputs"] and mine["role"] == "primary"
    assert all("deployment=web/hour=" in f.path for f in yard.registry.artifacts.list_recursive(
        "predictions"))  # fmt: skip


def test_not_loaded_is_503_and_live_is_200(tmp_path):
    yard = make_yard(tmp_path)
    yard.deployments.create("web", yard.regressor().uri)
    server, runtime = serve_in_process(yard, "web")
    runtime.target.revision = lambda: (_ for _ in ()).throw(ConnectionError("store down"))
    with server, httpx.Client(base_url=server.url) as http:
        assert http.get("/v2/health/live").status_code == 200
        assert http.get("/v2/health/ready").status_code == 400
        assert http.get("/ping").status_code == 503
        r = http.post("/invocations", json={"dataframe_records": [ROW]})
        assert r.status_code == 503 and "store down" in r.json()["message"]
        r = http.post("/v2/models/web/infer", json={"inputs": []})
        assert r.status_code == 503


def test_shadow_failures_never_reach_the_caller_and_ab_is_sticky(tmp_path):
    from sklearn.linear_model import LinearRegression

    yard = make_yard(tmp_path)
    v1 = yard.regressor()
    X, y = frame()
    v2 = yard.register(LinearRegression().fit(X, y), "demand", X.head(5))
    # A shadow whose signature wants a column nobody sends: every mirrored call fails.
    X_other = X.rename(columns={"x3": "missing"})
    bad = yard.register(LinearRegression().fit(X_other, y), "other", X_other.head(5))
    yard.deployments.create("web", v1.uri)
    yard.deployments.shadow("web", [bad.uri, v2.uri])
    yard.deployments.ab("web", v2.uri, split=50, key="customer_id")
    server, runtime = serve_in_process(yard, "web")
    with server, httpx.Client(base_url=server.url, timeout=10) as http:
        wait_until(lambda: runtime.ready, what="ready")
        seen: dict[str, set[str]] = {}
        for i in range(60):
            customer = f"c{i % 12}"
            r = http.post("/predict", json=[{**ROW, "customer_id": customer}])
            assert r.status_code == 200, r.text
            seen.setdefault(customer, set()).add(r.headers["x-modelyard-variant"])
        assert all(len(v) == 1 for v in seen.values())  # sticky
        assert {v for s in seen.values() for v in s} == {"a", "b"}  # both arms used
        families = {f.name: f for f in text_string_to_metric_families(http.get("/metrics").text)}
        wait_until(lambda: runtime._shadows_running == 0, what="shadows")
        shadow = {
            (s.labels["variant"], s.labels["status"]): s.value
            for s in families["modelyard_inference_shadow_requests"].samples
            if s.name.endswith("_total")
        }
        assert shadow[("shadow-other-1", "error")] >= 50
        assert shadow.get(("shadow-demand-2", "ok"), 0) >= 50
    logged = read_predictions(yard.registry.artifacts, "web")
    shadows = logged[logged["role"] == "shadow"]
    assert set(shadows["variant"]) == {"shadow-other-1", "shadow-demand-2"}
    assert "missing" in shadows[shadows["status"] == "error"]["error"].iloc[0]


def test_contract_rejects_or_flags(tmp_path):
    yard = make_yard(tmp_path)
    yard.deployments.create("web", yard.regressor().uri)
    contract = {"contract": "demand-inputs", "columns": {"x0": {"type": "float", "min": -10,
                                                                "max": 10}}}  # fmt: skip
    yard.deployments.set_contract("web", contract, mode="reject")
    server, runtime = serve_in_process(yard, "web")
    with server, httpx.Client(base_url=server.url, timeout=10) as http:
        wait_until(lambda: runtime.ready, what="ready")
        assert http.post("/predict", json=[ROW]).status_code == 200
        r = http.post("/predict", json=[{**ROW, "x0": 99.0}])
        assert r.status_code == 400 and "demand-inputs" in r.json()["message"]
        yard.deployments.set_contract("web", contract, mode="flag")
        wait_until(lambda: runtime.table.policy.contract.mode == "flag", what="new revision")
        r = http.post("/predict", json=[{**ROW, "x0": 99.0}])
        assert r.status_code == 200 and "FAILED" in r.json()["contract"]


def test_canary_is_rolled_back_automatically_when_it_fails(tmp_path):
    from sklearn.linear_model import LinearRegression

    yard = make_yard(tmp_path)
    v1 = yard.regressor()
    X, y = frame()
    # A candidate that fails on negative x0: about half of all requests.
    X_broken = X.assign(x0=X["x0"].astype("int64").astype(float))
    yard.register(LinearRegression().fit(X_broken, y), "demand", X_broken.head(5))
    yard.deployments.create("web", v1.uri)
    yard.deployments.canary("web", "models:/demand/2", steps=[50, 100], interval_s=3600,
                            rules={"min_requests": 5, "max_error_rate_increase": 0.1})  # fmt: skip
    server, runtime = serve_in_process(yard, "web")
    runtime.options.judge_interval_s = 0.05

    def broken(*args, **kwargs):
        raise RuntimeError("model crashed")

    with server, httpx.Client(base_url=server.url, timeout=10) as http:
        wait_until(lambda: runtime.ready, what="ready")
        runtime.table.loaded["canary"].batcher._predict = broken
        statuses = []
        for _ in range(200):
            statuses.append(http.post("/predict", json=[ROW]).status_code)
            if runtime.table.policy.canary is None:
                break
        assert 500 in statuses
        wait_until(lambda: runtime.table.policy.canary is None, what="automatic rollback")
    deployment = yard.deployments.get("web")
    assert deployment.policy.canary is None and deployment.current_revision == 3
    last = yard.deployments.history("web", 1)[0]
    assert last.action == "rollback" and last.created_by == "modelyard-canary"
    assert "error rate" in last.reason


def test_oip_batched_tensor_and_pinned_version(served):
    yard, _, http = served
    rows = np.asarray([[ROW[c] for c in FEATURES]] * 3)
    tensor = {"name": "input-0", "shape": [3, 4], "datatype": "FP32", "data": rows.tolist()}
    r = http.post("/v2/models/web/versions/1/infer", json={"inputs": [tensor]})
    assert r.status_code == 200
    out = r.json()["outputs"][0]
    assert out["shape"] == [3] and out["data"] == pytest.approx(expected(yard, [ROW] * 3), 1e-5)
    started = time.perf_counter()
    r = http.post("/v2/models/web/infer", json={
        "id": "my-id", "inputs": [{"name": "input-0", "shape": [2, 4], "datatype": "INT64",
                                   "data": [1, 2, 3, 4, 5, 6, 7, 8]}],
        "outputs": [{"name": "predict"}]})  # fmt: skip
    assert r.status_code == 200 and r.json()["id"] == "my-id"
    assert time.perf_counter() - started < 5
    r = http.post("/v2/models/web/infer", json={
        "inputs": [{"name": "input-0", "shape": [1, 4], "datatype": "FP64", "data": [1, 2, 3, 4]}],
        "outputs": [{"name": "probabilities"}]})  # fmt: skip
    assert r.status_code == 400 and "unknown output" in r.json()["error"]


class FakeFeatureStore:
    """Stands in for ``FeatureStore``: values by store_id, None for unknown entities."""

    def __init__(self) -> None:
        self.calls: list[tuple[list[dict], str]] = []

    def get_online_features(self, rows, service):
        self.calls.append((rows, service))
        known = {7: {"x0": 1.0, "x1": -0.5, "x2": 0.25}}

        class Found:
            def rows(self_inner):
                return [
                    {"store_id": r["store_id"], **known.get(r["store_id"], dict.fromkeys(known[7]))}
                    for r in rows
                ]

        return Found()


def test_entity_keys_are_completed_from_the_feature_service(served):
    yard, runtime, http = served
    loaded = runtime.table.loaded["primary"]
    fake = FakeFeatureStore()
    runtime._features, loaded.feature_service = fake, "demand-features"
    try:
        r = http.post("/predict", json=[{"store_id": 7, "x3": 2.0}])
        assert r.status_code == 200, r.text
        assert r.json()["predictions"] == pytest.approx(expected(yard, [ROW]))
        assert fake.calls[-1][1] == "demand-features"
        r = http.post("/predict", json=[{"store_id": 99, "x3": 2.0}])  # no features stored
        assert r.status_code == 400 and "feature 'x0'" in r.json()["message"]
        assert "{'store_id': 99}" in r.json()["message"]
    finally:
        loaded.feature_service = None
