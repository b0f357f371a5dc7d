"""Request data checked against a model signature, turned into what the model eats.

Every protocol (OIP tensors, MLflow's four JSON layouts and CSV, native records) ends up
here as named columns or one tensor. Each column is checked once, vectorised, against the
signature: a missing column, a value of the wrong type (a string where a number goes, a
fraction in an integer column) or a wrong shape is an ``InvalidParameter`` naming the
column, the row and the value — a 400, never a 500 from deep inside NumPy.

Numeric columns become one float64 matrix in signature order (the fast path: no pandas on
the hot path); anything else becomes a DataFrame.

>>> spec = InputSpec.from_signature({"inputs": [{"name": "x", "type": "double"}]})
>>> spec.from_records([{"x": 1}, {"x": 2.5}]).matrix.tolist()
[[1.0], [2.5]]
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from modelyard.errors import InvalidParameter

NUMERIC_TYPES = frozenset({"double", "float", "long", "integer"})
#: MLflow column type → (OIP datatype, NumPy dtype).
COLUMN_TYPES: dict[str, tuple[str, str]] = {
    "double": ("FP64", "float64"),
    "float": ("FP32", "float32"),
    "long": ("INT64", "int64"),
    "integer": ("INT32", "int32"),
    "boolean": ("BOOL", "bool"),
    "string": ("BYTES", "object"),
    "datetime": ("BYTES", "datetime64[ns]"),
    "binary": ("BYTES", "object"),
}


def bad(message: str, column: str | None = None) -> InvalidParameter:
    return InvalidParameter(message, field=column or "inputs")


@dataclass(frozen=True, slots=True)
class ColumnSpec:
    name: str
    type: str
    required: bool = False


@dataclass
class Batch:
    """Checked input rows. ``matrix`` (float64, signature order) when every column is
    numeric, else ``frame``; ``tensor`` for tensor signatures; ``extra`` keeps columns the
    model does not take (sticky keys, slice columns) for routing and the prediction log."""

    n_rows: int
    matrix: Any = None
    frame: Any = None
    tensor: Any = None
    columns: dict[str, Any] = field(default_factory=dict)
    extra: dict[str, Any] = field(default_factory=dict)

    def model_input(self, names: Sequence[str] | None) -> Any:
        """A DataFrame (named columns) for the model's own ``predict``."""
        if self.tensor is not None:
            return self.tensor
        if self.frame is not None:
            return self.frame
        import pandas as pd

        return pd.DataFrame(self.matrix, columns=list(names or ()))

    def log_source(self) -> Any:
        """What the prediction log keeps until its writer thread encodes the rows: for
        plain numeric rows ``(names, matrix)``, a tuple the garbage collector stops
        tracking (thousands of queued records then cost no collection time, and the batch
        itself is freed at once); otherwise ``log_inputs``, called on the writer thread."""
        matrix = self.matrix
        if (
            matrix is not None
            and not self.extra
            and all(getattr(v, "base", None) is matrix for v in self.columns.values())
        ):
            return (tuple(self.columns), matrix)
        return self.log_inputs

    def log_inputs(self) -> dict[str, Any]:
        """The rows as JSON-ready columns ``{name: [values]}`` for the prediction log
        (columnar: one list per column encodes far faster than one object per row; runs
        on the log's writer thread, never on the request)."""
        if self.tensor is not None:
            return {"tensor": np.asarray(self.tensor)}
        return {
            name: _plain_list(values) for name, values in {**self.columns, **self.extra}.items()
        }


def _plain_list(values: Any) -> Any:
    """A column ready for JSON: numeric arrays stay arrays (the encoder writes them
    directly), times become ISO text, bytes become text."""
    array = np.asarray(values)
    if array.dtype.kind in "fiub":
        return array
    if array.dtype.kind == "M":
        return [str(v) for v in array.astype("datetime64[ms]")]
    return [v.decode("utf-8", "replace") if isinstance(v, bytes) else v for v in array.tolist()]


