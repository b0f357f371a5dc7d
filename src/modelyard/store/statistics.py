"""Planner statistics kept fresh without the user's help.

Why: a search's plan depends on how many rows a filter keeps. With no statistics,
PostgreSQL guessed that every filter was selective and read a million runs one by one
(132 ms at 9,732 runs, 32–62 ms after ``ANALYZE``); SQLite, without ``sqlite_stat1``,
assumes an equality on an index keeps ~10 rows and drives an unselective filter
(``params.model = 'xgb'``: a third of all runs) from that index, then sorts them all.
PostgreSQL's autovacuum analyses a table once 10 % of it changed, but only when it gets to
it, and never during a bulk load; SQLite has no such daemon at all.

So the database is analysed (1) after every schema migration and (2) whenever a search
finds the statistics stale: :class:`StatisticsKeeper` looks at most once every
``interval`` seconds, with one cheap query, whether the tables it watches grew or changed
by more than a quarter since they were last analysed (tables under ``MIN_ROWS`` rows never
are), and if so analyses them on a background thread, so no search waits for it.
On SQLite ``ANALYZE`` reads at most ``analysis_limit`` rows per index (approximate
statistics, in milliseconds at a million runs — SQLite's own recommendation for
applications that analyse automatically).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Sequence

from sqlalchemy import text

from modelyard.store.engine import Database

log = logging.getLogger(__name__)

#: Rows SQLite's ANALYZE reads per index (``PRAGMA analysis_limit``).
SQLITE_ANALYSIS_LIMIT = 2_000
#: A table is re-analysed once it changed by this fraction since it last was.
STALE_FRACTION = 0.25
#: Below this many rows the plans do not depend on statistics.
MIN_ROWS = 1_000


def refresh_statistics(db: Database, tables: Sequence[str] = ()) -> None:
    """Analyse ``tables`` (every table when empty) so the planner sees their sizes."""
    targets = list(tables) or [""]
    with db.engine.connect() as conn:
        if db.is_sqlite:
            conn.exec_driver_sql(f"PRAGMA analysis_limit = {SQLITE_ANALYSIS_LIMIT}")
        for table in targets:
            conn.exec_driver_sql(f"ANALYZE {_quoted(table)}" if table else "ANALYZE")
        conn.commit()


def stale_tables(db: Database, tables: Sequence[str]) -> list[str]:
    """The tables of ``tables`` whose statistics are missing or off by more than
    ``STALE_FRACTION`` of their rows (one query on each backend)."""
    with db.engine.connect() as conn:
        if db.is_sqlite:
            return [t for t in tables if _sqlite_stale(conn, t)]
        found = conn.execute(
            text(
                "SELECT relname, n_live_tup, n_mod_since_analyze, "
                "coalesce(last_analyze, last_autoanalyze) IS NULL AS never "
                "FROM pg_stat_user_tables WHERE schemaname = current_schema() "
                "AND relname = ANY(:tables)"
            ),
            {"tables": list(tables)},
        ).all()
    stale = []
    for name, live, modified, never in found:
        rows = max(live, modified)
        if rows >= MIN_ROWS and (never or modified > STALE_FRACTION * max(live, 1)):
            stale.append(name)
    return stale


def estimated_rows(db: Database, table: str) -> int | None:
    """About how many rows ``table`` holds, without counting them: its largest rowid on
    SQLite (an index seek), the statistics collector's live-row count on PostgreSQL;
    ``None`` when the database cannot say."""
    with db.engine.connect() as conn:
        if db.is_sqlite:
            found = conn.exec_driver_sql(f"SELECT max(rowid) FROM {_quoted(table)}").scalar()
        else:
            found = conn.execute(
                text(
                    "SELECT n_live_tup FROM pg_stat_user_tables "
                    "WHERE schemaname = current_schema() AND relname = :table"
                ),
                {"table": table},
            ).scalar()
    return None if found is None else int(found)


def _sqlite_stale(conn: object, table: str) -> bool:
    """Compare the row count ``sqlite_stat1`` recorded with the table's largest rowid
    (an index seek, not a count) — or, for a table without rowids, a count capped just
    above ``MIN_ROWS`` when nothing was recorded."""
    execute = conn.exec_driver_sql  # type: ignore[attr-defined]
    has_stats = execute("SELECT 1 FROM sqlite_master WHERE name = 'sqlite_stat1'").scalar()
    recorded = None
    if has_stats:
        stat = execute("SELECT stat FROM sqlite_stat1 WHERE tbl = ? LIMIT 1", (table,)).scalar()
        recorded = int(stat.split()[0]) if stat else None
    try:
        rows = execute(f"SELECT max(rowid) FROM {_quoted(table)}").scalar() or 0
    except Exception:  # a WITHOUT ROWID table
        rows = execute(
            f"SELECT count(*) FROM (SELECT 1 FROM {_quoted(table)} LIMIT {4 * MIN_ROWS})"
        ).scalar()
        if recorded is not None and rows < 4 * MIN_ROWS:
            return abs(rows - recorded) > STALE_FRACTION * max(recorded, 1)
        if recorded is not None:
            return False  # large, and analysed: the runs table decides for its children
    if rows < MIN_ROWS:
        return False
    return recorded is None or abs(rows - recorded) > STALE_FRACTION * max(recorded, 1)


def _quoted(name: str) -> str:
    if not name.replace("_", "").isalnum():
        raise ValueError(f"not a table name: {name!r}")
    return f'"{name}"'


class StatisticsKeeper:
    """Re-analyses a few tables when a read finds their statistics stale (at most one
    look every ``interval`` seconds, the analysis on a background thread)."""

    def __init__(self, db: Database, tables: Sequence[str], interval: float = 300.0) -> None:
        self.db = db
        self.tables = list(tables)
        self.interval = interval
        self._next_look = 0.0
        self._lock = threading.Lock()
        self._running: threading.Thread | None = None

    def maybe_refresh(self) -> None:
        """Look (at most once an interval; one cheap query) and, when the statistics are
        stale, analyse on a background thread."""
        now = time.monotonic()
        if now < self._next_look:
            return
        with self._lock:
            if now < self._next_look or (self._running and self._running.is_alive()):
                return
            self._next_look = now + self.interval
            try:
                stale = stale_tables(self.db, self.tables)
            except Exception:  # statistics are an optimisation: never fail a read for them
                log.warning("could not read planner statistics", exc_info=True)
                return
            if stale:
                self._running = threading.Thread(
                    target=self._refresh, args=(stale,), name="modelyard-statistics", daemon=True
                )
                self._running.start()

    def wait(self, timeout: float | None = None) -> None:
        """Until a running analysis ends (tests, and a store being closed)."""
        if self._running is not None:
            self._running.join(timeout)

    def _refresh(self, stale: list[str]) -> None:
        try:
            started = time.perf_counter()
            # SQLite judges the children by ``runs``: analyse them all together.
            refresh_statistics(self.db, self.tables if self.db.is_sqlite else stale)
            log.info(
                "analysed %s in %.0f ms (statistics were stale)",
                ", ".join(stale),
                (time.perf_counter() - started) * 1000,
            )
        except Exception:
            log.warning("could not refresh planner statistics", exc_info=True)


__all__ = ["StatisticsKeeper", "estimated_rows", "refresh_statistics", "stale_tables"]
