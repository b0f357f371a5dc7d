"""Shared fixtures: isolated stores per test, and the real PostgreSQL server when present.

Backend tests skip with a stated reason when a server is unreachable on a laptop, and
fail instead when ``CI`` is set (CI starts the servers, so a skip there would hide a bug).

The whole session, and every server process it starts, uses a temporary directory of its
own (``TMPDIR``): when the session ends, any ``modelyard-*`` entry left there is a leak
(a model folder nobody removed) and fails the run, naming the entries. Under pytest-xdist
(``-n 2``) the workers inherit the controller's directory and leave the check to it: it
runs once, after every worker has finished, and a leak fails the whole run.
"""

from __future__ import annotations

import os
import shutil
import socket
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from modelyard.config import Settings

if TYPE_CHECKING:
    from modelyard.store.engine import Database

PG_HOST, PG_PORT = "127.0.0.1", 5432
REDIS_HOST, REDIS_PORT = "127.0.0.1", 6379
_SESSION_TMP = pytest.StashKey[Path]()


def _is_xdist_worker(config: pytest.Config) -> bool:
    return hasattr(config, "workerinput")


def pytest_configure(config: pytest.Config) -> None:
    # MLflow's telemetry thread sets and unsets a variable of os.environ while a client in
    # another thread iterates it (urllib's proxy lookup): KeyError, a failed request. No
    # test sends telemetry; every process the session starts inherits this.
    os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
    if _is_xdist_worker(config):  # TMPDIR is the controller's private directory already
        return
    private = Path(tempfile.mkdtemp(prefix="pytest-session-tmp-"))
    os.environ["TMPDIR"] = str(private)
    tempfile.tempdir = None  # re-read TMPDIR: this process and its children use it
    config.stash[_SESSION_TMP] = private


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Files with a test marked ``slow`` run first, each file's tests in their order.

    ``make pytest`` hands whole files to two workers in this order (pytest-xdist,
    ``--dist loadscope --no-loadscope-reorder``): the few files of a minute or more (the
    docs pages, the base install, the demo) start at once and the many short ones fill in
    around them, instead of one starting last while the other worker sits idle.
    """
    slow_files = {item.path for item in items if item.get_closest_marker("slow")}
    items.sort(key=lambda item: item.path not in slow_files)  # stable: the order otherwise


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    private = session.config.stash.get(_SESSION_TMP, None)
    if private is None or not private.exists():
        return
    left = sorted(p.name for p in private.iterdir() if p.name.startswith("modelyard-"))
    if left:
        reporter = session.config.pluginmanager.get_plugin("terminalreporter")
        if reporter is not None:
            reporter.write_line(
                f"LEAK: the tests left {len(left)} modelyard-* entries in the temporary "
                f"directory {private}: {', '.join(left[:10])}",
                red=True,
            )
        session.exitstatus = pytest.ExitCode.TESTS_FAILED
    elif exitstatus == 0:
        shutil.rmtree(private, ignore_errors=True)


def _reachable(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=1):
            return True
    except OSError:
        return False


def require_server(name: str, host: str, port: int) -> None:
    if _reachable(host, port):
        return
    reason = f"{name} is not reachable at {host}:{port}"
    if os.environ.get("CI"):
        pytest.fail(f"{reason}, and CI must run the {name} tests (.ci/run starts it)")
    pytest.skip(f"{reason}; start it to run these tests")


@pytest.fixture
def postgres_uri() -> Iterator[str]:
    """A fresh PostgreSQL database for one test, dropped afterwards."""
    require_server("PostgreSQL", PG_HOST, PG_PORT)
    import psycopg

    name = f"modelyard_test_{uuid.uuid4().hex[:12]}"
    admin = f"host={PG_HOST} port={PG_PORT} dbname=test user=postgres"
    try:
        conn = psycopg.connect(admin, autocommit=True)
    except psycopg.OperationalError:  # trust auth as root instead of postgres
        admin = f"host={PG_HOST} port={PG_PORT} dbname=test"
        conn = psycopg.connect(admin, autocommit=True)
    user = conn.info.user
    with conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    try:
        yield f"postgresql+psycopg://{user}@{PG_HOST}:{PG_PORT}/{name}"
    finally:
        from modelyard.tracking.backends import reset_cache

        reset_cache()
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture
def settings(tmp_path) -> Settings:
    return Settings(home=tmp_path / "yard")


@pytest.fixture(params=["sqlite", "postgres"])
def backend_settings(request, tmp_path) -> Settings:
    """Settings for each metadata backend: the same suite runs on SQLite and PostgreSQL."""
    if request.param == "sqlite":
        return Settings(home=tmp_path / "yard")
    uri = request.getfixturevalue("postgres_uri")
    return Settings(home=tmp_path / "yard", store_uri=uri)


def _migrated(uri: str) -> Iterator[Database]:
    from modelyard.store.engine import open_database
    from modelyard.store.migrations import ensure_schema

    db = open_database(uri)
    ensure_schema(db)
    try:
        yield db
    finally:
        db.dispose()


@pytest.fixture(params=["sqlite", "postgres"])
def metadata_db(request, tmp_path) -> Iterator[Database]:
    """A migrated metadata database, once per backend (the rooms' storage tests)."""
    if request.param == "sqlite":
        uri = f"sqlite:///{tmp_path / 'meta.db'}"
    else:
        uri = request.getfixturevalue("postgres_uri")
    yield from _migrated(uri)


@pytest.fixture
def sqlite_db(tmp_path) -> Iterator[Database]:
    """A migrated SQLite metadata database (for tests about logic, not backends)."""
    yield from _migrated(f"sqlite:///{tmp_path / 'meta.db'}")


@pytest.fixture
def client(backend_settings):
    from modelyard.tracking.client import TrackingClient

    return TrackingClient.from_settings(backend_settings)


@pytest.fixture
def local_client(settings):
    from modelyard.tracking.client import TrackingClient

    return TrackingClient.from_settings(settings)


@pytest.fixture
def fluent(settings):
    """The fluent API pointed at a fresh local store; any run left active is ended."""
    from modelyard.tracking import fluent as api

    client = api.configure(settings)
    yield api
    while api.active_run() is not None:
        api.end_run()
    client.flush()
