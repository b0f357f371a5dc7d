"""Per-column profiles: type, nulls, distinct count, min/max/mean/std, quantiles, histogram,
top values — vectorised, and mergeable across batches so that a table larger than memory
can be profiled as it streams by.

Each column has an accumulator fed Arrow arrays. A numeric batch is sorted once (NumPy's
SIMD sort); from the sorted values come min/max, exact quantiles, the distinct count
(boundaries between runs), run-length counts and histogram counts (``searchsorted`` on the
edges). When a column arrives in one batch (every in-memory table) the profile is exact.
Across several batches the moments, counts, min/max and — when the source knows each
column's range up front, as Parquet footers do — the histograms stay exact; quantiles come
from a weighted sample (rank error below 0.1%), and distinct counts switch from an exact
set to a HyperLogLog sketch (about 1% error) past ``DISTINCT_EXACT_LIMIT``. The profile
says which (``exact``).

>>> import pandas as pd
>>> frame = pd.DataFrame({"price": [1.0, 2.0, 3.0, 4.0]})
>>> profile_table(frame)["columns"]["price"]["quantiles"]["0.5"]
2.5
"""

from __future__ import annotations

import math
import os
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING, Any, Literal

from modelyard.data import sketches
from modelyard.data.digest import column_hashes, logical_type
from modelyard.data.sources import open_source, require_pyarrow

if TYPE_CHECKING:
    import numpy as np
    import pyarrow as pa

PROFILE_VERSION = 1
QUANTILES = (0.01, 0.05, 0.1, 0.25, 0.5, 0.75, 0.9, 0.95, 0.99)
DEFAULT_BINS = 20
DEFAULT_TOP = 10
DISTINCT_EXACT_LIMIT = 200_000
#: Numeric columns with at most this many distinct values also get top values.
LOW_CARDINALITY = 1_000
_COUNTS_CAP = 100_000


def profile_table(
    data: Any, *, bins: int = DEFAULT_BINS, top: int = DEFAULT_TOP, threads: int | None = None
) -> dict[str, Any]:
    """The profile of a table (any input ``sources.open_source`` takes).

    In-memory tables are profiled column by column, each exactly, so peak memory is the
    table plus one column's work; files stream batch by batch. ``threads`` columns are
    profiled at once (default: up to 4, as the CPUs allow).
    """
    if _is_pandas(data):
        return _profile_columns(_pandas_columns(data), len(data), bins, top, threads)
    source = open_source(data)
    if source.table is not None:
        table = source.table
        columns = [(name, table.column(name)) for name in table.schema.names]
        return _profile_columns(columns, table.num_rows, bins, top, threads)
    profiler = TableProfiler(source.schema, ranges=source.ranges, bins=bins, top=top)
    for batch in source.batches():
        profiler.update(batch)
    return profiler.result()


class TableProfiler:
    """Profile a stream of record batches: ``update`` each, then ``result``."""

    def __init__(
        self,
        schema: pa.Schema,
        *,
        ranges: dict[str, tuple[Any, Any]] | None = None,
        bins: int = DEFAULT_BINS,
        top: int = DEFAULT_TOP,
    ) -> None:
        ranges = ranges or {}
        self.num_rows = 0
        self._columns = {
            f.name: accumulator_for(f.type, bins=bins, top=top, value_range=ranges.get(f.name))
            for f in schema
        }

    def update(self, batch: pa.RecordBatch) -> None:
        self.num_rows += batch.num_rows
        for name, acc in self._columns.items():
            acc.update(batch.column(name))

    def result(self) -> dict[str, Any]:
        columns = {name: acc.result() for name, acc in self._columns.items()}
        return _assemble(columns, self.num_rows)


def _assemble(columns: dict[str, dict[str, Any]], num_rows: int) -> dict[str, Any]:
    return {
        "profile_version": PROFILE_VERSION,
        "num_rows": num_rows,
        "num_columns": len(columns),
        "exact": all(c.get("exact", True) for c in columns.values()),
        "columns": columns,
    }


def _profile_columns(
    columns: Iterable[tuple[str, Any]], num_rows: int, bins: int, top: int, threads: int | None
) -> dict[str, Any]:
    def one(item: tuple[str, Any]) -> tuple[str, dict[str, Any]]:
        name, column = item
        arr = column() if callable(column) else column
        acc = accumulator_for(arr.type, bins=bins, top=top)
        acc.update(arr)
        return name, acc.result()

    items = list(columns)
    workers = threads if threads is not None else min(4, os.cpu_count() or 1)
    if workers > 1 and len(items) > 1:
        with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="profile") as pool:
            results = list(pool.map(one, items))
    else:
        results = [one(item) for item in items]
    return _assemble(dict(results), num_rows)


