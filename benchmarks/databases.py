"""What the database benchmarks share: a fresh PostgreSQL database for one run, and the
wall/CPU timing of repeated calls with their median and 95th percentile.

Imported by the benchmark scripts (``python benchmarks/lineage.py`` puts this folder first
on ``sys.path``), so every script creates, names and drops its databases the same way.
"""

from __future__ import annotations

import statistics
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any


@contextmanager
def postgres_database(uri: str | None = "auto") -> Iterator[str | None]:
    """A fresh database on the local server (dropped afterwards), or ``uri`` as given;
    ``None`` (with a line saying why) when the server is not reachable."""
    if uri != "auto":
        yield uri
        return
    import psycopg

    name = f"modelyard_bench_{uuid.uuid4().hex[:10]}"
    admin = "host=127.0.0.1 port=5432 dbname=postgres"
    try:
        conn = psycopg.connect(admin, autocommit=True)
    except psycopg.OperationalError:
        try:
            admin = "host=127.0.0.1 port=5432 dbname=test user=postgres"
            conn = psycopg.connect(admin, autocommit=True)
        except psycopg.OperationalError as exc:
            print(f"PostgreSQL: not reachable ({exc}); skipped")
            yield None
            return
    user = conn.info.user
    with conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    try:
        yield f"postgresql+psycopg://{user}@127.0.0.1:5432/{name}"
    finally:
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def timed(fn: Callable[[], Any], repeat: int) -> tuple[list[float], list[float], list[Any]]:
    """Wall and CPU milliseconds of each call (CPU: this process only — on a loaded
    machine it says what the work costs, the wall time what a user waits)."""
    walls, cpus, answers = [], [], []
    for _ in range(repeat):
        w0, c0 = time.perf_counter(), time.process_time()
        answers.append(fn())
        cpus.append((time.process_time() - c0) * 1000)
        walls.append((time.perf_counter() - w0) * 1000)
    return walls, cpus, answers


def p95(values: list[float]) -> float:
    return statistics.quantiles(values, n=20)[18] if len(values) >= 20 else max(values)
