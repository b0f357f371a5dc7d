"""Failed authentication is rate-limited: the attacks first, then the clients that must
not suffer for it (successful callers, the owner of a token id under attack, the mlflow
client that retries 429)."""

from __future__ import annotations

import secrets
from collections import Counter

import httpx
import pytest
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Route

from modelyard.auth import service as auth_service
from modelyard.auth.lockout import FailureLockout
from modelyard.auth.service import AuthService
from modelyard.server.control.auth import DEFAULT_RULES, OPEN_PATHS
from modelyard.server.http.auth_middleware import AuthMiddleware, address_key
from modelyard.tracking.backends import database_for

SEARCH = "/api/2.0/mlflow/experiments/search"
ATTACKER = "203.0.113.66"
MAX_FAILURES = 5


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def yard(settings, clock):
    """(auth service counting its token checks, lockout, app) behind the middleware."""
    auth = AuthService(database_for(settings))
    checked = Counter()
    verify = auth.authenticate

    def counting(token: str):
        checked["tokens"] += 1
        return verify(token)

    auth.authenticate = counting  # what each check costs: a query, a hash

    async def search(request: Request) -> Response:
        return JSONResponse({"experiments": []})

    async def health(request: Request) -> Response:
        return PlainTextResponse("OK")

    lockout = FailureLockout(max_failures=MAX_FAILURES, lockout_s=30, clock=clock)
    app = Starlette(
        routes=[Route(SEARCH, search), Route("/health", health)],
        middleware=[
            Middleware(
                AuthMiddleware,
                service=auth,
                open_paths=OPEN_PATHS,
                rules=DEFAULT_RULES,
                lockout=lockout,
            )
        ],
    )
    auth.create_user("alice", "viewer")
    return auth, checked, lockout, app


def client(app, host: str) -> httpx.AsyncClient:
    transport = httpx.ASGITransport(app=app, client=(host, 40_000))
    return httpx.AsyncClient(transport=transport, base_url="http://yard")


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def forged() -> str:
    return f"myd_{secrets.token_hex(6)}_{secrets.token_urlsafe(32)}"


def assert_limited(response: httpx.Response, *, at_most_s: int = 30) -> dict:
    assert response.status_code == 429, response.text
    assert 1 <= int(response.headers["retry-after"]) <= at_most_s
    body = response.json()
    assert body["error_code"] == "REQUEST_LIMIT_EXCEEDED" and "retry" not in body
    assert "too many failed authentications" in body["message"]
    return body


@pytest.mark.anyio
async def test_a_thousand_wrong_tokens_get_429_after_the_limit_without_being_checked(yard):
    _, checked, _, app = yard
    statuses = Counter()
    async with client(app, ATTACKER) as http:
        for i in range(1000):
            token = forged() if i % 2 else "myd_not-even-a-token"
            response = await http.get(SEARCH, headers=bearer(token))
            statuses[response.status_code] += 1
            if i == MAX_FAILURES:
                message = assert_limited(response)["message"]
                assert ATTACKER in message and "whatever their credentials" in message
    assert statuses == {401: MAX_FAILURES, 429: 1000 - MAX_FAILURES}
    assert checked["tokens"] == MAX_FAILURES  # a locked-out address costs no query


@pytest.mark.anyio
async def test_a_locked_out_address_is_refused_even_a_correct_token_but_others_are_not(yard):
    auth, _, _, app = yard
    good = bearer(auth.create_token("alice").token)
    async with client(app, ATTACKER) as attacker, client(app, "198.51.100.7") as colleague:
        for _ in range(MAX_FAILURES):
            assert (await attacker.get(SEARCH, headers=bearer(forged()))).status_code == 401
        assert_limited(await attacker.get(SEARCH, headers=good))
        assert (await attacker.get("/health")).status_code == 200  # open paths stay open
        assert (await colleague.get(SEARCH, headers=good)).status_code == 200


@pytest.mark.anyio
async def test_the_lockout_ends_and_the_next_failure_is_a_plain_401(yard, clock):
    _, _, _, app = yard
    async with client(app, ATTACKER) as http:
        for _ in range(MAX_FAILURES):
            await http.get(SEARCH, headers=bearer(forged()))
        assert_limited(await http.get(SEARCH, headers=bearer(forged())))
        clock.now += 30
        response = await http.get(SEARCH, headers=bearer(forged()))
        assert response.status_code == 401 and "retry-after" not in response.headers


@pytest.mark.anyio
async def test_successful_and_credential_free_requests_are_never_counted(yard):
    auth, _, lockout, app = yard
    good = bearer(auth.create_token("alice").token)
    async with client(app, "198.51.100.7") as http:
        for _ in range(200):
            assert (await http.get(SEARCH, headers=good)).status_code == 200
            assert (await http.get(SEARCH)).status_code == 401  # no credentials: no guess
    assert len(lockout) == 0


