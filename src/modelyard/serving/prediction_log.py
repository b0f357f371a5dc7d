"""The prediction log: every prediction, written asynchronously to Parquet in the artifact
store, partitioned by deployment and hour.

``predictions/deployment=<name>/hour=<YYYY-MM-DDTHH>/part-<writer>-<seq>.parquet``

Serving only appends a tuple to a bounded in-memory queue (no encoding, no I/O); one
background thread turns queued records into Arrow tables and stores them every
``flush_interval_s`` seconds or ``flush_rows`` records. Hence:

* a slow or unavailable store makes the queue fill up; records that do not fit are
  dropped and counted (``dropped``, by reason), and serving never waits;
* a failed write is retried once, then its records are counted as dropped;
* ``close()`` (graceful shutdown) writes everything queued before returning — nothing
  acknowledged is lost unless the store itself refuses it.

Each writer names its files with its own id, so many workers and replicas never collide,
and every file is a complete Parquet file when it becomes visible (artifact writes are
atomic).

>>> log = PredictionLog(artifacts)                                      # doctest: +SKIP
>>> log.append(PredictionRecord(...))                                   # doctest: +SKIP
>>> log.close()                                                          # doctest: +SKIP
"""

from __future__ import annotations

import io
import threading
import time
import uuid
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from modelyard.serving import json_codec

PREFIX = "predictions"
DEFAULT_MAX_QUEUE = 100_000
DEFAULT_FLUSH_ROWS = 5_000
DEFAULT_FLUSH_INTERVAL_S = 2.0
SCHEMA_FIELDS = (
    "request_id", "ts", "deployment", "revision", "variant", "model", "version", "role",
    "status", "latency_ms", "n_rows", "key", "inputs", "outputs", "error", "contract",
)  # fmt: skip


@dataclass(slots=True)
class PredictionRecord:
    """One answered (or failed) prediction of one variant. ``inputs`` and ``outputs`` are
    kept as given (lists, arrays) and encoded to JSON by the writer thread, not the
    request."""

    request_id: str
    ts_ms: int
    deployment: str
    revision: int
    variant: str
    model: str
    version: int
    role: str  # primary | shadow
    status: str  # ok | error
    latency_ms: float
    n_rows: int
    key: str | None = None
    inputs: Any = None  # a callable returning records, or records
    outputs: Any = None
    error: str | None = None
    contract: str | None = None


def partition_path(deployment: str, ts_ms: int) -> str:
    hour = datetime.fromtimestamp(ts_ms / 1000, UTC).strftime("%Y-%m-%dT%H")
    return f"{PREFIX}/deployment={deployment}/hour={hour}"


@dataclass
class LogStats:
    written: int = 0
    files: int = 0
    dropped: dict[str, int] = field(default_factory=dict)


