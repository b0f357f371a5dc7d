"""LTTB down-sampling: the points a chart keeps of a long metric history."""

from __future__ import annotations

import numpy as np
import pytest

from modelyard.errors import InvalidParameter
from modelyard.tracking.downsample import StreamingSample, lttb


def reference_lttb(x: list[float], y: list[float], n: int) -> list[int]:
    """Steinarsson's algorithm as published, point by point (the specification)."""
    size = len(x)
    if size <= n:
        return list(range(size))
    every = (size - 2) / (n - 2)
    out, a = [0], 0
    for i in range(n - 2):
        start, end = int(i * every) + 1, int((i + 1) * every) + 1
        next_start, next_end = end, min(int((i + 2) * every) + 1, size)
        if i == n - 3:
            avg_x, avg_y = x[-1], y[-1]
        else:
            avg_x = sum(x[next_start:next_end]) / (next_end - next_start)
            avg_y = sum(y[next_start:next_end]) / (next_end - next_start)
        best, best_area = start, -1.0
        for j in range(start, end):
            area = abs((x[a] - avg_x) * (y[j] - y[a]) - (x[a] - x[j]) * (avg_y - y[a]))
            if area > best_area:
                best, best_area = j, area
        out.append(best)
        a = best
    out.append(size - 1)
    return out


def test_it_keeps_the_ends_and_one_point_per_bucket() -> None:
    x = np.arange(100_000.0)
    y = np.sin(x / 3000) + np.random.default_rng(0).normal(0, 0.1, x.size)
    keep = lttb(x, y, 1000)
    assert len(keep) == 1000 and keep[0] == 0 and keep[-1] == 99_999
    assert np.all(np.diff(keep) > 0)


def test_it_keeps_a_single_spike_that_a_stride_would_drop() -> None:
    x = np.arange(100_000.0)
    y = np.zeros_like(x)
    y[71_234] = 10.0
    keep = lttb(x, y, 500)
    assert 71_234 in keep
    assert 71_234 not in range(0, 100_000, 200)  # what taking every 200th point would keep


@pytest.mark.parametrize(("size", "n"), [(5000, 200), (1001, 7), (57, 4), (12_345, 500)])
def test_it_picks_the_points_of_the_published_algorithm(size: int, n: int) -> None:
    rng = np.random.default_rng(size)
    x = np.sort(rng.uniform(0, 1000, size))
    y = np.cumsum(rng.normal(0, 1, size))
    assert lttb(x, y, n).tolist() == reference_lttb(list(x), list(y), n)


def test_a_short_history_is_returned_whole() -> None:
    assert lttb([1, 2, 3], [3, 2, 1], 1000).tolist() == [0, 1, 2]
    assert lttb([], [], 10).tolist() == []


@pytest.mark.parametrize(
    ("x", "y", "n", "field"),
    [
        ([1, 2], [1], 10, "x"),
        ([[1, 2]], [[1, 2]], 10, "x"),
        ([1, 2, 3, 4], [1, 2, 3, 4], 2, "max_points"),
    ],
)
def test_bad_input_names_the_field(x: list, y: list, n: int, field: str) -> None:
    with pytest.raises(InvalidParameter) as caught:
        lttb(x, y, n)
    assert caught.value.field == field


def pages(steps: np.ndarray, values: np.ndarray, size: int):
    for start in range(0, len(steps), size):
        part = slice(start, start + size)
        yield steps[part], steps[part] * 10, values[part]


def test_a_streamed_history_under_the_cap_is_sampled_exactly_as_a_whole() -> None:
    steps = np.arange(20_000, dtype=np.int64)
    values = np.cumsum(np.random.default_rng(1).normal(0, 1, steps.size))
    values[[5, 777]] = [np.nan, np.inf]
    sample = StreamingSample(300, exact=50_000)
    for page in pages(steps, values, 3000):
        sample.add(*page)
    kept_steps, _, kept_values = sample.result()
    finite = np.isfinite(values)
    expected = lttb(steps[finite], values[finite], 300)
    assert kept_steps.tolist() == steps[finite][expected].tolist()
    assert kept_values.tolist() == values[finite][expected].tolist()
    assert sample.total == 20_000 and sample.non_finite == 2


@pytest.mark.parametrize("x", ["step", "timestamp"])
def test_a_long_history_is_held_thinned_and_keeps_its_spike_and_ends(x: str) -> None:
    size, cap, page = 400_000, 10_000, 25_000
    steps = np.arange(size, dtype=np.int64)
    values = np.sin(steps / 20_000.0)
    values[271_234] = 50.0
    sample = StreamingSample(500, x, exact=cap)
    for part in pages(steps, values, page):
        sample.add(*part)
        assert sample._count <= cap + page  # never more than the cap and a page held
    kept_steps, kept_times, kept_values = sample.result()
    assert len(kept_steps) == 500 and sample.total == size and sample.non_finite == 0
    assert kept_steps[0] == 0 and kept_steps[-1] == size - 1 and 271_234 in kept_steps
    assert np.all(np.diff(kept_times if x == "timestamp" else kept_steps) > 0)
    assert kept_values.max() == 50.0
