"""A case-sensitive ``LIKE`` (``search_query.CaseSensitiveLike``; ``GLOB`` on SQLite)
answers as the search grammar reads the pattern — wildcard-like and escaped characters,
the last code point, the code points around the surrogates — and SQLite searches the
column's index by the pattern's literal prefix rather than reading every row."""

from __future__ import annotations

import pytest
from sqlalchemy import Column, Integer, MetaData, String, Table, create_engine, insert, select

from modelyard.tracking.search_query import compare

LAST = chr(0x10FFFF)

NAMES = [
    "",
    "a",
    "ab",
    "abc",
    "abd",
    "ac",
    "b",
    "a%b",
    "a%bc",
    "a_b",
    "axb",
    "a\\b",
    "a\\",
    "A",
    "é",
    "éa",
    "\ud7ff",
    "\ud7ffz",
    "\ue000",
    "\U0001f600 smile",
    LAST,
    LAST + "x",
    "a" + LAST,
    "a" + LAST + "b",
    "a" + LAST + LAST,
    "b" + LAST,
    "model-0004",
    "model-00042",
    "model-0005",
    "model-0004" + LAST,
]
PATTERNS = [
    "a%",
    "ab%",
    "a\\%%",  # a literal % after a
    "a\\_%",  # a literal _ after a
    "a_%",  # a wildcard _ after a
    "a\\\\%",  # a literal backslash after a
    "a\\",  # a trailing backslash stands for itself
    "abc",
    "A%",
    "é%",
    "\ud7ff%",
    "\U0001f600%",
    LAST + "%",
    "a" + LAST + "%",
    "a" + LAST + LAST + "%",
    "model-0004%",
    "model-0004_",
    "%a",
    "_",
    "",
]


@pytest.fixture
def sqlite_names():
    engine = create_engine("sqlite://")
    table = Table(
        "names", MetaData(), Column("id", Integer, primary_key=True), Column("name", String(50))
    )
    table.metadata.create_all(engine)
    with engine.begin() as conn:
        conn.execute(insert(table), [{"name": n} for n in NAMES])
        conn.exec_driver_sql("CREATE INDEX ix_names_name ON names (name)")
    yield engine, table
    engine.dispose()


@pytest.mark.parametrize("pattern", PATTERNS)
def test_a_pattern_matches_what_the_grammar_says(sqlite_names, pattern: str) -> None:
    engine, table = sqlite_names
    like = compare(table.c.name, "LIKE", pattern)
    with engine.connect() as conn:
        found = sorted(conn.execute(select(table.c.name).where(like)).scalars())
    assert found == sorted(n for n in NAMES if _matches(n, pattern))


def test_sqlite_searches_the_index_by_the_literal_prefix(sqlite_names) -> None:
    """It does so only for a condition written as one: ``(name GLOB ?) = 1``, as
    SQLAlchemy renders a boolean function unless told otherwise, read all 100,000
    registered models for ``name LIKE 'model-0004%'``."""
    engine, table = sqlite_names
    with engine.connect() as conn:
        plan = _plan(conn, select(table.c.id).where(compare(table.c.name, "LIKE", "model-0004%")))
        unanchored = _plan(conn, select(table.c.id).where(compare(table.c.name, "LIKE", "%04")))
    assert "INDEX ix_names_name (name>? AND name<?)" in plan[0], plan
    assert unanchored[0].startswith("SCAN names"), unanchored


def _plan(conn, query) -> list[str]:
    compiled = query.compile(conn)
    params = tuple(compiled.params[name] for name in compiled.positiontup or ())
    return [row[-1] for row in conn.exec_driver_sql(f"EXPLAIN QUERY PLAN {compiled}", params)]


def _matches(name: str, pattern: str) -> bool:
    """LIKE as the search grammar reads it, case-sensitive, written out for the test."""
    items: list[tuple[bool, str]] = []
    chars = iter(pattern)
    for char in chars:
        if char == "\\":
            items.append((False, next(chars, "\\")))
        else:
            items.append((char in "%_", char))

    def match(i: int, j: int) -> bool:
        if i == len(items):
            return j == len(name)
        wild, char = items[i]
        if wild and char == "%":
            return any(match(i + 1, k) for k in range(j, len(name) + 1))
        if j == len(name):
            return False
        return (wild or name[j] == char) and match(i + 1, j + 1)

    return match(0, 0)
