"""The registry room's tables, registered on the shared metadata object.

Invariants are enforced by the database, not only by code, so that no interleaving of
processes can break them:

* at most one Production version per model: a partial unique index on
  ``model_versions (name) WHERE stage = 'Production'``;
* no dangling alias: ``model_aliases`` has a foreign key to the version it names, with
  ``ON DELETE CASCADE`` (deleting a version deletes its aliases in the same statement);
* renames follow through: every foreign key to a model's name is ``ON UPDATE CASCADE``.

``audit_events`` deliberately has no foreign keys: the trail outlives what it describes.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    Float,
    ForeignKey,
    ForeignKeyConstraint,
    Index,
    Integer,
    String,
    Table,
    Text,
    event,
    text,
)

from modelyard.store.schema import metadata, value_index

NAME_LENGTH = 256
KEY_LENGTH = 250
USER_LENGTH = 256

registered_models = Table(
    "registered_models",
    metadata,
    Column("name", String(NAME_LENGTH), primary_key=True),
    Column("description", Text, nullable=True),
    #: Version numbers are never reused, even after a delete: ``models:/churn/3`` names
    #: one set of files forever (the audit trail and lineage rely on it).
    Column("next_version", Integer, nullable=False),
    Column("created_by", String(USER_LENGTH), nullable=False),
    Column("creation_time", BigInteger, nullable=False),
    Column("last_updated_time", BigInteger, nullable=False),
    # Search ordered by a timestamp reads the page from these, not a sort of every model
    # (``registry/search.py``; the name order is the primary key's).
    Index("ix_registered_models_creation_time", "creation_time"),
    Index("ix_registered_models_last_updated_time", "last_updated_time"),
)


def _model_fk() -> ForeignKey:
    return ForeignKey("registered_models.name", ondelete="CASCADE", onupdate="CASCADE")


def _version_fk(table: str) -> ForeignKeyConstraint:
    return ForeignKeyConstraint(
        ["name", "version"],
        ["model_versions.name", "model_versions.version"],
        name=f"fk_{table}_name_model_versions",
        ondelete="CASCADE",
        onupdate="CASCADE",
    )


registered_model_tags = Table(
    "registered_model_tags",
    metadata,
    Column("name", String(NAME_LENGTH), _model_fk(), primary_key=True),
    Column("key", String(KEY_LENGTH), primary_key=True),
    Column("value", Text, nullable=False),
    # Which models carry a key (the prompt tag every search excludes) and which a value
    # (the probe of ``tracking/tag_probe.py``: a selective tag filter drives the search;
    # the value index is ``store.schema.value_index``, one form per database).
    Index("ix_registered_model_tags_key", "key"),
)
value_index(registered_model_tags)

_ONE_PRODUCTION = "stage = 'Production'"

model_versions = Table(
    "model_versions",
    metadata,
    Column("name", String(NAME_LENGTH), _model_fk(), primary_key=True),
    Column("version", Integer, primary_key=True, autoincrement=False),
    Column("description", Text, nullable=True),
    #: What the caller registered (``runs:/…``, ``models:/m-…``, a path), kept verbatim.
    Column("source", Text, nullable=False),
    #: The registry's own frozen copy of the files (a logical artifact path).
    Column("storage_location", String(1024), nullable=False),
    Column("run_id", String(32), nullable=True),
    Column("model_id", String(64), nullable=True),
    Column("run_link", Text, nullable=True),
    Column("flavor", String(64), nullable=True),
    Column("signature", Text, nullable=True),
    #: sha256 over the frozen files' paths and content digests (``registry/integrity.py``),
    #: taken at registration; loading verifies the downloaded bytes against it.
    Column("files_digest", String(64), nullable=True),
    Column("stage", String(16), nullable=False),
    Column("status", String(32), nullable=False),
    Column("created_by", String(USER_LENGTH), nullable=False),
    Column("creation_time", BigInteger, nullable=False),
    Column("last_updated_time", BigInteger, nullable=False),
    Index("ix_model_versions_run_id", "run_id"),
    # A model's newest version in each stage (its ``latest_versions``) from the index alone.
    Index("ix_model_versions_latest", "name", "stage", "version"),
    # Search ordered by a timestamp, as for models.
    Index("ix_model_versions_creation_time", "creation_time"),
    Index("ix_model_versions_last_updated_time", "last_updated_time"),
    Index(
        "uq_model_versions_one_production",
        "name",
        unique=True,
        sqlite_where=text(_ONE_PRODUCTION),
    ),
)


@event.listens_for(model_versions, "before_create")
def _partial_index_on_postgres(table: Table, connection: Any, **_: Any) -> None:
    """Give the one-production index its ``WHERE`` on PostgreSQL too, when creating there.

    Set here rather than as ``postgresql_where=`` in the definition: SQLAlchemy imports
    its whole PostgreSQL dialect (~20 ms) to check such an option, which every first use
    of a SQLite store would then pay for.
    """
    if connection.dialect.name == "postgresql":
        for index in table.indexes:
            if index.name == "uq_model_versions_one_production":
                index.dialect_kwargs["postgresql_where"] = text(_ONE_PRODUCTION)


model_version_tags = Table(
    "model_version_tags",
    metadata,
    Column("name", String(NAME_LENGTH), primary_key=True),
    Column("version", Integer, primary_key=True, autoincrement=False),
    Column("key", String(KEY_LENGTH), primary_key=True),
    Column("value", Text, nullable=False),
    _version_fk("model_version_tags"),
    # Whether any version of a model carries a key (the prompt tag every search excludes,
    # ``registry/search.py``), and the value probe, as for registered_model_tags.
    Index("ix_model_version_tags_key_name", "key", "name"),
)
value_index(model_version_tags)

model_aliases = Table(
    "model_aliases",
    metadata,
    Column("name", String(NAME_LENGTH), primary_key=True),
    Column("alias", String(KEY_LENGTH), primary_key=True),
    Column("version", Integer, nullable=False),
    _version_fk("model_aliases"),
)

#: One row per decision; an approver's latest decision on a version is the one that counts.
approvals = Table(
    "approvals",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("name", String(NAME_LENGTH), nullable=False),
    Column("version", Integer, nullable=False),
    Column("actor", String(USER_LENGTH), nullable=False),
    Column("decision", String(16), nullable=False),
    Column("reason", Text, nullable=True),
    Column("created_at", BigInteger, nullable=False),
    _version_fk("approvals"),
    Index("ix_approvals_name_version", "name", "version"),
)

#: Quality-gate verdicts, written only by the gate (``validation/gates.record_gate``); no
#: API takes one from a client. Each names the files digest it judged, so a verdict
#: cannot be carried over to other bytes. The newest row per version is the verdict.
gate_verdicts = Table(
    "gate_verdicts",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("name", String(NAME_LENGTH), nullable=False),
    Column("version", Integer, nullable=False),
    Column("passed", Boolean, nullable=False),
    Column("files_digest", String(64), nullable=True),
    Column("policy", String(NAME_LENGTH), nullable=False),
    Column("summary", Text, nullable=False),
    Column("report", String(1024), nullable=True),
    Column("created_by", String(USER_LENGTH), nullable=False),
    Column("created_at", BigInteger, nullable=False),
    _version_fk("gate_verdicts"),
    Index("ix_gate_verdicts_name_version", "name", "version"),
)

model_cards = Table(
    "model_cards",
    metadata,
    Column("name", String(NAME_LENGTH), primary_key=True),
    Column("version", Integer, primary_key=True, autoincrement=False),
    Column("content", Text, nullable=False),
    Column("updated_by", String(USER_LENGTH), nullable=False),
    Column("updated_at", BigInteger, nullable=False),
    _version_fk("model_cards"),
)

#: The hash-chained trail: ``hash = sha256(prev_hash + canonical JSON of the event)``.
audit_events = Table(
    "audit_events",
    metadata,
    Column("seq", BigInteger, primary_key=True, autoincrement=False),
    Column("ts", BigInteger, nullable=False),
    Column("actor", String(USER_LENGTH), nullable=False),
    Column("action", String(64), nullable=False),
    Column("entity", String(512), nullable=False),
    Column("model_name", String(NAME_LENGTH), nullable=True),
    Column("before", Text, nullable=True),
    Column("after", Text, nullable=True),
    Column("prev_hash", String(64), nullable=False),
    Column("hash", String(64), nullable=False),
    Index("ix_audit_events_model_name", "model_name"),
)

#: One row (id = 1): the newest event's seq and hash. It lets ``verify`` notice a deleted
#: tail, and its row lock serialises appends on PostgreSQL.
audit_head = Table(
    "audit_head",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=False),
    Column("seq", BigInteger, nullable=False),
    Column("hash", String(64), nullable=False),
)

#: MLflow 3 "logged models": a model's files, logged from a run before any registration.
logged_models = Table(
    "logged_models",
    metadata,
    Column("model_id", String(64), primary_key=True),
    Column("experiment_id", Integer, nullable=False),
    Column("name", String(500), nullable=False),
    Column("source_run_id", String(32), nullable=True),
    Column("model_type", String(256), nullable=True),
    Column("status", String(32), nullable=False),
    Column("artifact_location", String(1024), nullable=False),
    Column("creation_time", BigInteger, nullable=False),
    Column("last_updated_time", BigInteger, nullable=False),
    # An experiment's models newest first (the search's default order, and its seek),
    # read from the index rather than sorted: at 100,000 models in one experiment a page
    # cost a sort of them all (SQLite 19 ms, PostgreSQL a parallel scan, 20-40 ms).
    Index("ix_logged_models_experiment_creation_time", "experiment_id", "creation_time"),
)


def _logged_model_fk() -> ForeignKey:
    return ForeignKey("logged_models.model_id", ondelete="CASCADE")


logged_model_tags = Table(
    "logged_model_tags",
    metadata,
    Column("model_id", String(64), _logged_model_fk(), primary_key=True),
    Column("key", String(KEY_LENGTH), primary_key=True),
    Column("value", Text, nullable=False),
)

logged_model_params = Table(
    "logged_model_params",
    metadata,
    Column("model_id", String(64), _logged_model_fk(), primary_key=True),
    Column("key", String(KEY_LENGTH), primary_key=True),
    Column("value", Text, nullable=False),
)

#: Metrics logged against a logged model (MLflow 3 ``log_metric(..., model_id=…)``): each
#: point is also the run's, and may name the dataset it was computed on.
logged_model_metrics = Table(
    "logged_model_metrics",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("model_id", String(64), _logged_model_fk(), nullable=False),
    Column("key", String(KEY_LENGTH), nullable=False),
    Column("value", Float, nullable=False),
    Column("timestamp", BigInteger, nullable=False),
    Column("step", BigInteger, nullable=False),
    Column("run_id", String(32), nullable=True),
    Column("dataset_name", String(500), nullable=True),
    Column("dataset_digest", String(64), nullable=True),
    Index("ix_logged_model_metrics_model_id", "model_id"),
)

#: A run's logged models, as MLflow shows them on the run: ``input`` (``log_inputs(models=
#: …)``) and ``output`` (``runs/outputs``, which every MLflow 3 ``log_model`` calls).
logged_model_runs = Table(
    "logged_model_runs",
    metadata,
    Column("run_id", String(32), ForeignKey("runs.run_id", ondelete="CASCADE"), primary_key=True),
    Column("model_id", String(64), _logged_model_fk(), primary_key=True),
    Column("direction", String(8), primary_key=True),
    Column("step", BigInteger, nullable=False),
    Index("ix_logged_model_runs_model_id", "model_id"),
)
