"""Leases: at most one process does a named piece of work at a time.

Several ``modelyard scheduler`` processes may run against one metadata store, for
availability. Before one evaluates a monitor's window, starts a schedule's run or an
alert's pipeline, it takes the lease named for that work — ``monitor:shop``,
``firing:schedule:nightly@1796526000000`` — in the one ``leases`` table. A lease expires by
itself after its time-to-live, so a crashed process's work is picked up by another one,
and long work renews its lease as it goes.

Taking a lease is one atomic statement, ``INSERT … ON CONFLICT (name) DO UPDATE … WHERE
the held lease has expired`` (SQLite and PostgreSQL alike), followed in the same
transaction by reading back whose token is stored: exactly one of any number of
concurrent callers finds its own. Every acquisition stores a new random token; renewing
and releasing name the token, so a process whose lease was taken over (it expired) can
neither extend nor drop its successor's.

Times come from the caller's clock (milliseconds): processes on different machines need
clocks in step to well within a lease's time-to-live (NTP gives milliseconds).

>>> leases = Leases(db)                                                   # doctest: +SKIP
>>> lease = leases.acquire("monitor:web", holder="host-a:4711", ttl_s=300)  # doctest: +SKIP
>>> if lease:                                                              # doctest: +SKIP
...     evaluate(...); leases.release(lease)
"""

from __future__ import annotations

import os
import secrets
import socket
import threading
from collections.abc import Callable
from dataclasses import dataclass

from sqlalchemy import delete, select, update

from modelyard.errors import Conflict, InvalidParameter
from modelyard.ids import now_ms
from modelyard.store.engine import Database
from modelyard.store.schema import leases as leases_table
from modelyard.store.statements import insert_for

__all__ = ["Lease", "Leases", "default_holder"]

#: The longest lease name: a kind, a colon, and the name of what it guards.
NAME_LENGTH = 512


@dataclass(frozen=True, slots=True)
class Lease:
    """A held lease: valid until ``expires_at`` (ms), identified by ``token``."""

    name: str
    holder: str
    token: str
    acquired_at: int
    expires_at: int


def default_holder() -> str:
    """``host:pid:thread``: who holds a lease, as an operator reads it."""
    return f"{socket.gethostname()}:{os.getpid()}:{threading.get_ident()}"


def _ttl_ms(ttl_s: float) -> int:
    if isinstance(ttl_s, bool) or not isinstance(ttl_s, int | float) or not ttl_s > 0:
        raise InvalidParameter(f"ttl_s must be a positive number, got {ttl_s!r}", field="ttl_s")
    return max(1, round(ttl_s * 1000))


def _check_name(name: object) -> str:
    if not isinstance(name, str) or not name or len(name) > NAME_LENGTH:
        raise InvalidParameter(
            f"a lease name is 1-{NAME_LENGTH} characters such as 'monitor:web', got {name!r}",
            field="name",
        )
    return name


class Leases:
    """Acquire, renew and release named leases in one metadata database."""

    def __init__(self, db: Database, *, clock: Callable[[], int] = now_ms) -> None:
        self.db = db
        self.clock = clock

    def acquire(self, name: str, holder: str | None = None, *, ttl_s: float) -> Lease | None:
        """The lease ``name`` for ``ttl_s`` seconds, or None when another holder has an
        unexpired one. A holder asking again gets a fresh lease (and token)."""
        _check_name(name)
        ttl = _ttl_ms(ttl_s)
        holder = holder or default_holder()
        now = self.clock()
        token = secrets.token_hex(16)
        row = {
            "name": name,
            "holder": holder,
            "token": token,
            "acquired_at": now,
            "expires_at": now + ttl,
        }
        c = leases_table.c
        insert = insert_for(self.db.dialect, leases_table).values(**row)
        upsert = insert.on_conflict_do_update(
            index_elements=[c.name],
            set_={k: insert.excluded[k] for k in ("holder", "token", "acquired_at", "expires_at")},
            where=(c.expires_at <= now) | (c.holder == holder),
        )
        with self.db.write() as conn:
            conn.execute(upsert)
            stored = conn.execute(select(c.token).where(c.name == name)).scalar()
        if stored != token:
            return None
        return Lease(name, holder, token, now, now + ttl)

    def renew(self, lease: Lease, *, ttl_s: float) -> Lease:
        """Extend ``lease`` to ``ttl_s`` seconds from now. Raises ``Conflict`` when it is no
        longer held: another holder took it over after it expired, or it was released.
        (A lease that expired but that nobody took is renewed: no one else worked.)"""
        ttl = _ttl_ms(ttl_s)
        now = self.clock()
        c = leases_table.c
        with self.db.write() as conn:
            changed = conn.execute(
                update(leases_table)
                .where(c.name == lease.name, c.token == lease.token)
                .values(expires_at=now + ttl)
            ).rowcount
        if changed != 1:
            raise Conflict(
                f"the lease {lease.name!r} held by {lease.holder!r} was lost (it expired "
                "and another process took it, or it was released)",
                field="lease",
            )
        return Lease(lease.name, lease.holder, lease.token, lease.acquired_at, now + ttl)

    def release(self, lease: Lease) -> bool:
        """Give the lease up; False when it was no longer held (nothing is changed)."""
        c = leases_table.c
        with self.db.write() as conn:
            gone = conn.execute(
                delete(leases_table).where(c.name == lease.name, c.token == lease.token)
            ).rowcount
        return gone == 1

    def current(self, name: str) -> Lease | None:
        """The unexpired lease ``name``, if any (for ``monitor show``, ``schedule list``)."""
        c = leases_table.c
        with self.db.read() as conn:
            row = conn.execute(select(leases_table).where(c.name == name)).first()
        if row is None or row.expires_at <= self.clock():
            return None
        return Lease(row.name, row.holder, row.token, row.acquired_at, row.expires_at)
