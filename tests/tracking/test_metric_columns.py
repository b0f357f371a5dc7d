"""``TrackingClient.get_metric_columns``: a history as NumPy columns, the same points as
``get_metric_history`` on every backend, through the client and through the store
interface's default (what the REST store uses); read a page at a time, so that memory
beyond the answer does not grow with the history."""

from __future__ import annotations

import math
import tracemalloc

import numpy as np
import pytest

from modelyard.errors import NotFound
from modelyard.store.metric_chunks import MetricColumns
from modelyard.tracking import client as client_module
from modelyard.tracking.entities import Metric
from modelyard.tracking.store import TrackingStore, gather_columns


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


def test_the_whole_history_is_read_a_page_at_a_time(client, run_id: str, monkeypatch) -> None:
    """However long the history, each read holds a page: the client joins pages, it never
    asks a store for the whole history at once."""
    monkeypatch.setattr(client_module, "MAX_HISTORY_PAGE", 1000)
    pages: list[tuple[int, str | None]] = []
    read_page = client.store.get_metric_columns_page

    def counted(run_id: str, key: str, max_results: int, page_token: str | None = None):
        pages.append((max_results, page_token))
        return read_page(run_id, key, max_results, page_token)

    monkeypatch.setattr(client.store, "get_metric_columns_page", counted)
    monkeypatch.setattr(client.store, "get_metric_columns", None)  # never the whole at once
    columns = client.get_metric_columns(run_id, "loss")
    assert len(columns.steps) == 2501 and columns.steps.tolist() == sorted(columns.steps.tolist())
    assert [size for size, _ in pages] == [1000, 1000, 1000]
    assert pages[0][1] is None and all(token for _, token in pages[1:])


def page_of(start: int, n: int) -> MetricColumns:
    steps = np.arange(start, start + n, dtype=np.int64)
    return MetricColumns(steps, steps + 1000, steps.astype(np.float64) / 7)


def test_gathering_pages_keeps_their_order_and_types() -> None:
    gathered = gather_columns(page_of(start, 3) for start in (0, 3, 6))
    assert gathered.steps.tolist() == list(range(9))
    assert gathered.timestamps.tolist() == list(range(1000, 1009))
    assert gathered.values.tolist() == [s / 7 for s in range(9)]
    empty = gather_columns([])
    assert [column.dtype for column in empty] == [np.int64, np.int64, np.float64]
    assert [len(column) for column in empty] == [0, 0, 0]


def test_gathering_holds_at_most_the_answer_and_one_more_column() -> None:
    """Joining the pages all three columns at once would hold the pages and the whole
    answer together, twice the answer; a column at a time, each page's part freed as it
    is copied, needs a third more at most."""
    pages, n = 200, 10_000
    tracemalloc.start()
    try:
        gathered = gather_columns(page_of(i * n, n) for i in range(pages))
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    answer = sum(column.nbytes for column in gathered)
    assert answer == pages * n * 24
    assert peak < answer * 1.4, f"peak {peak:,} bytes for an answer of {answer:,}"
