"""JSON, read and written in one place for both servers and the remote client: orjson when
it is installed (the ``server`` and ``serving`` extras), else the standard library, with
the same answers either way (but for one case, said below).

Two rules for reading, named for what they accept:

* ``loads_lenient`` reads what Python's ``json`` reads, ``NaN``, ``Infinity`` and
  ``-Infinity`` literals included. MLflow's server reads request bodies that way and its
  clients (and users' scripts) send metric values so, so the control plane's request
  bodies and the remote client, reading a server's answers, use it.
* ``loads_strict`` reads RFC 8259 JSON only: the ``NaN``/``Infinity`` literals are
  refused, and so is a number past a double's range (``1e400``), naming the field. The data
  plane (inference, scoring, feedback) uses it: a model's inputs are numbers, and a
  non-finite one is the client's mistake, refused at the door rather than predicted on.

Both raise ``UnusableValue`` (a ``ValueError`` naming the field) for a value nothing can
take, an integer past Python's digit limit or a lone surrogate, so every endpoint answers
it as a client mistake (400), never as a failure deep in a handler or the database (500);
and one of ``DecodeError`` for anything that is not JSON. ``loads_int64`` reads documents
our own database wrote.

orjson parses and writes ~5-10x faster (a 250-run search answer, a 1,000-row inference
request), but it refuses ``NaN`` literals and UTF-16, reads integers past 64 bits as
floats, and writes ``NaN`` as ``null``. So where orjson refuses a body, the standard
library decides, by the same rule; ``loads_lenient`` sends a body with a 19-digit run to
``json`` too, keeping long integers exact (``loads_strict`` does not: on the hot path,
the tensor and column readers check integer ranges). ``dumps`` writes what Starlette's
``JSONResponse`` wrote, plus NumPy arrays and scalars as numbers and non-finite floats as
``null`` (our answers hold none: metric values travel as ``"NaN"``/``"Infinity"`` strings,
``mlflow_wire``).

>>> loads_lenient(b'{"value": NaN}')
{'value': nan}
>>> loads_strict(b'{"value": NaN}')  # doctest: +ELLIPSIS
Traceback (most recent call last):
...
modelyard.json_codec.NotStrictJson: NaN is not a JSON number (RFC 8259): send null, ...
"""

from __future__ import annotations

import json
import math
import re
import sys
from collections.abc import Iterator
from typing import Any

try:  # an optional speed-up (the ``server`` and ``serving`` extras)
    import orjson
except ImportError:  # pragma: no cover - exercised where orjson is absent
    orjson = None  # type: ignore[assignment]


class NotStrictJson(ValueError):
    """A ``NaN``, ``Infinity`` or ``-Infinity`` literal, which ``loads_strict`` refuses."""


#: What a decoding failure raises, from either parser and either rule.
DecodeError: tuple[type[Exception], ...] = (
    UnicodeDecodeError,
    json.JSONDecodeError,  # orjson.JSONDecodeError is one
    RecursionError,
    NotStrictJson,
)


def loads_lenient(raw: bytes | str) -> Any:
    """The JSON value in ``raw``, read as Python's ``json`` (and MLflow's server) reads it:
    ``NaN`` and ``Infinity`` literals are floats, long integers stay exact. Raises one of
    ``DecodeError`` when it is not JSON, and ``UnusableValue`` (naming the field) when it
    holds a value nothing can take. For the control plane's request bodies and a server's
    answers.

    >>> loads_lenient(b'{"metrics": [{"key": "loss", "value": -Infinity}]}')
    {'metrics': [{'key': 'loss', 'value': -inf}]}
    """
    if isinstance(raw, str):
        raw = raw.encode("utf-8", "surrogatepass")
    # orjson reads an integer past 64 bits as a float; json keeps it exact (and a field
    # reader then names it out of range). Such an integer has 19 digits or more, so any
    # 19-digit run (rare: timestamps have 13) goes to json. ~70 us for a 75 kB batch.
    if orjson is not None and _LONG_DIGITS not in raw.translate(_DIGITS_AS_ZERO):
        try:
            return orjson.loads(raw)  # it refuses lone surrogates itself
        except orjson.JSONDecodeError:
            pass  # json decides: it accepts a few things orjson refuses, with its own message
    return _json_loads(raw, strict=False)


