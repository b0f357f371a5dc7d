"""Tokens with an expiry: refused from that moment on, cached or not, saying when."""

from __future__ import annotations

import pytest

from modelyard.auth import service as auth_service
from modelyard.auth.service import AuthService
from modelyard.errors import InvalidParameter, Unauthenticated
from modelyard.tracking.backends import database_for


@pytest.fixture
def clock(monkeypatch):
    """Wall-clock milliseconds as the service sees them, moved by the test."""
    now = {"ms": 1_800_000_000_000}
    monkeypatch.setattr(auth_service, "now_ms", lambda: now["ms"])
    return now


@pytest.fixture
def auth(settings):
    service = AuthService(database_for(settings))
    service.create_user("ci", "editor")
    return service


def test_an_expired_token_is_refused_saying_when(auth, clock):
    issued = auth.create_token("ci", "nightly", expires_in_s=90 * 86400)
    assert issued.info.expires_at == clock["ms"] + 90 * 86400 * 1000
    assert auth.authenticate(issued.token).user == "ci"
    clock["ms"] = issued.info.expires_at  # the last millisecond is already too late
    with pytest.raises(Unauthenticated) as refused:
        auth.authenticate(issued.token)
    message = str(refused.value)
    assert f"API token {issued.info.token_id} expired at 2027-04-15 08:00:00 UTC" in message
    assert "tokens create --user ci" in message


def test_a_token_without_an_expiry_never_expires(auth, clock):
    issued = auth.create_token("ci")
    clock["ms"] += 10 * 365 * 86400 * 1000
    assert auth.authenticate(issued.token).user == "ci"
    (info,) = auth.list_tokens("ci")
    assert info.expires_at is None and not info.expired()


def test_the_cache_never_outlives_the_expiry(settings, clock):
    mono = {"s": 0.0}
    cached = AuthService(database_for(settings), cache_ttl_s=60, clock=lambda: mono["s"])
    cached.create_user("ci", "viewer")
    issued = cached.create_token("ci", expires_in_s=5)
    assert cached.authenticate(issued.token).user == "ci"
    mono["s"], clock["ms"] = 4.0, clock["ms"] + 4000
    assert cached.from_cache(issued.token) is not None
    mono["s"], clock["ms"] = 5.0, clock["ms"] + 1000  # the cache says 60 s, the token 5 s
    assert cached.from_cache(issued.token) is None
    with pytest.raises(Unauthenticated, match="expired"):
        cached.authenticate(issued.token)


def test_list_tokens_shows_the_expiry(auth, clock):
    issued = auth.create_token("ci", expires_in_s=3600)
    (info,) = auth.list_tokens("ci")
    assert info.expires_at == issued.info.expires_at and not info.expired()
    assert info.expired(clock["ms"] + 3600 * 1000)


@pytest.mark.parametrize("lifetime", [0, -1.0])
def test_a_lifetime_must_be_positive(auth, lifetime):
    with pytest.raises(InvalidParameter, match="more than 0 seconds"):
        auth.create_token("ci", expires_in_s=lifetime)
