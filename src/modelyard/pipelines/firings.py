"""Firings: each start of a pipeline the scheduler decided on, recorded exactly once.

A firing is named by what caused it: ``schedule:<name>@<tick ms>`` for a schedule's tick,
``alert:<id>`` for an alert's firing episode. ``claim`` inserts its row — the insert is
the decision, and the primary key lets exactly one of any number of schedulers make it
(``INSERT … ON CONFLICT DO NOTHING RETURNING``: a row comes back only to the
one that inserted it); the row outlives restarts, so a tick or an alert is never started twice.

The row then follows the run: ``claimed`` → ``running`` → ``finished`` | ``failed``
(``run_id`` set, ``detail`` saying why it failed). A schedule's tick that came while the
schedule's previous run was still going is claimed ``skipped`` at once (``detail`` names
that firing): no run, and the tick is spent. A scheduler that dies between claiming
and finishing leaves it claimed or running; ``unfinished`` lists those for the next
scheduler, which takes the firing's lease and finds the run by the firing named in its
cause (``PipelineScheduler.recover``).
"""

from __future__ import annotations

import builtins
import json
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from sqlalchemy import func, select, update

from modelyard.errors import NotFound
from modelyard.ids import now_ms
from modelyard.pipelines.schedule_tables import pipeline_firings
from modelyard.store.engine import Database
from modelyard.store.statements import insert_for

__all__ = [
    "CLAIMED",
    "FAILED",
    "FINISHED",
    "RUNNING",
    "SKIPPED",
    "Firing",
    "Firings",
    "alert_key",
]

CLAIMED = "claimed"
RUNNING = "running"
FINISHED = "finished"
FAILED = "failed"
SKIPPED = "skipped"
UNFINISHED = (CLAIMED, RUNNING)


def schedule_key(schedule: str, tick_ms: int) -> str:
    return f"schedule:{schedule}@{tick_ms}"


def alert_key(alert_id: int) -> str:
    return f"alert:{alert_id}"


@dataclass(frozen=True, slots=True)
class Firing:
    key: str
    kind: str  # schedule | alert
    source: str  # the schedule's name, or the alert's monitor
    pipeline: str
    due_at: int
    cause: dict[str, Any]
    status: str
    claimed_by: str
    claimed_at: int
    run_id: str | None
    detail: str | None
    ended_at: int | None

    def to_dict(self) -> dict[str, Any]:
        return {name: getattr(self, name) for name in self.__slots__}


def _firing(row: Any) -> Firing:
    return Firing(
        key=row.key,
        kind=row.kind,
        source=row.source,
        pipeline=row.pipeline,
        due_at=row.due_at,
        cause=json.loads(row.cause),
        status=row.status,
        claimed_by=row.claimed_by,
        claimed_at=row.claimed_at,
        run_id=row.run_id,
        detail=row.detail,
        ended_at=row.ended_at,
    )


class Firings:
    """The ``pipeline_firings`` rows of one metadata database."""

    def __init__(self, db: Database, *, clock: Callable[[], int] = now_ms) -> None:
        self.db = db
        self.clock = clock

    def claim(
        self,
        key: str,
        *,
        kind: str,
        source: str,
        pipeline: str,
        due_at: int,
        cause: Mapping[str, Any],
        holder: str,
        skipped: str | None = None,
    ) -> Firing | None:
        """The new firing if this call claimed ``key``; None when it was claimed before
        (by anyone, at any time). ``skipped``: why no run starts for it — the firing is
        claimed ``skipped``, ended, with that as its detail."""
        c = pipeline_firings.c
        row: dict[str, Any] = {
            "key": key,
            "kind": kind,
            "source": source,
            "pipeline": pipeline,
            "due_at": due_at,
            "cause": json.dumps(dict(cause), sort_keys=True),
            "status": CLAIMED if skipped is None else SKIPPED,
            "claimed_by": holder,
            "claimed_at": self.clock(),
            "run_id": None,
            "detail": skipped,
            "ended_at": None,
        }
        if skipped is not None:
            row["ended_at"] = row["claimed_at"]
        statement = insert_for(self.db.dialect, pipeline_firings).values(**row)
        # RETURNING answers a row only when this statement inserted it (rowcount is not
        # reliable for ON CONFLICT DO NOTHING across drivers).
        with self.db.write() as conn:
            inserted = conn.execute(
                statement.on_conflict_do_nothing(index_elements=[c.key]).returning(c.key)
            ).first()
        return Firing(**{**row, "cause": dict(cause)}) if inserted is not None else None

    def mark(
        self,
        key: str,
        status: str,
        *,
        run_id: str | None = None,
        detail: str | None = None,
    ) -> None:
        """Move ``key`` on: running, or finished | failed (with the run and the reason)."""
        c = pipeline_firings.c
        values: dict[str, Any] = {"status": status, "detail": detail}
        if run_id is not None:
            values["run_id"] = run_id
        if status in (FINISHED, FAILED):
            values["ended_at"] = self.clock()
        with self.db.write() as conn:
            changed = conn.execute(
                update(pipeline_firings).where(c.key == key).values(**values)
            ).rowcount
        if changed != 1:
            raise NotFound(f"no firing {key!r}", field="firing")

    def get(self, key: str) -> Firing:
        with self.db.read() as conn:
            row = conn.execute(select(pipeline_firings).where(pipeline_firings.c.key == key))
            found = row.first()
        if found is None:
            raise NotFound(f"no firing {key!r}", field="firing")
        return _firing(found)

    def existing(self, keys: Iterable[str]) -> set[str]:
        """Which of ``keys`` were claimed."""
        wanted = list(keys)
        if not wanted:
            return set()
        c = pipeline_firings.c
        with self.db.read() as conn:
            return set(conn.execute(select(c.key).where(c.key.in_(wanted))).scalars())

    def last_due(self, kind: str, source: str) -> int | None:
        """The latest ``due_at`` claimed for ``source`` (a schedule's last fired tick)."""
        c = pipeline_firings.c
        with self.db.read() as conn:
            value = conn.execute(
                select(func.max(c.due_at)).where(c.kind == kind, c.source == source)
            ).scalar()
        return None if value is None else int(value)

    def unfinished(self) -> builtins.list[Firing]:
        """Firings claimed or running: in flight, or left behind by a scheduler that died."""
        c = pipeline_firings.c
        query = select(pipeline_firings).where(c.status.in_(UNFINISHED)).order_by(c.claimed_at)
        with self.db.read() as conn:
            return [_firing(r) for r in conn.execute(query)]

    def list(
        self, *, kind: str | None = None, source: str | None = None, limit: int = 50
    ) -> builtins.list[Firing]:
        """Firings, newest due first."""
        c = pipeline_firings.c
        query = select(pipeline_firings).order_by(c.due_at.desc(), c.key).limit(limit)
        if kind is not None:
            query = query.where(c.kind == kind)
        if source is not None:
            query = query.where(c.source == source)
        with self.db.read() as conn:
            return [_firing(r) for r in conn.execute(query)]
