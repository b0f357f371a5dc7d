"""Pipeline schedules: a registered pipeline started at the ticks of a cron schedule.

``modelyard schedule create retrain-demand --cron "0 3 * * *" --param days=30`` names a
pipeline registered with ``modelyard pipelines register`` (or
``PipelineRegistry.register``), a cron schedule in UTC (``monitoring.schedule``'s
grammar: the one cron parser) and params over the pipeline's defaults. Everything is
checked now — the pipeline exists, the schedule fires, the params bind to the function
(required ones included) — so a typo fails here and not at 3 a.m.

``due`` answers which tick a schedule should fire for now. The policy, the same in every
scheduler process:

* a tick fires once: its firing row (``firings``) is keyed by schedule and tick;
* ticks missed while no scheduler ran are coalesced: the next scheduler fires the latest
  missed tick once, as soon as it starts, and not the older ones (a retraining of
  yesterday's data is not worth running after today's);
* a paused schedule's ticks are not fired, and not caught up on ``resume``; a new
  schedule fires from its first tick after creation.

>>> schedules = Schedules(db)                                              # doctest: +SKIP
>>> schedules.create("retrain-demand", "0 3 * * *", {"days": 30},
...                  name="nightly")                                   # doctest: +SKIP
"""

from __future__ import annotations

import builtins
import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import delete, insert, select, update

from modelyard.errors import AlreadyExists, InvalidParameter, NotFound
from modelyard.ids import now_ms
from modelyard.monitoring.schedule import CronSchedule, parse_cron
from modelyard.monitoring.scheduler import latest_tick
from modelyard.pipelines.definitions import check_name
from modelyard.pipelines.executors import DEFAULT_EXECUTOR, check_executor
from modelyard.pipelines.loading import load_target
from modelyard.pipelines.schedule_tables import pipeline_schedules
from modelyard.pipelines.store import PipelineStore
from modelyard.store.engine import Database

__all__ = ["Schedule", "Schedules", "latest_due_tick"]

#: Windows looked back through for the latest tick, shortest first: the latest tick in
#: the first window holding one is the latest of all, and a monthly schedule's year is a
#: dozen steps while a minutely schedule finds its tick in the first hour.
_LOOKBACKS = (
    timedelta(hours=1),
    timedelta(days=1),
    timedelta(days=8),
    timedelta(days=32),
    timedelta(days=367),
    timedelta(days=366 * 8),
)


@dataclass(frozen=True, slots=True)
class Schedule:
    """A stored schedule. ``since``: ticks after it are due (creation, or the last resume)."""

    name: str
    pipeline: str
    cron: str
    params: dict[str, Any]
    executor: str
    paused: bool
    since: int
    created_at: int
    updated_at: int

    @property
    def cron_schedule(self) -> CronSchedule:
        return parse_cron(self.cron, field="cron")

    def to_dict(self) -> dict[str, Any]:
        return {name: getattr(self, name) for name in self.__slots__}


def latest_due_tick(cron: CronSchedule, after_ms: int, now: int) -> int | None:
    """The latest tick in ``(after_ms, now]`` (ms), however long ago ``after_ms`` was."""
    for window in _LOOKBACKS:
        start = max(after_ms, now - int(window.total_seconds() * 1000))
        tick = latest_tick(cron, start, now)
        if tick is not None or start == after_ms:
            return tick
    return None


def _schedule(row: Any) -> Schedule:
    return Schedule(
        name=row.name,
        pipeline=row.pipeline,
        cron=row.cron,
        params=json.loads(row.params),
        executor=row.executor,
        paused=bool(row.paused),
        since=row.since,
        created_at=row.created_at,
        updated_at=row.updated_at,
    )


class Schedules:
    """Create, list, pause, resume and delete pipeline schedules."""

    def __init__(self, db: Database, *, clock: Callable[[], int] = now_ms) -> None:
        self.db = db
        self.clock = clock
        self.pipelines = PipelineStore(db)

    def create(
        self,
        pipeline: str,
        cron: str,
        params: Mapping[str, Any] | None = None,
        *,
        name: str | None = None,
        executor: str = DEFAULT_EXECUTOR,
    ) -> Schedule:
        """Schedule the registered ``pipeline`` (the schedule is named ``name``, by default
        the pipeline's name)."""
        name = check_name(name or pipeline, "schedule")
        parse_cron(cron, field="cron")
        check_executor(executor)
        if params is not None and not isinstance(params, Mapping):
            raise InvalidParameter("params must be a mapping of name to value", field="params")
        definition = self.pipelines.definition(pipeline)
        given = dict(params or {})
        load_target(definition.target).bind_params({**definition.params, **given})
        now = self.clock()
        row = {
            "name": name,
            "pipeline": pipeline,
            "cron": cron.strip(),
            "params": json.dumps(given, sort_keys=True),
            "executor": executor,
            "paused": False,
            "since": now,
            "created_at": now,
            "updated_at": now,
        }
        c = pipeline_schedules.c
        with self.db.write() as conn:
            if conn.execute(select(c.name).where(c.name == name)).first() is not None:
                raise AlreadyExists(
                    f"schedule {name!r} exists; delete it first, or give another --name",
                    field="name",
                )
            conn.execute(insert(pipeline_schedules).values(**row))
        return self.get(name)

    def get(self, name: str) -> Schedule:
        c = pipeline_schedules.c
        with self.db.read() as conn:
            row = conn.execute(select(pipeline_schedules).where(c.name == name)).first()
        if row is None:
            raise NotFound(f"no schedule {name!r} (`modelyard schedule list`)", field="name")
        return _schedule(row)

    def list(self, *, active_only: bool = False) -> builtins.list[Schedule]:
        c = pipeline_schedules.c
        query = select(pipeline_schedules).order_by(c.name)
        if active_only:
            query = query.where(c.paused.is_(False))
        with self.db.read() as conn:
            return [_schedule(r) for r in conn.execute(query)]

    def delete(self, name: str) -> None:
        """Remove the schedule (its firings stay: they are the history of its runs)."""
        c = pipeline_schedules.c
        with self.db.write() as conn:
            if conn.execute(delete(pipeline_schedules).where(c.name == name)).rowcount != 1:
                raise NotFound(f"no schedule {name!r}", field="name")

    def pause(self, name: str) -> Schedule:
        return self._set(name, paused=True)

    def resume(self, name: str) -> Schedule:
        """Fire again from the next tick: the ticks passed while paused are not caught up."""
        if not self.get(name).paused:
            return self.get(name)
        return self._set(name, paused=False, since=self.clock())

    def _set(self, name: str, **values: Any) -> Schedule:
        c = pipeline_schedules.c
        with self.db.write() as conn:
            changed = conn.execute(
                update(pipeline_schedules)
                .where(c.name == name)
                .values(updated_at=self.clock(), **values)
            ).rowcount
        if changed != 1:
            raise NotFound(f"no schedule {name!r}", field="name")
        return self.get(name)

    def due(self, schedule: Schedule, last_fired: int | None, now: int) -> int | None:
        """The tick ``schedule`` should fire for at ``now`` (ms), if any: the latest tick
        after both its ``since`` and the last tick it fired for (missed ticks coalesce)."""
        if schedule.paused:
            return None
        after = max(schedule.since, last_fired if last_fired is not None else schedule.since)
        return latest_due_tick(schedule.cron_schedule, after, now)


def tick_text(tick_ms: int) -> str:
    """A tick as people read it in a cause: ``2026-12-06T03:00:00Z``."""
    return datetime.fromtimestamp(tick_ms / 1000, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
