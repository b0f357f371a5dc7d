"""Reference profiles: what a drift check keeps of the training data, so it never reloads it.

Per numerical column: ``BINS`` (1,000) quantile bins — edges at the reference's
0.1 %-quantiles, each bin's count and sum — the missing count, mean, standard deviation, min
and max, and a sorted uniform sample of at most ``sample_size`` values (10,000) for the KS
test. Per categorical column: the ``TOP_K`` (1,000) most frequent categories with their
counts, how many values fell in the rarer ones (``other``), the distinct count and the
missing count.

Why 1,000 bins: the bins carry the distance measures. The Wasserstein distance is computed
on them with each bin's mass at its own mean, which is exact for discrete columns and within
~0.003 σ of the exact distance for continuous ones (a bin holds 0.1 % of the mass); PSI and
Jensen–Shannon use ``COARSE_BINS`` (20) equal-mass groups of them, the usual resolution
(finer bins add sampling noise to both). Counting a million values into 1,000 bins costs
~10 ms (``bins.Binner``) and the bins ~24 KB per column; the sample (80 KB) is what the
profile's size is made of.

Why a categorical column keeps no sample: the category counts are exact and are all that
χ², PSI and Jensen–Shannon read; a sample of labels would only be a noisier copy of them.

Edges are placed on a seeded uniform sample of ``EDGE_SAMPLE`` values (so building a
profile sorts 50,000 values per column, not all of them: each bin then holds 50 of them, its
mass within ~15 % of 0.1 %, which is all a bin edge needs); the counts, sums, moments and
extremes are computed on every value. Missing means null, NaN or ±∞: no distance can use
an infinite value, and a column that starts producing them has changed.

Stored form (``to_bytes``): an uncompressed ``.npz`` (NumPy's zip of arrays, read with
``allow_pickle=False``) holding a JSON header and the arrays; ``from_bytes`` treats the
bytes as untrusted — sizes bounded before anything is read, every array's dtype and length
checked against the header — and says what is wrong in an ``InvalidParameter``.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from modelyard.errors import InvalidParameter
from modelyard.monitoring.bins import Binner
from modelyard.monitoring.columns import (
    CATEGORICAL,
    NUMERICAL,
    UNSUPPORTED,
    ColumnValues,
    TableColumns,
)

if TYPE_CHECKING:
    from modelyard.monitoring.results import DriftReport
    from modelyard.monitoring.summaries import CurrentSummary

BINS = 1000
COARSE_BINS = 20
SAMPLE_SIZE = 10_000
TOP_K = 1000
#: Labels of a column with more than TOP_K categories remembered as hashes (128 KB at most).
LABEL_SKETCH = 16_384
EDGE_SAMPLE = 50_000
FORMAT = "modelyard.reference-profile"
FORMAT_VERSION = 1
#: A stored profile larger than this is refused before it is read (a zip can claim anything).
MAX_STORED_BYTES = 256 << 20
SEED = 20_251_206


@dataclass(frozen=True, slots=True, eq=False)
class NumericalProfile:
    """A numerical column of the reference.

    ``edges`` are strictly increasing (``edges[0]`` the minimum, ``edges[-1]`` the
    maximum); ``counts`` and ``sums`` have ``len(edges) + 1`` slots, slot ``i`` holding the
    values ``x`` with ``searchsorted(edges, x, side="right") == i`` (slot 0 is empty for the
    reference; the last slot holds the values equal to the maximum, and, in a current
    summary, those above it).
    """

    rows: int
    missing: int
    type_name: str
    edges: np.ndarray
    counts: np.ndarray
    sums: np.ndarray
    mean: float
    std: float
    sample: np.ndarray
    kind: str = NUMERICAL
    _binner: Binner | None = field(default=None, init=False, repr=False)

    @property
    def values(self) -> int:
        return self.rows - self.missing

    @property
    def min(self) -> float:
        return float(self.edges[0]) if len(self.edges) else math.nan

    @property
    def max(self) -> float:
        return float(self.edges[-1]) if len(self.edges) else math.nan

    def binner(self) -> Binner:
        """The lookup that counts values into these bins (built once, ~1 ms)."""
        if self._binner is None:
            object.__setattr__(self, "_binner", Binner(self.edges))
        assert self._binner is not None
        return self._binner


@dataclass(frozen=True, slots=True, eq=False)
class CategoricalProfile:
    """A categorical column of the reference: the ``TOP_K`` most frequent categories (most
    frequent first) and their counts; ``other`` values fell in rarer categories;
    ``distinct`` categories were seen in all.

    When there are rarer categories, ``known_hashes`` remembers which labels the reference
    had, so that a current label outside the top ones can be told apart as rare or unseen
    (a column of ids replaced by new ids must not read as "no drift"): the sorted 64-bit
    hashes (``data.digest.column_hashes``) of every label, or, past ``LABEL_SKETCH`` labels,
    of those whose hash is at most the ``LABEL_SKETCH``-th smallest (``sketch_capped``) —
    a uniform sample of the label space, in which membership is exact.
    """

    rows: int
    missing: int
    type_name: str
    categories: tuple[str, ...]
    counts: np.ndarray
    other: int
    distinct: int
    kind: str = CATEGORICAL
    known_hashes: np.ndarray = field(default_factory=lambda: np.zeros(0, np.uint64))
    sketch_capped: bool = False

    @property
    def values(self) -> int:
        return self.rows - self.missing

    @property
    def complete(self) -> bool:
        """Every reference category is listed, so a current label outside them is unseen."""
        return self.other == 0

    def membership(self, hashes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(sampled, seen) for label hashes outside the listed categories: which fall in the
        remembered share of the label space, and which of those the reference had."""
        known = self.known_hashes
        if len(known) == 0:
            return np.zeros(len(hashes), bool), np.zeros(0, bool)
        sampled = hashes <= known[-1] if self.sketch_capped else np.ones(len(hashes), bool)
        picked = hashes[sampled]
        at = np.minimum(np.searchsorted(known, picked), len(known) - 1)
        return sampled, known[at] == picked


