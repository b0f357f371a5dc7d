"""The scheduler: evaluates each enabled monitor at its cron ticks.

A monitor's windows end on its schedule's ticks (``*/15 * * * *``: at :00, :15, :30, :45
UTC) and span its rules' ``window`` back from there, so every scheduler process computes
the same windows: the store writes each window once and the monitor's lease keeps two
processes from evaluating it at the same time — run as many schedulers as you like, for
availability.

A tick is evaluated ``settle_s`` seconds after it passes, so predictions answered just
before it have left the data planes' log queues (they flush every 2 s). When a scheduler
was down across several ticks, only the latest is evaluated (the others are reported as
skipped): an old window evaluated late would raise alerts about a past that is over.

>>> scheduler = Scheduler(MonitorService.from_settings())   # doctest: +SKIP
>>> scheduler.run_forever()                                 # doctest: +SKIP
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from modelyard.errors import Conflict, ModelyardError
from modelyard.ids import now_ms

if TYPE_CHECKING:
    from modelyard.monitoring.monitors import MonitorRun, MonitorService
    from modelyard.monitoring.schedule import CronSchedule
    from modelyard.monitoring.store import Monitor

log = logging.getLogger(__name__)

DEFAULT_POLL_S = 30.0
DEFAULT_SETTLE_S = 30.0
#: Ticks stepped through to find the latest one (a minutely schedule: ten weeks).
MAX_TICKS = 100_000
#: How far back a scheduler looks for a missed tick (ms): a week.
LOOKBACK_MS = 7 * 24 * 3_600_000


@dataclass(frozen=True, slots=True)
class TickResult:
    monitor: str
    window_end: int
    status: str  # evaluated | stored-before | held | error
    detail: str = ""
    run: MonitorRun | None = None


def latest_tick(cron: CronSchedule, after_ms: int, now_ms_: int) -> int | None:
    """The latest tick in ``(after_ms, now_ms_]`` (ms), or None when there is none."""
    t = _utc(after_ms)
    now = _utc(now_ms_)
    latest = None
    for _ in range(MAX_TICKS):
        t = cron.next_after(t)
        if t > now:
            break
        latest = t
    return None if latest is None else int(latest.timestamp() * 1000)


def _utc(ms: int) -> datetime:
    return datetime.fromtimestamp(ms / 1000, UTC)


class Scheduler:
    """Runs due monitors of one ``MonitorService``: ``tick()`` once, or ``run_forever``."""

    def __init__(
        self,
        service: MonitorService,
        *,
        poll_s: float = DEFAULT_POLL_S,
        settle_s: float = DEFAULT_SETTLE_S,
        clock: Callable[[], int] = now_ms,
    ) -> None:
        self.service = service
        self.poll_s = poll_s
        self.settle_ms = int(settle_s * 1000)
        self.clock = clock
        self.stopping = threading.Event()

    def due(self, monitor: Monitor, now: int) -> int | None:
        """The window end (a tick) ``monitor`` should be evaluated at now, if any: the
        latest settled tick after its latest evaluated window (for a new monitor, after
        one window before it was created; never more than ``LOOKBACK`` ago)."""
        settled = now - self.settle_ms
        latest = self.service.store.evaluations(monitor.name, limit=1)
        since = latest[-1].window_end if latest else monitor.created_at - monitor.window_s * 1000
        return latest_tick(monitor.cron, max(since, settled - LOOKBACK_MS), settled)

    def tick(self) -> list[TickResult]:
        """Evaluate every enabled monitor that has a due window; never raises for one
        monitor's failure (it is logged and reported)."""
        now = int(self.clock())
        results = []
        for monitor in self.service.store.list(enabled=True):
            end = self.due(monitor, now)
            if end is None:
                continue
            results.append(self._run(monitor, end))
        return results

    def _run(self, monitor: Monitor, end: int) -> TickResult:
        try:
            run = self.service.run(monitor.name, end_ms=end)
        except Conflict as exc:
            return TickResult(monitor.name, end, "held", str(exc))
        except ModelyardError as exc:
            log.error("monitor %s: window ending %s not evaluated: %s", monitor.name, end, exc)
            return TickResult(monitor.name, end, "error", str(exc))
        status = "evaluated" if run.created else "stored-before"
        log.info(
            "monitor %s: window ending %s %s: %s",
            monitor.name,
            _utc(end).isoformat(),
            status,
            run.evaluation.status,
        )
        return TickResult(monitor.name, end, status, run.evaluation.status, run)

    def run_forever(self) -> None:
        """Tick every ``poll_s`` seconds until ``stop()``."""
        while not self.stopping.is_set():
            try:
                self.tick()
            except Exception:  # the store out of reach: try again next poll
                log.exception("scheduler tick failed")
            self.stopping.wait(self.poll_s)

    def stop(self) -> None:
        self.stopping.set()