def loads_strict(raw: bytes | str) -> Any:
    """The JSON value in ``raw`` under RFC 8259: ``NaN``/``Infinity`` literals raise
    ``NotStrictJson``, and a number past a double's range (``1e400``, a 400-digit
    integer) raises ``UnusableValue`` naming the field, as do the values ``loads_lenient``
    refuses; anything else that is not JSON raises one of ``DecodeError``. With orjson, an
    integer past 64 bits is read as a float (check ranges where they matter). For
    inference requests.

    >>> loads_strict(b'{"inputs": [{"data": [1, 2.5]}]}')
    {'inputs': [{'data': [1, 2.5]}]}
    """
    if orjson is not None:
        try:
            return orjson.loads(raw)
        except orjson.JSONDecodeError:
            pass  # json decides, by the same rule, and names the field where one is at fault
    return _json_loads(
        raw if isinstance(raw, bytes) else raw.encode("utf-8", "surrogatepass"), strict=True
    )


def _json_loads(raw: bytes, *, strict: bool) -> Any:
    """``raw`` read by the standard library; ``strict``: as ``loads_strict`` reads it."""
    try:
        value = json.loads(raw, parse_constant=_refuse_constant if strict else None)
    except (json.JSONDecodeError, UnicodeDecodeError, RecursionError, NotStrictJson):
        raise
    except ValueError:  # an integer past the digit limit; json says neither where nor why
        found = find_unusable(raw)
        if found is None:
            raise
        raise found from None
    if strict and _may_overflow(raw):
        found = find_unusable(raw, floats=True)
        if found is not None:
            raise found
    if _may_hold_surrogates(raw):
        found = _unusable_in(value)
        if found is not None:
            raise found
    return value


def _refuse_constant(name: str) -> Any:
    raise NotStrictJson(
        f"{name} is not a JSON number (RFC 8259): send null, or leave the value out"
    )


def _may_overflow(raw: bytes) -> bool:
    """Whether ``raw`` may hold a number past a double's range: a 309-digit run, or a
    three-digit exponent (``1e400``). Digits are read as ``0`` first, so the searches are
    for literal text (~10 % of ``json.loads``'s time on a 1,000-row request)."""
    shape = raw.translate(_NUMBER_SHAPE)
    return _LONG_NUMBER in shape or _BIG_EXPONENT.search(shape) is not None


_NUMBER_SHAPE = bytes.maketrans(b"123456789E", b"000000000e")
_LONG_NUMBER = b"0" * 309
_BIG_EXPONENT = re.compile(rb"e[+-]?000")


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
    """Compact UTF-8 JSON, as Starlette's ``JSONResponse`` renders it, with NumPy arrays
    and scalars written as numbers, non-finite floats as ``null``, and any other object
    as its ``str``.

    >>> dumps({"x": [1.5, float("nan")], "ok": True})
    b'{"x":[1.5,null],"ok":true}'
    """
    if orjson is not None:
        try:
            return orjson.dumps(value, default=_plain, option=orjson.OPT_SERIALIZE_NUMPY)
        except TypeError:  # orjson.JSONEncodeError: a non-string key, a huge integer, ...
            pass
        try:  # not in the first try: OPT_NON_STR_KEYS makes every dump ~2x slower
            return orjson.dumps(value, default=_plain, option=_NON_STR_KEYS)
        except TypeError:
            pass
    try:
        text = json.dumps(value, **_JSON_OPTIONS)
    except ValueError:  # a non-finite float: written as null
        text = json.dumps(_finite(json.loads(json.dumps(value, default=_plain))), **_JSON_OPTIONS)
    return text.encode("utf-8")


_NON_STR_KEYS = 0 if orjson is None else orjson.OPT_SERIALIZE_NUMPY | orjson.OPT_NON_STR_KEYS


def _plain(value: Any) -> Any:
    """What a value JSON has no type for is written as: a NumPy array's list, a NumPy
    scalar's number, else its text."""
    if hasattr(value, "tolist"):
        return value.tolist()
    if hasattr(value, "item"):
        return value.item()
    return str(value)


_JSON_OPTIONS: dict[str, Any] = {
    "default": _plain,
    "ensure_ascii": False,
    "allow_nan": False,
    "separators": (",", ":"),
}


def _finite(value: Any) -> Any:
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, list):
        return [_finite(v) for v in value]
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    return value
