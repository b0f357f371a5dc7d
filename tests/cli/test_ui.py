"""``modelyard ui``: the server on this machine's stores, loopback only, its URL printed, and
a browser opened once the server answers (unless ``--no-browser``)."""

from __future__ import annotations

import http.server
import threading
import webbrowser
from collections.abc import Iterator

import pytest
import uvicorn
from typer.testing import CliRunner

from modelyard.cli import ui as ui_cli
from modelyard.cli.main import app


@pytest.fixture
def served(monkeypatch: pytest.MonkeyPatch) -> list[tuple[tuple, dict]]:
    calls: list[tuple[tuple, dict]] = []
    monkeypatch.setattr(uvicorn, "run", lambda *a, **k: calls.append((a, k)))
    for name in ("MODELYARD_STORE_URI", "MODELYARD_ARTIFACTS_URI", "MODELYARD_TRACKING_URI"):
        monkeypatch.delenv(name, raising=False)
    return calls


def test_it_serves_the_local_stores_on_loopback_and_prints_the_url(
    served: list, tmp_path, monkeypatch: pytest.MonkeyPatch
) -> None:
    opened: list[str] = []
    monkeypatch.setattr(webbrowser, "open", opened.append)
    result = CliRunner().invoke(
        app, ["--home", str(tmp_path / "yard"), "ui", "--port", "5123", "--no-browser"]
    )
    assert result.exit_code == 0, result.output
    assert "modelyard ui: http://127.0.0.1:5123/" in result.output
    (args, kwargs) = served[0]
    assert kwargs["host"] == "127.0.0.1" and kwargs["port"] == 5123
    assert args[0].routes  # the app itself, with the UI's routes
    assert opened == []
    assert (tmp_path / "yard").is_dir()


class Health(http.server.BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        self.send_response(200 if self.path == "/health" else 404)
        self.end_headers()

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def health_server() -> Iterator[str]:
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Health)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/"
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


def test_the_browser_opens_once_the_server_answers(
    health_server: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    opened: list[str] = []
    monkeypatch.setattr(webbrowser, "open", opened.append)
    ui_cli.open_when_ready(health_server, timeout_s=10).join()
    assert opened == [health_server]


def test_no_browser_opens_when_nothing_answers(monkeypatch: pytest.MonkeyPatch) -> None:
    opened: list[str] = []
    monkeypatch.setattr(webbrowser, "open", opened.append)
    ui_cli.open_when_ready("http://127.0.0.1:9/", timeout_s=0.5).join()
    assert opened == []
