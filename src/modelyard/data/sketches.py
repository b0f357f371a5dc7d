"""Mergeable summaries for streamed profiles: distinct counts, quantiles, histograms.

* ``DistinctCounter``: exact while the distinct values fit ``limit``, then a HyperLogLog
  sketch (2^14 registers: about 0.8% standard error, 16 KB);
* ``QuantileSample``: a weighted sample of each batch's sorted values, compacted when it
  grows past a cap, so quantiles have a small bounded rank error in bounded memory (the
  bound is tracked as values arrive: ``rank_error``);
* histogram helpers that count sorted values per bin with ``searchsorted`` — exactly
  ``numpy.histogram``'s counts;
* ``quantiles_sorted``: ``numpy.quantile``'s linear interpolation on values already sorted.

Everything is NumPy over whole arrays; nothing loops per value. tests/data/test_sketches.py
checks each bound stated here against NumPy on random data (Hypothesis).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import numpy as np

HLL_P = 14


def identity(values: Any) -> Any:
    return values


def mix_values(values: np.ndarray) -> np.ndarray:
    """64-bit hashes of numeric values (by their bit patterns)."""
    import numpy as np

    from modelyard.data.digest import mix

    bits = values.astype(np.float64) if values.dtype.kind == "f" else values.astype(np.int64)
    return mix(bits.view(np.uint64))


class DistinctCounter:
    """Distinct values across batches: exact up to ``limit``, then HyperLogLog.

    Each batch hands over its own distinct values. The first batch is only counted: if no
    second batch comes (any in-memory table), nothing else is computed. ``to_keys`` turns
    values into sortable NumPy keys for the exact union; ``to_hashes`` turns keys into
    uniformly spread 64-bit hashes for the sketch.
    """

    def __init__(
        self,
        to_keys: Callable[[Any], Any],
        to_hashes: Callable[[Any], Any],
        limit: int = 200_000,
    ) -> None:
        self._to_keys = to_keys
        self._to_hashes = to_hashes
        self.limit = limit
        self._first: Any = None
        self._first_count = 0
        self._keys: np.ndarray | None = None
        self._hll: np.ndarray | None = None
        self._batches = 0

    def add(self, uniques: Any) -> None:
        self._batches += 1
        if self._batches == 1:
            self._first, self._first_count = uniques, len(uniques)
            return
        if self._first is not None:
            first, self._first = self._first, None
            self._absorb(first)
        self._absorb(uniques)

    def _absorb(self, uniques: Any) -> None:
        import numpy as np

        keys = self._to_keys(uniques)
        if self._hll is None:
            merged = np.unique(keys) if self._keys is None else np.union1d(self._keys, keys)
            if len(merged) <= self.limit:
                self._keys = merged
                return
            self._keys = None
            keys = merged
            self._hll = np.zeros(1 << HLL_P, dtype=np.uint8)
        hashes = self._to_hashes(keys)
        idx = (hashes >> np.uint64(64 - HLL_P)).astype(np.intp)
        rest = hashes & np.uint64((1 << (64 - HLL_P)) - 1)
        _, bit_length = np.frexp(rest.astype(np.float64))  # exact: rest < 2**53
        rho = (64 - HLL_P + 1 - bit_length).astype(np.uint8)
        np.maximum.at(self._hll, idx, rho)

    def result(self) -> tuple[int, bool]:
        """(distinct count, whether it is exact)."""
        import numpy as np

        if self._batches <= 1:
            return self._first_count, True
        if self._hll is None:
            return (0 if self._keys is None else len(self._keys)), True
        m = float(1 << HLL_P)
        harmonic = float(np.sum(np.ldexp(1.0, -self._hll.astype(np.int64))))
        estimate = 0.7213 / (1 + 1.079 / m) * m * m / harmonic
        zeros = int(np.count_nonzero(self._hll == 0))
        if estimate <= 2.5 * m and zeros:
            estimate = m * math.log(m / zeros)
        return round(estimate), False


class QuantileSample:
    """Evenly spaced values of each sorted batch, weighted by how many rows each stands for.

    Past ``cap`` values the sample is compacted to ``cap // 2`` points at evenly spaced
    cumulative weights.

    Error bound: a quantile ``q`` it returns is a value whose rank among all the rows added
    is within ``rank_error`` rows of ``q · rows``. Keeping every ``step = n // per_batch``-th
    value of a batch of ``n`` moves ranks by at most ``2 · step`` rows (nothing while
    ``n < 2 · per_batch``: every value is kept); a compaction moves them by at most half a
    point's new weight, ``rows_so_far / (2 · (cap // 2))``. ``rank_error`` adds these up as
    values arrive. With the defaults that is at most 1e-4 of a sampled batch's rows plus
    5e-6 of the rows per compaction.
    """

    def __init__(self, per_batch: int = 20_000, cap: int = 200_000) -> None:
        self.per_batch, self.cap = per_batch, cap
        self._parts: list[tuple[np.ndarray, float]] = []
        self.rows = 0
        #: A bound, in rows, on how far a returned quantile's rank is from the asked one.
        self.rank_error = 0.0

    def add(self, sorted_values: np.ndarray) -> None:
        n = len(sorted_values)
        step = max(1, n // self.per_batch)
        sample = sorted_values[step // 2 :: step].copy()  # a view would pin the whole batch
        self._parts.append((sample, n / len(sample)))
        self.rows += n
        if step > 1:
            self.rank_error += 2 * step
        if sum(len(v) for v, _ in self._parts) > self.cap:
            self._compact()

    def _arrays(self) -> tuple[np.ndarray, np.ndarray]:
        import numpy as np

        values = np.concatenate([v for v, _ in self._parts])
        weights = np.concatenate([np.full(len(v), w) for v, w in self._parts])
        order = np.argsort(values, kind="stable")
        return values[order], weights[order]

    def _compact(self) -> None:
        import numpy as np

        values, weights = self._arrays()
        keep = self.cap // 2
        cum = np.cumsum(weights)
        targets = (np.arange(keep) + 0.5) * (cum[-1] / keep)
        picked = values[np.minimum(np.searchsorted(cum, targets), len(values) - 1)]
        self._parts = [(picked, float(cum[-1] / keep))]
        self.rank_error += float(cum[-1]) / (2 * keep)

    def quantiles(self, qs: Iterable[float]) -> list[float]:
        """The value at each fraction ``q`` of the weighted sample (within ``rank_error``
        rows of the true ``q`` quantile's rank)."""
        import numpy as np

        values, weights = self._arrays()
        cum = np.cumsum(weights)
        total = cum[-1]
        return [
            float(values[min(int(np.searchsorted(cum, q * total)), len(values) - 1)]) for q in qs
        ]

    def bin_counts(self, edges: np.ndarray, total: int) -> np.ndarray:
        """Histogram counts estimated from the sample, scaled to ``total`` rows."""
        import numpy as np

        values, weights = self._arrays()
        counts, _ = np.histogram(values, bins=edges, weights=weights)
        scale = total / counts.sum() if counts.sum() else 0.0
        return np.round(counts * scale).astype(np.int64)


def edges(lo: Any, hi: Any, bins: int) -> np.ndarray:
    import numpy as np

    lo, hi = float(lo), float(hi)
    if hi <= lo:
        hi = lo + 1.0
    return np.linspace(lo, hi, bins + 1)


def bin_counts(sorted_values: np.ndarray, bin_edges: np.ndarray) -> np.ndarray:
    """Counts per bin of sorted values; the last bin includes its right edge (NumPy's rule).
    Values outside the edges (stale statistics) go to the end bins: the counts are exactly
    ``numpy.histogram(numpy.clip(values, edges[0], edges[-1]), edges)``'s."""
    import numpy as np

    floats = sorted_values.astype(np.float64, copy=False)
    positions = np.searchsorted(floats, bin_edges, side="left")
    positions[-1] = np.searchsorted(floats, bin_edges[-1], side="right")
    counts = np.diff(positions)
    counts[0] += positions[0]
    counts[-1] += len(floats) - positions[-1]
    return counts


def quantiles_sorted(values: np.ndarray, qs: Iterable[float]) -> list[float]:
    """Linear-interpolation quantiles (NumPy's default method) of sorted values: equal to
    ``numpy.quantile(values, q)`` up to rounding (a few units in the last place of the larger
    neighbour), without NumPy's sort."""
    n = len(values)
    out = []
    for q in qs:
        pos = q * (n - 1)
        lo = math.floor(pos)
        hi = min(lo + 1, n - 1)
        frac = pos - lo
        out.append(float(values[lo]) + (float(values[hi]) - float(values[lo])) * frac)
    return out
