"""The pipelines room's tables: named pipelines, pipeline runs, their steps, the step cache.

Times are milliseconds since the epoch (``ids.now_ms``), as in every other room. JSON
columns are written with ``json_codec.dumps``.

* ``pipeline_definitions``: the registry of named pipelines a scheduler or an alert starts
  by name: an import target (``package.module:function`` or ``path/to/file.py:function``)
  and default params.
* ``pipeline_runs``: one row per pipeline run, keyed by its tracking run id (the run a user
  sees in ``runs list``); the target and params it was built from (what ``resume``
  rebuilds it from), its cause (who or what started it), status and the reason it failed.
* ``pipeline_steps``: one row per step call of a run, keyed by (run, step key); its nested
  tracking run, cache key, status, attempts, duration, and ``outputs``: the manifest of its
  stored outputs. The manifest is written in the same transaction that marks the step
  COMPLETED, so an output is visible only once every byte of it is stored.
* ``pipeline_step_cache``: cache key → the step run whose outputs answer it. A key is the
  digest of the step's code hash and its inputs' digests.
"""

from __future__ import annotations

from sqlalchemy import BigInteger, Column, ForeignKey, Index, Integer, String, Table, Text

from modelyard.store.schema import metadata

NAME_LENGTH = 256
TARGET_LENGTH = 1024
RUN_ID_LENGTH = 32
KEY_LENGTH = 64

pipeline_definitions = Table(
    "pipeline_definitions",
    metadata,
    Column("name", String(NAME_LENGTH), primary_key=True),
    Column("target", String(TARGET_LENGTH), nullable=False),
    Column("params", Text, nullable=False),  # JSON object: the default params
    Column("description", Text, nullable=True),
    Column("created_at", BigInteger, nullable=False),
    Column("updated_at", BigInteger, nullable=False),
)

pipeline_runs = Table(
    "pipeline_runs",
    metadata,
    Column("run_id", String(RUN_ID_LENGTH), primary_key=True),
    Column("pipeline", String(NAME_LENGTH), nullable=False),  # registered name or function name
    Column("target", String(TARGET_LENGTH), nullable=False),
    Column("params", Text, nullable=False),  # JSON object
    Column("executor", String(32), nullable=False),
    Column("status", String(16), nullable=False),  # RUNNING | FINISHED | FAILED
    Column("cause", Text, nullable=True),  # JSON object: {"kind": "alert", ...}
    Column("error", Text, nullable=True),
    Column("started_at", BigInteger, nullable=False),
    Column("ended_at", BigInteger, nullable=True),
    Column("attempts", Integer, nullable=False),  # 1 + the number of resumes
    Index("ix_pipeline_runs_pipeline_started_at", "pipeline", "started_at"),
)

pipeline_steps = Table(
    "pipeline_steps",
    metadata,
    Column(
        "run_id",
        String(RUN_ID_LENGTH),
        ForeignKey(pipeline_runs.c.run_id, ondelete="CASCADE"),
        primary_key=True,
    ),
    Column("step_key", String(NAME_LENGTH), primary_key=True),
    Column("step_name", String(NAME_LENGTH), nullable=False),
    Column("position", Integer, nullable=False),  # order of the call in the pipeline function
    Column("step_run_id", String(RUN_ID_LENGTH), nullable=True),
    Column("cache_key", String(KEY_LENGTH), nullable=False),
    Column("status", String(16), nullable=False),  # PENDING RUNNING COMPLETED CACHED FAILED
    Column("reason", Text, nullable=True),  # why it was cached, skipped or failed
    Column("attempts", Integer, nullable=False),
    Column("started_at", BigInteger, nullable=True),
    Column("ended_at", BigInteger, nullable=True),
    Column("duration_ms", BigInteger, nullable=True),
    Column("inputs", Text, nullable=False),  # JSON: argument → digest or literal
    Column("outputs", Text, nullable=True),  # JSON manifest, set with COMPLETED / CACHED
    Column("upstream", Text, nullable=False),  # JSON list of step keys it waits for
)

pipeline_step_cache = Table(
    "pipeline_step_cache",
    metadata,
    Column("cache_key", String(KEY_LENGTH), primary_key=True),
    Column("step_name", String(NAME_LENGTH), nullable=False),
    Column("step_run_id", String(RUN_ID_LENGTH), nullable=False),
    Column("outputs", Text, nullable=False),  # the JSON manifest, as in pipeline_steps
    Column("created_at", BigInteger, nullable=False),
)
