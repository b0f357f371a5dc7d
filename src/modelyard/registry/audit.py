"""The append-only, hash-chained audit trail of registry and deployment events.

Each entry stores ``hash = sha256(prev_hash + canonical JSON of the event)``, where the
event is its sequence number, time, actor, action, entity and the before/after values; the
first entry chains from ``GENESIS``. Editing any field of an entry changes its hash;
deleting or reordering entries breaks the ``seq`` run or the ``prev_hash`` links; deleting
the newest entries disagrees with ``audit_head``. ``verify`` walks the chain and names the
first bad entry.

Appends happen inside the caller's write transaction (so an event is recorded if and only
if the change it describes commits) and are serialised: ``BEGIN IMMEDIATE`` on SQLite, a
row lock on ``audit_head`` on PostgreSQL.

What a chain cannot do alone: someone with write access to the database can rewrite every
entry and recompute every hash. Keep the head hash that ``verify`` prints somewhere else
(a ticket, a log shipper) and pass it back as ``anchor``: verification then also proves the
history up to that point is unchanged.

Other rooms (deployments, rollbacks) record their events with ``append`` too.

>>> from modelyard.store.engine import open_database
>>> from modelyard.store.migrations import ensure_schema
>>> db = open_database(f"sqlite:///{tmp_home / 'modelyard.db'}")
>>> ensure_schema(db)
>>> with db.write() as conn:
...     event = append(conn, actor="ana", action="deployment.create", entity="deployment:web",
...                    after={"model": "models:/churn/3"})
>>> event.seq, verify(db).ok
(1, True)
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from importlib import import_module
from typing import Any

from sqlalchemy import Connection, Row, select, update

from modelyard.ids import now_ms
from modelyard.registry.entities import AuditEvent
from modelyard.registry.tables import audit_events, audit_head
from modelyard.store.engine import Database

GENESIS = "0" * 64
_HEAD_ID = 1
_PAGE = 2000


def canonical_json(value: Any) -> str:
    """One spelling per value: sorted keys, no spaces, UTF-8 kept (what gets hashed)."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def event_payload(
    seq: int,
    ts: int,
    actor: str,
    action: str,
    entity: str,
    model_name: str | None,
    before: Any,
    after: Any,
) -> dict[str, Any]:
    return {
        "seq": seq,
        "ts": ts,
        "actor": actor,
        "action": action,
        "entity": entity,
        "model_name": model_name,
        "before": before,
        "after": after,
    }


def chain_hash(prev_hash: str, payload: Mapping[str, Any]) -> str:
    return hashlib.sha256((prev_hash + canonical_json(payload)).encode("utf-8")).hexdigest()


def append(
    conn: Connection,
    *,
    actor: str,
    action: str,
    entity: str,
    model_name: str | None = None,
    before: Mapping[str, Any] | None = None,
    after: Mapping[str, Any] | None = None,
) -> AuditEvent:
    """Append one event inside ``conn``'s write transaction and return it.

    ``before``/``after`` must be JSON-serialisable; they are stored canonically.
    """
    head = _lock_head(conn)
    seq, prev = int(head.seq) + 1, str(head.hash)
    ts = now_ms()
    before_v = None if before is None else json.loads(canonical_json(dict(before)))
    after_v = None if after is None else json.loads(canonical_json(dict(after)))
    payload = event_payload(seq, ts, actor, action, entity, model_name, before_v, after_v)
    digest = chain_hash(prev, payload)
    conn.execute(
        audit_events.insert().values(
            seq=seq,
            ts=ts,
            actor=actor,
            action=action,
            entity=entity,
            model_name=model_name,
            before=None if before_v is None else canonical_json(before_v),
            after=None if after_v is None else canonical_json(after_v),
            prev_hash=prev,
            hash=digest,
        )
    )
    conn.execute(update(audit_head).where(audit_head.c.id == _HEAD_ID).values(seq=seq, hash=digest))
    return AuditEvent(seq, ts, actor, action, entity, model_name, before_v, after_v, prev, digest)


def _lock_head(conn: Connection) -> Row[int, str]:
    """The head row, created on first use and locked until the transaction ends."""
    dialect = import_module(f"sqlalchemy.dialects.{conn.dialect.name}")  # loaded on first use
    conn.execute(
        dialect.insert(audit_head)
        .values(id=_HEAD_ID, seq=0, hash=GENESIS)
        .on_conflict_do_nothing(index_elements=[audit_head.c.id])
    )
    query = select(audit_head.c.seq, audit_head.c.hash).where(audit_head.c.id == _HEAD_ID)
    return conn.execute(query.with_for_update()).one()


