"""Read whole runs out of the SQL tracking store, and run searches, as fast as the
database allows.

Listings and search load a page of runs with one query per 500 runs: params, tags,
latest metrics and dataset inputs arrive aggregated per run by the database, so Python
never iterates per value row. On SQLite (the embedded default, where a search over a few
thousand runs should take single-digit milliseconds) both the search and the load run on
a plain DB-API cursor and the compiled search SQL is cached per filter: SQLAlchemy's
statement building and result wrapping would otherwise cost as much as the query.
"""

from __future__ import annotations

import json
import math
import threading
from collections import OrderedDict
from collections.abc import Iterable, Sequence
from typing import Any

from sqlalchemy import Connection, Select, bindparam, func, select
from sqlalchemy.engine import Dialect

from modelyard import json_codec
from modelyard.tracking import tables as t
from modelyard.tracking.entities import DatasetInput, Metric, Run, RunData, RunInfo
from modelyard.tracking.search_filter import parse_filter, parse_order_by
from modelyard.tracking.search_query import run_search_statement

IN_CHUNK = 500
_COMPILED_CACHE_SIZE = 256

#: SQLite: a run's params, tags, latest metrics and inputs as one JSON document. Values are
#: rendered with printf('%!.20g'): SQLite's JSON keeps only 15 significant digits.
_SQLITE_LOAD = """
SELECT r.run_id, r.experiment_id, r.run_name, r.user_id, r.status, r.start_time, r.end_time,
       r.lifecycle_stage, r.artifact_uri, r.parent_run_id,
       json_array(
         (SELECT json_group_object(key, value) FROM params p WHERE p.run_id = r.run_id),
         (SELECT json_group_object(key, value) FROM tags t WHERE t.run_id = r.run_id),
         (SELECT json_group_array(json_array(key, step, timestamp, printf('%!.20g', value),
                                             is_nan))
            FROM latest_metrics m WHERE m.run_id = r.run_id),
         (SELECT json_group_array(json_array(name, digest, context, source_type, source, schema,
                                             profile))
            FROM dataset_inputs d WHERE d.run_id = r.run_id))
FROM runs r WHERE r.run_id IN ({marks})
"""


def chunks(items: Sequence[str]) -> Iterable[Sequence[str]]:
    """Slices small enough for one ``IN (…)`` list on every backend."""
    for start in range(0, len(items), IN_CHUNK):
        yield items[start : start + IN_CHUNK]


def load_runs_sqlite(cursor: Any, run_ids: Sequence[str]) -> list[Run]:
    """Whole runs in the order of ``run_ids`` (missing ids are skipped), on a raw cursor."""
    loaded: dict[str, Run] = {}
    for chunk in chunks(run_ids):
        cursor.execute(_SQLITE_LOAD.format(marks=", ".join("?" * len(chunk))), chunk)
        for row in cursor.fetchall():
            loaded[row[0]] = _run_from_sqlite_row(row)
    return [loaded[r] for r in run_ids if r in loaded]


class SearchStatements:
    """Compiled run-search SQL, cached per (experiments, filter, view, order, page).

    A dashboard or a client polling the same search pays for parsing the filter and
    compiling the statement once; the cache is small and bounded.
    """

    def __init__(self, dialect: Dialect) -> None:
        self._dialect = dialect
        self._compiled: OrderedDict[tuple[Any, ...], tuple[str, list[Any]]] = OrderedDict()
        self._lock = threading.Lock()

    def compiled(
        self,
        experiment_pks: list[int],
        filter_string: str | None,
        view_type: str,
        order_by: Sequence[str],
        offset: int,
        limit: int,
        with_revision: bool = False,
    ) -> tuple[str, list[Any]]:
        """The search as ``(sql, positional parameters)`` for a raw cursor."""
        key = (
            tuple(experiment_pks),
            filter_string,
            view_type,
            tuple(order_by),
            offset,
            limit,
            with_revision,
        )
        with self._lock:
            hit = self._compiled.get(key)
            if hit is not None:
                self._compiled.move_to_end(key)
                return hit
        stmt = run_search_statement(
            experiment_pks,
            parse_filter(filter_string),
            view_type,
            parse_order_by(list(order_by)),
            offset,
            limit,
            with_revision,
        )
        compiled = stmt.compile(dialect=self._dialect, compile_kwargs={"render_postcompile": True})
        values = compiled.construct_params()
        processors = compiled._bind_processors  # e.g. booleans to 0/1
        params = [
            processors[name](values[name]) if name in processors else values[name]
            for name in compiled.positiontup or ()
        ]
        entry = (str(compiled), params)
        with self._lock:
            self._compiled[key] = entry
            while len(self._compiled) > _COMPILED_CACHE_SIZE:
                self._compiled.popitem(last=False)
        return entry


