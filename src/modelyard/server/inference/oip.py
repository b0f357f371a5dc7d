"""The Open Inference Protocol (KServe V2) wire format, including binary tensor data.

JSON tensors carry ``data`` (flat or nested, row-major). With the binary tensor data
extension — what ``tritonclient[http]`` sends by default — the body is the JSON header
followed by raw tensor bytes; the ``Inference-Header-Content-Length`` header says where
the JSON ends, and each binary input says its byte size in
``parameters.binary_data_size``, in input order. ``BYTES`` elements are each a 4-byte
little-endian length followed by the bytes. Outputs come back binary when the request
asks (``parameters.binary_data_output``, or ``binary_data`` on a requested output).

Every malformed request is an ``InvalidParameter`` naming the input, the field
(``inputs[0].shape``) and the problem. A shape is checked before anything is built from
it: its sizes are integers >= 0 and no more elements than the request has bytes (no
element takes less than one byte, in JSON or binary), so a shape like ``[2**32, 2**32]``
is refused, never multiplied in 64 bits or reshaped into. Numbers must fit the datatype:
``300`` is not silently wrapped into an INT8, nor ``1e39`` rounded to infinity in FP32.

The body arrives decompressed (``request_body.read_body(..., decode=True)`` inflates gzip
and deflate within the body limit).
"""

from __future__ import annotations

import struct
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from modelyard import json_codec
from modelyard.errors import InvalidParameter
from modelyard.serving.inputs import OIP_TO_NUMPY, Batch, InputSpec, numpy_to_oip

HEADER_LENGTH = "inference-header-content-length"
#: Most dimensions a tensor may have (NumPy's own limit is 32 or 64, by version).
MAX_DIMS = 32
DATATYPES = frozenset({*OIP_TO_NUMPY, "BYTES", "BF16"})
#: Which OIP datatypes may feed a column of each signature type (numeric widening only).
ACCEPTED: dict[str, frozenset[str]] = {
    "double": frozenset({"FP16", "FP32", "FP64", "INT8", "INT16", "INT32", "INT64",
                         "UINT8", "UINT16", "UINT32", "UINT64"}),
    "float": frozenset({"FP16", "FP32", "FP64", "INT8", "INT16", "INT32", "UINT8", "UINT16"}),
    "long": frozenset({"INT8", "INT16", "INT32", "INT64", "UINT8", "UINT16", "UINT32"}),
    "integer": frozenset({"INT8", "INT16", "INT32", "UINT8", "UINT16"}),
    "boolean": frozenset({"BOOL"}),
    "string": frozenset({"BYTES"}),
    "binary": frozenset({"BYTES"}),
    "datetime": frozenset({"BYTES"}),
}  # fmt: skip


def bad(message: str, name: str | None = None) -> InvalidParameter:
    return InvalidParameter(message, field=name or "inputs")


@dataclass
class OipRequest:
    body: dict[str, Any]
    arrays: dict[str, np.ndarray] = field(default_factory=dict)
    datatypes: dict[str, str] = field(default_factory=dict)

    @property
    def id(self) -> str | None:
        value = self.body.get("id")
        return str(value) if value is not None else None

    @property
    def parameters(self) -> Mapping[str, Any]:
        params = self.body.get("parameters")
        return params if isinstance(params, dict) else {}

    def key_of(self, name: str) -> str | None:
        """A sticky key: a request parameter, else the first element of an input so named."""
        if name in self.parameters:
            return str(self.parameters[name])
        array = self.arrays.get(name)
        if array is not None and array.size:
            first = array.reshape(-1)[0]
            return first.decode() if isinstance(first, bytes) else str(first)
        return None

    def to_batch(self, spec: InputSpec) -> Batch:
        """The inputs as a checked batch for ``spec``: one tensor, or named columns."""
        arrays = self.arrays
        if len(arrays) == 1 and (spec.tensor_shape is not None or spec.names is None or
                                 next(iter(arrays)) not in spec.names):  # fmt: skip
            name, array = next(iter(arrays.items()))
            if spec.names is not None and array.ndim == 1 and len(spec.names) > 1:
                raise bad(
                    f"input {name!r} is one column; the model takes columns {spec.names} "
                    f"(send one input per column, or one [-1, {len(spec.names)}] tensor)",
                    name,
                )
            return spec.from_tensor(array, name)
        if spec.columns is not None:
            for column in spec.columns:
                datatype = self.datatypes.get(column.name)
                allowed = ACCEPTED.get(column.type)
                if datatype is not None and allowed is not None and datatype not in allowed:
                    raise bad(
                        f"input {column.name!r} has datatype {datatype}; the model takes "
                        f"{column.type} ({', '.join(sorted(allowed))})",
                        column.name,
                    )
        return spec.from_columns(arrays)