def _is_pandas(data: Any) -> bool:
    return type(data).__module__.startswith("pandas") and hasattr(data, "iloc")


def _pandas_columns(frame: Any) -> list[tuple[str, Any]]:
    """Columns converted to Arrow one at a time, inside the worker that profiles them."""
    pa = require_pyarrow()

    def convert(series: Any) -> Any:
        import numpy as np

        dtype = series.dtype
        if isinstance(dtype, np.dtype) and dtype.kind in "iuf":
            # Zero-copy: NaN stays NaN (the numeric profile counts it as null) instead of
            # becoming a validity bitmap that would then be dropped again.
            return lambda: pa.array(series.to_numpy())
        return lambda: pa.array(series, from_pandas=True)

    return [(str(name), convert(frame[name])) for name in frame.columns]


def accumulator_for(
    dtype: pa.DataType,
    *,
    bins: int = DEFAULT_BINS,
    top: int = DEFAULT_TOP,
    value_range: tuple[Any, Any] | None = None,
) -> ColumnAccumulator:
    """The accumulator for a column of Arrow type ``dtype``."""
    pa = require_pyarrow()
    t = pa.types
    if t.is_boolean(dtype):
        return BoolAccumulator(dtype, top=top)
    if t.is_integer(dtype) or t.is_floating(dtype) or t.is_decimal(dtype):
        return NumericAccumulator(dtype, bins=bins, top=top, value_range=value_range)
    if t.is_timestamp(dtype) or t.is_date(dtype):
        return NumericAccumulator(dtype, bins=bins, top=top, value_range=value_range)
    if (
        t.is_dictionary(dtype)
        or t.is_string(dtype)
        or t.is_large_string(dtype)
        or str(dtype) == "string_view"
    ):
        return CategoryAccumulator(dtype, top=top)
    return ColumnAccumulator(dtype)


class ColumnAccumulator:
    """Counts and nulls only: the profile of types with no order or categories."""

    kind = "other"

    def __init__(self, dtype: pa.DataType) -> None:
        self.dtype = dtype
        self.count = 0
        self.nulls = 0
        self.batches = 0

    def update(self, arr: Any) -> None:
        self.batches += 1
        self.count += len(arr) - arr.null_count
        self.nulls += arr.null_count

    def result(self) -> dict[str, Any]:
        total = self.count + self.nulls
        return {
            "type": logical_type(self.dtype),
            "kind": self.kind,
            "count": self.count,
            "nulls": self.nulls,
            "null_fraction": self.nulls / total if total else 0.0,
            "exact": True,
        }


