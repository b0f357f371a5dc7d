"""The tracking store on a SQL database (SQLite by default, PostgreSQL to scale out).

Writes of metrics, params and tags go through one DB-API ``executemany`` per table inside
one transaction (``log_batch``); a single ``log_metric`` is a batch of one. Reads use
SQLAlchemy Core. Run listings load params, latest metrics and tags for a whole page with
one query per table, never one per run.
"""

from __future__ import annotations

import base64
import json
import math
from collections.abc import Iterable, Sequence
from typing import Any

from sqlalchemy import (
    Connection,
    Select,
    bindparam,
    delete,
    func,
    insert,
    select,
    update,
)
from sqlalchemy.exc import IntegrityError

from modelyard.errors import AlreadyExists, InvalidParameter, InvalidState, NotFound
from modelyard.ids import friendly_name, new_id, now_ms
from modelyard.store.engine import Database
from modelyard.store.lineage import node, record_edges
from modelyard.tracking import tables as t
from modelyard.tracking.entities import (
    DatasetInput,
    Experiment,
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
from modelyard.tracking.search_filter import parse_filter, parse_order_by
from modelyard.tracking.search_query import run_search_statement
from modelyard.tracking.store import TrackingStore
from modelyard.tracking.validation import check_experiment_name, check_run_id

DEFAULT_EXPERIMENT_ID = "0"
DEFAULT_EXPERIMENT_NAME = "Default"
MAX_SEARCH_RESULTS = 50_000
_IN_CHUNK = 500

_INSERT_METRIC = (
    "INSERT INTO metrics (run_id, key, step, timestamp, value, is_nan) VALUES (?, ?, ?, ?, ?, ?) "
    "ON CONFLICT DO NOTHING"
)
_UPSERT_LATEST = (
    "INSERT INTO latest_metrics (run_id, key, step, timestamp, value, is_nan) "
    "VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (run_id, key) DO UPDATE SET "
    "step = excluded.step, timestamp = excluded.timestamp, value = excluded.value, "
    "is_nan = excluded.is_nan WHERE excluded.step > latest_metrics.step OR "
    "(excluded.step = latest_metrics.step AND (excluded.timestamp > latest_metrics.timestamp "
    "OR (excluded.timestamp = latest_metrics.timestamp AND excluded.value > latest_metrics.value)))"
)
_INSERT_PARAM = "INSERT INTO params (run_id, key, value) VALUES (?, ?, ?) ON CONFLICT DO NOTHING"
_UPSERT_TAG = (
    "INSERT INTO tags (run_id, key, value) VALUES (?, ?, ?) "
    "ON CONFLICT (run_id, key) DO UPDATE SET value = excluded.value"
)


def artifact_location_for(experiment_id: str) -> str:
    return f"mlflow-artifacts:/{experiment_id}"


def artifact_uri_for(experiment_id: str, run_id: str) -> str:
    return f"mlflow-artifacts:/{experiment_id}/{run_id}/artifacts"


class SqlTrackingStore(TrackingStore):
    def __init__(self, db: Database) -> None:
        self.db = db
        self._load_stmt: Select[Any] | None = None
        self._ensure_default_experiment()

    # experiments ---------------------------------------------------------------
    def _ensure_default_experiment(self) -> None:
        with self.db.read() as conn:
            if conn.execute(
                select(t.experiments.c.experiment_id).where(t.experiments.c.experiment_id == 0)
            ).first():
                return
        now = now_ms()
        try:
            with self.db.write() as conn:
                conn.execute(
                    insert(t.experiments).values(
                        experiment_id=0,
                        name=DEFAULT_EXPERIMENT_NAME,
                        artifact_location=artifact_location_for(DEFAULT_EXPERIMENT_ID),
                        lifecycle_stage=LifecycleStage.ACTIVE,
                        creation_time=now,
                        last_update_time=now,
                    )
                )
        except IntegrityError:
            pass  # another process created it first

    def create_experiment(
        self, name: str, artifact_location: str | None = None, tags: dict[str, str] | None = None
    ) -> str:
        check_experiment_name(name)
        now = now_ms()
        try:
            with self.db.write() as conn:
                experiment_id = conn.execute(
                    insert(t.experiments)
                    .values(
                        name=name,
                        artifact_location=artifact_location or "",
                        lifecycle_stage=LifecycleStage.ACTIVE,
                        creation_time=now,
                        last_update_time=now,
                    )
                    .returning(t.experiments.c.experiment_id)
                ).scalar_one()
                if not artifact_location:
                    conn.execute(
                        update(t.experiments)
                        .where(t.experiments.c.experiment_id == experiment_id)
                        .values(artifact_location=artifact_location_for(str(experiment_id)))
                    )
                if tags:
                    conn.execute(
                        insert(t.experiment_tags),
                        [
                            {"experiment_id": experiment_id, "key": k, "value": str(v)}
                            for k, v in tags.items()
                        ],
                    )
        except IntegrityError as exc:
            raise AlreadyExists(
                f"an experiment named {name!r} already exists (it may be deleted: restore it "
                "or choose another name)",
                field="name",
            ) from exc
        return str(experiment_id)

    def _experiments(self, conn: Connection, where: object) -> list[Experiment]:
        rows = conn.execute(select(t.experiments).where(where)).all()  # type: ignore[arg-type]
        if not rows:
            return []
        ids = [r.experiment_id for r in rows]
        tag_rows = conn.execute(
            select(t.experiment_tags).where(t.experiment_tags.c.experiment_id.in_(ids))
        ).all()
        tags: dict[int, dict[str, str]] = {}
        for tr in tag_rows:
            tags.setdefault(tr.experiment_id, {})[tr.key] = tr.value
        return [
            Experiment(
                experiment_id=str(r.experiment_id),
                name=r.name,
                artifact_location=r.artifact_location,
                lifecycle_stage=r.lifecycle_stage,
                creation_time=r.creation_time,
                last_update_time=r.last_update_time,
                tags=tags.get(r.experiment_id, {}),
            )
            for r in rows
        ]

    def get_experiment(self, experiment_id: str) -> Experiment:
        key = _experiment_pk(experiment_id)
        with self.db.read() as conn:
            found = self._experiments(conn, t.experiments.c.experiment_id == key)
        if not found:
            raise NotFound(f"no experiment with id {experiment_id!r}", field="experiment_id")
        return found[0]

    def get_experiment_by_name(self, name: str) -> Experiment | None:
        with self.db.read() as conn:
            found = self._experiments(conn, t.experiments.c.name == name)
        return found[0] if found else None

    def search_experiments(
        self,
        view_type: ViewType = ViewType.ACTIVE_ONLY,
        max_results: int = 1000,
        name_like: str | None = None,
        page_token: str | None = None,
    ) -> Page[Experiment]:
        _check_max_results(max_results)
        offset = decode_page_token(page_token)
        c = t.experiments.c
        stmt = select(c.experiment_id)
        stages = _stages(ViewType(view_type))
        stmt = stmt.where(c.lifecycle_stage.in_(stages))
        if name_like:
            stmt = stmt.where(func.lower(c.name).like(name_like.lower()))
        stmt = stmt.order_by(c.experiment_id).offset(offset).limit(max_results + 1)
        with self.db.read() as conn:
            ids = list(conn.execute(stmt).scalars())
            more = len(ids) > max_results
            ids = ids[:max_results]
            found = self._experiments(conn, c.experiment_id.in_(ids)) if ids else []
        found.sort(key=lambda e: int(e.experiment_id))
        return Page(found, encode_page_token(offset + max_results) if more else None)

    def rename_experiment(self, experiment_id: str, new_name: str) -> None:
        check_experiment_name(new_name)
        self._update_experiment(experiment_id, name=new_name)

    def delete_experiment(self, experiment_id: str) -> None:
        self._set_experiment_stage(experiment_id, LifecycleStage.DELETED)

    def restore_experiment(self, experiment_id: str) -> None:
        self._set_experiment_stage(experiment_id, LifecycleStage.ACTIVE)

    def _set_experiment_stage(self, experiment_id: str, stage: LifecycleStage) -> None:
        if experiment_id == DEFAULT_EXPERIMENT_ID and stage == LifecycleStage.DELETED:
            raise InvalidParameter(
                "the default experiment cannot be deleted", field="experiment_id"
            )
        key = _experiment_pk(experiment_id)
        now = now_ms()
        with self.db.write() as conn:
            self._update_experiment(experiment_id, conn=conn, lifecycle_stage=stage)
            # Runs follow their experiment, as in MLflow: deleting hides them, restoring shows.
            source = LifecycleStage.ACTIVE if stage == LifecycleStage.DELETED else stage.DELETED
            conn.execute(
                update(t.runs)
                .where(t.runs.c.experiment_id == key, t.runs.c.lifecycle_stage == source)
                .values(
                    lifecycle_stage=stage,
                    deleted_time=now if stage == LifecycleStage.DELETED else None,
                )
            )

    def _update_experiment(
        self, experiment_id: str, conn: Connection | None = None, **values: object
    ) -> None:
        key = _experiment_pk(experiment_id)
        stmt = (
            update(t.experiments)
            .where(t.experiments.c.experiment_id == key)
            .values(last_update_time=now_ms(), **values)
        )
        try:
            if conn is not None:
                result = conn.execute(stmt)
            else:
                with self.db.write() as own:
                    result = own.execute(stmt)
        except IntegrityError as exc:
            raise AlreadyExists(
                f"an experiment named {values.get('name')!r} already exists", field="new_name"
            ) from exc
        if result.rowcount == 0:
            raise NotFound(f"no experiment with id {experiment_id!r}", field="experiment_id")

    def set_experiment_tag(self, experiment_id: str, key: str, value: str) -> None:
        pk = _experiment_pk(experiment_id)
        self.get_experiment(experiment_id)
        with self.db.write() as conn:
            conn.execute(
                delete(t.experiment_tags).where(
                    t.experiment_tags.c.experiment_id == pk, t.experiment_tags.c.key == key
                )
            )
            conn.execute(insert(t.experiment_tags).values(experiment_id=pk, key=key, value=value))

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
        experiment = self.get_experiment(experiment_id)
        if experiment.lifecycle_stage != LifecycleStage.ACTIVE:
            raise InvalidState(
                f"experiment {experiment.name!r} is deleted; restore it before starting runs",
                field="experiment_id",
            )
        run_id = new_id()
        tag_map = {tag.key: tag.value for tag in tags}
        run_name = run_name or tag_map.get("mlflow.runName") or friendly_name()
        tag_map["mlflow.runName"] = run_name
        if parent_run_id:
            tag_map["mlflow.parentRunId"] = parent_run_id
        parent_run_id = parent_run_id or tag_map.get("mlflow.parentRunId")
        info = RunInfo(
            run_id=run_id,
            experiment_id=experiment.experiment_id,
            run_name=run_name,
            user_id=user_id,
            status=RunStatus.RUNNING,
            start_time=start_time,
            end_time=None,
            lifecycle_stage=LifecycleStage.ACTIVE,
            artifact_uri=artifact_uri_for(experiment.experiment_id, run_id),
            parent_run_id=parent_run_id,
        )
        with self.db.write() as conn:
            conn.execute(
                insert(t.runs).values(
                    run_id=run_id,
                    experiment_id=int(experiment.experiment_id),
                    run_name=run_name,
                    user_id=user_id,
                    status=info.status,
                    start_time=start_time,
                    end_time=None,
                    lifecycle_stage=info.lifecycle_stage,
                    artifact_uri=info.artifact_uri,
                    parent_run_id=parent_run_id,
                )
            )
            conn.execute(
                insert(t.tags),
                [{"run_id": run_id, "key": k, "value": v} for k, v in tag_map.items()],
            )
        return Run(info=info, data=RunData(tags=tag_map))

    def get_run(self, run_id: str) -> Run:
        check_run_id(run_id)
        with self.db.read() as conn:
            found = self._load_runs(conn, [run_id])
        if not found:
            raise NotFound(f"no run with id {run_id!r}", field="run_id")
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
            self._require_run(conn, run_id)
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
        return _run_info(row)

    def _require_run(self, conn: Connection, run_id: str, active: bool = False) -> object:
        check_run_id(run_id)
        row = conn.execute(select(t.runs).where(t.runs.c.run_id == run_id)).first()
        if row is None:
            raise NotFound(f"no run with id {run_id!r}", field="run_id")
        if active and row.lifecycle_stage != LifecycleStage.ACTIVE:
            raise InvalidState(f"run {run_id} is deleted; restore it first", field="run_id")
        return row

    def delete_run(self, run_id: str) -> None:
        self._set_run_stage(run_id, LifecycleStage.DELETED)

    def restore_run(self, run_id: str) -> None:
        self._set_run_stage(run_id, LifecycleStage.ACTIVE)

    def _set_run_stage(self, run_id: str, stage: LifecycleStage) -> None:
        with self.db.write() as conn:
            self._require_run(conn, run_id)
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
        sql = self.db.sql
        with self.db.raw_write() as cur:
            cur.execute(sql("SELECT lifecycle_stage FROM runs WHERE run_id = ?"), (run_id,))
            row = cur.fetchone()
            if row is None:
                raise NotFound(f"no run with id {run_id!r}", field="run_id")
            if row[0] != LifecycleStage.ACTIVE:
                raise InvalidState(f"run {run_id} is deleted; restore it first", field="run_id")
            if params:
                self._write_params(cur, run_id, params)
            if tags:
                cur.executemany(sql(_UPSERT_TAG), [(run_id, tg.key, tg.value) for tg in tags])
            if len(metrics) == 1:  # the per-call path: execute() is cheaper than executemany()
                (row,) = _metric_rows(run_id, metrics)
                cur.execute(sql(_INSERT_METRIC), row)
                cur.execute(sql(_UPSERT_LATEST), row)
            elif metrics:
                cur.executemany(sql(_INSERT_METRIC), _metric_rows(run_id, metrics))
                cur.executemany(sql(_UPSERT_LATEST), _metric_rows(run_id, _latest(metrics)))

    def _write_params(self, cur: object, run_id: str, params: Sequence[Param]) -> None:
        wanted: dict[str, str] = {}
        for p in params:
            if wanted.setdefault(p.key, p.value) != p.value:
                raise InvalidParameter(
                    f"param {p.key!r} given twice in one batch with different values "
                    f"({wanted[p.key]!r} and {p.value!r})",
                    field=f"params.{p.key}",
                )
        sql = self.db.sql
        cur.executemany(sql(_INSERT_PARAM), [(run_id, k, v) for k, v in wanted.items()])  # type: ignore[attr-defined]
        keys = list(wanted)
        for start in range(0, len(keys), _IN_CHUNK):
            chunk = keys[start : start + _IN_CHUNK]
            marks = ", ".join("?" * len(chunk))
            cur.execute(  # type: ignore[attr-defined]
                sql(f"SELECT key, value FROM params WHERE run_id = ? AND key IN ({marks})"),
                (run_id, *chunk),
            )
            for key, stored in cur.fetchall():  # type: ignore[attr-defined]
                if stored != wanted[key]:
                    raise InvalidParameter(
                        f"param {key!r} of run {run_id} is already {stored!r}; params are "
                        f"immutable, so it cannot become {wanted[key]!r} (log a new run, or "
                        "use a metric or tag for values that change)",
                        field=f"params.{key}",
                    )

    def delete_tag(self, run_id: str, key: str) -> None:
        with self.db.write() as conn:
            self._require_run(conn, run_id, active=True)
            result = conn.execute(
                delete(t.tags).where(t.tags.c.run_id == run_id, t.tags.c.key == key)
            )
            if result.rowcount == 0:
                raise NotFound(f"run {run_id} has no tag {key!r}", field="key")

    def get_metric_history(
        self, run_id: str, key: str, max_results: int | None = None, page_token: str | None = None
    ) -> Page[Metric]:
        offset = decode_page_token(page_token)
        m = t.metrics.c
        stmt = (
            select(m.step, m.timestamp, m.value, m.is_nan)
            .where(m.run_id == run_id, m.key == key)
            .order_by(m.step, m.timestamp, m.value)
            .offset(offset)
        )
        if max_results is not None:
            _check_max_results(max_results, cap=10**9)
            stmt = stmt.limit(max_results + 1)
        with self.db.read() as conn:
            self._require_run(conn, run_id)
            rows = conn.execute(stmt).all()
        more = max_results is not None and len(rows) > max_results
        rows = rows[:max_results] if max_results is not None else rows
        points = [
            Metric(key, float("nan") if r.is_nan else r.value, r.timestamp, r.step) for r in rows
        ]
        token = encode_page_token(offset + len(points)) if more else None
        return Page(points, token)

    def log_inputs(self, run_id: str, datasets: Sequence[DatasetInput]) -> None:
        if not datasets:
            return
        with self.db.write() as conn:
            self._require_run(conn, run_id, active=True)
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
        _check_max_results(max_results)
        offset = decode_page_token(page_token)
        stmt = run_search_statement(
            [_experiment_pk(e) for e in experiment_ids],
            parse_filter(filter_string),
            ViewType(view_type).value,
            parse_order_by(list(order_by or [])),
            offset,
            max_results + 1,
        )
        with self.db.read() as conn:
            run_ids = list(conn.execute(stmt).scalars())
            more = len(run_ids) > max_results
            run_ids = run_ids[:max_results]
            found = self._load_runs(conn, run_ids)
        return Page(found, encode_page_token(offset + max_results) if more else None)

    def list_deleted_runs(self, older_than_ms: int | None = None) -> list[RunInfo]:
        c = t.runs.c
        stmt = select(t.runs).where(c.lifecycle_stage == LifecycleStage.DELETED)
        if older_than_ms is not None:
            stmt = stmt.where(c.deleted_time <= now_ms() - older_than_ms)
        with self.db.read() as conn:
            return [_run_info(row) for row in conn.execute(stmt)]

    def purge_run(self, run_id: str) -> None:
        with self.db.write() as conn:
            row = self._require_run(conn, run_id)
            if row.lifecycle_stage != LifecycleStage.DELETED:  # type: ignore[attr-defined]
                raise InvalidState(f"run {run_id} is not deleted; delete it first", field="run_id")
            for table in (t.metrics, t.latest_metrics, t.params, t.tags, t.dataset_inputs):
                conn.execute(delete(table).where(table.c.run_id == run_id))
            conn.execute(delete(t.runs).where(t.runs.c.run_id == run_id))

    # loading -------------------------------------------------------------------
    def _load_runs(self, conn: Connection, run_ids: Sequence[str]) -> list[Run]:
        """Load whole runs, one row each: params, tags, latest metrics and inputs arrive
        aggregated as JSON by the database, so Python never iterates per value row."""
        if not run_ids:
            return []
        loaded: dict[str, Run] = {}
        if self.db.is_sqlite:  # the hot path of search: a plain cursor, one JSON per run
            cursor = conn.connection.driver_connection.cursor()  # type: ignore[union-attr]
            for chunk in _chunks(run_ids):
                cursor.execute(_SQLITE_LOAD.format(marks=", ".join("?" * len(chunk))), chunk)
                for row in cursor.fetchall():
                    loaded[row[0]] = _run_from_sqlite_row(row)
            return [loaded[r] for r in run_ids if r in loaded]
        stmt = self._load_statement()
        for chunk in _chunks(run_ids):
            for row in conn.execute(stmt, {"ids": list(chunk)}):
                loaded[row.run_id] = _run_from_row(row)
        return [loaded[r] for r in run_ids if r in loaded]

    def _load_statement(self) -> Select[Any]:
        if self._load_stmt is not None:
            return self._load_stmt
        r = t.runs.c
        if self.db.is_sqlite:
            obj, arr, tup = func.json_group_object, func.json_group_array, func.json_array
        else:
            obj, arr, tup = func.json_object_agg, func.json_agg, func.json_build_array

        def agg(table: Any, expression: Any) -> Any:
            return (
                select(expression)
                .where(table.c.run_id == r.run_id)
                .correlate(t.runs)
                .scalar_subquery()
            )

        lm, di = t.latest_metrics.c, t.dataset_inputs.c
        value: Any = lm.value
        if self.db.is_sqlite:
            # SQLite's JSON keeps only 15 significant digits (and writes `Inf`): render the
            # value as round-trip text, which float() parses back exactly (Inf included).
            value = func.printf("%!.20g", lm.value)
        self._load_stmt = select(
            t.runs,
            agg(t.params, obj(t.params.c.key, t.params.c.value)).label("params_json"),
            agg(t.tags, obj(t.tags.c.key, t.tags.c.value)).label("tags_json"),
            agg(t.latest_metrics, arr(tup(lm.key, lm.step, lm.timestamp, value, lm.is_nan))).label(
                "metrics_json"
            ),
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
        return self._load_stmt


def _json(value: Any) -> Any:
    if value is None:
        return None
    return json.loads(value) if isinstance(value, str) else value


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


def _run_from_sqlite_row(row: tuple[Any, ...]) -> Run:
    params, tags, metric_rows, input_rows = json.loads(row[10])
    metrics: dict[str, float] = {}
    points: dict[str, Metric] = {}
    for key, step, timestamp, value, nan in metric_rows or ():
        value = math.nan if nan else float(value)
        metrics[key] = value
        points[key] = Metric(key, value, timestamp, step)
    info = RunInfo(
        run_id=row[0],
        experiment_id=str(row[1]),
        run_name=row[2],
        user_id=row[3],
        status=row[4],
        start_time=row[5],
        end_time=row[6],
        lifecycle_stage=row[7],
        artifact_uri=row[8],
        parent_run_id=row[9],
    )
    inputs = tuple(DatasetInput(*item) for item in input_rows or ())
    return Run(info, RunData(metrics, params or {}, tags or {}, points), inputs)


def _run_from_row(row: Any) -> Run:
    metrics: dict[str, float] = {}
    points: dict[str, Metric] = {}
    for key, step, timestamp, value, nan in _json(row.metrics_json) or ():
        value = math.nan if nan else float(value)  # PostgreSQL renders ±inf as strings
        metrics[key] = value
        points[key] = Metric(key, value, int(timestamp), int(step))
    inputs = tuple(DatasetInput(*item) for item in _json(row.inputs_json) or ())
    return Run(
        info=_run_info(row),
        data=RunData(metrics, _json(row.params_json) or {}, _json(row.tags_json) or {}, points),
        inputs=inputs,
    )


def dataset_node(name: str, digest: str) -> str:
    return node("dataset", f"{name}@{digest}")


def _run_info(row: object) -> RunInfo:
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


def _metric_rows(run_id: str, metrics: Iterable[Metric]) -> list[tuple[object, ...]]:
    # NaN is stored as 0.0 with is_nan set: SQLite turns NaN into NULL, and NULL in a
    # primary key would defeat de-duplication of replayed batches.
    return [
        (run_id, m.key, m.step, m.timestamp, 0.0 if v != v else v, v != v)
        for m in metrics
        for v in (float(m.value),)
    ]


def _latest(metrics: Sequence[Metric]) -> list[Metric]:
    if len(metrics) == 1:
        return list(metrics)
    best: dict[str, Metric] = {}
    for m in metrics:
        held = best.get(m.key)
        if held is None or (m.step, m.timestamp, m.value) > (held.step, held.timestamp, held.value):
            best[m.key] = m
    return list(best.values())


def _chunks(items: Sequence[str]) -> Iterable[Sequence[str]]:
    for start in range(0, len(items), _IN_CHUNK):
        yield items[start : start + _IN_CHUNK]


def _stages(view_type: ViewType) -> list[str]:
    if view_type == ViewType.ACTIVE_ONLY:
        return [LifecycleStage.ACTIVE]
    if view_type == ViewType.DELETED_ONLY:
        return [LifecycleStage.DELETED]
    return [LifecycleStage.ACTIVE, LifecycleStage.DELETED]


def _experiment_pk(experiment_id: str) -> int:
    try:
        key = int(experiment_id)
        if not 0 <= key < 2**63:
            raise ValueError
        return key
    except (TypeError, ValueError):
        raise InvalidParameter(
            f"experiment id must be a non-negative 64-bit integer, got {experiment_id!r:.80}",
            field="experiment_id",
        ) from None


def _check_max_results(max_results: int, cap: int = MAX_SEARCH_RESULTS) -> None:
    if (
        isinstance(max_results, bool)
        or not isinstance(max_results, int)
        or not 1 <= max_results <= cap
    ):
        raise InvalidParameter(
            f"max_results must be an integer from 1 to {cap}, got {max_results!r}",
            field="max_results",
        )


def encode_page_token(offset: int) -> str:
    return base64.urlsafe_b64encode(json.dumps({"offset": offset}).encode()).decode()


def decode_page_token(token: str | None) -> int:
    if not token:
        return 0
    try:
        offset = json.loads(base64.urlsafe_b64decode(token.encode()))["offset"]
        if not isinstance(offset, int) or offset < 0:
            raise ValueError
        return offset
    except Exception:
        raise InvalidParameter(f"invalid page token {token!r:.60}", field="page_token") from None
