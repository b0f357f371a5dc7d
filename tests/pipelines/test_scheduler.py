"""The scheduler: a schedule's tick and an alert's firing each start their pipeline
exactly once — across restarts, after a scheduler died mid-way, and with two schedulers
racing on one database (SQLite and PostgreSQL, in two processes)."""

from __future__ import annotations

import json
import subprocess
import sys
import time

import pytest
from sqlalchemy import update

from modelyard.pipelines import PipelineRegistry, load_output, pipelines_store
from modelyard.pipelines.firings import Firings, alert_key
from modelyard.pipelines.scheduler import PipelineScheduler, lease_name
from modelyard.pipelines.schedules import Schedules
from modelyard.pipelines.tables import pipeline_runs
from modelyard.store.leases import Leases
from modelyard.tracking.backends import database_for

from .scheduler_yard import BASE, HOUR_MS, Clock, add_alert, iso, register

MINUTE_MS = 60_000


def scheduler(registry, clock, **options) -> PipelineScheduler:
    options.setdefault("background", False)  # runs finish inside tick(): no waiting
    return PipelineScheduler(registry, clock=clock, **options)


def runs_of(settings, pipeline="nightly"):
    return pipelines_store(settings).list_runs(pipeline, limit=500)


def test_a_tick_starts_its_run_once_and_a_restart_does_not_start_it_again(settings, tmp_path):
    registry = register(settings, tmp_path)
    clock = Clock()
    Schedules(registry.store.db, clock=clock).create("nightly", "0 * * * *", executor="local")
    clock.now = BASE + HOUR_MS + 5_000
    first = scheduler(registry, clock).tick()
    assert [f.key for f in first.started] == [f"schedule:nightly@{BASE + HOUR_MS}"]
    (run,) = runs_of(settings)
    assert run.status == "FINISHED"
    assert run.cause == {
        "kind": "schedule",
        "schedule": "nightly",
        "tick": iso(BASE + HOUR_MS),
        "firing": f"schedule:nightly@{BASE + HOUR_MS}",
    }
    firing = Firings(registry.store.db).get(first.started[0].key)
    assert (firing.status, firing.run_id) == ("finished", run.run_id)

    assert scheduler(registry, clock).tick().started == []  # the same scheduler, again
    clock.now += 30 * MINUTE_MS
    assert scheduler(registry, clock).tick().started == []  # "restarted": nothing due
    assert len(runs_of(settings)) == 1


def test_ticks_missed_while_down_run_once_for_the_latest(settings, tmp_path):
    registry = register(settings, tmp_path)
    clock = Clock()
    Schedules(registry.store.db, clock=clock).create("nightly", "0 * * * *", executor="local")
    clock.now = BASE + HOUR_MS
    scheduler(registry, clock).tick()
    clock.now = BASE + 6 * HOUR_MS + 20 * MINUTE_MS  # down across 02:00 … 06:00
    report = scheduler(registry, clock).tick()
    assert [f.due_at for f in report.started] == [BASE + 6 * HOUR_MS]
    assert [r.cause["tick"] for r in runs_of(settings)] == [
        iso(BASE + 6 * HOUR_MS),
        iso(BASE + HOUR_MS),
    ]


def test_a_paused_schedule_starts_nothing(settings, tmp_path):
    registry = register(settings, tmp_path)
    clock = Clock()
    schedules = Schedules(registry.store.db, clock=clock)
    schedules.create("nightly", "0 * * * *", executor="local")
    schedules.pause("nightly")
    clock.now = BASE + 3 * HOUR_MS
    assert scheduler(registry, clock).tick().started == []
    assert runs_of(settings) == []