class InputSpec:
    """What a model takes, from its signature; checks and converts request data."""

    def __init__(
        self,
        columns: tuple[ColumnSpec, ...] | None = None,
        tensor_dtype: str | None = None,
        tensor_shape: tuple[int, ...] | None = None,
    ) -> None:
        self.columns = columns
        self.tensor_dtype = tensor_dtype
        self.tensor_shape = tensor_shape
        self.names = [c.name for c in columns] if columns else None
        self.numeric = bool(columns) and all(c.type in NUMERIC_TYPES for c in columns or ())
        self._name_set = frozenset(self.names or ())
        self._integers = [j for j, c in enumerate(columns or ()) if c.type in ("long", "integer")]

    def _fast(self, rows: Any, columns: list[str], extra: dict[str, Any] | None = None) -> Any:
        """Numeric rows straight into the float64 matrix with one C-level conversion, when
        every value is a number; None sends the data down the checked path, which names
        any problem. (Callers skip this when the body holds JSON booleans, which NumPy
        would silently turn into 1.0 inside a numeric row.)"""
        if not self.numeric or self.names is None:
            return None
        try:
            array = np.asarray(rows)
        except (ValueError, TypeError):
            return None
        if array.ndim != 2 or array.dtype.kind not in "fiu" or array.shape[0] == 0:
            return None
        if array.shape[1] != len(columns):
            return None
        if columns == self.names:
            matrix = array.astype(np.float64, copy=False)
        else:
            position = {name: j for j, name in enumerate(columns)}
            if any(name not in position for name in self.names):
                return None
            matrix = array[:, [position[name] for name in self.names]].astype(np.float64)
        if self._integers and array.dtype.kind == "f":
            ints = matrix[:, self._integers]
            if not np.all(np.isfinite(ints) & (ints == np.round(ints))):
                return None
        checked = {name: matrix[:, j] for j, name in enumerate(self.names)}
        return Batch(int(matrix.shape[0]), matrix=matrix, columns=checked, extra=extra or {})

    @classmethod
    def from_signature(cls, signature: Any) -> InputSpec:
        """From a ``Signature`` or its dict; no signature accepts any columns unchecked."""
        if signature is None:
            return cls()
        inputs = signature.get("inputs") if isinstance(signature, Mapping) else signature.inputs
        inputs = list(inputs or [])
        if inputs and inputs[0].get("type") == "tensor":
            spec = inputs[0].get("tensor-spec") or {}
            shape = tuple(int(d) for d in spec.get("shape") or (-1,))
            return cls(tensor_dtype=str(spec.get("dtype", "float64")), tensor_shape=shape)
        columns = tuple(
            ColumnSpec(str(c["name"]), str(c.get("type", "double")), bool(c.get("required")))
            for c in inputs
            if c.get("name")
        )
        return cls(columns=columns or None)

    # -- describing ---------------------------------------------------------------------

    def oip_inputs(self) -> list[dict[str, Any]]:
        """Input metadata for ``GET /v2/models/{name}`` (−1: any batch size)."""
        if self.tensor_shape is not None:
            return [
                {
                    "name": "input-0",
                    "datatype": numpy_to_oip(np.dtype(self.tensor_dtype or "float64")),
                    "shape": list(self.tensor_shape),
                }
            ]
        return [
            {"name": c.name, "datatype": COLUMN_TYPES.get(c.type, ("BYTES", ""))[0], "shape": [-1]}
            for c in self.columns or ()
        ]

    # -- building batches ---------------------------------------------------------------

    def from_records(self, records: object, *, fast: bool = True) -> Batch:
        """``[{column: value}, ...]`` (dataframe_records, native /predict)."""
        if not isinstance(records, list) or not all(isinstance(r, dict) for r in records):
            raise bad("expected a list of records (JSON objects, one per row)")
        if not records:
            raise bad("the request has no rows")
        if self.tensor_shape is not None:
            raise bad("this model takes a tensor, not named columns; send 'inputs' or 'instances'")
        if fast and self.numeric and self.names is not None:
            try:
                rows = [[r[n] for n in self.names] for r in records]
            except KeyError:
                rows = None
            if rows is not None:
                others = [k for k in records[0] if k not in self._name_set]
                extra = {k: [r.get(k) for r in records] for k in others}
                batch = self._fast(rows, self.names, extra)
                if batch is not None:
                    return batch
        names = self.names or list(dict.fromkeys(k for r in records for k in r))
        wanted = set(names)
        for i, row in enumerate(records):
            missing = wanted.difference(row)
            if missing and self.names is not None:
                name = next(n for n in names if n in missing)
                raise bad(f"row {i} is missing column {name!r}; the model takes {names}", name)
        cols = {n: [r[n] for r in records] for n in names}
        extra_names = {k for r in records[:1] for k in r} - wanted
        extra = {k: [r.get(k) for r in records] for k in extra_names}
        return self.from_columns(cols, extra=extra)

    def from_split(self, columns: object, data: object, *, fast: bool = True) -> Batch:
        """MLflow's ``dataframe_split``: ``{"columns": [...], "data": [[...], ...]}``."""
        if not isinstance(data, list) or not all(isinstance(r, list) for r in data):
            raise bad("dataframe_split.data must be a list of rows (lists)")
        if not data:
            raise bad("the request has no rows")
        if columns is None:
            columns = self.names
        if not isinstance(columns, list) or not all(isinstance(c, str) for c in columns):
            raise bad("dataframe_split.columns must be a list of column names")
        if fast:
            batch = self._fast(data, columns)
            if batch is not None:
                return batch
        width = len(columns)
        for i, row in enumerate(data):
            if len(row) != width:
                raise bad(f"row {i} has {len(row)} values but there are {width} columns")
        transposed = list(zip(*data, strict=True))
        return self.from_columns({c: list(transposed[j]) for j, c in enumerate(columns)})

    def from_instances(self, instances: object, *, fast: bool = True) -> Batch:
        """TF-serving style ``instances``/``inputs``: records, rows, or column lists."""
        if fast and self.names is not None and isinstance(instances, list):
            batch = self._fast(instances, self.names)
            if batch is not None:
                return batch
        if isinstance(instances, dict):
            return self.from_columns(
                {k: v if isinstance(v, list) else [v] for k, v in instances.items()}
            )
        if isinstance(instances, list) and instances and isinstance(instances[0], dict):
            return self.from_records(instances)
        if self.tensor_shape is not None or self.names is None:
            return self.from_tensor(instances)
        array = _array(instances, "instances")
        if array.ndim == 1:
            array = array.reshape(1, -1) if len(self.names) > 1 else array.reshape(-1, 1)
        if array.ndim != 2 or array.shape[1] != len(self.names):
            raise bad(
                f"instances have shape {list(array.shape)}; the model takes rows of "
                f"{len(self.names)} values ({', '.join(self.names)})"
            )
        return self.from_columns({n: array[:, j] for j, n in enumerate(self.names)})

    def from_tensor(self, values: object, name: str = "inputs") -> Batch:
        """One tensor: checked against the tensor spec, or split into the named columns."""
        array = values if isinstance(values, np.ndarray) else _array(values, name)
        if self.tensor_shape is None and self.names is not None:
            if array.ndim == 1 and len(self.names) == 1:
                array = array.reshape(-1, 1)
            if array.ndim != 2 or array.shape[1] != len(self.names):
                raise bad(
                    f"input {name!r} has shape {list(array.shape)}; the model takes "
                    f"[-1, {len(self.names)}] ({', '.join(self.names)})",
                    name,
                )
            return self.from_columns({n: array[:, j] for j, n in enumerate(self.names)})
        if self.tensor_shape is not None:
            want = self.tensor_shape
            if array.ndim != len(want) or any(
                w not in (-1, g) for w, g in zip(want[1:], array.shape[1:], strict=True)
            ):
                raise bad(
                    f"input {name!r} has shape {list(array.shape)}; the model takes "
                    f"{list(want)} (-1: any size)",
                    name,
                )
            expected = np.dtype(self.tensor_dtype or "float64")
            if not _castable(array.dtype, expected):
                raise bad(
                    f"input {name!r} holds {array.dtype} values; the model takes {expected}", name
                )
            array = array.astype(expected, copy=False)
        if array.ndim == 0:
            raise bad(f"input {name!r} is a scalar; send a batch (a list of rows)", name)
        return Batch(n_rows=int(array.shape[0]), tensor=array)

    def from_columns(
        self, cols: Mapping[str, Any], extra: Mapping[str, Any] | None = None
    ) -> Batch:
        """Named columns (lists or arrays of equal length), checked and converted."""
        extra = dict(extra or {})
        if self.tensor_shape is not None:
            if len(cols) == 1:
                return self.from_tensor(next(iter(cols.values())), next(iter(cols)))
            raise bad("this model takes one tensor input, not named columns")
        names = self.names
        if names is None:
            return _unchecked(cols, extra)
        missing = [n for n in names if n not in cols]
        if missing:
            raise bad(
                f"missing column{'s' if len(missing) > 1 else ''} "
                f"{', '.join(map(repr, missing))}; the model takes {names}",
                missing[0],
            )
        for k in set(cols) - set(names):
            extra.setdefault(k, cols[k])
        checked: dict[str, np.ndarray] = {}
        n_rows = None
        for spec in self.columns or ():
            array = _coerce(spec, cols[spec.name])
            if n_rows is None:
                n_rows = len(array)
            elif len(array) != n_rows:
                raise bad(
                    f"column {spec.name!r} has {len(array)} values but {names[0]!r} has {n_rows}",
                    spec.name,
                )
            checked[spec.name] = array
        if not n_rows:
            raise bad("the request has no rows")
        if self.numeric:
            matrix = np.empty((n_rows, len(names)), dtype=np.float64)
            for j, n in enumerate(names):
                matrix[:, j] = checked[n]
            return Batch(n_rows, matrix=matrix, columns=checked, extra=extra)
        import pandas as pd

        return Batch(n_rows, frame=pd.DataFrame(checked), columns=checked, extra=extra)


