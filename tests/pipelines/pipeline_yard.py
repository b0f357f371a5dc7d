"""Steps and pipelines the tests run, defined at the top level of a file so that worker
processes (and ``resume``, which rebuilds a run from its recorded target) find them.

Every step takes ``marker``, a folder of the test's own: each execution appends to
``<marker>/<step>.count`` (so a test counts executions across processes), and files a
test creates there steer the steps (``broken``: ``gate`` raises; ``fixed``: ``die`` and
``hang`` return normally).
"""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

import pandas as pd

from modelyard.pipelines import pipeline, step


def executions(marker: str | Path, name: str) -> int:
    path = Path(marker) / f"{name}.count"
    return len(path.read_text().splitlines()) if path.exists() else 0


def _executed(marker: str, name: str) -> int:
    with (Path(marker) / f"{name}.count").open("a") as fh:
        fh.write(f"{os.getpid()}\n")
    return executions(marker, name)


@step
def make_table(rows: int, marker: str) -> pd.DataFrame:
    _executed(marker, "make_table")
    return pd.DataFrame({"a": range(rows), "b": [float(i) / 2 for i in range(rows)]})


@step
def column_sum(table: pd.DataFrame, column: str, marker: str) -> float:
    _executed(marker, "column_sum")
    return float(table[column].sum())


@step(outputs=("low", "high"))
def split(table: pd.DataFrame, marker: str) -> tuple[pd.DataFrame, pd.DataFrame]:
    _executed(marker, "split")
    half = len(table) // 2
    return table.iloc[:half].reset_index(drop=True), table.iloc[half:].reset_index(drop=True)


@step
def gate(total: float, marker: str) -> dict[str, object]:
    _executed(marker, "gate")
    if (Path(marker) / "broken").exists():
        raise RuntimeError("the gate refused: broken marker present")
    return {"total": total, "passed": True}


@pipeline
def branches(marker: str, rows: int = 10):
    """Two branches below one table: a sum then a gate; a split then a sum of its half."""
    table = make_table(rows, marker)
    verdict = gate(column_sum(table, "a", marker), marker)
    _, high = split(table, marker)
    return verdict, column_sum(high, "b", marker)


@step(retries=2, backoff=0.01)
def flaky(marker: str, failures: int) -> int:
    count = _executed(marker, "flaky")
    if count <= failures:
        raise ConnectionError(f"attempt {count} lost its connection")
    return count


@pipeline
def retrying(marker: str, failures: int = 2):
    return flaky(marker, failures)


@step(timeout=1.0, retries=1, backoff=0.01)
def hang(marker: str) -> str:
    _executed(marker, "hang")
    if not (Path(marker) / "fixed").exists():
        time.sleep(600)
    return "done"


@pipeline
def hanging(marker: str):
    return hang(marker)


@step
def die(table: pd.DataFrame, marker: str) -> int:
    _executed(marker, "die")
    if not (Path(marker) / "fixed").exists():
        os.kill(os.getpid(), signal.SIGKILL)
    return len(table)


@pipeline
def dying(marker: str):
    table = make_table(4, marker)
    return column_sum(table, "a", marker), die(table, marker)


class Opaque:
    """A value no safe format holds."""

    def __init__(self, value: int) -> None:
        self.value = value


@step
def opaque(marker: str) -> Opaque:
    _executed(marker, "opaque")
    return Opaque(7)


@step(trusted_outputs=True)
def trusted_opaque(marker: str) -> Opaque:
    _executed(marker, "trusted_opaque")
    return Opaque(7)


@step
def unwrap(value: Opaque) -> int:
    return value.value


@pipeline
def unsafe(marker: str):
    return unwrap(opaque(marker))


@pipeline
def trusted(marker: str):
    return unwrap(trusted_opaque(marker))


@step
def slow_square(x: int, seconds: float, marker: str) -> int:
    _executed(marker, "slow_square")
    time.sleep(seconds)
    return x * x


@step
def add(a: int, b: int) -> int:
    return a + b


@pipeline
def parallel(marker: str, seconds: float = 0.5):
    """Two independent slow steps, joined."""
    return add(slow_square(2, seconds, marker), slow_square(3, seconds, marker))


@step
def interrupt(marker: str) -> int:
    _executed(marker, "interrupt")
    if not (Path(marker) / "fixed").exists():
        raise KeyboardInterrupt
    return 1


@pipeline
def interrupted(marker: str):
    return interrupt(marker)


@pipeline
def interrupted_pair(marker: str):
    """An interrupt while an independent step waits its turn."""
    return interrupt(marker), make_table(3, marker)


@step(cache=False)
def own_store(marker: str) -> str:
    """Tags its own run through a client opened with ``step_settings()`` (NotFound in any
    other store); returns the store it reached."""
    from modelyard.pipelines import current_step, step_settings
    from modelyard.tracking.client import TrackingClient

    _executed(marker, "own_store")
    settings = step_settings()
    context = current_step()
    assert context is not None
    with TrackingClient.from_settings(settings) as client:
        client.set_tag(context.step_run_id, "reached", "yes")
    return settings.resolved_store_uri()


@pipeline
def stores(marker: str):
    return own_store(marker)
