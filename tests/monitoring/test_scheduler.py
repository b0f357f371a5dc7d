"""The scheduler: windows end on the monitor's cron ticks, each is evaluated once, a tick
waits until the data planes' logs have settled, missed ticks give way to the latest, and
two schedulers over one store never both write a window."""

from __future__ import annotations

import threading

from modelyard.monitoring.schedule import parse_cron
from modelyard.monitoring.scheduler import Scheduler, latest_tick

from .monitor_yard import END, HOUR_MS, RULES, sales, service, yard

__all__ = ["yard"]  # the fixture, used by name
MINUTE_MS = 60_000


def test_the_latest_tick_is_the_last_firing_in_the_interval():
    quarterly = parse_cron("*/15 * * * *")
    assert latest_tick(quarterly, END - HOUR_MS, END + 14 * MINUTE_MS) == END
    assert latest_tick(quarterly, END, END + 14 * MINUTE_MS) is None  # after, not at
    assert latest_tick(quarterly, END - HOUR_MS, END + 31 * MINUTE_MS) == END + 30 * MINUTE_MS


def test_a_due_window_is_evaluated_once_after_it_settles(yard):
    yard.train()
    yard.deployments.create("shop", "models:/demand/1")
    yard.serve(sales(100, seed=3), version=1, start_ms=END - HOUR_MS, prefix="r")
    now = {"ms": END - 5 * MINUTE_MS}
    monitors = service(yard, clock=lambda: now["ms"])
    monitors.store.clock = lambda: END - 10 * MINUTE_MS
    monitors.create("shop-drift", "shop", schedule="@hourly", rules=RULES)
    scheduler = Scheduler(monitors, settle_s=30, clock=lambda: now["ms"])
    # A new monitor looks at the last whole window at once.
    (first,) = scheduler.tick()
    assert first.window_end == END - HOUR_MS

    now["ms"] = END + 10_000
    assert scheduler.tick() == []  # 10 s after the tick: the logs may not have settled

    now["ms"] = END + 40_000
    (result,) = scheduler.tick()
    assert (result.monitor, result.window_end, result.status) == ("shop-drift", END, "evaluated")
    evaluation = result.run.evaluation
    assert (evaluation.window_start, evaluation.window_end) == (END - HOUR_MS, END)
    assert evaluation.rows == 100

    assert scheduler.tick() == []  # nothing new is due


def test_after_missed_ticks_only_the_latest_window_is_evaluated(yard):
    yard.train()
    yard.deployments.create("shop", "models:/demand/1")
    now = {"ms": END - 3 * HOUR_MS}
    monitors = service(yard, clock=lambda: now["ms"])
    monitors.store.clock = lambda: now["ms"]
    monitors.create("shop-drift", "shop", schedule="@hourly", rules=RULES)
    scheduler = Scheduler(monitors, settle_s=0, clock=lambda: now["ms"])
    scheduler.tick()

    now["ms"] = END + MINUTE_MS  # down for three ticks
    (result,) = scheduler.tick()
    assert result.window_end == END
    assert [e.window_end for e in monitors.store.evaluations("shop-drift")] == [
        END - 3 * HOUR_MS,
        END,
    ]


def test_two_schedulers_racing_write_each_window_once(yard):
    yard.train()
    yard.deployments.create("shop", "models:/demand/1")
    yard.serve(sales(100, seed=4), version=1, start_ms=END - HOUR_MS, prefix="r")
    clock = lambda: END + MINUTE_MS  # noqa: E731
    first = service(yard, clock=clock, holder="a")
    first.store.clock = lambda: END - 2 * HOUR_MS
    first.create("shop-drift", "shop", schedule="@hourly", rules=RULES)
    schedulers = [
        Scheduler(first, settle_s=0, clock=clock),
        Scheduler(service(yard, clock=clock, holder="b"), settle_s=0, clock=clock),
    ]
    results: list = []
    start = threading.Barrier(2)

    def go(scheduler: Scheduler) -> None:
        start.wait()
        results.extend(scheduler.tick())

    threads = [threading.Thread(target=go, args=(s,)) for s in schedulers]
    for t in threads:
        t.start()
    for t in threads:
        t.join()

    statuses = sorted(r.status for r in results)
    assert statuses.count("evaluated") == 1, statuses
    assert set(statuses) <= {"evaluated", "held", "stored-before"}
    assert len(first.store.evaluations("shop-drift")) == 1
    notified = next(r for r in results if r.status == "evaluated").run.transitions
    assert all(t.state in ("pending", "firing") for t in notified)