def test_a_failing_pipeline_fails_its_firing_with_the_reason(settings, tmp_path):
    registry = register(settings, tmp_path)
    clock = Clock()
    schedules = Schedules(registry.store.db, clock=clock)
    schedules.create("nightly", "0 * * * *", {"failures": 9}, executor="local")
    clock.now = BASE + HOUR_MS
    (started,) = scheduler(registry, clock).tick().started
    firing = Firings(registry.store.db).get(started.key)
    (run,) = runs_of(settings)
    assert (firing.status, firing.run_id, run.status) == ("failed", run.run_id, "FAILED")
    assert "lost its connection" in firing.detail
    registry.unregister("nightly")  # a schedule whose pipeline is gone: failed, said so
    clock.now += HOUR_MS
    (started,) = scheduler(registry, clock).tick().started
    firing = Firings(registry.store.db).get(started.key)
    assert firing.status == "failed" and "no pipeline named 'nightly'" in firing.detail


def test_an_alert_naming_a_pipeline_starts_it_once_with_the_alert_as_cause(settings, tmp_path):
    registry = register(settings, tmp_path)
    db = registry.store.db
    clock = Clock(BASE + HOUR_MS)
    alert_id = add_alert(db, trigger="nightly", states=("pending", "firing"))
    add_alert(db, trigger=None)  # no trigger: nothing to start
    add_alert(db, trigger="nightly", states=("pending", "resolved"))  # never fired
    report = scheduler(registry, clock, executor="local").tick()
    assert [f.key for f in report.started] == [alert_key(alert_id)]
    (run,) = runs_of(settings)
    assert run.status == "FINISHED"
    assert run.cause == {
        "kind": "alert", "alert_id": alert_id, "monitor": "shop", "rule": "drift",
        "labels": {}, "fired_at": BASE + MINUTE_MS, "firing": alert_key(alert_id),
    }  # fmt: skip
    # still firing at the next tick, and after a restart: the same episode, no new run
    assert scheduler(registry, clock, executor="local").tick().started == []
    assert len(runs_of(settings)) == 1


def test_an_alert_that_fired_and_resolved_while_no_scheduler_ran(settings, tmp_path):
    registry = register(settings, tmp_path)
    db = registry.store.db
    recent = add_alert(db, trigger="nightly", states=("firing", "resolved"), at=BASE)
    add_alert(db, trigger="nightly", states=("firing", "resolved"), at=BASE - 2 * 24 * HOUR_MS)
    clock = Clock(BASE + 2 * HOUR_MS)
    report = scheduler(registry, clock, executor="local").tick()
    assert [f.key for f in report.started] == [alert_key(recent)]  # the old one is over


def test_a_firing_a_dead_scheduler_claimed_is_started_by_the_next(settings, tmp_path):
    registry = register(settings, tmp_path)
    db = registry.store.db
    clock = Clock(BASE + HOUR_MS)
    Schedules(db, clock=clock).create("nightly", "0 * * * *", executor="local")
    key = f"schedule:nightly@{BASE + HOUR_MS}"
    cause = {"kind": "schedule", "schedule": "nightly", "tick": "t", "firing": key}
    Firings(db, clock=clock).claim(
        key, kind="schedule", source="nightly", pipeline="nightly",
        due_at=BASE + HOUR_MS, cause=cause, holder="dead",
    )  # fmt: skip
    dead = Leases(db, clock=clock).acquire(lease_name(key), "dead", ttl_s=60)
    assert dead is not None
    assert scheduler(registry, clock).tick().recovered == []  # its lease is still held
    clock.now += 61_000  # … and now expired: the scheduler died
    report = scheduler(registry, clock).tick()
    assert [f.key for f in report.recovered] == [key]
    assert report.started == []  # the tick was claimed: recovered, not started again
    (run,) = runs_of(settings)
    assert run.cause == cause and run.status == "FINISHED"
    assert Firings(db).get(key).status == "finished"


