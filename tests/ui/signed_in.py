"""A browser page of the governance yard's server, signed in as one of its users (the
session cookie the sign-in form would get, set directly: only test_session drives the
form)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from tests.server.conftest import LiveServer
from tests.ui.conftest import CleanPage, watch

from modelyard.server.http.auth_middleware import SESSION_COOKIE


@contextmanager
def signed_in(browser: Any, server: LiveServer, token: str) -> Iterator[CleanPage]:
    context = browser.new_context(viewport={"width": 1400, "height": 1000})
    try:
        context.add_cookies(
            [
                {
                    "name": SESSION_COOKIE,
                    "value": token,
                    "url": server.url,
                    "httpOnly": True,
                    "sameSite": "Strict",
                }
            ]
        )
        yield watch(context.new_page(), server.url)
    finally:
        context.close()
