"""Open a metadata database and hand out transactions.

SQLite is opened in WAL mode with a busy timeout, and every write transaction starts with
``BEGIN IMMEDIATE``: a deferred transaction that reads and then writes can fail at once
with "database is locked" when another process writes (it never waits on the busy
timeout), which is the classic MLflow complaint. Taking the write lock up front makes
concurrent writers queue instead.

The hot paths (logging, run creation, SQLite's search) skip SQLAlchemy's execution
machinery and run on a DB-API cursor (``raw_write`` / ``raw_read``), with Core statements
compiled once for it (``store/statements.py``); everything else runs through SQLAlchemy
(``read`` / ``write``).
"""

from __future__ import annotations

import contextvars
import threading
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager, nullcontext
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, Engine, create_engine, event
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError, NoSuchModuleError, OperationalError

from modelyard.errors import InvalidParameter, MissingExtra, StoreBusy, StoreUnavailable

SQLITE_BUSY_TIMEOUT_MS = 60_000
#: A search at a million runs looks up thousands of rows scattered over a 1.5 GB file: read
#: through a memory map and a 32 MB page cache (SQLite's default is 2 MB, and a read() per
#: page), its CPU time fell ~30 % and its wall time by half or more (benchmarks/search_runs.py).
SQLITE_MMAP_BYTES = 256 * 1024 * 1024
SQLITE_CACHE_KIB = 32 * 1024
#: PostgreSQL: write transactions of the hot path (``raw_write``) open at once in one
#: process, each on a connection of its own. A server's handler threads (40 a process)
#: share them, so 64 clients logging at once through ``--workers 2`` hold 16 connections,
#: not 80 (which, with the pools, exhausted PostgreSQL's default ``max_connections`` of
#: 100 and failed other clients of the database); more at once does not write faster on
#: a few cores, it only queues inside PostgreSQL instead of here.
PG_HOT_WRITERS = 8
_WRITE_OPTION = "modelyard_write"
_NO_WAIT: contextvars.ContextVar[bool] = contextvars.ContextVar("modelyard_no_wait", default=False)


@contextmanager
def writes_do_not_wait() -> Iterator[None]:
    """Inside this block a SQLite ``raw_write`` that would wait for another connection's
    write lock raises ``StoreBusy`` at once instead of waiting up to the busy timeout.

    For callers that must not block, e.g. a write run on a server's event loop: on
    ``StoreBusy`` nothing has been written and the write can be retried where waiting is
    harmless (a worker thread).
    """
    token = _NO_WAIT.set(True)
    try:
        yield
    finally:
        _NO_WAIT.reset(token)


