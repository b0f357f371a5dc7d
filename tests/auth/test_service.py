"""``AuthService``: users, roles, tokens stored only as digests, constant-time checks."""

from __future__ import annotations

import hashlib
import hmac

import pytest
from sqlalchemy import select

from modelyard.auth import service as auth_service
from modelyard.auth.roles import Role
from modelyard.auth.service import LAST_USED_EVERY_MS, AuthService, Principal
from modelyard.auth.tables import auth_tokens
from modelyard.errors import (
    AlreadyExists,
    InvalidParameter,
    InvalidState,
    NotFound,
    Unauthenticated,
)
from modelyard.store.engine import open_database
from modelyard.store.migrations import ensure_schema


def open_store(settings):
    db = open_database(settings.resolved_store_uri())
    ensure_schema(db)  # a new database gets every room's tables, auth's included
    return db


@pytest.fixture
def db(settings):
    """SQLite; ``test_the_whole_life_of_a_token_on_each_backend`` covers PostgreSQL."""
    db = open_store(settings)
    yield db
    db.dispose()


@pytest.fixture
def auth(db):
    return AuthService(db)


def test_users_are_created_listed_and_given_new_roles(auth):
    auth.create_user("bo", "viewer")
    alice = auth.create_user("alice", Role.EDITOR)
    assert alice.name == "alice" and alice.role is Role.EDITOR and not alice.disabled
    assert [(u.name, u.role) for u in auth.list_users()] == [("alice", "editor"), ("bo", "viewer")]
    assert auth.set_role("bo", "APPROVER").role is Role.APPROVER
    assert auth.get_user("bo").role is Role.APPROVER


def test_bad_user_input_names_the_field_and_changes_nothing(auth):
    auth.create_user("alice", "editor")
    with pytest.raises(AlreadyExists, match="'alice' already exists"):
        auth.create_user("alice", "viewer")
    for bad in ("", "has space", "a:b", "-lead", "x" * 257):
        with pytest.raises(InvalidParameter) as caught:
            auth.create_user(bad, "viewer")
        assert caught.value.field == "name"
    with pytest.raises(InvalidParameter, match="viewer, editor, approver, admin"):
        auth.create_user("bo", "owner")
    with pytest.raises(NotFound, match="users list"):
        auth.set_role("nobody", "viewer")
    assert [u.name for u in auth.list_users()] == ["alice"]


def test_a_token_is_shown_once_and_stored_only_as_its_sha256(auth, db):
    auth.create_user("alice", "editor")
    issued = auth.create_token("alice", label="laptop")
    assert issued.token.startswith(f"myd_{issued.info.token_id}_") and len(issued.token) > 50
    assert issued.token not in repr(issued)
    with db.engine.connect() as conn:
        rows = [dict(r._mapping) for r in conn.execute(select(auth_tokens))]
    assert len(rows) == 1
    secret = issued.token.split("_", 2)[2]
    assert not any(secret in str(value) for value in rows[0].values())
    assert rows[0]["token_sha256"] == hashlib.sha256(issued.token.encode()).hexdigest()
    assert rows[0]["label"] == "laptop" and rows[0]["user_name"] == "alice"


def test_a_token_authenticates_as_its_user_with_their_role(auth):
    auth.create_user("alice", "editor")
    issued = auth.create_token("alice")
    assert auth.authenticate(issued.token) == Principal("alice", Role.EDITOR, issued.info.token_id)
    auth.set_role("alice", "approver")
    assert auth.authenticate(issued.token).role is Role.APPROVER


def test_wrong_unknown_and_malformed_tokens_are_refused(auth):
    auth.create_user("alice", "editor")
    token = auth.create_token("alice").token
    tampered = token[:-1] + ("A" if token[-1] != "A" else "B")
    unknown_id = "myd_000000000000_" + token.split("_", 2)[2]
    for bad in (tampered, unknown_id):
        with pytest.raises(Unauthenticated, match="invalid API token"):
            auth.authenticate(bad)
    for malformed in ("", "secret", token + " ", "Bearer " + token):
        with pytest.raises(Unauthenticated, match="not a modelyard API token"):
            auth.authenticate(malformed)


def test_digests_are_compared_in_constant_time_even_for_unknown_ids(auth, monkeypatch):
    auth.create_user("alice", "editor")
    token = auth.create_token("alice").token
    calls: list[tuple[str, str]] = []
    real = hmac.compare_digest

    def spy(a, b):
        calls.append((a, b))
        return real(a, b)

    monkeypatch.setattr(auth_service.hmac, "compare_digest", spy)
    auth.authenticate(token)
    with pytest.raises(Unauthenticated):
        auth.authenticate("myd_000000000000_" + "x" * 43)
    digest = hashlib.sha256(token.encode()).hexdigest()
    assert calls[0] == (digest, digest)
    assert len(calls) == 2 and len(calls[1][1]) == 64  # compared against a dummy digest


