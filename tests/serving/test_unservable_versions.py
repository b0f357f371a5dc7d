"""A version that can never load is refused at once, not retried for ever: serving fails
fast on one flagged as holding no saved model, readiness probes say why in JSON, and
passing failures are retried with a growing wait."""

from __future__ import annotations

import asyncio

import httpx
import pytest
from tests.serving.conftest import serve_in_process, wait_until
from tests.serving.test_refused_models import gadget_version

from modelyard.errors import InvalidState
from modelyard.server.inference.app import preflight
from modelyard.serving.runtime import MAX_RETRY_WAIT_S, ServingOptions, ServingRuntime


@pytest.fixture
def bare_version(yard):
    """Registered through the MLflow API (which stores any files): no saved model in it."""
    (yard.tmp / "model.skops").write_bytes(b"just bytes")
    experiment = yard.tracking.get_or_create_experiment("bare").experiment_id
    run_id = yard.tracking.create_run(experiment).info.run_id
    yard.tracking.log_artifact(run_id, yard.tmp / "model.skops", "model")
    remote = yard.registry.for_clients()
    remote.create_registered_model("bare")
    return remote.create_model_version("bare", f"runs:/{run_id}/model")


def test_serving_a_version_without_a_saved_model_fails_before_it_starts(yard, bare_version):
    with pytest.raises(InvalidState, match=r"cannot be served: .* holds no saved model"):
        preflight(yard.settings, "models:/bare/1")


def test_a_deployment_naming_one_fails_fast_too(yard, bare_version):
    yard.deployments.create("web", yard.regressor().uri)
    yard.deployments.switch("web", "models:/bare/1")
    with pytest.raises(InvalidState, match="holds no saved model"):
        preflight(yard.settings, "web")


def test_the_command_exits_non_zero_with_the_message_and_no_traceback(yard, bare_version):
    from typer.testing import CliRunner

    from modelyard.cli.main import app

    result = CliRunner().invoke(
        app, ["--home", str(yard.settings.home), "serve", "models:/bare/1", "--port", "0"]
    )
    assert result.exit_code != 0
    assert "holds no saved model" in result.output
    assert "Traceback" not in result.output


def test_readiness_says_why_in_json_when_the_model_is_refused(yard, tmp_path):
    sandbox = tmp_path / "sandbox"
    sandbox.mkdir()
    gadget_version(yard, sandbox)
    server, runtime = serve_in_process(yard, "models:/gadget/1", serve_compiled=False)
    with server, httpx.Client(base_url=server.url) as http:
        wait_until(lambda: runtime.not_ready_reason != "loading", what="the first load")
        for path in ("/v2/health/ready", "/v2/models/gadget/ready"):
            answer = http.get(path)
            assert answer.status_code == 400, path
            assert answer.json()["ready"] is False
            assert "refused" in answer.json()["error"] and "runstring" in answer.json()["error"]


def test_readiness_is_json_when_ready(yard):
    yard.regressor()
    server, runtime = serve_in_process(yard, "models:/demand/1")
    with server, httpx.Client(base_url=server.url) as http:
        wait_until(lambda: runtime.ready, what="the model")
        assert http.get("/v2/health/ready").json() == {"ready": True}
        assert http.get("/v2/models/demand/ready").json() == {"ready": True}


class FlakyTarget:
    """A deployment whose store does not answer."""

    name = "flaky"

    def revision(self) -> int:
        raise ConnectionError("the metadata store is unreachable")


def test_passing_failures_are_retried_with_a_doubling_wait(yard, monkeypatch):
    waits: list[float] = []
    real_wait_for = asyncio.wait_for

    async def record(awaitable, timeout):
        waits.append(timeout)
        if len(waits) >= 10:
            awaitable.close()
            raise asyncio.CancelledError
        return await real_wait_for(awaitable, 0)

    options = ServingOptions(poll_interval_s=0.5)
    runtime = ServingRuntime(FlakyTarget(), yard.registry, options=options)
    monkeypatch.setattr("modelyard.serving.runtime.asyncio.wait_for", record)

    async def follow() -> None:
        with pytest.raises(asyncio.CancelledError):
            await runtime._follow()

    asyncio.run(follow())
    assert waits[:7] == [0.5, 1.0, 2.0, 4.0, 8.0, 16.0, MAX_RETRY_WAIT_S]
    assert max(waits) == MAX_RETRY_WAIT_S
    assert "unreachable" in runtime.not_ready_reason
