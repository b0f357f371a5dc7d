"""Population stability index (PSI) between data and a reference version's profile.

The reference's profile already holds the bins: an exact histogram for numbers and
timestamps, the top categories (plus everything else as one bucket) for strings. The data
is counted into the same bins — one ``searchsorted`` or one ``isin`` — so a distribution
check never re-reads the reference data.

PSI = sum((a - e) * ln(a / e)) over bins, with proportions floored at 1e-4 so that an
empty bin does not make it infinite. Rule of thumb: < 0.1 stable, 0.1-0.25 shifting,
> 0.25 shifted.

Error bounds (tests/data/contracts/test_distribution.py checks them against SciPy and NumPy
on random data): ``psi`` is the symmetric Kullback-Leibler divergence of the floored
proportions, ``sum(rel_entr(a, e) + rel_entr(e, a))`` in ``scipy.special``'s terms, to a
relative 1e-12; with no proportion under the floor that is ``scipy.stats.entropy(a, e) +
scipy.stats.entropy(e, a)`` of the data itself. ``numeric_counts`` is exactly
``numpy.histogram`` of the values clipped into the edges. ``profile_psi`` is exact when both
profiles have the same edges; otherwise it assumes values spread evenly within each bin.
"""

from __future__ import annotations

import math
from typing import Any

EPSILON = 1e-4


def psi(expected: Any, actual: Any) -> float:
    """PSI between two count (or proportion) vectors over the same bins."""
    import numpy as np

    e = np.asarray(expected, dtype=np.float64)
    a = np.asarray(actual, dtype=np.float64)
    if e.sum() <= 0 or a.sum() <= 0:
        return 0.0 if e.sum() == a.sum() else math.inf
    e = np.maximum(e / e.sum(), EPSILON)
    a = np.maximum(a / a.sum(), EPSILON)
    return float(np.sum((a - e) * np.log(a / e)))


def reference_bins(column_profile: dict[str, Any]) -> tuple[str, Any, Any] | None:
    """(``"numeric"``|``"categorical"``, edges or category list, expected counts) from a
    column's profile, or None when the profile has no bins (e.g. an all-null column)."""
    kind = column_profile.get("kind")
    if kind in ("numeric", "datetime"):
        hist = column_profile.get("histogram")
        if not hist:
            return None
        edges = [_edge_value(e, kind) for e in hist["edges"]]
        return "numeric", edges, list(hist["counts"])
    top = column_profile.get("top")
    if kind in ("categorical", "bool") and top:
        values = [v for v, _ in top]
        counts = [c for _, c in top]
        other = int(column_profile.get("count", 0)) - sum(counts)
        return "categorical", values, [*counts, max(other, 0)]
    return None


def _edge_value(edge: Any, kind: str) -> float:
    if kind == "datetime" and isinstance(edge, str):
        import numpy as np

        return float(np.datetime64(edge, "ns").astype(np.int64))
    return float(edge)


def numeric_counts(values: Any, edges: Any) -> Any:
    """Counts of ``values`` (no nulls) in the bins ``edges``; outside values go to the end
    bins, as the profile does."""
    import numpy as np

    edges = np.asarray(edges, dtype=np.float64)
    bins = len(edges) - 1
    idx = np.searchsorted(edges, np.asarray(values, dtype=np.float64), side="right") - 1
    idx = np.clip(idx, 0, bins - 1)
    return np.bincount(idx, minlength=bins)


def categorical_counts(series: Any, categories: list[Any]) -> Any:
    """Counts of each reference category in ``series`` (no nulls), then everything else."""
    import numpy as np

    counts = series.value_counts(dropna=True)
    keyed = {_key(k): int(v) for k, v in counts.items()}
    found = [keyed.get(_key(c), 0) for c in categories]
    return np.asarray([*found, int(counts.sum()) - sum(found)])


def _key(value: Any) -> Any:
    return str(value) if not isinstance(value, (bool, int, float)) else value


def profile_psi(reference: dict[str, Any], current: dict[str, Any]) -> float | None:
    """PSI between two column profiles (for ``data diff``; contracts count raw data).

    Numbers: the current histogram is re-binned into the reference's edges assuming
    values spread evenly within each bin. Categories: the reference's top values.
    """
    import numpy as np

    bins = reference_bins(reference)
    if bins is None or current.get("kind") != reference.get("kind"):
        return None
    kind, edges, expected = bins
    if kind == "categorical":
        top = {_key(v): c for v, c in (current.get("top") or [])}
        found = [top.get(_key(v), 0) for v in edges]
        rest = int(current.get("count", 0)) - sum(found)
        return psi(expected, [*found, max(rest, 0)])
    hist = current.get("histogram")
    if not hist:
        return None
    cur_edges = np.asarray([_edge_value(e, str(current["kind"])) for e in hist["edges"]])
    cum = np.concatenate(([0.0], np.cumsum(hist["counts"], dtype=np.float64)))
    mass = np.interp(np.asarray(edges, dtype=np.float64), cur_edges, cum)
    actual = np.diff(mass)
    actual[0] += mass[0]
    actual[-1] += cum[-1] - mass[-1]
    return psi(expected, actual)