def _run_from_sqlite_row(row: tuple[Any, ...]) -> Run:
    params, tags, metric_rows, input_rows = json_codec.loads_int64(row[10])
    metrics: dict[str, float] = {}
    points: dict[str, Metric] = {}
    for key, step, timestamp, value, nan in metric_rows or ():
        value = math.nan if nan else float(value)
        metrics[key] = value
        points[key] = Metric(key, value, timestamp, step)
    info = RunInfo(
        row[0], str(row[1]), row[2], row[3], row[4], row[5], row[6], row[7], row[8], row[9]
    )
    inputs = tuple(DatasetInput(*item) for item in input_rows) if input_rows else ()
    return Run(info, RunData(metrics, params or {}, tags or {}, points), inputs)


# --- any backend, through SQLAlchemy ---------------------------------------------------


class RunLoader:
    """Loads whole runs through SQLAlchemy Core (PostgreSQL, and SQLite outside search)."""

    def __init__(self, is_sqlite: bool) -> None:
        self._is_sqlite = is_sqlite
        self._stmt: Select[Any] | None = None

    def load(self, conn: Connection, run_ids: Sequence[str]) -> list[Run]:
        if not run_ids:
            return []
        if self._is_sqlite:
            cursor = conn.connection.driver_connection.cursor()  # type: ignore[union-attr]
            return load_runs_sqlite(cursor, run_ids)
        loaded: dict[str, Run] = {}
        stmt = self._statement()
        for chunk in chunks(run_ids):
            for row in conn.execute(stmt, {"ids": list(chunk)}):
                loaded[row.run_id] = _run_from_row(row)
        return [loaded[r] for r in run_ids if r in loaded]

    def _statement(self) -> Select[Any]:
        if self._stmt is not None:
            return self._stmt
        r = t.runs.c
        obj, arr, tup = func.json_object_agg, func.json_agg, func.json_build_array

        def agg(table: Any, expression: Any) -> Any:
            return (
                select(expression)
                .where(table.c.run_id == r.run_id)
                .correlate(t.runs)
                .scalar_subquery()
            )

        lm, di = t.latest_metrics.c, t.dataset_inputs.c
        self._stmt = select(
            t.runs,
            agg(t.params, obj(t.params.c.key, t.params.c.value)).label("params_json"),
            agg(t.tags, obj(t.tags.c.key, t.tags.c.value)).label("tags_json"),
            agg(
                t.latest_metrics, arr(tup(lm.key, lm.step, lm.timestamp, lm.value, lm.is_nan))
            ).label("metrics_json"),
            agg(
                t.dataset_inputs,
                arr(
                    tup(
                        di.name,
                        di.digest,
                        di.context,
                        di.source_type,
                        di.source,
                        di.schema,
                        di.profile,
                    )
                ),
            ).label("inputs_json"),
        ).where(r.run_id.in_(bindparam("ids", expanding=True)))
        return self._stmt


def run_info(row: object) -> RunInfo:
    """A ``RunInfo`` from a row of the ``runs`` table."""
    return RunInfo(
        run_id=row.run_id,  # type: ignore[attr-defined]
        experiment_id=str(row.experiment_id),  # type: ignore[attr-defined]
        run_name=row.run_name,  # type: ignore[attr-defined]
        user_id=row.user_id,  # type: ignore[attr-defined]
        status=row.status,  # type: ignore[attr-defined]
        start_time=row.start_time,  # type: ignore[attr-defined]
        end_time=row.end_time,  # type: ignore[attr-defined]
        lifecycle_stage=row.lifecycle_stage,  # type: ignore[attr-defined]
        artifact_uri=row.artifact_uri,  # type: ignore[attr-defined]
        parent_run_id=row.parent_run_id,  # type: ignore[attr-defined]
    )


def _json(value: Any) -> Any:
    if value is None:
        return None
    return json.loads(value) if isinstance(value, str) else value


def _run_from_row(row: Any) -> Run:
    metrics: dict[str, float] = {}
    points: dict[str, Metric] = {}
    for key, step, timestamp, value, nan in _json(row.metrics_json) or ():
        value = math.nan if nan else float(value)  # PostgreSQL renders ±inf as strings
        metrics[key] = value
        points[key] = Metric(key, value, int(timestamp), int(step))
    inputs = tuple(DatasetInput(*item) for item in _json(row.inputs_json) or ())
    return Run(
        info=run_info(row),
        data=RunData(metrics, _json(row.params_json) or {}, _json(row.tags_json) or {}, points),
        inputs=inputs,
    )


__all__ = ["IN_CHUNK", "RunLoader", "SearchStatements", "chunks", "load_runs_sqlite", "run_info"]
