"""Seek (keyset) pagination: each page starts just after the last row of the previous one.

An ``OFFSET`` page makes the database produce and throw away every row before it, so page
1,000 of a search costs a thousand pages; a seek page is ``WHERE (sort key) > (last row's
key)`` and costs the same at any depth, because an index on the sort key starts the scan
there. It needs a total order: the searches end their ``ORDER BY`` with the primary key,
and every sort column is ``NOT NULL`` (the comparisons below do not order NULLs).

The page token carries the last row's key values, base64url over JSON, with a *scope*
naming the search and its order, so a token from another search or another ``order_by``
is refused rather than silently misread. The token never becomes SQL: each value is
checked against its column's type (an ``int`` for integer columns, a ``str`` no longer
than the column for strings) and bound as a parameter. Anything else is an
``InvalidParameter`` on ``page_token`` (HTTP 400, ``INVALID_PARAMETER_VALUE``) — except
the offset tokens these searches wrote before they seeked, which still page (by offset,
once), so a client paging across the upgrade goes on where it was.

>>> from sqlalchemy import Column, Integer, MetaData, String, Table, select
>>> notes = Table("notes", MetaData(), Column("name", String(20)), Column("n", Integer))
>>> keys = [SortKey(notes.c.name, True), SortKey(notes.c.n, False)]
>>> token = encode_token("notes", keys, ["b", 3])
>>> decode_token(token, "notes", keys)
['b', 3]
>>> print(after(keys, ["b", 3]))
notes.name >= :name_1 AND (notes.name > :name_2 OR notes.name = :name_3 AND notes.n < :n_1)
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import ColumnElement, Connection, Integer, Row, Select, String, and_, or_

from modelyard.errors import InvalidParameter

#: Longer tokens are refused before decoding (a key of a few names and numbers is far less).
MAX_TOKEN_LENGTH = 4096
_VERSION = 1


@dataclass(frozen=True)
class SortKey:
    """One term of a search's ``ORDER BY``: a ``NOT NULL`` column and its direction."""

    column: Any
    ascending: bool

    def order(self) -> Any:
        """The ``ORDER BY`` term."""
        return self.column.asc() if self.ascending else self.column.desc()


def after(keys: Sequence[SortKey], values: Sequence[Any]) -> ColumnElement[bool]:
    """Rows that come strictly after the row whose sort key is ``values``, in ``keys`` order.

    Written as ``k1 ≥ v1 AND (k1 > v1 OR (k1 = v1 AND (k2 > v2 OR …)))`` (``<`` and ``≤``
    for a descending key): the leading bound is what lets either database start an index
    scan at the page rather than filter every row before it, whatever the directions.
    """
    if not keys or len(keys) != len(values):
        raise ValueError("a seek needs one value per sort key")
    condition: ColumnElement[bool] | None = None
    for key, value in reversed(list(zip(keys, values, strict=True))):
        beyond = key.column > value if key.ascending else key.column < value
        condition = (
            beyond if condition is None else or_(beyond, and_(key.column == value, condition))
        )
    first, value = keys[0], values[0]
    start = first.column >= value if first.ascending else first.column <= value
    assert condition is not None
    return and_(start, condition)


def fetch_page(
    conn: Connection,
    query: Select[Any],
    keys: Sequence[SortKey],
    scope: str,
    page_token: str | None,
    max_results: int,
) -> tuple[list[Row[Any]], str | None]:
    """One page of ``query`` (which selects every key column and is not yet ordered) in
    ``keys`` order, after the row ``page_token`` names, with the token for the next page
    (None on the last page).

    An order with a nullable column (a logged model's ``model_type``) cannot seek — the
    comparisons above skip NULLs — so its pages are counted instead (``OFFSET``), with a
    token of the same form, as strictly checked.
    """
    if any(k.column.nullable for k in keys):
        return _fetch_by_offset(conn, query, keys, scope, page_token, max_results)
    query = query.order_by(*(k.order() for k in keys)).limit(max_results + 1)
    legacy = _legacy_offset(page_token)
    if legacy is not None:
        query = query.offset(legacy)
    else:
        start = decode_token(page_token, scope, keys)
        if start is not None:
            query = query.where(after(keys, start))
    rows = list(conn.execute(query).all())
    if len(rows) <= max_results:
        return rows, None
    last = rows[max_results - 1]._mapping
    return rows[:max_results], encode_token(scope, keys, [last[k.column] for k in keys])


