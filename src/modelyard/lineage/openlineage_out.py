"""Sending OpenLineage RunEvents to the configured endpoint (``MODELYARD_OPENLINEAGE_URL``)
and/or file (``MODELYARD_OPENLINEAGE_FILE``) through ``openlineage-python``'s transports.

How events get out without the rooms below knowing this room exists — the design, and why:

* **Events are built from what was stored, never from what a room was about to do.** A
  run's START/COMPLETE, a training set, a materialisation are read back from their rows
  and edges (``openlineage_events``). So the lower rooms need no hook and no import of
  this room; an event never announces something whose transaction rolled back; and the
  same builder serves both ways out below.
* **Live, in the server: an observer the interface installs.** ``Emitter.on_write`` is a
  ``tracking.observed_store.WriteObserver``, like the server's metrics and prerenderer:
  ``server.control`` adds it when a sink is configured. It is told of a run created or
  ended *after* the commit, on the request's thread, and only queues the run id; a
  worker thread builds and sends the event, so a slow or absent endpoint never delays a
  client (failures are logged and counted, never raised). The registry's
  ``version_observers`` and monitoring's ``recording_references`` follow the same
  pattern.
* **Drained from the store: what never passes through the server.** A script writing to
  the shared store, training sets and materialisations made in the feature store's own
  process, pipeline steps run elsewhere: the server's emitter also *follows* the store
  (``Emitter.follow``: every 10 s, the events of what was written since the last look),
  and ``Emitter.emit_since`` sends a period on demand (``modelyard lineage
  --emit-openlineage 1d``, e.g. from cron, for a yard without a server). The events are
  the same ones (the run id is the OpenLineage runId, a training set's id gives a stable
  UUID): one emitter sends each once, and a consumer given a copy twice (by the command
  and the server) receives an identical event.

An outbox table drained by this room was the alternative; it would guarantee delivery
across crashes but needs every room to write outbox rows in its transactions — a hook in
each room — while the rows and edges they write already are that outbox.
"""

from __future__ import annotations

import logging
import queue
import threading
from collections import OrderedDict
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy import or_, select

from modelyard.config import Settings
from modelyard.errors import InvalidParameter, MissingExtra
from modelyard.features.tables import feature_training_sets
from modelyard.ids import now_ms
from modelyard.store.engine import Database
from modelyard.tracking.tables import experiments, runs

if TYPE_CHECKING:
    from modelyard.tracking.observed_store import StoreWrite

log = logging.getLogger(__name__)

#: Tracking writes after which a run's events may have changed.
RUN_WRITES = ("create_run", "update_run_info")
#: (runId, event type) pairs remembered as sent, so repeated updates send once.
REMEMBERED = 10_000
#: How often a following emitter looks at the store, and how far back each look reaches
#: before the previous one (writers' clocks differ).
FOLLOW_INTERVAL_S = 10.0
FOLLOW_OVERLAP_MS = 60_000
#: Run ids per ``IN`` list.
CHUNK = 500
_STOP = object()


def open_clients(settings: Settings) -> list[Any]:
    """One ``OpenLineageClient`` per configured sink (HTTP endpoint, file)."""
    try:
        from openlineage.client import OpenLineageClient
        from openlineage.client.transport.file import FileConfig, FileTransport
        from openlineage.client.transport.http import HttpConfig, HttpTransport
    except ImportError as exc:
        raise MissingExtra("openlineage-python", "lineage", "Sending OpenLineage events") from exc
    clients = []
    if settings.openlineage_url:
        try:
            transport: Any = HttpTransport(HttpConfig(url=settings.openlineage_url))
        except ValueError as exc:
            raise InvalidParameter(
                f"openlineage_url {settings.openlineage_url!r} is not an http(s) URL: {exc}",
                field="openlineage_url",
            ) from None
        clients.append(OpenLineageClient(transport=transport))
    if settings.openlineage_file:
        path = Path(settings.openlineage_file).expanduser().absolute()
        path.parent.mkdir(parents=True, exist_ok=True)
        config = FileConfig(log_file_path=str(path), append=True)
        clients.append(OpenLineageClient(transport=FileTransport(config)))
    return clients


