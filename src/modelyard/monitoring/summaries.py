"""The current side of a drift check, built batch by batch on a reference's bins.

A ``CurrentSummary`` holds, per column, what ``compare`` needs and nothing that grows with
the rows: numerical columns the count and sum of values per reference bin, the missing
count, mean and spread (Chan's merge of per-batch moments), min, max and a uniform sample of
at most the profile's ``sample_size`` values; categorical columns the count per reference
category, the values outside them (``unseen`` when the reference listed all its categories,
``other`` otherwise) and the ``UNSEEN_KEPT`` most frequent unseen labels. Summaries of
different batches or processes ``merge`` into the summary of their union: the sample stays
uniform (the share taken from each side is drawn from the hypergeometric distribution).

A column absent from a batch, or of another kind than in the reference (text where the
reference had numbers), is recorded in ``errors`` and left alone from then on: ``compare``
reports it by name and counts it as drifted.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

import numpy as np

from modelyard.errors import InvalidParameter
from modelyard.monitoring.columns import ColumnValues, TableColumns
from modelyard.monitoring.profiles import (
    SEED,
    CategoricalProfile,
    NumericalProfile,
    finite_values,
    moments,
    parallel_map,
    top_labels,
)

if TYPE_CHECKING:
    from modelyard.monitoring.profiles import ReferenceProfile

#: Unseen labels remembered by name (the most frequent); the rest are only counted.
UNSEEN_KEPT = 50


class NumericalSummary:
    """Current values of one numerical column on the reference's bins."""

    def __init__(self, profile: NumericalProfile, sample_size: int, seed: int) -> None:
        self.profile = profile
        self.rows = self.missing = self.values = 0
        slots = len(profile.edges) + 1
        self.counts = np.zeros(slots, np.int64)
        self.sums = np.zeros(slots)
        self.mean = 0.0
        self._m2 = 0.0  # Σ (x - mean)² in units of ``_scale``², so 1e300-sized values fit
        self._scale = _scale_of(profile)
        self.min, self.max = math.inf, -math.inf
        self.sample = np.zeros(0)
        self._sample_size = sample_size
        self._rng = np.random.default_rng(seed)
        self._binner = profile.binner() if len(profile.edges) else None

    @property
    def std(self) -> float:
        return math.sqrt(self._m2 / self.values) * self._scale if self.values else math.nan

    def update(self, column: ColumnValues) -> None:
        assert column.numbers is not None
        values, missing = finite_values(column.numbers)
        self.rows += column.rows
        self.missing += missing
        if len(values) == 0:
            return
        if self._binner is not None:
            slots = self._binner.slots(values)
            self.counts += np.bincount(slots, minlength=len(self.counts))
            self.sums += np.bincount(slots, weights=values, minlength=len(self.counts))
        mean, std = moments(values)
        scale = _scale_of_values(values)
        self._add_moments(len(values), mean, (std / scale) ** 2 * len(values), scale)
        self.min = min(self.min, float(np.min(values)))
        self.max = max(self.max, float(np.max(values)))
        take = min(self._sample_size, len(values))
        batch = values[self._rng.choice(len(values), take, replace=False)]
        self._add_sample(batch, len(values))
        self.values += len(values)

    def add_missing(self, rows: int) -> None:
        """Count ``rows`` rows whose value is missing (an all-null column of no type)."""
        self.rows += rows
        self.missing += rows

    def merge(self, other: NumericalSummary) -> None:
        self.rows += other.rows
        self.missing += other.missing
        self.counts += other.counts
        self.sums += other.sums
        if other.values:
            self._add_moments(other.values, other.mean, other._m2, other._scale)
            self._add_sample(other.sample, other.values)
        self.min, self.max = min(self.min, other.min), max(self.max, other.max)
        self.values += other.values

    def _add_moments(self, n: int, mean: float, m2: float, scale: float) -> None:
        """Chan's merge of (n, mean, m2 in units of ``scale``²) into ours."""
        if scale > self._scale:  # values larger than any before: move to their units
            self._m2 *= (self._scale / scale) ** 2
            self._scale = scale
        else:
            m2 *= (scale / self._scale) ** 2
        total = self.values + n
        delta = mean / self._scale - self.mean / self._scale  # no overflow near 1e308
        self._m2 += m2 + delta * delta * self.values * n / total
        self.mean += (mean / self._scale - self.mean / self._scale) * (n / total) * self._scale

    def _add_sample(self, sample: np.ndarray, seen: int) -> None:
        """Merge a uniform sample of ``seen`` values into ours (uniform over ``values``)."""
        size = min(self._sample_size, self.values + seen)
        if self.values + seen <= self._sample_size:
            self.sample = np.concatenate([self.sample, sample])
            return
        ours = int(self._rng.hypergeometric(self.values, seen, size)) if self.values else 0
        theirs = size - ours
        keep = self.sample[self._rng.choice(len(self.sample), ours, replace=False)]
        add = sample[self._rng.choice(len(sample), theirs, replace=False)]
        self.sample = np.concatenate([keep, add])


