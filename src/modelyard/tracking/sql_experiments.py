"""Experiments in the SQL tracking store, and the helpers every SQL listing shares.

``SqlTrackingStore`` mixes this in; it lives apart because experiments change rarely and
through SQLAlchemy Core, while runs and their values take the hot raw-cursor paths.
Experiment search parses MLflow's filter with the one grammar (``search_filter``) and
filters, orders and pages in SQL.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Container, Sequence
from typing import Any

from sqlalchemy import Connection, Select, String, cast, delete, insert, select, update
from sqlalchemy.exc import IntegrityError

from modelyard.errors import AlreadyExists, InvalidParameter, NotFound
from modelyard.ids import now_ms
from modelyard.store.engine import Database
from modelyard.store.keyset import SortKey, fetch_page
from modelyard.tracking import revisions
from modelyard.tracking import tables as t
from modelyard.tracking.checks import check_experiment_name
from modelyard.tracking.entities import Experiment, LifecycleStage, Page, ViewType
from modelyard.tracking.search_filter import (
    EXPERIMENTS,
    Clause,
    OrderKey,
    parse_filter,
    parse_order_by,
)
from modelyard.tracking.search_query import compare, keyed_condition
from modelyard.tracking.tag_probe import checked_per_row, plan_tags

DEFAULT_EXPERIMENT_ID = "0"
DEFAULT_EXPERIMENT_NAME = "Default"
MAX_SEARCH_RESULTS = 50_000


def artifact_location_for(experiment_id: str) -> str:
    return f"mlflow-artifacts:/{experiment_id}"


class SqlExperiments:
    """Create, find, list, rename, delete and restore experiments."""

    db: Database

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
        key = experiment_pk(experiment_id)
        with self.db.read() as conn:
            found = self._experiments(conn, t.experiments.c.experiment_id == key)
        if not found:
            raise NotFound(f"No Experiment with id={experiment_id} exists", field="experiment_id")
        return found[0]

    def get_experiment_by_name(self, name: str) -> Experiment | None:
        with self.db.read() as conn:
            found = self._experiments(conn, t.experiments.c.name == name)
        return found[0] if found else None

    def search_experiments(
        self,
        view_type: ViewType = ViewType.ACTIVE_ONLY,
        max_results: int = 1000,
        filter_string: str | None = None,
        page_token: str | None = None,
        order_by: Sequence[str] | None = None,
    ) -> Page[Experiment]:
        check_max_results(max_results)
        clauses = parse_filter(filter_string, EXPERIMENTS)
        stages = stages_for(ViewType(view_type))
        order = parse_order_by(list(order_by or []), EXPERIMENTS)
        with self.db.read() as conn:
            tags = t.experiment_tags
            owners = [(tags.c.experiment_id, t.experiments.c.experiment_id)]
            plan = plan_tags(conn, tags, owners, clauses)  # ``tag_probe.py``
            stmt, keys = experiment_search_statement(plan.rest(clauses), stages, order, plan.common)
            if plan.drive is not None:  # a selective tag clause drives, exactly
                stmt = stmt.where(plan.drive.condition)
            rows, token = fetch_page(conn, stmt, keys, "experiments", page_token, max_results)
            ids = [r.experiment_id for r in rows]
            found = self._experiments(conn, t.experiments.c.experiment_id.in_(ids)) if ids else []
        rank = {str(key): index for index, key in enumerate(ids)}
        found.sort(key=lambda e: rank[e.experiment_id])
        return Page(found, token)

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
        key = experiment_pk(experiment_id)
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
            # Bumped after the move, by the stage they are in now (see bump_experiment_runs).
            conn.execute(
                revisions.bump_experiment_runs(self.db.dialect),
                {"experiment_id": key, "lifecycle_stage": stage.value},
            )

    def _update_experiment(
        self, experiment_id: str, conn: Connection | None = None, **values: object
    ) -> None:
        key = experiment_pk(experiment_id)
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
            raise NotFound(f"No Experiment with id={experiment_id} exists", field="experiment_id")

    def set_experiment_tag(self, experiment_id: str, key: str, value: str) -> None:
        pk = experiment_pk(experiment_id)
        self.get_experiment(experiment_id)
        with self.db.write() as conn:
            conn.execute(
                delete(t.experiment_tags).where(
                    t.experiment_tags.c.experiment_id == pk, t.experiment_tags.c.key == key
                )
            )
            conn.execute(insert(t.experiment_tags).values(experiment_id=pk, key=key, value=value))

    def delete_experiment_tag(self, experiment_id: str, key: str) -> None:
        pk = experiment_pk(experiment_id)
        self.get_experiment(experiment_id)
        c = t.experiment_tags.c
        with self.db.write() as conn:
            gone = conn.execute(
                delete(t.experiment_tags).where(c.experiment_id == pk, c.key == key)
            ).rowcount
        if not gone:
            raise NotFound(
                f"No tag with name: {key} in experiment with id {experiment_id}", field="key"
            )


def stages_for(view_type: ViewType) -> list[str]:
    if view_type == ViewType.ACTIVE_ONLY:
        return [LifecycleStage.ACTIVE]
    if view_type == ViewType.DELETED_ONLY:
        return [LifecycleStage.DELETED]
    return [LifecycleStage.ACTIVE, LifecycleStage.DELETED]


def experiment_search_statement(
    clauses: list[Clause],
    stages: list[str],
    order_by: list[OrderKey],
    common: Container[Clause] = (),
) -> tuple[Select[Any], list[SortKey]]:
    """``SELECT experiment_id`` (and the sort columns) of the experiments in ``stages``
    matching every clause, and the order of its pages (``store/keyset.py``).

    Without ``order_by`` they come in id order; with it, ties are broken by id, newest
    first (MLflow's tie-breaker).
    """
    c = t.experiments.c
    keys: list[SortKey] = []
    for k in order_by:
        if all(key.column.name != k.key for key in keys):  # a repeat orders nothing
            keys.append(SortKey(c[k.key], k.ascending))
    if not any(key.column.name == "experiment_id" for key in keys):
        keys.append(SortKey(c.experiment_id, not order_by))
    columns = [c.experiment_id, *(k.column for k in keys if k.column.name != "experiment_id")]
    stmt = select(*columns).where(c.lifecycle_stage.in_(stages))
    for clause in clauses:
        stmt = stmt.where(_experiment_condition(clause, clause in common))
    return stmt, keys


def _experiment_condition(clause: Clause, common: bool = False) -> Any:
    """``clause`` on an experiment; ``common``: a tag clause the probe found common, tested
    row by row (``tag_probe.checked_per_row``)."""
    c = t.experiments.c
    if clause.kind == "tag":
        tags = t.experiment_tags
        same = tags.c.experiment_id == c.experiment_id
        if common:
            return checked_per_row(tags, same, clause)
        return keyed_condition(tags, same, clause)
    if clause.key != "experiment_id":
        return compare(c[clause.key], clause.op, clause.value)
    if clause.op in ("LIKE", "ILIKE"):
        return compare(cast(c.experiment_id, String), clause.op, clause.value)
    if isinstance(clause.value, tuple):  # ids are integers: compare them as such
        return compare(c.experiment_id, clause.op, tuple(_filter_id(v) for v in clause.value))
    return compare(c.experiment_id, clause.op, _filter_id(str(clause.value)))


def _filter_id(value: str) -> int:
    try:
        return experiment_pk(value)
    except InvalidParameter:
        raise InvalidParameter(
            f"experiment_id is compared with a non-negative integer in quotes, got {value!r:.80}",
            field="filter",
        ) from None


def experiment_pk(experiment_id: str) -> int:
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


def check_max_results(max_results: int, cap: int = MAX_SEARCH_RESULTS) -> None:
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
