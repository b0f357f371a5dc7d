"""The tracking room's tables, registered on the shared metadata object.

Metric history is append-only (``metric_chunks``); ``latest_metrics`` keeps one row per run
and key, maintained in the same transaction, so that search and run listings never scan
histories (MLflow's search joins exploding on long histories is issue mlflow#1865).
"""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    String,
    Table,
    Text,
    text,
)

from modelyard.store.schema import dialect_indexes, metadata, value_index

KEY_LENGTH = 250
#: The (smallest, largest) a chunk's range defaults to: int64's bounds, as SQL text.
RANGE_UNKNOWN = (str(-(2**63)), str(2**63 - 1))

experiments = Table(
    "experiments",
    metadata,
    Column("experiment_id", Integer, primary_key=True, autoincrement=True),
    Column("name", String(500), nullable=False, unique=True),
    Column("artifact_location", String(1000), nullable=False),
    Column("lifecycle_stage", String(16), nullable=False),
    Column("creation_time", BigInteger, nullable=False),
    Column("last_update_time", BigInteger, nullable=False),
    # Experiment search ordered by a time reads the page from these (``sql_experiments``).
    Index("ix_experiments_creation_time", "creation_time"),
    Index("ix_experiments_last_update_time", "last_update_time"),
)

experiment_tags = Table(
    "experiment_tags",
    metadata,
    Column(
        "experiment_id",
        Integer,
        ForeignKey("experiments.experiment_id", ondelete="CASCADE"),
        primary_key=True,
    ),
    Column("key", String(KEY_LENGTH), primary_key=True),
    Column("value", Text, nullable=False),
    # Which experiments carry a key, and a value (the probe of ``tracking/tag_probe.py``: a
    # selective tag filter drives the search; ``store.schema.value_index``).
    Index("ix_experiment_tags_key", "key"),
)
value_index(experiment_tags)

runs = Table(
    "runs",
    metadata,
    Column("run_id", String(32), primary_key=True),
    Column(
        "experiment_id",
        Integer,
        ForeignKey("experiments.experiment_id", ondelete="CASCADE"),
        nullable=False,
    ),
    Column("run_name", String(250), nullable=False),
    Column("user_id", String(256), nullable=False),
    Column("status", String(16), nullable=False),
    Column("start_time", BigInteger, nullable=False),
    Column("end_time", BigInteger, nullable=True),
    Column("lifecycle_stage", String(16), nullable=False),
    Column("artifact_uri", String(1000), nullable=False),
    Column("parent_run_id", String(32), nullable=True),
    Column("deleted_time", BigInteger, nullable=True),
    # Search scans an experiment's runs through this index alone (it holds every column
    # of ``runs`` the scan reads), in start-time order.
    Index("ix_runs_search", "experiment_id", "start_time", "run_id", "lifecycle_stage"),
    Index("ix_runs_parent_run_id", "parent_run_id"),
    # A search for one run by name probes this first (``tracking/search_plan.py``).
    Index("ix_runs_run_name", "run_name"),
)


def _run_fk() -> ForeignKey:
    return ForeignKey("runs.run_id", ondelete="CASCADE")


#: A counter bumped by every write to a run or its params, tags, metrics and inputs:
#: whoever keeps a rendered run (the server's search answers) keeps it until it moves.
#: A table of its own, not a column of ``runs``: rewriting the wide runs row (and its
#: index) on every per-call ``log_metric`` cost that path ~50%; this row costs ~20%.
#: A run without a row here is at revision 0.
run_revisions = Table(
    "run_revisions",
    metadata,
    Column("run_id", String(32), _run_fk(), primary_key=True),
    Column("revision", BigInteger, nullable=False),
    sqlite_with_rowid=False,
)


# Clustered on (run_id, key) in SQLite: a search's probe or a run's load reads one B-tree.
params = Table(
    "params",
    metadata,
    Column("run_id", String(32), _run_fk(), primary_key=True),
    Column("key", String(KEY_LENGTH), primary_key=True),
    Column("value", Text, nullable=False),
    sqlite_with_rowid=False,
)
# The probe of ``params.x = 'v'`` (``tracking/search_plan.py``): which runs have this
# value, one index-only range (``store.schema.value_index``; probes match its form:
# ``search_query.ValueIn``).
value_index(params)

