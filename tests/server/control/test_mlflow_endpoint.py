"""How an MLflow endpoint runs its handler and reads its body (in process, no socket):
short SQLite writes on the event loop unless another handler is in a thread, everything
else in a worker thread; bodies within their limit, a streamed one too; a client gone
mid-body is a 400."""

from __future__ import annotations

import asyncio
import json
import sqlite3
import threading
from typing import Any

import httpx
import pytest

from modelyard.config import Settings
from modelyard.server.control import mlflow_api
from modelyard.server.control.app import create_app
from modelyard.server.control.context import ServerContext, ServerLimits
from modelyard.server.http import threads
from modelyard.tracking.client import TrackingClient

pytestmark = pytest.mark.anyio
API = "/api/2.0/mlflow"


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


class SpyStore:
    """The real store, noting the thread of each write and holding reads at ``gate``."""

    def __init__(self, store: Any) -> None:
        self._store = store
        self.write_threads: list[str] = []
        self.gate = threading.Event()
        self.gate.set()
        self.reading = threading.Event()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._store, name)

    def log_batch(self, *args: Any, **kwargs: Any) -> None:
        self.write_threads.append(threading.current_thread().name)
        self._store.log_batch(*args, **kwargs)

    def get_run(self, run_id: str) -> Any:
        self.reading.set()
        self.gate.wait(10)
        return self._store.get_run(run_id)


@pytest.fixture
def spied(tmp_path) -> tuple[Any, SpyStore, str]:
    local = TrackingClient.from_settings(Settings(home=tmp_path / "yard"))
    spy = SpyStore(local.store)
    client = TrackingClient(spy, local.artifacts, local.settings)  # type: ignore[arg-type]
    run_id = client.create_run("0").info.run_id
    return create_app(local.settings, client), spy, run_id


def asgi_client(app: Any) -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://yard")


@pytest.fixture
def inline_state(monkeypatch):
    """No pause left by another test; no pause from a slow machine unless asked."""
    monkeypatch.setattr(threads, "_inline_paused_until", 0.0)
    monkeypatch.setattr(threads, "SLOW_INLINE_S", 60.0)


async def test_short_writes_run_on_the_loop_while_no_handler_is_in_a_thread(spied, inline_state):
    app, spy, run_id = spied
    point = {"run_id": run_id, "key": "m", "value": 1.0, "timestamp": 1, "step": 0}
    async with asgi_client(app) as http:
        assert (await http.post(f"{API}/runs/log-metric", json=point)).status_code == 200
        batch = {"run_id": run_id, "metrics": [{**point, "step": i} for i in range(500)]}
        assert (await http.post(f"{API}/runs/log-batch", json=batch)).status_code == 200
        assert spy.write_threads == [threading.current_thread().name] * 2

        spy.gate.clear()  # a read holds a worker thread...
        read = asyncio.ensure_future(http.get(f"{API}/runs/get", params={"run_id": run_id}))
        while not spy.reading.is_set():
            await asyncio.sleep(0.01)
        answer = await http.post(f"{API}/runs/log-metric", json={**point, "step": 1})
        assert answer.status_code == 200  # ...so this write goes to a thread too
        assert spy.write_threads[-1].startswith("modelyard-handler")
        spy.gate.set()
        assert (await read).json()["run"]["data"]["metrics"][0]["step"] == 499


async def test_a_slow_write_on_the_loop_sends_the_next_ones_to_threads(
    spied, inline_state, monkeypatch
):
    app, spy, run_id = spied
    point = {"run_id": run_id, "key": "m", "value": 1.0, "timestamp": 1, "step": 0}
    monkeypatch.setattr(threads, "SLOW_INLINE_S", 0.0)  # every write counts as slow
    async with asgi_client(app) as http:
        for step in range(3):
            answer = await http.post(f"{API}/runs/log-metric", json={**point, "step": step})
            assert answer.status_code == 200
    loop_thread = threading.current_thread().name
    assert spy.write_threads[0] == loop_thread
    assert all(name.startswith("modelyard-handler") for name in spy.write_threads[1:])


