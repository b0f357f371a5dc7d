"""``AuthService``: users, their roles, and the API tokens that prove who a caller is.

A token looks like ``myd_<token_id>_<secret>``. The ``token_id`` is public (listed,
revoked by); the whole token is stored only as its SHA-256 digest. Authentication finds
the row by ``token_id`` and compares digests with ``hmac.compare_digest``, whose time
does not depend on where the digests differ, so response times leak nothing about the
stored digest. Tokens carry 256 random bits, so a fast hash is enough (slow password
hashes exist for guessable secrets).

The server authenticates every request: with ``cache_ttl_s`` > 0 a verified token is
remembered for that long, so the hot logging path costs a dictionary lookup instead of a
query. A revocation or role change made elsewhere (the CLI, another server process)
therefore takes effect within ``cache_ttl_s``; made through this object, at once. A
token created with an expiry (``expires_in_s``) is refused from that moment on, cached or
not, with a 401 that says when it expired.

>>> from modelyard.store.engine import open_database
>>> from modelyard.store.migrations import ensure_schema
>>> db = open_database(f"sqlite:///{tmp_home / 'modelyard.db'}")
>>> ensure_schema(db)
>>> auth = AuthService(db)
>>> auth.create_user("alice", "editor").role
<Role.EDITOR: 'editor'>
>>> issued = auth.create_token("alice")
>>> principal = auth.authenticate(issued.token)
>>> principal.user, principal.role, principal.token_id == issued.info.token_id
('alice', <Role.EDITOR: 'editor'>, True)
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import re
import secrets
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError, OperationalError

from modelyard.auth.roles import Role, parse_role
from modelyard.auth.tables import LABEL_LENGTH, USER_LENGTH, auth_tokens, auth_users
from modelyard.errors import (
    AlreadyExists,
    InvalidParameter,
    InvalidState,
    NotFound,
    Unauthenticated,
)
from modelyard.ids import now_ms
from modelyard.store.engine import Database

log = logging.getLogger("modelyard.auth")

TOKEN_PREFIX = "myd_"
_TOKEN = re.compile(r"myd_([0-9a-f]{12})_([A-Za-z0-9_-]{32,})")
#: Letters, digits and ``. _ @ + -``: no ':' (it ends the user name in HTTP Basic auth),
#: no spaces or slashes (names appear in URLs, logs and audit entries).
_USER_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._@+-]*")
#: Compared against when no row matches, so unknown and wrong tokens take the same path.
_NO_DIGEST = "0" * 64
LAST_USED_EVERY_MS = 60_000
MAX_CACHED_TOKENS = 10_000
MIN_REVOKE_PREFIX = 4


@dataclass(frozen=True, slots=True)
class User:
    name: str
    role: Role
    created_at: int
    disabled: bool = False


@dataclass(frozen=True, slots=True)
class TokenInfo:
    """What may be shown about a token: everything but the token."""

    token_id: str
    user: str
    created_at: int
    label: str | None = None
    last_used_at: int | None = None
    revoked_at: int | None = None
    #: Milliseconds since the epoch; None: the token never expires.
    expires_at: int | None = None

    @property
    def revoked(self) -> bool:
        return self.revoked_at is not None

    def expired(self, at_ms: int | None = None) -> bool:
        """Whether the token has expired by ``at_ms`` (default: now)."""
        at = now_ms() if at_ms is None else at_ms
        return self.expires_at is not None and self.expires_at <= at


@dataclass(frozen=True, slots=True)
class IssuedToken:
    """A new token: ``token`` is the only copy of the plaintext there will ever be."""

    info: TokenInfo
    token: str = field(repr=False)


@dataclass(frozen=True, slots=True)
class Principal:
    """Who a request was authenticated as."""

    user: str
    role: Role
    token_id: str
    #: When the token expires (ms since the epoch), so a cache never outlives it.
    expires_at: int | None = None


def token_digest(token: str) -> str:
    """Hex SHA-256 of the token: what the database stores instead of it."""
    return hashlib.sha256(token.encode("utf-8", "surrogatepass")).hexdigest()


def token_id_of(token: str) -> str | None:
    """The public id inside a well-formed token, else None."""
    match = _TOKEN.fullmatch(token)
    return match.group(1) if match else None


class AuthService:
    """Users and tokens in the metadata store ``db`` (its schema must be current)."""

    def __init__(
        self,
        db: Database,
        *,
        cache_ttl_s: float = 0.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.db = db
        self.cache_ttl_s = cache_ttl_s
        self._clock = clock
        self._cache: dict[str, tuple[Principal, float]] = {}
        self._lock = threading.Lock()

    # -- users ------------------------------------------------------------------------------

    def create_user(self, name: str, role: str | Role) -> User:
        name = check_user_name(name)
        user = User(name, parse_role(role), now_ms())
        try:
            with self.db.write() as conn:
                if conn.execute(select(auth_users.c.name).where(auth_users.c.name == name)).first():
                    raise AlreadyExists(f"user {name!r} already exists", field="name")
                conn.execute(
                    auth_users.insert().values(
                        name=name, role=str(user.role), created_at=user.created_at, disabled=False
                    )
                )
        except IntegrityError:  # created by another process between our check and insert
            raise AlreadyExists(f"user {name!r} already exists", field="name") from None
        return user

    def get_user(self, name: str) -> User:
        with self.db.read() as conn:
            row = conn.execute(select(auth_users).where(auth_users.c.name == name)).first()
        if row is None:
            raise NotFound(
                f"no user named {name!r}; `modelyard users list` shows them", field="user"
            )
        return _user(row)

    def list_users(self) -> list[User]:
        with self.db.read() as conn:
            rows = conn.execute(select(auth_users).order_by(auth_users.c.name)).all()
        return [_user(row) for row in rows]

    def set_role(self, name: str, role: str | Role) -> User:
        self._update_user(name, role=str(parse_role(role)))
        return self.get_user(name)

    def set_disabled(self, name: str, disabled: bool) -> User:
        """A disabled user's tokens stop working (they are kept; enabling restores them)."""
        self._update_user(name, disabled=disabled)
        return self.get_user(name)

    def _update_user(self, name: str, **values: Any) -> None:
        with self.db.write() as conn:
            changed = conn.execute(
                update(auth_users).where(auth_users.c.name == name).values(**values)
            ).rowcount
        if not changed:
            self.get_user(name)  # raises NotFound with the helpful message
        self._forget_all()

    # -- tokens -----------------------------------------------------------------------------

    def create_token(
        self, user: str, label: str | None = None, *, expires_in_s: float | None = None
    ) -> IssuedToken:
        """A new token for ``user``; keep ``.token``, it cannot be shown again.

        ``expires_in_s``: seconds from now after which the token is refused (None: never).
        """
        if expires_in_s is not None and not expires_in_s > 0:
            raise InvalidParameter(
                f"a token's lifetime must be more than 0 seconds, got {expires_in_s!r}",
                field="expires",
            )
        if label is not None and len(label) > LABEL_LENGTH:
            raise InvalidParameter(
                f"a token label may be at most {LABEL_LENGTH} characters, got {len(label)}",
                field="label",
            )
        owner = self.get_user(user)
        if owner.disabled:
            raise InvalidState(
                f"user {user!r} is disabled; `modelyard users enable {user}` first", field="user"
            )
        token_id = secrets.token_hex(6)
        token = f"{TOKEN_PREFIX}{token_id}_{secrets.token_urlsafe(32)}"
        created_at = now_ms()
        expires_at = None if expires_in_s is None else created_at + round(expires_in_s * 1000)
        info = TokenInfo(token_id, owner.name, created_at, label, expires_at=expires_at)
        with self.db.write() as conn:
            conn.execute(
                auth_tokens.insert().values(
                    token_id=token_id,
                    user_name=owner.name,
                    token_sha256=token_digest(token),
                    label=label,
                    created_at=info.created_at,
                    expires_at=expires_at,
                )
            )
        return IssuedToken(info, token)

    def list_tokens(
        self, user: str | None = None, *, include_revoked: bool = True
    ) -> list[TokenInfo]:
        query = select(auth_tokens).order_by(auth_tokens.c.created_at, auth_tokens.c.token_id)
        if user is not None:
            self.get_user(user)
            query = query.where(auth_tokens.c.user_name == user)
        if not include_revoked:
            query = query.where(auth_tokens.c.revoked_at.is_(None))
        with self.db.read() as conn:
            return [_token_info(row) for row in conn.execute(query).all()]

    def revoke_token(self, ref: str) -> TokenInfo:
        """Revoke the token named by its id, a unique prefix of it, or the token itself.

        Revoking a revoked token changes nothing and returns it as it is.
        """
        token_id = self._resolve_token(ref)
        with self.db.write() as conn:
            conn.execute(
                update(auth_tokens)
                .where(auth_tokens.c.token_id == token_id, auth_tokens.c.revoked_at.is_(None))
                .values(revoked_at=now_ms())
            )
            row = conn.execute(select(auth_tokens).where(auth_tokens.c.token_id == token_id)).one()
        self._forget_all()
        return _token_info(row)

    def _resolve_token(self, ref: str) -> str:
        ref = ref.strip()
        from_token = token_id_of(ref)
        if from_token is not None:
            return from_token
        if len(ref) < MIN_REVOKE_PREFIX or not re.fullmatch(r"[0-9a-f]+", ref):
            raise InvalidParameter(
                f"{ref!r:.40} is not a token id; give the id `modelyard tokens list` shows "
                f"(or at least its first {MIN_REVOKE_PREFIX} characters)",
                field="token_id",
            )
        with self.db.read() as conn:
            ids = (
                conn.execute(
                    select(auth_tokens.c.token_id).where(auth_tokens.c.token_id.startswith(ref))
                )
                .scalars()
                .all()
            )
        if not ids:
            raise NotFound(
                f"no token with id {ref!r}; `modelyard tokens list` shows them", field="token_id"
            )
        if len(ids) > 1:
            raise InvalidParameter(
                f"token id prefix {ref!r} matches {len(ids)} tokens ({', '.join(sorted(ids))}); "
                "give more characters",
                field="token_id",
            )
        return ids[0]

    # -- authentication ---------------------------------------------------------------------

    def authenticate(self, token: str) -> Principal:
        """Who ``token`` belongs to; ``Unauthenticated`` if it is unknown, wrong, revoked,
        expired, or its user is disabled."""
        cached = self.from_cache(token)
        if cached is not None:
            return cached
        digest = token_digest(token)
        principal = self._verify(token, digest)
        if self.cache_ttl_s > 0:
            ttl = self.cache_ttl_s
            if principal.expires_at is not None:  # never remembered past its expiry
                ttl = min(ttl, (principal.expires_at - now_ms()) / 1000)
            with self._lock:
                if len(self._cache) >= MAX_CACHED_TOKENS:
                    self._cache.clear()
                self._cache[digest] = (principal, self._clock() + ttl)
        return principal

    def from_cache(self, token: str) -> Principal | None:
        """The principal if ``token`` was verified less than ``cache_ttl_s`` ago; never
        touches the database (the server calls it on its event loop)."""
        if self.cache_ttl_s <= 0:
            return None
        hit = self._cache.get(token_digest(token))
        if hit is None or hit[1] <= self._clock():
            return None
        return hit[0]

    def _verify(self, token: str, digest: str) -> Principal:
        token_id = token_id_of(token)
        if token_id is None:
            raise Unauthenticated(
                "the credential is not a modelyard API token (they start with "
                f"{TOKEN_PREFIX!r}); create one with `modelyard tokens create --user NAME`"
            )
        query = (
            select(
                auth_tokens.c.token_sha256,
                auth_tokens.c.user_name,
                auth_tokens.c.last_used_at,
                auth_tokens.c.revoked_at,
                auth_tokens.c.expires_at,
                auth_users.c.role,
                auth_users.c.disabled,
            )
            .join(auth_users, auth_users.c.name == auth_tokens.c.user_name)
            .where(auth_tokens.c.token_id == token_id)
        )
        with self.db.read() as conn:
            row = conn.execute(query).first()
        stored = row.token_sha256 if row is not None else _NO_DIGEST
        if not hmac.compare_digest(digest, stored) or row is None:
            raise Unauthenticated("invalid API token")
        if row.revoked_at is not None:
            raise Unauthenticated(f"API token {token_id} has been revoked")
        if row.expires_at is not None and row.expires_at <= now_ms():
            raise Unauthenticated(
                f"API token {token_id} expired at {utc_time(row.expires_at)}; an admin creates "
                f"a new one with `modelyard tokens create --user {row.user_name} --expires 90d`"
            )
        if row.disabled:
            raise Unauthenticated(f"user {row.user_name!r} is disabled")
        self._touch(token_id, row.last_used_at)
        return Principal(row.user_name, Role(row.role), token_id, row.expires_at)

    def _touch(self, token_id: str, last_used_at: int | None) -> None:
        """Record use at most once a minute: a write per request would serialise every
        request on SQLite's single writer."""
        now = now_ms()
        if last_used_at is not None and now - last_used_at < LAST_USED_EVERY_MS:
            return
        try:
            with self.db.write() as conn:
                conn.execute(
                    update(auth_tokens)
                    .where(auth_tokens.c.token_id == token_id)
                    .values(last_used_at=now)
                )
        except OperationalError as exc:  # bookkeeping must not refuse a valid caller
            log.warning("could not record the use of token %s: %s", token_id, exc)

    def _forget_all(self) -> None:
        with self._lock:
            self._cache.clear()


def check_user_name(name: str) -> str:
    if not isinstance(name, str) or not _USER_NAME.fullmatch(name) or len(name) > USER_LENGTH:
        raise InvalidParameter(
            f"invalid user name {name!r:.80}: use 1 to {USER_LENGTH} letters, digits and "
            "'. _ @ + -', starting with a letter or digit",
            field="name",
        )
    return name


def utc_time(ms: int) -> str:
    """Milliseconds since the epoch as ``YYYY-MM-DD HH:MM:SS UTC`` (what a server says:
    its local time zone means nothing to the caller)."""
    return datetime.fromtimestamp(ms / 1000, UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def _user(row: Any) -> User:
    return User(row.name, Role(row.role), row.created_at, bool(row.disabled))


def _token_info(row: Any) -> TokenInfo:
    return TokenInfo(
        row.token_id,
        row.user_name,
        row.created_at,
        row.label,
        row.last_used_at,
        row.revoked_at,
        row.expires_at,
    )
