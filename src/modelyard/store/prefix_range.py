"""The index range of a ``LIKE 'prefix%'``, for SQLite, which cannot find it itself.

A case-sensitive ``LIKE`` compiles to ``GLOB`` on SQLite (its own ``LIKE`` ignores case;
``tracking/search_query.py``), and SQLite takes no index for a ``GLOB`` whose pattern is a
bound parameter: ``name LIKE 'model-0004%'`` read all 100,000 registered models (11 ms).
Every string that starts with ``prefix`` lies in ``[prefix, successor(prefix))`` in
SQLite's ``BINARY`` order, which is code point order (UTF-8 bytes compare as their code
points), so the search adds that range beside the pattern — a necessary condition, never a
different answer — and the index on the column answers it::

    >>> literal_prefix("model-0004%"), successor("model-0004")
    ('model-0004', 'model-0005')
    >>> literal_prefix("a\\\\_b%")  # an escaped wildcard is a literal character
    'a_b'

PostgreSQL is not given the range: under a linguistic collation (``en_US``) strings that
start with a prefix need not sort together, so there the term renders as ``true``.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import ColumnElement, and_
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.sql.functions import FunctionElement
from sqlalchemy.types import Boolean

_WILDCARDS = "%_"
_LAST = 0x10FFFF
_SURROGATES = range(0xD800, 0xE000)


def literal_prefix(pattern: str) -> str:
    """The literal characters a ``LIKE`` pattern starts with, up to its first wildcard
    (``%`` or ``_``; a backslash escapes the next character, a trailing one stands for
    itself, as the search grammar reads patterns)."""
    prefix: list[str] = []
    chars = iter(pattern)
    for char in chars:
        if char == "\\":
            prefix.append(next(chars, "\\"))
        elif char in _WILDCARDS:
            break
        else:
            prefix.append(char)
    return "".join(prefix)


def successor(prefix: str) -> str | None:
    """The least string greater than every string that starts with ``prefix``, in code
    point order, or None when there is none (``prefix`` is empty or all U+10FFFF).

    The last code point below U+10FFFF is incremented (skipping the surrogates, which no
    stored string holds); a trailing U+10FFFF has no successor, so it is dropped first.
    """
    text = prefix.rstrip(chr(_LAST))
    if not text:
        return None
    point = ord(text[-1]) + 1
    if point in _SURROGATES:
        point = _SURROGATES.stop
    return text[:-1] + chr(point)


def prefix_range(column: Any, pattern: str) -> ColumnElement[bool] | None:
    """``column >= prefix AND column < successor(prefix)`` on SQLite (``true`` elsewhere)
    for a ``LIKE`` ``pattern`` that starts with a literal prefix; None when it starts with
    a wildcard."""
    prefix = literal_prefix(pattern)
    if not prefix:
        return None
    upper = successor(prefix)
    bounds = column >= prefix if upper is None else and_(column >= prefix, column < upper)
    return OnSqlite(bounds)


class OnSqlite(FunctionElement[bool]):
    """A condition SQLite is given and other databases are not (they read ``true``)."""

    type = Boolean()
    inherit_cache = True
    name = "on_sqlite"
    #: A condition as written: no ``= 1`` appended on SQLite (which would hide the column
    #: from the index), as ``search_query.ValueIn``.
    _is_implicitly_boolean = True

    def __init__(self, condition: ColumnElement[bool]) -> None:
        super().__init__(condition)


@compiles(OnSqlite)
def _on_other_databases(element: OnSqlite, compiler: SQLCompiler, **kw: Any) -> str:
    return "true"


@compiles(OnSqlite, "sqlite")
def _on_sqlite(element: OnSqlite, compiler: SQLCompiler, **kw: Any) -> str:
    (condition,) = element.clauses
    return f"({compiler.process(condition, **kw)})"


__all__ = ["OnSqlite", "literal_prefix", "prefix_range", "successor"]
