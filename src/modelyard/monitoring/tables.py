"""The monitoring room's tables: monitors, their stored evaluations, alerts with their
history, and reference profiles (the leases that keep two schedulers off one monitor are
``monitor:<name>`` in ``store.leases``).

Times are milliseconds since the epoch (``ids.now_ms``), as in every other room.

* ``monitors``: a deployment, a cron schedule and the rules spec (the YAML text the user
  wrote, kept verbatim so ``monitor show`` prints what was given).
* ``monitor_evaluations``: one row per evaluated window; ``UNIQUE (monitor, window_start,
  window_end)`` makes writing a window idempotent (a retried or raced evaluation finds
  the row and changes nothing). Observations and the drift summary are JSON, read back
  for charts of drift over time.
* ``alerts``: one row per episode of (monitor, rule, labels). ``open_fingerprint`` holds
  the fingerprint while the alert is pending or firing and NULL once resolved: its UNIQUE
  constraint is what makes "one open alert per fingerprint" hold even for two writers
  (NULLs never collide, on SQLite and PostgreSQL alike, so history stays).
* ``alert_events``: every state transition, with the value and time.
* ``reference_profiles``: where a model version's stored profile is (an artifact path and
  its digest), one per (model, version, kind).
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
    UniqueConstraint,
)

from modelyard.registry.tables import model_versions
from modelyard.serving.tables import deployments
from modelyard.store.schema import metadata

NAME_LENGTH = 256
USER_LENGTH = 256

monitors = Table(
    "monitors",
    metadata,
    Column("name", String(NAME_LENGTH), primary_key=True),
    Column(
        "deployment",
        String(NAME_LENGTH),
        ForeignKey(deployments.c.name, ondelete="CASCADE"),
        nullable=False,
    ),
    Column("schedule", String(128), nullable=False),  # five-field cron, UTC
    Column("rules", Text, nullable=False),  # the rules spec as written (YAML or JSON)
    Column("window_s", BigInteger, nullable=False),  # the spec's window, in seconds
    Column("enabled", Boolean, nullable=False),
    Column("created_by", String(USER_LENGTH), nullable=False),
    Column("created_at", BigInteger, nullable=False),
    Column("updated_at", BigInteger, nullable=False),
    Column("last_run_at", BigInteger, nullable=True),
    Index("ix_monitors_deployment", "deployment"),
)

monitor_evaluations = Table(
    "monitor_evaluations",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column(
        "monitor",
        String(NAME_LENGTH),
        ForeignKey("monitors.name", ondelete="CASCADE"),
        nullable=False,
    ),
    Column("window_start", BigInteger, nullable=False),
    Column("window_end", BigInteger, nullable=False),
    Column("status", String(16), nullable=False),  # ok | breached | unknown | error
    Column("rows", BigInteger, nullable=True),  # logged predictions in the window
    Column("observations", Text, nullable=False),  # JSON list of observations
    Column("outcomes", Text, nullable=False),  # JSON list of rule outcomes
    Column("drift", Text, nullable=True),  # JSON drift summary (DriftReport.to_dict)
    Column("detail", Text, nullable=True),  # why it is unknown / what failed
    Column("created_at", BigInteger, nullable=False),
    UniqueConstraint("monitor", "window_start", "window_end"),
)

alerts = Table(
    "alerts",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column(
        "monitor",
        String(NAME_LENGTH),
        ForeignKey("monitors.name", ondelete="CASCADE"),
        nullable=False,
    ),
    Column("rule", String(NAME_LENGTH), nullable=False),
    Column("labels", Text, nullable=False),  # JSON object of the outcome's labels
    Column("fingerprint", String(64), nullable=False),  # sha256 of monitor, rule, labels
    # The fingerprint while pending or firing, NULL once resolved: one open alert each.
    Column("open_fingerprint", String(64), nullable=True, unique=True),
    Column("state", String(16), nullable=False),  # pending | firing | resolved
    Column("severity", String(16), nullable=False),  # info | warning | critical
    Column("value", Float, nullable=True),
    Column("detail", Text, nullable=True),
    Column("breaches", Integer, nullable=False),  # consecutive breaching evaluations
    Column("trigger", String(NAME_LENGTH), nullable=True),  # a pipeline to run, stored only
    Column("started_at", BigInteger, nullable=False),  # first breach of this episode
    Column("since", BigInteger, nullable=False),  # entered its current state
    Column("updated_at", BigInteger, nullable=False),
    Column("resolved_at", BigInteger, nullable=True),
    Index("ix_alerts_monitor_state", "monitor", "state"),
    Index("ix_alerts_fingerprint", "fingerprint"),
)

alert_events = Table(
    "alert_events",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("alert_id", Integer, ForeignKey("alerts.id", ondelete="CASCADE"), nullable=False),
    Column("monitor", String(NAME_LENGTH), nullable=False),
    Column("previous", String(16), nullable=True),  # None for the alert's first state
    Column("state", String(16), nullable=False),
    Column("value", Float, nullable=True),
    Column("detail", Text, nullable=True),
    Column("at", BigInteger, nullable=False),
    Index("ix_alert_events_alert_id", "alert_id"),
    Index("ix_alert_events_monitor_at", "monitor", "at"),
)

reference_profiles = Table(
    "reference_profiles",
    metadata,
    Column("model_name", String(NAME_LENGTH), primary_key=True),
    Column("model_version", Integer, primary_key=True, autoincrement=False),
    Column("kind", String(16), primary_key=True),  # input | predictions
    Column("artifact_path", String(1024), nullable=False),
    Column("digest", String(64), nullable=False),  # sha256 of the profile's bytes
    Column("rows", BigInteger, nullable=False),
    Column("source", Text, nullable=True),  # what it was profiled from (sales@3, a run)
    Column("created_at", BigInteger, nullable=False),
    ForeignKeyConstraint(
        ["model_name", "model_version"],
        [model_versions.c.name, model_versions.c.version],
        ondelete="CASCADE",
        onupdate="CASCADE",
    ),
)
