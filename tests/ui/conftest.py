"""The browser tests' fixtures: one real ``modelyard server`` per session, one headless
Chromium per test file, and runs logged into the server by the unmodified mlflow client.

Chromium is Debian's ``/usr/bin/chromium`` driven by the ``playwright`` package (the dev
extra); without it the tests skip and say why. Each test gets a fresh page that refuses
every request leaving the server and records console messages, page errors and failed
requests; ``clean_page.check()`` asserts there were none.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from tests.server.conftest import LiveServer, server_env, start_server, stop_server
from tests.ui.governance_yard import Yard, write_yard

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"]
LOG_SCRIPT = Path(__file__).with_name("log_runs.py")


@dataclass(frozen=True)
class Logged:
    """What log_runs.py logged, and the links the mlflow client printed."""

    stdout: str
    run_links: dict[str, str]  # run name -> "View run ... at" URL
    experiment_links: list[str]
    ids: dict[str, str]  # ARTIFACT_RUN / HOSTILE_RUN / LONG_RUN -> run id


@pytest.fixture(scope="session")
def ui_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    home = tmp_path_factory.mktemp("ui-server") / "yard"
    url, log, process = start_server(home)
    try:
        yield LiveServer(url, home, log, process)
    finally:
        stop_server(process)


@pytest.fixture(scope="session")
def logged(ui_server: LiveServer, tmp_path_factory: pytest.TempPathFactory) -> Logged:
    pytest.importorskip("mlflow")
    workdir = tmp_path_factory.mktemp("ui-client")
    env = server_env(workdir / "client-home")
    env.update(
        MLFLOW_TRACKING_URI=ui_server.url,
        MLFLOW_HTTP_REQUEST_MAX_RETRIES="0",
        MLFLOW_DISABLE_TELEMETRY="true",
        DO_NOT_TRACK="true",
        PYTHONIOENCODING="utf-8",
    )
    done = subprocess.run(
        [sys.executable, str(LOG_SCRIPT)],
        cwd=workdir,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-4000:]
    run_links = dict(re.findall(r"View run (.+?) at: (\S+)", done.stdout))
    experiments = re.findall(r"View experiment at: (\S+)", done.stdout)
    ids = dict(re.findall(r"^([A-Z_]+_RUN) (\w+)$", done.stdout, flags=re.MULTILINE))
    return Logged(done.stdout, run_links, experiments, ids)


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    """Chromium for one test file, closed when it ends: Playwright's sync API keeps an
    event loop running in this thread while it is open, and a later test that runs one of
    its own (``asyncio.run``, an ASGI client) would fail. Under pytest-xdist a worker runs
    other files after these, in no fixed order. (``package`` scope would be the session
    here: tests/ui has no ``__init__.py``.)"""
    if not CHROMIUM.exists():
        pytest.skip(f"{CHROMIUM} is missing (Debian package chromium): the browser tests need it")
    sync_api = pytest.importorskip("playwright.sync_api", reason="the dev extra's playwright")
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            yield browser
        finally:
            browser.close()


@dataclass
class CleanPage:
    """A page that stays on ``origin``, and what went wrong on it."""

    page: Any
    origin: str
    problems: list[str] = field(default_factory=list)
    dialogs: list[str] = field(default_factory=list)

    def check(self) -> None:
        assert not self.problems, self.problems
        assert not self.dialogs, self.dialogs


def watch(page: Any, origin: str) -> CleanPage:
    """Refuse every request leaving ``origin``; record console errors and warnings, page
    errors, failed requests and dialogs."""
    page.set_default_timeout(15_000)
    watched = CleanPage(page, origin)

    def route(r: Any) -> None:
        if r.request.url.startswith(origin + "/") or r.request.url.startswith("blob:"):
            r.continue_()
        else:
            watched.problems.append(f"request left the server: {r.request.url}")
            r.abort()

    def console(message: Any) -> None:
        if message.type in ("error", "warning"):
            watched.problems.append(f"console {message.type}: {message.text}")

    def dialog(d: Any) -> None:
        watched.dialogs.append(d.message)
        d.dismiss()

    page.route("**/*", route)
    page.on("console", console)
    page.on("pageerror", lambda e: watched.problems.append(f"page error: {e}"))
    page.on("requestfailed", lambda r: watched.problems.append(f"failed: {r.url} {r.failure}"))
    page.on("dialog", dialog)
    return watched


@pytest.fixture
def clean_page(browser: Any, ui_server: LiveServer) -> Iterator[CleanPage]:
    context = browser.new_context(viewport={"width": 1400, "height": 1000})
    try:
        yield watch(context.new_page(), ui_server.url)
    finally:
        context.close()


@pytest.fixture(scope="session")
def yard_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[LiveServer, Yard]]:
    """A ``--auth`` server over a registry, a deployment and a prediction log
    (``governance_yard``), with a token per role."""
    tmp = tmp_path_factory.mktemp("ui-yard")
    yard = write_yard(tmp, tmp / "yard")
    url, log, process = start_server(tmp / "yard", "--auth")
    try:
        yield LiveServer(url, tmp / "yard", log, process), yard
    finally:
        stop_server(process)


def screenshot(page: Any, name: str) -> None:
    """Keep a screenshot when ``MODELYARD_UI_SCREENSHOTS`` names a folder (CI keeps them)."""
    folder = os.environ.get("MODELYARD_UI_SCREENSHOTS")
    if folder:
        Path(folder).mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(Path(folder) / f"{name}.png"), full_page=True)
