"""``modelyard scheduler``: the one scheduler process — monitors, pipeline schedules and
alert triggers.

Each ``tick`` (every ``poll_s`` seconds):

1. the monitors: ``monitoring.scheduler.Scheduler.tick`` evaluates every monitor whose
   window is due (its own policy: windows end on cron ticks, settle first, only the
   latest tick after downtime, a lease per monitor);
2. recovery: firings a dead scheduler left ``claimed`` or ``running`` are taken over;
3. the schedules: each active schedule's due tick (``Schedules.due``: missed ticks
   coalesce into one run of the latest, started at once) is claimed and started — or,
   when the schedule's previous firing is still claimed or running (its run not ended),
   claimed ``skipped``: runs of one schedule never overlap (a retraining slower than its
   cron does not pile up runs), and the skipped tick is not run later;
4. the alert triggers: each alert that fired naming a pipeline (``triggers.due_alerts``)
   is claimed and starts its pipeline, the alert as the run's cause.

Exactly once. A scheduler first takes the firing's lease (``firing:<key>`` in
``store.leases``), then claims the firing by inserting its row (``firings``): one
scheduler wins, and the row outlives restarts, so a tick or an alert never starts two
runs. The winner keeps renewing the lease while the pipeline runs (a heartbeat thread),
so the lease's holder is the one process working on the firing. A firing still
``claimed`` or ``running`` whose lease has expired was left by a scheduler that died: the
next scheduler takes its lease and looks the run up by the firing named in its cause —
none: the pipeline never started, so it is started now; RUNNING: it is resumed
(``pipelines.resume``, which re-runs only what did not finish); FINISHED or FAILED: the
firing is closed with it.

Runs start in threads of this process (their steps in the executor the schedule names),
so a long retraining never delays the monitors; ``stop`` lets running pipelines finish.

>>> scheduler = PipelineScheduler.from_settings(settings)              # doctest: +SKIP
>>> scheduler.run_forever()                                              # doctest: +SKIP
"""

from __future__ import annotations

import logging
import secrets
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from modelyard.errors import Conflict, ModelyardError
from modelyard.ids import now_ms
from modelyard.pipelines import firings as fs
from modelyard.pipelines.executors import DEFAULT_EXECUTOR, check_executor
from modelyard.pipelines.firings import Firing, Firings
from modelyard.pipelines.registry import PipelineRegistry
from modelyard.pipelines.runner import PipelineFailed, resume
from modelyard.pipelines.schedules import Schedules, tick_text
from modelyard.pipelines.store import FINISHED, RUNNING, PipelineRunRecord
from modelyard.pipelines.triggers import due_alerts
from modelyard.store.leases import Lease, Leases, default_holder

if TYPE_CHECKING:
    from modelyard.config import Settings
    from modelyard.monitoring.scheduler import Scheduler as MonitorScheduler
    from modelyard.monitoring.scheduler import TickResult

log = logging.getLogger(__name__)

DEFAULT_POLL_S = 30.0
#: A firing's lease: renewed every third of it while its pipeline runs, so a scheduler
#: that died frees its firings for another one within a minute.
FIRING_TTL_S = 60.0
#: Runs looked through for a dead scheduler's run of a firing (its cause names it).
RECOVERY_RUNS = 500


def lease_name(key: str) -> str:
    """The lease a scheduler holds while it starts and runs firing ``key``."""
    return f"firing:{key}"


@dataclass
class TickReport:
    """What one tick did: monitors evaluated, firings started, firings recovered, schedule
    ticks skipped (their previous run still going)."""

    monitors: list[TickResult] = field(default_factory=list)
    started: list[Firing] = field(default_factory=list)
    recovered: list[Firing] = field(default_factory=list)
    skipped: list[Firing] = field(default_factory=list)


