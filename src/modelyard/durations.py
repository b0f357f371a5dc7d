"""Durations, the one grammar every room and the CLI read them in.

A duration is a number with a unit (``30s``, ``15m``, ``2h``, ``7d``, ``1w``; also
``500ms``, ``90min`` and sums such as ``1d12h``), an ISO 8601 duration (``PT15M``,
``P7D``, ``P1DT2H``), a bare number of seconds, or a ``datetime.timedelta``
(``pandas.Timedelta`` is one). ``m`` is minutes, always. Months and years are refused:
their length varies, so ``1M`` would mean a different span each month (and ``M`` means
months to pandas and ISO 8601 but minutes to a shell user). Negative durations are
refused; zero is allowed, and each caller says what it means (no expiry, no gap) or
refuses it.

>>> parse_duration("1d12h", "ttl")
datetime.timedelta(days=1, seconds=43200)
>>> parse_duration("PT15M", "every").total_seconds()
900.0
>>> format_duration(parse_duration("P1DT2H", "ttl"))
'1d2h'
"""

from __future__ import annotations

import math
import numbers
import re
from datetime import timedelta

from modelyard.errors import InvalidParameter

__all__ = ["ACCEPTED", "format_duration", "parse_duration"]

#: What the error messages list as the accepted forms.
ACCEPTED = (
    "30s, 15m (minutes), 2h, 7d, 1w, 1d12h, or ISO 8601 such as PT15M, P7D, P1DT2H "
    "(a bare number is seconds)"
)

_UNITS = {
    "us": timedelta(microseconds=1),
    "ms": timedelta(milliseconds=1),
    "s": timedelta(seconds=1),
    "m": timedelta(minutes=1),
    "min": timedelta(minutes=1),
    "h": timedelta(hours=1),
    "d": timedelta(days=1),
    "w": timedelta(weeks=1),
}
_NUMBER = r"\d+(?:\.\d+)?"
_PART = re.compile(rf"\s*({_NUMBER})\s*(us|ms|min|s|m|h|d|w)(?![a-z])")
_BARE = re.compile(rf"\s*{_NUMBER}\s*")
_ISO = re.compile(
    rf"P(?:(?P<w>{_NUMBER})W)?(?:(?P<d>{_NUMBER})D)?"
    rf"(?:T(?:(?P<h>{_NUMBER})H)?(?:(?P<m>{_NUMBER})M)?(?:(?P<s>{_NUMBER})S)?)?"
)
_ISO_UNITS = {"w": "w", "d": "d", "h": "h", "m": "m", "s": "s"}
#: Months or years, in either form: ``3M``, ``1mo``, ``2y``, ``P1M``, ``P1Y2M``.
_CALENDAR = re.compile(
    rf"^\s*[Pp][^Tt]*[YyMm]|{_NUMBER}\s*(?:M|(?i:mo|months?|y|yrs?|years?))(?![A-Za-z])"
)


def parse_duration(value: object, field: str) -> timedelta:
    """``value`` as a non-negative ``timedelta``; ``field`` names it in the error
    (``InvalidParameter``, which also lists the accepted forms).

    >>> parse_duration("15m", "--every")
    datetime.timedelta(seconds=900)
    >>> parse_duration(90, "grace")
    datetime.timedelta(seconds=90)
    """
    if isinstance(value, timedelta):
        delta = value
    elif isinstance(value, numbers.Real) and not isinstance(value, bool):
        if not math.isfinite(value):
            raise _refused(field, value)
        delta = _timedelta(field, value, timedelta(seconds=1), float(value))
    elif isinstance(value, str):
        delta = _parse_text(value, field)
    else:
        raise _refused(field, value)
    if delta < timedelta(0):
        raise InvalidParameter(
            f"{field} must be a duration of zero or more, got {value!r}", field=field
        )
    return delta


def _parse_text(text: str, field: str) -> timedelta:
    if _BARE.fullmatch(text):
        return _timedelta(field, text, timedelta(seconds=1), float(text))
    stripped = text.strip()
    if stripped[:1] in ("P", "p"):
        match = _ISO.fullmatch(stripped.upper())
        if match is None or not any(match.groupdict().values()) or stripped.upper()[-1] == "T":
            raise _refused(field, text)
        parts = [(n, _ISO_UNITS[u]) for u, n in match.groupdict().items() if n is not None]
    else:
        parts = []
        position = 0
        for match in _PART.finditer(text):
            if match.start() != position:
                break
            parts.append((match.group(1), match.group(2)))
            position = match.end()
        if not parts or text[position:].strip():
            raise _refused(field, text)
    total = timedelta(0)
    for number, unit in parts:
        total += _timedelta(field, text, _UNITS[unit], float(number))
    return total


def _timedelta(field: str, value: object, unit: timedelta, count: float) -> timedelta:
    try:
        return unit * count
    except OverflowError:
        raise InvalidParameter(
            f"{field} {value!r} is too long a duration (at most 999,999,999 days)", field=field
        ) from None


def _refused(field: str, value: object) -> InvalidParameter:
    if isinstance(value, str) and _CALENDAR.search(value):
        return InvalidParameter(
            f"{field} must be a duration, got {value!r}: months and years are not accepted "
            "(their length varies); write days or weeks, such as 30d, 52w or P30D "
            "(15m is 15 minutes)",
            field=field,
        )
    if isinstance(value, str) and value.strip().startswith("-"):
        return InvalidParameter(
            f"{field} must be a duration of zero or more, got {value!r}", field=field
        )
    return InvalidParameter(
        f"{field} must be a duration such as {ACCEPTED}; got {value!r}", field=field
    )


def format_duration(delta: timedelta | None) -> str:
    """The shortest text ``parse_duration`` reads back as ``delta``: ``timedelta(days=1,
    hours=12)`` → ``"1d12h"``; ``None`` or zero → ``"0s"``."""
    if delta is None or not delta:
        return "0s"
    us = delta // timedelta(microseconds=1)
    out = []
    for unit in ("w", "d", "h", "m", "s", "ms", "us"):
        count, us = divmod(us, _UNITS[unit] // timedelta(microseconds=1))
        if count:
            out.append(f"{count}{unit}")
    return "".join(out)
