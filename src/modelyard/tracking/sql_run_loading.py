"""Read whole runs out of the SQL tracking store, and run searches, as fast as the
database allows.

Listings and search load a page of runs with one query per 500 runs: params, tags,
latest metrics and dataset inputs arrive aggregated per run by the database as one JSON
document, so Python never iterates per value row. The load runs on a plain DB-API cursor
on both databases, and on SQLite (the embedded default, where a search over a few
thousand runs should take single-digit milliseconds) the search too, their Core
statements compiled once (``store/statements.py``; the search's once per filter):
SQLAlchemy's statement building and result wrapping would otherwise cost as much as the
query. Rows are read by column name either way.
"""

from __future__ import annotations

import math
import threading
from collections import OrderedDict
from collections.abc import Iterable, Sequence
from contextlib import closing
from dataclasses import fields
from operator import attrgetter
from typing import Any

from sqlalchemy import ARRAY, Connection, Select, String, Text, any_, bindparam, cast, func, select
from sqlalchemy.engine import Dialect

from modelyard import json_codec
from modelyard.store.statements import Compiled, ExpandingStatement
from modelyard.tracking import search_plan
from modelyard.tracking import tables as t
from modelyard.tracking.entities import DatasetInput, Metric, Run, RunData, RunInfo
from modelyard.tracking.search_plan import Driven, RunSearch
from modelyard.tracking.sql_statements import RUN_INFO_FIELDS

IN_CHUNK = 500
_COMPILED_CACHE_SIZE = 256

#: A run's latest metric as the loading statements aggregate it: these columns of
#: ``latest_metrics``, in this order.
_POINT = ("key", "step", "timestamp", "value", "is_nan")
#: A dataset input likewise: the columns of ``dataset_inputs`` named as ``DatasetInput``'s
#: fields, in the entity's order.
_INPUT_FIELDS = tuple(f.name for f in fields(DatasetInput))
#: A SELECT of any columns (``Select[Any]`` means one column to the type checker).
_Statement = Select[*tuple[Any, ...]]


def chunks(items: Sequence[str]) -> Iterable[Sequence[str]]:
    """Slices small enough for one ``IN (…)`` list on every backend."""
    for start in range(0, len(items), IN_CHUNK):
        yield items[start : start + IN_CHUNK]


def _info_columns() -> list[Any]:
    """The ``runs`` columns a ``RunInfo`` is made of, in the entity's field order."""
    return [t.runs.c[name] for name in RUN_INFO_FIELDS]


def _aggregate(table: Any, expression: Any) -> Any:
    """``expression`` aggregated over ``table``'s rows of the run in the outer query."""
    return (
        select(expression)
        .where(table.c.run_id == t.runs.c.run_id)
        .correlate(t.runs)
        .scalar_subquery()
    )


def _sqlite_load_statement() -> _Statement:
    """SQLite: each run's columns, and its params, tags, latest metrics and inputs as one
    JSON document (``data``). Values are rendered with printf('%!.20g'): SQLite's JSON
    keeps only 15 significant digits."""
    p, tg, lm, di = t.params.c, t.tags.c, t.latest_metrics.c, t.dataset_inputs.c
    point = [func.printf("%!.20g", lm.value) if name == "value" else lm[name] for name in _POINT]
    data = func.json_array(
        _aggregate(t.params, func.json_group_object(p.key, p.value)),
        _aggregate(t.tags, func.json_group_object(tg.key, tg.value)),
        _aggregate(t.latest_metrics, func.json_group_array(func.json_array(*point))),
        _aggregate(
            t.dataset_inputs,
            func.json_group_array(func.json_array(*(di[name] for name in _INPUT_FIELDS))),
        ),
    )
    return select(*_info_columns(), data.label("data")).where(
        t.runs.c.run_id.in_(bindparam("ids", expanding=True))
    )


class SearchStatements:
    """Compiled run-search SQL (and each filter's probes), cached by what they depend on.

    A dashboard or a client polling the same search pays for parsing the filter and
    compiling the statement once; the cache is small and bounded. A search driven by the
    runs a probe found is compiled afresh (its run ids are bound into it).
    """

    def __init__(self, dialect: Dialect) -> None:
        self._dialect = dialect
        self._compiled: OrderedDict[tuple[Any, ...], Any] = OrderedDict()
        self._lock = threading.Lock()

    def probes(self, search: RunSearch, limit: int) -> list[tuple[int, Compiled]]:
        key = ("probes", search.filter_string, limit)
        return self._cached(
            key, lambda: [(n, Compiled(p, self._dialect)) for n, p in search.probes(limit)]
        )

    def experiment_probe(self, search: RunSearch) -> Compiled | None:
        key = ("experiments", tuple(search.experiment_pks), search_plan.WALK_MIN)
        probe = search.experiment_probe()
        return None if probe is None else self._cached(key, lambda: Compiled(probe, self._dialect))

    def statements(
        self, search: RunSearch, driven: Driven | None, with_revision: bool
    ) -> list[Compiled]:
        """The search compiled for a raw cursor, its values bound (columns ``run_id``,
        ``revision`` when asked, then the sort values)."""
        if driven is not None:
            return [Compiled(s, self._dialect) for s in search.statements(driven, with_revision)]
        key = (
            tuple(search.experiment_pks),
            search.filter_string,
            search.view_type,
            tuple(search.order_by),
            search.offset,
            search.after,
            search.limit,
            search.walk,
            with_revision,
        )
        return self._cached(
            key,
            lambda: [Compiled(s, self._dialect) for s in search.statements(None, with_revision)],
        )

    def _cached(self, key: tuple[Any, ...], build: Any) -> Any:
        with self._lock:
            hit = self._compiled.get(key)
            if hit is not None:
                self._compiled.move_to_end(key)
                return hit
        entry = build()
        with self._lock:
            self._compiled[key] = entry
            while len(self._compiled) > _COMPILED_CACHE_SIZE:
                self._compiled.popitem(last=False)
        return entry