class PredictionLog:
    """Asynchronous, bounded, never-blocking Parquet writer of prediction records."""

    def __init__(
        self,
        artifacts: Any,
        *,
        max_queue: int = DEFAULT_MAX_QUEUE,
        flush_rows: int = DEFAULT_FLUSH_ROWS,
        flush_interval_s: float = DEFAULT_FLUSH_INTERVAL_S,
        on_drop: Callable[[str, int], None] | None = None,
        on_write: Callable[[int], None] | None = None,
    ) -> None:
        self.artifacts = artifacts
        self.max_queue = max_queue
        self.flush_rows = flush_rows
        self.flush_interval_s = flush_interval_s
        self.stats = LogStats()
        self._on_drop = on_drop
        self._on_write = on_write
        self._queue: deque[PredictionRecord] = deque()
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._writer_id = uuid.uuid4().hex[:12]
        self._seq = 0
        self._flush_lock = threading.Lock()
        self._thread = threading.Thread(target=self._run, name="prediction-log", daemon=True)
        self._thread.start()

    def append(self, record: PredictionRecord) -> bool:
        """Queue ``record``; False (and counted) when the queue is full. Never blocks."""
        if self._stop.is_set():
            self._drop("closed", 1)
            return False
        if len(self._queue) >= self.max_queue:
            self._drop("queue_full", 1)
            return False
        self._queue.append(record)
        if len(self._queue) >= self.flush_rows:
            self._wake.set()
        return True

    def _drop(self, reason: str, n: int) -> None:
        self.stats.dropped[reason] = self.stats.dropped.get(reason, 0) + n
        if self._on_drop is not None:
            self._on_drop(reason, n)

    @property
    def pending(self) -> int:
        return len(self._queue)

    def _run(self) -> None:
        while not self._stop.is_set():
            self._wake.wait(self.flush_interval_s)
            self._wake.clear()
            self._flush()
        self._flush()

    def flush(self) -> None:
        """Write what is queued now, from the caller's thread (tests, shutdown)."""
        self._flush()

    def _flush(self) -> None:
        with self._flush_lock:
            while self._queue:
                batch: list[PredictionRecord] = []
                while self._queue and len(batch) < self.flush_rows:
                    batch.append(self._queue.popleft())
                self._write(batch)

    def _write(self, batch: list[PredictionRecord]) -> None:
        by_partition: dict[str, list[PredictionRecord]] = {}
        for record in batch:
            by_partition.setdefault(partition_path(record.deployment, record.ts_ms), []).append(
                record
            )
        for partition, records in by_partition.items():
            try:
                data = encode(records)
            except Exception:
                self._drop("encode_error", len(records))
                continue
            self._seq += 1
            path = f"{partition}/part-{self._writer_id}-{self._seq:06d}.parquet"
            for attempt in (1, 2):
                try:
                    self.artifacts.log_bytes(path, data)
                except Exception:
                    if attempt == 2:
                        self._drop("store_error", len(records))
                    else:
                        time.sleep(0.2)
                    continue
                self.stats.written += len(records)
                self.stats.files += 1
                if self._on_write is not None:
                    self._on_write(len(records))
                break

    def close(self, timeout_s: float = 30.0) -> None:
        """Stop accepting records and write every queued one (graceful shutdown)."""
        self._stop.set()
        self._wake.set()
        self._thread.join(timeout_s)
        self._flush()


def encode(records: list[PredictionRecord]) -> bytes:
    """Records as one Parquet file (zstd), with inputs and outputs as JSON text."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    columns: dict[str, list[Any]] = {name: [] for name in SCHEMA_FIELDS}
    for r in records:
        columns["request_id"].append(r.request_id)
        columns["ts"].append(r.ts_ms)
        columns["deployment"].append(r.deployment)
        columns["revision"].append(r.revision)
        columns["variant"].append(r.variant)
        columns["model"].append(r.model)
        columns["version"].append(r.version)
        columns["role"].append(r.role)
        columns["status"].append(r.status)
        columns["latency_ms"].append(r.latency_ms)
        columns["n_rows"].append(r.n_rows)
        columns["key"].append(r.key)
        columns["inputs"].append(_json(r.inputs))
        columns["outputs"].append(_json(r.outputs))
        columns["error"].append(r.error)
        columns["contract"].append(r.contract)
    table = pa.table(
        {
            **{k: pa.array(v, pa.string()) for k, v in columns.items() if k not in _TYPED},
            "ts": pa.array(columns["ts"], pa.timestamp("ms", tz="UTC")),
            "revision": pa.array(columns["revision"], pa.int32()),
            "version": pa.array(columns["version"], pa.int32()),
            "latency_ms": pa.array(columns["latency_ms"], pa.float64()),
            "n_rows": pa.array(columns["n_rows"], pa.int32()),
        }
    ).select(list(SCHEMA_FIELDS))
    sink = io.BytesIO()
    pq.write_table(table, sink, compression="zstd")
    return sink.getvalue()


_TYPED = frozenset({"ts", "revision", "version", "latency_ms", "n_rows"})


def _json(value: Any) -> str | None:
    if value is None:
        return None
    if callable(value):
        value = value()
    return json_codec.dumps(value).decode()


def read_predictions(artifacts: Any, deployment: str, *, since_ms: int | None = None) -> Any:
    """Every logged prediction of ``deployment`` as a DataFrame (for reports and tests)."""
    import pandas as pd
    import pyarrow.parquet as pq

    prefix = f"{PREFIX}/deployment={deployment}"
    files = [f.path for f in artifacts.list_recursive(prefix) if f.path.endswith(".parquet")]
    if since_ms is not None:
        first_hour = partition_path(deployment, since_ms)
        files = [p for p in files if p.rsplit("/", 1)[0] >= first_hour]
    frames = [pq.read_table(io.BytesIO(artifacts.read_bytes(p))).to_pandas() for p in files]
    if not frames:
        return pd.DataFrame(columns=list(SCHEMA_FIELDS))
    return pd.concat(frames, ignore_index=True)