ColumnProfile = NumericalProfile | CategoricalProfile


class ReferenceProfile:
    """The reference side of every drift check: built once (``from_table``), stored
    (``to_bytes``), compared against current data streamed through ``summarizer``.

    >>> import numpy as np
    >>> rng = np.random.default_rng(0)
    >>> profile = ReferenceProfile.from_table({"price": rng.normal(10, 2, 2000)}, source="train")
    >>> summary = profile.summarizer()
    >>> summary.update({"price": rng.normal(11, 2, 2000)})
    >>> report = compare(profile, summary)
    >>> report.columns["price"].drifted, report.columns["price"].method
    (True, 'ks')
    """

    __slots__ = ("columns", "rows", "sample_size", "skipped", "source")

    def __init__(
        self,
        *,
        rows: int,
        source: str,
        columns: dict[str, ColumnProfile],
        sample_size: int = SAMPLE_SIZE,
        skipped: dict[str, str] | None = None,
    ) -> None:
        self.rows = rows
        self.source = source
        self.columns = columns
        self.sample_size = sample_size
        #: columns left out of the profile and why (a type no method compares)
        self.skipped = dict(skipped or {})

    def __repr__(self) -> str:
        names = list(self.columns)
        return f"ReferenceProfile(source={self.source!r}, rows={self.rows}, columns={names})"

    @classmethod
    def from_table(
        cls,
        table: Any,
        *,
        source: str,
        columns: Iterable[str] | None = None,
        sample_size: int = SAMPLE_SIZE,
        bins: int = BINS,
        top_k: int = TOP_K,
    ) -> ReferenceProfile:
        """Profile ``table`` (a pandas or polars DataFrame, an Arrow table, or a dict of
        1-D arrays). ``columns`` picks columns (default: every column of a supported type;
        others are listed in ``skipped``)."""
        if not 2 <= bins <= 100_000:
            raise InvalidParameter(f"bins must be between 2 and 100,000, not {bins}", field="bins")
        if not 10 <= sample_size <= 1_000_000:
            raise InvalidParameter(
                f"sample_size must be between 10 and 1,000,000, not {sample_size}",
                field="sample_size",
            )
        if not 1 <= top_k <= 100_000:
            raise InvalidParameter(
                f"top_k must be between 1 and 100,000, not {top_k}", field="top_k"
            )
        view = TableColumns(table)
        names, skipped = _pick_columns(view, columns)

        def build(name: str) -> ColumnProfile:
            values = view.values(name)
            if values.kind == NUMERICAL:
                return _numerical_profile(values, bins=bins, sample_size=sample_size)
            return _categorical_profile(values, top_k=top_k)

        built = parallel_map(build, names, view.rows)
        return cls(
            rows=view.rows,
            source=source,
            columns=dict(zip(names, built, strict=True)),
            sample_size=sample_size,
            skipped=skipped,
        )

    def summarizer(self, columns: Iterable[str] | None = None) -> CurrentSummary:
        """An empty ``CurrentSummary`` on this profile's bins and categories."""
        from modelyard.monitoring.summaries import CurrentSummary

        return CurrentSummary(self, columns)

    def to_bytes(self) -> bytes:
        from modelyard.monitoring.profile_codec import encode

        return encode(self)

    @classmethod
    def from_bytes(cls, data: bytes) -> ReferenceProfile:
        """A profile from ``to_bytes``'s bytes; anything else is an ``InvalidParameter``."""
        from modelyard.monitoring.profile_codec import decode

        return decode(data)


