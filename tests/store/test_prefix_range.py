"""The index range beside a ``LIKE 'prefix%'`` (``store/prefix_range.py``): never a
different answer than the pattern alone, for any prefix — wildcard-like and escaped
characters, the last code point, the code points around the surrogates — and the range
is what SQLite's plan searches the index by."""

from __future__ import annotations

import pytest
from sqlalchemy import Column, Integer, MetaData, String, Table, and_, create_engine, insert, select

from modelyard.store.prefix_range import literal_prefix, prefix_range, successor
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


def test_the_literal_prefix_stops_at_the_first_wildcard() -> None:
    assert literal_prefix("model-0004%") == "model-0004"
    assert literal_prefix("a\\%b%c") == "a%b"
    assert literal_prefix("a\\_b_") == "a_b"
    assert literal_prefix("a\\") == "a\\"
    assert literal_prefix("%a") == literal_prefix("_a") == ""


def test_the_successor_is_past_every_string_with_the_prefix() -> None:
    assert successor("prefix") == "prefiy"
    assert successor("a" + LAST) == "b"
    assert successor("a" + LAST + LAST) == "b"
    assert successor("\ud7ff") == "\ue000"  # over the surrogates
    assert successor(LAST) is None
    assert successor("") is None
    for name in NAMES:
        for cut in range(1, len(name) + 1):
            upper = successor(name[:cut])
            assert upper is None or name < upper, (name, cut)


def test_no_range_for_a_pattern_that_starts_with_a_wildcard() -> None:
    names = Table("t", MetaData(), Column("name", String(50)))
    assert prefix_range(names.c.name, "%a") is None
    assert prefix_range(names.c.name, "_") is None


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
def test_the_range_beside_a_pattern_changes_no_answer(sqlite_names, pattern: str) -> None:
    engine, table = sqlite_names
    like = compare(table.c.name, "LIKE", pattern)
    bounds = prefix_range(table.c.name, pattern)
    ranged = like if bounds is None else and_(like, bounds)
    with engine.connect() as conn:
        alone = sorted(conn.execute(select(table.c.name).where(like)).scalars())
        with_range = sorted(conn.execute(select(table.c.name).where(ranged)).scalars())
    assert with_range == alone
    assert alone == sorted(n for n in NAMES if _matches(n, pattern))


def test_sqlite_searches_the_index_by_the_range(sqlite_names) -> None:
    engine, table = sqlite_names
    pattern = "model-0004%"
    like = compare(table.c.name, "LIKE", pattern)
    with engine.connect() as conn:
        alone = _plan(conn, select(table.c.id).where(like))
        ranged = _plan(conn, select(table.c.id).where(like, prefix_range(table.c.name, pattern)))
    assert alone[0].startswith("SCAN names"), alone  # GLOB with a bound pattern
    assert "INDEX ix_names_name (name>? AND name<?)" in ranged[0], ranged


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
