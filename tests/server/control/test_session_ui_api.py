"""The web UI's session: a checked token becomes an HttpOnly, SameSite=Strict cookie
(Secure over https); requests with the cookie authenticate like the token; changes made
with the cookie need the UI's CSRF header and this server's origin; the UI's requests
get no Basic challenge (no browser prompt); signing out clears the cookie."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from tests.server.conftest import assert_error
from tests.server.control.ui_app import UiApp, serve_yard

from modelyard.server.http.auth_middleware import SESSION_COOKIE

SESSION = "/api/v1/session"
UI = {"X-Modelyard-CSRF": "1"}
CHANGE = "/api/v1/deployments/web/rollback"


@pytest.fixture(scope="module")
def ui(tmp_path_factory: pytest.TempPathFactory) -> Iterator[UiApp]:
    yield from serve_yard(tmp_path_factory.mktemp("session-ui"))


@pytest.fixture
def signed_in(ui: UiApp) -> Iterator[UiApp]:
    ui.http.cookies.clear()
    answer = ui.http.post(SESSION, headers={**UI, **ui.as_user("ed")})
    assert answer.status_code == 200, answer.text
    yield ui
    ui.http.cookies.clear()


def test_signing_in_sets_an_httponly_strict_cookie(ui: UiApp) -> None:
    ui.http.cookies.clear()
    answer = ui.http.post(SESSION, headers={**UI, **ui.as_user("victor")})
    assert answer.json() == {"auth": True, "user": "victor", "role": "viewer"}
    cookie = answer.headers["set-cookie"]
    assert cookie.startswith(f"{SESSION_COOKIE}={ui.yard.tokens['victor']};")
    assert "HttpOnly" in cookie and "SameSite=strict" in cookie and "Secure" not in cookie
    assert "Max-Age" not in cookie  # a browser-session cookie
    ui.http.cookies.clear()


def test_over_https_the_cookie_is_secure(tmp_path_factory: pytest.TempPathFactory) -> None:
    for ui in serve_yard(tmp_path_factory.mktemp("session-https"), "https://testserver"):
        answer = ui.http.post(SESSION, headers={**UI, **ui.as_user("victor")})
        assert "Secure" in answer.headers["set-cookie"]


def test_a_wrong_token_sets_nothing_and_prompts_nothing(ui: UiApp) -> None:
    ui.http.cookies.clear()
    answer = ui.http.post(SESSION, headers={**UI, "Authorization": "Bearer myd_wrong"})
    assert_error(answer, 401, "UNAUTHENTICATED")
    assert "set-cookie" not in answer.headers
    assert "www-authenticate" not in answer.headers  # the UI shows its own form
    other = ui.http.get(SESSION)  # API clients still get the challenge
    assert "Basic" in ",".join(other.headers.get_list("www-authenticate"))


def test_the_cookie_authenticates_reads(signed_in: UiApp) -> None:
    assert signed_in.http.get(SESSION).json()["user"] == "ed"


@pytest.mark.parametrize(
    "headers",
    [{}, {"Origin": "http://evil.example", **UI}, {"Origin": "http://testserver.evil", **UI}],
)
def test_a_change_with_the_cookie_needs_the_header_and_this_origin(
    signed_in: UiApp, headers: dict
) -> None:
    refused = signed_in.http.post(CHANGE, headers=headers, json={})
    assert "x-modelyard-csrf" in assert_error(refused, 403, "PERMISSION_DENIED")["message"]


def test_a_change_from_the_ui_goes_through(signed_in: UiApp) -> None:
    answer = signed_in.http.post(
        "/api/v1/deployments/web/switch", headers={"Origin": "http://testserver", **UI}, json={}
    )
    assert answer.status_code == 200, answer.text


def test_a_token_needs_no_csrf_header(ui: UiApp) -> None:
    ui.http.cookies.clear()
    answer = ui.http.post("/api/v1/deployments/web/switch", headers=ui.as_user("ed"), json={})
    assert answer.status_code == 200, answer.text


def test_signing_out_clears_the_cookie(signed_in: UiApp) -> None:
    answer = signed_in.http.delete(SESSION, headers=UI)
    assert f'{SESSION_COOKIE}=""' in answer.headers["set-cookie"]
    assert "Max-Age=0" in answer.headers["set-cookie"]
    assert signed_in.http.get(SESSION, headers=UI).status_code == 401
