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