_info_values = attrgetter(*RUN_INFO_FIELDS)


def _make_run(info: RunInfo, data: Any) -> Run:
    """A run from its info and its ``data`` document (params, tags, latest metrics,
    inputs, as the load statements aggregate them)."""
    params, tags, metric_rows, input_rows = data
    metrics: dict[str, float] = {}
    points: dict[str, Metric] = {}
    for key, step, timestamp, value, nan in metric_rows or ():  # the order of _POINT
        value = math.nan if nan else float(value)  # PostgreSQL renders ±inf as strings
        metrics[key] = value
        points[key] = Metric(key, value, timestamp, step)
    info.experiment_id = str(info.experiment_id)
    inputs = tuple(DatasetInput(*item) for item in input_rows) if input_rows else ()
    return Run(info, RunData(metrics, params or {}, tags or {}, points), inputs)


# --- loading runs ------------------------------------------------------------------------


class RunLoader:
    """Loads whole runs on a raw DB-API cursor, each run's params, tags, latest metrics
    and inputs aggregated by the database into one JSON document: on PostgreSQL too,
    where reading four JSON columns through SQLAlchemy's rows cost ~7 ms of CPU for a
    page of 100 runs (a third of a search's 20 ms at 100,000 runs)."""

    def __init__(self, dialect: Dialect) -> None:
        self._sqlite = (
            ExpandingStatement(_sqlite_load_statement(), dialect, "ids")
            if dialect.name == "sqlite"
            else None
        )
        self._postgres = (
            Compiled(_postgres_load_statement(), dialect) if self._sqlite is None else None
        )

    def load_raw(self, cursor: Any, run_ids: Sequence[str]) -> list[Run]:
        """Whole runs in the order of ``run_ids`` (missing ids are skipped)."""
        loaded: dict[str, Run] = {}
        for chunk in chunks(run_ids):
            if self._sqlite is not None:
                compiled = self._sqlite.execute(cursor, {"ids": chunk})
            else:
                assert self._postgres is not None
                compiled = self._postgres
                compiled.execute(cursor, {"ids": list(chunk)})
            info, data = compiled.getter(*RUN_INFO_FIELDS), compiled.getter("data")
            for row in cursor.fetchall():
                run = _make_run(RunInfo(*info(row)), json_codec.loads_int64(data(row)))
                loaded[run.info.run_id] = run
        return [loaded[r] for r in run_ids if r in loaded]

    def load(self, conn: Connection, run_ids: Sequence[str]) -> list[Run]:
        """Whole runs, on ``conn``'s own DB-API connection (in its transaction)."""
        if not run_ids:
            return []
        driver = conn.connection.driver_connection
        with closing(driver.cursor()) as cursor:  # type: ignore[union-attr]
            return self.load_raw(cursor, run_ids)


def _postgres_load_statement() -> _Statement:
    """PostgreSQL: each run's columns, and its params, tags, latest metrics and inputs as
    one JSON document (``data``, as text: parsed once, here, not per column by the
    driver). A float8 renders in JSON with every digit it needs to read back the same."""
    obj, arr, tup = func.json_object_agg, func.json_agg, func.json_build_array
    p, tg, lm, di = t.params.c, t.tags.c, t.latest_metrics.c, t.dataset_inputs.c
    data = tup(
        _aggregate(t.params, obj(p.key, p.value)),
        _aggregate(t.tags, obj(tg.key, tg.value)),
        _aggregate(t.latest_metrics, arr(tup(*(lm[name] for name in _POINT)))),
        _aggregate(t.dataset_inputs, arr(tup(*(di[name] for name in _INPUT_FIELDS)))),
    )
    return select(*_info_columns(), cast(data, Text).label("data")).where(
        t.runs.c.run_id == any_(bindparam("ids", type_=ARRAY(String)))
    )


def run_info(row: object) -> RunInfo:
    """A ``RunInfo`` from a SQLAlchemy row holding the ``runs`` columns, read by name."""
    info = RunInfo(*_info_values(row))
    info.experiment_id = str(info.experiment_id)
    return info


__all__ = ["IN_CHUNK", "RunLoader", "SearchStatements", "chunks", "run_info"]
