"""The prediction log: every prediction, written asynchronously to Parquet in the artifact
store, partitioned by deployment and hour.

``predictions/deployment=<name>/hour=<YYYY-MM-DDTHH>/part-<writer>-<seq>.parquet``

Serving only appends a tuple to a bounded in-memory queue (no encoding, no I/O); one
background thread writes what is queued as Parquet files (with DuckDB when installed,
else pyarrow) every ``flush_interval_s`` seconds, and whenever a whole file's worth is
queued (``flush_rows`` records or ``FILE_DATA_ROWS`` input rows). Hence:

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
import tempfile
import threading
import time
import uuid
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from operator import attrgetter
from pathlib import Path
from typing import Any

from modelyard import json_codec
from modelyard.artifacts import namespaces
from modelyard.ids import now_ms

PREFIX = namespaces.PREDICTIONS
DEFAULT_MAX_QUEUE = 100_000
DEFAULT_FLUSH_ROWS = 5_000
DEFAULT_FLUSH_INTERVAL_S = 2.0
#: Most input rows in one file (~10 MB of JSON for 10 columns), whatever the records.
FILE_DATA_ROWS = 50_000
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
    inputs: Any = None  # records, a callable returning them, or (names, float matrix)
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
        self._queue: deque[tuple[Any, ...]] = deque()
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._writer_id = uuid.uuid4().hex[:12]
        self._seq = 0
        # Data rows queued = _rows_in - _rows_out; each counter has a single writer (the
        # appending thread; the flushing one, under _flush_lock), so neither needs a lock.
        self._rows_in = 0
        self._rows_out = 0
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
        self._queue.append(_row(record))
        self._rows_in += record.n_rows or 1
        if self._full_file_queued():
            self._wake.set()
        return True

    def _drop(self, reason: str, n: int) -> None:
        self.stats.dropped[reason] = self.stats.dropped.get(reason, 0) + n
        if self._on_drop is not None:
            self._on_drop(reason, n)

    def prepare(self) -> None:
        """Load the Parquet writer now, by encoding one throw-away record (blocking): the
        first flush would otherwise import it (pyarrow also pulls in pandas on its first
        array), holding the GIL for up to a few hundred milliseconds under load."""
        encode([PredictionRecord("warm-up", now_ms(), "-", 0, "-", "-", 0, "-", "ok", 0.0, 0)])

    @property
    def pending(self) -> int:
        return len(self._queue)

    def _run(self) -> None:
        due = time.monotonic() + self.flush_interval_s
        while not self._stop.is_set():
            self._wake.wait(max(0.0, due - time.monotonic()))
            self._wake.clear()
            # Only what is queued now: records arriving during the write wait for the next
            # round. Draining "until empty" under steady traffic never ends — one tiny file
            # every few milliseconds, and a writer thread forever contending for the GIL.
            if time.monotonic() >= due:
                self._flush(len(self._queue))
                due = time.monotonic() + self.flush_interval_s
            else:  # woken early by a file's worth of records: full files only
                self._flush(len(self._queue), full_only=True)
        self._flush()

    def flush(self) -> None:
        """Write what is queued now, from the caller's thread (tests, shutdown)."""
        self._flush()

    def _queued_rows(self) -> int:
        return self._rows_in - self._rows_out

    def _full_file_queued(self) -> bool:
        return len(self._queue) >= self.flush_rows or self._queued_rows() >= FILE_DATA_ROWS

    def _flush(self, limit: int | None = None, *, full_only: bool = False) -> None:
        """Write queued records (at most ``limit``; None: until the queue is empty; with
        ``full_only``, only while a whole file's worth is queued)."""
        with self._flush_lock:
            left = len(self._queue) if limit is None else limit
            while self._queue and left > 0:
                if full_only and not self._full_file_queued():
                    break
                # What was queued when this round began may end in part of a file; the rest
                # of that file has arrived since (or will), so it waits for the next round:
                # writing it now would leave a partial file and strand what follows.
                if full_only and left < self.flush_rows and self._queued_rows() < FILE_DATA_ROWS:
                    break
                # A file holds at most flush_rows records and FILE_DATA_ROWS data rows:
                # encoding holds a file's JSON in memory (measured with 100-row requests
                # and 5,000 records a file: 230 MB resident became 640 MB).
                batch: list[tuple[Any, ...]] = []
                data_rows = 0
                most = min(self.flush_rows, left)
                while self._queue and len(batch) < most and data_rows < FILE_DATA_ROWS:
                    row = self._queue.popleft()
                    batch.append(row)
                    data_rows += row[_N_ROWS] or 1
                left -= len(batch)
                self._rows_out += data_rows
                self._write(batch)
                if limit is None:
                    left = len(self._queue)

    def _write(self, batch: list[tuple[Any, ...]]) -> None:
        by_partition: dict[str, list[tuple[Any, ...]]] = {}
        for row in batch:
            by_partition.setdefault(partition_path(row[_DEPLOYMENT], row[_TS]), []).append(row)
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