class PipelineScheduler:
    """Monitors, schedules and alert triggers over one metadata store."""

    def __init__(
        self,
        registry: PipelineRegistry,
        *,
        monitors: MonitorScheduler | None = None,
        poll_s: float = DEFAULT_POLL_S,
        executor: str = DEFAULT_EXECUTOR,
        firing_ttl_s: float = FIRING_TTL_S,
        background: bool = True,
        holder: str | None = None,
        clock: Callable[[], int] = now_ms,
    ) -> None:
        self.registry = registry
        self.settings = registry.settings
        self.db = registry.store.db
        self.monitors = monitors
        self.poll_s = poll_s
        self.executor = check_executor(executor)  # for alert triggers
        self.firing_ttl_s = firing_ttl_s
        self.background = background
        # Unique per scheduler object, so that one never mistakes another's lease for its
        # own (a holder asking again is given the lease).
        self.holder = holder or f"{default_holder()}:{secrets.token_hex(3)}"
        self.clock = clock
        self.schedules = Schedules(self.db, clock=clock)
        self.firings = Firings(self.db, clock=clock)
        self.leases = Leases(self.db, clock=clock)
        self.stopping = threading.Event()
        self._threads: dict[str, threading.Thread] = {}
        self._lock = threading.Lock()

    @classmethod
    def from_settings(
        cls, settings: Settings | None = None, *, monitors: bool = True, **options: Any
    ) -> PipelineScheduler:
        """The scheduler of ``settings``' stores, with the monitors' scheduler unless
        ``monitors=False``."""
        registry = PipelineRegistry(settings)
        monitor_scheduler = None
        if monitors:
            from modelyard.monitoring.monitors import MonitorService
            from modelyard.monitoring.scheduler import Scheduler

            service = MonitorService.from_settings(registry.settings)
            monitor_scheduler = Scheduler(service, poll_s=options.get("poll_s", DEFAULT_POLL_S))
        return cls(registry, monitors=monitor_scheduler, **options)

    # one tick ---------------------------------------------------------------------------
    def tick(self) -> TickReport:
        """Do what is due now; one schedule's or alert's failure never stops the others."""
        report = TickReport()
        if self.monitors is not None:
            report.monitors = self.monitors.tick()
        report.recovered = self.recover()
        now = int(self.clock())
        # One look per tick: the schedules with a firing in flight (after recovery, so a
        # run taken over just now counts).
        busy = {f.source: f for f in self.firings.unfinished() if f.kind == "schedule"}
        for schedule in self.schedules.list(active_only=True):
            last = self.firings.last_due("schedule", schedule.name)
            tick = self.schedules.due(schedule, last, now)
            if tick is None:
                continue
            key = fs.schedule_key(schedule.name, tick)
            cause = {
                "kind": "schedule",
                "schedule": schedule.name,
                "tick": tick_text(tick),
                "firing": key,
            }
            claim = {"kind": "schedule", "source": schedule.name, "due_at": tick}
            previous = busy.get(schedule.name)
            if previous is not None:
                skipped = self._skip(key, schedule.pipeline, cause, claim, previous)
                if skipped is not None:
                    report.skipped.append(skipped)
                continue
            claimed = self._claim(key, schedule.pipeline, cause, claim)
            if claimed is not None:
                self._start(claimed[0], claimed[1], schedule.params, schedule.executor)
                report.started.append(claimed[0])
        for due in due_alerts(self.db, now):
            claim = {"kind": "alert", "source": due.monitor, "due_at": due.fired_at}
            claimed = self._claim(due.key, due.pipeline, due.cause, claim)
            if claimed is not None:
                self._start(claimed[0], claimed[1], {}, self.executor)
                report.started.append(claimed[0])
        return report

    def recover(self) -> list[Firing]:
        """Take over the firings a dead scheduler left unfinished (their lease expired)."""
        taken = []
        for firing in self.firings.unfinished():
            with self._lock:
                if firing.key in self._threads:
                    continue  # ours, in flight
            lease = self.leases.acquire(
                lease_name(firing.key), self.holder, ttl_s=self.firing_ttl_s
            )
            if lease is None:
                continue  # its scheduler is alive, or another one took it over
            run = self._run_of(firing)
            if run is None:
                log.warning("firing %s: never started by %s; starting it", firing.key,
                            firing.claimed_by)  # fmt: skip
                self._start(firing, lease, self._params_of(firing), self._executor_of(firing))
            elif run.status == RUNNING:
                log.warning("firing %s: run %s was left RUNNING; resuming it", firing.key,
                            run.run_id)  # fmt: skip
                self._start(firing, lease, resume_run=run.run_id)
            else:
                status = fs.FINISHED if run.status == FINISHED else fs.FAILED
                self.firings.mark(firing.key, status, run_id=run.run_id, detail=run.error)
                self.leases.release(lease)
            taken.append(firing)
        return taken

    # starting ---------------------------------------------------------------------------
    def _claim(
        self, key: str, pipeline: str, cause: dict[str, Any], claim: dict[str, Any]
    ) -> tuple[Firing, Lease] | None:
        """The firing and its lease when this scheduler claimed ``key``. The lease comes
        first, so a claimed firing whose lease is free was left by a scheduler that died
        (``recover``), never one another scheduler is about to start."""
        lease = self.leases.acquire(lease_name(key), self.holder, ttl_s=self.firing_ttl_s)
        if lease is None:
            return None  # another scheduler is claiming or running it
        firing = self.firings.claim(
            key, pipeline=pipeline, cause=cause, holder=self.holder, **claim
        )
        if firing is None:
            self.leases.release(lease)  # claimed before: done, or being recovered
            return None
        return firing, lease

    def _skip(
        self,
        key: str,
        pipeline: str,
        cause: dict[str, Any],
        claim: dict[str, Any],
        previous: Firing,
    ) -> Firing | None:
        """Spend tick ``key`` without a run, saying which run was still going; None when
        another scheduler decided on the tick first. No lease: nothing runs."""
        why = f"the previous run of schedule {previous.source} ({previous.key}) was still "
        why += previous.status + (f": run {previous.run_id}" if previous.run_id else "")
        firing = self.firings.claim(
            key, pipeline=pipeline, cause=cause, holder=self.holder, skipped=why, **claim
        )
        if firing is not None:
            log.warning("firing %s: skipped: %s", key, why)
        return firing

    def _start(
        self,
        firing: Firing,
        lease: Lease,
        params: dict[str, Any] | None = None,
        executor: str = DEFAULT_EXECUTOR,
        *,
        resume_run: str | None = None,
    ) -> None:
        def work() -> None:
            self._run_firing(firing, lease, params or {}, executor, resume_run)

        if not self.background:
            work()
            return
        thread = threading.Thread(target=work, name=f"firing {firing.key}", daemon=False)
        with self._lock:
            self._threads[firing.key] = thread
        thread.start()

    def _run_firing(
        self,
        firing: Firing,
        lease: Lease,
        params: dict[str, Any],
        executor: str,
        resume_run: str | None,
    ) -> None:
        done = threading.Event()
        heartbeat = threading.Thread(
            target=self._heartbeat, args=(lease, done), name=f"lease {firing.key}", daemon=True
        )
        heartbeat.start()
        try:
            self.firings.mark(firing.key, fs.RUNNING, run_id=resume_run)
            log.info("firing %s: starting pipeline %s", firing.key, firing.pipeline)
            record = self._execute(firing, params, executor, resume_run)
            self.firings.mark(firing.key, fs.FINISHED, run_id=record.run_id)
        except PipelineFailed as exc:
            log.warning("firing %s: %s", firing.key, exc)
            self.firings.mark(firing.key, fs.FAILED, run_id=exc.run.run_id, detail=str(exc))
        except Exception as exc:  # not started: unregistered pipeline, bad params, …
            log.error("firing %s: pipeline %s not run: %s", firing.key, firing.pipeline, exc)
            self.firings.mark(firing.key, fs.FAILED, detail=f"{type(exc).__name__}: {exc}")
        finally:
            done.set()
            heartbeat.join()
            self.leases.release(lease)
            with self._lock:
                self._threads.pop(firing.key, None)

    def _execute(
        self, firing: Firing, params: dict[str, Any], executor: str, resume_run: str | None
    ) -> PipelineRunRecord:
        if resume_run is not None:
            return resume(resume_run, settings=self.settings, force=True)
        return self.registry.start(firing.pipeline, params, cause=firing.cause, executor=executor)

    def _heartbeat(self, lease: Lease, done: threading.Event) -> None:
        every = self.firing_ttl_s / 3
        while not done.wait(every):
            try:
                lease = self.leases.renew(lease, ttl_s=self.firing_ttl_s)
            except Conflict:
                log.error("%s: lost (another scheduler may start this firing again)", lease.name)
                return
            except Exception:  # the store out of reach: try again
                log.exception("%s: renewal failed", lease.name)

    # recovery helpers -------------------------------------------------------------------
    def _run_of(self, firing: Firing) -> PipelineRunRecord | None:
        if firing.run_id is not None:
            return self.registry.store.get_run(firing.run_id)
        for run in self.registry.store.list_runs(firing.pipeline, limit=RECOVERY_RUNS):
            if run.started_at < firing.claimed_at:
                break  # newest first: older runs cannot be this firing's
            if (run.cause or {}).get("firing") == firing.key:
                return run
        return None

    def _params_of(self, firing: Firing) -> dict[str, Any]:
        if firing.kind != "schedule":
            return {}
        try:
            return self.schedules.get(firing.source).params
        except ModelyardError:
            return {}  # deleted since: the pipeline's defaults

    def _executor_of(self, firing: Firing) -> str:
        if firing.kind != "schedule":
            return self.executor
        try:
            return self.schedules.get(firing.source).executor
        except ModelyardError:
            return self.executor

    # the loop ---------------------------------------------------------------------------
    def run_forever(self) -> None:
        """Tick every ``poll_s`` seconds until ``stop()``; then wait for running pipelines."""
        while not self.stopping.is_set():
            try:
                self.tick()
            except Exception:  # the store out of reach: try again next poll
                log.exception("scheduler tick failed")
            self.stopping.wait(self.poll_s)
        self.join()

    def stop(self) -> None:
        self.stopping.set()

    def join(self, timeout: float | None = None) -> None:
        """Wait for the pipelines this scheduler started."""
        with self._lock:
            running = list(self._threads.values())
        for thread in running:
            thread.join(timeout)

    @property
    def running(self) -> list[str]:
        """The firings whose pipelines run in this process now."""
        with self._lock:
            return sorted(self._threads)
