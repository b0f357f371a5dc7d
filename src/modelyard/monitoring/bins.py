"""Counting a million values into a reference's ~1,000 quantile bins in a few milliseconds.

``np.searchsorted(edges, values)`` does it exactly but costs ~70 ms per million values
against 1,000 edges (ten unpredictable branches per value); a drift check does it for every
column of both tables. ``Binner`` gets the same answer with a lookup table: the edges' range
is cut into ``LOOKUP_PER_BIN`` × bins equal cells, each cell remembers how many edges lie
below it, and a value starts from its cell's count and steps up past the few edges inside its
cell — a handful of whole-array passes (gathers and compares), ~10 ms. Where the edges crowd
into a few cells (a heavy tail stretching the range) or the range overflows a double, it
falls back to ``searchsorted``; either way the slots are exactly ``searchsorted``'s
(tests/monitoring/test_bins.py checks both paths against it).

Slots: ``0`` below the first edge, ``i`` for ``edges[i-1] <= x < edges[i]``, ``len(edges)``
at or above the last edge (``searchsorted(edges, x, side="right")``).
"""

from __future__ import annotations

import numpy as np

#: Lookup cells per bin: enough that a cell of a normal column's densest bins holds one edge.
LOOKUP_PER_BIN = 64
#: Past this many edges inside one cell, stepping costs more than a binary search.
MAX_STEPS = 8


class Binner:
    """``searchsorted(edges, x, side="right")`` for many ``x`` against fixed sorted edges."""

    __slots__ = ("_cells", "_edges", "_padded", "_scale", "_start", "_steps")

    def __init__(self, edges: np.ndarray) -> None:
        self._edges = np.ascontiguousarray(edges, dtype=np.float64)
        self._padded = np.append(self._edges, np.inf)
        self._cells: np.ndarray | None = None
        self._start = self._scale = 0.0
        self._steps = 0
        if len(self._edges) < 8:
            return  # a short binary search is as fast as the table
        lo, hi = float(self._edges[0]), float(self._edges[-1])
        cells = LOOKUP_PER_BIN * len(self._edges)
        with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
            scale = cells / (hi - lo)
        if not np.isfinite(scale) or scale <= 0:
            return
        starts = lo + np.arange(cells + 1) / scale
        # edges at or below each cell's start, one less for rounding: a lower bound to step up from
        below = np.searchsorted(self._edges, starts, side="right")
        steps = int(np.max(np.diff(below))) + 2
        if steps > MAX_STEPS:
            return
        self._cells = np.maximum(below[:-1] - 1, 0).astype(np.int32)
        self._start, self._scale, self._steps = lo, float(scale), steps

    @property
    def edges(self) -> np.ndarray:
        return self._edges

    def slots(self, values: np.ndarray) -> np.ndarray:
        """Each value's slot (``searchsorted(edges, values, side="right")``), as int64.

        ``values`` must hold no NaN (drop missing values first).
        """
        if self._cells is None:
            return np.searchsorted(self._edges, values, side="right")
        cell = values - self._start
        cell *= self._scale
        np.clip(cell, 0, len(self._cells) - 1, out=cell)
        slot = self._cells[cell.astype(np.int32)].astype(np.int64)
        for _ in range(self._steps):
            up = values >= self._padded[slot]
            if not up.any():
                return slot
            slot += up
        # rounding left a value further below its slot than the table allows: finish exactly
        late = values >= self._padded[slot]
        if late.any():
            slot[late] = np.searchsorted(self._edges, values[late], side="right")
        return slot