def encode(records: list[PredictionRecord] | list[tuple[Any, ...]]) -> bytes:
    """Records (or their rows, as queued) as one Parquet file (zstd), with inputs and
    outputs as JSON text."""
    rows = [r if type(r) is tuple else _row(r) for r in records]
    columns = {name: [row[j] for row in rows] for j, name in enumerate(SCHEMA_FIELDS)}
    inputs, outputs = columns["inputs"], columns["outputs"]
    for i in range(len(rows)):
        inputs[i] = _json(inputs[i])
        outputs[i] = _json(outputs[i])
        if i % _YIELD_EVERY == _YIELD_EVERY - 1:
            # Let the event loop in (it waits for the GIL up to the switch interval
            # otherwise): serving latency matters more than the writer's.
            time.sleep(0)
    try:
        import duckdb
    except ImportError:
        return _parquet_with_arrow(columns)
    return _parquet_with_duckdb(duckdb, columns)


def _parquet_with_duckdb(duckdb: Any, columns: dict[str, list[Any]]) -> bytes:
    """DuckDB writes the file when it is installed: ~20 MB resident where pyarrow takes
    ~100 MB (it imports pandas on its first array), and less CPU time a file. (Straight
    from the arrays: copied from a table, columns without nulls in a file would be
    written as required, and the schema would change from file to file.)"""
    import numpy as np

    from modelyard.features.relations import literal  # quoting a path for SQL

    frame = {
        k: np.array(v, dtype=np.float64 if k == "latency_ms" else np.int64)
        if k in _TYPED
        else np.array(v, dtype=object)
        for k, v in columns.items()
    }
    select = ", ".join(_DUCKDB_COLUMNS[name] for name in SCHEMA_FIELDS)
    with tempfile.TemporaryDirectory(prefix="modelyard-log-") as folder:
        path = Path(folder) / "part.parquet"
        # One thread: the server's cores are for requests.
        con = duckdb.connect(":memory:", config={"threads": 1})
        try:
            con.register("records", frame)
            con.execute(
                f"COPY (SELECT {select} FROM records) TO {literal(str(path))} "
                "(FORMAT parquet, COMPRESSION zstd)"
            )
        finally:
            con.close()
        return path.read_bytes()


_DUCKDB_TYPES = {
    **{name: "VARCHAR" for name in SCHEMA_FIELDS},
    "revision": "INTEGER",
    "version": "INTEGER",
    "latency_ms": "DOUBLE",
    "n_rows": "INTEGER",
}
_DUCKDB_COLUMNS = {
    **{name: f"{name}::{_DUCKDB_TYPES[name]} AS {name}" for name in SCHEMA_FIELDS},
    # Integer milliseconds, exactly; microseconds in the file, as pyarrow is told to write.
    "ts": "to_timestamp(0) + to_milliseconds(ts) AS ts",
}


def _parquet_with_arrow(columns: dict[str, list[Any]]) -> bytes:
    import pyarrow as pa
    import pyarrow.parquet as pq

    table = pa.table(
        {
            **{k: pa.array(v, pa.string()) for k, v in columns.items() if k not in _TYPED},
            # Microseconds, as DuckDB writes them: one schema whichever writer ran.
            "ts": pa.array(columns["ts"], pa.timestamp("ms", tz="UTC")).cast(
                pa.timestamp("us", tz="UTC")
            ),
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
#: Records encoded between two GIL releases of the writer thread (~0.5 ms of work).
_YIELD_EVERY = 64


#: A record as queued: its fields in ``SCHEMA_FIELDS`` order (``ts`` is ``ts_ms``). A tuple
#: of strings, numbers and arrays, which the garbage collector stops tracking.
_row = attrgetter(
    "request_id", "ts_ms", "deployment", "revision", "variant", "model", "version", "role",
    "status", "latency_ms", "n_rows", "key", "inputs", "outputs", "error", "contract",
)  # fmt: skip
_TS, _DEPLOYMENT, _N_ROWS = 1, 2, 10


def _json(value: Any) -> str | None:
    if value is None:
        return None
    if callable(value):
        value = value()
    elif type(value) is tuple:  # (names, float matrix): see ``Batch.log_source``
        names, matrix = value
        value = dict(zip(names, matrix.T.tolist(), strict=True))
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
