"""How step values become files, and back, without ever unpickling untrusted bytes.

A value is stored as the first of these that fits:

* ``json``: None, booleans, numbers, strings, and lists / dicts (string keys) of them
  (tuples come back as lists); a lone number is also in ``meta["number"]``, which the
  runner logs as a metric;
* ``parquet``: a pandas DataFrame or Series, or a pyarrow Table;
* ``numpy``: a NumPy array of a non-object dtype (``.npy``, read with ``allow_pickle=False``);
* ``model``: a scikit-learn, LightGBM, XGBoost or ONNX model, in the registry's formats
  (skops for scikit-learn, loaded through its reviewed type list);
* ``cloudpickle``: anything else, only from a step marked ``trusted_outputs=True``.

Anything else is refused with ``UnstorableOutput`` naming the step, the output and the
type. Each encoded value is a mapping of file names to bytes plus a small ``meta`` dict.
"""

from __future__ import annotations

import io
import json
import sys
import tempfile
from pathlib import Path
from typing import Any

from modelyard.errors import InvalidParameter, MissingExtra

#: Flavors whose formats load without running code from the file.
SAFE_MODEL_FLAVORS = ("lightgbm", "xgboost", "onnx", "sklearn")


class UnstorableOutput(InvalidParameter):
    """A step returned a value no safe format holds (and it is not marked trusted)."""


def encode(
    value: Any, *, step: str, output: str, trusted: bool
) -> tuple[str, dict[str, bytes], dict[str, Any]]:
    """``(kind, files, meta)`` for ``value``; raises UnstorableOutput naming the step."""
    if _is_json(value):
        text = json.dumps(value, separators=(",", ":"), allow_nan=True)
        # A lone number is logged as a metric too (an int past int64 is only JSON).
        number = type(value) is float or (type(value) is int and abs(value) < 2**63)
        return "json", {"value.json": text.encode()}, {"number": value} if number else {}
    table = _table_kind(value)
    if table is not None:
        return "parquet", {"value.parquet": _parquet_bytes(value, table)}, {"format": table}
    np = sys.modules.get("numpy")
    if np is not None and isinstance(value, np.ndarray) and not value.dtype.hasobject:
        buffer = io.BytesIO()
        np.save(buffer, value, allow_pickle=False)
        return "numpy", {"value.npy": buffer.getvalue()}, {}
    flavor = _safe_flavor(value)
    if flavor is not None:
        files, manifest = _save_model(value, flavor)
        return "model", files, {"flavor": flavor, "manifest": manifest}
    if trusted:
        try:
            import cloudpickle
        except ImportError as exc:
            raise MissingExtra("cloudpickle", "python-models", "trusted_outputs") from exc
        try:
            data = cloudpickle.dumps(value)
        except Exception as exc:
            raise UnstorableOutput(
                f"step {step!r}: output {output!r} ({_type_name(value)}) cannot be "
                f"pickled either: {exc}",
                field=step,
            ) from None
        return "cloudpickle", {"value.pkl": data}, {}
    raise UnstorableOutput(
        f"step {step!r}: output {output!r} is a {_type_name(value)}, which modelyard cannot "
        "store safely. Return a table (pandas, Arrow), a NumPy array, a scikit-learn / "
        "LightGBM / XGBoost / ONNX model or a JSON value, or mark the step "
        "@step(trusted_outputs=True) to store it with cloudpickle (loaded by the steps "
        "that read it: only for code and stores you trust)",
        field=step,
    )


def decode(kind: str, files: dict[str, bytes], meta: dict[str, Any]) -> Any:
    """The value ``encode`` stored. A cloudpickle value is loaded only because the step
    that produced it was marked ``trusted_outputs`` (recorded as its kind)."""
    if kind == "json":
        return json.loads(files["value.json"])
    if kind == "parquet":
        import pyarrow.parquet as pq

        table = pq.read_table(io.BytesIO(files["value.parquet"]))
        if meta.get("format") == "arrow":
            return table
        frame = table.to_pandas()
        if meta.get("format") == "pandas-series":
            return frame.iloc[:, 0]
        return frame
    if kind == "numpy":
        import numpy as np

        return np.load(io.BytesIO(files["value.npy"]), allow_pickle=False)
    if kind == "model":
        return _load_model(files, meta)
    if kind == "cloudpickle":
        import cloudpickle

        return cloudpickle.loads(files["value.pkl"])
    raise InvalidParameter(f"unknown stored value kind {kind!r}", field="kind")


def _is_json(value: Any, depth: int = 0) -> bool:
    if depth > 64:
        return False
    if value is None or type(value) in (bool, int, str):
        return True
    if type(value) is float:
        return True  # NaN and infinities are written as Python's json writes them
    if type(value) in (list, tuple):
        return all(_is_json(v, depth + 1) for v in value)
    if type(value) is dict:
        return all(type(k) is str and _is_json(v, depth + 1) for k, v in value.items())
    return False


def _table_kind(value: Any) -> str | None:
    pd = sys.modules.get("pandas")
    if pd is not None:
        if isinstance(value, pd.DataFrame):
            return "pandas"
        if isinstance(value, pd.Series):
            return "pandas-series"
    pa = sys.modules.get("pyarrow")
    if pa is not None and isinstance(value, pa.Table):
        return "arrow"
    return None


def _parquet_bytes(value: Any, table_kind: str) -> bytes:
    try:
        import pyarrow as pa
        import pyarrow.parquet as pq
    except ImportError as exc:
        raise MissingExtra("pyarrow", "data", "Storing tables as step outputs") from exc
    if table_kind == "pandas-series":
        value = value.to_frame(name=str(value.name) if value.name is not None else "value")
    table = value if table_kind == "arrow" else pa.Table.from_pandas(value)
    buffer = io.BytesIO()
    pq.write_table(table, buffer)
    return buffer.getvalue()


def _safe_flavor(value: Any) -> str | None:
    root = type(value).__module__.split(".", 1)[0]
    if root not in ("sklearn", "lightgbm", "xgboost", "onnx"):
        return None  # cheap refusal: no flavor module imported for plain values
    from modelyard.registry.formats.flavors import flavor_module

    for flavor in SAFE_MODEL_FLAVORS:
        if flavor_module(flavor).matches(value):
            return flavor
    return None


def _save_model(value: Any, flavor: str) -> tuple[dict[str, bytes], dict[str, Any]]:
    from modelyard.registry.formats.flavors import flavor_module

    with tempfile.TemporaryDirectory(prefix="modelyard-step-") as tmp:
        folder = Path(tmp)
        manifest = flavor_module(flavor).save(value, folder)
        files = {
            p.relative_to(folder).as_posix(): p.read_bytes()
            for p in sorted(folder.rglob("*"))
            if p.is_file()
        }
    return files, manifest


def _load_model(files: dict[str, bytes], meta: dict[str, Any]) -> Any:
    from modelyard.registry.formats.flavors import flavor_module

    flavor = str(meta.get("flavor"))
    if flavor not in SAFE_MODEL_FLAVORS:
        raise InvalidParameter(f"stored model flavor {flavor!r} is not a safe one", field="kind")
    with tempfile.TemporaryDirectory(prefix="modelyard-step-") as tmp:
        folder = Path(tmp).resolve()
        for name, data in files.items():
            path = folder / name
            if folder not in path.resolve().parents:
                raise InvalidParameter(f"stored model file {name!r} escapes its folder")
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(data)
        return flavor_module(flavor).load(folder, dict(meta.get("manifest") or {}))


def _type_name(value: Any) -> str:
    cls = type(value)
    return f"{cls.__module__}.{cls.__qualname__}"
