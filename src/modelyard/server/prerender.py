"""Render the runs this server writes for search answers, in the background.

Why: a search that meets runs never rendered loads and renders them (~20 µs a run), which
made the first search after a sweep several times slower than the next. The server sees
every write that goes through it, so it notes the run (``WriteWatchingStore``, a set
insert on the request path) and a background thread renders the noted runs every
``INTERVAL_S`` into the ``RunJsonCache`` — a run logged to a thousand times in that time
is rendered once. Only a head start: what it misses, a search renders.
"""

from __future__ import annotations

import logging
import threading
from typing import Any

from modelyard.server.run_json_cache import RunJsonCache
from modelyard.tracking.client import TrackingClient

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

    def touched(self, run_id: str) -> None:
        """Note that ``run_id`` changed (called on the request path: a set insert)."""
        with self._lock:
            if len(self._pending) >= MAX_PENDING:  # not running (no lifespan?)
                self._pending.clear()  # searches render them anyway
            self._pending.add(run_id)

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


def _watching(name: str) -> Any:
    """A ``WriteWatchingStore`` method: the store's ``name``, then ``on_write(run_id)``."""

    def write(self: WriteWatchingStore, run_id: str, *args: Any, **kwargs: Any) -> Any:
        result = getattr(self._store, name)(run_id, *args, **kwargs)
        self._on_write(run_id)
        return result

    write.__name__ = name
    return write


class WriteWatchingStore:
    """A tracking store that tells ``on_write`` which run each successful write changed;
    everything else passes through."""

    def __init__(self, store: Any, on_write: Any) -> None:
        self._store = store
        self._on_write = on_write

    def __getattr__(self, name: str) -> Any:
        return getattr(self._store, name)

    def create_run(self, *args: Any, **kwargs: Any) -> Any:
        run = self._store.create_run(*args, **kwargs)
        self._on_write(run.info.run_id)
        return run

    log_batch = _watching("log_batch")
    update_run_info = _watching("update_run_info")
    delete_run = _watching("delete_run")
    restore_run = _watching("restore_run")
    delete_tag = _watching("delete_tag")
    log_inputs = _watching("log_inputs")


__all__ = ["Prerenderer", "WriteWatchingStore"]
