"""The auth room's tables: users and their API tokens.

A token row holds the SHA-256 digest of the token, never the token: the plaintext is
shown once, when it is created. Tokens are never deleted, only revoked (``revoked_at``),
so ``tokens list`` can still say who held what and when it was last used. A token may
carry an expiry (``expires_at``), after which it is refused as if revoked. Table names
carry the room's prefix (``user`` is a reserved word on PostgreSQL).
"""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Boolean,
    CheckConstraint,
    Column,
    ForeignKey,
    Index,
    String,
    Table,
    false,
)

from modelyard.store.schema import metadata

USER_LENGTH = 256
ROLE_LENGTH = 16
TOKEN_ID_LENGTH = 32
DIGEST_LENGTH = 64  # hex SHA-256
LABEL_LENGTH = 256

auth_users = Table(
    "auth_users",
    metadata,
    Column("name", String(USER_LENGTH), primary_key=True),
    Column("role", String(ROLE_LENGTH), nullable=False),
    Column("created_at", BigInteger, nullable=False),
    Column("disabled", Boolean, nullable=False, server_default=false()),
    CheckConstraint("role IN ('viewer', 'editor', 'approver', 'admin')", name="ck_auth_users_role"),
)

auth_tokens = Table(
    "auth_tokens",
    metadata,
    #: Public part of the token (``myd_<token_id>_<secret>``): found by it, then verified.
    Column("token_id", String(TOKEN_ID_LENGTH), primary_key=True),
    Column(
        "user_name",
        String(USER_LENGTH),
        ForeignKey("auth_users.name", ondelete="CASCADE", onupdate="CASCADE"),
        nullable=False,
    ),
    Column("token_sha256", String(DIGEST_LENGTH), nullable=False),
    Column("label", String(LABEL_LENGTH), nullable=True),
    Column("created_at", BigInteger, nullable=False),
    #: Updated at most once a minute per token, so authentication stays a read.
    Column("last_used_at", BigInteger, nullable=True),
    Column("revoked_at", BigInteger, nullable=True),
    #: Milliseconds since the epoch after which the token is refused (None: never).
    Column("expires_at", BigInteger, nullable=True),
    Index("ix_auth_tokens_user_name", "user_name"),
)
