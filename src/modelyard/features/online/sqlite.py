"""The embedded online store: one SQLite file, one table per view version.

Reads use the stdlib driver directly (no SQLAlchemy on the hot path), with one reader
connection and cursor per thread and SQL prepared once per table: a primary-key read costs
a few microseconds. A reader keeps its read transaction open for up to ``snapshot_s`` (50 ms):
starting a transaction per statement costs as much as the read itself. Writes made by this
process are seen at once (they end the snapshot); another process's within ``snapshot_s``.
A single-int64-key view uses ``INTEGER PRIMARY KEY`` (SQLite's rowid, its fastest lookup);
other keys are ``TEXT PRIMARY KEY ... WITHOUT ROWID``. WAL mode lets readers run while a
materialisation writes, one transaction per chunk; a chunk of int64 keys and fixed-width
values is inserted by one statement, and the WAL is checkpointed by a background thread.
"""

from __future__ import annotations

import sqlite3
import threading
import time
from collections.abc import Sequence
from contextlib import closing, suppress
from pathlib import Path
from typing import Any

from modelyard.errors import StoreUnavailable
from modelyard.features.online.base import OnlineStore, OnlineTable, Record, plain
from modelyard.features.online.codec import PackedBlobs

#: Keys per ``IN (...)`` read; SQLite allows 32,766 parameters.
_READ_BATCH = 500
#: Rows from which a write of packed blobs goes through one statement (below, through
#: ``executemany``: formatting the columns costs more than it saves).
_PACKED_MIN = 64
#: The writer checkpoints itself only when the WAL has grown this much (4 KiB pages: 64 MiB)
#: because the background checkpointer fell behind (readers held it, or it was stopped).
WAL_BACKSTOP_PAGES = 16_384
#: Characters per integer in the packed key and time columns: a sign and 19 digits.
_DIGITS = 20
#: Every 4-digit group "0000" .. "9999" as one uint32 (built on first use).
_GROUPS: Any = None