# -- reading ----------------------------------------------------------------------------


def _event(row: Row[Any]) -> AuditEvent:
    return AuditEvent(
        seq=int(row.seq),
        ts=int(row.ts),
        actor=row.actor,
        action=row.action,
        entity=row.entity,
        model_name=row.model_name,
        before=None if row.before is None else json.loads(row.before),
        after=None if row.after is None else json.loads(row.after),
        prev_hash=row.prev_hash,
        hash=row.hash,
    )


def list_events(
    db: Database,
    model_name: str | None = None,
    *,
    limit: int | None = None,
    newest_first: bool = False,
) -> list[AuditEvent]:
    """Events in sequence order (or newest first), optionally of one model only."""
    query = select(audit_events)
    if model_name is not None:
        query = query.where(audit_events.c.model_name == model_name)
    order = audit_events.c.seq.desc() if newest_first else audit_events.c.seq
    query = query.order_by(order)
    if limit is not None:
        query = query.limit(limit)
    with db.read() as conn:
        return [_event(row) for row in conn.execute(query)]


def _rows(db: Database) -> Iterator[Row[Any]]:
    """Every entry in ``seq`` order, a page at a time (the log may be long)."""
    after = None
    while True:
        query = select(audit_events).order_by(audit_events.c.seq).limit(_PAGE)
        if after is not None:
            query = query.where(audit_events.c.seq > after)
        with db.read() as conn:
            rows = conn.execute(query).all()
        yield from rows
        if len(rows) < _PAGE:
            return
        after = rows[-1].seq


@dataclass(frozen=True, slots=True)
class Verification:
    """The outcome of ``verify``: ``first_bad`` is the seq of the first entry that fails."""

    ok: bool
    checked: int
    head_hash: str
    first_bad: int | None = None
    problem: str | None = None

    def __str__(self) -> str:
        if self.ok:
            return f"audit trail intact: {self.checked} entries, head {self.head_hash}"
        return f"audit trail broken at entry #{self.first_bad}: {self.problem}"


def _payload_of(row: Row[Any]) -> dict[str, Any]:
    return event_payload(
        int(row.seq),
        int(row.ts),
        row.actor,
        row.action,
        row.entity,
        row.model_name,
        None if row.before is None else json.loads(row.before),
        None if row.after is None else json.loads(row.after),
    )


def verify(db: Database, anchor: str | None = None) -> Verification:
    """Walk the chain and report the first entry that was edited, deleted or moved.

    ``anchor`` is a head hash kept outside the database earlier; it must still be in the
    chain, which proves nothing up to it was rewritten wholesale.
    """
    expected_seq, prev, checked = 1, GENESIS, 0
    anchor_seen = anchor is None
    for row in _rows(db):
        seq = int(row.seq)
        if seq != expected_seq:
            what = "deleted" if seq > expected_seq else "duplicated or reordered"
            return _broken(checked, prev, expected_seq, f"entry #{expected_seq} was {what}")
        desc = f"{row.action} {row.entity} by {row.actor}"
        if row.prev_hash != prev:
            return _broken(
                checked,
                prev,
                seq,
                f"({desc}) does not follow the entry before it: an entry was deleted, "
                "inserted or reordered",
            )
        try:
            payload = _payload_of(row)
        except (TypeError, ValueError):
            return _broken(checked, prev, seq, f"({desc}) holds unreadable before/after JSON")
        if chain_hash(prev, payload) != row.hash:
            return _broken(checked, prev, seq, f"({desc}) was edited after it was recorded")
        prev, checked, expected_seq = row.hash, checked + 1, seq + 1
        anchor_seen = anchor_seen or prev == anchor
    with db.read() as conn:
        head = conn.execute(select(audit_head).where(audit_head.c.id == _HEAD_ID)).first()
    head_seq, head_hash = (0, GENESIS) if head is None else (int(head.seq), head.hash)
    if (head_seq, head_hash) != (checked, prev):
        return _broken(
            checked,
            prev,
            checked + 1 if head_seq > checked else head_seq,
            f"the trail ends at entry #{checked} but its head records entry #{head_seq}: "
            "the newest entries were deleted, or the head was altered",
        )
    if not anchor_seen:
        return _broken(
            checked, prev, None, f"anchor {anchor} is not in the chain: history was rewritten"
        )
    return Verification(True, checked, prev)


def _broken(checked: int, head: str, seq: int | None, problem: str) -> Verification:
    return Verification(False, checked, head, seq, problem)