async def test_a_write_never_waits_on_the_loop_for_another_processs_lock(
    spied, inline_state, tmp_path
):
    app, spy, run_id = spied
    point = {"run_id": run_id, "key": "m", "value": 1.0, "timestamp": 1, "step": 0}
    other = sqlite3.connect(tmp_path / "yard" / "modelyard.db", isolation_level=None)
    other.execute("BEGIN IMMEDIATE")  # as another process writing would
    async with asgi_client(app) as http:
        write = asyncio.ensure_future(http.post(f"{API}/runs/log-metric", json=point))
        while not spy.write_threads:
            await asyncio.sleep(0.01)
        await asyncio.sleep(0.2)
        assert not write.done()  # waiting for the lock in a thread, not on the loop:
        assert (await http.get("/health")).status_code == 200  # the loop still answers
        other.execute("COMMIT")
        other.close()
        assert (await write).status_code == 200
    assert spy.write_threads[0] == threading.current_thread().name  # tried on the loop
    assert spy.write_threads[1].startswith("modelyard-handler")  # then done in a thread


async def test_only_short_writes_and_only_with_inline_writes_may_run_on_the_loop(tmp_path):
    local = TrackingClient.from_settings(Settings(home=tmp_path / "yard"))
    ctx = ServerContext(local.settings, local, ServerLimits(), inline_writes=False)
    assert not mlflow_api.MlflowEndpoint(ctx, mlflow_api.log_metric).inline
    ctx = ServerContext(local.settings, local, ServerLimits(), inline_writes=True)
    assert mlflow_api.MlflowEndpoint(ctx, mlflow_api.log_metric).inline
    assert not mlflow_api.MlflowEndpoint(ctx, mlflow_api.search_runs).inline


async def call(app: Any, messages: list[dict[str, Any]], headers: list[tuple[bytes, bytes]]):
    """One POST to log-metric fed ``messages``; returns (status, JSON body)."""
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        return messages.pop(0) if messages else {"type": "http.disconnect"}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "POST",
        "scheme": "http",
        "path": f"{API}/runs/log-metric",
        "raw_path": f"{API}/runs/log-metric".encode(),
        "root_path": "",
        "query_string": b"",
        "headers": [(b"host", b"yard"), *headers],
        "client": ("127.0.0.1", 1),
        "server": ("127.0.0.1", 2),
    }
    await app(scope, receive, send)
    body = b"".join(m.get("body", b"") for m in sent if m["type"] == "http.response.body")
    return sent[0]["status"], json.loads(body)


async def test_bodies_arrive_in_chunks_within_their_limit(tmp_path):
    local = TrackingClient.from_settings(Settings(home=tmp_path / "yard"))
    app = create_app(local.settings, local, limits=ServerLimits(300))
    run_id = local.create_run("0").info.run_id
    body = json.dumps({"run_id": run_id, "key": "m", "value": 2.5, "timestamp": 7}).encode()
    parts = [body[:10], body[10:40], body[40:]]
    chunked = [{"type": "http.request", "body": p, "more_body": True} for p in parts]
    chunked.append({"type": "http.request", "body": b"", "more_body": False})
    assert await call(app, chunked, []) == (200, {})
    assert local.get_metric_history(run_id, "m")[0].value == 2.5

    too_big = [{"type": "http.request", "body": b" " * 200, "more_body": True}] * 2
    status, answer = await call(app, too_big, [])
    assert status == 400 and "limit is 300 bytes" in answer["message"]
    declared = [(b"content-length", b"301")]
    status, answer = await call(app, [], declared)
    assert status == 400 and answer["field"] == "body"

    gone = [{"type": "http.request", "body": body[:10], "more_body": True}]  # then disconnect
    status, answer = await call(app, gone, [])
    assert status == 400 and "disconnected" in answer["message"]

    status, answer = await call(app, [{"type": "http.request", "body": b"{nope"}], [])
    assert status == 400 and "not valid JSON" in answer["message"]
