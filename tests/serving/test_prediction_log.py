"""The prediction log never blocks serving: a slow or failing store drops and counts;
a graceful close writes everything queued; files are partitioned by deployment and hour;
under steady traffic the writer makes whole files, bounded in records and rows."""

from __future__ import annotations

import io
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import replace

import pyarrow.parquet as pq
import pytest

from modelyard.serving import prediction_log
from modelyard.serving.inputs import InputSpec
from modelyard.serving.prediction_log import (
    PredictionLog,
    PredictionRecord,
    encode,
    read_predictions,
)

HOUR_MS = 3_600_000


def record(i: int, deployment: str = "web", ts_ms: int = 1_790_000_000_000) -> PredictionRecord:
    return PredictionRecord(
        request_id=f"r{i}", ts_ms=ts_ms, deployment=deployment, revision=1, variant="primary",
        model="demand", version=1, role="primary", status="ok", latency_ms=0.5, n_rows=1,
        inputs=lambda: {"x0": [float(i)]}, outputs=[float(i)],
    )  # fmt: skip


class SlowStore:
    """An artifact store whose writes take ``delay`` seconds (or fail)."""

    def __init__(self, delay: float = 0.0, fail: bool = False) -> None:
        self.delay, self.fail = delay, fail
        self.files: dict[str, bytes] = {}
        self.release = threading.Event()

    def log_bytes(self, path: str, data: bytes) -> None:
        if self.delay:
            self.release.wait(self.delay)
        if self.fail:
            raise OSError("disk full")
        self.files[path] = data


def test_close_writes_everything_partitioned_by_deployment_and_hour(yard):
    log = PredictionLog(yard.registry.artifacts, flush_interval_s=60)
    for i in range(30):
        log.append(record(i, "web" if i % 2 else "api", 1_790_000_000_000 + (i % 3) * HOUR_MS))
    assert log.stats.written == 0  # nothing written on the request path
    log.close()
    assert log.stats.written == 30 and log.stats.dropped == {}
    paths = [f.path for f in yard.registry.artifacts.list_recursive("predictions")]
    assert len(paths) == 6
    assert all(p.startswith(("predictions/deployment=web/hour=",
                             "predictions/deployment=api/hour=")) for p in paths)  # fmt: skip
    web = read_predictions(yard.registry.artifacts, "web")
    assert sorted(web["request_id"]) == sorted(f"r{i}" for i in range(30) if i % 2)
    assert web["inputs"].iloc[0].startswith('{"x0":[') and str(web["ts"].dt.tz) == "UTC"
    assert not log.append(record(99))
    assert log.stats.dropped == {"closed": 1}


def test_a_slow_store_never_blocks_appends_and_counts_drops():
    store = SlowStore(delay=5.0)
    dropped: list[tuple[str, int]] = []
    log = PredictionLog(
        store, max_queue=100, flush_rows=10, flush_interval_s=0.01,
        on_drop=lambda reason, n: dropped.append((reason, n)),
    )  # fmt: skip
    started = time.perf_counter()
    accepted = sum(log.append(record(i)) for i in range(1000))
    assert time.perf_counter() - started < 0.5  # 1000 appends while the store hangs
    assert accepted <= 110 and log.stats.dropped["queue_full"] == 1000 - accepted
    assert sum(n for _, n in dropped) == 1000 - accepted
    store.release.set()
    log.close()
    assert log.stats.written == accepted


def test_a_failing_store_drops_and_counts_after_one_retry():
    store = SlowStore(fail=True)
    log = PredictionLog(store, flush_interval_s=60)
    for i in range(5):
        log.append(record(i))
    log.close()
    assert log.stats.dropped == {"store_error": 5} and log.stats.written == 0


def wait_for(condition: Callable[[], bool], timeout_s: float = 30.0, log=None) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        assert time.monotonic() < deadline, (
            f"the writer thread did not get there: {log and (log.stats, log.pending)}"
        )
        time.sleep(0.01)


def test_records_arriving_while_the_writer_writes_wait_for_a_whole_file():
    """Appends interleaved with the writer's rounds (the writer wakes at 100 records, the
    rest arrive while it writes): every file is whole, and none is stranded."""
    for _ in range(20):
        log = PredictionLog(SlowStore(), flush_rows=100, flush_interval_s=3600)
        for i in range(250):
            log.append(record(i))
            if i % 37 == 0:
                time.sleep(0.0005)  # let the writer in mid-stream
        wait_for(lambda log=log: log.stats.written >= 200, timeout_s=10, log=log)
        assert (log.stats.written, log.stats.files, log.pending) == (200, 2, 50)
        log.close()
        assert log.stats.written == 250 and log.stats.files == 3


def test_steady_traffic_gets_whole_files_not_one_per_handful_of_records():
    store = SlowStore()
    log = PredictionLog(store, flush_rows=100, flush_interval_s=3600)
    for i in range(250):
        log.append(record(i))
    wait_for(lambda: log.stats.written >= 200, log=log)
    assert log.stats.files == 2 and log.pending == 50  # the rest waits for its round
    log.close()
    assert log.stats.written == 250 and log.stats.files == 3


def test_a_file_holds_a_bounded_number_of_data_rows(monkeypatch):
    monkeypatch.setattr(prediction_log, "FILE_DATA_ROWS", 10)
    store = SlowStore()
    log = PredictionLog(store, flush_interval_s=3600)
    for i in range(6):
        log.append(replace(record(i), n_rows=4))
    log.close()
    assert log.stats.written == 6 and log.stats.files == 2  # 3 records of 4 rows a file


def test_numeric_rows_are_logged_as_named_columns_whichever_way_they_are_kept():
    spec = InputSpec.from_signature(
        {"inputs": [{"name": "a", "type": "double"}, {"name": "b", "type": "double"}]}
    )
    batch = spec.from_split(["b", "a"], [[1.0, 2.0], [3.0, float("nan")]])
    kept = [
        replace(record(0), inputs=batch.log_source()),
        replace(record(1), inputs=batch.log_inputs),
    ]
    logged = pq.read_table(io.BytesIO(encode(kept))).column("inputs").to_pylist()
    assert logged == ['{"a":[2.0,null],"b":[1.0,3.0]}'] * 2


def test_both_parquet_writers_write_one_schema(monkeypatch):
    pytest.importorskip("duckdb")
    records = [record(1), replace(record(2), key="k", error="ValueError: x", outputs=None)]
    with_duckdb = pq.read_table(io.BytesIO(encode(records)))
    monkeypatch.setitem(sys.modules, "duckdb", None)  # not installed: pyarrow writes
    with_arrow = pq.read_table(io.BytesIO(encode(records)))
    assert with_duckdb.schema.equals(with_arrow.schema)
    assert with_duckdb.to_pylist() == with_arrow.to_pylist()
    assert str(with_arrow.schema.field("ts").type) == "timestamp[us, tz=UTC]"


def test_a_temporary_folder_with_a_quote_in_its_name_still_gets_its_file(monkeypatch, tmp_path):
    pytest.importorskip("duckdb")
    quoted = tmp_path / "it's here"
    quoted.mkdir()
    monkeypatch.setattr(prediction_log.tempfile, "tempdir", str(quoted))
    assert pq.read_table(io.BytesIO(encode([record(1)]))).num_rows == 1
