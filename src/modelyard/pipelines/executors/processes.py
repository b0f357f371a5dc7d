"""Run steps in local worker processes, started with ``spawn``.

Why spawn and not fork: the coordinator holds SQLite connections, a connection pool and
threads (background logging); a forked child inherits them mid-state, and SQLite forbids
using a connection across a fork. A spawned worker starts clean, and it never opens the
metadata database anyway (``tasks``): it only reads and writes blobs.

Workers are started on demand, up to ``capacity``, and reused. Each talks to the
coordinator over its own pipe, so the coordinator knows which worker runs which step:
a step past its timeout has its worker killed (and replaced on the next submit), and a
worker that dies mid-step (killed by the OOM killer or a signal) is reported as that
step's failure, naming the signal, instead of breaking the whole pool as
``ProcessPoolExecutor`` does.
"""

from __future__ import annotations

import multiprocessing
import signal
import time
from dataclasses import dataclass
from multiprocessing.connection import Connection, wait
from typing import Any

from modelyard.pipelines.executors.base import Executor, timed_out
from modelyard.pipelines.tasks import StepResult, StepTask, execute_step, resolve_function


def _worker_main(conn: Connection) -> None:
    """A worker's loop: for each task sent, import its function, say ``started`` (the
    step's time limit counts from here, not from the worker's start-up and imports), run
    it and answer ``done`` with its result; None stops the worker."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the coordinator's to handle
    try:
        while True:
            task = conn.recv()
            if task is None:
                return
            fn = resolve_function(task)
            if isinstance(fn, StepResult):
                conn.send((_DONE, fn))
                continue
            conn.send((_STARTED, None))
            conn.send((_DONE, execute_step(task, fn)))
    except (EOFError, OSError):  # the coordinator went away
        return
    finally:
        conn.close()


_STARTED = "started"
_DONE = "done"


@dataclass
class _Worker:
    process: Any
    conn: Connection
    task: StepTask | None = None
    submitted: float = 0.0
    started: float | None = None  # when the worker began the step itself


class ProcessExecutor(Executor):
    name = "process"

    def __init__(self, workers: int = 2) -> None:
        self.capacity = max(1, workers)
        self._context = multiprocessing.get_context("spawn")
        self._workers: list[_Worker] = []

    def submit(self, task: StepTask) -> None:
        for worker in [w for w in self._workers if w.task is None]:
            if not worker.process.is_alive():  # died while idle (the OOM killer)
                worker.process.join(1)
                self._forget(worker)
        worker = next((w for w in self._workers if w.task is None), None) or self._start()
        worker.task = task
        worker.submitted = time.perf_counter()
        worker.started = None
        try:
            worker.conn.send(task)
        except (BrokenPipeError, OSError):  # it died just now: ``wait`` reports the death
            pass

    def _start(self) -> _Worker:
        parent, child = self._context.Pipe()
        process = self._context.Process(
            target=_worker_main, args=(child,), name="modelyard-step-worker", daemon=True
        )
        process.start()
        child.close()
        worker = _Worker(process, parent)
        self._workers.append(worker)
        return worker

    def wait(self, timeout: float | None) -> list[StepResult]:
        end = None if timeout is None else time.perf_counter() + timeout
        while True:
            busy = [w for w in self._workers if w.task is not None]
            if not busy:
                if timeout:
                    time.sleep(timeout)
                return []
            now = time.perf_counter()
            spans = [max(0.0, t - now) for t in [end, *map(self._deadline, busy)] if t is not None]
            ready = set(
                wait(
                    [h for w in busy for h in (w.conn, w.process.sentinel)],
                    min(spans, default=None),
                )
            )
            results = [r for w in busy if (r := self._check(w, ready)) is not None]
            if results or (end is not None and time.perf_counter() >= end):
                return results

    @staticmethod
    def _deadline(worker: _Worker) -> float | None:
        task = worker.task
        if task is None or task.timeout_s is None or worker.started is None:
            return None
        return worker.started + task.timeout_s

    def _check(self, worker: _Worker, ready: set[Any]) -> StepResult | None:
        """The worker's result if its attempt ended (answered, died, or timed out)."""
        task = worker.task
        assert task is not None
        while worker.conn in ready or worker.conn.poll():
            ready.discard(worker.conn)
            try:
                kind, payload = worker.conn.recv()
            except (EOFError, OSError):
                break  # died while answering: reported below
            if kind == _STARTED:
                worker.started = time.perf_counter()
                continue
            worker.task = None
            result: StepResult = payload
            return result
        if worker.process.sentinel in ready or not worker.process.is_alive():
            return self._died(worker, task)
        deadline = self._deadline(worker)
        if deadline is not None and time.perf_counter() >= deadline:
            assert worker.started is not None
            self._stop(worker)
            note = " (its worker process was killed)"
            return timed_out(task, time.perf_counter() - worker.started, note)
        return None

    def _died(self, worker: _Worker, task: StepTask) -> StepResult:
        worker.process.join(1)
        code = worker.process.exitcode
        self._forget(worker)
        if code is not None and code < 0:
            try:
                how = f"killed by {signal.Signals(-code).name}"
            except ValueError:
                how = f"killed by signal {-code}"
        else:
            how = f"exited with code {code}"
        return StepResult(
            task.key,
            task.attempt,
            False,
            error=f"the worker process running step {task.step_name!r} died ({how})",
            retryable=True,
            seconds=time.perf_counter() - (worker.started or worker.submitted),
        )

    def _stop(self, worker: _Worker) -> None:
        worker.process.kill()
        worker.process.join(5)
        self._forget(worker)

    def _forget(self, worker: _Worker) -> None:
        worker.conn.close()
        if worker.process.exitcode is not None:
            worker.process.close()
        self._workers.remove(worker)

    def close(self) -> None:
        for worker in list(self._workers):
            if worker.task is None:
                try:
                    worker.conn.send(None)
                except (BrokenPipeError, OSError):
                    pass
        deadline = time.monotonic() + 5
        for worker in list(self._workers):
            if worker.task is None:
                worker.process.join(max(0.0, deadline - time.monotonic()))
            if worker.process.exitcode is None:
                worker.process.kill()
                worker.process.join(5)
            self._forget(worker)
