"""MLflow 3 logged models: a model's files, logged from a run, before any registration.

The MLflow 3 client's ``log_model`` creates one (status PENDING), uploads the files to its
``artifact_location`` (``<experiment>/models/<model_id>/artifacts``), marks it READY, and
registers ``models:/<model_id>`` when asked. modelyard's own ``log_model`` stores files
under the run instead; both register the same way.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from typing import Any

from sqlalchemy import Connection, Row, and_, delete, insert, or_, select, update

from modelyard.errors import InvalidParameter, InvalidState, NotFound
from modelyard.ids import friendly_name, now_ms
from modelyard.registry.entities import LoggedModel, ModelMetric
from modelyard.registry.logged_model_search import (
    LOGGED_MODELS,
    DatasetRef,
    ModelOrder,
    logged_models_statement,
)
from modelyard.registry.tables import (
    logged_model_metrics,
    logged_model_params,
    logged_model_runs,
    logged_model_tags,
    logged_models,
)
from modelyard.store.engine import Database
from modelyard.store.keyset import fetch_page
from modelyard.store.lineage import node, record_edges
from modelyard.tracking import tables as tracking_tables
from modelyard.tracking.entities import Page
from modelyard.tracking.search_filter import parse_filter

PENDING = "LOGGED_MODEL_PENDING"
READY = "LOGGED_MODEL_READY"
FAILED = "LOGGED_MODEL_UPLOAD_FAILED"
STATUSES = (PENDING, READY, FAILED)
#: Lineage relations from a run to a logged model; ``…_unresolved``: the run id a client
#: named (MLflow stores any) is not a run in this store.
PRODUCED = "produced"
PRODUCED_UNRESOLVED = "produced_unresolved"
INPUT, OUTPUT = "input", "output"


def new_model_id() -> str:
    return f"m-{uuid.uuid4().hex}"


def artifact_location_for(experiment_id: str, model_id: str) -> str:
    return f"{experiment_id}/models/{model_id}/artifacts"


class LoggedModelStore:
    """Logged models in the metadata database (a table gateway: no rules beyond shapes)."""

    def __init__(self, db: Database) -> None:
        self.db = db

    def create(
        self,
        experiment_id: str,
        name: str | None = None,
        source_run_id: str | None = None,
        model_type: str | None = None,
        params: Mapping[str, str] | None = None,
        tags: Mapping[str, str] | None = None,
    ) -> LoggedModel:
        if not str(experiment_id).isdigit():
            raise InvalidParameter(
                f"experiment_id must be a number, got {experiment_id!r}", field="experiment_id"
            )
        model_id, now = new_model_id(), now_ms()
        with self.db.write() as conn:
            conn.execute(
                insert(logged_models).values(
                    model_id=model_id,
                    experiment_id=int(experiment_id),
                    name=name or friendly_name(),  # MLflow names an unnamed model so
                    source_run_id=source_run_id,
                    model_type=model_type or None,
                    status=PENDING,
                    artifact_location=artifact_location_for(str(experiment_id), model_id),
                    creation_time=now,
                    last_updated_time=now,
                )
            )
            self._put(conn, logged_model_params, model_id, params or {})
            self._put(conn, logged_model_tags, model_id, tags or {})
            if source_run_id:
                known = _run_exists(conn, source_run_id)
                relation = PRODUCED if known else PRODUCED_UNRESOLVED
                record_edges(
                    conn, [(node("run", source_run_id), node("logged_model", model_id), relation)]
                )
            return self._get(conn, model_id)

    @staticmethod
    def _put(conn: Connection, table: Any, model_id: str, values: Mapping[str, str]) -> None:
        for key, value in values.items():
            conn.execute(delete(table).where(table.c.model_id == model_id, table.c.key == key))
            conn.execute(insert(table).values(model_id=model_id, key=key, value=value))

    def _row(self, conn: Connection, model_id: str) -> Row[Any]:
        row = conn.execute(
            select(logged_models).where(logged_models.c.model_id == model_id)
        ).first()
        if row is None:
            raise NotFound(f"Logged model with ID '{model_id}' not found.", field="model_id")
        return row

    def exists(self, model_id: str) -> bool:
        with self.db.read() as conn:
            found = conn.execute(
                select(logged_models.c.model_id).where(logged_models.c.model_id == model_id)
            ).first()
        return found is not None

    def _get(self, conn: Connection, model_id: str) -> LoggedModel:
        return self._entities(conn, [self._row(conn, model_id)])[0]

    def _entities(self, conn: Connection, rows: Sequence[Row[Any]]) -> list[LoggedModel]:
        ids = [r.model_id for r in rows]
        extra: dict[str, dict[str, dict[str, str]]] = {i: {"tags": {}, "params": {}} for i in ids}
        for kind, table in (("tags", logged_model_tags), ("params", logged_model_params)):
            for r in conn.execute(select(table).where(table.c.model_id.in_(ids))):
                extra[r.model_id][kind][r.key] = r.value
        metrics: dict[str, list[ModelMetric]] = {i: [] for i in ids}
        m = logged_model_metrics.c
        for r in conn.execute(
            select(logged_model_metrics).where(m.model_id.in_(ids)).order_by(m.id)
        ):
            metrics[r.model_id].append(
                ModelMetric(
                    r.key,
                    r.value,
                    int(r.timestamp),
                    int(r.step),
                    r.run_id,
                    r.dataset_name,
                    r.dataset_digest,
                )
            )
        return [
            LoggedModel(
                model_id=r.model_id,
                experiment_id=str(r.experiment_id),
                name=r.name,
                artifact_location=r.artifact_location,
                status=r.status,
                creation_time=int(r.creation_time),
                last_updated_time=int(r.last_updated_time),
                source_run_id=r.source_run_id,
                model_type=r.model_type,
                tags=extra[r.model_id]["tags"],
                params=extra[r.model_id]["params"],
                metrics=metrics[r.model_id],
            )
            for r in rows
        ]

    def get(self, model_id: str) -> LoggedModel:
        with self.db.read() as conn:
            return self._get(conn, model_id)

    def set_status(self, model_id: str, status: str) -> LoggedModel:
        """Finalise (READY) or fail an upload. READY is final: its files are then written
        once (the artifact proxy refuses changes), so nothing may reopen it."""
        if status not in STATUSES:
            raise InvalidParameter(
                f"unknown logged model status {status!r}; use one of {', '.join(STATUSES)}",
                field="status",
            )
        with self.db.write() as conn:
            current = self._row(conn, model_id).status
            if current == READY and status != READY:
                raise InvalidState(
                    f"logged model {model_id} is finalized (READY) and its files are "
                    f"immutable; it cannot become {status}. Log a new model instead",
                    field="status",
                )
            conn.execute(
                update(logged_models)
                .where(logged_models.c.model_id == model_id)
                .values(status=status, last_updated_time=now_ms())
            )
            return self._get(conn, model_id)

    def finalized_overlapping(self, path: str) -> str | None:
        """The id of a finalized (READY) logged model whose files ``path`` names, lies
        inside or contains — what a write or delete at ``path`` would change — or None."""
        parts = path.split("/")
        if len(parts) >= 4 and parts[1] != "models":
            return None  # inside a run's folder (<exp>/<run>/artifacts/…): no query needed
        c = logged_models.c
        overlaps = or_(
            c.artifact_location == path,
            and_(c.artifact_location >= f"{path}/", c.artifact_location < f"{path}0"),
        )
        if len(parts) > 4 and parts[1] == "models" and parts[3] == "artifacts":
            overlaps = or_(overlaps, c.artifact_location == "/".join(parts[:4]))
        with self.db.read() as conn:
            return conn.execute(
                select(c.model_id).where(c.status == READY, overlaps).limit(1)
            ).scalar()

    def set_tags(self, model_id: str, tags: Mapping[str, str]) -> None:
        with self.db.write() as conn:
            self._row(conn, model_id)
            self._put(conn, logged_model_tags, model_id, tags)

    def delete_tag(self, model_id: str, key: str) -> None:
        with self.db.write() as conn:
            self._row(conn, model_id)
            c = logged_model_tags.c
            gone = conn.execute(
                delete(logged_model_tags).where(c.model_id == model_id, c.key == key)
            ).rowcount
            if not gone:
                raise NotFound(
                    f"No tag with key {key!r} found for logged model {model_id}", field="key"
                )

    def log_params(self, model_id: str, params: Mapping[str, str]) -> None:
        with self.db.write() as conn:
            self._row(conn, model_id)
            self._put(conn, logged_model_params, model_id, params)

    def record_outputs(self, run_id: str, outputs: Sequence[tuple[str, int]]) -> None:
        """``run_id`` produced these ``(model_id, step)`` logged models (MLflow's
        ``runs/outputs``): shown as the run's model outputs, and a lineage edge each."""
        with self.db.write() as conn:
            for model_id, step in outputs:
                self._row(conn, model_id)
                self._link(conn, run_id, model_id, OUTPUT, step)
            edges = [(node("run", run_id), node("logged_model", m), PRODUCED) for m, _ in outputs]
            record_edges(conn, edges)

    def record_inputs(self, run_id: str, model_ids: Sequence[str]) -> None:
        """``run_id`` used these logged models (``log_inputs(models=…)``)."""
        with self.db.write() as conn:
            for model_id in model_ids:
                self._row(conn, model_id)
                self._link(conn, run_id, model_id, INPUT, 0)
            edges = [(node("logged_model", m), node("run", run_id), INPUT) for m in model_ids]
            record_edges(conn, edges)

    @staticmethod
    def _link(conn: Connection, run_id: str, model_id: str, direction: str, step: int) -> None:
        c = logged_model_runs.c
        conn.execute(
            delete(logged_model_runs).where(
                c.run_id == run_id, c.model_id == model_id, c.direction == direction
            )
        )
        conn.execute(
            insert(logged_model_runs).values(
                run_id=run_id, model_id=model_id, direction=direction, step=step
            )
        )

    def models_of_run(self, run_id: str) -> tuple[list[str], list[tuple[str, int]]]:
        """The run's model inputs (ids) and outputs (``(model_id, step)``), oldest first."""
        c = logged_model_runs.c
        with self.db.read() as conn:
            rows = conn.execute(
                select(c.model_id, c.direction, c.step)
                .where(c.run_id == run_id)
                .order_by(c.direction, c.model_id)
            ).all()
        inputs = [r.model_id for r in rows if r.direction == INPUT]
        outputs = [(r.model_id, int(r.step)) for r in rows if r.direction == OUTPUT]
        return inputs, outputs

    def log_metrics(self, model_id: str, run_id: str, metrics: Sequence[ModelMetric]) -> None:
        """Points ``run_id`` logged against the model (the run keeps them too)."""
        with self.db.write() as conn:
            self._row(conn, model_id)
            conn.execute(
                insert(logged_model_metrics),
                [
                    {
                        "model_id": model_id,
                        "key": p.key,
                        "value": p.value,
                        "timestamp": p.timestamp,
                        "step": p.step,
                        "run_id": run_id,
                        "dataset_name": p.dataset_name,
                        "dataset_digest": p.dataset_digest,
                    }
                    for p in metrics
                ],
            )

    def delete(self, model_id: str) -> None:
        with self.db.write() as conn:
            self._row(conn, model_id)
            conn.execute(delete(logged_models).where(logged_models.c.model_id == model_id))

    def search(
        self,
        experiment_ids: Sequence[str],
        max_results: int = 100,
        page_token: str | None = None,
        filter_string: str | None = None,
        datasets: Sequence[DatasetRef] = (),
        order_by: Sequence[ModelOrder] = (),
    ) -> Page[LoggedModel]:
        """Models of ``experiment_ids`` matching MLflow's ``filter_string``, restricted to
        models with metrics on ``datasets`` when given; newest first unless ``order_by``
        says otherwise. Pages seek (``store/keyset.py``) unless the order names a column
        that may be NULL (``model_type``, ``source_run_id``)."""
        ids = [int(e) for e in experiment_ids if str(e).isdigit()]
        clauses = parse_filter(filter_string, LOGGED_MODELS) if filter_string else []
        query, keys = logged_models_statement(ids, clauses, datasets, order_by)
        with self.db.read() as conn:
            rows, token = fetch_page(conn, query, keys, "logged_models", page_token, max_results)
            return Page(self._entities(conn, rows), token)


def _run_exists(conn: Connection, run_id: str) -> bool:
    runs = tracking_tables.runs
    return conn.execute(select(runs.c.run_id).where(runs.c.run_id == run_id)).first() is not None
