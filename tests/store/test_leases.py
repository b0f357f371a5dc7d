"""Leases: of any number of schedulers racing for a piece of work, exactly one gets it; an
expired lease is taken over, and the old holder can neither renew nor release it."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import time

import pytest

from modelyard.errors import Conflict, InvalidParameter
from modelyard.store.engine import open_database
from modelyard.store.leases import Leases

MONITORS = [f"monitor:m{i}" for i in range(30)]


class Clock:
    def __init__(self, now: int = 1_000_000) -> None:
        self.now = now

    def __call__(self) -> int:
        return self.now


def test_a_held_lease_is_refused_until_it_expires(sqlite_db):
    clock = Clock()
    leases = Leases(sqlite_db, clock=clock)
    a = leases.acquire("monitor:m", "a", ttl_s=60)
    assert a is not None and a.expires_at == clock.now + 60_000
    assert leases.acquire("monitor:m", "b", ttl_s=60) is None
    assert leases.current("monitor:m").holder == "a"
    clock.now += 60_000  # expired: b takes it over
    b = leases.acquire("monitor:m", "b", ttl_s=60)
    assert b is not None and b.token != a.token
    with pytest.raises(Conflict, match="was lost"):
        leases.renew(a, ttl_s=60)
    assert leases.release(a) is False  # a cannot drop b's lease
    assert leases.current("monitor:m").holder == "b"
    clock.now += 30_000
    b = leases.renew(b, ttl_s=60)
    assert b.expires_at == clock.now + 60_000
    clock.now += 59_000
    assert leases.acquire("monitor:m", "c", ttl_s=60) is None  # the renewal kept it
    assert leases.release(b) is True
    assert leases.current("monitor:m") is None
    assert leases.acquire("monitor:m", "c", ttl_s=60) is not None


def test_an_expired_lease_nobody_took_can_be_renewed(sqlite_db):
    clock = Clock()
    leases = Leases(sqlite_db, clock=clock)
    a = leases.acquire("monitor:m", "a", ttl_s=1)
    clock.now += 5_000
    assert leases.current("monitor:m") is None
    assert leases.renew(a, ttl_s=1).expires_at == clock.now + 1_000


def test_the_holder_asking_again_gets_a_fresh_lease(sqlite_db):
    leases = Leases(sqlite_db, clock=Clock())
    first = leases.acquire("monitor:m", "a", ttl_s=60)
    again = leases.acquire("monitor:m", "a", ttl_s=60)
    assert again is not None and again.token != first.token


def test_bad_calls_are_refused(sqlite_db):
    leases = Leases(sqlite_db)
    for name in ("", "x" * 513, None):
        with pytest.raises(InvalidParameter, match="lease name"):
            leases.acquire(name, "a", ttl_s=60)
    for bad in (0, -1, float("nan"), "60", True):
        with pytest.raises(InvalidParameter, match="ttl_s"):
            leases.acquire("monitor:m", "a", ttl_s=bad)


def test_threads_racing_for_each_name_get_it_exactly_once(metadata_db):
    uri = metadata_db.engine.url.render_as_string(hide_password=False)
    threads = 4
    won: dict[int, list[str]] = {i: [] for i in range(threads)}
    barrier = threading.Barrier(threads)

    def race(i: int) -> None:
        db = open_database(uri)  # its own engine and connections, as a process would have
        leases = Leases(db)
        try:
            for name in MONITORS:
                barrier.wait()
                if leases.acquire(name, f"thread-{i}", ttl_s=600) is not None:
                    won[i].append(name)
        finally:
            db.dispose()

    workers = [threading.Thread(target=race, args=(i,)) for i in range(threads)]
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    taken = [name for names in won.values() for name in names]
    assert sorted(taken) == sorted(MONITORS)  # each once: no monitor twice, none lost


RACER = """
import json, os, sys, time
from modelyard.store.leases import Leases
from modelyard.store.engine import open_database
uri, go, me = sys.argv[1:4]
db = open_database(uri)
leases = Leases(db)
leases.current("monitor:m0")  # connected
open(go + "." + me, "w").close()  # ready
while not os.path.exists(go):
    time.sleep(0.001)
names = [f"monitor:m{i}" for i in range(30)]
won = [n for n in names if leases.acquire(n, me, ttl_s=600) is not None]
db.dispose()
print(json.dumps(won))
"""


def test_two_processes_never_both_hold_a_lease(metadata_db, tmp_path):
    uri = metadata_db.engine.url.render_as_string(hide_password=False)
    go = tmp_path / "go"
    racers = [
        subprocess.Popen(
            [sys.executable, "-c", RACER, uri, str(go), f"process-{i}"],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for i in range(2)
    ]
    ready = [tmp_path / f"go.process-{i}" for i in range(2)]
    while not all(r.exists() for r in ready) and all(r.poll() is None for r in racers):
        time.sleep(0.01)  # both connected: start them together
    go.touch()
    results = []
    for racer in racers:
        out, err = racer.communicate(timeout=120)
        assert racer.returncode == 0, err
        results.append(set(json.loads(out)))
    assert not results[0] & results[1]
    assert results[0] | results[1] == set(MONITORS)