def _fetch_by_offset(
    conn: Connection,
    query: Select[Any],
    keys: Sequence[SortKey],
    scope: str,
    page_token: str | None,
    max_results: int,
) -> tuple[list[Row[Any]], str | None]:
    legacy = _legacy_offset(page_token)
    found: Any = legacy if legacy is not None else 0
    if legacy is None and page_token:
        found = _body(page_token, scope, keys).get("o")
        if not _is_offset(found):
            raise _bad(page_token, "its position does not match the order")
    offset = int(found)
    query = query.order_by(*(k.order() for k in keys)).offset(offset).limit(max_results + 1)
    rows = list(conn.execute(query).all())
    if len(rows) <= max_results:
        return rows, None
    body = {"v": _VERSION, "s": _signature(scope, keys), "o": offset + max_results}
    token = base64.urlsafe_b64encode(json.dumps(body, separators=(",", ":")).encode()).decode()
    return rows[:max_results], token


def encode_token(scope: str, keys: Sequence[SortKey], values: Sequence[Any]) -> str:
    """The opaque token for the page after the row whose sort key is ``values``."""
    body = {"v": _VERSION, "s": _signature(scope, keys), "k": [_plain(v) for v in values]}
    return base64.urlsafe_b64encode(json.dumps(body, separators=(",", ":")).encode()).decode()


def decode_token(token: str | None, scope: str, keys: Sequence[SortKey]) -> list[Any] | None:
    """The sort key a page starts after, or None for the first page (no token).

    Refuses (``InvalidParameter`` on ``page_token``) anything ``encode_token`` did not
    write for this scope and order, and any value of the wrong type for its column.
    """
    if not token:
        return None
    values = _body(token, scope, keys).get("k")
    if not isinstance(values, list) or len(values) != len(keys):
        raise _bad(token, "its position does not match the order")
    for key, value in zip(keys, values, strict=True):
        _check_value(token, key, value)
    return values


def _legacy_offset(token: str | None) -> int | None:
    """The offset a token written before seek pages names — ``{"offset": n}`` (experiments)
    or a number (the registry), in base64, or the plain digits logged models used — so a
    client paging across the upgrade goes on where it was (its next token seeks); None for
    any other token."""
    if not token or not isinstance(token, str) or len(token) > 64:
        return None
    if token.isascii() and token.isdigit():
        return int(token) if _is_offset(int(token)) else None
    try:
        body = json.loads(base64.urlsafe_b64decode(token.encode("ascii")))
    except (binascii.Error, UnicodeError, ValueError):
        return None
    if isinstance(body, dict) and set(body) == {"offset"}:
        body = body["offset"]
    return body if _is_offset(body) else None


def _is_offset(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and 0 <= value < 2**31


def _body(token: Any, scope: str, keys: Sequence[SortKey]) -> dict[str, Any]:
    """The decoded token, once it is known to be one of this search and order."""
    if not isinstance(token, str) or len(token) > MAX_TOKEN_LENGTH:
        raise _bad(token, "it is not a page token of this search")
    try:
        body = json.loads(base64.urlsafe_b64decode(token.encode("ascii")))
    except (binascii.Error, UnicodeError, ValueError):
        raise _bad(token, "it is not a page token of this search") from None
    if not isinstance(body, dict) or body.get("v") != _VERSION:
        raise _bad(token, "it is not a page token of this search")
    if body.get("s") != _signature(scope, keys):
        raise _bad(token, "it was issued for another search or order_by")
    return body


def _signature(scope: str, keys: Sequence[SortKey]) -> str:
    terms = ",".join(f"{k.column.name}{'+' if k.ascending else '-'}" for k in keys)
    return f"{scope}:{terms}"


def _plain(value: Any) -> Any:
    """A key value as JSON holds it (ints and strings; bools are not keys)."""
    if isinstance(value, bool) or not isinstance(value, int | str):
        raise TypeError(f"a sort key value must be an int or a str, got {value!r}")
    return value


def _check_value(token: str, key: SortKey, value: Any) -> None:
    column_type = key.column.type
    if isinstance(column_type, Integer):
        if isinstance(value, bool) or not isinstance(value, int) or abs(value) >= 2**63:
            raise _bad(token, f"its {key.column.name} is not an integer")
    elif isinstance(column_type, String):
        if not isinstance(value, str):
            raise _bad(token, f"its {key.column.name} is not a string")
        if column_type.length is not None and len(value) > column_type.length:
            raise _bad(token, f"its {key.column.name} is longer than any stored")
    else:  # a sort key of another type is a programming error, not the caller's
        raise TypeError(f"no seek pagination on {key.column.name} ({column_type})")


def _bad(token: Any, why: str) -> InvalidParameter:
    return InvalidParameter(
        f"invalid page_token {token!r:.60}: {why} (pass the next_page_token of the previous "
        "page unchanged, with the same filter and order_by, or none for the first page)",
        field="page_token",
    )


__all__ = [
    "MAX_TOKEN_LENGTH",
    "SortKey",
    "after",
    "decode_token",
    "encode_token",
    "fetch_page",
]
