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
from modelyard.ids import now_ms
from modelyard.registry.entities import LoggedModel
from modelyard.registry.tables import logged_model_params, logged_model_tags, logged_models
from modelyard.store.engine import Database
from modelyard.store.lineage import node, record_edges
from modelyard.tracking.entities import Page

PENDING = "LOGGED_MODEL_PENDING"
READY = "LOGGED_MODEL_READY"
FAILED = "LOGGED_MODEL_UPLOAD_FAILED"
STATUSES = (PENDING, READY, FAILED)


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
        name: str,
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
                    name=name,
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
                record_edges(
                    conn, [(node("run", source_run_id), node("logged_model", model_id), "produced")]
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
            raise NotFound(f"logged model {model_id!r} does not exist", field="model_id")
        return row

    def _get(self, conn: Connection, model_id: str) -> LoggedModel:
        return self._entities(conn, [self._row(conn, model_id)])[0]

    def _entities(self, conn: Connection, rows: Sequence[Row[Any]]) -> list[LoggedModel]:
        ids = [r.model_id for r in rows]
        extra: dict[str, dict[str, dict[str, str]]] = {i: {"tags": {}, "params": {}} for i in ids}
        for kind, table in (("tags", logged_model_tags), ("params", logged_model_params)):
            for r in conn.execute(select(table).where(table.c.model_id.in_(ids))):
                extra[r.model_id][kind][r.key] = r.value
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
            conn.execute(delete(logged_model_tags).where(c.model_id == model_id, c.key == key))

    def log_params(self, model_id: str, params: Mapping[str, str]) -> None:
        with self.db.write() as conn:
            self._row(conn, model_id)
            self._put(conn, logged_model_params, model_id, params)

    def record_outputs(self, run_id: str, model_ids: Sequence[str]) -> None:
        """``run_id`` produced these logged models (MLflow's ``runs/outputs``)."""
        with self.db.write() as conn:
            for model_id in model_ids:
                self._row(conn, model_id)
            edges = [(node("run", run_id), node("logged_model", m), "produced") for m in model_ids]
            record_edges(conn, edges)

    def delete(self, model_id: str) -> None:
        with self.db.write() as conn:
            self._row(conn, model_id)
            conn.execute(delete(logged_models).where(logged_models.c.model_id == model_id))

    def search(
        self, experiment_ids: Sequence[str], max_results: int = 100, page_token: str | None = None
    ) -> Page[LoggedModel]:
        """Newest first; the page token is an offset."""
        offset = int(page_token) if page_token and page_token.isdigit() else 0
        c = logged_models.c
        query = select(logged_models).order_by(c.creation_time.desc(), c.model_id)
        ids = [int(e) for e in experiment_ids if str(e).isdigit()]
        if experiment_ids:
            query = query.where(c.experiment_id.in_(ids))
        with self.db.read() as conn:
            rows = conn.execute(query.offset(offset).limit(max_results + 1)).all()
            models = self._entities(conn, rows[:max_results])
        more = len(rows) > max_results
        return Page(models, str(offset + max_results) if more else None)
