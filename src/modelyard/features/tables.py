"""The feature room's tables: versioned definitions, training sets, materialisation
watermarks and the feature services that model versions use.

Definitions are append-only: each ``apply`` that changes an object adds a version, so a
training set or a model can always name the exact definition (and code) it was built from.
"""

from __future__ import annotations

from sqlalchemy import BigInteger, Column, Index, Integer, String, Table, Text

from modelyard.store.schema import metadata

feature_definitions = Table(
    "feature_definitions",
    metadata,
    Column("kind", String(32), primary_key=True),
    Column("name", String(128), primary_key=True),
    Column("version", Integer, primary_key=True),
    # sha256 of spec + code: the identity of this version.
    Column("digest", String(64), nullable=False),
    # sha256 of what decides stored values; the online store is laid out by it.
    Column("data_digest", String(64), nullable=False),
    Column("spec", Text, nullable=False),
    Column("code", Text, nullable=False),
    # The definitions file it was applied from (to re-import Python transformations).
    Column("origin", String(1024), nullable=False),
    Column("created_at", BigInteger, nullable=False),
    Column("created_by", String(256), nullable=False),
)

feature_training_sets = Table(
    "feature_training_sets",
    metadata,
    Column("training_set_id", String(32), primary_key=True),
    Column("name", String(256), nullable=False),
    Column("created_at", BigInteger, nullable=False),
    Column("features", Text, nullable=False),  # JSON list of "view:feature"
    Column("views", Text, nullable=False),  # JSON {view: {version, digest}}
    Column("sources", Text, nullable=False),  # JSON [{name, digest}]
    Column("entity_digest", String(64), nullable=False),
    Column("row_count", BigInteger, nullable=False),
    Column("options", Text, nullable=False),  # JSON of the join options
    Index("ix_feature_training_sets_name", "name"),
)

feature_materializations = Table(
    "feature_materializations",
    metadata,
    # Which online store (a digest of its URI), which view, which stored layout.
    Column("store", String(64), primary_key=True),
    Column("view", String(128), primary_key=True),
    Column("data_digest", String(64), primary_key=True),
    # Event times materialised so far, microseconds since the epoch, inclusive.
    Column("start_us", BigInteger, nullable=False),
    Column("watermark_us", BigInteger, nullable=False),
    Column("rows", BigInteger, nullable=False),
    Column("updated_at", BigInteger, nullable=False),
)

feature_service_models = Table(
    "feature_service_models",
    metadata,
    Column("model_name", String(256), primary_key=True),
    Column("model_version", String(64), primary_key=True),
    Column("service", String(128), nullable=False),
    Column("service_version", Integer, nullable=False),
    Column("created_at", BigInteger, nullable=False),
)