class CategoricalSummary:
    """Current labels of one categorical column, counted per reference category."""

    def __init__(self, profile: CategoricalProfile) -> None:
        self.profile = profile
        self.rows = self.missing = self.values = 0
        self.counts = np.zeros(len(profile.categories), np.int64)
        self.outside = 0  # labels not among the profile's categories
        self.sampled = 0  # of those, labels in the share of label space the profile remembers
        self.sampled_unseen = 0  # of those, labels the reference did not have
        self.unseen_labels: dict[str, int] = {}
        self._value_set: Any = None

    @property
    def unseen(self) -> int | None:
        """Values whose label the reference never had: exact when the profile lists all its
        categories or remembers all its labels, estimated from the remembered share of the
        label space otherwise, None when no outside label fell in that share."""
        if self.profile.complete or self.outside == 0:
            return self.outside
        if self.sampled == 0:
            return None
        return round(self.outside * self.sampled_unseen / self.sampled)

    def update(self, column: ColumnValues) -> None:
        import pyarrow as pa
        import pyarrow.compute as pc

        labels = column.labels
        self.rows += column.rows
        nulls = int(labels.null_count)
        self.missing += nulls
        self.values += len(labels) - nulls
        k = len(self.counts)
        if self._value_set is None:
            self._value_set = pa.array(self.profile.categories, type=pa.string())
        index = pc.fill_null(pc.index_in(labels, value_set=self._value_set), k)
        found = np.bincount(np.asarray(index.to_numpy(zero_copy_only=False)), minlength=k + 1)
        self.counts += found[:k]
        outside = int(found[k]) - nulls
        self.outside += outside
        if outside:
            unlisted = labels.filter(pc.and_(pc.is_valid(labels), pc.equal(index, k)))
            if not self.profile.complete:
                unlisted = self._unseen_of(unlisted)
            if len(unlisted):
                top = top_labels(unlisted, UNSEEN_KEPT)
                self._remember(dict(zip(top.labels, top.counts.tolist(), strict=True)))

    def _unseen_of(self, unlisted: Any) -> Any:
        """Count the sampled and unseen among labels outside the listed categories; return
        the unseen ones among the sampled."""
        from modelyard.data.digest import column_hashes

        sampled, seen = self.profile.membership(column_hashes(unlisted))
        self.sampled += len(seen)
        self.sampled_unseen += int(len(seen) - np.count_nonzero(seen))
        unseen = np.zeros(len(unlisted), bool)
        unseen[np.flatnonzero(sampled)[~seen]] = True
        return unlisted.filter(unseen)

    def add_missing(self, rows: int) -> None:
        """Count ``rows`` rows whose value is missing (an all-null column of no type)."""
        self.rows += rows
        self.missing += rows

    def merge(self, other: CategoricalSummary) -> None:
        self.rows += other.rows
        self.missing += other.missing
        self.values += other.values
        self.counts += other.counts
        self.outside += other.outside
        self.sampled += other.sampled
        self.sampled_unseen += other.sampled_unseen
        self._remember(other.unseen_labels)

    def _remember(self, counts: dict[str, int]) -> None:
        merged = dict(self.unseen_labels)
        for name, count in counts.items():
            merged[name] = merged.get(name, 0) + count
        if len(merged) > UNSEEN_KEPT:
            merged = dict(sorted(merged.items(), key=lambda kv: (-kv[1], kv[0]))[:UNSEEN_KEPT])
        self.unseen_labels = merged