class Database:
    """A metadata database: an engine plus the transaction styles modelyard uses."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.dialect = engine.dialect.name
        self.is_sqlite = self.dialect == "sqlite"
        self._local = threading.local()
        self._hot: list[Any] = []
        self._hot_lock = threading.Lock()
        # PostgreSQL's raw_write connections: idle ones (LIFO), and a slot per connection.
        self._idle_writers: list[Any] = []
        self._writer_slots = threading.BoundedSemaphore(PG_HOT_WRITERS)

    @property
    def uri(self) -> str:
        return self.engine.url.render_as_string(hide_password=True)

    @contextmanager
    def read(self) -> Iterator[Connection]:
        """A read transaction (a consistent snapshot on both backends)."""
        with self.engine.connect() as conn, conn.begin():
            yield conn

    @contextmanager
    def write(self) -> Iterator[Connection]:
        """A write transaction: committed when the block ends, rolled back on error."""
        with self.engine.connect() as conn:
            conn.execution_options(**{_WRITE_OPTION: True})
            with conn.begin():
                yield conn

    def raw_write(self, *, references_checked: bool = False) -> _RawWrite:
        """A DB-API cursor inside one write transaction, for the batched hot path.

        On SQLite each thread keeps one dedicated connection for this (a pool checkout
        and reset costs more than the insert itself); on PostgreSQL the threads share at
        most ``PG_HOT_WRITERS`` such connections (a thread waits for a free one). A
        connection the database dropped is replaced. Run statements on it through
        ``store.statements.Compiled``.

        ``references_checked``: the caller verifies, inside this transaction, that the
        parent row every written row points to exists (e.g. the run of 1,000 metric
        points), so SQLite may skip its per-row foreign-key lookup (~7% of a batch).
        """
        return _RawWrite(self, references_checked)

    def _abort(self, conn: Any, exc: BaseException, slot: str = "conn") -> None:
        """Roll a hot connection's transaction back after ``exc``; drop the connection
        if that fails or the database dropped it."""
        try:
            conn.rollback()
        except Exception:
            self._drop_hot_connection(slot)
        if isinstance(exc, self.engine.dialect.loaded_dbapi.OperationalError):
            self._drop_hot_connection(slot)

    def _set_foreign_keys(self, cursor: Any, *, enforced: bool) -> None:
        # The pragma is a no-op inside a transaction, so it is set before BEGIN, and only
        # when it changes (remembered per thread, for the thread's hot connection).
        if getattr(self._local, "foreign_keys", True) != enforced:
            cursor.execute(f"PRAGMA foreign_keys = {'ON' if enforced else 'OFF'}")
            self._local.foreign_keys = enforced

    @contextmanager
    def raw_read(self) -> Iterator[Any]:
        """A DB-API cursor inside one read transaction (a consistent snapshot).

        Like ``raw_write``, each thread keeps a dedicated connection for it, so that hot
        reads (search, run listings) skip the pool's checkout and reset.
        """
        conn = self._hot_connection("read_conn")
        try:
            cursor = conn.cursor()
            if self.is_sqlite:
                cursor.execute("BEGIN")
            yield cursor
        except BaseException as exc:
            self._abort(conn, exc, "read_conn")
            raise
        try:
            if self.is_sqlite:
                cursor.execute("COMMIT")
            else:
                conn.rollback()  # nothing was written: end the snapshot
        except BaseException:
            self._drop_hot_connection("read_conn")
            raise

    def _detached_connection(self) -> Any:
        pooled = self.engine.raw_connection()
        pooled.detach()  # ours for good, outside the pool's accounting
        return pooled.dbapi_connection

    def pipeline(self, cursor: Any) -> AbstractContextManager[Any]:
        """PostgreSQL: the statements run on ``cursor``'s connection inside the block go
        out together and are answered in one round trip (psycopg's pipeline mode; a row
        count is known, and an error raised, when the block ends or at a fetch). A logged
        batch was ~8 round trips, each a wait on a busy machine. SQLite: nothing to save."""
        return nullcontext() if self.is_sqlite else cursor.connection.pipeline()

    def _take_writer(self) -> Any:
        """A PostgreSQL ``raw_write`` connection: an idle one, or a new one while fewer
        than ``PG_HOT_WRITERS`` exist, else wait for one to come back."""
        self._writer_slots.acquire()
        try:
            return self._idle_writers.pop()
        except IndexError:
            pass
        try:
            conn = self._detached_connection()
        except BaseException:
            self._writer_slots.release()
            raise
        with self._hot_lock:
            self._hot.append(conn)
        return conn

    def _put_writer(self, conn: Any, exc: BaseException | None = None) -> None:
        """Give a ``_take_writer`` connection back: rolled back first after ``exc``, and
        closed instead if that fails or the database dropped it."""
        try:
            broken = exc is not None and isinstance(
                exc, self.engine.dialect.loaded_dbapi.OperationalError
            )
            if exc is not None and not broken:
                try:
                    conn.rollback()
                except Exception:
                    broken = True
            if broken or conn.closed:
                with self._hot_lock:
                    if conn in self._hot:
                        self._hot.remove(conn)
                try:
                    conn.close()
                except Exception:
                    pass
            else:
                self._idle_writers.append(conn)
        finally:
            self._writer_slots.release()

    def _hot_connection(self, slot: str = "conn") -> Any:
        conn = getattr(self._local, slot, None)
        if conn is None:
            conn = self._detached_connection()  # kept for the thread's life
            setattr(self._local, slot, conn)
            with self._hot_lock:
                self._hot.append(conn)
        return conn

    def _drop_hot_connection(self, slot: str = "conn") -> None:
        conn = getattr(self._local, slot, None)
        setattr(self._local, slot, None)
        if slot == "conn":
            self._local.foreign_keys = True  # a new connection starts with them on
        if conn is not None:
            with self._hot_lock:
                if conn in self._hot:
                    self._hot.remove(conn)
            try:
                conn.close()
            except Exception:
                pass

    def dispose(self) -> None:
        with self._hot_lock:
            hot, self._hot = self._hot, []
        for conn in hot:
            try:
                conn.close()
            except Exception:
                pass
        self._local = threading.local()
        self._idle_writers = []
        self.engine.dispose()


class _RawWrite:
    """``Database.raw_write``'s transaction. A plain context manager, not a generator:
    per-call logging enters one per call, and ``@contextmanager`` costs ~0.75 µs more."""

    __slots__ = ("_conn", "_db", "_references_checked")

    def __init__(self, db: Database, references_checked: bool) -> None:
        self._db, self._references_checked = db, references_checked

    def __enter__(self) -> Any:
        db = self._db
        if not db.is_sqlite:
            conn = self._conn = db._take_writer()
            try:
                return conn.cursor()
            except BaseException as exc:
                db._put_writer(conn, exc)
                raise
        conn = self._conn = db._hot_connection()
        try:
            cursor = conn.cursor()
            if db.is_sqlite:
                db._set_foreign_keys(cursor, enforced=not self._references_checked)
                if _NO_WAIT.get():
                    _begin_without_waiting(cursor)
                else:
                    cursor.execute("BEGIN IMMEDIATE")
        except BaseException as exc:
            db._abort(conn, exc)
            raise
        return cursor

    def __exit__(self, exc_type: Any, exc: BaseException | None, traceback: Any) -> None:
        if not self._db.is_sqlite:
            self._exit_shared(exc)
            return
        if exc is not None:
            self._db._abort(self._conn, exc)
            return  # the exception goes on
        try:
            self._conn.commit()
        except BaseException:
            self._db._drop_hot_connection()
            raise

    def _exit_shared(self, exc: BaseException | None) -> None:
        db, conn = self._db, self._conn
        if exc is not None:
            db._put_writer(conn, exc)
            return  # the exception goes on
        try:
            conn.commit()
        except BaseException as failed:
            db._put_writer(conn, failed)
            raise
        db._put_writer(conn)


def _begin_without_waiting(cursor: Any) -> None:
    cursor.execute("PRAGMA busy_timeout = 0")
    try:
        cursor.execute("BEGIN IMMEDIATE")
    except Exception as exc:
        if _is_busy(exc):
            raise StoreBusy("the SQLite store's write lock is held by another connection") from exc
        raise
    finally:
        cursor.execute(f"PRAGMA busy_timeout = {SQLITE_BUSY_TIMEOUT_MS}")


def open_database(uri: str, *, sqlite_synchronous: str = "NORMAL") -> Database:
    """Create the engine for ``uri`` (``sqlite:///…`` or ``postgresql+psycopg://…``)."""
    try:
        url = make_url(uri)
    except ArgumentError as exc:
        raise InvalidParameter(
            f"store URI {uri!r} is not a database URL; use sqlite:///path/to/file.db or "
            "postgresql+psycopg://user@host:port/db",
            field="store_uri",
        ) from exc
    backend = url.get_backend_name()
    if backend == "sqlite":
        return Database(_sqlite_engine(url, sqlite_synchronous))
    if backend == "postgresql":
        if url.drivername == "postgresql":
            url = url.set(drivername="postgresql+psycopg")
        try:
            engine = create_engine(url, pool_size=8, max_overflow=16, pool_pre_ping=True)
        except (ModuleNotFoundError, NoSuchModuleError) as exc:
            raise MissingExtra("psycopg", "postgres", "A PostgreSQL metadata store") from exc
        return Database(engine)
    raise InvalidParameter(
        f"store URI scheme {url.drivername!r} is not supported; use sqlite or postgresql",
        field="store_uri",
    )


def _sqlite_engine(url: Any, synchronous: str) -> Engine:
    database = url.database
    if database and database != ":memory:":
        Path(database).expanduser().parent.mkdir(parents=True, exist_ok=True)
    engine = create_engine(
        url,
        connect_args={"check_same_thread": False, "timeout": SQLITE_BUSY_TIMEOUT_MS / 1000},
        pool_size=8,
        max_overflow=8,
    )

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        # Driver-level autocommit, so that we, not pysqlite, decide how transactions begin.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        try:
            cursor.execute(f"PRAGMA busy_timeout = {SQLITE_BUSY_TIMEOUT_MS}")
            cursor.execute("PRAGMA journal_mode = WAL")
            cursor.execute(f"PRAGMA synchronous = {synchronous}")
            cursor.execute("PRAGMA foreign_keys = ON")
            cursor.execute(f"PRAGMA mmap_size = {SQLITE_MMAP_BYTES}")
            cursor.execute(f"PRAGMA cache_size = -{SQLITE_CACHE_KIB}")
        except Exception as exc:  # unreadable file, not a database, read-only folder
            raise StoreUnavailable(f"cannot open SQLite store {url.database!r}: {exc}") from exc
        finally:
            cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Connection) -> None:
        if conn.get_execution_options().get(_WRITE_OPTION):
            conn.exec_driver_sql("BEGIN IMMEDIATE")
        else:
            conn.exec_driver_sql("BEGIN")

    return engine


def is_transient(exc: BaseException) -> bool:
    """Whether a database error is worth one retry (lock contention, dropped connection)."""
    return isinstance(exc, OperationalError) and (_is_busy(exc) or exc.connection_invalidated)


def _is_busy(exc: BaseException) -> bool:
    """Whether SQLite refused for lock contention ("database is locked" / "busy")."""
    return "locked" in str(exc) or "busy" in str(exc)
