"""Shape-preserving down-sampling of metric histories for charts: Largest-Triangle-Three-
Buckets (Steinarsson, 2013).

A chart a few hundred pixels wide cannot show 100,000 points; sending them all costs
megabytes and seconds of drawing. LTTB keeps the first and last points and, from each of
``n - 2`` equal buckets between them, the point that spans the largest triangle with the
point kept from the previous bucket and the mean of the next bucket, so spikes and turns
survive where a stride or an average would erase them.

>>> x = np.arange(10_000.0); y = np.sin(x / 500)
>>> keep = lttb(x, y, 500)
>>> len(keep), int(keep[0]), int(keep[-1])
(500, 0, 9999)
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from modelyard.errors import InvalidParameter

#: Fewer than 3 points leaves no bucket to choose from.
MIN_POINTS = 3


def lttb(x: npt.ArrayLike, y: npt.ArrayLike, n: int) -> npt.NDArray[np.intp]:
    """Indices (ascending) of the ``n`` points of ``(x, y)`` that LTTB keeps.

    ``x`` must be sorted ascending; both must be finite (drop NaN and infinities first:
    they would win every triangle). With ``len(x) <= n`` every index is returned.
    """
    xs = np.asarray(x, dtype=np.float64)
    ys = np.asarray(y, dtype=np.float64)
    if xs.shape != ys.shape or xs.ndim != 1:
        raise InvalidParameter("x and y must be 1-D arrays of the same length", field="x")
    if n < MIN_POINTS:
        raise InvalidParameter(f"n must be at least {MIN_POINTS}, got {n}", field="max_points")
    size = len(xs)
    if size <= n:
        return np.arange(size, dtype=np.intp)
    # Bucket i (1..n-2) holds the points [edges[i-1], edges[i]) of the interior 1..size-2.
    edges = np.linspace(1, size - 1, n - 1).astype(np.intp)
    # The mean of each bucket, for the triangle's third corner (vectorised: cumulative sums).
    cx, cy = np.concatenate(([0.0], np.cumsum(xs))), np.concatenate(([0.0], np.cumsum(ys)))
    counts = np.maximum(edges[1:] - edges[:-1], 1)
    mean_x = (cx[edges[1:]] - cx[edges[:-1]]) / counts
    mean_y = (cy[edges[1:]] - cy[edges[:-1]]) / counts
    # The last interior bucket looks at the final point instead of a next bucket's mean.
    next_x = np.append(mean_x[1:], xs[-1])
    next_y = np.append(mean_y[1:], ys[-1])
    out = np.empty(n, dtype=np.intp)
    out[0], out[-1] = 0, size - 1
    a = 0
    for i in range(n - 2):
        lo, hi = edges[i], max(edges[i + 1], edges[i] + 1)
        bx, by = xs[lo:hi], ys[lo:hi]
        # Twice the triangle's area; the constant factor does not change the argmax.
        area = np.abs((xs[a] - next_x[i]) * (by - ys[a]) - (xs[a] - bx) * (next_y[i] - ys[a]))
        a = lo + int(np.argmax(area))
        out[i + 1] = a
    return out


#: Histories of up to this many finite points are sampled by LTTB over every point; a
#: longer one is first thinned as it streams by (``StreamingSample``).
EXACT_POINTS = 200_000


class StreamingSample:
    """LTTB over a history too long to hold, fed a page at a time in history order.

    Why: a chart of a 10-million-point history must not make the server hold 10 million
    points. Up to ``EXACT_POINTS`` (or 8 points a kept point, if more) the points are
    held and sampled exactly as ``lttb`` samples them. Beyond, whenever that many are
    held, they are thinned to equal-width buckets of the x axis, keeping in each bucket
    its first and last point along x and its lowest and highest value (M4, Jugel et al.
    2014: what a chart of that width draws), at most a quarter of the cap's buckets; LTTB
    then picks the ``n`` points from what is left. Bucket widths are powers of two from
    0, so buckets of a later, wider thinning are unions of earlier ones, and nothing a
    bucket kept is lost when the width doubles.

    >>> sample = StreamingSample(500, exact=10_000)
    >>> for start in range(0, 100_000, 25_000):
    ...     steps = np.arange(start, start + 25_000)
    ...     sample.add(steps, steps * 10, np.sin(steps / 5000.0))
    >>> steps, times, values = sample.result()
    >>> len(steps), int(steps[0]), int(steps[-1]), sample.total
    (500, 0, 99999, 100000)
    """

    def __init__(self, n: int, x: str = "step", exact: int = EXACT_POINTS) -> None:
        if n < MIN_POINTS:
            raise InvalidParameter(f"n must be at least {MIN_POINTS}, got {n}", field="max_points")
        self.n = n
        self.by_time = x == "timestamp"
        self.cap = max(exact, 8 * n)
        self.buckets = self.cap // 8  # up to 4 points each: half the cap after a thinning
        self.width = 1
        self.total = 0
        self.non_finite = 0
        self._held: list[tuple[npt.NDArray[np.int64], ...]] = []
        self._held_values: list[npt.NDArray[np.float64]] = []
        self._count = 0

    def add(
        self,
        steps: npt.NDArray[np.int64],
        timestamps: npt.NDArray[np.int64],
        values: npt.NDArray[np.float64],
    ) -> None:
        """The next page of the history (infinities and NaN are counted, not drawn)."""
        self.total += len(values)
        finite = np.isfinite(values)
        kept = int(finite.sum())
        self.non_finite += len(values) - kept
        self._held.append((steps[finite], timestamps[finite]))
        self._held_values.append(values[finite])
        self._count += kept
        if self._count > self.cap:
            self._thin()

    def _columns(
        self,
    ) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.int64], npt.NDArray[np.float64]]:
        if not self._held:
            empty = np.empty(0, dtype=np.int64)
            return empty, empty.copy(), np.empty(0, dtype=np.float64)
        steps = np.concatenate([held[0] for held in self._held])
        times = np.concatenate([held[1] for held in self._held])
        return steps, times, np.concatenate(self._held_values)

    def _thin(self) -> None:
        steps, times, values = self._columns()
        x = times if self.by_time else steps
        span = int(x.max()) - int(x.min()) + 1
        while span > self.width * (self.buckets - 1):
            self.width *= 2
        bucket = np.floor_divide(x, np.int64(self.width))
        arrival = np.arange(len(x))
        keep = []
        for key in (x, values):  # first and last along x; lowest and highest value
            order = np.lexsort((arrival, key, bucket))
            ends = np.flatnonzero(np.diff(bucket[order])) + 1
            keep += [order[np.concatenate(([0], ends))], order[np.append(ends - 1, len(x) - 1)]]
        kept = np.unique(np.concatenate(keep))  # ascending: the arrival (history) order
        self._held = [(steps[kept], times[kept])]
        self._held_values = [values[kept]]
        self._count = len(kept)

    def result(
        self,
    ) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.int64], npt.NDArray[np.float64]]:
        """The kept points' (steps, timestamps, values), in order along x."""
        steps, times, values = self._columns()
        if self.by_time:  # histories come in step order; time order may differ
            order = np.argsort(times, kind="stable")
            steps, times, values = steps[order], times[order], values[order]
        keep = lttb(times if self.by_time else steps, values, self.n)
        return steps[keep], times[keep], values[keep]
