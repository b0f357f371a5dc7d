"""What the database benchmarks share: a fresh PostgreSQL database for one run, and the
wall/CPU timing of repeated calls with their median and 95th percentile.

Imported by the benchmark scripts (``python benchmarks/lineage.py`` puts this folder first
on ``sys.path``), so every script creates, names and drops its databases the same way.
"""

from __future__ import annotations

import statistics
import time
import uuid
from collections.abc import Callable, Iterable, Iterator
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


def bulk_insert(engine: Any, tables: dict[str, Iterable[tuple[Any, ...]]]) -> None:
    """Rows into tables the fastest way each database takes them, in one transaction:
    ``executemany`` on SQLite, ``COPY`` on PostgreSQL. ``tables`` maps ``"name (col, …)"``
    to its rows (``None`` for NULL)."""
    raw = engine.raw_connection()
    try:
        cur = raw.cursor()
        if engine.dialect.name == "sqlite":
            cur.execute("BEGIN")  # the engines' connections are in autocommit mode
            for target, rows in tables.items():
                marks = ", ".join("?" * (target.count(",") + 1))
                cur.executemany(f"INSERT INTO {target} VALUES ({marks})", rows)
        else:
            for target, rows in tables.items():
                with cur.copy(f"COPY {target} FROM STDIN") as copy:
                    block: list[str] = []
                    for row in rows:
                        block.append("\t".join(map(_copy_text, row)))
                        if len(block) == 50_000:
                            copy.write("\n".join(block) + "\n")
                            block.clear()
                    if block:
                        copy.write("\n".join(block) + "\n")
        raw.commit()
    finally:
        raw.close()


def _copy_text(value: Any) -> str:
    return "\\N" if value is None else str(value)
