"""Run steps one at a time in this process: no start-up cost, the least overhead per step.

A step with a timeout runs in a daemon thread that is waited for up to its limit. Python
cannot stop a thread, so a step that overruns is reported failed and left to finish (or
hang) in the background: use the ``process`` executor to have it killed.
"""

from __future__ import annotations

import threading
import time
from collections import deque

from modelyard.pipelines.executors.base import Executor, timed_out
from modelyard.pipelines.tasks import StepResult, StepTask, execute_step


class InProcessExecutor(Executor):
    name = "local"
    capacity = 1

    def __init__(self) -> None:
        self._queue: deque[StepTask] = deque()

    def submit(self, task: StepTask) -> None:
        self._queue.append(task)

    def wait(self, timeout: float | None) -> list[StepResult]:
        if not self._queue:
            if timeout:
                time.sleep(timeout)
            return []
        task = self._queue.popleft()
        if task.timeout_s is None:
            return [execute_step(task)]
        found: list[StepResult] = []
        thread = threading.Thread(
            target=lambda: found.append(execute_step(task)),
            name=f"modelyard-step-{task.key}",
            daemon=True,
        )
        started = time.perf_counter()
        thread.start()
        thread.join(task.timeout_s)
        if found:
            return found
        note = " (it keeps running in a background thread: the local executor cannot stop it)"
        return [timed_out(task, time.perf_counter() - started, note)]

    def close(self) -> None:
        self._queue.clear()
