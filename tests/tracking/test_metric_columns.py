"""``TrackingClient.get_metric_columns``: a history as NumPy columns, the same points as
``get_metric_history`` on every backend, through the SQL store's fast path and through
the store interface's default (what the REST store uses)."""

from __future__ import annotations

import math

import pytest

from modelyard.errors import NotFound
from modelyard.tracking.entities import Metric
from modelyard.tracking.store import TrackingStore


@pytest.fixture
def run_id(client) -> str:
    experiment = client.create_experiment("columns")
    run_id = client.create_run(experiment).info.run_id
    points = [Metric("loss", 1.0 / (s + 1), 1000 + s, s) for s in range(2500)]
    points[7] = Metric("loss", math.nan, 1007, 7)
    for start in range(0, len(points), 1000):
        client.log_batch(run_id, metrics=points[start : start + 1000])
    client.log_metric(run_id, "loss", 0.25, step=3, timestamp=999)  # per-call, out of order
    client.log_batch(run_id, metrics=points[:10])  # a replay adds nothing
    return run_id


def test_the_columns_are_the_history(client, run_id: str) -> None:
    history = client.get_metric_history(run_id, "loss")
    for columns in (
        client.get_metric_columns(run_id, "loss"),
        TrackingStore.get_metric_columns(client.store, run_id, "loss"),  # the default
    ):
        assert len(columns.steps) == len(history) == 2501
        assert columns.steps.tolist() == [p.step for p in history]
        assert columns.timestamps.tolist() == [p.timestamp for p in history]
        values = columns.values.tolist()
        assert math.isnan(values[8]) and math.isnan(history[8].value)
        assert [v for i, v in enumerate(values) if i != 8] == [
            p.value for i, p in enumerate(history) if i != 8
        ]


def test_an_unknown_metric_is_empty_and_an_unknown_run_is_not_found(client, run_id: str) -> None:
    assert len(client.get_metric_columns(run_id, "nothing").steps) == 0
    with pytest.raises(NotFound):
        client.get_metric_columns("0123456789abcdef0123456789abcdef", "loss")
