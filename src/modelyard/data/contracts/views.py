"""Columns prepared once for every check that reads them.

A ``ColumnView`` holds what vectorised checks need: NumPy values plus a null mask for
numbers and times (datetimes as int64 nanoseconds, UTC), the Arrow array for strings
(regular expressions and set membership run in Arrow's C++), and codes plus categories for
categoricals (a rule is evaluated once per category, then looked up by code). ``kind``
is what the column holds — ``object`` columns are inspected to find out.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass
class ColumnView:
    """One column prepared once for every check that reads it."""

    name: str
    series: Any
    kind: str  # int | float | bool | datetime | date | string | category | object
    values: Any = None  # NumPy values (numbers, int64 ns for datetimes); junk where null
    null: Any = None  # NumPy bool mask, or None when the column has no nulls
    arrow: Any = None  # Arrow array (strings)
    codes: Any = None  # categorical codes (-1 = null)
    categories: Any = None
    tz: Any = None

    def null_mask(self) -> Any:
        import numpy as np

        return self.null if self.null is not None else np.zeros(len(self.series), dtype=bool)

    def null_count(self) -> int:
        import numpy as np

        return 0 if self.null is None else int(np.count_nonzero(self.null))


def view_of(series: Any, name: str) -> ColumnView:
    import numpy as np
    import pandas as pd
    from pandas.api import types as pt

    dtype = series.dtype
    if isinstance(dtype, pd.CategoricalDtype):
        codes = series.cat.codes.to_numpy()
        null = codes < 0
        return ColumnView(
            name,
            series,
            "category",
            codes=codes,
            categories=dtype.categories,
            null=null if null.any() else None,
        )
    if pt.is_bool_dtype(dtype):
        null = series.isna().to_numpy() if not isinstance(dtype, np.dtype) else None
        values = series.to_numpy(dtype=bool, na_value=False)
        return ColumnView(name, series, "bool", values=values, null=_none_if_clear(null))
    if pt.is_integer_dtype(dtype):
        if isinstance(dtype, np.dtype):
            return ColumnView(name, series, "int", values=series.to_numpy())
        null = series.isna().to_numpy()
        values = series.to_numpy(dtype="int64", na_value=0)
        return ColumnView(name, series, "int", values=values, null=_none_if_clear(null))
    if pt.is_float_dtype(dtype):
        values = series.to_numpy(dtype="float64", na_value=np.nan)
        null = np.isnan(values)
        return ColumnView(name, series, "float", values=values, null=_none_if_clear(null))
    if pt.is_datetime64_any_dtype(dtype):
        tz = getattr(dtype, "tz", None)
        plain = series.dt.tz_convert("UTC").dt.tz_localize(None) if tz is not None else series
        values = plain.to_numpy(dtype="datetime64[ns]").view("int64")
        null = values == np.iinfo(np.int64).min
        return ColumnView(name, series, "datetime", values=values, null=_none_if_clear(null), tz=tz)
    if pt.is_string_dtype(dtype) and not pt.is_object_dtype(dtype):
        return _string_view(name, series)
    inferred = pd.api.types.infer_dtype(series, skipna=True)
    if inferred in ("string", "empty"):
        return _string_view(name, series)
    if inferred == "date":
        converted = pd.to_datetime(series)
        out = view_of(converted, name)
        out.kind, out.series = "date", series
        return out
    if inferred in ("integer", "floating", "mixed-integer-float", "boolean", "datetime"):
        return view_of(series.infer_objects(), name)
    null = series.isna().to_numpy()
    return ColumnView(name, series, "object", null=_none_if_clear(null))


def _string_view(name: str, series: Any) -> ColumnView:
    import numpy as np
    import pyarrow as pa

    try:
        arr = pa.array(series, from_pandas=True)
    except (pa.ArrowInvalid, pa.ArrowTypeError):
        null = series.isna().to_numpy()
        return ColumnView(name, series, "object", null=_none_if_clear(null))
    if isinstance(arr, pa.ChunkedArray):
        arr = arr.combine_chunks()
    null = np.asarray(arr.is_null()) if arr.null_count else None
    return ColumnView(name, series, "string", arrow=arr, null=null)


def _none_if_clear(mask: Any) -> Any:
    return mask if mask is not None and mask.any() else None
