"""Metric history chunks: packed columns that read back as the distinct points, in order."""

from __future__ import annotations

import math

from hypothesis import given
from hypothesis import strategies as st

from modelyard.store.metric_chunks import history, pack_point, pack_points, unpack_points

int64 = st.integers(min_value=-(2**63), max_value=2**63 - 1)
point = st.tuples(int64, int64, st.floats(allow_nan=True, allow_infinity=True))


def _same(a: float, b: float) -> bool:
    return (math.isnan(a) and math.isnan(b)) or a == b


@given(st.lists(point, max_size=50))
def test_a_chunk_gives_back_its_points_in_logged_order(points):
    chunk = pack_points([p[0] for p in points], [p[1] for p in points], [p[2] for p in points])
    back = list(unpack_points(chunk))
    assert len(back) == len(points)
    for (s, t, v), (s2, t2, v2) in zip(points, back, strict=True):
        assert (s, t) == (s2, t2) and _same(v, v2)


@given(st.lists(point, max_size=40), st.lists(point, max_size=40))
def test_a_history_is_sorted_and_a_replayed_chunk_adds_nothing(first, second):
    def chunk(points):
        return pack_points([p[0] for p in points], [p[1] for p in points], [p[2] for p in points])

    once = history([chunk(first), chunk(second)])
    replayed = history([chunk(first), chunk(second), chunk(first), chunk(second)])
    assert len(once) == len(replayed)
    keys = [(s, t, 0.0 if math.isnan(v) else v, math.isnan(v)) for s, t, v in once]
    assert keys == sorted(keys)
    assert len(set(keys)) == len(keys)  # identical points appear once


def test_nan_sorts_just_after_zero_as_mlflow_orders_it_and_infinities_survive():
    values = [math.nan, 2.0, 0.0, -math.inf, math.inf]
    chunk = pack_points([1, 1, 1, 1, 0], [5] * 5, values)
    steps_values = [(s, v) for s, _, v in history([chunk])]
    assert steps_values[0] == (0, math.inf)
    assert steps_values[1:3] == [(1, -math.inf), (1, 0.0)]
    assert math.isnan(steps_values[3][1])
    assert steps_values[4] == (1, 2.0)


def test_an_empty_history_is_empty():
    assert history([]) == []


def test_a_single_point_packs_as_a_one_point_chunk():
    assert pack_point(3, 4, 0.5) == pack_points([3], [4], [0.5])


def test_chunk_ids_only_grow_even_from_many_threads():
    from concurrent.futures import ThreadPoolExecutor

    from modelyard.store.metric_chunks import next_chunk_id

    with ThreadPoolExecutor(8) as pool:
        ids = list(pool.map(lambda _: next_chunk_id(), range(5_000)))
    assert len(set(ids)) == len(ids)
    assert next_chunk_id() > max(ids)