def parse_request(body: bytes, headers: Mapping[str, str]) -> OipRequest:
    """Split and decode an inference request (JSON, or JSON + binary tensors)."""
    max_elements = len(body)
    header_length = headers.get(HEADER_LENGTH)
    binary = b""
    if header_length is not None:
        try:
            n = int(header_length)
        except ValueError:
            raise bad(
                f"{HEADER_LENGTH} must be an integer, got {header_length!r}", "body"
            ) from None
        if not 0 <= n <= len(body):
            raise bad(f"{HEADER_LENGTH} {n} exceeds the body's {len(body)} bytes", "body")
        body, binary = body[:n], body[n:]
    try:
        parsed = json_codec.loads_strict(body)
    except json_codec.UnusableValue as exc:
        raise bad(str(exc), exc.field) from None
    except (ValueError, UnicodeDecodeError) as exc:
        raise bad(f"the request is not valid JSON: {exc}", "body") from None
    if not isinstance(parsed, dict):
        raise bad("the request must be a JSON object with 'inputs'", "body")
    inputs = parsed.get("inputs")
    if not isinstance(inputs, list) or not inputs:
        raise bad("'inputs' must be a non-empty list of tensors", "inputs")
    request = OipRequest(parsed)
    offset = 0
    for i, tensor in enumerate(inputs):
        name, array, datatype, offset = _tensor(tensor, i, binary, offset, max_elements)
        if name in request.arrays:
            raise bad(f"input {name!r} appears twice", name)
        request.arrays[name] = array
        request.datatypes[name] = datatype
    if offset != len(binary):
        raise bad(
            f"the binary section has {len(binary)} bytes but the inputs declare {offset}", "body"
        )
    return request


def _tensor(
    tensor: Any, index: int, binary: bytes, offset: int, max_elements: int
) -> tuple[str, np.ndarray, str, int]:
    where = f"inputs[{index}]"
    if not isinstance(tensor, dict):
        raise bad(f"{where} must be a JSON object", where)
    name = tensor.get("name")
    if not isinstance(name, str) or not name:
        raise bad(f"{where} needs a 'name'", f"{where}.name")
    datatype = tensor.get("datatype")
    if datatype not in DATATYPES:
        raise bad(
            f"input {name!r} ({where}.datatype) has datatype {datatype!r}; use one of "
            f"{', '.join(sorted(DATATYPES))}",
            f"{where}.datatype",
        )
    shape = tensor.get("shape")
    count = _element_count(shape, name, f"{where}.shape", max_elements)
    params = tensor.get("parameters") or {}
    size = params.get("binary_data_size") if isinstance(params, dict) else None
    if size is not None:
        if (
            not isinstance(size, int)
            or isinstance(size, bool)
            or size < 0
            or offset + size > len(binary)
        ):
            raise bad(
                f"input {name!r} ({where}.parameters.binary_data_size) declares {size!r} "
                "binary bytes that are not there",
                f"{where}.parameters.binary_data_size",
            )
        raw = binary[offset : offset + size]
        offset += size
        array = _from_binary(raw, datatype, count, name)
    else:
        if "data" not in tensor:
            raise bad(f"input {name!r} ({where}) has neither 'data' nor binary data", where)
        array = _from_json(tensor["data"], datatype, name, f"{where}.data")
    if array.size != count:
        raise bad(
            f"input {name!r} has {array.size} elements but {where}.shape {shape} needs {count}",
            f"{where}.shape",
        )
    return name, array.reshape(shape), datatype, offset


def _element_count(shape: Any, name: str, field: str, max_elements: int) -> int:
    """How many elements ``shape`` holds, checked before anything is allocated or
    reshaped: a list of at most ``MAX_DIMS`` integers >= 0, each size and their product
    at most ``max_elements``. The product is taken in Python integers (``[2**32, 2**32]``
    cannot wrap to 0) and stops as soon as it passes the cap."""
    if (
        not isinstance(shape, list)
        or not 0 < len(shape) <= MAX_DIMS
        or not all(isinstance(d, int) and not isinstance(d, bool) and d >= 0 for d in shape)
    ):
        raise bad(
            f"input {name!r} ({field}) needs a 'shape': a list of 1 to {MAX_DIMS} sizes >= 0, "
            f"got {shape!r:.80}",
            field,
        )
    count = 0 if 0 in shape else 1
    for size in shape:
        count *= size
        if count > max_elements or size > max_elements:
            raise bad(
                f"input {name!r} ({field}) has shape {shape!r:.80}, more elements than the "
                f"request's {max_elements} bytes can hold",
                field,
            )
    return count


def _from_binary(raw: bytes, datatype: str, count: int, name: str) -> np.ndarray:
    if datatype == "BYTES":
        return deserialize_bytes(raw, name)
    if datatype == "BF16":
        raise bad(f"input {name!r}: BF16 is not supported; send FP32", name)
    dtype = np.dtype(OIP_TO_NUMPY[datatype]).newbyteorder("<")
    if len(raw) != count * dtype.itemsize:
        raise bad(
            f"input {name!r} has {len(raw)} binary bytes but {count} {datatype} elements need "
            f"{count * dtype.itemsize}",
            name,
        )
    return np.frombuffer(raw, dtype=dtype)


