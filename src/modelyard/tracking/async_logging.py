"""Logging that never blocks the training loop.

Calls are queued in memory and written by one background thread, which merges everything
queued for a run into a single ``log_batch`` (one transaction). ``flush()`` waits for
everything submitted so far and raises the first error a write hit; ending a run and
process exit flush, so nothing acknowledged by ``flush``/``end_run`` is lost.
"""

from __future__ import annotations

import atexit
import threading
import weakref
from collections.abc import Sequence
from dataclasses import dataclass, field

from modelyard.tracking.entities import Metric, Param, RunTag
from modelyard.tracking.store import TrackingStore

#: Metrics written per transaction; larger backlogs are split so one commit stays short.
MAX_METRICS_PER_WRITE = 50_000


@dataclass
class _Pending:
    metrics: list[Metric] = field(default_factory=list)
    params: list[Param] = field(default_factory=list)
    tags: list[RunTag] = field(default_factory=list)


class AsyncLogger:
    def __init__(self, store: TrackingStore) -> None:
        self._store = store
        self._cond = threading.Condition()
        self._queue: list[tuple[str, Sequence[Metric], Sequence[Param], Sequence[RunTag]]] = []
        self._submitted = 0
        self._written = 0
        self._errors: dict[str, BaseException] = {}
        self._closed = False
        self._thread: threading.Thread | None = None
        _live_loggers.add(self)

    def submit(
        self,
        run_id: str,
        metrics: Sequence[Metric] = (),
        params: Sequence[Param] = (),
        tags: Sequence[RunTag] = (),
    ) -> None:
        with self._cond:
            if self._thread is None:
                self._thread = threading.Thread(
                    target=self._work, name="modelyard-async-logging", daemon=True
                )
                self._thread.start()
            self._queue.append((run_id, metrics, params, tags))
            self._submitted += 1
            self._cond.notify()

    def flush(self, run_id: str | None = None) -> None:
        """Wait until everything submitted so far is written; raise what failed (for run_id)."""
        with self._cond:
            target = self._submitted
            while self._written < target:
                self._cond.wait()
            if run_id is None:
                errors = list(self._errors.values())
                self._errors.clear()
            else:
                errors = [self._errors.pop(run_id)] if run_id in self._errors else []
        if errors:
            raise errors[0]

    def close(self) -> None:
        try:
            self.flush()
        finally:
            with self._cond:
                self._closed = True
                self._cond.notify()

    def _work(self) -> None:
        while True:
            with self._cond:
                while not self._queue and not self._closed:
                    self._cond.wait()
                if not self._queue and self._closed:
                    return
                taken, self._queue = self._queue, []
            self._write(taken)
            with self._cond:
                self._written += len(taken)
                self._cond.notify_all()

    def _write(
        self, taken: list[tuple[str, Sequence[Metric], Sequence[Param], Sequence[RunTag]]]
    ) -> None:
        merged: dict[str, _Pending] = {}
        for run_id, metrics, params, tags in taken:
            pending = merged.setdefault(run_id, _Pending())
            pending.metrics.extend(metrics)
            pending.params.extend(params)
            pending.tags.extend(tags)
        for run_id, pending in merged.items():
            try:
                self._store.log_batch(
                    run_id, pending.metrics[:MAX_METRICS_PER_WRITE], pending.params, pending.tags
                )
                rest = pending.metrics[MAX_METRICS_PER_WRITE:]
                while rest:
                    self._store.log_batch(run_id, rest[:MAX_METRICS_PER_WRITE])
                    rest = rest[MAX_METRICS_PER_WRITE:]
            except BaseException as exc:  # kept for flush() to raise in the caller's thread
                with self._cond:
                    self._errors.setdefault(run_id, exc)


_live_loggers: weakref.WeakSet[AsyncLogger] = weakref.WeakSet()


@atexit.register
def _flush_at_exit() -> None:
    for logger in list(_live_loggers):
        try:
            logger.flush()
        except Exception as exc:  # the process is ending: report, don't raise
            import sys

            print(f"modelyard: async logging failed at exit: {exc}", file=sys.stderr)
