"""JSON of the HTTP APIs, both ends (server handlers, the remote client): orjson when it is
installed, else the standard library.

orjson parses and writes ~5-10x faster (a 250-run search answer, a 1,000-point batch), but
it is stricter than ``json`` on input (no ``NaN`` literals, UTF-8 only), reads integers
past 64 bits as floats, and is lenient on output (``NaN`` becomes ``null``). So a body
orjson refuses, or one with a very long integer, is parsed by ``json``, which decides (the
same bodies are accepted, refused and read as without orjson); and an answer orjson
cannot write (a non-string key, a huge integer) goes through ``json`` with the options of
Starlette's ``JSONResponse``. The answers we build hold no non-finite floats: metric
values travel as ``"NaN"``/``"Infinity"`` strings (``mlflow_wire``).

>>> loads(b'{"value": NaN}')  # not JSON proper, but json accepts it, so we do   # doctest: +SKIP
{'value': nan}
"""

from __future__ import annotations

import json
from typing import Any

try:  # an optional speed-up (the ``server`` extra)
    import orjson
except ImportError:  # pragma: no cover - exercised where orjson is absent
    orjson = None  # type: ignore[assignment]

#: What a decoding failure raises, from either parser.
DecodeError: tuple[type[Exception], ...] = (
    UnicodeDecodeError,
    json.JSONDecodeError,
    RecursionError,
)


def loads(raw: bytes) -> Any:
    """The JSON value in ``raw``; raises one of ``DecodeError`` when it is not JSON."""
    # orjson reads an integer past 64 bits as a float; json keeps it exact (and a field
    # reader then names it out of range). Such an integer has 19 digits or more, so any
    # 19-digit run (rare: timestamps have 13) goes to json. ~70 us for a 75 kB batch.
    if orjson is not None and _LONG_DIGITS not in raw.translate(_DIGITS_AS_ZERO):
        try:
            return orjson.loads(raw)
        except orjson.JSONDecodeError:
            pass  # json decides: it accepts a few things orjson refuses, with its own message
    return json.loads(raw)


def loads_int64(raw: bytes | str) -> Any:
    """``loads`` for a document whose integers all fit 64 bits — one our own database
    wrote — so orjson reads it as is (``loads`` would send any 19-digit run, such as a
    float rendered with 20 significant digits, the slow way)."""
    if orjson is not None:
        return orjson.loads(raw)
    return json.loads(raw)


_DIGITS_AS_ZERO = bytes.maketrans(b"123456789", b"000000000")
_LONG_DIGITS = b"0" * 19


class Encoded(bytes):
    """An answer that is already JSON (a search answer assembled from rendered runs): the
    endpoint sends it as it is."""

    __slots__ = ()


def dumps(value: Any) -> bytes:
    """Compact UTF-8 JSON, as ``JSONResponse`` renders it."""
    if orjson is not None:
        try:
            return orjson.dumps(value)
        except (TypeError, orjson.JSONEncodeError):
            pass
    return json.dumps(
        value, ensure_ascii=False, allow_nan=False, indent=None, separators=(",", ":")
    ).encode("utf-8")