def _decimal(values: Sequence[int]) -> bytes:
    """Integers as fixed-width decimal text, back to back: ``-5`` → ``-0000000000000000005``.

    SQLite has no function that reads an integer from bytes, but ``CAST(text AS INTEGER)``
    is fast, and fixed width lets ``substr`` find row ``n`` without scanning (on a blob it
    is O(1)). NumPy writes four digits per step: a few milliseconds per 100k values.
    """
    import numpy as np

    global _GROUPS
    if _GROUPS is None:
        n = np.arange(10_000)
        digits = np.stack([n // 1000, n // 100 % 10, n // 10 % 10, n % 10], axis=1)
        _GROUPS = (digits + ord("0")).astype(np.uint8).view(np.uint32).ravel()
    signed = np.asarray(values, dtype=np.int64)
    negative = signed < 0
    magnitude = signed.view(np.uint64)
    if negative.any():  # two's complement, exact for -2**63 as well
        magnitude = np.where(negative, ~magnitude + np.uint64(1), magnitude)
    groups = np.empty((_DIGITS // 4, len(signed)), dtype=np.uint32)
    step = np.uint64(10_000)
    for i in range(_DIGITS // 4 - 1, -1, -1):
        quotient = magnitude // step
        groups[i] = _GROUPS.take((magnitude - quotient * step).astype(np.intp))
        magnitude = quotient
    text = groups.T.copy().view(np.uint8)  # the leading digit is 0: |value| <= 2**63 < 10**19
    text[negative, 0] = ord("-")
    return text.tobytes()


def _packed_rows(
    keys: Sequence[int], event_ts: Sequence[int], blobs: PackedBlobs
) -> tuple[str, tuple[bytes, bytes, memoryview, str]]:
    """A chunk's rows as one SELECT over four parameters, and the parameters.

    SQLite slices the packed columns itself, where binding three parameters per row from
    Python costs twice as much. The rows come from ``json_each`` over an array of n zeros
    (its ``key`` is the row number): cheaper per row than a recursive CTE.
    """
    width = blobs.width
    rows = (
        f"SELECT CAST(substr(?1, key * {_DIGITS} + 1, {_DIGITS}) AS INTEGER), "
        f"CAST(substr(?2, key * {_DIGITS} + 1, {_DIGITS}) AS INTEGER), "
        f"substr(?3, key * {width} + 1, {width}) FROM json_each(?4) WHERE true"
    )
    zeros = f"[{'0,' * (len(blobs) - 1)}0]"
    return rows, (_decimal(keys), _decimal(event_ts), blobs.data, zeros)


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
        self._json: bool | None = None
        self._checkpoint_due = threading.Event()
        self._checkpointer: threading.Thread | None = None
        self._stopping = False

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
            # A commit does not copy the WAL into the database (a checkpoint, 20 ms per
            # 10 MB, mostly two fsyncs): ``_checkpoints`` does, in the background, right
            # after. Only if it falls behind by WAL_BACKSTOP_PAGES does the writer
            # checkpoint itself, so the WAL stays bounded. Durability is what
            # synchronous=NORMAL gives either way: a commit may roll back after a power
            # loss, and the file is never corrupt.
            con.execute(f"PRAGMA wal_autocheckpoint = {WAL_BACKSTOP_PAGES}")
        return con

    def _checkpoints(self) -> None:
        """The checkpointer thread: a PASSIVE checkpoint after each write (it never waits
        for readers or writers; what it cannot copy now the next one does)."""
        con = self._connect()
        while True:
            self._checkpoint_due.wait()
            self._checkpoint_due.clear()
            if self._stopping:
                return
            with suppress(sqlite3.Error):  # busy or closing: the next write asks again
                con.execute("PRAGMA wal_checkpoint(PASSIVE)")

    def _request_checkpoint(self) -> None:
        if self._checkpointer is None:
            with self._write_lock:
                if self._checkpointer is None:
                    self._checkpointer = threading.Thread(
                        target=self._checkpoints, name="online-store-checkpoint", daemon=True
                    )
                    self._checkpointer.start()
        self._checkpoint_due.set()

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
        if not len(keys) == len(event_ts) == len(blobs):
            raise ValueError(
                f"a write needs one key, time and value per row: got {len(keys)} keys, "
                f"{len(event_ts)} times and {len(blobs)} values"
            )
        self._ensure(table)
        name = f'"{table.name}"'
        params: Any
        packed = (
            isinstance(blobs, PackedBlobs)
            and table.int_key
            and len(blobs) >= _PACKED_MIN
            and self._has_json()
        )
        if packed:
            rows, params = _packed_rows(keys, event_ts, blobs)  # type: ignore[arg-type]
        else:
            rows, params = "VALUES (?, ?, ?)", zip(plain(keys), plain(event_ts), blobs, strict=True)
        upsert = (
            f"INSERT INTO {name} (k, ts, v) {rows} ON CONFLICT(k) DO UPDATE "
            f"SET ts = excluded.ts, v = excluded.v WHERE excluded.ts >= {name}.ts"
        )
        con = self._con()
        with self._write_lock:
            con.execute("BEGIN IMMEDIATE")
            try:
                # Into an empty table (a first materialisation; checked under the write lock)
                # a plain INSERT of the chunk's unique keys is a quarter cheaper than upserts.
                empty = con.execute(f"SELECT 1 FROM {name} LIMIT 1").fetchone() is None
                sql = f"INSERT INTO {name} (k, ts, v) {rows}" if empty else upsert
                if packed:
                    con.execute(sql, params)
                else:
                    con.executemany(sql, params)
            except BaseException:
                con.execute("ROLLBACK")
                raise
            con.execute("COMMIT")
        self._generation += 1
        self._request_checkpoint()

    def _has_json(self) -> bool:
        """Whether this SQLite has ``json_each`` (built in since 3.38, optional before)."""
        if self._json is None:
            try:
                self._con().execute("SELECT count(*) FROM json_each('[0]')").fetchone()
                self._json = True
            except sqlite3.OperationalError:
                self._json = False
        return self._json

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
        checkpointer = self._checkpointer
        if checkpointer is not None:  # let it finish its checkpoint, then stop
            self._stopping = True
            self._checkpoint_due.set()
            checkpointer.join()
            self._checkpointer, self._stopping = None, False
        with self._write_lock:
            connections, self._connections = self._connections, []
        for con in connections:
            con.close()
        if connections:  # leave the database whole and the WAL empty for the next opener
            with suppress(sqlite3.Error), closing(sqlite3.connect(self.path)) as con:
                con.execute("PRAGMA busy_timeout = 0")  # another process reading: it stays
                con.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        self._local = threading.local()
        self._generation += 1
