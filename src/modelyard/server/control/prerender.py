"""Render the runs this server writes for search answers, in the background.

Why: a search that meets runs never rendered loads and renders them (~20 µs a run), which
made the first search after a sweep several times slower than the next. The server sees
every write that goes through it, so it notes the run (``on_write``, a
``tracking.observed_store`` observer: a set insert on the writing thread) and a
background thread renders the noted runs every
``INTERVAL_S`` into the ``RunJsonCache`` — a run logged to a thousand times in that time
is rendered once. Only a head start: what it misses, a search renders (the runs of an
experiment deleted or restored, say, whose write names only the experiment).
"""

from __future__ import annotations

import logging
import threading

from modelyard.server.control.run_json_cache import RunJsonCache
from modelyard.tracking.client import TrackingClient
from modelyard.tracking.observed_store import StoreWrite

INTERVAL_S = 0.2
BATCH = 500
MAX_PENDING = 100_000

log = logging.getLogger(__name__)


class Prerenderer:
    """Renders the runs the server wrote, in a background thread, every
    ``INTERVAL_S`` (a run logged to 1,000 times in that time is rendered once).
    A failure is logged and the runs are left to the next search: rendering is only ever
    a head start."""

    def __init__(
        self, cache: RunJsonCache, client: TrackingClient, interval_s: float = INTERVAL_S
    ) -> None:
        self.cache = cache
        self.client = client
        self.interval_s = interval_s
        self._pending: set[str] = set()
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def on_write(self, write: StoreWrite) -> None:
        """Note the runs a successful store write changed (a ``WriteObserver``, called on
        the writing thread: a set insert)."""
        with self._lock:
            if len(self._pending) >= MAX_PENDING:  # not running (no lifespan?)
                self._pending.clear()  # searches render them anyway
            self._pending.update(write.run_ids)

    def start(self) -> None:
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name="modelyard-prerender", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None

    def render_pending(self) -> int:
        """Render what is pending now; how many runs were rendered."""
        with self._lock:
            pending, self._pending = self._pending, set()
        done = 0
        ids = list(pending)
        for start in range(0, len(ids), BATCH):
            try:
                done += self.cache.refresh(self.client, ids[start : start + BATCH])
            except Exception:  # a head start only: the next search renders them anyway
                log.warning("could not pre-render %d runs", len(ids), exc_info=True)
        return done

    def _run(self) -> None:
        while not self._stop.wait(self.interval_s):
            self.render_pending()


__all__ = ["Prerenderer"]
