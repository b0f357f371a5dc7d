"""What the demo did, stage by stage: printed as it happens, kept for the summary.

A stage ends as ``done``, ``reused`` (a second run in the same home found it done),
``skipped`` (an earlier stage's verdict stopped it: a failed gate, no alert), ``not there
yet`` (a piece of modelyard the stage needs has not landed: said, not faked)
or ``failed`` (the demo stops, naming the stage).
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from rich.console import Console

DONE, REUSED, SKIPPED, MISSING, FAILED = "done", "reused", "skipped", "not there yet", "failed"
MARKS = {
    DONE: "[green]✓[/]",
    REUSED: "[cyan]↺[/]",
    SKIPPED: "[yellow]–[/]",
    MISSING: "[yellow]…[/]",
    FAILED: "[red]✗[/]",
}


@dataclass
class Stage:
    """One stage's outcome: its lines of what happened and its key numbers."""

    key: str
    title: str
    status: str = DONE
    lines: list[str] = field(default_factory=list)
    numbers: dict[str, Any] = field(default_factory=dict)
    seconds: float = 0.0
    cpu_seconds: float = 0.0

    def say(self, line: str) -> None:
        self.lines.append(line)

    def reused(self, line: str) -> None:
        """Mark the stage as found done by an earlier run (unless something was new)."""
        if self.status == DONE:
            self.status = REUSED
        self.lines.append(f"reused: {line}")

    def missing(self, line: str) -> None:
        self.status = MISSING
        self.lines.append(line)

    def skipped(self, line: str) -> None:
        self.status = SKIPPED
        self.lines.append(line)


class Story:
    """The stages in order, printed to ``console`` as each ends."""

    def __init__(self, console: Console) -> None:
        self.console = console
        self.stages: list[Stage] = []
        self.started = time.perf_counter()
        self.started_cpu = time.process_time()

    @contextmanager
    def stage(self, key: str, title: str) -> Iterator[Stage]:
        from rich.markup import escape

        stage = Stage(key, title)
        self.stages.append(stage)
        number = len(self.stages)
        began, began_cpu = time.perf_counter(), time.process_time()
        try:
            with self.console.status(f"[{number}] {title}…"):
                yield stage
        except BaseException:
            stage.status = FAILED
            raise
        finally:
            stage.seconds = time.perf_counter() - began
            stage.cpu_seconds = time.process_time() - began_cpu
            self.console.print(
                f"{MARKS[stage.status]} [bold][{number}] {escape(title)}[/] "
                f"[dim]({stage.status}, {stage.seconds:.1f}s)[/]"
            )
            for line in stage.lines:
                self.console.print(f"    {escape(line)}", soft_wrap=True)

    def get(self, key: str) -> Stage | None:
        return next((s for s in self.stages if s.key == key), None)

    @property
    def seconds(self) -> float:
        return time.perf_counter() - self.started

    @property
    def cpu_seconds(self) -> float:
        return time.process_time() - self.started_cpu
