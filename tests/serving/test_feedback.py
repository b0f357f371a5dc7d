"""What a data plane remembers of the requests it answered, for feedback: the newest
ones, within a budget of requests and of predicted values, as plain Python values."""

from __future__ import annotations

import gc

import numpy as np

from modelyard.serving.feedback import RecentPredictions, Served


def test_remembered_predictions_come_back_as_python_values():
    recent = RecentPredictions()
    recent.remember("r1", Served("primary", 3, np.array([0.25, 1.0]), key="user-7"))
    served = recent.get("r1")
    assert served == Served("primary", 3, (0.25, 1.0), "user-7")
    assert type(served.predictions[0]) is float
    assert recent.get("r2") is None


def test_the_oldest_are_forgotten_beyond_the_request_or_value_budget():
    recent = RecentPredictions(capacity=3, max_values=5)
    recent.remember("a", Served("primary", 1, np.array([1.0, 2.0, 3.0])))
    recent.remember("b", Served("primary", 1, np.array([4.0, 5.0])))
    recent.remember("c", Served("canary", 2, np.array([6.0])))  # 6 values: "a" goes
    assert recent.get("a") is None
    assert recent.get("b").predictions == (4.0, 5.0) and recent.get("c").version == 2
    for rid in ("d", "e"):
        recent.remember(rid, Served("primary", 1, (7.0,)))  # 4 requests: "b" goes
    assert recent.get("b") is None and recent.get("c") is not None


def test_a_remembered_view_does_not_keep_the_whole_batch_output():
    batch_output = np.arange(64, dtype=np.float64)
    recent = RecentPredictions()
    recent.remember("r1", Served("primary", 1, batch_output[3:4]))
    batch_output[3] = -1.0
    assert recent.get("r1").predictions == (3.0,)


def test_a_full_memory_costs_the_garbage_collector_nothing():
    recent = RecentPredictions()
    for i in range(1000):
        recent.remember(f"r{i}", Served("primary", 1, np.array([0.5]), None))
    gc.collect()
    # Untracked entries are never walked by a collection (a pause on the request path).
    assert not any(gc.is_tracked(entry) for entry in recent._items.values())