def compare(
    reference: ReferenceProfile,
    current: CurrentSummary,
    *,
    method: dict[str, str] | None = None,
    threshold: dict[str, float] | None = None,
    share: float = 0.5,
) -> DriftReport:
    """Compare a current summary with its reference profile, column by column.

    ``method`` and ``threshold`` override the default method / threshold per column (the
    rule is in ``modelyard.monitoring.drift``'s docstring); ``share`` is the share of
    drifted columns at which the dataset counts as drifted.
    """
    from modelyard.monitoring.comparison import compare_summary

    return compare_summary(reference, current, method=method, threshold=threshold, share=share)


def _pick_columns(
    view: TableColumns, columns: Iterable[str] | None
) -> tuple[list[str], dict[str, str]]:
    skipped: dict[str, str] = {}
    if columns is None:
        names = []
        for name in view.names:
            kind, type_name = view.kind(name)
            if kind == UNSUPPORTED:
                skipped[name] = f"type {type_name} is neither numerical nor categorical"
            else:
                names.append(name)
        return names, skipped
    names = list(dict.fromkeys(str(c) for c in columns))
    if not names:
        raise InvalidParameter("columns is empty: name at least one column", field="columns")
    for name in names:
        if name not in view.names:
            raise InvalidParameter(
                f"column {name!r} is not in the reference table (it has {view.names[:20]})",
                field=name,
            )
        kind, type_name = view.kind(name)
        if kind == UNSUPPORTED:
            raise InvalidParameter(
                f"column {name!r} has type {type_name}, which is neither numerical nor "
                "categorical; drift compares numbers, strings, categories and booleans",
                field=name,
            )
    return names, skipped


def parallel_map(fn: Any, names: list[str], rows: int) -> list[Any]:
    """``[fn(name) for name in names]``, on a few threads when the columns are long (NumPy's
    sorts, searches and gathers release the GIL)."""
    import os

    workers = min(len(names), os.cpu_count() or 1, 4)
    if workers <= 1 or rows * len(names) < 2_000_000:
        return [fn(name) for name in names]
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="modelyard-drift") as pool:
        return list(pool.map(fn, names))


def finite_values(numbers: np.ndarray) -> tuple[np.ndarray, int]:
    """(the finite values, how many were missing: null, NaN or ±∞)."""
    finite = np.isfinite(numbers)
    kept = int(np.count_nonzero(finite))
    if kept == len(numbers):
        return numbers, 0
    return numbers[finite], len(numbers) - kept


def moments(values: np.ndarray) -> tuple[float, float]:
    """(mean, population std) of finite values, without overflow for values near 1e308."""
    if len(values) == 0:
        return math.nan, math.nan
    scale = float(np.max(np.abs(values)))
    if scale > 1e150:  # squares would overflow: compute on values scaled to ~1
        scaled = values / scale
        return float(np.mean(scaled)) * scale, float(np.std(scaled)) * scale
    return float(np.mean(values)), float(np.std(values))


