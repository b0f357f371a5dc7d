"""The artifact path index: logical path → content digest.

Blobs are immutable and named by their sha256; what a run, model or dataset "contains"
is this index. A path becomes visible only when its row is committed, after its blob is
completely written — so an interrupted upload is never visible, and de-duplication is free.
"""

from __future__ import annotations

from sqlalchemy import BigInteger, Column, Index, String, Table

from modelyard.store.schema import metadata

artifact_entries = Table(
    "artifact_entries",
    metadata,
    # Byte-order collation on PostgreSQL: prefix range scans ("a/" <= path < "a0") are only
    # correct, and index-backed, when "/" sorts by code point, as in SQLite.
    Column(
        "path",
        String(1024).with_variant(String(1024, collation="C"), "postgresql"),
        primary_key=True,
    ),
    Column("digest", String(64), nullable=False),
    Column("size", BigInteger, nullable=False),
    Column("created_at", BigInteger, nullable=False),
    Index("ix_artifact_entries_digest", "digest"),
)
