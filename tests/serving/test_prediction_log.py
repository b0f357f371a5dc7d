"""The prediction log never blocks serving: a slow or failing store drops and counts;
a graceful close writes everything queued; files are partitioned by deployment and hour."""

from __future__ import annotations

import threading
import time

from modelyard.serving.prediction_log import PredictionLog, PredictionRecord, read_predictions

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