ColumnSummary = NumericalSummary | CategoricalSummary


class CurrentSummary:
    """Mergeable summary of current data on a reference profile's bins and categories.

    ``update`` takes a pyarrow RecordBatch or Table, a pandas DataFrame or a dict of arrays;
    memory stays bounded (bins plus a sample per column) however many batches arrive.
    """

    def __init__(
        self, reference: ReferenceProfile, columns: Iterable[str] | None = None, *, seed: int = SEED
    ) -> None:
        names = list(reference.columns) if columns is None else list(dict.fromkeys(columns))
        for name in names:
            if name not in reference.columns:
                raise InvalidParameter(
                    f"column {name!r} is not in the reference profile "
                    f"(it has {list(reference.columns)[:20]})",
                    field=name,
                )
        self.reference = reference
        self.rows = 0
        self.errors: dict[str, str] = {}
        self.columns: dict[str, ColumnSummary] = {}
        for i, name in enumerate(names):
            profile = reference.columns[name]
            if isinstance(profile, NumericalProfile):
                self.columns[name] = NumericalSummary(profile, reference.sample_size, seed + i)
            else:
                self.columns[name] = CategoricalSummary(profile)

    def update(self, batch: Any) -> None:
        """Add a batch of current rows."""
        view = TableColumns(batch)
        self.rows += view.rows

        def add(name: str) -> None:
            if name in self.errors:
                return
            if name not in view.names:
                self.errors[name] = f"column {name!r} is missing from the current data"
                return
            kind, type_name = view.kind(name)
            profile = self.reference.columns[name]
            if kind != profile.kind and view.all_null(name):
                self.columns[name].add_missing(view.rows)
                return
            if kind != profile.kind:
                self.errors[name] = (
                    f"column {name!r} changed type: {profile.kind} ({profile.type_name}) in the "
                    f"reference, {kind} ({type_name}) in the current data"
                )
                return
            self.columns[name].update(view.values(name))

        parallel_map(add, list(self.columns), view.rows)

    def merge(self, other: CurrentSummary) -> None:
        """Add another summary of the same reference and columns (another batch or process)."""
        if list(other.columns) != list(self.columns) or not all(
            _same_bins(ours.profile, other.columns[name].profile)
            for name, ours in self.columns.items()
        ):
            raise InvalidParameter(
                "cannot merge summaries of different columns or reference profiles: "
                "build both with the same profile's summarizer()",
                field="current",
            )
        self.rows += other.rows
        for name, reason in other.errors.items():
            self.errors.setdefault(name, reason)
        for name, summary in self.columns.items():
            theirs = other.columns.get(name)
            if theirs is None or name in self.errors:
                continue
            summary.merge(theirs)  # type: ignore[arg-type]


def _scale_of_values(values: np.ndarray) -> float:
    largest = float(np.max(np.abs(values)))
    return largest if largest > 1e150 else 1.0


def _scale_of(profile: NumericalProfile) -> float:
    if len(profile.edges) == 0:
        return 1.0
    largest = float(max(abs(profile.edges[0]), abs(profile.edges[-1])))
    return largest if largest > 1e150 else 1.0


def _same_bins(a: NumericalProfile | CategoricalProfile, b: Any) -> bool:
    if a is b:
        return True
    if isinstance(a, NumericalProfile):
        return isinstance(b, NumericalProfile) and np.array_equal(a.edges, b.edges)
    return isinstance(b, CategoricalProfile) and a.categories == b.categories