def test_revoked_tokens_stop_working_whichever_way_they_are_named(auth):
    auth.create_user("alice", "editor")
    by_id, by_prefix, by_token = (auth.create_token("alice") for _ in range(3))
    assert auth.revoke_token(by_id.info.token_id).revoked
    assert auth.revoke_token(by_prefix.info.token_id[:6]).token_id == by_prefix.info.token_id
    assert auth.revoke_token(by_token.token).token_id == by_token.info.token_id
    for issued in (by_id, by_prefix, by_token):
        with pytest.raises(Unauthenticated, match="has been revoked"):
            auth.authenticate(issued.token)
    again = auth.revoke_token(by_id.info.token_id)  # idempotent: the first time is kept
    listed = {t.token_id: t for t in auth.list_tokens("alice")}  # same-ms creations: any order
    assert again.revoked_at == listed[by_id.info.token_id].revoked_at
    assert auth.list_tokens("alice", include_revoked=False) == []


def test_revoking_by_an_unknown_short_or_ambiguous_id_explains(auth, monkeypatch):
    auth.create_user("alice", "editor")
    ids = iter(["abcd00000001", "abcd00000002"])
    monkeypatch.setattr(auth_service.secrets, "token_hex", lambda n: next(ids))
    auth.create_token("alice"), auth.create_token("alice")
    with pytest.raises(NotFound, match="tokens list"):
        auth.revoke_token("ffff")
    with pytest.raises(InvalidParameter, match="at least its first 4"):
        auth.revoke_token("abc")
    with pytest.raises(InvalidParameter, match=r"matches 2 tokens.*give more characters"):
        auth.revoke_token("abcd")
    assert not any(t.revoked for t in auth.list_tokens())
    assert auth.revoke_token("abcd00000002").token_id == "abcd00000002"


def test_a_disabled_user_cannot_authenticate_until_enabled(auth):
    auth.create_user("alice", "editor")
    token = auth.create_token("alice").token
    auth.set_disabled("alice", True)
    with pytest.raises(Unauthenticated, match="'alice' is disabled"):
        auth.authenticate(token)
    with pytest.raises(InvalidState, match="users enable alice"):
        auth.create_token("alice")
    auth.set_disabled("alice", False)
    assert auth.authenticate(token).user == "alice"


def test_last_use_is_recorded_at_most_once_a_minute(auth, monkeypatch):
    auth.create_user("alice", "editor")
    issued = auth.create_token("alice")
    now = [1_000_000]
    monkeypatch.setattr(auth_service, "now_ms", lambda: now[0])
    auth.authenticate(issued.token)
    assert auth.list_tokens()[0].last_used_at == 1_000_000
    now[0] += LAST_USED_EVERY_MS - 1
    auth.authenticate(issued.token)
    assert auth.list_tokens()[0].last_used_at == 1_000_000
    now[0] += 1
    auth.authenticate(issued.token)
    assert auth.list_tokens()[0].last_used_at == 1_000_000 + LAST_USED_EVERY_MS


def test_the_cache_forgets_its_own_revocations_at_once_and_others_after_the_ttl(db):
    clock = [0.0]
    server = AuthService(db, cache_ttl_s=2.0, clock=lambda: clock[0])
    admin_cli = AuthService(db)  # another process: the `modelyard tokens` command
    admin_cli.create_user("alice", "editor")
    first, second = admin_cli.create_token("alice"), admin_cli.create_token("alice")
    assert server.authenticate(first.token).user == "alice"
    assert server.from_cache(first.token) is not None

    server.revoke_token(first.info.token_id)
    with pytest.raises(Unauthenticated):
        server.authenticate(first.token)

    server.authenticate(second.token)
    admin_cli.revoke_token(second.info.token_id)
    assert server.authenticate(second.token).user == "alice"  # cached: still accepted
    clock[0] += 2.0
    assert server.from_cache(second.token) is None
    with pytest.raises(Unauthenticated, match="revoked"):
        server.authenticate(second.token)


def test_the_whole_life_of_a_token_on_each_backend(backend_settings):
    db = open_store(backend_settings)
    auth = AuthService(db)
    auth.create_user("alice", "viewer")
    issued = auth.create_token("alice")
    auth.set_role("alice", "admin")
    assert auth.authenticate(issued.token) == Principal("alice", Role.ADMIN, issued.info.token_id)
    with pytest.raises(AlreadyExists):
        auth.create_user("alice", "viewer")
    auth.revoke_token(issued.info.token_id[:4])
    with pytest.raises(Unauthenticated, match="revoked"):
        auth.authenticate(issued.token)
    assert auth.list_tokens("alice")[0].last_used_at is not None
    db.dispose()
