"""Model signatures (what goes in, what comes out) and input examples.

A signature is inferred from an input example and the model's prediction on it, and is
stored in MLflow's JSON shape so both tools read it: named columns
(``{"name": "price", "type": "double"}``) for DataFrames, a tensor spec
(``{"type": "tensor", "tensor-spec": {"dtype": "float64", "shape": [-1, 3]}}``) for arrays.
The first dimension is ``-1``: any batch size.

>>> import pandas as pd
>>> infer_signature(pd.DataFrame({"x": [1.0]}), [0]).inputs
[{'name': 'x', 'type': 'double'}]
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

from modelyard.errors import InvalidParameter

#: pandas/NumPy dtype kind → MLflow's column type name.
_KIND_TYPES = {"b": "boolean", "i": "long", "u": "long", "f": "double", "M": "datetime"}
MAX_EXAMPLE_ROWS = 100


def _column_type(dtype: Any) -> str:
    kind = getattr(dtype, "kind", "O")
    if kind == "i" and getattr(dtype, "itemsize", 8) <= 4:
        return "integer"
    if kind == "f" and getattr(dtype, "itemsize", 8) <= 4:
        return "float"
    return _KIND_TYPES.get(kind, "string")


@dataclass(frozen=True, slots=True)
class Signature:
    inputs: list[dict[str, Any]]
    outputs: list[dict[str, Any]] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {"inputs": self.inputs, "outputs": self.outputs}

    @classmethod
    def from_dict(cls, data: dict[str, Any] | None) -> Signature | None:
        if not data:
            return None
        return cls(list(data.get("inputs") or []), list(data.get("outputs") or []))

    @property
    def column_names(self) -> list[str] | None:
        """Input column names in order, or None when the input is a tensor."""
        names = [spec.get("name") for spec in self.inputs]
        return names if names and all(names) else None  # type: ignore[return-value]


def _spec(data: Any) -> list[dict[str, Any]]:
    """Column specs for a DataFrame/Series/dict, a tensor spec for anything array-like."""
    import numpy as np
    import pandas as pd

    if isinstance(data, dict):
        data = pd.DataFrame(data)
    if isinstance(data, pd.DataFrame):
        return [{"name": str(c), "type": _column_type(t)} for c, t in data.dtypes.items()]
    if isinstance(data, pd.Series):
        return [
            {"type": _column_type(data.dtype), **({"name": str(data.name)} if data.name else {})}
        ]
    array = np.asarray(data)
    shape = [-1, *array.shape[1:]] if array.ndim else []
    return [{"type": "tensor", "tensor-spec": {"dtype": str(array.dtype), "shape": shape}}]


def infer_signature(model_input: Any, model_output: Any = None) -> Signature:
    """The signature of an input example and (optionally) the model's output on it."""
    if model_input is None:
        raise InvalidParameter(
            "cannot infer a signature without an input example", field="input_example"
        )
    outputs = [] if model_output is None else _spec(model_output)
    return Signature(_spec(model_input), outputs)


def check_input(signature: Signature | None, data: Any) -> Any:
    """``data`` ready for the model: DataFrame columns reordered to the signature's order.

    A missing column is a clear error naming it, rather than a shape error deep in NumPy.
    """
    import pandas as pd

    if isinstance(data, list) and data and isinstance(data[0], dict):
        data = pd.DataFrame(data)
    names = signature.column_names if signature else None
    if names is None or not isinstance(data, pd.DataFrame):
        return data
    missing = [n for n in names if n not in data.columns]
    if missing:
        raise InvalidParameter(
            f"input is missing column{'s' if len(missing) > 1 else ''} "
            f"{', '.join(map(repr, missing))}; the model expects {names}",
            field="model_input",
        )
    return data[names]


def example_to_json(example: Any) -> dict[str, Any]:
    """An input example as JSON (at most ``MAX_EXAMPLE_ROWS`` rows), in MLflow's layout:
    ``{"columns": [...], "data": [[...]]}`` for frames, ``{"inputs": [...]}`` for arrays."""
    import numpy as np
    import pandas as pd

    if isinstance(example, dict):
        example = pd.DataFrame(example)
    if isinstance(example, pd.DataFrame):
        head = example.head(MAX_EXAMPLE_ROWS)
        rows = [[_plain(v) for v in row] for row in head.itertuples(index=False, name=None)]
        return {"columns": [str(c) for c in head.columns], "data": rows}
    array = np.asarray(example)[:MAX_EXAMPLE_ROWS]
    return {"inputs": _plain(array.tolist()), "dtype": str(array.dtype)}


def example_from_json(data: dict[str, Any]) -> Any:
    import numpy as np
    import pandas as pd

    if "columns" in data:
        return pd.DataFrame(data["data"], columns=data["columns"])
    return np.asarray(data["inputs"], dtype=data.get("dtype"))


def _plain(value: Any) -> Any:
    """JSON-safe scalars: NumPy numbers to Python, timestamps to ISO text, NaN to None."""
    if isinstance(value, list):
        return [_plain(v) for v in value]
    if hasattr(value, "isoformat"):
        return value.isoformat()
    if hasattr(value, "item"):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value
