"""Counting a million values into a reference's ~1,000 quantile bins in a few milliseconds.

``np.searchsorted(edges, values)`` does it exactly but costs ~70 ms per million values
against 1,000 edges (ten unpredictable branches per value); a drift check does it for every
column of both tables. ``Binner`` gets the same answer with a lookup table: the edges' range
is cut into ``LOOKUP_PER_BIN`` × bins equal cells, each cell remembers how many edges lie
below it, and a value starts from its cell's count and steps past the edges inside its cell:
one gather and compare over the array per edge a cell can hold (one for a normal column,
two for a lognormal one), ~10 ms. Where the edges crowd into a few cells (a heavy tail
stretching the range) or the range overflows a double, it falls back to ``searchsorted``;
either way the slots are exactly ``searchsorted``'s (tests/monitoring/test_bins.py checks
both paths against it).

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
            bounds = lo + np.arange(cells + 1) / scale
        if not (np.isfinite(scale) and scale > 0 and np.all(np.isfinite(bounds))):
            return
        # A value computed to fall in cell c lies at or above bounds[c] up to rounding, far
        # less than ``slack``: the edges at or below bounds[c] - slack are a lower bound of
        # its slot, and those at or below bounds[c + 1] + slack an upper bound.
        slack = 1e-9 * max(abs(lo), abs(hi), hi - lo) / cells
        below = np.searchsorted(self._edges, bounds[:-1] - slack, side="right")
        above = np.searchsorted(self._edges, bounds[1:] + slack, side="right")
        steps = int(np.max(above - below))
        if steps > MAX_STEPS:
            return
        self._cells = below.astype(np.intp)
        self._start, self._scale, self._steps = lo, float(scale), steps

    @property
    def edges(self) -> np.ndarray:
        return self._edges

    def slots(self, values: np.ndarray) -> np.ndarray:
        """Each value's slot (``searchsorted(edges, values, side="right")``), as intp.

        ``values`` must hold no NaN (drop missing values first).
        """
        if self._cells is None:
            return np.searchsorted(self._edges, values, side="right")
        with np.errstate(over="ignore", invalid="ignore"):  # values far out: clipped anyway
            cell = values - self._start
            cell *= self._scale
        np.clip(cell, 0, len(self._cells) - 1, out=cell)
        slot = self._cells[cell.astype(np.intp)]
        del cell
        for _ in range(self._steps):  # each step passes at most one edge; a slot once right stays
            slot += values >= self._padded[slot]
        return slot
