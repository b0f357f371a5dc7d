"""The server sees every write it makes: each write method of the tracking store, called
through the client ``create_app`` composes (``observed_client``), is counted on
``/metrics`` and notes the runs it changed for pre-rendering."""

from __future__ import annotations

import pytest
from tests.tracking.test_observed_store import PREPARE, WRITES, Subject, subject, write_methods

from modelyard.server.control.app import observed_client
from modelyard.server.control.metrics import ServerMetrics
from modelyard.server.control.prerender import Prerenderer
from modelyard.server.control.run_json_cache import RunJsonCache

#: Writes that name only their experiment: nothing to pre-render (a search renders what
#: a deleted or restored experiment changed in its runs).
EXPERIMENT_WRITES = frozenset(
    {
        "create_experiment",
        "rename_experiment",
        "delete_experiment",
        "restore_experiment",
        "set_experiment_tag",
        "delete_experiment_tag",
    }
)


@pytest.mark.parametrize("method", write_methods())
def test_each_write_through_the_server_client_is_counted_and_noted(local_client, method):
    metrics = ServerMetrics()
    prerender = Prerenderer(RunJsonCache(), local_client)
    served = observed_client(local_client, metrics, prerender)
    s = subject(local_client.store, method)
    PREPARE.get(method, lambda s: None)(s)
    sample = metrics.registry.get_sample_value

    WRITES[method][0](Subject(served.store, s.experiment_id, s.run_id))

    assert sample("modelyard_tracking_writes_total", {"method": method}) == 1
    points = sample("modelyard_tracking_metric_points_total")
    assert points == (2 if method == "log_batch" else 0)
    assert sample("modelyard_tracking_runs_created_total") == (method == "create_run")
    if method in EXPERIMENT_WRITES:
        assert prerender._pending == set()
    elif method == "create_run":
        (created,) = prerender._pending
        assert created != s.run_id and served.get_run(created).info.run_id == created
    else:
        assert prerender._pending == {s.run_id}


def test_the_server_client_counts_what_the_fluent_client_calls_log(local_client):
    metrics = ServerMetrics()
    prerender = Prerenderer(RunJsonCache(), local_client)
    served = observed_client(local_client, metrics, prerender)
    run_id = served.create_run("0").info.run_id
    served.log_metric(run_id, "loss", 0.5)
    served.log_param(run_id, "lr", "0.1")
    served.set_terminated(run_id)
    sample = metrics.registry.get_sample_value
    assert sample("modelyard_tracking_writes_total", {"method": "log_batch"}) == 2
    assert sample("modelyard_tracking_writes_total", {"method": "update_run_info"}) == 1
    assert sample("modelyard_tracking_metric_points_total") == 1
    assert prerender._pending == {run_id}
