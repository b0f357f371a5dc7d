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

A document that parses but holds an integer past Python's digit limit or a lone surrogate
raises ``UnusableValue`` naming the field, so every endpoint answers it as a client
mistake (400), never as a failure deep in a handler or the database (500).

>>> loads(b'{"value": NaN}')  # not JSON proper, but json accepts it, so we do   # doctest: +SKIP
{'value': nan}
"""

from __future__ import annotations

import json
import math
import re
import sys
from collections.abc import Iterator
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
    """The JSON value in ``raw``; raises one of ``DecodeError`` when it is not JSON, and
    ``UnusableValue`` (naming the field) when it holds a value nothing can take."""
    # orjson reads an integer past 64 bits as a float; json keeps it exact (and a field
    # reader then names it out of range). Such an integer has 19 digits or more, so any
    # 19-digit run (rare: timestamps have 13) goes to json. ~70 us for a 75 kB batch.
    if orjson is not None and _LONG_DIGITS not in raw.translate(_DIGITS_AS_ZERO):
        try:
            return orjson.loads(raw)  # it refuses lone surrogates itself
        except orjson.JSONDecodeError:
            pass  # json decides: it accepts a few things orjson refuses, with its own message
    try:
        value = json.loads(raw)
    except (json.JSONDecodeError, UnicodeDecodeError, RecursionError):
        raise
    except ValueError:  # an integer past the digit limit; json says neither where nor why
        found = find_unusable(raw)
        if found is None:
            raise
        raise found from None
    if _may_hold_surrogates(raw):
        found = _unusable_in(value)
        if found is not None:
            raise found
    return value


class UnusableValue(ValueError):
    """JSON that parses but holds a value nothing downstream can take; ``field`` names
    where (``metrics[0].value``; ``body`` for the whole document).

    * an integer longer than Python's int-string limit (``sys.get_int_max_str_digits()``,
      4,300 digits by default), which ``int()`` itself refuses;
    * a string with a lone surrogate (``"\\ud800"``): not Unicode text, so it can be
      neither encoded as UTF-8 nor stored (PostgreSQL and SQLite keep UTF-8);
    * with ``find_unusable(..., floats=True)``, a number too large for a double (``1e400``).
    """

    def __init__(self, message: str, field: str) -> None:
        super().__init__(message)
        self.field = field


def find_unusable(raw: bytes | str, *, floats: bool = False) -> UnusableValue | None:
    """The first unusable value in ``raw`` (see ``UnusableValue``), or None: also None when
    ``raw`` is not JSON at all. ``floats``: a number past a double's range (``1e400``, or
    an integer of 309 digits) is unusable too. Parses ``raw`` again: for error paths."""
    try:
        value = json.loads(
            raw,
            parse_int=_int_or_double_marker if floats else _int_or_marker,
            parse_float=_float_or_marker if floats else None,
        )
    except (ValueError, RecursionError):
        return None
    return _unusable_in(value)


class _TooLong:
    """Stands in for an integer past the digit limit while ``find_unusable`` looks."""

    __slots__ = ("digits",)

    def __init__(self, digits: int) -> None:
        self.digits = digits


class _Overflow:
    """Stands in for a number too large for a double (``1e400``)."""

    __slots__ = ("text",)

    def __init__(self, text: str) -> None:
        self.text = text


def _int_or_marker(text: str) -> Any:
    digits = len(text) - text.startswith("-")
    limit = sys.get_int_max_str_digits()
    return _TooLong(digits) if limit and digits > limit else int(text)


def _int_or_double_marker(text: str) -> Any:
    number = _int_or_marker(text)
    if isinstance(number, int) and abs(number) > _MAX_DOUBLE:
        return _Overflow(text)
    return number


_MAX_DOUBLE = int(sys.float_info.max)


def _float_or_marker(text: str) -> Any:
    number = float(text)
    return _Overflow(text) if math.isinf(number) else number


def _may_hold_surrogates(raw: bytes | str) -> bool:
    """Whether ``raw`` may decode to a lone surrogate: it has a surrogate escape, or the
    UTF-8 bytes of a surrogate (json reads bytes with ``surrogatepass``), or it is not
    UTF-8 at all (UTF-16 and -32, which json also reads). Pairs match too: the walk that
    follows decides."""
    if isinstance(raw, str):
        return not raw.isascii() or _SURROGATE_ESCAPE.search(raw) is not None
    if json.detect_encoding(raw) not in ("utf-8", "utf-8-sig"):
        return True
    return _SURROGATE_BYTES.search(raw) is not None


_SURROGATE_ESCAPE = re.compile(r"\\u[dD][89a-fA-F]")
_SURROGATE_BYTES = re.compile(rb"\\u[dD][89a-fA-F]|\xed[\xa0-\xbf]")


def _is_lone_surrogate_text(value: Any) -> bool:
    if not isinstance(value, str) or value.isascii():
        return False
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return True
    return False


def _unusable(value: Any) -> bool:
    return isinstance(value, (_TooLong, _Overflow)) or _is_lone_surrogate_text(value)


def _unusable_in(document: Any) -> UnusableValue | None:
    """The first unusable value in ``document``, in document order, as an error."""
    if _unusable(document):
        return _error("body", document)
    path: list[str | int] = []
    stack: list[Iterator[tuple[Any, Any]]] = [_children(document)]
    while stack:
        for key, child in stack[-1]:
            if _unusable(key) or _unusable(child):
                return _error(_field_name([*path, key]), key if _unusable(key) else child)
            if isinstance(child, (dict, list)):
                path.append(key)
                stack.append(_children(child))
                break
        else:
            stack.pop()
            if path:
                path.pop()
    return None


def _children(value: Any) -> Iterator[tuple[Any, Any]]:
    if isinstance(value, dict):
        return iter(value.items())
    if isinstance(value, list):
        return enumerate(value)
    return iter(())


def _field_name(path: list[str | int]) -> str:
    name = ""
    for key in path:
        if isinstance(key, int):
            name += f"[{key}]"
        else:  # a key that is itself a lone surrogate is shown escaped: errors are UTF-8
            text = key.encode("utf-8", "backslashreplace").decode("utf-8")
            name += f".{text}" if name else text
    return name or "body"


def _error(field: str, value: Any) -> UnusableValue:
    if isinstance(value, _TooLong):
        limit = sys.get_int_max_str_digits()
        message = (
            f"field {field!r} holds an integer of {value.digits} digits; integers may have "
            f"at most {limit} digits"
        )
    elif isinstance(value, _Overflow):
        message = (
            f"field {field!r} holds the number {value.text[:40]}, too large for a 64-bit "
            "float (at most ~1.8e308)"
        )
    else:
        message = (
            f"field {field!r} holds a lone UTF-16 surrogate ({value[:80]!r}), which is not "
            "Unicode text; send valid UTF-8 (a character outside the BMP is escaped as a "
            "surrogate pair)"
        )
    return UnusableValue(message, field)


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
