"""ONNX models, run with onnxruntime: a portable graph, no Python code in the file.

Prediction feeds a DataFrame or array to the graph's inputs, converted to the element type
each input declares: a single input takes the whole table; several inputs take one column
each, by name. The first output is returned (for skl2onnx classifiers, the labels).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from modelyard.errors import InvalidParameter, MissingExtra
from modelyard.registry.formats.paths import inside

FLAVOR = "onnx"
MODEL_FILE = "model.onnx"
PACKAGES = ("onnx", "onnxruntime", "numpy")
_ELEMENT_TYPES = {
    "tensor(float)": "float32",
    "tensor(double)": "float64",
    "tensor(int64)": "int64",
    "tensor(int32)": "int32",
    "tensor(bool)": "bool",
    "tensor(string)": "object",
}


def matches(model: object) -> bool:
    return type(model).__module__.split(".", 1)[0] == "onnx" and hasattr(model, "SerializeToString")


def save(model: Any, folder: Path, trusted: bool = False) -> dict[str, Any]:
    (folder / MODEL_FILE).write_bytes(model.SerializeToString())
    return {"model_file": MODEL_FILE, "onnx_inputs": [i.name for i in model.graph.input]}


def load(folder: Path, manifest: dict[str, Any], trusted: bool = False, **_: Any) -> Any:
    try:
        import onnxruntime
    except ImportError as exc:
        raise MissingExtra("onnxruntime", "onnx", "Running ONNX models") from exc
    path = inside(folder, manifest.get("model_file", MODEL_FILE), "model_file")
    return onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])


def predict(native: Any, data: Any, manifest: dict[str, Any]) -> Any:
    import numpy as np
    import pandas as pd

    inputs = native.get_inputs()
    feed: dict[str, Any] = {}
    if len(inputs) == 1:
        array = data.to_numpy() if isinstance(data, pd.DataFrame) else np.asarray(data)
        feed[inputs[0].name] = array.astype(_ELEMENT_TYPES.get(inputs[0].type, "float32"))
    else:
        if not isinstance(data, pd.DataFrame):
            raise InvalidParameter(
                f"this ONNX model has {len(inputs)} inputs; pass a DataFrame with columns "
                f"{[i.name for i in inputs]}",
                field="model_input",
            )
        for spec in inputs:
            column = data[spec.name].to_numpy().reshape(-1, 1)
            feed[spec.name] = column.astype(_ELEMENT_TYPES.get(spec.type, "float32"))
    return native.run(None, feed)[0]
