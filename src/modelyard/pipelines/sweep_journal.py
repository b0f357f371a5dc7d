"""Where a sweep's Optuna study lives: an append-only journal in our metadata database.

Why a journal and not Optuna's ``RDBStorage``: measured here, ``RDBStorage`` spends
60-150 ms per trial in SQLAlchemy ORM reads (on SQLite), against a target of 10 ms;
Optuna's ``JournalStorage`` keeps the study in memory and only appends one small JSON
record per change (a trial created, a param, a reported value, a state) and reads the
records others appended since its last look. The journal gives what a sweep needs from
storage: it survives an interruption (a restarted sweep replays it and continues), and
several processes — local workers or Ray tasks — share one study through it.

Where the journal is kept — no second server to run:

* SQLite metadata store ``…/modelyard.db``: a sibling file ``…/modelyard.sweeps.db``
  (WAL, the same pragmas as the store), so sweeps never hold the metadata file's write
  lock;
* PostgreSQL: the same database, in its own schema ``modelyard_sweeps`` (created on first
  use, so the migrations of the metadata tables never see it).

Each sweep has its own sequence of records (``sweep``, ``n``): a worker replays only its
sweep's records. Appends are serialised (SQLite's ``BEGIN IMMEDIATE``; a transaction
advisory lock per sweep on PostgreSQL), so record numbers are committed in order and a
reader never skips a record committed late.
"""

from __future__ import annotations

import functools
import json
import threading
import zlib
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from optuna.storages.journal import BaseJournalBackend
from sqlalchemy import (
    Column,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    bindparam,
    func,
    select,
    text,
)
from sqlalchemy.engine import make_url

from modelyard.config import Settings
from modelyard.errors import InvalidParameter, InvalidState
from modelyard.store.engine import Database, open_database
from modelyard.store.statements import Compiled

POSTGRES_SCHEMA = "modelyard_sweeps"
_metadata = MetaData()
_journal = Table(
    "sweep_journal",
    _metadata,
    Column("sweep", String(250), primary_key=True),
    Column("n", Integer, primary_key=True, autoincrement=False),
    Column("record", Text, nullable=False),
)
_created: set[tuple[str, int]] = set()
_lock = threading.Lock()
_databases: dict[str, Database] = {}


def journal_database(settings: Settings) -> tuple[Database, str | None]:
    """The database holding sweep journals for ``settings`` and the schema in it (None on
    SQLite). On PostgreSQL it is the metadata store's own ``Database`` (one pool); the
    SQLite sibling file has one ``Database`` per path per process."""
    from modelyard.tracking.backends import database_for

    uri = settings.resolved_store_uri()
    url = make_url(uri)
    if url.get_backend_name() != "sqlite":
        db = database_for(settings)
        _ensure_table(db, uri, POSTGRES_SCHEMA)
        return db, POSTGRES_SCHEMA
    database = url.database or ""
    if database in ("", ":memory:"):
        raise_in_memory(uri)
    path = Path(database)
    sibling = f"sqlite:///{path.with_name(path.stem + '.sweeps.db')}"
    with _lock:
        found = _databases.get(sibling)
        if found is None:
            found = _databases[sibling] = open_database(sibling)
    _ensure_table(found, sibling, None)
    return found, None


def _ensure_table(db: Database, key: str, schema: str | None) -> None:
    with _lock:
        if (key, id(db)) not in _created:
            _create_table(db, schema)
            _created.add((key, id(db)))


def raise_in_memory(uri: str) -> None:
    raise InvalidParameter(
        f"sweeps keep their study beside the metadata database, and {uri!r} is in memory; "
        "use a database file (sqlite:///path.db) or PostgreSQL",
        field="store_uri",
    )


def _create_table(db: Database, schema: str | None) -> None:
    table = _table(schema)
    with db.write() as conn:
        if schema is not None:
            conn.execute(text(f'CREATE SCHEMA IF NOT EXISTS "{schema}"'))
        table.create(conn, checkfirst=True)


def _table(schema: str | None) -> Table:
    if schema is None:
        return _journal
    return _journal.to_metadata(MetaData(), schema=schema)


@dataclass(frozen=True)
class _Statements:
    """The journal's statements, compiled once per schema and dialect for raw cursors
    (SQLAlchemy's per-execution work costs as much as these small statements)."""

    read: Compiled
    last: Compiled
    insert: Compiled
    count: Compiled
    lock: Compiled | None


