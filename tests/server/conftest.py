"""A real ``modelyard server`` process on a free loopback port, with its own temp home.

Started once per session (``python -m modelyard.cli.server``, the same function the
``modelyard server`` command runs) and awaited on ``/health``; its output goes to a log
file that failing tests print. Tests share it, so each one names its experiments
uniquely (``unique``).
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from modelyard.config import Settings

STARTUP_TIMEOUT_S = 90.0  # a loaded 2-core machine starting three servers at once took over 30 s


@dataclass(frozen=True)
class LiveServer:
    url: str
    home: Path
    log: Path
    process: subprocess.Popen[bytes]

    def local_settings(self) -> Settings:
        """Settings that open the server's own store directly (same SQLite file)."""
        return Settings(home=self.home)

    def remote_settings(self, tmp_path: Path) -> Settings:
        return Settings(home=tmp_path / "client-home", tracking_uri=self.url)

    def log_text(self) -> str:
        return self.log.read_text(errors="replace")


def assert_error(response, status: int, code: str, field: str | None = None) -> dict:
    """An error answer: the status, JSON, MLflow's ``error_code``, a message, the field."""
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/json")
    body = response.json()
    assert body["error_code"] == code, body
    assert body["message"]
    if field is not None:
        assert body.get("field") == field, body
    return body


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def server_env(home: Path) -> dict[str, str]:
    """This environment without MODELYARD_* (a developer's settings must not leak in)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("MODELYARD_")}
    env["MODELYARD_HOME"] = str(home)
    return env


def start_server(home: Path, *args: str) -> tuple[str, Path, subprocess.Popen[bytes]]:
    home.mkdir(parents=True, exist_ok=True)
    port = free_port()
    log = home.parent / f"server-{port}.log"
    with log.open("wb") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "modelyard.cli.server", "--port", str(port), *args],
            cwd=home.parent,
            env=server_env(home),
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + STARTUP_TIMEOUT_S
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"server exited with {process.returncode}:\n{log.read_text()}")
        try:
            if httpx.get(f"{url}/health", timeout=1.0).status_code == 200:
                return url, log, process
        except httpx.TransportError:
            pass
        time.sleep(0.1)
    stop_server(process)
    raise RuntimeError(f"server did not answer /health in {STARTUP_TIMEOUT_S}s:\n{log.read_text()}")


def stop_server(process: subprocess.Popen[bytes]) -> None:
    process.terminate()
    try:
        process.wait(timeout=10)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(timeout=10)


@pytest.fixture(scope="session")
def live_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    home = tmp_path_factory.mktemp("live-server") / "yard"
    url, log, process = start_server(home)
    server = LiveServer(url, home, log, process)
    try:
        yield server
    finally:
        stop_server(process)


@pytest.fixture
def start_live_server(tmp_path: Path) -> Iterator[Callable[..., LiveServer]]:
    """Start extra servers (``start_live_server("--workers", "2")``); stopped afterwards."""
    started: list[LiveServer] = []

    def start(*args: str) -> LiveServer:
        home = tmp_path / f"yard-{len(started)}"
        url, log, process = start_server(home, *args)
        started.append(LiveServer(url, home, log, process))
        return started[-1]

    try:
        yield start
    finally:
        for server in started:
            stop_server(server.process)


@pytest.fixture
def http(live_server: LiveServer) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=live_server.url, timeout=30.0) as client:
        yield client


@pytest.fixture
def unique() -> str:
    return uuid.uuid4().hex[:8]


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]):  # type: ignore[no-untyped-def]
    report = yield
    server = item.funcargs.get("live_server") if hasattr(item, "funcargs") else None
    if report.failed and isinstance(server, LiveServer):
        report.sections.append(("server log (last 4000 chars)", server.log_text()[-4000:]))
    return report


@pytest.fixture
def server_cli(monkeypatch, tmp_path):
    """``modelyard server`` with uvicorn.run recorded instead of run; the environment the
    command sets for workers is removed afterwards."""
    import os

    import typer
    import uvicorn
    from typer.testing import CliRunner

    from modelyard.cli import server as server_cli

    calls: list[tuple[tuple, dict]] = []
    monkeypatch.setattr(uvicorn, "run", lambda *a, **k: calls.append((a, k)))
    for name in list(os.environ):
        if name.startswith("MODELYARD_"):
            monkeypatch.delenv(name)
    monkeypatch.setenv("MODELYARD_HOME", str(tmp_path / "yard"))
    app = typer.Typer()
    app.command()(server_cli.server)
    yield lambda *args: (CliRunner().invoke(app, list(args)), calls)
    for name in ("MODELYARD_STORE_URI", "MODELYARD_ARTIFACTS_URI"):
        os.environ.pop(name, None)