def _unchecked(cols: Mapping[str, Any], extra: dict[str, Any]) -> Batch:
    """No signature: columns go to the model as a DataFrame, as they came."""
    import pandas as pd

    try:
        frame = pd.DataFrame(
            {k: list(v) if not isinstance(v, np.ndarray) else v for k, v in cols.items()}
        )
    except (ValueError, TypeError) as exc:
        raise bad(f"columns do not form a table: {exc}") from None
    if frame.empty:
        raise bad("the request has no rows")
    return Batch(len(frame), frame=frame, columns=dict(cols), extra=extra)


def _array(values: object, name: str) -> np.ndarray:
    try:
        array = np.asarray(values)
    except (ValueError, TypeError):
        raise bad(f"{name} is ragged: every row must have the same length", name) from None
    if array.dtype.kind == "O" and array.ndim > 1:
        raise bad(f"{name} mixes types or is ragged", name)
    return array


def _castable(have: np.dtype, want: np.dtype) -> bool:
    if want.kind == "f":
        return have.kind in "fiu"
    if want.kind in "iu":
        return have.kind in "iu"
    return have.kind == want.kind or want.kind == "O"


def _first_bad(values: Iterable[Any], ok: Any) -> tuple[int, Any] | None:
    for i, value in enumerate(values):
        if not ok(value):
            return i, value
    return None