class NumericAccumulator(ColumnAccumulator):
    """Numbers, timestamps and dates (as int64 nanoseconds / days). NaN counts as null."""

    def __init__(
        self,
        dtype: pa.DataType,
        *,
        bins: int = DEFAULT_BINS,
        top: int = DEFAULT_TOP,
        value_range: tuple[Any, Any] | None = None,
    ) -> None:
        super().__init__(dtype)
        pa = require_pyarrow()
        self.kind = (
            "datetime" if pa.types.is_timestamp(dtype) or pa.types.is_date(dtype) else ("numeric")
        )
        self.bins, self.top = bins, top
        self.mean = 0.0
        self.m2 = 0.0
        self.min: Any = None
        self.max: Any = None
        self._edges = _fixed_edges(value_range, bins, self.kind, dtype)
        self._hist: np.ndarray | None = None
        self._sample = sketches.QuantileSample()
        self._distinct = sketches.DistinctCounter(
            sketches.identity, sketches.mix_values, DISTINCT_EXACT_LIMIT
        )
        self._counts: dict[Any, int] | None = {}
        self._single: dict[str, Any] = {}

    def update(self, arr: Any) -> None:
        import numpy as np

        values = _numeric_values(arr, self.dtype)
        self.batches += 1
        nulls = len(arr) - len(values)
        self.nulls += nulls
        if len(values) == 0:
            return
        values = _sorted(values)
        n = len(values)
        floats = values.astype(np.float64, copy=False)
        mean = float(floats.mean())
        m2 = float(np.square(floats - mean).sum())
        delta = mean - self.mean
        total = self.count + n
        self.m2 += m2 + delta * delta * self.count * n / total
        self.mean += delta * n / total
        self.count = total
        lo, hi = values[0], values[-1]
        self.min = lo if self.min is None else min(self.min, lo)
        self.max = hi if self.max is None else max(self.max, hi)
        change = np.flatnonzero(values[1:] != values[:-1]) + 1
        uniques = values[np.concatenate(([0], change))]
        self._distinct.add(uniques)
        run_counts = np.diff(np.concatenate(([0], change, [n])))
        if self._counts is not None:
            if len(uniques) > LOW_CARDINALITY:
                self._counts = None
            else:
                for value, count in zip(uniques.tolist(), run_counts.tolist(), strict=True):
                    self._counts[value] = self._counts.get(value, 0) + count
                if len(self._counts) > LOW_CARDINALITY:
                    self._counts = None
        if self._edges is not None:
            counts = sketches.bin_counts(values, self._edges)
            self._hist = counts if self._hist is None else self._hist + counts
        self._sample.add(floats)
        if self.batches == 1:
            edges = self._edges if self._edges is not None else sketches.edges(lo, hi, self.bins)
            self._single = {
                "quantiles": sketches.quantiles_sorted(floats, QUANTILES),
                "histogram": (edges, sketches.bin_counts(values, edges)),
            }
        else:
            self._single = {}

    def result(self) -> dict[str, Any]:
        out = super().result()
        if self.count == 0:
            out.update(distinct=0, min=None, max=None, mean=None, std=None)
            return out
        exact = self.batches == 1 and bool(self._single)
        if exact:
            quantiles = self._single["quantiles"]
            edges, counts = self._single["histogram"]
        else:
            quantiles = self._sample.quantiles(QUANTILES)
            if self._edges is not None and self._hist is not None:
                edges, counts = self._edges, self._hist
            else:
                edges = sketches.edges(self.min, self.max, self.bins)
                counts = self._sample.bin_counts(edges, self.count)
        distinct, distinct_exact = self._distinct.result()
        std = math.sqrt(self.m2 / (self.count - 1)) if self.count > 1 else 0.0
        render = self._render
        out.update(
            distinct=distinct,
            min=render(self.min),
            max=render(self.max),
            mean=render(self.mean) if self.kind == "datetime" else _num(self.mean),
            std=_num(std) if self.kind == "numeric" else _num(std / self._unit_per_second()),
            quantiles={str(q): render(v) for q, v in zip(QUANTILES, quantiles, strict=True)},
            histogram={"edges": [render(e) for e in edges], "counts": [int(c) for c in counts]},
            exact=exact and distinct_exact,
        )
        if self._counts is not None and self.kind == "numeric":
            ranked = sorted(self._counts.items(), key=lambda kv: (-kv[1], kv[0]))
            out["top"] = [[_num(v), int(c)] for v, c in ranked[: self.top]]
        return out

    def _unit_per_second(self) -> float:
        pa = require_pyarrow()
        return 86400.0 if pa.types.is_date(self.dtype) else 1e9

    def _render(self, value: Any) -> Any:
        if value is None:
            return None
        if self.kind == "numeric":
            return _num(value)
        import numpy as np

        pa = require_pyarrow()
        if isinstance(value, float) and not math.isfinite(value):
            return None
        unit: Literal["D", "ns"] = "D" if pa.types.is_date(self.dtype) else "ns"
        stamp = np.datetime64(round(float(value)), unit)
        return str(stamp) if unit == "D" else np.datetime_as_string(stamp, unit="auto")


