"""Seek pagination (``store/keyset.py``): walking the pages of any order gives every row once,
in the order of one unpaged query, on SQLite and PostgreSQL; a page token is opaque and
refused — ``InvalidParameter`` on ``page_token`` — when it is anything but what the search
issued for that order."""

from __future__ import annotations

import base64
import json
from itertools import product

import pytest
from sqlalchemy import Column, Integer, MetaData, String, Table, insert, select

from modelyard.errors import InvalidParameter
from modelyard.store.keyset import SortKey, decode_token, encode_token, fetch_page

_meta = MetaData()
#: Duplicates in every column but the last, so the tie-breakers decide.
points = Table(
    "keyset_points",
    _meta,
    Column("id", Integer, primary_key=True, autoincrement=False),
    Column("name", String(20), nullable=False),
    Column("score", Integer, nullable=False),
)
ROWS = [{"id": i, "name": "abc"[i % 3] + "-" * (i % 2), "score": i % 4} for i in range(23)]


@pytest.fixture
def filled(metadata_db):
    _meta.create_all(metadata_db.engine)
    with metadata_db.write() as conn:
        conn.execute(insert(points), ROWS)
    yield metadata_db
    _meta.drop_all(metadata_db.engine)


def walk(db, keys, size, where=None) -> list[int]:
    query = select(points) if where is None else select(points).where(where)
    seen, token = [], None
    while True:
        with db.read() as conn:
            rows, token = fetch_page(conn, query, keys, "points", token, size)
        seen += [r.id for r in rows]
        if token is None:
            return seen


def test_pages_in_any_directions_give_every_row_once_in_order(filled):
    c = points.c
    for name_up, score_up, id_up in product((True, False), repeat=3):
        keys = [SortKey(c.name, name_up), SortKey(c.score, score_up), SortKey(c.id, id_up)]
        with filled.read() as conn:
            query = select(points.c.id).order_by(*(k.order() for k in keys))
            everything = list(conn.execute(query).scalars())
        for size in (1, 4, 23, 100):
            assert walk(filled, keys, size) == everything, (name_up, score_up, id_up, size)
        high = [i for i in everything if ROWS[i]["score"] > 1]
        assert walk(filled, keys, 2, c.score > 1) == high


def test_an_order_with_a_nullable_column_pages_by_offset_as_strictly(filled):
    # ``maybe``: the score under a nullable column's name (``ORDER BY maybe``)
    maybe = Column("maybe", Integer, nullable=True)
    keys = [SortKey(points.c.score, True), SortKey(points.c.id, True)]
    nullable = [SortKey(maybe, True), *keys]
    query = select(points.c.id, points.c.score.label("maybe"), points.c.score)
    seen, token = [], None
    while True:
        with filled.read() as conn:
            rows, token = fetch_page(conn, query, nullable, "points", token, 5)
        seen += [r.id for r in rows]
        if token is None:
            break
    assert sorted(seen) == list(range(23)) and len(seen) == 23
    with filled.read() as conn:
        _, seek = fetch_page(conn, select(points), keys, "points", None, 5)
        with pytest.raises(InvalidParameter) as caught:
            fetch_page(conn, query, nullable, "points", seek, 5)
    assert caught.value.field == "page_token"


def test_the_last_page_has_no_token_and_a_full_last_page_no_empty_page_after(filled):
    keys = [SortKey(points.c.id, True)]
    with filled.read() as conn:
        rows, token = fetch_page(conn, select(points), keys, "points", None, 23)
    assert len(rows) == 23 and token is None


KEYS = [SortKey(points.c.name, True), SortKey(points.c.id, False)]


def forged(body: object) -> str:
    return base64.urlsafe_b64encode(json.dumps(body).encode()).decode()


def genuine(values: list[object]) -> dict[str, object]:
    """A token the search issued, with its position replaced by ``values``."""
    body = json.loads(base64.urlsafe_b64decode(encode_token("points", KEYS, ["a", 1])))
    return {**body, "k": values}


@pytest.mark.parametrize(
    "token",
    [
        "not base64 !",
        "%%%%",
        base64.urlsafe_b64encode(b"\xff\xfe").decode(),
        forged({"offset": -1}),
        forged({"offset": 2**40}),
        forged([1, 2]),
        forged({"v": 2, "s": "points:name+,id-", "k": ["a", 1]}),
        encode_token("other", KEYS, ["a", 1]),  # another search's token
        encode_token("points", list(reversed(KEYS)), [1, "a"]),  # another order's
        forged(genuine(["a"])),
        forged(genuine(["a", 1, 2])),
        forged(genuine([1, 1])),
        forged(genuine(["a", "1"])),
        forged(genuine(["a", True])),
        forged(genuine(["a", 1.5])),
        forged(genuine(["a", 2**63])),
        forged(genuine([None, 1])),
        forged(genuine(["x" * 21, 1])),  # longer than the column holds
        "A" * 5000,
    ],
)
def test_a_token_the_search_did_not_issue_is_refused_naming_page_token(token):
    with pytest.raises(InvalidParameter, match="invalid page_token") as caught:
        decode_token(token, "points", KEYS)
    assert caught.value.field == "page_token"


def test_an_offset_token_of_before_goes_on_where_it_was_then_seeks(filled):
    keys = [SortKey(points.c.id, False)]
    for old in (forged({"offset": 20}), forged(20), "20"):  # experiments, registry, models
        with filled.read() as conn:
            rows, token = fetch_page(conn, select(points), keys, "points", old, 2)
            assert [r.id for r in rows] == [2, 1]
            rest, _ = fetch_page(conn, select(points), keys, "points", token, 5)
        assert [r.id for r in rest] == [0]


def test_a_token_names_the_row_it_follows_and_no_token_is_the_first_page():
    assert decode_token(encode_token("points", KEYS, ["b", 7]), "points", KEYS) == ["b", 7]
    assert decode_token(None, "points", KEYS) is None
    assert decode_token("", "points", KEYS) is None


def test_a_value_a_string_column_cannot_hold_is_bound_never_spliced(filled):
    keys = [SortKey(points.c.name, True), SortKey(points.c.id, True)]
    token = encode_token("points", keys, ["a' OR 1=1 --", 0])
    with filled.read() as conn:
        rows, _ = fetch_page(conn, select(points), keys, "points", token, 100)
    assert rows and "a" not in {r.name for r in rows}  # compared, as a value
    with filled.read() as conn:
        assert len(conn.execute(select(points)).all()) == 23
