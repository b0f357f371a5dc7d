"""``modelyard server``: what it prints, how it starts uvicorn, and several workers for real."""

from __future__ import annotations

import os

import httpx
import pytest

from modelyard.cli import server as server_command

WORKER_ENV = ("MODELYARD_STORE_URI", "MODELYARD_ARTIFACTS_URI")


@pytest.fixture
def cli(server_cli):
    """The command with uvicorn.run recorded instead of run (``server_cli``)."""
    return server_cli


def test_it_listens_on_loopback_unless_told_otherwise(cli, tmp_path):
    result, calls = cli()
    assert result.exit_code == 0, result.output
    assert "http://127.0.0.1:5000" in result.output and "loopback only" in result.output
    ((args, kwargs),) = calls
    assert kwargs["host"] == "127.0.0.1" and kwargs["port"] == 5000
    assert type(args[0]).__name__ == "Starlette"


def test_another_host_is_warned_about(cli):
    result, calls = cli("--host", "0.0.0.0", "--port", "8080")
    assert result.exit_code == 0, result.output
    assert "no authentication" in result.output
    assert calls[0][1]["host"] == "0.0.0.0" and calls[0][1]["port"] == 8080


def test_workers_build_their_app_from_the_settings_passed_down(cli, tmp_path):
    store = f"sqlite:///{tmp_path / 'other.db'}"
    result, calls = cli(
        "--workers", "3", "--store-uri", store, "--artifacts-uri", str(tmp_path / "blobs")
    )
    assert result.exit_code == 0, result.output
    ((args, kwargs),) = calls
    assert args == (server_command.APP_FACTORY,) and kwargs["factory"] and kwargs["workers"] == 3
    assert os.environ["MODELYARD_STORE_URI"] == store
    assert os.environ["MODELYARD_ARTIFACTS_URI"] == str(tmp_path / "blobs")
    assert (tmp_path / "other.db").exists()  # migrated once, before the workers start


def test_a_password_in_the_store_uri_is_not_printed(cli, monkeypatch):
    class FakeClient:
        @staticmethod
        def from_settings(settings):
            return None

    monkeypatch.setattr("modelyard.tracking.client.TrackingClient", FakeClient)
    monkeypatch.setattr("modelyard.server.control.app.create_app", lambda settings, client: None)
    result, _ = cli("--store-uri", "postgresql+psycopg://ana:s3cret@db/yard")
    assert result.exit_code == 0, result.output
    assert "s3cret" not in result.output and "ana:***@db" in result.output


def test_two_worker_processes_serve_the_same_store(start_live_server):
    server = start_live_server("--workers", "2")
    with httpx.Client(base_url=server.url, timeout=30) as http:
        ids = {
            http.post("/api/2.0/mlflow/experiments/create", json={"name": f"w{i}"}).json()[
                "experiment_id"
            ]
            for i in range(6)
        }
        assert len(ids) == 6
        found = http.post("/api/2.0/mlflow/experiments/search", json={}).json()
        assert {e["experiment_id"] for e in found["experiments"]} >= ids
    assert "2 worker(s)" in server.log_text() and "Traceback" not in server.log_text()