def test_a_run_a_dead_scheduler_left_running_is_resumed_not_restarted(settings, tmp_path):
    registry = register(settings, tmp_path)
    db = registry.store.db
    clock = Clock()
    Schedules(db, clock=clock).create("nightly", "0 * * * *", executor="local")
    clock.now = BASE + HOUR_MS
    scheduler(registry, clock).tick()
    (run,) = runs_of(settings)
    key = run.cause["firing"]
    # as if the scheduler had been SIGKILLed mid-run: the run RUNNING, the firing running
    with db.write() as conn:
        conn.execute(
            update(pipeline_runs)
            .where(pipeline_runs.c.run_id == run.run_id)
            .values(status="RUNNING", ended_at=None)
        )
    Firings(db, clock=clock).mark(key, "running")
    report = scheduler(registry, clock).tick()
    assert [f.key for f in report.recovered] == [key]
    (again,) = runs_of(settings)
    assert again.run_id == run.run_id and again.status == "FINISHED" and again.attempts == 2
    assert Firings(db).get(key).status == "finished"


def test_a_tick_while_the_schedule_s_previous_run_is_going_is_skipped_not_run(settings, tmp_path):
    """Runs of one schedule never overlap: the tick is spent as ``skipped`` (naming the
    run still going), not started then, nor later; the next tick runs as usual."""
    registry = register(settings, tmp_path)
    db = registry.store.db
    clock = Clock()
    Schedules(db, clock=clock).create("nightly", "0 * * * *", executor="local")
    clock.now = BASE + HOUR_MS
    first = scheduler(registry, clock).tick().started[0].key
    # as if that run were still going in a live scheduler: the firing running, its lease held
    Firings(db, clock=clock).mark(first, "running", run_id="0" * 32)
    alive = Leases(db, clock=clock).acquire(lease_name(first), "alive", ttl_s=3 * 3600)
    assert alive is not None

    clock.now = BASE + 2 * HOUR_MS + 5_000
    report = scheduler(registry, clock).tick()
    second = f"schedule:nightly@{BASE + 2 * HOUR_MS}"
    assert report.started == [] and [f.key for f in report.skipped] == [second]
    skipped = Firings(db).get(second)
    assert skipped.status == "skipped" and skipped.run_id is None
    assert skipped.detail == (
        f"the previous run of schedule nightly ({first}) was still running: run {'0' * 32}"
    )
    assert len(runs_of(settings)) == 1

    Firings(db, clock=clock).mark(first, "finished")  # the long run ends
    Leases(db, clock=clock).release(alive)
    clock.now += 10 * MINUTE_MS
    assert scheduler(registry, clock).tick().started == []  # the skipped tick stays spent
    clock.now = BASE + 3 * HOUR_MS
    (third,) = scheduler(registry, clock).tick().started
    assert third.key == f"schedule:nightly@{BASE + 3 * HOUR_MS}"
    assert len(runs_of(settings)) == 2


def test_runs_start_in_the_background_and_stop_waits_for_them(settings, tmp_path):
    registry = register(settings, tmp_path)
    clock = Clock()
    Schedules(registry.store.db, clock=clock).create("nightly", "0 * * * *", executor="local")
    clock.now = BASE + HOUR_MS
    background = scheduler(registry, clock, background=True, poll_s=0.05)
    (started,) = background.tick().started
    background.join()
    assert background.running == []
    assert Firings(registry.store.db).get(started.key).status == "finished"


RACER = """
import json, os, sys, time
from pathlib import Path
from modelyard.config import Settings
from modelyard.pipelines import PipelineRegistry
from modelyard.pipelines.scheduler import PipelineScheduler
home, store_uri, now, go, me = sys.argv[1:6]
settings = Settings(home=Path(home), store_uri=store_uri or None)
registry = PipelineRegistry(settings)
scheduler = PipelineScheduler(
    registry, executor="local", background=False, holder=me, clock=lambda: int(now)
)
registry.store.list_runs(limit=1)  # connected
open(go + "." + me, "w").close()  # ready
while not os.path.exists(go):
    time.sleep(0.001)
started = []
for _ in range(3):
    started += [f.key for f in scheduler.tick().started]
print(json.dumps(started))
"""


