"""The data room's tables: one row per dataset version, one per contract check made on one.

A version is identified by ``(name, version)``; its ``digest`` is the logical content
digest (see ``digest.py``) and ``files_digest`` the digest of the stored files' manifest.
The same content snapshotted twice under one name is the same version (the unique
constraint on ``(name, digest, files_digest)`` makes that hold across processes); the
same rows stored as different files (CSV, then Parquet) are two versions with one digest.

``dataset_contract_checks`` keeps the verdict of every ``data check`` made on a stored
version (``sales@3``), never on an ad-hoc file: which contract (its name and content
digest, so an edited contract is told apart), whether it held, how many checks failed
(blocking) or warned, and a short summary — what lineage shows on a dataset node.
"""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    ForeignKeyConstraint,
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
    # The newest versions across names (``DataClient.search_versions(newest_first=True)``).
    Index("ix_dataset_versions_created_at", "created_at"),
)

dataset_contract_checks = Table(
    "dataset_contract_checks",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("name", String(NAME_LENGTH), nullable=False),
    Column("version", Integer, nullable=False),
    Column("contract", String(NAME_LENGTH), nullable=False),
    Column("contract_digest", String(64), nullable=False),  # sha256 of the contract's content
    Column("passed", Boolean, nullable=False),
    Column("checks", Integer, nullable=False),  # expectations evaluated
    Column("failed", Integer, nullable=False),  # failed with severity error (blocking)
    Column("warnings", Integer, nullable=False),  # failed with severity warning
    Column("summary", Text, nullable=False),  # JSON, see contract_checks.py
    Column("checked_at", BigInteger, nullable=False),
    Column("checked_by", String(256), nullable=False),
    ForeignKeyConstraint(
        ["name", "version"],
        ["dataset_versions.name", "dataset_versions.version"],
        name="fk_dataset_contract_checks_name_dataset_versions",
        ondelete="CASCADE",
        onupdate="CASCADE",
    ),
    Index("ix_dataset_contract_checks_name_version", "name", "version"),
)
