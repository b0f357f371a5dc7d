"""The streamed profile's sketches hold the error bounds their docstrings state, checked
against NumPy on random data: histograms and single-batch quantiles exactly (up to
rounding), the quantile sample within its tracked rank error."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from modelyard.data import sketches

finite = st.floats(-1e12, 1e12, allow_nan=False, allow_infinity=False)
values = hnp.arrays(np.float64, st.integers(1, 300), elements=finite)
# Few distinct values too, so that ties (and runs across a bin edge) are common.
tied = hnp.arrays(np.float64, st.integers(1, 300), elements=st.integers(-5, 5).map(float))
fractions = st.lists(st.floats(0, 1), min_size=1, max_size=8)


@settings(max_examples=200, deadline=None)
@given(st.one_of(values, tied), fractions)
def test_quantiles_of_sorted_values_are_numpys_linear_quantiles(data, qs):
    ours = sketches.quantiles_sorted(np.sort(data), qs)
    for q, value in zip(qs, ours, strict=True):
        expected = float(np.quantile(data, q))
        scale = max(abs(float(data.min())), abs(float(data.max())))
        assert math.isclose(value, expected, rel_tol=0, abs_tol=4 * math.ulp(scale))


edge_sets = st.lists(finite, min_size=2, max_size=12, unique=True).map(sorted)


@settings(max_examples=200, deadline=None)
@given(st.one_of(values, tied), st.one_of(edge_sets, st.just([-3.0, -1.0, 0.0, 1.0, 3.0])))
def test_bin_counts_are_numpys_histogram_with_outside_values_in_the_end_bins(data, edges):
    edges = np.asarray(edges)
    expected, _ = np.histogram(np.clip(data, edges[0], edges[-1]), edges)
    assert sketches.bin_counts(np.sort(data), edges).tolist() == expected.tolist()


def _within_rank(all_values: np.ndarray, value: float, q: float, slack: float) -> bool:
    """Whether ``value`` is a ``q`` quantile of ``all_values`` give or take ``slack`` rows:
    fewer than q·n + slack values below it, and at least q·n - slack up to it."""
    ordered = np.sort(all_values)
    below = int(np.searchsorted(ordered, value, side="left"))
    up_to = int(np.searchsorted(ordered, value, side="right"))
    target = q * len(ordered)
    return below <= target + slack and up_to >= target - slack


batch = st.one_of(
    hnp.arrays(np.float64, st.integers(1, 400), elements=finite),
    hnp.arrays(np.float64, st.integers(1, 400), elements=st.integers(-20, 20).map(float)),
)


@settings(max_examples=150, deadline=None)
@given(
    st.lists(batch, min_size=1, max_size=12),
    st.integers(2, 40),
    st.integers(4, 120),
    fractions,
)
def test_the_quantile_sample_stays_within_its_rank_error(batches, per_batch, cap, qs):
    sample = sketches.QuantileSample(per_batch=per_batch, cap=cap)
    for values_ in batches:
        sample.add(np.sort(values_))
    everything = np.concatenate(batches)
    assert sample.rows == len(everything)
    slack = sample.rank_error + 1e-9 * len(everything)
    for q, value in zip(qs, sample.quantiles(qs), strict=True):
        assert _within_rank(everything, value, q, slack), (q, value, sample.rank_error)


def test_the_quantile_sample_is_exact_while_every_value_is_kept():
    rng = np.random.default_rng(0)
    batches = [rng.normal(0, 1, 1_000) for _ in range(3)]
    sample = sketches.QuantileSample(per_batch=1_000, cap=10_000)
    for values_ in batches:
        sample.add(np.sort(values_))
    assert sample.rank_error == 0
    everything = np.concatenate(batches)
    for q, value in zip((0.01, 0.5, 0.99), sample.quantiles((0.01, 0.5, 0.99)), strict=True):
        assert value == np.quantile(everything, q, method="inverted_cdf")


def test_the_default_bound_is_small_on_a_large_stream():
    rng = np.random.default_rng(1)
    sample = sketches.QuantileSample()
    batches = [rng.lognormal(0, 1, 100_000) for _ in range(20)]
    for values_ in batches:
        sample.add(np.sort(values_))
    rows = sum(len(b) for b in batches)
    assert sample.rank_error / rows < 2e-4
    everything = np.concatenate(batches)
    for q, value in zip((0.05, 0.5, 0.95), sample.quantiles((0.05, 0.5, 0.95)), strict=True):
        assert _within_rank(everything, value, q, sample.rank_error)
        assert value == pytest.approx(np.quantile(everything, q), rel=1e-2)
