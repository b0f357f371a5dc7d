"""One column at a time out of whatever table a user hands a drift check.

A drift check reads each column once, as one of two shapes: *numerical* (a float64 NumPy
array, missing values as NaN) or *categorical* (an Arrow string array, missing values as
nulls). Columns are pulled one by one, never the whole table converted at once, so the
memory a check needs beyond the data stays about one column's worth per thread.

Kinds follow the stored type, not the values: integers, floats, decimals and timestamps
(as seconds since the epoch) are numerical; strings, categories and booleans (``"true"`` /
``"false"``, however they were read) are categorical; an all-null column (Arrow's ``null``
type) is categorical with no values; anything else (lists, structs, bytes) is
``unsupported`` and is named as such, never guessed at.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from modelyard.errors import InvalidParameter

NUMERICAL = "numerical"
CATEGORICAL = "categorical"
UNSUPPORTED = "unsupported"


@dataclass(frozen=True, slots=True)
class ColumnValues:
    """A column as a drift check reads it: ``numbers`` (numerical) or ``labels``
    (categorical, an Arrow string array) is set, the other is None."""

    kind: str
    type_name: str
    rows: int
    numbers: np.ndarray | None = None
    labels: Any = None


class TableColumns:
    """Column names, row count and per-column access for a pandas DataFrame, an Arrow
    table or record batch, a polars DataFrame, or a mapping of names to 1-D arrays."""

    def __init__(self, data: Any) -> None:
        self._frame: Any = None
        self._arrow: Any = None
        self._keys: dict[str, Any] = {}
        if hasattr(data, "iloc") and hasattr(data, "dtypes"):
            self._frame = data
            self._keys = {str(c): c for c in data.columns}
            self.names = list(self._keys)
            self.rows = len(data)
            if len(self._keys) != len(data.columns):
                every = [str(c) for c in data.columns]
                dupes = sorted({c for c in every if every.count(c) > 1})
                raise InvalidParameter(
                    f"the table has duplicate column names {dupes}; rename them first",
                    field="columns",
                )
            return
        if isinstance(data, Mapping):
            data = _mapping_to_arrow(data)
        import pyarrow as pa

        if isinstance(data, pa.RecordBatch):
            data = pa.Table.from_batches([data])
        elif not isinstance(data, pa.Table):
            if type(data).__module__.startswith("polars"):
                data = data.to_arrow()
            else:
                raise InvalidParameter(
                    f"cannot read a {type(data).__name__} as a table; pass a pandas or polars "
                    "DataFrame, a pyarrow Table or RecordBatch, or a dict of 1-D arrays",
                    field="table",
                )
        self._arrow = data
        self.names = list(data.column_names)
        self.rows = data.num_rows
        if len(set(self.names)) != len(self.names):
            raise InvalidParameter("the table has duplicate column names", field="columns")

    def kind(self, name: str) -> tuple[str, str]:
        """(kind, type name) of a column, without reading its values."""
        if self._frame is not None:
            return _pandas_kind(self._frame[self._frame_key(name)])
        return _arrow_kind(self._arrow.schema.field(name).type)

    def all_null(self, name: str) -> bool:
        """Whether every value of the column is missing (an all-null column has no type of
        its own to compare: pandas reads it as objects, Arrow as ``null``)."""
        if self._frame is not None:
            return bool(self._frame[self._frame_key(name)].isna().all())
        column = self._arrow.column(name)
        return column.null_count == len(column)

    def values(self, name: str) -> ColumnValues:
        if self._frame is not None:
            return _pandas_values(self._frame[self._frame_key(name)], self.rows)
        return _arrow_values(self._arrow.column(name), self.rows)

    def _frame_key(self, name: str) -> Any:
        return self._keys[name]


def _mapping_to_arrow(data: Mapping[str, Any]) -> Any:
    import pyarrow as pa

    arrays = {}
    for name, values in data.items():
        try:
            arrays[str(name)] = pa.array(np.asarray(values) if isinstance(values, list) else values)
        except (pa.ArrowInvalid, pa.ArrowTypeError, ValueError, TypeError) as exc:
            raise InvalidParameter(
                f"column {name!r} cannot be read as one typed array: {exc}", field=str(name)
            ) from None
    lengths = {len(a) for a in arrays.values()}
    if len(lengths) > 1:
        raise InvalidParameter(
            f"the columns have different lengths {sorted(lengths)}", field="table"
        )
    return pa.table(arrays)


def _arrow_kind(dtype: Any) -> tuple[str, str]:
    import pyarrow.types as pt

    name = str(dtype)
    if pt.is_dictionary(dtype):
        return _arrow_kind(dtype.value_type)[0], name
    if pt.is_boolean(dtype) or pt.is_string(dtype) or pt.is_large_string(dtype):
        return CATEGORICAL, name
    if hasattr(pt, "is_string_view") and pt.is_string_view(dtype):
        return CATEGORICAL, name
    if pt.is_null(dtype):
        return CATEGORICAL, name
    if pt.is_integer(dtype) or pt.is_floating(dtype) or pt.is_decimal(dtype):
        return NUMERICAL, name
    if pt.is_timestamp(dtype) or pt.is_date(dtype):
        return NUMERICAL, name
    return UNSUPPORTED, name


def _arrow_values(column: Any, rows: int) -> ColumnValues:
    import pyarrow as pa
    import pyarrow.compute as pc

    kind, type_name = _arrow_kind(column.type)
    if kind == UNSUPPORTED:
        return ColumnValues(kind, type_name, rows)
    dtype = column.type
    if pa.types.is_dictionary(dtype):
        column = column.cast(dtype.value_type)
        dtype = column.type
    if kind == CATEGORICAL:
        if not pa.types.is_string(dtype):  # null, bool, large_string, string_view
            column = column.cast(pa.string())
        labels = column.combine_chunks() if isinstance(column, pa.ChunkedArray) else column
        return ColumnValues(kind, type_name, rows, labels=labels)
    if pa.types.is_timestamp(dtype) or pa.types.is_date(dtype):
        seconds = pc.cast(pc.cast(column, pa.timestamp("us")), pa.int64())
        numbers = seconds.to_numpy(zero_copy_only=False).astype(np.float64) / 1e6
        if seconds.null_count:
            numbers[np.asarray(pc.is_null(seconds))] = np.nan
        return ColumnValues(kind, type_name, rows, numbers=numbers)
    if not pa.types.is_float64(dtype):
        column = column.cast(pa.float64())
    numbers = column.to_numpy()  # nulls read as NaN
    return ColumnValues(kind, type_name, rows, numbers=np.asarray(numbers, dtype=np.float64))


def _pandas_kind(series: Any) -> tuple[str, str]:
    import pandas as pd
    from pandas.api import types as pdt

    dtype = series.dtype
    name = str(dtype)
    if pdt.is_bool_dtype(dtype):
        return CATEGORICAL, name
    if pdt.is_numeric_dtype(dtype) or pdt.is_datetime64_any_dtype(dtype):
        return NUMERICAL, name
    if (
        isinstance(dtype, pd.CategoricalDtype)
        or pdt.is_string_dtype(dtype)
        or pdt.is_object_dtype(dtype)
    ):
        return CATEGORICAL, name
    return UNSUPPORTED, name


def _pandas_values(series: Any, rows: int) -> ColumnValues:
    import pyarrow as pa
    from pandas.api import types as pdt

    kind, type_name = _pandas_kind(series)
    if kind == UNSUPPORTED:
        return ColumnValues(kind, type_name, rows)
    if kind == NUMERICAL:
        if pdt.is_datetime64_any_dtype(series.dtype):
            stamps = series.to_numpy(dtype="datetime64[us]")
            numbers = stamps.view(np.int64).astype(np.float64) / 1e6
            numbers[np.isnat(stamps)] = np.nan
        else:
            numbers = series.to_numpy(dtype=np.float64, na_value=np.nan)
        return ColumnValues(kind, type_name, rows, numbers=numbers)
    try:
        labels = pa.array(series, from_pandas=True)
    except (pa.ArrowInvalid, pa.ArrowTypeError):  # mixed Python types in an object column
        mask = series.isna().to_numpy()
        labels = pa.array(series.astype(str).to_numpy(dtype=object), mask=mask, type=pa.string())
    if pa.types.is_dictionary(labels.type):
        labels = labels.cast(labels.type.value_type)
    if not (pa.types.is_string(labels.type) or pa.types.is_large_string(labels.type)):
        labels = labels.cast(pa.string())
    return ColumnValues(kind, type_name, rows, labels=labels)
