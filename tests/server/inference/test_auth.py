"""``modelyard serve --auth``: the data plane behind the control plane's tokens, over real
HTTP (uvicorn in a thread), with the probes and ``/metrics`` left open."""

from __future__ import annotations

import base64

import httpx
import pytest
from tests.serving.conftest import FEATURES, InProcessServer, make_yard, wait_until

from modelyard.auth.lockout import FailureLockout
from modelyard.auth.service import AuthService
from modelyard.server.inference.app import build_runtime, create_inference_app
from modelyard.server.inference.auth import OPEN_PATHS, inference_auth
from modelyard.server.inference.metrics import InferenceMetrics
from modelyard.serving.settings import ServingSettings
from modelyard.tracking.backends import database_for

ROW = {"x0": 1.0, "x1": -0.5, "x2": 0.25, "x3": 2.0}
OIP = {
    "inputs": [{"name": c, "shape": [1], "datatype": "FP64", "data": [ROW[c]]} for c in FEATURES]
}
#: Every protected endpoint, as (method, path, JSON body).
PROTECTED = [
    ("POST", "/invocations", {"dataframe_records": [ROW]}),
    ("POST", "/predict", [ROW]),
    ("POST", "/v2/models/web/infer", OIP),
    ("GET", "/v2", None),
    ("GET", "/v2/models/web", None),
    ("GET", "/v2/models/web/ready", None),
    ("GET", "/version", None),
    ("POST", "/feedback", [{"request_id": "r1", "actual": 1.0}]),
]


class Served:
    def __init__(self, yard, runtime, settings, http, tokens) -> None:
        self.yard, self.runtime, self.settings = yard, runtime, settings
        self.http, self.tokens = http, tokens

    def call(self, method: str, path: str, body, token: str | None = None) -> httpx.Response:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        return self.http.request(method, path, json=body, headers=headers)


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    yard = make_yard(tmp_path_factory.mktemp("inference-auth"))
    yard.deployments.create("web", yard.regressor().uri)
    auth = AuthService(database_for(yard.settings))
    auth.create_user("vic", "viewer")
    auth.create_user("gone", "admin")
    tokens = {
        "viewer": auth.create_token("vic").token,
        "expired": auth.create_token("vic", expires_in_s=0.001).token,
        "disabled": auth.create_token("gone").token,
    }
    auth.set_disabled("gone", True)
    settings = ServingSettings(home=yard.settings.home, serve_poll_interval_s=0.1)
    metrics = InferenceMetrics()
    runtime = build_runtime(settings, "web", metrics=metrics)
    # many failures allowed here: the lockout has a test of its own below
    guard = inference_auth(settings, lockout=FailureLockout(max_failures=1000))
    with InProcessServer(create_inference_app(runtime, metrics, middleware=[guard])) as server:
        wait_until(lambda: runtime.ready, what="the first revision")
        with httpx.Client(base_url=server.url, timeout=10) as http:
            yield Served(yard, runtime, settings, http, tokens)


@pytest.mark.parametrize(("method", "path", "body"), PROTECTED)
def test_no_token_is_401_on_every_endpoint_but_the_probes(served, method, path, body):
    response = served.call(method, path, body)
    assert response.status_code == 401, response.text
    assert response.json()["error_code"] == "UNAUTHENTICATED"
    assert "Bearer" in response.json()["message"]
    assert response.json()["error"] == response.json()["message"]  # what tritonclient reads
    assert 'Bearer realm="modelyard"' in response.headers.get_list("www-authenticate")


@pytest.mark.parametrize(
    ("which", "says"),
    [("wrong", "invalid API token"), ("expired", "expired at"), ("disabled", "is disabled")],
)
def test_a_wrong_expired_or_disabled_token_is_401_saying_why(served, which, says):
    token = served.tokens.get(which, "myd_0123456789ab_" + "x" * 43)
    response = served.call("POST", "/invocations", {"dataframe_records": [ROW]}, token)
    assert response.status_code == 401
    assert says in response.json()["message"]


def test_a_viewer_token_predicts_on_every_protocol(served):
    token = served.tokens["viewer"]
    for method, path, body in PROTECTED[:-1]:
        response = served.call(method, path, body, token)
        assert response.status_code == 200, (path, response.text)
    predictions = served.call("POST", "/predict", [ROW], token).json()["predictions"]
    assert len(predictions) == 1
    basic = base64.b64encode(f"vic:{token}".encode()).decode()
    response = served.http.post(
        "/invocations",
        json={"dataframe_records": [ROW]},
        headers={"Authorization": f"Basic {basic}"},
    )
    assert response.json()["predictions"] == predictions


def test_probes_and_metrics_stay_open(served):
    probes = {"/v2/health/live", "/v2/health/ready", "/ping", "/health", "/metrics"}
    assert probes == OPEN_PATHS
    for path in sorted(probes):
        assert served.http.get(path).status_code == 200, path


@pytest.mark.anyio
async def test_repeated_failures_are_429_with_retry_after_and_other_addresses_still_predict(
    served,
):
    app = create_inference_app(
        served.runtime,  # already started by the served app
        InferenceMetrics(),
        middleware=[inference_auth(served.settings, lockout=FailureLockout(max_failures=3))],
    )

    def client(host: str) -> httpx.AsyncClient:
        transport = httpx.ASGITransport(app=app, client=(host, 40_000))
        return httpx.AsyncClient(transport=transport, base_url="http://serve")

    body = {"dataframe_records": [ROW]}
    wrong = {"Authorization": "Bearer myd_0123456789ab_" + "y" * 43}
    good = {"Authorization": f"Bearer {served.tokens['viewer']}"}
    async with client("203.0.113.66") as attacker, client("198.51.100.7") as other:
        statuses = [
            (await attacker.post("/invocations", json=body, headers=wrong)).status_code
            for _ in range(20)
        ]
        assert statuses == [401] * 3 + [429] * 17
        limited = await attacker.post("/invocations", json=body, headers=good)
        assert limited.status_code == 429 and int(limited.headers["retry-after"]) >= 1
        assert limited.json()["error_code"] == "REQUEST_LIMIT_EXCEEDED"
        assert (await attacker.get("/v2/health/ready")).status_code == 200
        answer = await other.post("/invocations", json=body, headers=good)
        assert answer.status_code == 200 and len(answer.json()["predictions"]) == 1


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


def test_tritonclient_shows_why_it_was_refused_and_predicts_with_a_token(served):
    import numpy as np
    import tritonclient.http as triton
    from tritonclient.utils import InferenceServerException

    url = str(served.http.base_url).removeprefix("http://").rstrip("/")
    client = triton.InferenceServerClient(url=url)
    inputs = []
    for name in FEATURES:
        tensor = triton.InferInput(name, [1], "FP64")
        tensor.set_data_from_numpy(np.array([ROW[name]]), binary_data=False)
        inputs.append(tensor)
    assert client.is_server_ready()  # the probe stays open
    with pytest.raises(InferenceServerException, match="API token"):
        client.infer("web", inputs)
    headers = {"Authorization": f"Bearer {served.tokens['viewer']}"}
    result = client.infer("web", inputs, headers=headers)
    assert result.as_numpy(result.get_response()["outputs"][0]["name"]).shape == (1,)
