"""``modelyard server --auth``: the UI loads without a token, asks for one when the API
answers 401, keeps it for the tab (sessionStorage) and sends it as a Bearer header; a
wrong token is refused with the server's reason; signing out forgets it."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from tests.server.conftest import LiveServer, start_server, stop_server

from modelyard.auth.service import AuthService
from modelyard.config import Settings
from modelyard.tracking.backends import database_for

pytestmark = pytest.mark.slow

UNAUTHORIZED = (
    "console error: Failed to load resource: the server responded with a status of 401 "
    "(Unauthorized)"
)


@pytest.fixture(scope="module")
def auth_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[LiveServer, str]]:
    home = tmp_path_factory.mktemp("ui-auth") / "yard"
    url, log, process = start_server(home, "--auth")
    try:
        auth = AuthService(database_for(Settings(home=home)))
        auth.create_user("victor", "viewer")
        yield LiveServer(url, home, log, process), auth.create_token("victor").token
    finally:
        stop_server(process)


def open_page(browser: Any, url: str) -> tuple[Any, Any, list[str]]:
    context = browser.new_context()
    page = context.new_page()
    page.set_default_timeout(15_000)
    problems: list[str] = []
    page.on("console", lambda m: problems.append(f"console {m.type}: {m.text}"))
    page.on("pageerror", lambda e: problems.append(f"page error: {e}"))
    page.goto(url)
    return context, page, problems


def test_a_viewer_signs_in_with_a_token_and_out_again(
    browser: Any, auth_server: tuple[LiveServer, str]
) -> None:
    server, token = auth_server
    context, page, problems = open_page(browser, server.url + "/#/experiments")
    try:
        page.wait_for_selector(".signin")
        assert problems == [UNAUTHORIZED]  # the one call that found out a token is needed

        page.fill("input[name=token]", "my_wrong_token")
        page.click(".signin button[type=submit]")
        page.wait_for_selector(".signin .error")
        assert page.evaluate("sessionStorage.getItem('modelyard.token')") is None

        page.fill("input[name=token]", token)
        page.click(".signin button[type=submit]")
        page.wait_for_selector("h1:text-is('Experiments')")
        assert page.evaluate("sessionStorage.getItem('modelyard.token')") == token
        page.reload()  # the tab keeps it
        page.wait_for_selector("h1:text-is('Experiments')")

        other_context, other, _ = open_page(browser, server.url + "/#/experiments")
        other.wait_for_selector(".signin")  # another session does not share it
        other_context.close()

        page.click("#session button")  # sign out
        page.wait_for_selector(".signin")
        assert page.evaluate("sessionStorage.getItem('modelyard.token')") is None
        assert all(p == UNAUTHORIZED for p in problems), problems
    finally:
        context.close()