tags = Table(
    "tags",
    metadata,
    Column("run_id", String(32), _run_fk(), primary_key=True),
    Column("key", String(KEY_LENGTH), primary_key=True),
    Column("value", Text, nullable=False),
    sqlite_with_rowid=False,
)
value_index(tags)  # as params'

#: Full history, one row per (run, key) and write: the points a batch logged for a key,
#: packed into one blob (see ``store/metric_chunks.py``). A 1,000-point batch over 10 keys is
#: 10 rows, not 1,000 primary-key entries, which is what lets batched ingestion run
#: faster than SQLite can insert single rows. Identical points (a replayed batch) are
#: folded into one when the history is read, as a primary key over the point would.
#: Each chunk records its first and last (step, timestamp), so a page of a long history
#: reads only the chunks that reach into it (``tracking/metric_pages.py``), in the order
#: of ``ix_metric_chunks_range``.
metric_chunks = Table(
    "metric_chunks",
    metadata,
    Column("run_id", String(32), _run_fk(), primary_key=True),
    Column("key", String(KEY_LENGTH), primary_key=True),
    # When the chunk was written, in ns, strictly increasing within a process
    # (``store.metric_chunks.next_chunk_id``): a series' chunks append at its end.
    Column("chunk_id", BigInteger, primary_key=True, autoincrement=False),
    Column("points", LargeBinary, nullable=False),
    # The smallest and largest (step, timestamp) of the chunk's points, compared as pairs;
    # a chunk written without them (by a replica of the release before, during a rolling
    # upgrade) gets the widest range, so every page reads it.
    Column("min_step", BigInteger, nullable=False, server_default=text(RANGE_UNKNOWN[0])),
    Column("min_timestamp", BigInteger, nullable=False, server_default=text(RANGE_UNKNOWN[0])),
    Column("max_step", BigInteger, nullable=False, server_default=text(RANGE_UNKNOWN[1])),
    Column("max_timestamp", BigInteger, nullable=False, server_default=text(RANGE_UNKNOWN[1])),
    Index(
        "ix_metric_chunks_range",
        "run_id",
        "key",
        "min_step",
        "min_timestamp",
        "chunk_id",
        "max_step",
        "max_timestamp",
    ),
    sqlite_with_rowid=False,
)

latest_metrics = Table(
    "latest_metrics",
    metadata,
    Column("run_id", String(32), _run_fk(), primary_key=True),
    Column("key", String(KEY_LENGTH), primary_key=True),
    Column("step", BigInteger, nullable=False),
    Column("timestamp", BigInteger, nullable=False),
    Column("value", Float, nullable=False),
    Column("is_nan", Boolean, nullable=False),
    sqlite_with_rowid=False,
)
# The probe of ``metrics.x < v`` and the walk of ``ORDER BY metrics.x``: one range, which
# on PostgreSQL holds the run id too, so neither reads a table row (migration 0018).
_METRIC_VALUES = "latest_metrics (key, is_nan, value)"
dialect_indexes(
    latest_metrics,
    ["ix_latest_metrics_key_value"],
    {
        "sqlite": [f"CREATE INDEX ix_latest_metrics_key_value ON {_METRIC_VALUES}"],
        "postgresql": [
            f"CREATE INDEX ix_latest_metrics_key_value ON {_METRIC_VALUES} INCLUDE (run_id)"
        ],
    },
)

dataset_inputs = Table(
    "dataset_inputs",
    metadata,
    Column("run_id", String(32), _run_fk(), primary_key=True),
    Column("name", String(500), primary_key=True),
    Column("digest", String(64), primary_key=True),
    Column("context", String(64), primary_key=True),
    Column("source_type", String(64), nullable=False),
    Column("source", Text, nullable=False),
    Column("schema", Text, nullable=True),
    Column("profile", Text, nullable=True),
    Column("tags_json", Text, nullable=True),
)
