"""A batch that cannot be stored changes nothing, on every backend: on PostgreSQL the
run's check and the writes go out together (one round trip) and are judged at the end,
so these pin down that a refused batch still leaves no trace."""

from __future__ import annotations

import pytest

from modelyard.errors import InvalidParameter, InvalidState, NotFound
from modelyard.tracking.entities import Metric, Param, RunTag

POINTS = [Metric(f"m{i % 3}", i * 0.5, 1_700_000_000_000 + i, i) for i in range(30)]


def new_run(client) -> str:
    return client.create_run(client.create_experiment("batches")).info.run_id


def test_a_batch_for_an_unknown_run_is_not_found(client) -> None:
    with pytest.raises(NotFound, match="not found"):
        client.log_batch("f" * 32, metrics=POINTS, params=[Param("a", "1")])
    with pytest.raises(NotFound, match="not found"):
        client.log_metric("f" * 32, "loss", 1.0)


def test_a_batch_for_a_deleted_run_is_refused_and_stores_nothing(client) -> None:
    run_id = new_run(client)
    client.delete_run(run_id)
    with pytest.raises(InvalidState, match="active"):
        client.log_batch(run_id, metrics=POINTS, params=[Param("a", "1")], tags=[RunTag("t", "x")])
    client.restore_run(run_id)
    data = client.get_run(run_id).data
    assert (data.metrics, data.params, data.tags.get("t")) == ({}, {}, None)
    assert client.get_metric_history(run_id, "m0") == []


def test_a_batch_changing_a_param_is_refused_whole(client) -> None:
    run_id = new_run(client)
    client.log_batch(run_id, params=[Param("a", "1")])
    with pytest.raises(InvalidParameter, match="immutable"):
        client.log_batch(run_id, metrics=POINTS, params=[Param("a", "2")])
    assert client.get_metric_history(run_id, "m0") == []
    client.log_batch(run_id, metrics=POINTS)  # the connection is fine afterwards
    assert len(client.get_metric_history(run_id, "m0")) == 10