class Emitter:
    """Builds RunEvents from the store and sends them to every client."""

    def __init__(self, db: Database, clients: Sequence[Any], namespace: str = "modelyard"):
        self.db = db
        self.clients = list(clients)
        self.namespace = namespace
        self.failures = 0
        self._sent: OrderedDict[tuple[str, str], None] = OrderedDict()
        self._queue: queue.SimpleQueue[object] = queue.SimpleQueue()
        self._worker: threading.Thread | None = None
        self._lock = threading.Lock()
        self._follow_s: float | None = None  # set by follow()
        self._watermark = 0
        self._open: set[str] | None = None  # runs not ended at the last look

    @classmethod
    def from_settings(cls, settings: Settings, db: Database) -> Emitter:
        """Raises ``InvalidParameter`` when no sink is configured."""
        clients = open_clients(settings)
        if not clients:
            raise InvalidParameter(
                "no OpenLineage sink is configured: set MODELYARD_OPENLINEAGE_URL (an "
                "http(s) endpoint) or MODELYARD_OPENLINEAGE_FILE",
                field="openlineage_url",
            )
        return cls(db, clients, settings.openlineage_namespace)

    # -- sending ------------------------------------------------------------------------

    def send(self, events: Sequence[Any]) -> int:
        """Send ``events`` to every client; returns how many were sent everywhere."""
        sent = 0
        for event in events:
            for client in self.clients:
                client.emit(event)
            sent += 1
        return sent

    def run_events(self, run_id: str) -> list[Any]:
        from modelyard.lineage.openlineage_events import run_events

        with self.db.read() as conn:
            return run_events(conn, self.namespace, run_id)

    def events_since(self, since_ms: int) -> list[Any]:
        """Every event of runs, training sets and materialisations since ``since_ms``,
        oldest first."""
        from modelyard.lineage.openlineage_events import (
            iso,
            materialization_events,
            run_events,
            training_set_events,
        )

        r, t = runs.c, feature_training_sets.c
        events = []
        with self.db.read() as conn:
            run_ids = conn.execute(
                select(r.run_id).where(or_(r.start_time >= since_ms, r.end_time >= since_ms))
            ).scalars()
            for run_id in run_ids.all():
                events += run_events(conn, self.namespace, run_id)
            sets = conn.execute(select(t.training_set_id).where(t.created_at >= since_ms)).scalars()
            for training_set_id in sets.all():
                events += training_set_events(conn, self.namespace, training_set_id)
            events += materialization_events(conn, self.namespace, since_ms)
        first = iso(since_ms)
        # ISO times in UTC compare as text; a run that started before the period only
        # contributes its end.
        events = [e for e in events if e.eventTime >= first]
        return sorted(events, key=lambda e: e.eventTime)

    def emit_since(self, since_ms: int) -> int:
        return self.send(self.events_since(since_ms))

    # -- live, as a tracking store observer --------------------------------------------

    def on_write(self, write: StoreWrite) -> None:
        """Queue the runs a successful write created or changed (quick; never raises)."""
        if write.method in RUN_WRITES:
            for run_id in write.run_ids:
                self._queue.put(run_id)
            self._ensure_worker()

    def _ensure_worker(self) -> None:
        with self._lock:
            if self._worker is None:
                self._worker = threading.Thread(
                    target=self._work, name="modelyard-openlineage", daemon=True
                )
                self._worker.start()

    def follow(self, interval_s: float = FOLLOW_INTERVAL_S, since_ms: int | None = None) -> None:
        """Also send, every ``interval_s``, the events of what others wrote to the store
        since the last look (from ``since_ms``, default now): scripts on a shared store,
        training sets, materialisations, pipeline steps run elsewhere. Each look overlaps
        the one before by ``FOLLOW_OVERLAP_MS`` (clocks differ); what was sent is not
        sent again."""
        self._watermark = now_ms() if since_ms is None else since_ms
        self._follow_s = interval_s
        self._ensure_worker()

    def _work(self) -> None:
        while True:
            try:
                item = self._queue.get(timeout=self._follow_s)
            except queue.Empty:
                item = None  # time to look at the store
            if item is _STOP:
                return
            try:
                if isinstance(item, str):
                    for event in self.run_events(item):
                        self._send_once(event)
                elif self._follow_s is not None:
                    self._look()
            except Exception:  # a sink or store failure must not end the worker
                self.failures += 1
                log.exception("could not send OpenLineage events (%s)", item or "follow")
            if isinstance(item, threading.Event):  # flush(): everything before it is sent
                item.set()

    def _look(self) -> None:
        """One look at the store: runs started since the last look (by index,
        ``ix_runs_search``: experiment, start time), the runs still open at the last look
        (by id: did they end?), and the training sets and materialisations since then
        (small tables, read whole: neither has an index on its time)."""
        from modelyard.lineage.openlineage_events import (
            TERMINAL,
            materialization_events,
            run_events,
            training_set_events,
        )

        now = now_ms()
        since = self._watermark - FOLLOW_OVERLAP_MS
        r, t, x = runs.c, feature_training_sets.c, experiments.c
        events: list[Any] = []
        with self.db.read() as conn:
            if self._open is None:  # the first look: the runs open now (one scan, once)
                open_now = select(r.run_id).where(r.status == "RUNNING")
                self._open = set(conn.execute(open_now).scalars())
            experiment_ids = conn.execute(select(x.experiment_id)).scalars().all()
            started = set(
                conn.execute(
                    select(r.run_id).where(
                        r.experiment_id.in_(experiment_ids), r.start_time >= since
                    )
                ).scalars()
            )
            watched = sorted(started | self._open)
            changed = set(started)
            still_open = set()
            for i in range(0, len(watched), CHUNK):
                rows = conn.execute(
                    select(r.run_id, r.status).where(r.run_id.in_(watched[i : i + CHUNK]))
                )
                for run_id, status in rows:
                    if status in TERMINAL:
                        changed.add(run_id)
                    else:
                        still_open.add(run_id)
            self._open = still_open
            for run_id in sorted(changed):
                events += run_events(conn, self.namespace, run_id)
            sets = conn.execute(select(t.training_set_id).where(t.created_at >= since))
            for training_set_id in sets.scalars().all():
                events += training_set_events(conn, self.namespace, training_set_id)
            events += materialization_events(conn, self.namespace, since)
        for event in sorted(events, key=lambda e: e.eventTime):
            self._send_once(event)
        self._watermark = now

    def _send_once(self, event: Any) -> None:
        key = (event.run.runId, event.eventType.value)
        if key in self._sent:
            return
        self.send([event])
        self._sent[key] = None
        if len(self._sent) > REMEMBERED:
            self._sent.popitem(last=False)

    def flush(self, timeout_s: float = 30.0) -> None:
        """Wait until what was queued is sent, and (when following) the store looked at
        once more (tests; shutdown)."""
        done = threading.Event()
        self._queue.put(done)
        self._ensure_worker()
        done.wait(timeout_s)

    def close(self, timeout_s: float = 30.0) -> None:
        """Send what is queued, stop the worker, close the transports."""
        self._follow_s = None
        with self._lock:
            worker, self._worker = self._worker, None
        if worker is not None:
            self._queue.put(_STOP)
            worker.join(timeout_s)
        for client in self.clients:
            client.close()
