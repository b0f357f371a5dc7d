"""SQLAlchemy Core statements compiled once per dialect, for the hot paths' DB-API cursors.

Per-call logging, batched logging, run creation and SQLite's run search and loading run
on a plain DB-API cursor (``Database.raw_write`` / ``raw_read``): SQLAlchemy's work per
execution (cache-key lookup, result wrapping) costs as much as the insert itself there.
Their SQL is still SQLAlchemy's: a statement is built from the table definitions,
compiled here once for the database's dialect (``?`` for SQLite, ``%(name)s`` for
psycopg), and run with parameters given by name. Rows come back as plain tuples, read by
column name through the statement's own column list — never by a position written down.

Values go to the driver as they are, so pass what both drivers take (``str``, ``int``,
``float``, ``bool``, ``bytes``, ``None``; an enum's ``.value``). Values bound inside the
statement itself (``lifecycle_stage == "active"``) are converted for the dialect once.

>>> from sqlalchemy import Column, MetaData, String, Table, bindparam, select
>>> from sqlalchemy.dialects import sqlite
>>> notes = Table("notes", MetaData(), Column("id", String), Column("body", String))
>>> find = Compiled(select(notes).where(notes.c.id == bindparam("id")), sqlite.dialect())
>>> " ".join(find.sql.split())
'SELECT notes.id, notes.body FROM notes WHERE notes.id = ?'
>>> find.args({"id": "n1"}), find.columns
(('n1',), ('id', 'body'))
"""

from __future__ import annotations

import threading
from collections import namedtuple
from collections.abc import Callable, Iterable, Mapping, Sequence
from functools import lru_cache
from operator import itemgetter
from typing import Any, cast

from sqlalchemy import Table
from sqlalchemy.engine import Dialect
from sqlalchemy.sql import ClauseElement
from sqlalchemy.sql.compiler import SQLCompiler

_NO_VALUES: Mapping[str, Any] = {}
_VALUE, _LIST, _CONSTANT = range(3)


class Compiled:
    """One statement compiled for one dialect: its SQL, the parameters it takes by name,
    and the names of its result columns.

    ``expanding`` maps the name of an expanding parameter (``column.in_(bindparam(name,
    expanding=True))``) to the number of values it is compiled for; the caller passes
    the values as one sequence under that name (see ``ExpandingStatement``).
    """

    __slots__ = ("_defaults", "_expanded", "_getters", "_row", "args", "columns", "index", "sql")

    def __init__(
        self, statement: ClauseElement, dialect: Dialect, expanding: Mapping[str, int] = _NO_VALUES
    ) -> None:
        compiled = cast(SQLCompiler, statement.compile(dialect=dialect))
        #: Result column names, in order (empty for a statement without rows); SQLAlchemy
        #: tells a name selected twice apart (``id``, ``id_1``).
        self.columns: tuple[str, ...] = tuple(
            getattr(statement, "exported_columns", {}).keys()  # type: ignore[arg-type]
        )
        #: Result column name -> its index in a row.
        self.index = {name: i for i, name in enumerate(self.columns)}
        self._row: Any = _row_type(self.columns) if self.columns else None
        self._getters: dict[tuple[str, ...], Callable[[Sequence[Any]], Any]] = {}

        # The caller gives the unbound parameters and the expanding ones; the values bound
        # in the statement itself are converted for the driver here, once. Expanding the
        # lists (to the lengths asked, with stand-ins) renders the SQL the driver runs.
        given = {name for name, bind in compiled.binds.items() if bind.required}
        stand_ins: dict[str, Any] = dict.fromkeys(given)
        stand_ins.update({name: [None] * n for name, n in expanding.items()})
        state = compiled.construct_expanded_state(stand_ins)
        self.sql = state.statement
        self._expanded = {
            name: tuple(f"{name}_{i}" for i in range(1, n + 1)) for name, n in expanding.items()
        }
        for expanded_names in self._expanded.values():
            given.update(expanded_names)
        self._defaults: dict[str, Any] = {}
        for name, value in state.parameters.items():
            if name not in given:
                process = state.processors.get(name)
                self._defaults[name] = value if process is None else process(value)
        names: Sequence[str] = (
            state.positiontup or () if dialect.positional else tuple(state.parameters)
        )
        unknown = [n for n in names if n not in given and n not in self._defaults]
        if unknown:  # SQLAlchemy named an expanded parameter differently: say so at once
            raise ValueError(f"cannot tell where parameters {unknown} of {self.sql!r} come from")
        #: The driver's parameters for the caller's values (a mapping of names): a tuple,
        #: or the mapping itself for psycopg.
        self.args = self._arguments(names, dialect.positional, bool(given))

    def _arguments(
        self, names: Sequence[str], positional: bool, takes_values: bool
    ) -> Callable[[Mapping[str, Any]], Any]:
        """The function from the caller's values to the driver's parameters, as direct as
        the statement allows (the per-call logging path runs three of them)."""
        pick: Callable[[Mapping[str, Any]], Any]
        if not positional:
            pick = _same  # psycopg takes the mapping itself
        elif len(names) == 1:
            only = names[0]

            def pick(values: Mapping[str, Any]) -> tuple[Any, ...]:
                return (values[only],)

        elif names:
            pick = itemgetter(*names)
        else:
            pick = _nothing
        if not takes_values:
            fixed = pick(self._defaults)

            def constant(values: Mapping[str, Any] = _NO_VALUES) -> Any:
                return fixed

            return constant
        if not self._expanded and not self._defaults:
            return pick
        defaults, expanded = self._defaults, self._expanded
        if positional and expanded:
            return self._positional_expanded(names)

        def merged(values: Mapping[str, Any]) -> Any:
            if expanded:
                values = dict(values)
                for name, names in expanded.items():
                    given = values.pop(name)
                    if len(given) != len(names):
                        raise ValueError(f"{name!r} needs {len(names)} values, got {len(given)}")
                    values.update(zip(names, given, strict=True))
            return pick({**defaults, **values})

        return merged

    def _positional_expanded(self, names: Sequence[str]) -> Callable[[Mapping[str, Any]], Any]:
        """Positional parameters around ``IN`` lists: the lists are copied in whole (their
        expanded names stand side by side), without a mapping per expanded value."""
        parent = {name: list_name for list_name, ns in self._expanded.items() for name in ns}
        steps: list[tuple[int, Any]] = []  # (_VALUE, name) | (_LIST, name) | (_CONSTANT, value)
        for name in names:
            if name in parent:
                if not steps or steps[-1] != (_LIST, parent[name]):
                    steps.append((_LIST, parent[name]))
            elif name in self._defaults:
                steps.append((_CONSTANT, self._defaults[name]))
            else:
                steps.append((_VALUE, name))
        count = len(names)

        def arguments(values: Mapping[str, Any]) -> list[Any]:
            out: list[Any] = []
            for kind, key in steps:
                if kind == _VALUE:
                    out.append(values[key])
                elif kind == _LIST:
                    out.extend(values[key])
                else:
                    out.append(key)
            if len(out) != count:
                raise ValueError(f"the statement takes {count} values, got {len(out)}")
            return out

        return arguments

    def execute(self, cursor: Any, values: Mapping[str, Any] = _NO_VALUES) -> Any:
        """Run the statement on a DB-API cursor; returns the cursor."""
        cursor.execute(self.sql, self.args(values))
        return cursor

    def executemany(self, cursor: Any, rows: Iterable[Mapping[str, Any]]) -> None:
        """Run the statement once per mapping of ``rows``, in one driver call."""
        cursor.executemany(self.sql, map(self.args, rows))

    def getter(self, *names: str) -> Callable[[Sequence[Any]], Any]:
        """A function reading the named columns out of a raw row (one value for one name,
        else a tuple), at C speed: for loops over many rows."""
        found = self._getters.get(names)
        if found is None:
            found = self._getters[names] = itemgetter(*(self.index[name] for name in names))
        return found

    def first(self, cursor: Any, values: Mapping[str, Any] = _NO_VALUES) -> Any:
        """The first row as a named tuple (``row.name``), or ``None``."""
        found = self.execute(cursor, values).fetchone()
        return None if found is None else self._row._make(found)

    def all(self, cursor: Any, values: Mapping[str, Any] = _NO_VALUES) -> list[Any]:
        """Every row, as named tuples."""
        make = self._row._make
        return [make(row) for row in self.execute(cursor, values).fetchall()]


