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

import json
import threading
import zlib
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from optuna.storages.journal import BaseJournalBackend
from sqlalchemy import Column, Integer, MetaData, String, Table, Text, func, select, text
from sqlalchemy.engine import make_url

from modelyard.config import Settings
from modelyard.errors import InvalidParameter
from modelyard.store.engine import Database, open_database

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


class SqlJournal(BaseJournalBackend):
    """An Optuna journal backend: the records of one sweep in the journal table."""

    def __init__(self, settings: Settings, sweep: str) -> None:
        self.db, schema = journal_database(settings)
        self.table = _table(schema)
        self.sweep = sweep
        self._postgres = not self.db.is_sqlite
        # A transaction advisory lock's key: one per sweep, stable across processes.
        self._lock_key = zlib.crc32(f"modelyard.sweep:{sweep}".encode())

    def __reduce__(self) -> tuple[Any, ...]:
        raise TypeError("a sweep journal is opened in each process, not pickled")

    def read_logs(self, log_number_from: int) -> Iterable[dict[str, Any]]:
        c = self.table.c
        query = select(c.record).where(c.sweep == self.sweep, c.n >= log_number_from).order_by(c.n)
        with self.db.read() as conn:
            rows = conn.execute(query).all()
        return [json.loads(r.record) for r in rows]

    def append_logs(self, logs: list[dict[str, Any]]) -> None:
        if not logs:
            return
        c = self.table.c
        with self.db.write() as conn:
            if self._postgres:
                conn.execute(select(func.pg_advisory_xact_lock(self._lock_key)))
            last = conn.execute(select(func.max(c.n)).where(c.sweep == self.sweep)).scalar()
            first = 0 if last is None else int(last) + 1
            conn.execute(
                self.table.insert(),
                [
                    {"sweep": self.sweep, "n": first + i, "record": json.dumps(log)}
                    for i, log in enumerate(logs)
                ],
            )

    def count(self) -> int:
        """How many records the sweep's journal holds (0: no such sweep yet)."""
        c = self.table.c
        with self.db.read() as conn:
            found = conn.execute(
                select(func.count()).select_from(self.table).where(c.sweep == self.sweep)
            ).scalar()
        return int(found or 0)
