"""Binner.slots is exactly searchsorted(edges, x, side="right"), on both of its paths."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as hs

from modelyard.monitoring.bins import Binner


def _quantile_edges(values: np.ndarray, bins: int = 1000) -> np.ndarray:
    return np.unique(np.quantile(values, np.linspace(0, 1, bins + 1)))


@pytest.mark.parametrize(
    ("name", "draw", "table"),
    [
        ("normal", lambda rng, n: rng.normal(5, 2, n), True),
        ("lognormal", lambda rng, n: rng.lognormal(0, 1, n), True),
        ("uniform", lambda rng, n: rng.uniform(-1e6, 1e6, n), True),
        ("pareto", lambda rng, n: rng.pareto(0.5, n), False),  # the tail defeats the table
        ("few values", lambda rng, n: rng.integers(0, 4, n).astype(float), False),
    ],
)
def test_slots_are_searchsorted(name: str, draw, table: bool) -> None:
    rng = np.random.default_rng(len(name))
    edges = _quantile_edges(draw(rng, 20_000))
    binner = Binner(edges)
    assert (binner._cells is not None) is table
    probe = np.concatenate(
        [draw(rng, 50_000), draw(rng, 5_000) * 1.7 - 0.3, edges, np.nextafter(edges, -np.inf)]
    )
    probe = np.concatenate([probe, [-1e308, 1e308, -np.inf, np.inf]])
    assert np.array_equal(binner.slots(probe), np.searchsorted(edges, probe, side="right"))


def test_a_range_past_a_double_falls_back() -> None:
    edges = np.concatenate([[-1.7e308], np.linspace(-1e3, 1e3, 100), [1.7e308]])
    binner = Binner(edges)
    assert binner._cells is None
    probe = np.array([-1e308, 0.0, 1.69e308])
    assert np.array_equal(binner.slots(probe), np.searchsorted(edges, probe, side="right"))


@settings(max_examples=60, deadline=None)
@given(
    hs.lists(hs.floats(-1e12, 1e12), min_size=1, max_size=300),
    hs.lists(hs.floats(-2e12, 2e12), min_size=1, max_size=300),
)
def test_any_edges_any_values(edge_values: list[float], values: list[float]) -> None:
    edges = np.unique(np.asarray(edge_values))
    probe = np.concatenate([np.asarray(values), edges])
    assert np.array_equal(Binner(edges).slots(probe), np.searchsorted(edges, probe, side="right"))
