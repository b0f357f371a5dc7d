"""``create_app`` in process (no socket): composition rules and configurable body limits."""

from __future__ import annotations

import httpx
import pytest
from starlette.responses import PlainTextResponse

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


async def test_ready_answers_with_the_schema_revision_once_the_database_answers(local):
    from modelyard.store.migrations import SCHEMA_REVISION

    async with asgi_client(create_app(local.settings, local)) as http:
        ready = await http.get("/ready")
    assert ready.status_code == 200
    assert ready.json() == {"status": "ready", "schema_revision": SCHEMA_REVISION}


def _port_nobody_listens_on() -> int:
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


async def test_ready_is_503_while_the_database_is_unreachable_and_health_stays_200():
    """Readiness takes a replica out of rotation; liveness must not restart it for that."""
    from starlette.applications import Starlette
    from starlette.routing import Route

    from modelyard.server.control.app import readiness_route
    from modelyard.server.http.errors import exception_handlers
    from modelyard.store.engine import open_database

    dead = open_database(f"postgresql+psycopg://postgres@127.0.0.1:{_port_nobody_listens_on()}/x")
    app = Starlette(
        routes=[readiness_route(dead), Route("/health", lambda request: PlainTextResponse("OK"))],
        exception_handlers=exception_handlers(),
    )
    try:
        async with asgi_client(app) as http:
            ready = await http.get("/ready")
            assert (await http.get("/health")).status_code == 200
    finally:
        dead.dispose()
    assert ready.status_code == 503
    assert ready.json()["error_code"] == "TEMPORARILY_UNAVAILABLE"
    assert "unreachable" in ready.json()["message"]
    assert "127.0.0.1" not in ready.text  # an open endpoint names no host or user


async def test_ready_needs_no_token_on_an_authenticated_server(local):
    from modelyard.server.control.auth import auth_middleware

    app = create_app(local.settings, local, middleware=[auth_middleware(local.settings)])
    async with asgi_client(app) as http:
        assert (await http.get("/ready")).status_code == 200
        assert (await http.get("/api/2.0/mlflow/experiments/search")).status_code == 401


async def test_what_start_up_built_is_frozen_out_of_the_garbage_collector(local):
    """A full collection walked every start-up object while holding the GIL (scale.py's
    p99); once the app has started they are out of its reach."""
    import gc

    gc.unfreeze()
    app = create_app(local.settings, local)
    try:
        async with app.router.lifespan_context(app):
            assert gc.get_freeze_count() > 10_000
    finally:
        gc.unfreeze()  # the test process goes on collecting as before