class CategoryAccumulator(ColumnAccumulator):
    """Strings and categoricals: distinct count, top values, lengths, lexical min/max.

    Plain strings are counted by sorting their 64-bit hashes (about twice as fast as a
    hash table of strings, and no Python object per value); the values themselves are
    fetched only for the top ones, unless a second batch needs merging by value.
    """

    kind = "categorical"

    def __init__(self, dtype: pa.DataType, *, top: int = DEFAULT_TOP) -> None:
        super().__init__(dtype)
        self.top = top
        self._values: Any = None  # Arrow array of the distinct values counted (capped)
        self._freq: np.ndarray | None = None
        #: First batch of plain strings, kept unmaterialised: (values, row hashes, uniques).
        self._lazy: tuple[Any, np.ndarray, np.ndarray] | None = None
        self._counts_exact = True
        self._distinct = sketches.DistinctCounter(
            sketches.identity, sketches.identity, DISTINCT_EXACT_LIMIT
        )
        self.min: Any = None
        self.max: Any = None
        self._len_sum = 0
        self._len_min: int | None = None
        self._len_max: int | None = None

    def update(self, arr: Any) -> None:
        import numpy as np
        import pyarrow as pa
        import pyarrow.compute as pc

        super().update(arr)
        if len(arr) == arr.null_count:
            return
        if isinstance(arr, pa.ChunkedArray):
            arr = arr.combine_chunks()
        if arr.null_count:
            arr = pc.drop_null(arr)
        if isinstance(arr, pa.DictionaryArray):
            counted = pc.value_counts(arr).flatten()
            values = counted[0].dictionary_decode()
            freq = np.asarray(counted[1].to_numpy(zero_copy_only=False), dtype=np.int64)
            self._distinct.add(column_hashes(values))
            self._lengths_and_bounds(values, counted[1])
            self._merge_counts(values, freq)
            return
        self._lengths_and_bounds(arr, None)
        hashes = column_hashes(arr)
        ordered = np.sort(hashes)
        starts = np.concatenate(([0], np.flatnonzero(ordered[1:] != ordered[:-1]) + 1))
        freq = np.diff(np.concatenate((starts, [len(ordered)]))).astype(np.int64)
        uniques = ordered[starts]
        self._distinct.add(uniques)
        if self.batches == 1:
            self._lazy, self._freq = (arr, hashes, uniques), freq
            return
        self._materialise()
        self._merge_counts(_first_of_each(arr, hashes, uniques), freq)

    def _materialise(self) -> None:
        if self._lazy is not None:
            arr, hashes, uniques = self._lazy
            self._lazy = None
            self._values = _first_of_each(arr, hashes, uniques)

    def _merge_counts(self, values: Any, freq: np.ndarray) -> None:
        import numpy as np
        import pyarrow as pa

        if self._values is None:
            self._values, self._freq = values, freq
        else:
            assert self._freq is not None
            both = pa.table(
                {
                    "v": pa.concat_arrays([self._values, values.cast(self._values.type)]),
                    "c": np.concatenate([self._freq, freq]),
                }
            )
            merged = both.group_by("v").aggregate([("c", "sum")])
            self._values = merged.column("v").combine_chunks()
            self._freq = np.asarray(merged.column("c_sum").to_numpy(), dtype=np.int64)
        if self.batches > 1 and len(self._freq) > _COUNTS_CAP:
            keep = np.argpartition(-self._freq, _COUNTS_CAP)[:_COUNTS_CAP]
            self._values, self._freq = self._values.take(keep), self._freq[keep]
            self._counts_exact = False

    def _lengths_and_bounds(self, values: Any, freq: Any) -> None:
        """Length statistics and lexical bounds; ``freq`` weights distinct ``values``."""
        import pyarrow.compute as pc

        try:
            bounds = pc.min_max(values)
            lengths = pc.utf8_length(values) if _is_text(values.type) else pc.binary_length(values)
            spans = pc.min_max(lengths)
        except Exception:  # pragma: no cover - exotic dictionary value types
            return
        lo, hi = bounds["min"].as_py(), bounds["max"].as_py()
        self.min = lo if self.min is None else min(self.min, lo)
        self.max = hi if self.max is None else max(self.max, hi)
        weighted = lengths.cast("int64") if freq is None else pc.multiply(lengths, freq)
        self._len_sum += pc.sum(weighted).as_py() or 0
        lo_len, hi_len = spans["min"].as_py(), spans["max"].as_py()
        self._len_min = lo_len if self._len_min is None else min(self._len_min, lo_len)
        self._len_max = hi_len if self._len_max is None else max(self._len_max, hi_len)

    def top_values(self, k: int) -> list[tuple[Any, int]]:
        """The ``k`` most frequent values with their counts (ties broken by value)."""
        import numpy as np

        if self._freq is None or not len(self._freq):
            return []
        k = min(k, len(self._freq))
        # Everything tied with the k-th count competes, so that ties break by value.
        kth = np.partition(-self._freq, k - 1)[k - 1]
        pick = np.flatnonzero(-self._freq <= kth)
        if self._lazy is not None:
            arr, hashes, uniques = self._lazy
            values = _first_of_each(arr, hashes, uniques[pick]).to_pylist()
        else:
            values = self._values.take(pick).to_pylist()
        pairs = list(zip(values, self._freq[pick].tolist(), strict=True))
        pairs.sort(key=lambda vc: (-vc[1], str(vc[0])))
        return pairs[:k]

    def result(self) -> dict[str, Any]:
        out = super().result()
        distinct, distinct_exact = self._distinct.result()
        out.update(
            distinct=distinct,
            min=_text(self.min),
            max=_text(self.max),
            top=[[_text(v), int(c)] for v, c in self.top_values(self.top)],
            min_length=self._len_min,
            max_length=self._len_max,
            mean_length=(self._len_sum / self.count) if self.count else None,
            exact=distinct_exact and self._counts_exact,
        )
        return out


