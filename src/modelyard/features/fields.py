"""Feature types, names and durations: the vocabulary every definition is written in.

>>> Field("units", "float64")
Field(name='units', dtype='float64')
>>> parse_ttl("1d12h")
datetime.timedelta(days=1, seconds=43200)
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from modelyard.durations import parse_duration
from modelyard.errors import InvalidParameter

#: The feature types, and the DuckDB type each is stored as offline.
DUCKDB_TYPES: dict[str, str] = {
    "int64": "BIGINT",
    "int32": "INTEGER",
    "float64": "DOUBLE",
    "float32": "FLOAT",
    "bool": "BOOLEAN",
    "string": "VARCHAR",
    "timestamp": "TIMESTAMPTZ",
}
_DTYPE_ALIASES: dict[Any, str] = {
    int: "int64",
    float: "float64",
    str: "string",
    bool: "bool",
    "int": "int64",
    "integer": "int64",
    "float": "float64",
    "double": "float64",
    "str": "string",
    "boolean": "bool",
    "datetime": "timestamp",
}
KEY_DTYPES = ("int64", "string")
_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,127}$")


def check_name(value: object, what: str) -> str:
    """Names become SQL identifiers and registry keys: letters, digits, underscores."""
    if not isinstance(value, str) or not _NAME.match(value):
        raise InvalidParameter(
            f"{what} {value!r} is not a valid name; use letters, digits and underscores, "
            "starting with a letter (at most 128 characters)",
            field=what,
        )
    return value


def normalize_dtype(dtype: object, field: str = "dtype") -> str:
    """``"float64"``, ``float``, ``"double"`` … → one of the names in ``DUCKDB_TYPES``."""
    if isinstance(dtype, str) and dtype in DUCKDB_TYPES:
        return dtype
    try:
        name = _DTYPE_ALIASES.get(dtype.lower() if isinstance(dtype, str) else dtype)  # type: ignore[arg-type]
    except TypeError:
        name = None
    if name is None:
        raise InvalidParameter(
            f"{field} {dtype!r} is not a feature type; use one of {', '.join(DUCKDB_TYPES)}",
            field=field,
        )
    return name


def parse_ttl(value: object, field: str = "ttl") -> timedelta | None:
    """A TTL as a ``timedelta``: any duration ``modelyard.durations`` reads (``"1d"``,
    ``"12h"``, ``"1d12h"``, ``"PT90M"``, a ``timedelta``, seconds as a number). ``None`` or
    zero means no TTL (values never expire).

    >>> parse_ttl("1d12h")
    datetime.timedelta(days=1, seconds=43200)
    """
    if value is None:
        return None
    return parse_duration(value, field) or None


@dataclass(frozen=True, slots=True)
class Field:
    """A typed column: ``Field("units", "float64")``."""

    name: str
    dtype: str = "float64"

    def __post_init__(self) -> None:
        check_name(self.name, "field name")
        object.__setattr__(self, "dtype", normalize_dtype(self.dtype, f"field {self.name} dtype"))

    def spec(self) -> dict[str, str]:
        return {"name": self.name, "dtype": self.dtype}
