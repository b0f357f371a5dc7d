"""``modelyard server --auth`` in Chromium: the UI loads without a session and asks for a
token when the API answers 401; the token is exchanged once for a session cookie that no
script can read (HttpOnly, SameSite=Strict); a wrong token is refused with the server's
reason; the session survives a reload, is not shared with another browser session, and
signing out ends it. A change sent with the cookie but without the UI's CSRF header is
refused."""

from __future__ import annotations

from typing import Any

import pytest
from tests.server.conftest import LiveServer
from tests.ui.conftest import screenshot, watch
from tests.ui.governance_yard import Yard

from modelyard.server.http.auth_middleware import SESSION_COOKIE

pytestmark = pytest.mark.slow

UNAUTHORIZED = (
    "console error: Failed to load resource: the server responded with a status of 401 "
    "(Unauthorized)"
)


def session_cookies(context: Any) -> list[dict[str, Any]]:
    return [c for c in context.cookies() if c["name"] == SESSION_COOKIE]


def test_a_viewer_signs_in_with_a_token_and_out_again(
    browser: Any, yard_server: tuple[LiveServer, Yard]
) -> None:
    server, yard = yard_server
    context = browser.new_context()
    try:
        clean = watch(context.new_page(), server.url)
        page = clean.page
        page.goto(server.url + "/#/experiments")
        page.wait_for_selector(".signin")
        assert set(clean.problems) == {UNAUTHORIZED}  # the calls that found out
        assert not clean.dialogs  # no Basic prompt of the browser's own

        page.fill("input[name=token]", "my_wrong_token")
        page.click(".signin button[type=submit]")
        page.wait_for_selector(".signin .error")
        assert session_cookies(context) == []

        page.fill("input[name=token]", yard.tokens["victor"])
        page.click(".signin button[type=submit]")
        page.wait_for_selector("h1:text-is('Experiments')")
        (cookie,) = session_cookies(context)
        assert cookie["httpOnly"] and cookie["sameSite"] == "Strict"
        assert SESSION_COOKIE not in page.evaluate("document.cookie")  # no script reads it
        page.wait_for_selector("#session :text('victor (viewer)')")
        screenshot(page, "session-signed-in")
        page.reload()  # the browser session keeps it
        page.wait_for_selector("h1:text-is('Experiments')")

        other = browser.new_context()
        try:
            other_page = other.new_page()
            other_page.goto(server.url + "/#/experiments")
            other_page.wait_for_selector(".signin")  # another session does not share it
        finally:
            other.close()

        page.click("#session button")  # sign out
        page.wait_for_selector(".signin")
        assert session_cookies(context) == []
        assert set(clean.problems) == {UNAUTHORIZED}, clean.problems
        assert not clean.dialogs
    finally:
        context.close()


def test_a_change_with_the_cookie_needs_the_uis_csrf_header(
    browser: Any, yard_server: tuple[LiveServer, Yard]
) -> None:
    server, yard = yard_server
    context = browser.new_context()
    try:
        page = context.new_page()
        page.goto(server.url + "/#/experiments")
        page.wait_for_selector(".signin")
        page.fill("input[name=token]", yard.tokens["ed"])
        page.click(".signin button[type=submit]")
        page.wait_for_selector("h1:text-is('Experiments')")
        status = page.evaluate(
            """async () => {
                const r = await fetch('/api/v1/deployments/web/switch', {method: 'POST',
                    credentials: 'same-origin', headers: {'Content-Type': 'application/json'},
                    body: '{}'});
                return [r.status, (await r.json()).message];
            }"""
        )
        assert status[0] == 403 and "x-modelyard-csrf" in status[1]
    finally:
        context.close()