@pytest.mark.parametrize("backend", ["sqlite", "postgres"])
def test_two_scheduler_processes_never_both_start_a_run(backend, tmp_path, request):
    from modelyard.config import Settings

    store_uri = request.getfixturevalue("postgres_uri") if backend == "postgres" else ""
    settings = Settings(home=tmp_path / "yard", store_uri=store_uri or None)
    register(settings, tmp_path)
    db = database_for(settings)
    clock = Clock()
    schedules = Schedules(db, clock=clock)
    for i in range(4):
        schedules.create("nightly", "0 * * * *", name=f"s{i}", executor="local")
    alerts = [add_alert(db, trigger="nightly") for _ in range(4)]
    now = BASE + HOUR_MS + 1_000
    go = tmp_path / "go"
    args = [sys.executable, "-c", RACER, str(settings.home), store_uri, str(now), str(go)]
    racers = [
        subprocess.Popen(
            [*args, f"scheduler-{i}"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
        )
        for i in range(2)
    ]
    ready = [tmp_path / f"go.scheduler-{i}" for i in range(2)]
    while not all(r.exists() for r in ready) and all(r.poll() is None for r in racers):
        time.sleep(0.01)
    go.touch()
    started, errors = [], []
    for racer in racers:
        out, err = racer.communicate(timeout=300)
        assert racer.returncode == 0, err
        started.append(json.loads(out.strip().splitlines()[-1]))
        errors.append(err)
    assert not set(started[0]) & set(started[1])
    expected = {f"schedule:s{i}@{BASE + HOUR_MS}" for i in range(4)}
    expected |= {alert_key(a) for a in alerts}
    assert set(started[0]) | set(started[1]) == expected, errors
    runs = runs_of(settings)
    assert sorted(r.cause["firing"] for r in runs) == sorted(expected)  # one run each
    assert {r.status for r in runs} == {"FINISHED"}


KILLED = """
import sys
from pathlib import Path
from modelyard.config import Settings
from modelyard.pipelines import PipelineRegistry
from modelyard.pipelines.scheduler import PipelineScheduler
home, now = sys.argv[1:3]
registry = PipelineRegistry(Settings(home=Path(home)))
PipelineScheduler(
    registry, monitors=None, background=False, holder="doomed", clock=lambda: int(now)
).tick()  # blocks in the step until the test kills this process
"""


def test_a_scheduler_killed_mid_run_is_taken_over_and_its_run_resumed(settings, tmp_path):
    from . import waiting_yard

    marker = tmp_path / "marker"
    marker.mkdir()
    registry = PipelineRegistry(settings)
    registry.register("waiting", f"{waiting_yard.__file__}:waiting", {"marker": str(marker)})
    clock = Clock()
    Schedules(registry.store.db, clock=clock).create("waiting", "0 * * * *", executor="local")
    clock.now = BASE + HOUR_MS
    doomed = subprocess.Popen(
        [sys.executable, "-c", KILLED, str(settings.home), str(clock.now)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    key = f"schedule:waiting@{BASE + HOUR_MS}"
    firings = Firings(registry.store.db)
    while not (marker / "wait.count").exists() and doomed.poll() is None:
        time.sleep(0.02)  # the run is in its step
    doomed.kill()  # SIGKILL: no cleanup, the run left RUNNING, the lease left held
    _, err = doomed.communicate(timeout=60)
    assert doomed.returncode == -9, err
    assert firings.get(key).status == "running"
    (left,) = runs_of(settings, "waiting")
    assert left.status == "RUNNING"

    (marker / "released").touch()
    restarted = scheduler(registry, clock)
    assert restarted.tick().recovered == []  # the dead scheduler's lease has not expired
    clock.now += 61_000
    report = restarted.tick()

    assert [f.key for f in report.recovered] == [key] and report.started == []
    (run,) = runs_of(settings, "waiting")
    assert run.run_id == left.run_id and run.status == "FINISHED" and run.attempts == 2
    resumed = registry.store.get_run(run.run_id)
    assert load_output(resumed, "wait_for_release", settings=settings) == 2  # again, once
    assert firings.get(key).status == "finished"
