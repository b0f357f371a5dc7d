"""``create_app`` in process (no socket): composition rules and configurable body limits."""

from __future__ import annotations

import httpx
import pytest

from modelyard.config import Settings
from modelyard.errors import InvalidParameter
from modelyard.server.control.app import create_app
from modelyard.server.control.context import ServerLimits
from modelyard.tracking.client import TrackingClient

pytestmark = pytest.mark.anyio


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture
def local(tmp_path) -> TrackingClient:
    return TrackingClient.from_settings(Settings(home=tmp_path / "yard"))


def asgi_client(app) -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://yard")


async def test_a_server_refuses_to_front_another_server(local):
    with pytest.raises(InvalidParameter, match="MODELYARD_TRACKING_URI"):
        create_app(Settings(tracking_uri="http://elsewhere:5000"), local)


async def test_json_and_artifact_limits_are_configurable(local):
    app = create_app(local.settings, local, limits=ServerLimits(200, max_artifact_bytes=10))
    async with asgi_client(app) as http:
        small = await http.post("/api/2.0/mlflow/experiments/create", json={"name": "ok"})
        assert small.status_code == 200
        big = await http.post("/api/2.0/mlflow/experiments/create", json={"name": "x" * 300})
        assert big.status_code == 400 and "limit is 200 bytes" in big.json()["message"]

        path = "/api/2.0/mlflow-artifacts/artifacts/1/r/artifacts/f.bin"
        assert (await http.put(path, content=b"0123456789")).status_code == 200
        declared = await http.put(path, content=b"0123456789A")
        assert declared.status_code == 400 and declared.json()["field"] == "body"

        async def chunks():  # no Content-Length: the limit is enforced while streaming
            for _ in range(4):
                yield b"abcd"

        streamed = await http.put(path.replace("f.bin", "g.bin"), content=chunks())
        assert streamed.status_code == 400 and "limit is 10 bytes" in streamed.json()["message"]
        missing = await http.get(path.replace("f.bin", "g.bin"))
        assert missing.status_code == 404
    assert not any((local.settings.home / "artifacts" / "tmp").iterdir())


async def test_extra_middleware_slots_in(local):
    from starlette.middleware import Middleware
    from starlette.middleware.base import BaseHTTPMiddleware

    seen: list[str] = []

    async def record(request, call_next):
        seen.append(request.url.path)
        return await call_next(request)

    app = create_app(
        local.settings, local, middleware=[Middleware(BaseHTTPMiddleware, dispatch=record)]
    )
    async with asgi_client(app) as http:
        assert (await http.get("/health")).text == "OK"
    assert seen == ["/health"]


async def test_the_start_up_warm_up_search_never_stops_a_server(local, monkeypatch):
    from modelyard.errors import StoreBusy
    from modelyard.server.control.app import warm_up_search

    searched = []
    monkeypatch.setattr(local, "search_run_revisions", lambda *a, **k: searched.append(a) or [])
    warm_up_search(local)
    assert searched  # it does search

    def busy(*args, **kwargs):
        raise StoreBusy("locked")

    monkeypatch.setattr(local, "search_run_revisions", busy)
    warm_up_search(local)  # a failing warm-up is only a lost head start
