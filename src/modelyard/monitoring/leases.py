"""Leases on monitors: at most one scheduler process evaluates a monitor at a time.

Several ``modelyard scheduler`` processes (or server threads) may run against one
metadata store. Before evaluating a monitor's window, a scheduler takes the monitor's
lease; a lease expires by itself after its time-to-live, so a crashed scheduler's
monitor is picked up by another one, and a long evaluation renews its lease as it goes.
Together with ``monitor_evaluations``' unique window, two schedulers never both write —
or notify about — the same window.

Taking a lease is one atomic statement, ``INSERT … ON CONFLICT (monitor) DO UPDATE …
WHERE the held lease has expired`` (SQLite and PostgreSQL alike), followed in the same
transaction by reading back whose token is stored: exactly one of any number of
concurrent callers finds its own. Every acquisition stores a new random token; renewing
and releasing name the token, so a scheduler whose lease was taken over (it expired)
can neither extend nor drop its successor's.

Times come from the caller's clock (milliseconds): schedulers on different machines
need clocks in step to well within a lease's time-to-live (NTP gives milliseconds).

>>> leases = MonitorLeases(db)                                  # doctest: +SKIP
>>> lease = leases.acquire("web-drift", holder="host-a:4711", ttl_s=300)  # doctest: +SKIP
>>> if lease:                                                    # doctest: +SKIP
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
from sqlalchemy.exc import IntegrityError

from modelyard.errors import Conflict, InvalidParameter, NotFound
from modelyard.ids import now_ms
from modelyard.monitoring.tables import monitor_leases
from modelyard.store.engine import Database
from modelyard.store.statements import insert_for

__all__ = ["Lease", "MonitorLeases", "default_holder"]


@dataclass(frozen=True, slots=True)
class Lease:
    """A held lease: valid until ``expires_at`` (ms), identified by ``token``."""

    monitor: str
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


class MonitorLeases:
    """Acquire, renew and release monitor leases in one metadata database."""

    def __init__(self, db: Database, *, clock: Callable[[], int] = now_ms) -> None:
        self.db = db
        self.clock = clock

    def acquire(self, monitor: str, holder: str | None = None, *, ttl_s: float) -> Lease | None:
        """The monitor's lease for ``ttl_s`` seconds, or None when another holder has an
        unexpired one. A holder asking again gets a fresh lease (and token)."""
        ttl = _ttl_ms(ttl_s)
        holder = holder or default_holder()
        now = self.clock()
        token = secrets.token_hex(16)
        row = {
            "monitor": monitor,
            "holder": holder,
            "token": token,
            "acquired_at": now,
            "expires_at": now + ttl,
        }
        c = monitor_leases.c
        insert = insert_for(self.db.dialect, monitor_leases).values(**row)
        upsert = insert.on_conflict_do_update(
            index_elements=[c.monitor],
            set_={k: insert.excluded[k] for k in ("holder", "token", "acquired_at", "expires_at")},
            where=(c.expires_at <= now) | (c.holder == holder),
        )
        try:
            with self.db.write() as conn:
                conn.execute(upsert)
                stored = conn.execute(select(c.token).where(c.monitor == monitor)).scalar()
        except IntegrityError as exc:
            raise NotFound(f"no monitor {monitor!r}", field="monitor") from exc
        if stored != token:
            return None
        return Lease(monitor, holder, token, now, now + ttl)

    def renew(self, lease: Lease, *, ttl_s: float) -> Lease:
        """Extend ``lease`` to ``ttl_s`` seconds from now. Raises ``Conflict`` when it is no
        longer held: another holder took it over after it expired, or it was released.
        (A lease that expired but that nobody took is renewed: no one else worked.)"""
        ttl = _ttl_ms(ttl_s)
        now = self.clock()
        c = monitor_leases.c
        with self.db.write() as conn:
            changed = conn.execute(
                update(monitor_leases)
                .where(c.monitor == lease.monitor, c.token == lease.token)
                .values(expires_at=now + ttl)
            ).rowcount
        if changed != 1:
            raise Conflict(
                f"the lease on monitor {lease.monitor!r} held by {lease.holder!r} was lost "
                "(it expired and another scheduler took it, or it was released)",
                field="lease",
            )
        return Lease(lease.monitor, lease.holder, lease.token, lease.acquired_at, now + ttl)

    def release(self, lease: Lease) -> bool:
        """Give the lease up; False when it was no longer held (nothing is changed)."""
        c = monitor_leases.c
        with self.db.write() as conn:
            gone = conn.execute(
                delete(monitor_leases).where(c.monitor == lease.monitor, c.token == lease.token)
            ).rowcount
        return gone == 1

    def current(self, monitor: str) -> Lease | None:
        """The unexpired lease on ``monitor``, if any (for ``monitor show``)."""
        c = monitor_leases.c
        with self.db.read() as conn:
            row = conn.execute(select(monitor_leases).where(c.monitor == monitor)).first()
        if row is None or row.expires_at <= self.clock():
            return None
        return Lease(row.monitor, row.holder, row.token, row.acquired_at, row.expires_at)