class ExpandingStatement:
    """A statement with one expanding parameter (an ``IN`` list whose length varies per
    call), compiled once per length it is called with."""

    def __init__(self, statement: ClauseElement, dialect: Dialect, name: str) -> None:
        self._statement, self._dialect, self._name = statement, dialect, name
        self._by_length: dict[int, Compiled] = {}
        self._lock = threading.Lock()

    def compiled(self, length: int) -> Compiled:
        found = self._by_length.get(length)
        if found is None:
            found = Compiled(self._statement, self._dialect, {self._name: length})
            with self._lock:
                self._by_length[length] = found
        return found

    def execute(self, cursor: Any, values: Mapping[str, Any]) -> Compiled:
        """Run it for ``values`` (the expanding parameter's values as one sequence);
        returns the compiled form used, whose ``getter`` reads the cursor's rows."""
        compiled = self.compiled(len(values[self._name]))
        compiled.execute(cursor, values)
        return compiled

    def all(self, cursor: Any, values: Mapping[str, Any]) -> list[Any]:
        """Every row, as named tuples."""
        return self.compiled(len(values[self._name])).all(cursor, values)


def insert_for(dialect: str, table: Table) -> Any:
    """The ``INSERT`` of dialect ``dialect`` (its name) for ``table``, which takes
    ``on_conflict_do_update`` and ``on_conflict_do_nothing`` (SQLite and PostgreSQL spell
    them alike)."""
    if dialect == "sqlite":
        from sqlalchemy.dialects.sqlite import insert as sqlite_insert

        return sqlite_insert(table)
    if dialect == "postgresql":
        from sqlalchemy.dialects.postgresql import insert as postgresql_insert

        return postgresql_insert(table)
    raise ValueError(f"no upsert for dialect {dialect!r}")  # open_database accepts only these


def _same(values: Mapping[str, Any]) -> Mapping[str, Any]:
    return values


def _nothing(values: Mapping[str, Any]) -> tuple[()]:
    return ()


@lru_cache(maxsize=64)
def _row_type(columns: tuple[str, ...]) -> Any:
    return namedtuple("Row", columns, rename=True)  # type: ignore[misc]  # a keyword: _1


__all__ = ["Compiled", "ExpandingStatement", "insert_for"]
