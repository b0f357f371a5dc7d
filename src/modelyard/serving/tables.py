"""The serving room's tables: environments, deployments and their revisions, feedback.

A deployment is a named endpoint in one environment. Its traffic policy lives in
revisions, which are never edited: every change (create, switch, canary, shadow, A/B,
promote, rollback — by a person or by the automatic canary judge) appends a revision and
moves ``deployments.current_revision`` in the same transaction, together with an audit
event. A data plane polls ``current_revision`` (one indexed row) to follow changes.

``serving_feedback`` holds ground truth sent to ``POST /feedback``, keyed by request id;
predictions themselves go to Parquet in the artifact store (``prediction_log``), since
they are too many for the metadata database.
"""

from __future__ import annotations

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
)

from modelyard.store.schema import metadata

NAME_LENGTH = 256
USER_LENGTH = 256

serving_environments = Table(
    "serving_environments",
    metadata,
    Column("name", String(NAME_LENGTH), primary_key=True),
    # The environment a version must have been deployed in first (production ← staging).
    Column("requires", String(NAME_LENGTH), nullable=True),
    # Whether the registry's promotion policy (approvals, gate) applies to versions here.
    Column("protected", Boolean, nullable=False),
    Column("description", Text, nullable=True),
    Column("created_at", BigInteger, nullable=False),
)

deployments = Table(
    "deployments",
    metadata,
    Column("name", String(NAME_LENGTH), primary_key=True),
    Column(
        "environment",
        String(NAME_LENGTH),
        ForeignKey("serving_environments.name", ondelete="RESTRICT"),
        nullable=False,
    ),
    Column("current_revision", Integer, nullable=False),
    Column("description", Text, nullable=True),
    Column("created_by", String(USER_LENGTH), nullable=False),
    Column("created_at", BigInteger, nullable=False),
    Column("updated_at", BigInteger, nullable=False),
)

deployment_revisions = Table(
    "deployment_revisions",
    metadata,
    Column("deployment", String(NAME_LENGTH), primary_key=True),
    Column("revision", Integer, primary_key=True),
    Column("action", String(32), nullable=False),  # create | switch | canary | ... | rollback
    Column("policy", Text, nullable=False),  # JSON: see routing.TrafficPolicy
    Column("reason", Text, nullable=True),
    Column("restores", Integer, nullable=True),  # a rollback: the revision it copied
    Column("created_by", String(USER_LENGTH), nullable=False),
    Column("created_at", BigInteger, nullable=False),
    ForeignKeyConstraint(["deployment"], ["deployments.name"], ondelete="CASCADE"),
)

#: Which (model, version) has served real traffic where: the "staging first" rule reads it.
deployment_versions = Table(
    "deployment_versions",
    metadata,
    Column("model_name", String(NAME_LENGTH), primary_key=True),
    Column("model_version", Integer, primary_key=True),
    Column("environment", String(NAME_LENGTH), primary_key=True),
    Column("deployment", String(NAME_LENGTH), nullable=False),
    Column("first_revision", Integer, nullable=False),
    Column("created_at", BigInteger, nullable=False),
)

serving_feedback = Table(
    "serving_feedback",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("deployment", String(NAME_LENGTH), nullable=False),
    Column("request_id", String(128), nullable=False),
    Column("row", Integer, nullable=False),  # which row of the request (0 for one-row)
    Column("value", Float, nullable=True),  # a numeric outcome (conversion, revenue, ...)
    Column("label", Text, nullable=True),  # a ground-truth label, compared to the prediction
    Column("correct", Boolean, nullable=True),  # label == prediction, when both are known
    Column("variant", String(NAME_LENGTH), nullable=True),  # when the receiver knew it
    Column("model_version", Integer, nullable=True),
    Column("created_at", BigInteger, nullable=False),
    Index("ix_serving_feedback_deployment_created_at", "deployment", "created_at"),
    Index("ix_serving_feedback_request_id", "request_id"),
)
