"""The server renders the runs it writes in the background, so searches find them ready."""

from __future__ import annotations

from tests.server.control.test_run_json_cache import (
    cached_answer,
    experiment,
    fresh_answer,
    run_ids_of,
)

from modelyard.server.control.app import observed_client
from modelyard.server.control.prerender import MAX_PENDING, Prerenderer
from modelyard.server.control.run_json_cache import RunJsonCache
from modelyard.tracking.observed_store import StoreWrite

__all__ = ["experiment"]  # the fixture, shared with the cache's tests


def test_the_prerenderer_renders_what_the_watched_store_wrote(client, experiment):
    cache = RunJsonCache()
    prerender = Prerenderer(cache, client)
    watched = observed_client(client, prerender)
    run_id = watched.create_run(experiment).info.run_id
    watched.log_metric(run_id, "loss", 0.5)
    watched.set_tag(run_ids_of(client, experiment)[-1], "team", "z")
    assert prerender.render_pending() == 2
    assert prerender.render_pending() == 0  # nothing new
    assert cached_answer(client, cache, experiment) == fresh_answer(client, experiment)
    assert cache.hits == 2 and cache.misses == 2  # the two runs it never saw written


def test_pending_runs_are_bounded_when_nothing_renders_them(client):
    prerender = Prerenderer(RunJsonCache(), client)
    for i in range(MAX_PENDING + 5):
        prerender.on_write(StoreWrite("log_batch", (f"{i:032x}",)))
    assert len(prerender._pending) <= MAX_PENDING