@functools.lru_cache(maxsize=16)
def _statements(schema: str | None, dialect: Any) -> _Statements:
    table = _table(schema)
    c = table.c
    mine = c.sweep == bindparam("sweep")
    return _Statements(
        read=Compiled(
            select(c.record).where(mine, c.n >= bindparam("start")).order_by(c.n), dialect
        ),
        last=Compiled(select(func.max(c.n).label("last")).where(mine), dialect),
        insert=Compiled(
            table.insert().values(
                sweep=bindparam("sweep"), n=bindparam("n"), record=bindparam("record")
            ),
            dialect,
        ),
        count=Compiled(select(func.count().label("records")).where(mine), dialect),
        lock=(
            Compiled(select(func.pg_advisory_xact_lock(bindparam("key")).label("ok")), dialect)
            if schema is not None
            else None
        ),
    )


class SqlJournal(BaseJournalBackend):
    """An Optuna journal backend: the records of one sweep in the journal table.

    ``sole_writer``: this process alone writes the sweep while the journal is open (a
    sweep run in one process). Reads are then answered from the records it loaded and
    appended, with no query, and appends wait in memory until ``flush`` writes them in
    one transaction (a sweep flushes once a trial has started and once it has ended, so
    a trial's params and the values it reports per step cost no transaction each). A
    flush that finds records it did not write (another process running the same sweep)
    is refused instead of corrupting the study.
    """

    def __init__(self, settings: Settings, sweep: str, *, sole_writer: bool = False) -> None:
        self.db, schema = journal_database(settings)
        self.sweep = sweep
        self._sql = _statements(schema, self.db.engine.dialect)
        # A transaction advisory lock's key: one per sweep, stable across processes.
        self._lock_key = zlib.crc32(f"modelyard.sweep:{sweep}".encode()) - 2**31
        self._known: list[dict[str, Any]] | None = [] if sole_writer else None
        self._pending: list[dict[str, Any]] = []
        self._loaded = False

    def __reduce__(self) -> tuple[Any, ...]:
        raise TypeError("a sweep journal is opened in each process, not pickled")

    def _query(self, start: int) -> list[dict[str, Any]]:
        with self.db.raw_read() as cur:
            rows = self._sql.read.all(cur, {"sweep": self.sweep, "start": start})
        return [json.loads(row.record) for row in rows]

    def read_logs(self, log_number_from: int) -> Iterable[dict[str, Any]]:
        if self._known is None:
            return self._query(log_number_from)
        if not self._loaded:
            self._known = self._query(0)
            self._loaded = True
        return self._known[log_number_from:]

    def append_logs(self, logs: list[dict[str, Any]]) -> None:
        if not logs:
            return
        if self._known is None:
            self._write(logs, expected=None)
            return
        if not self._loaded:
            self.read_logs(0)
        self._known.extend(logs)
        self._pending.extend(logs)

    def flush(self) -> None:
        """Write the records a sole writer holds, in one transaction."""
        if not self._pending or self._known is None:
            return
        self._write(self._pending, expected=len(self._known) - len(self._pending))
        self._pending = []

    def _write(self, logs: list[dict[str, Any]], *, expected: int | None) -> None:
        with self.db.raw_write() as cur:
            if self._sql.lock is not None:
                self._sql.lock.execute(cur, {"key": self._lock_key})
            found = self._sql.last.first(cur, {"sweep": self.sweep})
            first = 0 if found is None or found.last is None else int(found.last) + 1
            if expected is not None and first != expected:
                raise InvalidState(
                    f"sweep {self.sweep!r} is being written by another process too; run one "
                    "sweep per name at a time (parallel= gives it several workers)",
                    field="name",
                )
            self._sql.insert.executemany(
                cur,
                [
                    {"sweep": self.sweep, "n": first + i, "record": json.dumps(log)}
                    for i, log in enumerate(logs)
                ],
            )

    def count(self) -> int:
        """How many records the sweep's journal holds (0: no such sweep yet)."""
        with self.db.raw_read() as cur:
            found = self._sql.count.first(cur, {"sweep": self.sweep})
        return int(found.records or 0) if found is not None else 0
