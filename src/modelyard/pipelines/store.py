"""``PipelineStore``: the pipelines room's rows (``tables``), read and written by name.

A step becomes COMPLETED, its cache entry and its lineage edges are written in one
transaction (``complete_step``), so a reader sees all of a finished step or nothing.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import delete, insert, select, update

from modelyard.errors import AlreadyExists, NotFound
from modelyard.ids import now_ms
from modelyard.pipelines.tables import (
    pipeline_definitions,
    pipeline_runs,
    pipeline_step_cache,
    pipeline_steps,
)
from modelyard.store.engine import Database
from modelyard.store.lineage import record_edges

# Run and step statuses.
RUNNING = "RUNNING"
FINISHED = "FINISHED"
FAILED = "FAILED"
PENDING = "PENDING"
COMPLETED = "COMPLETED"
CACHED = "CACHED"
SKIPPED = "SKIPPED"
#: Step statuses whose outputs are stored and usable downstream.
DONE = frozenset({COMPLETED, CACHED})


@dataclass(frozen=True, slots=True)
class PipelineDefinition:
    """A named pipeline: what ``start`` imports (``target``) and its default params."""

    name: str
    target: str
    params: dict[str, Any]
    description: str | None
    created_at: int
    updated_at: int


@dataclass(frozen=True, slots=True)
class StepRecord:
    """One step call of a run, as stored. ``outputs``: output name → stored value JSON
    (``tasks.StoredValue.to_json`` plus its artifact ``path``), set once it is done."""

    run_id: str
    step_key: str
    step_name: str
    position: int
    step_run_id: str | None
    cache_key: str
    status: str
    reason: str | None
    attempts: int
    started_at: int | None
    ended_at: int | None
    duration_ms: int | None
    inputs: dict[str, Any]
    outputs: dict[str, Any] | None
    upstream: list[str]


@dataclass(frozen=True, slots=True)
class PipelineRunRecord:
    """One pipeline run: its tracking run id, what built it, why it ran, how it ended."""

    run_id: str
    pipeline: str
    target: str
    params: dict[str, Any]
    executor: str
    status: str
    cause: dict[str, Any] | None
    error: str | None
    started_at: int
    ended_at: int | None
    attempts: int
    steps: tuple[StepRecord, ...] = ()


def _dumps(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"), allow_nan=True)


def _loads(text: str | None) -> Any:
    return None if text is None else json.loads(text)


def _step(row: Any) -> StepRecord:
    return StepRecord(
        run_id=row.run_id,
        step_key=row.step_key,
        step_name=row.step_name,
        position=row.position,
        step_run_id=row.step_run_id,
        cache_key=row.cache_key,
        status=row.status,
        reason=row.reason,
        attempts=row.attempts,
        started_at=row.started_at,
        ended_at=row.ended_at,
        duration_ms=row.duration_ms,
        inputs=_loads(row.inputs),
        outputs=_loads(row.outputs),
        upstream=_loads(row.upstream),
    )


def _run(row: Any, steps: Sequence[StepRecord] = ()) -> PipelineRunRecord:
    return PipelineRunRecord(
        run_id=row.run_id,
        pipeline=row.pipeline,
        target=row.target,
        params=_loads(row.params),
        executor=row.executor,
        status=row.status,
        cause=_loads(row.cause),
        error=row.error,
        started_at=row.started_at,
        ended_at=row.ended_at,
        attempts=row.attempts,
        steps=tuple(steps),
    )


class PipelineStore:
    def __init__(self, db: Database) -> None:
        self.db = db

    # named pipelines ---------------------------------------------------------------
    def register(
        self,
        name: str,
        target: str,
        params: Mapping[str, Any],
        description: str | None,
        *,
        replace: bool,
    ) -> PipelineDefinition:
        c = pipeline_definitions.c
        now = now_ms()
        with self.db.write() as conn:
            found = conn.execute(select(c.created_at).where(c.name == name)).first()
            values = {
                "target": target,
                "params": _dumps(dict(params)),
                "description": description,
                "updated_at": now,
            }
            if found is None:
                conn.execute(
                    insert(pipeline_definitions).values(name=name, created_at=now, **values)
                )
            elif not replace:
                raise AlreadyExists(
                    f"pipeline {name!r} is already registered; pass replace=True "
                    "(`--replace`) to change it",
                    field="name",
                )
            else:
                conn.execute(update(pipeline_definitions).where(c.name == name).values(**values))
        return self.definition(name)

    def definition(self, name: str) -> PipelineDefinition:
        c = pipeline_definitions.c
        with self.db.read() as conn:
            row = conn.execute(select(pipeline_definitions).where(c.name == name)).first()
        if row is None:
            raise NotFound(
                f"no pipeline named {name!r} is registered (`modelyard pipelines register`)",
                field="name",
            )
        return PipelineDefinition(
            row.name, row.target, _loads(row.params), row.description, row.created_at,
            row.updated_at,
        )  # fmt: skip

    def definitions(self) -> list[PipelineDefinition]:
        with self.db.read() as conn:
            names = conn.execute(
                select(pipeline_definitions.c.name).order_by(pipeline_definitions.c.name)
            ).scalars()
            found = list(names)
        return [self.definition(n) for n in found]

    def unregister(self, name: str) -> None:
        c = pipeline_definitions.c
        with self.db.write() as conn:
            if conn.execute(delete(pipeline_definitions).where(c.name == name)).rowcount == 0:
                raise NotFound(f"no pipeline named {name!r} is registered", field="name")

    # runs --------------------------------------------------------------------------
    def create_run(
        self,
        run_id: str,
        *,
        pipeline: str,
        target: str,
        params: Mapping[str, Any],
        executor: str,
        cause: Mapping[str, Any] | None,
    ) -> None:
        with self.db.write() as conn:
            conn.execute(
                insert(pipeline_runs).values(
                    run_id=run_id,
                    pipeline=pipeline,
                    target=target,
                    params=_dumps(dict(params)),
                    executor=executor,
                    status=RUNNING,
                    cause=None if cause is None else _dumps(dict(cause)),
                    error=None,
                    started_at=now_ms(),
                    ended_at=None,
                    attempts=1,
                )
            )

    def resume_run(self, run_id: str, executor: str) -> None:
        c = pipeline_runs.c
        with self.db.write() as conn:
            conn.execute(
                update(pipeline_runs)
                .where(c.run_id == run_id)
                .values(
                    status=RUNNING,
                    error=None,
                    ended_at=None,
                    executor=executor,
                    attempts=c.attempts + 1,
                )
            )

    def end_run(self, run_id: str, status: str, error: str | None) -> None:
        c = pipeline_runs.c
        with self.db.write() as conn:
            conn.execute(
                update(pipeline_runs)
                .where(c.run_id == run_id)
                .values(status=status, error=error, ended_at=now_ms())
            )

    def get_run(self, run_id: str) -> PipelineRunRecord:
        with self.db.read() as conn:
            row = conn.execute(
                select(pipeline_runs).where(pipeline_runs.c.run_id == run_id)
            ).first()
            if row is None:
                raise NotFound(f"no pipeline run {run_id!r}", field="run_id")
            steps = conn.execute(
                select(pipeline_steps)
                .where(pipeline_steps.c.run_id == run_id)
                .order_by(pipeline_steps.c.position)
            ).all()
        return _run(row, [_step(s) for s in steps])

    def list_runs(self, pipeline: str | None = None, limit: int = 50) -> list[PipelineRunRecord]:
        c = pipeline_runs.c
        query = select(pipeline_runs).order_by(c.started_at.desc(), c.run_id).limit(limit)
        if pipeline is not None:
            query = query.where(c.pipeline == pipeline)
        with self.db.read() as conn:
            return [_run(row) for row in conn.execute(query).all()]

    # steps -------------------------------------------------------------------------
    def plan_steps(self, run_id: str, steps: Iterable[dict[str, Any]]) -> None:
        """Write PENDING rows for steps this run has no row for yet (a resumed run keeps
        the rows of what finished and resets the rest to PENDING)."""
        c = pipeline_steps.c
        with self.db.write() as conn:
            existing = {
                r.step_key: r.status
                for r in conn.execute(select(c.step_key, c.status).where(c.run_id == run_id)).all()
            }
            for s in steps:
                values = {
                    "step_name": s["step_name"],
                    "position": s["position"],
                    "upstream": _dumps(s["upstream"]),
                }
                if s["step_key"] not in existing:
                    conn.execute(
                        insert(pipeline_steps).values(
                            run_id=run_id,
                            step_key=s["step_key"],
                            cache_key="",
                            status=PENDING,
                            attempts=0,
                            inputs="{}",
                            **values,
                        )
                    )
                elif existing[s["step_key"]] not in DONE:
                    conn.execute(
                        update(pipeline_steps)
                        .where(c.run_id == run_id, c.step_key == s["step_key"])
                        .values(status=PENDING, reason=None, **values)
                    )

    def start_step(
        self,
        run_id: str,
        step_key: str,
        *,
        step_run_id: str,
        cache_key: str,
        inputs: Mapping[str, Any],
        attempts: int,
        started_at: int,
    ) -> None:
        c = pipeline_steps.c
        with self.db.write() as conn:
            conn.execute(
                update(pipeline_steps)
                .where(c.run_id == run_id, c.step_key == step_key)
                .values(
                    step_run_id=step_run_id,
                    cache_key=cache_key,
                    inputs=_dumps(dict(inputs)),
                    status=RUNNING,
                    reason=None,
                    attempts=attempts,
                    started_at=started_at,
                    ended_at=None,
                    duration_ms=None,
                    outputs=None,
                )
            )

    def set_attempts(self, run_id: str, step_key: str, attempts: int, reason: str) -> None:
        c = pipeline_steps.c
        with self.db.write() as conn:
            conn.execute(
                update(pipeline_steps)
                .where(c.run_id == run_id, c.step_key == step_key)
                .values(attempts=attempts, reason=reason)
            )

    def complete_step(
        self,
        run_id: str,
        step_key: str,
        *,
        status: str,
        outputs: Mapping[str, Any],
        reason: str | None,
        duration_ms: int,
        cache: tuple[str, str, str] | None,
        edges: Sequence[tuple[str, str, str]],
    ) -> None:
        """Mark a step done with its outputs, cache entry ``(cache_key, step_name,
        step_run_id)`` and lineage edges: one transaction."""
        c = pipeline_steps.c
        now = now_ms()
        with self.db.write() as conn:
            conn.execute(
                update(pipeline_steps)
                .where(c.run_id == run_id, c.step_key == step_key)
                .values(
                    status=status,
                    outputs=_dumps(dict(outputs)),
                    reason=reason,
                    ended_at=now,
                    duration_ms=duration_ms,
                )
            )
            if cache is not None:
                key, name, step_run_id = cache
                k = pipeline_step_cache.c
                conn.execute(delete(pipeline_step_cache).where(k.cache_key == key))
                conn.execute(
                    insert(pipeline_step_cache).values(
                        cache_key=key,
                        step_name=name,
                        step_run_id=step_run_id,
                        outputs=_dumps(dict(outputs)),
                        created_at=now,
                    )
                )
            record_edges(conn, edges)

    def fail_step(
        self, run_id: str, step_key: str, *, status: str, reason: str, duration_ms: int | None
    ) -> None:
        c = pipeline_steps.c
        with self.db.write() as conn:
            conn.execute(
                update(pipeline_steps)
                .where(c.run_id == run_id, c.step_key == step_key)
                .values(status=status, reason=reason, ended_at=now_ms(), duration_ms=duration_ms)
            )

    # cache -------------------------------------------------------------------------
    def cached(self, cache_key: str) -> tuple[str, dict[str, Any], int] | None:
        """``(step_run_id, outputs, created_at)`` stored for ``cache_key``, or None."""
        k = pipeline_step_cache.c
        with self.db.read() as conn:
            row = conn.execute(
                select(k.step_run_id, k.outputs, k.created_at).where(k.cache_key == cache_key)
            ).first()
        return None if row is None else (row.step_run_id, _loads(row.outputs), row.created_at)

    def forget_cached(self, cache_key: str) -> None:
        k = pipeline_step_cache.c
        with self.db.write() as conn:
            conn.execute(delete(pipeline_step_cache).where(k.cache_key == cache_key))
