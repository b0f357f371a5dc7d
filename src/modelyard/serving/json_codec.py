"""JSON on the hot path: orjson when installed (the ``serving`` extra), else the standard
library, with the same behaviour either way.

orjson parses and writes several times faster than ``json`` and encodes NumPy arrays
without ``tolist()``; on a one-row request JSON is a large share of the time, on a
100-row request most of it, and the prediction log encodes every request's rows again.
Non-finite floats become ``null`` in both (strict JSON has no NaN).

A body holding a value nothing can take (a lone surrogate, an integer past Python's digit
limit, a number past a double's range such as ``1e400``) raises ``UnusableValue`` naming
the field (``inputs[0].data[3]``), from either parser.
"""

from __future__ import annotations

import json
import math
from typing import Any

from modelyard import json_codec as _base
from modelyard.json_codec import UnusableValue

__all__ = ["UnusableValue", "dumps", "loads"]

try:
    import orjson
except ImportError:  # pragma: no cover - exercised where orjson is absent
    orjson = None

_OPTIONS = 0 if orjson is None else orjson.OPT_SERIALIZE_NUMPY | orjson.OPT_NON_STR_KEYS


def loads(data: bytes | str) -> Any:
    """Parse JSON; ``ValueError`` (with the position) for anything that is not JSON, and
    its subclass ``UnusableValue`` (with the field) for a value nothing can take."""
    if orjson is not None:
        try:
            return orjson.loads(data)
        except orjson.JSONDecodeError:  # orjson refuses those values too: find which field
            found = _base.find_unusable(data, floats=True)
            if found is not None:
                raise found from None
            raise
    return _base.loads(data if isinstance(data, bytes) else data.encode("utf-8", "surrogatepass"))


def _default(value: Any) -> Any:
    if hasattr(value, "tolist"):
        return value.tolist()
    if hasattr(value, "item"):
        return value.item()
    return str(value)


def _finite(value: Any) -> Any:
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, list):
        return [_finite(v) for v in value]
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    return value


def dumps(value: Any) -> bytes:
    """Compact JSON bytes; NumPy arrays and scalars are written as numbers."""
    if orjson is not None:
        try:
            return orjson.dumps(value, default=_default, option=_OPTIONS)
        except TypeError:  # e.g. a NumPy array of objects: convert, then write
            return orjson.dumps(_finite(json.loads(json.dumps(value, default=_default))))
    text = json.dumps(value, default=_default, separators=(",", ":"), allow_nan=True)
    if "NaN" in text or "Infinity" in text:
        text = json.dumps(_finite(json.loads(text)), separators=(",", ":"))
    return text.encode()