def _numerical_profile(column: ColumnValues, *, bins: int, sample_size: int) -> NumericalProfile:
    assert column.numbers is not None
    values, missing = finite_values(column.numbers)
    rng = np.random.default_rng(SEED)
    n = len(values)
    if n == 0:
        empty = np.zeros(0)
        return NumericalProfile(
            column.rows,
            missing,
            column.type_name,
            empty,
            np.zeros(1, np.int64),
            np.zeros(1),
            math.nan,
            math.nan,
            empty,
        )
    if n <= EDGE_SAMPLE:
        spread = np.sort(values)
    else:
        spread = np.sort(values[np.sort(rng.choice(n, EDGE_SAMPLE, replace=False))])
    lo, hi = float(np.min(values)), float(np.max(values))
    at = np.round(np.linspace(0, len(spread) - 1, bins + 1)).astype(np.int64)
    edges = np.unique(np.concatenate([[lo], spread[at], [hi]]))
    binner = Binner(edges)
    slots = binner.slots(values)
    counts = np.bincount(slots, minlength=len(edges) + 1).astype(np.int64)
    sums = np.bincount(slots, weights=values, minlength=len(edges) + 1)
    mean, std = moments(values)
    if len(spread) > sample_size:
        sample = spread[np.sort(rng.choice(len(spread), sample_size, replace=False))]
    else:
        sample = spread
    profile = NumericalProfile(
        column.rows, missing, column.type_name, edges, counts, sums, mean, std, sample.copy()
    )
    object.__setattr__(profile, "_binner", binner)
    return profile


def _categorical_profile(column: ColumnValues, *, top_k: int) -> CategoricalProfile:
    top = top_labels(column.labels, top_k, sketch=True)
    return CategoricalProfile(
        rows=column.rows,
        missing=int(column.labels.null_count),
        type_name=column.type_name,
        categories=tuple(top.labels),
        counts=top.counts,
        other=top.rest,
        distinct=top.distinct,
        known_hashes=top.hashes,
        sketch_capped=top.capped,
    )


@dataclass(frozen=True, slots=True)
class TopLabels:
    """The ``labels`` most frequent (most frequent first, ties by label), their ``counts``,
    how many values the other labels hold (``rest``) and how many labels there were."""

    labels: list[str]
    counts: np.ndarray
    rest: int
    distinct: int
    hashes: np.ndarray
    capped: bool = False


def top_labels(labels: Any, k: int, *, sketch: bool = False) -> TopLabels:
    """The ``k`` most frequent non-null labels of an Arrow string array. Only those ``k``
    become Python strings, so a column of a million distinct ids costs one hash count.
    With ``sketch``, when labels are left over, ``hashes`` holds the label sketch
    (``CategoricalProfile.known_hashes``)."""
    import pyarrow.compute as pc

    counted = pc.value_counts(labels)
    values = counted.field("values")
    counts = np.asarray(counted.field("counts").to_numpy(zero_copy_only=False), dtype=np.int64)
    valid = np.flatnonzero(np.asarray(pc.is_valid(values).to_numpy(zero_copy_only=False)))
    counts = counts[valid]
    pick = valid
    if len(valid) > k:
        chosen = np.argpartition(-counts, k - 1)[:k]
        pick, counts_kept = valid[chosen], counts[chosen]
    else:
        counts_kept = counts
    names = [str(v) for v in values.take(pick).to_pylist()]
    order = sorted(range(len(names)), key=lambda i: (-int(counts_kept[i]), names[i]))
    rest = int(counts.sum() - counts_kept.sum())
    hashes, capped = np.zeros(0, np.uint64), False
    if sketch and rest:
        from modelyard.data.digest import column_hashes

        hashes = np.unique(column_hashes(values.take(valid)))
        capped = len(hashes) > LABEL_SKETCH
        hashes = hashes[:LABEL_SKETCH].copy()
    return TopLabels(
        labels=[names[i] for i in order],
        counts=counts_kept[order].astype(np.int64),
        rest=rest,
        distinct=len(valid),
        hashes=hashes,
        capped=capped,
    )
