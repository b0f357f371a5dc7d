"""A metric history read as NumPy columns: exactly ``history``'s points, in its order,
replayed chunks folded, NaN and infinities kept."""

from __future__ import annotations

import math

from hypothesis import given, settings
from hypothesis import strategies as st

from modelyard.store.metric_chunks import history, history_columns, pack_point, pack_points

small = st.integers(min_value=-3, max_value=3)  # few values: many ties and duplicates
int64 = st.integers(min_value=-(2**63), max_value=2**63 - 1)
value = st.sampled_from([0.0, -0.0, 1.5, -2.0, math.nan, math.inf, -math.inf]) | st.floats()
point = st.tuples(small | int64, small, value)


def chunk_of(points: list[tuple[int, int, float]]) -> bytes:
    if len(points) == 1:
        return pack_point(*points[0])  # what per-call logging writes
    return pack_points([p[0] for p in points], [p[1] for p in points], [p[2] for p in points])


def same(a: float, b: float) -> bool:
    return (math.isnan(a) and math.isnan(b)) or (
        a == b and math.copysign(1, a) == math.copysign(1, b)
    )


@settings(deadline=None)  # the first example imports NumPy (~0.4 s on a loaded machine)
@given(st.lists(st.lists(point, min_size=1, max_size=20), max_size=6), st.data())
def test_the_columns_hold_the_points_of_the_history(chunks, data):
    blobs = [chunk_of(c) for c in chunks]
    blobs += data.draw(st.lists(st.sampled_from(blobs), max_size=3)) if blobs else []  # replays
    expected = history(blobs)
    steps, timestamps, values = history_columns(blobs)
    assert steps.dtype == timestamps.dtype == "int64" and values.dtype == "float64"
    assert steps.tolist() == [p[0] for p in expected]
    assert timestamps.tolist() == [p[1] for p in expected]
    assert all(same(a, p[2]) for a, p in zip(values.tolist(), expected, strict=True))


def test_no_chunks_is_an_empty_history():
    steps, timestamps, values = history_columns([])
    assert len(steps) == len(timestamps) == len(values) == 0