def _first_of_each(arr: Any, hashes: np.ndarray, wanted: np.ndarray) -> Any:
    """The values of ``arr`` whose hashes are ``wanted`` (sorted, distinct), in that order."""
    import numpy as np
    import pyarrow as pa

    if len(wanted) * 8 < len(hashes):
        positions = np.flatnonzero(np.isin(hashes, wanted))
        found = hashes[positions]
    else:
        positions = np.argsort(hashes, kind="stable")
        found = hashes[positions]
    first = np.searchsorted(found, wanted) if np.all(found[:-1] <= found[1:]) else None
    if first is None:
        order = np.argsort(found, kind="stable")
        positions, found = positions[order], found[order]
        first = np.searchsorted(found, wanted)
    return arr.take(pa.array(positions[first]))


class BoolAccumulator(ColumnAccumulator):
    kind = "bool"

    def __init__(self, dtype: pa.DataType, *, top: int = DEFAULT_TOP) -> None:
        super().__init__(dtype)
        self.trues = 0

    def update(self, arr: Any) -> None:
        import pyarrow.compute as pc

        super().update(arr)
        self.trues += int(pc.sum(arr).as_py() or 0)

    def result(self) -> dict[str, Any]:
        out = super().result()
        falses = self.count - self.trues
        out.update(
            distinct=int(self.trues > 0) + int(falses > 0),
            mean=self.trues / self.count if self.count else None,
            top=sorted([[True, self.trues], [False, falses]], key=lambda kv: -kv[1]),
        )
        return out


def _sorted(values: np.ndarray) -> np.ndarray:
    """``values`` sorted: integers spanning a small range by counting (a bincount and a
    repeat, several times faster than a comparison sort), anything else by ``sort``."""
    import numpy as np

    if values.dtype.kind in "iu" and len(values) > 1:
        base = values.min()
        if int(values.max()) - int(base) <= max(1 << 16, len(values)):
            # Unsigned differences cannot overflow; small signed types are widened first.
            offsets = values - base if values.dtype.kind == "u" else values.astype(np.int64) - base
            counts = np.bincount(offsets.astype(np.intp, copy=False))
            present = np.flatnonzero(counts)
            wide = np.uint64 if values.dtype.kind == "u" else np.int64
            uniques = (present.astype(wide) + wide(base)).astype(values.dtype)
            return np.repeat(uniques, counts[present])
    values.sort()
    return values


def _numeric_values(arr: Any, dtype: pa.DataType) -> np.ndarray:
    """The non-null, non-NaN values of a numeric/temporal Arrow array as NumPy."""
    import numpy as np
    import pyarrow as pa
    import pyarrow.compute as pc

    if isinstance(arr, pa.ChunkedArray):
        arr = arr.combine_chunks() if arr.num_chunks != 1 else arr.chunk(0)
    t = pa.types
    if t.is_timestamp(dtype):
        arr = arr.cast(pa.timestamp(dtype.unit)).cast(pa.timestamp("ns")).view(pa.int64())
    elif t.is_date(dtype):
        arr = arr.cast(pa.date32()).view(pa.int32())
    elif t.is_decimal(dtype):
        arr = arr.cast(pa.float64())
    if arr.null_count:
        arr = pc.drop_null(arr)
    values = np.asarray(arr.to_numpy(zero_copy_only=False))
    if values.dtype.kind == "f":
        nan = np.isnan(values)
        return values[~nan] if nan.any() else values.copy()
    return values.copy()  # sorted in place by the caller


def _fixed_edges(
    value_range: tuple[Any, Any] | None, bins: int, kind: str, dtype: pa.DataType
) -> np.ndarray | None:
    """Histogram edges known before any data is read (from Parquet statistics)."""
    if value_range is None or kind != "numeric":
        return None
    lo, hi = value_range
    try:
        lo, hi = float(lo), float(hi)
    except (TypeError, ValueError):
        return None
    if not (math.isfinite(lo) and math.isfinite(hi)):
        return None
    return sketches.edges(lo, hi, bins)


def _num(value: Any) -> Any:
    """A JSON-safe number: ints stay ints, NaN and infinities become None."""
    if value is None:
        return None
    if hasattr(value, "item"):
        value = value.item()
    if isinstance(value, bool):
        return value
    if isinstance(value, int):
        return value
    value = float(value)
    return value if math.isfinite(value) else None


def _text(value: Any) -> Any:
    if isinstance(value, bytes):
        return value.hex()
    return value


def _is_text(dtype: pa.DataType) -> bool:
    import pyarrow as pa

    return (
        pa.types.is_string(dtype) or pa.types.is_large_string(dtype) or str(dtype) == "string_view"
    )
