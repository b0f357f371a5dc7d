"""PSI, counted by hand for speed, holds the bounds its module states: SciPy's symmetric
Kullback-Leibler divergence of the floored proportions, NumPy's histogram counts, and exact
re-binning when two profiles share their edges."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp
from scipy import special, stats

from modelyard.data.contracts.distribution import (
    EPSILON,
    numeric_counts,
    profile_psi,
    psi,
)

bins = st.integers(2, 30)


def count_pairs(max_count: int = 100_000) -> st.SearchStrategy:
    counts = st.integers(0, max_count)
    return bins.flatmap(lambda k: st.tuples(st.lists(counts, min_size=k, max_size=k),
                                            st.lists(counts, min_size=k, max_size=k)))  # fmt: skip


@settings(max_examples=300, deadline=None)
@given(count_pairs())
def test_psi_is_scipys_symmetric_kl_divergence_of_the_floored_proportions(pair):
    expected, actual = (np.asarray(c, dtype=np.float64) for c in pair)
    assume(expected.sum() > 0 and actual.sum() > 0)
    e = np.maximum(expected / expected.sum(), EPSILON)
    a = np.maximum(actual / actual.sum(), EPSILON)
    reference = float(np.sum(special.rel_entr(a, e) + special.rel_entr(e, a)))
    assert psi(expected, actual) == pytest.approx(reference, rel=1e-12, abs=1e-15)


@settings(max_examples=300, deadline=None)
@given(count_pairs())
def test_above_the_floor_psi_is_the_divergence_of_the_data_itself(pair):
    expected, actual = (np.asarray(c, dtype=np.float64) + 1 for c in pair)
    assume(min((expected / expected.sum()).min(), (actual / actual.sum()).min()) >= EPSILON)
    divergence = stats.entropy(actual, expected) + stats.entropy(expected, actual)
    assert psi(expected, actual) == pytest.approx(divergence, rel=1e-12, abs=1e-15)


def test_psi_of_empty_counts():
    assert psi([0, 0], [0, 0]) == 0.0
    assert psi([0, 0], [1, 2]) == math.inf
    assert psi([3, 4], [3, 4]) == 0.0


finite = st.floats(-1e9, 1e9, allow_nan=False, allow_infinity=False)
edge_sets = st.lists(finite, min_size=2, max_size=12, unique=True).map(sorted)


@settings(max_examples=300, deadline=None)
@given(hnp.arrays(np.float64, st.integers(0, 300), elements=finite), edge_sets)
def test_numeric_counts_are_numpys_histogram_of_the_values_clipped_into_the_edges(values, edges):
    expected, _ = np.histogram(np.clip(values, edges[0], edges[-1]), np.asarray(edges))
    assert numeric_counts(values, edges).tolist() == expected.tolist()


def _profile(edges: list[float], counts: list[int]) -> dict:
    return {
        "kind": "numeric",
        "count": int(sum(counts)),
        "histogram": {"edges": edges, "counts": counts},
    }


@settings(max_examples=200, deadline=None)
@given(edge_sets, st.data())
def test_profile_psi_is_exact_on_shared_or_refined_edges(edges, data):
    k = len(edges) - 1
    counts = st.lists(st.integers(0, 10_000), min_size=k, max_size=k)
    reference, current = data.draw(counts), data.draw(counts)
    assume(sum(reference) > 0 and sum(current) > 0)
    exact = psi(reference, current)
    assert profile_psi(_profile(edges, reference), _profile(edges, current)) == pytest.approx(
        exact, rel=1e-12, abs=1e-15
    )
    # each bin of the current profile split in two: the same counts once added back up
    halves = sorted({*edges, *((lo + hi) / 2 for lo, hi in itertools.pairwise(edges))})
    assume(len(halves) == 2 * k + 1)
    split = [part for c in current for part in (c // 2, c - c // 2)]
    assert profile_psi(_profile(edges, reference), _profile(halves, split)) == pytest.approx(
        exact, rel=1e-12, abs=1e-15
    )
