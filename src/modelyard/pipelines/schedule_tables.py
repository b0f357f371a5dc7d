"""The scheduler's tables: pipeline cron schedules, and firings — each start the scheduler
decided on, once.

Times are milliseconds since the epoch (``ids.now_ms``), as in every other room.

* ``pipeline_schedules``: a registered pipeline, a cron schedule (UTC), params over the
  pipeline's defaults, the executor, whether it is paused, and ``since``: ticks after it
  are due (set at creation and on resume, so a pause's ticks are not run on resume).
* ``pipeline_firings``: one row per start the scheduler decided on — a schedule's tick
  (``schedule:<name>@<tick ms>``) or an alert's firing episode (``alert:<id>``), keyed by
  that name. Inserting the row *is* the decision: the primary key lets exactly one
  scheduler insert it, on SQLite and PostgreSQL alike, and it stays after a restart. Its
  status follows the run: claimed → running → finished | failed (or ``skipped``, no run:
  the schedule's previous run was still going); ``run_id`` is the
  pipeline run it started (its cause names the firing, so a crash between the two is
  recovered by looking the run up).
"""

from __future__ import annotations

from sqlalchemy import BigInteger, Boolean, Column, Index, String, Table, Text

from modelyard.store.schema import metadata

NAME_LENGTH = 256
KEY_LENGTH = 512

pipeline_schedules = Table(
    "pipeline_schedules",
    metadata,
    Column("name", String(NAME_LENGTH), primary_key=True),
    Column("pipeline", String(NAME_LENGTH), nullable=False),  # a registered pipeline's name
    Column("cron", String(NAME_LENGTH), nullable=False),
    Column("params", Text, nullable=False),  # JSON object, over the pipeline's defaults
    Column("executor", String(32), nullable=False),
    Column("paused", Boolean, nullable=False),
    Column("since", BigInteger, nullable=False),  # ticks after this are due
    Column("created_at", BigInteger, nullable=False),
    Column("updated_at", BigInteger, nullable=False),
)

pipeline_firings = Table(
    "pipeline_firings",
    metadata,
    Column("key", String(KEY_LENGTH), primary_key=True),
    Column("kind", String(16), nullable=False),  # schedule | alert
    Column("source", String(NAME_LENGTH), nullable=False),  # schedule name | monitor name
    Column("pipeline", String(NAME_LENGTH), nullable=False),
    Column("due_at", BigInteger, nullable=False),  # the tick, or when the alert fired
    Column("cause", Text, nullable=False),  # JSON object, as recorded on the run
    Column("status", String(16), nullable=False),  # claimed|running|finished|failed|skipped
    Column("claimed_by", String(NAME_LENGTH), nullable=False),
    Column("claimed_at", BigInteger, nullable=False),
    Column("run_id", String(32), nullable=True),
    Column("detail", Text, nullable=True),  # why it failed, or was skipped
    Column("ended_at", BigInteger, nullable=True),
    Index("ix_pipeline_firings_kind_source_due_at", "kind", "source", "due_at"),
    Index("ix_pipeline_firings_status", "status"),
)