def _from_json(data: Any, datatype: str, name: str, field: str) -> np.ndarray:
    if datatype == "BYTES":
        flat = np.asarray(data, dtype=object).reshape(-1)
        return flat
    try:
        array = np.asarray(data)
    except ValueError:
        raise bad(f"input {name!r} ({field}) is ragged", field) from None
    kind = array.dtype.kind
    if datatype == "BOOL":
        if kind != "b":
            raise bad(f"input {name!r} ({field}) is BOOL but holds {_what(array)}", field)
        return array.reshape(-1)
    if kind not in "iuf" or (kind == "f" and datatype[0] in "IU"):
        raise bad(f"input {name!r} ({field}) is {datatype} but holds {_what(array)}", field)
    flat = array.reshape(-1)
    target = np.dtype(OIP_TO_NUMPY[datatype])
    if target.kind in "iu" and flat.size and flat.dtype != target:
        info = np.iinfo(target)
        low, high = int(flat.min()), int(flat.max())
        if low < info.min or high > info.max:
            value = low if low < info.min else high
            raise bad(
                f"input {name!r} ({field}) holds {value}, out of range for {datatype} "
                f"({info.min} to {info.max})",
                field,
            )
    with np.errstate(over="ignore"):
        out = flat.astype(target)
    if target.kind == "f" and flat.dtype != target:
        overflowed = np.flatnonzero(np.isinf(out) & np.isfinite(flat))
        if len(overflowed):
            i = int(overflowed[0])
            value = flat[i].item()
            raise bad(
                f"input {name!r} ({field}[{i}]) holds {value!r}, too large for {datatype}", field
            )
    return out


def _what(array: np.ndarray) -> str:
    first = array.reshape(-1)[:1].tolist()
    return f"{array.dtype.name} values (e.g. {first[0]!r})" if first else "nothing"


def deserialize_bytes(raw: bytes, name: str = "input") -> np.ndarray:
    """BYTES elements: each a uint32 little-endian length, then that many bytes."""
    items: list[bytes] = []
    offset = 0
    while offset < len(raw):
        if offset + 4 > len(raw):
            raise bad(f"input {name!r}: truncated BYTES element length", name)
        (length,) = struct.unpack_from("<I", raw, offset)
        offset += 4
        if offset + length > len(raw):
            raise bad(f"input {name!r}: a BYTES element runs past the data", name)
        items.append(raw[offset : offset + length])
        offset += length
    out = np.empty(len(items), dtype=object)
    out[:] = [item.decode("utf-8", "replace") for item in items]
    return out


def serialize_bytes(values: np.ndarray) -> bytes:
    parts = []
    for value in values.reshape(-1):
        data = value if isinstance(value, bytes) else str(value).encode("utf-8")
        parts.append(struct.pack("<I", len(data)))
        parts.append(data)
    return b"".join(parts)


def wants_binary(request: OipRequest) -> dict[str, bool] | bool:
    """Per requested output, or overall, whether outputs go back as binary data."""
    overall = bool(request.parameters.get("binary_data_output", False))
    requested = request.body.get("outputs")
    if not isinstance(requested, list):
        return overall
    out: dict[str, bool] = {}
    for item in requested:
        if not isinstance(item, dict) or not isinstance(item.get("name"), str):
            raise bad("each requested output needs a 'name'", "outputs")
        params = item.get("parameters") or {}
        out[item["name"]] = bool(params.get("binary_data", overall))
    return out


def encode_response(
    outputs: dict[str, np.ndarray],
    header: dict[str, Any],
    binary: dict[str, bool] | bool,
) -> tuple[bytes, dict[str, str]]:
    """The response body and headers; binary outputs follow the JSON header."""
    if isinstance(binary, dict):
        unknown = [name for name in binary if name not in outputs]
        if unknown:
            raise bad(
                f"unknown output {unknown[0]!r}; this model outputs {sorted(outputs)}", "outputs"
            )
        selected = {name: outputs[name] for name in binary}
    else:
        selected = outputs
    tensors: list[dict[str, Any]] = []
    raws: list[bytes] = []
    for name, array in selected.items():
        as_binary = binary.get(name, False) if isinstance(binary, dict) else binary
        datatype = "BYTES" if array.dtype.kind in "OUS" else numpy_to_oip(array.dtype)
        tensor: dict[str, Any] = {"name": name, "datatype": datatype, "shape": list(array.shape)}
        if as_binary:
            raw = (
                serialize_bytes(array)
                if datatype == "BYTES"
                else np.ascontiguousarray(array, dtype=array.dtype.newbyteorder("<")).tobytes()
            )
            tensor["parameters"] = {"binary_data_size": len(raw)}
            raws.append(raw)
        else:
            flat = array.reshape(-1)
            tensor["data"] = [str(v) for v in flat] if datatype == "BYTES" else flat
        tensors.append(tensor)
    text = json_codec.dumps({**header, "outputs": tensors})
    if not raws:
        return text, {"content-type": "application/json"}
    return text + b"".join(raws), {
        "content-type": "application/octet-stream",
        HEADER_LENGTH: str(len(text)),
    }
