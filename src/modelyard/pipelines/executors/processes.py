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
from modelyard.pipelines.tasks import StepResult, StepTask, execute_step


def _worker_main(conn: Connection) -> None:
    """A worker's loop: run each task sent, answer its result; None stops it."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the coordinator's to handle
    try:
        while True:
            task = conn.recv()
            if task is None:
                return
            conn.send(execute_step(task))
    except (EOFError, OSError):  # the coordinator went away
        return
    finally:
        conn.close()


@dataclass
class _Worker:
    process: Any
    conn: Connection
    task: StepTask | None = None
    started: float = 0.0


class ProcessExecutor(Executor):
    name = "process"

    def __init__(self, workers: int = 2) -> None:
        self.capacity = max(1, workers)
        self._context = multiprocessing.get_context("spawn")
        self._workers: list[_Worker] = []

    def submit(self, task: StepTask) -> None:
        worker = next((w for w in self._workers if w.task is None), None)
        if worker is None:
            worker = self._start()
        worker.task = task
        worker.started = time.perf_counter()
        worker.conn.send(task)

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
        busy = [w for w in self._workers if w.task is not None]
        if not busy:
            if timeout:
                time.sleep(timeout)
            return []
        now = time.perf_counter()
        limits = [
            w.started + w.task.timeout_s - now
            for w in busy
            if w.task is not None and w.task.timeout_s is not None
        ]
        spans = ([timeout] if timeout is not None else []) + [max(0.0, t) for t in limits]
        span = min(spans) if spans else None
        handles: list[Any] = [w.conn for w in busy] + [w.process.sentinel for w in busy]
        ready = set(wait(handles, span))
        results: list[StepResult] = []
        for worker in busy:
            task = worker.task
            assert task is not None
            if worker.conn in ready or worker.conn.poll():
                try:
                    results.append(worker.conn.recv())
                    worker.task = None
                    continue
                except (EOFError, OSError):
                    pass  # died while answering: reported below
            if worker.process.sentinel in ready or not worker.process.is_alive():
                results.append(self._died(worker, task))
            elif task.timeout_s is not None:
                elapsed = time.perf_counter() - worker.started
                if elapsed >= task.timeout_s:
                    self._stop(worker)
                    results.append(timed_out(task, elapsed, " (its worker process was killed)"))
        return results

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
            seconds=time.perf_counter() - worker.started,
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
