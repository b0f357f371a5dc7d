"""A pipeline whose step blocks until the test releases it, defined at the top level of a
file with no package imports, so that a scheduler process loads it by path."""

from __future__ import annotations

import time
from pathlib import Path

from modelyard.pipelines import pipeline, step


@step
def wait_for_release(marker: str) -> int:
    """Counts its executions, then blocks until ``<marker>/released`` exists (a test kills
    the scheduler running it meanwhile)."""
    path = Path(marker)
    runs = path / "wait.count"
    with runs.open("a") as fh:
        fh.write("x\n")
    while not (path / "released").exists():
        time.sleep(0.02)
    return len(runs.read_text().splitlines())


@pipeline
def waiting(marker: str):
    return wait_for_release(marker)
