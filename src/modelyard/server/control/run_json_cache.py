"""Search answers built from runs rendered once: each run's MLflow JSON kept by revision.

Why: rendering a search answer — loading 250 runs' params, tags and metrics and writing
them as MLflow JSON — costs several times the search itself, and the same runs come back
search after search (a UI polling an experiment, a sweep comparing its trials). Most of
them never change again once finished. So the server keeps each run's rendered JSON with
the run's *revision*, a counter the store bumps in the same transaction as every change
to the run; the search query reads the revisions with the ids, and only runs whose
revision moved (or that were never rendered) are loaded and rendered again. Correct
across processes — another server worker or a training script writing to the same
database bumps the same counter — and bounded: least recently used runs are dropped
beyond ``max_bytes``.

A run loaded after the search query read its revision may already hold a later change;
it is then kept under the older revision, and re-rendered at the next search that reads
the newer one. Nothing stale is ever served as current.

Runs the server itself writes need not wait for a search: ``server.control.prerender`` renders
them in the background a moment after the write (``refresh``), so the first search after
a sweep logged through the server finds them ready. Runs written by other processes are
rendered when a search first finds them.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Sequence

from modelyard import json_codec
from modelyard.tracking import mlflow_wire as wire
from modelyard.tracking.client import TrackingClient

DEFAULT_MAX_BYTES = 64 << 20


class RunJsonCache:
    """Rendered runs by id, each valid for one revision; thread-safe."""

    def __init__(self, max_bytes: int = DEFAULT_MAX_BYTES) -> None:
        self.max_bytes = max_bytes
        self._runs: OrderedDict[str, tuple[int, bytes]] = OrderedDict()
        self._bytes = 0
        self._lock = threading.Lock()
        self.hits = 0
        self.misses = 0

    def render(self, client: TrackingClient, found: Sequence[tuple[str, int]]) -> list[bytes]:
        """The MLflow JSON of each ``(run_id, revision)``, in order."""
        rendered: dict[str, bytes] = {}
        with self._lock:
            for run_id, revision in found:
                held = self._runs.get(run_id)
                if held is not None and held[0] == revision:
                    rendered[run_id] = held[1]
                    self._runs.move_to_end(run_id)
            self.hits += len(rendered)
            self.misses += len(found) - len(rendered)
        missing = [run_id for run_id, _ in found if run_id not in rendered]
        if missing:
            revisions = dict(found)
            fresh = _rendered(client, missing)
            with self._lock:
                for run_id, body in fresh.items():
                    self._keep_unless_newer(run_id, revisions[run_id], body)
            rendered.update(fresh)
        # A run purged between the search and the load is left out, as search_runs would.
        return [rendered[run_id] for run_id, _ in found if run_id in rendered]

    def refresh(self, client: TrackingClient, run_ids: Sequence[str]) -> int:
        """Render ``run_ids`` now; how many were rendered. Each is kept under the revision
        read *before* its content was, so what is kept is never older than its label."""
        revisions = client.run_revisions(run_ids)
        bodies = _rendered(client, list(revisions))
        with self._lock:
            for run_id, body in bodies.items():
                self._keep_unless_newer(run_id, revisions[run_id], body)
        return len(bodies)

    def _keep_unless_newer(self, run_id: str, revision: int, body: bytes) -> None:
        """Keep ``body`` unless a later revision is held already (a search and the
        background renderer may render the same run at once; either answer is correct,
        the later one lasts longer)."""
        held = self._runs.get(run_id)
        if held is None or held[0] <= revision:
            self._keep(run_id, revision, body)

    def _keep(self, run_id: str, revision: int, body: bytes) -> None:
        old = self._runs.pop(run_id, None)
        if old is not None:
            self._bytes -= len(old[1])
        if len(body) > self.max_bytes:
            return
        self._runs[run_id] = (revision, body)
        self._bytes += len(body)
        while self._bytes > self.max_bytes:
            _, (_, dropped) = self._runs.popitem(last=False)
            self._bytes -= len(dropped)

    def __len__(self) -> int:
        return len(self._runs)


def _rendered(client: TrackingClient, run_ids: list[str]) -> dict[str, bytes]:
    """The MLflow JSON of each run in ``run_ids`` that exists, loaded now."""
    return {
        run.info.run_id: json_codec.dumps(wire.run_to_json(run)) for run in client.get_runs(run_ids)
    }


def search_answer(runs: Sequence[bytes], next_page_token: str | None) -> json_codec.Encoded:
    """``{"runs": [...], "next_page_token": ...}`` with empty fields left out, as
    ``wire.prune`` would, from runs already rendered."""
    parts = []
    if runs:
        parts.append(b'"runs":[' + b",".join(runs) + b"]")
    if next_page_token:
        parts.append(b'"next_page_token":' + json_codec.dumps(next_page_token))
    return json_codec.Encoded(b"{" + b",".join(parts) + b"}")


__all__ = ["DEFAULT_MAX_BYTES", "RunJsonCache", "search_answer"]
