"""A real ``modelyard serve`` process: the unmodified tritonclient with its defaults (binary
tensors) and with JSON tensors; no failed request while revisions switch under load; and
nothing logged is lost on a graceful shutdown."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from pathlib import Path

import httpx
import numpy as np
import pytest
from tests.serving.conftest import FEATURES, frame, free_port, make_yard

from modelyard.serving.prediction_log import read_predictions

pytestmark = pytest.mark.slow


class ServeProcess:
    def __init__(self, yard, target: str, *extra: str, env: dict[str, str] | None = None):
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log_path = yard.tmp / f"serve-{self.port}.log"
        environment = {
            **os.environ,
            "MODELYARD_HOME": str(yard.settings.home),
            "MODELYARD_USER": "ana",
            **(env or {}),
        }
        with self.log_path.open("wb") as log:  # the child keeps its own copy
            self.process = subprocess.Popen(
                [sys.executable, "-m", "modelyard.cli.serve", target, "--port", str(self.port),
                 "--poll-interval", "0.2", *extra],
                env=environment,
                stdout=log,
                stderr=subprocess.STDOUT,
            )  # fmt: skip

    def wait_ready(self, timeout_s: float = 60.0) -> float:
        started = time.monotonic()
        while time.monotonic() - started < timeout_s:
            if self.process.poll() is not None:
                raise AssertionError(f"serve exited:\n{self.log_path.read_text()}")
            try:
                if httpx.get(f"{self.url}/v2/health/ready", timeout=1).status_code == 200:
                    return time.monotonic() - started
            except httpx.HTTPError:
                pass
            time.sleep(0.05)
        raise AssertionError(f"serve not ready:\n{self.log_path.read_text()}")

    def stop(self) -> int:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                return self.process.wait(30)
            except subprocess.TimeoutExpired:
                self.process.kill()
        return self.process.wait(5)


@pytest.fixture
def yard(tmp_path):
    return make_yard(tmp_path)


def test_tritonclient_with_binary_and_json_tensors(yard):
    import tritonclient.http as triton
    from tritonclient.utils import InferenceServerException

    yard.deployments.create("web", yard.regressor().uri)
    server = ServeProcess(yard, "web")
    try:
        server.wait_ready()
        X, _ = frame(n=5, seed=3)
        want = yard.registry.load_model("models:/demand/1").predict(X)
        client = triton.InferenceServerClient(url=f"127.0.0.1:{server.port}")
        assert client.is_server_live() and client.is_server_ready()
        assert client.is_model_ready("web") and client.is_model_ready("web", "1")
        metadata = client.get_model_metadata("web")
        assert [i["name"] for i in metadata["inputs"]] == FEATURES
        assert client.get_server_metadata()["name"] == "modelyard"

        inputs = []
        for name in FEATURES:  # the defaults: binary tensor data both ways
            tensor = triton.InferInput(name, [5], "FP64")
            tensor.set_data_from_numpy(X[name].to_numpy())
            inputs.append(tensor)
        result = client.infer("web", inputs, request_id="triton-1")
        assert np.allclose(result.as_numpy("predict"), want)
        assert result.get_response()["id"] == "triton-1"

        matrix = triton.InferInput("input-0", [5, 4], "FP32")  # one batched tensor, JSON
        matrix.set_data_from_numpy(X.to_numpy(dtype=np.float32), binary_data=False)
        output = triton.InferRequestedOutput("predict", binary_data=False)
        result = client.infer("web", [matrix], outputs=[output], model_version="1")
        assert np.allclose(result.as_numpy("predict"), want, atol=1e-5)
        assert "data" in result.get_response()["outputs"][0]

        wrong = triton.InferInput("x0", [5], "BYTES")
        wrong.set_data_from_numpy(np.array([b"a"] * 5, dtype=object))
        with pytest.raises(InferenceServerException, match="'x0'"):
            client.infer("web", [wrong, *inputs[1:]])
        with pytest.raises(InferenceServerException, match="unknown model"):
            client.infer("nope", inputs)
        client.close()
    finally:
        assert server.stop() in (0, -signal.SIGTERM)  # uvicorn re-raises it after shutdown


def test_no_request_fails_while_revisions_change_under_load(yard):
    from sklearn.linear_model import LinearRegression

    X, y = frame()
    v1 = yard.regressor()
    v2 = yard.register(LinearRegression().fit(X, y), "demand", X.head(5))
    yard.deployments.create("web", v1.uri)
    server = ServeProcess(yard, "web", env={"MODELYARD_SERVE_LOG_FLUSH_S": "60"})
    failures: list[str] = []
    versions: Counter[str] = Counter()
    stop = threading.Event()
    body = {"dataframe_split": {"columns": FEATURES, "data": [[0.1, 0.2, 0.3, 0.4]]}}

    def hammer() -> None:
        with httpx.Client(base_url=server.url, timeout=10) as http:
            while not stop.is_set():
                try:
                    r = http.post("/invocations", json=body)
                except httpx.HTTPError as exc:
                    failures.append(repr(exc))
                    continue
                if r.status_code != 200:
                    failures.append(f"{r.status_code} {r.text}")
                versions[r.headers.get("x-modelyard-version", "?")] += 1

    try:
        server.wait_ready()
        threads = [threading.Thread(target=hammer) for _ in range(6)]
        for t in threads:
            t.start()
        svc = yard.deployments
        for change in (
            lambda: svc.switch("web", v2.uri),
            lambda: svc.switch("web"),
            lambda: svc.canary("web", v2.uri, steps=[50, 100], interval_s=3600),
            lambda: svc.rollback("web"),
            lambda: svc.switch("web", v2.uri),
        ):
            time.sleep(0.6)
            change()
        time.sleep(0.8)
        stop.set()
        for t in threads:
            t.join(30)
        total = sum(versions.values())
        assert total > 100 and not failures, (total, failures[:5])
        assert versions["1"] > 0 and versions["2"] > 0
        assert server.stop() in (0, -signal.SIGTERM)  # graceful: writes every queued record
        logged = read_predictions(yard.registry.artifacts, "web")
        assert len(logged[logged["role"] == "primary"]) == total
        assert set(logged["revision"]) == {1, 2, 3, 4, 5, 6}
    finally:
        stop.set()
        server.stop()


def test_metrics_of_several_workers_add_up_whichever_worker_answers(yard):
    from prometheus_client.parser import text_string_to_metric_families

    v1 = yard.regressor()
    yard.deployments.create("web", v1.uri)
    metrics_dirs = set(Path(tempfile.gettempdir()).glob("modelyard-metrics-*"))
    server = ServeProcess(yard, "web", "--workers", "2")
    body = {"dataframe_split": {"columns": FEATURES, "data": [[0.1, 0.2, 0.3, 0.4]]}}

    def answered(text: str) -> float:
        return sum(
            sample.value
            for family in text_string_to_metric_families(text)
            if family.name == "modelyard_inference_requests"
            for sample in family.samples
            if sample.name == "modelyard_inference_requests_total"
            and sample.labels.get("status") == "200"
        )

    try:
        server.wait_ready()
        deadline, ready_in_a_row = time.monotonic() + 60, 0
        while ready_in_a_row < 12:  # new connections: until both workers have loaded
            assert time.monotonic() < deadline, server.log_path.read_text()
            ok = httpx.get(f"{server.url}/v2/health/ready").status_code == 200
            ready_in_a_row = ready_in_a_row + 1 if ok else 0
            time.sleep(0 if ok else 0.1)
        sent = 0
        for _ in range(40):  # new connections, so both workers get some of them
            status = httpx.post(f"{server.url}/invocations", json=body).status_code
            assert status in (200, 503)  # 503: a worker still loading (not counted as 200)
            sent += status == 200
        assert sent >= 30
        scrapes = [httpx.get(f"{server.url}/metrics").text for _ in range(6)]
        assert all(answered(text) == sent for text in scrapes)
        assert all("process_cpu_seconds_total" not in text for text in scrapes)
    finally:
        server.stop()
    assert set(Path(tempfile.gettempdir()).glob("modelyard-metrics-*")) == metrics_dirs  # removed