def _type_error(spec: ColumnSpec, row: int, value: Any) -> InvalidParameter:
    what = "null" if value is None else f"{type(value).__name__} {value!r}"
    return bad(
        f"column {spec.name!r} must hold {spec.type} values; row {row} holds {what}", spec.name
    )


def _coerce(spec: ColumnSpec, values: Any) -> np.ndarray:
    """Check one column against its declared type and convert it, vectorised."""
    array = values if isinstance(values, np.ndarray) else np.asarray(values, dtype=object)
    if array.ndim == 2 and array.shape[1] == 1:
        array = array[:, 0]
    if array.ndim != 1:
        raise bad(
            f"column {spec.name!r} has shape {list(array.shape)}; a column is one value per row",
            spec.name,
        )
    kind = array.dtype.kind
    t = spec.type
    if t in ("double", "float"):
        if kind in "fiu":
            return array.astype(np.float64, copy=False)
        if kind == "O":
            found = _first_bad(
                array,
                lambda v: (
                    (v is None and not spec.required)
                    or (
                        isinstance(v, int | float | np.number)
                        and not isinstance(v, bool | np.bool_)
                    )
                ),
            )
            if found is None:
                try:
                    return np.array([np.nan if v is None else v for v in array], dtype=np.float64)
                except OverflowError:  # an integer past a double (~1.8e308)
                    found = _first_bad(array, lambda v: v is None or _fits_double(v))
            raise _type_error(spec, *(found or (0, array[0])))
        raise _type_error(spec, 0, array[0] if len(array) else None)
    if t in ("long", "integer"):
        if kind in "iu":
            if kind == "u" and len(array) and int(array.max()) > _INT64_MAX:
                i = int(np.argmax(array))
                raise _type_error(spec, i, int(array[i]))  # past int64: never wrapped
            return array.astype(np.int64, copy=False)
        if kind == "O":
            found = _first_bad(
                array,
                lambda v: (
                    isinstance(v, int | np.integer)
                    and not isinstance(v, bool)
                    and -_INT64_MAX - 1 <= v <= _INT64_MAX
                ),
            )
            if found is None:
                return array.astype(np.int64)
            raise _type_error(spec, *found)
        if kind == "f":
            fractional = np.flatnonzero(
                ~np.isfinite(array) | (array != np.round(array)) | (np.abs(array) >= 2.0**63)
            )
            if len(fractional) == 0:
                return array.astype(np.int64)
            i = int(fractional[0])
            raise _type_error(spec, i, float(array[i]))
        raise _type_error(spec, 0, array[0] if len(array) else None)
    if t == "boolean":
        if kind == "b":
            return array
        found = _first_bad(array, lambda v: isinstance(v, bool | np.bool_))
        if found is None:
            return array.astype(bool)
        raise _type_error(spec, *found)
    if t == "datetime":
        if kind == "M":
            return array
        import pandas as pd

        try:
            return pd.to_datetime(pd.Series(array), errors="raise").to_numpy()
        except (ValueError, TypeError):
            found = _first_bad(array, lambda v: _parses_as_time(v)) or (0, array[0])
            raise _type_error(spec, *found) from None
    if t in ("string", "binary"):
        if kind in "US":
            return array.astype(object)
        found = _first_bad(
            array, lambda v: isinstance(v, str | bytes) or (v is None and not spec.required)
        )
        if found is None:
            return array
        raise _type_error(spec, *found)
    return array


_INT64_MAX = int(np.iinfo(np.int64).max)


def _fits_double(value: Any) -> bool:
    try:
        float(value)
    except OverflowError:  # an integer past ~1.8e308
        return False
    return True


def _parses_as_time(value: Any) -> bool:
    import pandas as pd

    try:
        pd.Timestamp(value)
        return True
    except (ValueError, TypeError):
        return False


def numpy_to_oip(dtype: np.dtype) -> str:
    """The OIP datatype name of a NumPy dtype (BYTES for strings and objects)."""
    return _NUMPY_TO_OIP.get(np.dtype(dtype).str.lstrip("<>|="), "BYTES")


_NUMPY_TO_OIP = {
    "b1": "BOOL",
    "u1": "UINT8",
    "u2": "UINT16",
    "u4": "UINT32",
    "u8": "UINT64",
    "i1": "INT8",
    "i2": "INT16",
    "i4": "INT32",
    "i8": "INT64",
    "f2": "FP16",
    "f4": "FP32",
    "f8": "FP64",
}
OIP_TO_NUMPY = {v: k for k, v in _NUMPY_TO_OIP.items()}
