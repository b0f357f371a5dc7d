"""Search answers from runs rendered once: identical to rendering every run afresh, and
never stale — whatever changed the run, in this process or another."""

from __future__ import annotations

import json
import math

import pytest

from modelyard import json_codec
from modelyard.server.control.run_json_cache import RunJsonCache, search_answer
from modelyard.tracking import mlflow_wire as wire
from modelyard.tracking.client import TrackingClient
from modelyard.tracking.entities import DatasetInput, Metric, Param, RunStatus, RunTag


def fresh_answer(client: TrackingClient, experiment_id: str) -> list[dict]:
    """What the search answer holds when nothing is kept: every run rendered now."""
    runs = client.search_runs([experiment_id], max_results=1000, run_view_type="ALL")
    return [json.loads(json_codec.dumps(wire.run_to_json(r))) for r in runs]


def cached_answer(client: TrackingClient, cache: RunJsonCache, experiment_id: str) -> list[dict]:
    found = client.search_run_revisions([experiment_id], max_results=1000, run_view_type="ALL")
    return [json.loads(body) for body in cache.render(client, found)]


@pytest.fixture
def experiment(client):
    experiment_id = client.create_experiment("cached")
    for i in range(3):
        run_id = client.create_run(experiment_id, run_name=f"r{i}").info.run_id
        client.log_batch(
            run_id,
            metrics=[Metric("loss", 1.0 / (i + 1), 5, 1), Metric("odd", math.nan, 5, 1)],
            params=[Param("model", "gbm"), Param("quote", 'say "hi" ✓')],
            tags=[RunTag("team", "x")],
        )
    return experiment_id


def test_kept_runs_render_exactly_as_fresh_ones(client, experiment):
    cache = RunJsonCache()
    first = cached_answer(client, cache, experiment)
    again = cached_answer(client, cache, experiment)
    assert first == again == fresh_answer(client, experiment)
    assert cache.hits == 3 and cache.misses == 3


def run_ids_of(client, experiment_id):
    return [r.info.run_id for r in client.search_runs([experiment_id])]


CHANGES = {
    "metric": lambda c, r: c.log_metric(r, "loss", 0.01, step=9),
    "param": lambda c, r: c.log_param(r, "extra", "1"),
    "tag": lambda c, r: c.set_tag(r, "team", "y"),
    "deleted tag": lambda c, r: c.delete_tag(r, "team"),
    "status": lambda c, r: c.set_terminated(r, RunStatus.FINISHED),
    "name": lambda c, r: c.update_run(r, name="renamed"),
    "input": lambda c, r: c.log_inputs(
        r, [DatasetInput("sales", "abc123", "training", "local", "/tmp/x")]
    ),
    "deleted": lambda c, r: c.delete_run(r),
}


@pytest.mark.parametrize("change", sorted(CHANGES))
def test_a_changed_run_is_rendered_again(client, experiment, change):
    cache = RunJsonCache()
    cached_answer(client, cache, experiment)
    CHANGES[change](client, run_ids_of(client, experiment)[1])
    assert cached_answer(client, cache, experiment) == fresh_answer(client, experiment)


def test_a_change_made_through_another_store_is_seen(backend_settings, experiment, client):
    cache = RunJsonCache()
    cached_answer(client, cache, experiment)
    other = TrackingClient.from_settings(backend_settings)  # its own engine and connections
    other.set_tag(run_ids_of(client, experiment)[0], "team", "from elsewhere")
    kept = cached_answer(client, cache, experiment)
    assert kept == fresh_answer(client, experiment)
    assert any(
        t == {"key": "team", "value": "from elsewhere"} for r in kept for t in r["data"]["tags"]
    )


def test_deleting_an_experiment_moves_its_runs(client, experiment):
    cache = RunJsonCache()
    cached_answer(client, cache, experiment)
    client.delete_experiment(experiment)
    stages = {r["info"]["lifecycle_stage"] for r in cached_answer(client, cache, experiment)}
    assert stages == {"deleted"}


def test_memory_is_bounded_least_recently_used_first(client, experiment):
    cache = RunJsonCache(max_bytes=1)
    assert len(cached_answer(client, cache, experiment)) == 3  # still answered in full
    assert len(cache) == 0
    roomy = RunJsonCache(max_bytes=2_000)
    cached_answer(client, roomy, experiment)
    assert 0 < len(roomy) < 3


def test_the_answer_leaves_out_empty_fields_as_the_wire_does():
    assert search_answer([], None) == b"{}"
    assert json.loads(search_answer([], "tok")) == {"next_page_token": "tok"}
    body = search_answer([b'{"info":{}}', b'{"info":{"run_id":"a"}}'], None)
    assert json.loads(body) == {"runs": [{"info": {}}, {"info": {"run_id": "a"}}]}


@pytest.mark.parametrize(
    "order_by", [["metrics.loss DESC"], ["params.model"], ["attributes.run_name"]]
)
def test_revisions_come_in_the_order_and_pages_search_runs_gives(client, experiment, order_by):
    runs = client.search_runs([experiment], order_by=order_by, max_results=2)
    found = client.search_run_revisions([experiment], order_by=order_by, max_results=2)
    assert [r for r, _ in found] == [r.info.run_id for r in runs]
    assert found.next_page_token == runs.next_page_token


def test_a_refresh_renders_runs_ahead_of_the_search(client, experiment):
    cache = RunJsonCache()
    run_ids = run_ids_of(client, experiment)
    assert cache.refresh(client, run_ids) == 3
    kept = cached_answer(client, cache, experiment)
    assert cache.hits == 3 and cache.misses == 0
    assert kept == fresh_answer(client, experiment)


def test_a_refresh_never_labels_content_older_than_it_is(client, experiment):
    """The label is read before the content: a write landing in between leaves content
    newer than its label (re-rendered at the next search), never the other way round."""
    cache = RunJsonCache()
    run_ids = run_ids_of(client, experiment)
    real = client.get_runs

    def get_runs_after_a_write(ids):
        client.set_tag(run_ids[0], "late", "write")  # lands after the revisions were read
        return real(ids)

    client.get_runs = get_runs_after_a_write  # type: ignore[method-assign]
    cache.refresh(client, run_ids)
    client.get_runs = real  # type: ignore[method-assign]
    assert cached_answer(client, cache, experiment) == fresh_answer(client, experiment)
    assert cache.misses == 1  # the late write moved the revision: rendered again
