"""The tracking store on a SQL database (SQLite by default, PostgreSQL to scale out).

Writes of metrics, params and tags go through one DB-API ``executemany`` per table inside
one transaction (``log_batch``); a single ``log_metric`` is a batch of one. Their
statements, like every other, are SQLAlchemy Core built from ``tables.py``; the hot ones
are compiled once for a raw cursor (``sql_statements.py``). Run listings load params,
latest metrics and tags for a whole page with one query per table, never one per run.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable, Mapping, Sequence
from itertools import repeat
from typing import Any

from sqlalchemy import Connection, case, delete, func, insert, select, update

from modelyard.errors import InvalidParameter, InvalidState, NotFound
from modelyard.ids import friendly_name, new_id, now_ms
from modelyard.store.engine import Database
from modelyard.store.lineage import node, record_edges
from modelyard.store.metric_chunks import (
    MetricColumns,
    next_chunk_id,
    pack_point,
    pack_points,
    point_range,
)
from modelyard.store.statistics import StatisticsKeeper, estimated_rows
from modelyard.tracking import revisions, search_plan
from modelyard.tracking import tables as t
from modelyard.tracking.checks import check_run_id
from modelyard.tracking.entities import (
    DatasetInput,
    LifecycleStage,
    Metric,
    Page,
    Param,
    Run,
    RunData,
    RunInfo,
    RunStatus,
    RunTag,
    ViewType,
)
from modelyard.tracking.metric_pages import read_page
from modelyard.tracking.search_plan import RunSearch
from modelyard.tracking.sql_experiments import (
    SqlExperiments,
    check_max_results,
    experiment_pk,
)
from modelyard.tracking.sql_run_loading import (
    RunLoader,
    SearchStatements,
    chunks,
    run_info,
)
from modelyard.tracking.sql_statements import HotStatements, run_row
from modelyard.tracking.store import HISTORY_PAGE, MAX_HISTORY_PAGE, TrackingStore

#: The tables whose statistics decide a run search's plan.
SEARCHED_TABLES = ("runs", "params", "tags", "latest_metrics")
#: How long the store's estimated size (which sets how many runs may drive a search) is
#: trusted before it is read again.
STORE_SIZE_TTL_S = 300.0

log = logging.getLogger(__name__)


def artifact_uri_for(experiment_id: str, run_id: str) -> str:
    return f"mlflow-artifacts:/{experiment_id}/{run_id}/artifacts"


class SqlTrackingStore(SqlExperiments, TrackingStore):
    def __init__(self, db: Database) -> None:
        self.db = db
        self._loader = RunLoader(db.engine.dialect)
        self._hot = HotStatements(db.engine.dialect)
        self._searches = SearchStatements(db.engine.dialect) if db.is_sqlite else None
        self._statistics: StatisticsKeeper | None = StatisticsKeeper(db, SEARCHED_TABLES)
        self._crowded = search_plan.CrowdedClauses()
        self._store_runs: int | None = None
        self._store_runs_until = 0.0
        self._ensure_default_experiment()

    # runs ----------------------------------------------------------------------
    def create_run(
        self,
        experiment_id: str,
        user_id: str,
        start_time: int,
        tags: Sequence[RunTag] = (),
        run_name: str | None = None,
        parent_run_id: str | None = None,
    ) -> Run:
        key = experiment_pk(experiment_id)
        run_id = new_id()
        tag_map = {tag.key: tag.value for tag in tags}
        run_name = run_name or tag_map.get("mlflow.runName") or friendly_name()
        tag_map["mlflow.runName"] = run_name
        if parent_run_id:
            tag_map["mlflow.parentRunId"] = parent_run_id
        # A parent tag naming no run (MLflow stores such tags as given) still fills the
        # column when it fits, so search and the UI group the runs the same way.
        tagged_parent = tag_map.get("mlflow.parentRunId") or None
        if tagged_parent is not None and len(tagged_parent) > PARENT_ID_WIDTH:
            tagged_parent = None
        parent_run_id = parent_run_id or tagged_parent
        info = RunInfo(
            run_id=run_id,
            experiment_id=str(key),
            run_name=run_name,
            user_id=user_id,
            status=RunStatus.RUNNING.value,  # plain text, as a loaded run holds it
            start_time=start_time,
            end_time=None,
            lifecycle_stage=LifecycleStage.ACTIVE.value,
            artifact_uri=artifact_uri_for(str(key), run_id),
            parent_run_id=parent_run_id,
        )
        hot = self._hot
        # One raw transaction that checks the experiment and writes the run: creating runs
        # is a hot path too (sweeps, the mlflow client's run per trial).
        with self.db.raw_write(references_checked=True) as cur:
            found = hot.experiment_state.first(cur, {"experiment_id": key})
            if found is None:
                raise NotFound(
                    f"No Experiment with id={experiment_id} exists", field="experiment_id"
                )
            if found.lifecycle_stage != LifecycleStage.ACTIVE:
                raise InvalidState(
                    f"experiment {found.name!r} is deleted; restore it before starting runs",
                    field="experiment_id",
                )
            hot.insert_run.execute(cur, run_row(info, key))
            hot.insert_tag.executemany(
                cur, [{"run_id": run_id, "key": k, "value": v} for k, v in tag_map.items()]
            )
        return Run(info=info, data=RunData(tags=tag_map))

    def get_run(self, run_id: str) -> Run:
        found = self.get_runs([run_id])
        if not found:
            raise run_not_found(run_id)
        return found[0]

    def update_run_info(
        self,
        run_id: str,
        status: str | None = None,
        end_time: int | None = None,
        run_name: str | None = None,
    ) -> RunInfo:
        values: dict[str, object] = {}
        if status is not None:
            try:
                values["status"] = RunStatus(status)
            except ValueError:
                raise InvalidParameter(
                    f"unknown run status {status!r}; use one of "
                    + ", ".join(s.value for s in RunStatus),
                    field="status",
                ) from None
        if end_time is not None:
            values["end_time"] = end_time
        if run_name:
            values["run_name"] = run_name
        with self.db.write() as conn:
            self._touch_run(conn, run_id)
            if values:
                conn.execute(update(t.runs).where(t.runs.c.run_id == run_id).values(**values))
            if run_name:
                conn.execute(
                    t.tags.delete().where(
                        t.tags.c.run_id == run_id, t.tags.c.key == "mlflow.runName"
                    )
                )
                conn.execute(
                    insert(t.tags).values(run_id=run_id, key="mlflow.runName", value=run_name)
                )
            row = conn.execute(select(t.runs).where(t.runs.c.run_id == run_id)).one()
        return run_info(row)

    def _require_run(
        self, conn: Connection, run_id: str, active: bool = False, lock: bool = False
    ) -> object:
        """The run's row; ``lock`` for a write that changes the row and the revision: the
        row is locked first (PostgreSQL; SQLite's writers are serialised anyway), as
        deleting or restoring an experiment locks its runs' rows before their revisions —
        one order, so two such writes wait for each other instead of deadlocking."""
        check_run_id(run_id)
        stmt = select(t.runs).where(t.runs.c.run_id == run_id)
        if lock:
            stmt = stmt.with_for_update(key_share=True)  # FOR NO KEY UPDATE, as an UPDATE
        row = conn.execute(stmt).first()
        if row is None:
            raise run_not_found(run_id)
        if active and row.lifecycle_stage != LifecycleStage.ACTIVE:
            raise run_not_active(run_id)
        return row

    def _touch_run(self, conn: Connection, run_id: str, active: bool = False) -> object:
        """``_require_run`` for a write: the same checks, and the run's revision bumped."""
        row = self._require_run(conn, run_id, active=active, lock=True)
        conn.execute(revisions.bump_run(self.db.dialect), {"run_id": run_id})
        return row

    def delete_run(self, run_id: str) -> None:
        self._set_run_stage(run_id, LifecycleStage.DELETED)

    def restore_run(self, run_id: str) -> None:
        self._set_run_stage(run_id, LifecycleStage.ACTIVE)

    def _set_run_stage(self, run_id: str, stage: LifecycleStage) -> None:
        with self.db.write() as conn:
            self._touch_run(conn, run_id)
            conn.execute(
                update(t.runs)
                .where(t.runs.c.run_id == run_id)
                .values(
                    lifecycle_stage=stage,
                    deleted_time=now_ms() if stage == LifecycleStage.DELETED else None,
                )
            )

    def log_batch(
        self,
        run_id: str,
        metrics: Sequence[Metric] = (),
        params: Sequence[Param] = (),
        tags: Sequence[RunTag] = (),
    ) -> None:
        check_run_id(run_id)
        hot, db = self._hot, self.db
        with db.raw_write(references_checked=True) as cur:  # the run is checked below
            # The bump on a cursor of its own, so its row count outlives the writes: on
            # PostgreSQL they all go in one round trip (a pipeline), checked at its end.
            bump = cur.connection.cursor()
            try:
                with db.pipeline(cur):
                    hot.bump_active_run.execute(bump, {"run_id": run_id})
                    if db.is_sqlite:
                        self._check_bumped(cur, bump, run_id)
                    self._write_batch(cur, run_id, metrics, params, tags)
            except db.engine.dialect.loaded_dbapi.IntegrityError:
                if bump.rowcount == 1:
                    raise
                raise run_not_found(run_id) from None  # a row naming no run
            if not db.is_sqlite:
                self._check_bumped(cur, bump, run_id)

    def _check_bumped(self, cur: Any, bump: Any, run_id: str) -> None:
        if bump.rowcount != 1:  # the run is missing or deleted: say which
            if self._hot.run_stage.first(cur, {"run_id": run_id}) is None:
                raise run_not_found(run_id)
            raise run_not_active(run_id)

    def _write_batch(
        self,
        cur: Any,
        run_id: str,
        metrics: Sequence[Metric],
        params: Sequence[Param],
        tags: Sequence[RunTag],
    ) -> None:
        hot = self._hot
        if params:
            self._write_params(cur, run_id, params)
        if tags:
            hot.upsert_tag.executemany(
                cur, [{"run_id": run_id, "key": tg.key, "value": tg.value} for tg in tags]
            )
        if len(metrics) == 1:  # the per-call path: execute() is cheaper than executemany()
            m = metrics[0]
            chunk = pack_point(m.step, m.timestamp, m.value)
            hot.insert_chunk.execute(
                cur,
                {
                    "run_id": run_id,
                    "key": m.key,
                    "chunk_id": next_chunk_id(),
                    "points": chunk,
                    "min_step": m.step,
                    "min_timestamp": m.timestamp,
                    "max_step": m.step,
                    "max_timestamp": m.timestamp,
                },
            )
            hot.upsert_latest.execute(cur, _latest_row(run_id, m))
        elif metrics:
            hot.insert_chunk.executemany(cur, _chunk_rows(run_id, metrics))
            hot.upsert_latest.executemany(cur, [_latest_row(run_id, m) for m in _latest(metrics)])

    def _write_params(self, cur: Any, run_id: str, params: Sequence[Param]) -> None:
        wanted: dict[str, str] = {}
        for p in params:
            if wanted.setdefault(p.key, p.value) != p.value:
                raise InvalidParameter(
                    f"param {p.key!r} given twice in one batch with different values "
                    f"({wanted[p.key]!r} and {p.value!r})",
                    field=f"params.{p.key}",
                )
        hot = self._hot
        hot.insert_param.executemany(
            cur, [{"run_id": run_id, "key": k, "value": v} for k, v in wanted.items()]
        )
        for chunk in chunks(list(wanted)):
            stored = hot.stored_params.execute(cur, {"run_id": run_id, "keys": chunk})
            for key, value in map(stored.getter("key", "value"), cur.fetchall()):
                if value != wanted[key]:
                    raise InvalidParameter(
                        f"param {key!r} of run {run_id} is already {value!r}; params are "
                        f"immutable, so it cannot become {wanted[key]!r} (log a new run, or "
                        "use a metric or tag for values that change)",
                        field=f"params.{key}",
                    )

    def delete_tag(self, run_id: str, key: str) -> None:
        with self.db.write() as conn:
            self._touch_run(conn, run_id, active=True)
            result = conn.execute(
                delete(t.tags).where(t.tags.c.run_id == run_id, t.tags.c.key == key)
            )
            if result.rowcount == 0:
                raise NotFound(f"No tag with name: {key} in run with id {run_id}", field="key")

    def get_metric_history(
        self, run_id: str, key: str, max_results: int | None = None, page_token: str | None = None
    ) -> Page[Metric]:
        if max_results is None:  # the whole history: pages of it, one after the other
            points: list[Metric] = []
            while True:
                page = self.get_metric_history(run_id, key, HISTORY_PAGE, page_token)
                points += page.items
                page_token = page.next_page_token
                if page_token is None:
                    return Page(points, None)
        (steps, times, values), token = self.get_metric_columns_page(
            run_id, key, max_results, page_token
        )
        return Page(
            list(map(Metric, repeat(key), values.tolist(), times.tolist(), steps.tolist())), token
        )

    def get_metric_columns_page(
        self, run_id: str, key: str, max_results: int, page_token: str | None = None
    ) -> tuple[MetricColumns, str | None]:
        check_max_results(max_results, cap=MAX_HISTORY_PAGE)
        with self.db.read() as conn:
            self._require_run(conn, run_id)
            page = read_page(conn, run_id, key, max_results, page_token)
        return page.columns, page.next_page_token

    def log_inputs(self, run_id: str, datasets: Sequence[DatasetInput]) -> None:
        if not datasets:
            return
        with self.db.write() as conn:
            self._touch_run(conn, run_id, active=True)
            for d in datasets:
                pk = (
                    (t.dataset_inputs.c.run_id == run_id)
                    & (t.dataset_inputs.c.name == d.name)
                    & (t.dataset_inputs.c.digest == d.digest)
                    & (t.dataset_inputs.c.context == d.context)
                )
                conn.execute(delete(t.dataset_inputs).where(pk))
                record_edges(conn, [(dataset_node(d.name, d.digest), node("run", run_id), "input")])
                conn.execute(
                    insert(t.dataset_inputs).values(
                        run_id=run_id,
                        name=d.name,
                        digest=d.digest,
                        context=d.context,
                        source_type=d.source_type,
                        source=d.source,
                        schema=d.schema,
                        profile=d.profile,
                        tags_json=d.tags_json,
                    )
                )

    def search_runs(
        self,
        experiment_ids: Sequence[str],
        filter_string: str | None = None,
        view_type: ViewType = ViewType.ACTIVE_ONLY,
        max_results: int = 1000,
        order_by: Sequence[str] | None = None,
        page_token: str | None = None,
    ) -> Page[Run]:
        search = self._planned(experiment_ids, filter_string, view_type, max_results, order_by)
        search.start_at(page_token)
        if self._searches is not None:  # SQLite: cached SQL on a raw cursor
            with self.db.raw_read() as cur:
                rows = self._found_sqlite(cur, search, with_revision=False)
                found = self._loader.load_raw(cur, [row["run_id"] for row in rows[:max_results]])
        else:
            with self.db.read() as conn:
                rows = self._found(conn, search, with_revision=False)
                found = self._loader.load(conn, [row["run_id"] for row in rows[:max_results]])
        return Page(found, self._next_token(search, rows))

    def search_run_revisions(
        self,
        experiment_ids: Sequence[str],
        filter_string: str | None = None,
        view_type: ViewType = ViewType.ACTIVE_ONLY,
        max_results: int = 1000,
        order_by: Sequence[str] | None = None,
        page_token: str | None = None,
    ) -> Page[tuple[str, int]]:
        search = self._planned(experiment_ids, filter_string, view_type, max_results, order_by)
        search.start_at(page_token)
        if self._searches is not None:
            with self.db.raw_read() as cur:
                rows = self._found_sqlite(cur, search, with_revision=True)
        else:
            with self.db.read() as conn:
                rows = self._found(conn, search, with_revision=True)
        page = [(row["run_id"], row["revision"]) for row in rows[:max_results]]
        return Page(page, self._next_token(search, rows))

    def _planned(
        self,
        experiment_ids: Sequence[str],
        filter_string: str | None,
        view_type: ViewType,
        max_results: int,
        order_by: Sequence[str] | None,
    ) -> RunSearch:
        check_max_results(max_results)
        if self._statistics is not None:
            self._statistics.maybe_refresh()
        return RunSearch(
            [experiment_pk(e) for e in experiment_ids],
            filter_string,
            ViewType(view_type).value,
            list(order_by or []),
            max_results,
        )

    @staticmethod
    def _next_token(search: RunSearch, rows: Sequence[Mapping[str, Any]]) -> str | None:
        """``rows`` holds one run more than the page when there is a next page."""
        if len(rows) <= search.limit:
            return None
        last = rows[search.limit - 1]
        sort_values = tuple(v for name, v in last.items() if name.startswith("sort_"))
        return search.next_token(sort_values if search.seeks else None)

    def _driving_limit(self, search: RunSearch) -> int:
        """``search_plan.driving_limit`` for this store's size, read at most every 5
        minutes (an estimate, not a count)."""
        now = time.monotonic()
        if now >= self._store_runs_until:
            try:
                self._store_runs = estimated_rows(self.db, "runs")
            except Exception:  # an optimisation: never fail a search for it
                log.warning("could not estimate the number of runs", exc_info=True)
                self._store_runs = None
            self._store_runs_until = now + STORE_SIZE_TTL_S
        database = self.db.engine.dialect.name
        return search_plan.driving_limit(self._store_runs, search.limit, database)

    def _found_sqlite(
        self, cur: Any, search: RunSearch, with_revision: bool
    ) -> list[Mapping[str, Any]]:
        """The search's rows on SQLite, by column name: ``run_id`` (``revision``), the sort
        values ``sort_0`` …"""
        assert self._searches is not None
        driven = None
        limit = self._driving_limit(search)
        for clause, probe in self._searches.probes(search, limit):
            if self._crowded.holds(search.clauses[clause], limit):
                continue
            run_id = probe.getter("run_id")
            found = [run_id(row) for row in probe.execute(cur).fetchall()]
            driven = search.drives(clause, found, limit)
            if driven is not None:
                break
            self._crowded.add(search.clauses[clause], limit)
        sizing = self._searches.experiment_probe(search)
        if sizing is not None and driven is None:
            search.walk = sizing.execute(cur).fetchone()[0] > search_plan.WALK_MIN
        rows: list[Mapping[str, Any]] = []
        for compiled in self._searches.statements(search, driven, with_revision):
            names = compiled.columns
            rows += (dict(zip(names, row, strict=True)) for row in compiled.execute(cur))
            if len(rows) > search.limit:
                break
        return rows

    def _found(
        self, conn: Connection, search: RunSearch, with_revision: bool
    ) -> list[Mapping[str, Any]]:
        """The search's rows through SQLAlchemy (PostgreSQL).

        Its statements are planned for their values each time (``plan_cache_mode``: a
        driving array or a rare value must not get a plan made for the average one, which
        psycopg's prepared statements would otherwise reuse after five searches), and
        without parallel workers: starting them cost 20–40 ms, more than a page's work.
        """
        conn.exec_driver_sql(
            "SET LOCAL plan_cache_mode = force_custom_plan; "
            "SET LOCAL max_parallel_workers_per_gather = 0"
        )
        limit = self._driving_limit(search)
        driven = None
        for clause, probe in search.probes(limit, self._crowded):
            found = probe.subquery()
            count = func.count()
            # The ids as one string, and only when they will drive (not 20,001 of them).
            joined = case((count <= limit, func.string_agg(found.c.run_id, ",")))
            matches, ids = conn.execute(select(count, joined).select_from(found)).one()
            if matches > limit:
                self._crowded.add(search.clauses[clause], limit)
                continue
            driven = search.drives(clause, ids.split(",") if ids else [], limit, as_array=True)
            break
        sizing = search.experiment_probe()
        if sizing is not None and driven is None:
            search.walk = conn.execute(sizing).scalar_one() > search_plan.WALK_MIN
        rows: list[Mapping[str, Any]] = []
        for statement in search.statements(driven, with_revision):
            rows += (dict(row) for row in conn.execute(statement).mappings())
            if len(rows) > search.limit:
                break
        return rows

    def run_revisions(self, run_ids: Sequence[str]) -> dict[str, int]:
        r, v = t.runs.c, t.run_revisions.c
        found: dict[str, int] = {}
        with self.db.read() as conn:
            for chunk in chunks(run_ids):
                stmt = (
                    select(r.run_id, func.coalesce(v.revision, 0).label("revision"))
                    .select_from(t.runs.outerjoin(t.run_revisions, v.run_id == r.run_id))
                    .where(r.run_id.in_(list(chunk)))
                )
                found.update({row.run_id: row.revision for row in conn.execute(stmt)})
        return found

    def get_runs(self, run_ids: Sequence[str]) -> list[Run]:
        for run_id in run_ids:
            check_run_id(run_id)
        if self.db.is_sqlite:
            with self.db.raw_read() as cur:
                return self._loader.load_raw(cur, run_ids)
        with self.db.read() as conn:
            return self._loader.load(conn, run_ids)

    def list_deleted_runs(self, older_than_ms: int | None = None) -> list[RunInfo]:
        c = t.runs.c
        stmt = select(t.runs).where(c.lifecycle_stage == LifecycleStage.DELETED)
        if older_than_ms is not None:
            stmt = stmt.where(c.deleted_time <= now_ms() - older_than_ms)
        with self.db.read() as conn:
            return [run_info(row) for row in conn.execute(stmt)]

    def purge_run(self, run_id: str) -> None:
        with self.db.write() as conn:
            row = self._require_run(conn, run_id, lock=True)
            if row.lifecycle_stage != LifecycleStage.DELETED:  # type: ignore[attr-defined]
                raise InvalidState(f"run {run_id} is not deleted; delete it first", field="run_id")
            for table in (
                t.metric_chunks,
                t.latest_metrics,
                t.params,
                t.tags,
                t.dataset_inputs,
                t.run_revisions,
            ):
                conn.execute(delete(table).where(table.c.run_id == run_id))
            conn.execute(delete(t.runs).where(t.runs.c.run_id == run_id))


#: The width of ``runs.parent_run_id`` (a run id: 32 hex digits).
PARENT_ID_WIDTH = 32


def run_not_found(run_id: str) -> NotFound:
    """MLflow's wording (its clients match ``Run .+ not found``)."""
    return NotFound(f"Run with id={run_id} not found", field="run_id")


def run_not_active(run_id: str) -> InvalidState:
    return InvalidState(
        f"The run {run_id} must be in the 'active' state. Current state is deleted: "
        "restore it first",
        field="run_id",
    )


def dataset_node(name: str, digest: str) -> str:
    return node("dataset", f"{name}@{digest}")


def _chunk_rows(run_id: str, metrics: Iterable[Metric]) -> list[dict[str, Any]]:
    """One packed chunk per key of the batch, points in the order given."""
    columns: dict[str, tuple[list[int], list[int], list[float]]] = {}
    get = columns.get
    for m in metrics:
        column = get(m.key)
        if column is None:
            column = columns[m.key] = ([], [], [])
        column[0].append(m.step)
        column[1].append(m.timestamp)
        column[2].append(m.value)
    chunk_id = next_chunk_id()  # one id serves the whole batch: each key is its own series
    rows = []
    for key, column in columns.items():
        low_step, low_time, high_step, high_time = point_range(column[0], column[1])
        rows.append(
            {
                "run_id": run_id,
                "key": key,
                "chunk_id": chunk_id,
                "points": pack_points(*column),
                "min_step": low_step,
                "min_timestamp": low_time,
                "max_step": high_step,
                "max_timestamp": high_time,
            }
        )
    return rows


def _latest_row(run_id: str, m: Metric) -> dict[str, Any]:
    # NaN is stored as 0.0 with is_nan set: SQLite turns NaN into NULL.
    value = float(m.value)
    nan = value != value
    return {
        "run_id": run_id,
        "key": m.key,
        "step": m.step,
        "timestamp": m.timestamp,
        "value": 0.0 if nan else value,
        "is_nan": nan,
    }


def _latest(metrics: Sequence[Metric]) -> list[Metric]:
    """Per key, the point with the highest (step, timestamp, value): steps usually rise
    through a batch, so comparing steps first settles nearly every point."""
    if len(metrics) == 1:
        return list(metrics)
    best: dict[str, Metric] = {}
    get = best.get
    for m in metrics:
        held = get(m.key)
        if (
            held is None
            or m.step > held.step
            or (m.step == held.step and (m.timestamp, m.value) > (held.timestamp, held.value))
        ):
            best[m.key] = m
    return list(best.values())
