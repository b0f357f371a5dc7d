"""The SQL a block of registry calls runs, for the tests that read its plans."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from sqlalchemy import Engine, event


@contextmanager
def statements_run(engine: Engine, *marks: str) -> Iterator[list[tuple[str, Any]]]:
    """Every statement ``engine`` runs in the block whose text holds all of ``marks``,
    with its parameters, in order."""
    executed: list[tuple[str, Any]] = []

    def capture(_conn: Any, _cursor: Any, statement: str, parameters: Any, *_: Any) -> None:
        if all(mark in statement for mark in marks):
            executed.append((statement, parameters))

    event.listen(engine, "before_cursor_execute", capture)
    try:
        yield executed
    finally:
        event.remove(engine, "before_cursor_execute", capture)