@pytest.mark.anyio
async def test_guesses_at_one_token_id_from_many_addresses_are_limited_but_its_owner_is_not(
    yard,
):
    auth, _, _, app = yard
    issued = auth.create_token("alice")
    token_id = issued.info.token_id
    statuses = []
    for i in range(3 * MAX_FAILURES):  # a botnet: one guess per address
        async with client(app, f"192.0.2.{i + 1}") as http:
            guess = f"myd_{token_id}_{secrets.token_urlsafe(32)}"
            response = await http.get(SEARCH, headers=bearer(guess))
            statuses.append(response.status_code)
    assert statuses == [401] * MAX_FAILURES + [429] * (2 * MAX_FAILURES)
    assert f"token {token_id}" in response.json()["message"]
    async with client(app, "192.0.2.200") as owner:  # the right token still works
        assert (await owner.get(SEARCH, headers=bearer(issued.token))).status_code == 200


@pytest.mark.anyio
async def test_basic_credentials_count_against_the_user_they_claim(yard):
    import base64

    _, _, _, app = yard
    statuses = []
    for i in range(MAX_FAILURES + 1):
        basic = base64.b64encode(f"alice:{forged()}".encode()).decode()
        async with client(app, f"192.0.2.{i + 1}") as http:
            response = await http.get(SEARCH, headers={"Authorization": f"Basic {basic}"})
            statuses.append(response.status_code)
    assert statuses[-1] == 429 and "user 'alice'" in response.json()["message"]


@pytest.mark.anyio
async def test_a_flood_of_forged_token_ids_from_many_addresses_keeps_memory_bounded(
    settings, clock
):
    auth = AuthService(database_for(settings))
    lockout = FailureLockout(max_failures=MAX_FAILURES, max_keys=500, clock=clock)

    async def search(request: Request) -> Response:
        return JSONResponse({})

    app = Starlette(
        routes=[Route(SEARCH, search)],
        middleware=[
            Middleware(
                AuthMiddleware,
                service=auth,
                open_paths=OPEN_PATHS,
                rules=DEFAULT_RULES,
                lockout=lockout,
            )
        ],
    )
    for i in range(400):
        async with client(app, f"10.1.{i >> 8}.{i & 255}") as http:
            for _ in range(3):
                await http.get(SEARCH, headers=bearer(forged()))
    assert len(lockout) == 500  # 1,600 keys seen, at most 500 held


@pytest.mark.anyio
async def test_an_expired_token_is_401_saying_when(yard, monkeypatch):
    auth, _, _, app = yard
    issued = auth.create_token("alice", expires_in_s=60)
    later = issued.info.expires_at + 1
    monkeypatch.setattr(auth_service, "now_ms", lambda: later)
    async with client(app, "198.51.100.7") as http:
        response = await http.get(SEARCH, headers=bearer(issued.token))
    assert response.status_code == 401
    assert f"API token {issued.info.token_id} expired at " in response.json()["message"]


@pytest.mark.parametrize(
    ("host", "key"),
    [
        ("203.0.113.7", "addr:203.0.113.7"),
        ("2001:db8:1:2:aaaa::1", "addr:2001:db8:1:2::/64"),
        ("2001:db8:1:2:ffff::9", "addr:2001:db8:1:2::/64"),  # the same host's block
        ("::ffff:203.0.113.7", "addr:203.0.113.7"),
        ("", "addr:unknown"),
    ],
)
def test_an_ipv6_client_is_counted_by_its_64_block(host, key):
    assert address_key({"client": (host, 1) if host else None}) == key


# -- the unmodified mlflow client -------------------------------------------------------------


@pytest.mark.timeout(120)  # a client that retried forever would hang here
def test_the_mlflow_client_with_a_wrong_token_fails_clearly_and_never_hangs(settings, monkeypatch):
    pytest.importorskip("mlflow")
    from mlflow import MlflowClient
    from mlflow.exceptions import MlflowException
    from tests.serving.conftest import InProcessServer

    from modelyard.server.control.app import create_app
    from modelyard.tracking.client import TrackingClient

    auth = AuthService(database_for(settings))
    lockout = FailureLockout(max_failures=2, lockout_s=1)
    app = create_app(
        settings,
        TrackingClient.from_settings(settings),
        middleware=[
            Middleware(
                AuthMiddleware,
                service=auth,
                open_paths=OPEN_PATHS,
                rules=DEFAULT_RULES,
                lockout=lockout,
            )
        ],
    )
    statuses: list[int] = []

    async def recording(scope, receive, send):
        async def record(message):
            if message["type"] == "http.response.start":
                statuses.append(message["status"])
            await send(message)

        await app(scope, receive, record)

    with InProcessServer(recording) as server:
        monkeypatch.setenv("MLFLOW_TRACKING_URI", server.url)
        monkeypatch.setenv("MLFLOW_TRACKING_TOKEN", forged())
        monkeypatch.setenv("MLFLOW_DISABLE_TELEMETRY", "true")
        monkeypatch.delenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", raising=False)  # its default: 7
        for _ in range(5):
            with pytest.raises(MlflowException, match="invalid API token"):
                MlflowClient().search_experiments()
    # 429 with Retry-After: 1, slept, retried once, then the real 401: never 7 retries
    assert statuses == [401, 401, 429, 401, 401, 429, 401]
