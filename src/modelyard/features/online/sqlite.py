"""The embedded online store: one SQLite file, one table per view version.

Reads use the stdlib driver directly (no SQLAlchemy on the hot path), with one reader
connection and cursor per thread and SQL prepared once per table: a primary-key read costs
a few microseconds. A reader keeps its read transaction open for up to ``snapshot_s`` (50 ms):
starting a transaction per statement costs as much as the read itself. Writes made by this
process are seen at once (they end the snapshot); another process's within ``snapshot_s``.
A single-int64-key view uses ``INTEGER PRIMARY KEY`` (SQLite's rowid, its fastest lookup);
other keys are ``TEXT PRIMARY KEY ... WITHOUT ROWID``. WAL mode lets readers run while a
materialisation writes, one transaction per chunk.
"""

from __future__ import annotations

import sqlite3
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from modelyard.errors import StoreUnavailable
from modelyard.features.online.base import OnlineStore, OnlineTable, Record

#: Keys per ``IN (...)`` read; SQLite allows 32,766 parameters.
_READ_BATCH = 500


class SqliteOnlineStore(OnlineStore):
    def __init__(self, path: str | Path, *, snapshot_s: float = 0.05) -> None:
        self.path = str(Path(path).expanduser().absolute())
        Path(self.path).parent.mkdir(parents=True, exist_ok=True)
        self.uri = f"sqlite:///{self.path}"
        self.snapshot_s = snapshot_s
        self._generation = 0  # bumped by every local write: readers drop their snapshot
        self._local = threading.local()
        self._write_lock = threading.Lock()
        self._created: set[str] = set()
        self._one: dict[str, str] = {}
        self._many: dict[tuple[str, int], str] = {}
        self._connections: list[sqlite3.Connection] = []

    def _reader(self) -> sqlite3.Cursor:
        """This thread's read cursor, inside a read transaction no older than ``snapshot_s``.

        The cursor is reused by every read of the thread (a new one per read costs more
        than the read's decoding); each read runs to completion before the next starts.
        """
        local = self._local
        now = time.monotonic()
        if local.__dict__.get("until", 0.0) > now and local.generation == self._generation:
            return local.cursor  # type: ignore[no-any-return]
        reader = local.__dict__.get("reader")
        if reader is None:
            reader = local.reader = self._connect()
            local.cursor = reader.cursor()
        elif reader.in_transaction:
            reader.execute("COMMIT")
        reader.execute("BEGIN")
        local.until = now + self.snapshot_s
        local.generation = self._generation
        return local.cursor  # type: ignore[no-any-return]

    def _end_snapshot(self) -> None:
        reader = self._local.__dict__.get("reader")
        if reader is not None and reader.in_transaction:
            reader.execute("COMMIT")
        self._local.until = 0.0

    def _con(self) -> sqlite3.Connection:
        """This thread's writer (and DDL) connection, in autocommit mode."""
        con: sqlite3.Connection | None = getattr(self._local, "con", None)
        if con is None:
            con = self._local.con = self._connect()
        return con

    def _connect(self) -> sqlite3.Connection:
        try:
            con = sqlite3.connect(
                self.path, isolation_level=None, check_same_thread=False, cached_statements=512
            )
            con.execute("PRAGMA journal_mode = WAL")
            con.execute("PRAGMA synchronous = NORMAL")
            con.execute("PRAGMA busy_timeout = 30000")
            con.execute("PRAGMA cache_size = -65536")  # 64 MiB: hot entities stay in memory
        except sqlite3.Error as exc:
            raise StoreUnavailable(f"cannot open online store {self.path!r}: {exc}") from exc
        with self._write_lock:
            self._connections.append(con)
        return con

    def _ensure(self, table: OnlineTable) -> None:
        if table.name in self._created:
            return
        key = "k INTEGER PRIMARY KEY" if table.int_key else "k TEXT PRIMARY KEY"
        rowid = "" if table.int_key else " WITHOUT ROWID"
        self._con().execute(
            f'CREATE TABLE IF NOT EXISTS "{table.name}" '
            f"({key}, ts INTEGER NOT NULL, v BLOB NOT NULL){rowid}"
        )
        self._created.add(table.name)

    def write(
        self,
        table: OnlineTable,
        keys: Sequence[Any],
        event_ts: Sequence[int],
        blobs: Sequence[bytes],
    ) -> None:
        self._ensure(table)
        upsert = (
            f'INSERT INTO "{table.name}" (k, ts, v) VALUES (?, ?, ?) ON CONFLICT(k) DO UPDATE '
            f'SET ts = excluded.ts, v = excluded.v WHERE excluded.ts >= "{table.name}".ts'
        )
        con = self._con()
        with self._write_lock:
            con.execute("BEGIN IMMEDIATE")
            try:
                # Into an empty table (a first materialisation; checked under the write lock)
                # a plain INSERT of the chunk's unique keys is a quarter cheaper than upserts.
                empty = con.execute(f'SELECT 1 FROM "{table.name}" LIMIT 1').fetchone() is None
                sql = f'INSERT INTO "{table.name}" (k, ts, v) VALUES (?, ?, ?)' if empty else upsert
                con.executemany(sql, zip(keys, event_ts, blobs, strict=True))
            except BaseException:
                con.execute("ROLLBACK")
                raise
            con.execute("COMMIT")
        self._generation += 1

    def read_one(self, table: OnlineTable, key: Any) -> Record | None:
        sql = self._one.get(table.name)
        if sql is None:
            sql = self._one[table.name] = f'SELECT ts, v FROM "{table.name}" WHERE k = ?'
        try:
            return self._reader().execute(sql, (key,)).fetchone()  # type: ignore[no-any-return]
        except sqlite3.OperationalError as exc:
            if "no such table" in str(exc):
                self._end_snapshot()  # it may be created by the next materialisation
                return None  # never materialised: every value is missing
            raise

    def read(self, table: OnlineTable, keys: Sequence[Any]) -> list[Record | None]:
        if len(keys) == 1:
            return [self.read_one(table, keys[0])]
        found: dict[Any, Record] = {}
        cursor = self._reader()
        for start in range(0, len(keys), _READ_BATCH):
            part = keys[start : start + _READ_BATCH]
            sql_key = (table.name, len(part))
            sql = self._many.get(sql_key)
            if sql is None:
                marks = ",".join("?" * len(part))
                sql = f'SELECT k, ts, v FROM "{table.name}" WHERE k IN ({marks})'
                self._many[sql_key] = sql
            try:
                rows = cursor.execute(sql, part).fetchall()
            except sqlite3.OperationalError as exc:
                if "no such table" in str(exc):
                    self._end_snapshot()
                    return [None] * len(keys)
                raise
            for k, ts, v in rows:
                found[k] = (ts, v)
        get = found.get
        return [get(k) for k in keys]

    def sample_keys(self, table: OnlineTable, n: int) -> list[Any]:
        try:
            rows = (
                self._con()
                .execute(f'SELECT k FROM "{table.name}" ORDER BY random() LIMIT ?', (n,))
                .fetchall()
            )
        except sqlite3.OperationalError:
            return []
        return [r[0] for r in rows]

    def count(self, table: OnlineTable) -> int:
        try:
            return int(self._con().execute(f'SELECT count(*) FROM "{table.name}"').fetchone()[0])
        except sqlite3.OperationalError:
            return 0

    def drop(self, table: OnlineTable) -> None:
        self._end_snapshot()
        with self._write_lock:
            self._con().execute(f'DROP TABLE IF EXISTS "{table.name}"')
        self._created.discard(table.name)
        self._generation += 1

    def close(self) -> None:
        with self._write_lock:
            connections, self._connections = self._connections, []
        for con in connections:
            con.close()
        self._local = threading.local()
        self._generation += 1
