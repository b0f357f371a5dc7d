"""The data room's table: one row per dataset version.

A version is identified by ``(name, version)``; its ``digest`` is the logical content
digest (see ``digest.py``) and ``files_digest`` the digest of the stored files' manifest.
The same content snapshotted twice under one name is the same version (the unique
constraint on ``(name, digest, files_digest)`` makes that hold across processes); the
same rows stored as different files (CSV, then Parquet) are two versions with one digest.
"""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Column,
    Index,
    Integer,
    String,
    Table,
    Text,
    UniqueConstraint,
)

from modelyard.store.schema import metadata

NAME_LENGTH = 256

dataset_versions = Table(
    "dataset_versions",
    metadata,
    Column("name", String(NAME_LENGTH), primary_key=True),
    Column("version", Integer, primary_key=True),
    Column("digest", String(64), nullable=False),
    Column("files_digest", String(64), nullable=False),
    Column("schema", Text, nullable=False),  # JSON: [{"name", "type", "nullable"}]
    Column("num_rows", BigInteger, nullable=False),
    Column("num_bytes", BigInteger, nullable=False),
    Column("profile", Text, nullable=False),  # JSON, see profile.py
    Column("files", Text, nullable=False),  # JSON: [{"path", "sha256", "size"}]
    Column("storage_location", String(1024), nullable=False),  # artifact path prefix
    Column("format", String(16), nullable=False),  # parquet | csv | mixed
    Column("source", String(1024), nullable=False),
    Column("description", Text, nullable=True),
    Column("created_by", String(256), nullable=False),
    Column("created_at", BigInteger, nullable=False),
    UniqueConstraint("name", "digest", "files_digest"),
    Index("ix_dataset_versions_digest", "digest"),
)
