"""The executor interface: where step attempts run. Every method is abstract.

An executor runs ``StepTask``s (``tasks.execute_step``) somewhere — this process, local
worker processes, a Ray cluster — at most ``capacity`` at once, and reports each attempt's
``StepResult``. It enforces each task's ``timeout_s`` itself (only it can stop what it
started) and turns a worker that died into a failed result naming the cause; it never
retries (the runner decides that, with back-off) and never writes metadata.
"""

from __future__ import annotations

from abc import ABC, abstractmethod

from modelyard.pipelines.tasks import StepResult, StepTask


class Executor(ABC):
    #: The name ``--executor`` takes.
    name: str
    #: How many attempts may run at once.
    capacity: int

    @abstractmethod
    def submit(self, task: StepTask) -> None:
        """Start ``task`` (the runner never has more than ``capacity`` in flight)."""

    @abstractmethod
    def wait(self, timeout: float | None) -> list[StepResult]:
        """Results of attempts that ended, waiting up to ``timeout`` seconds for the first
        (None: until one ends); an empty list when none ended in time."""

    @abstractmethod
    def close(self) -> None:
        """Stop what is running and release workers (idempotent)."""

    def __enter__(self) -> Executor:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()


def timed_out(task: StepTask, seconds: float, note: str = "") -> StepResult:
    """The result of an attempt stopped at its time limit."""
    return StepResult(
        task.key,
        task.attempt,
        False,
        error=f"step {task.step_name!r} timed out after {task.timeout_s:g}s{note}",
        retryable=True,
        seconds=seconds,
    )
