"""Core statements compiled once for a raw DB-API cursor: the same statement, parameters
by name and rows by name, on SQLite and PostgreSQL."""

from __future__ import annotations

import pytest
from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    LargeBinary,
    MetaData,
    String,
    Table,
    bindparam,
    insert,
    literal,
    select,
)
from sqlalchemy.dialects import postgresql, sqlite

from modelyard.store.engine import open_database
from modelyard.store.statements import Compiled, ExpandingStatement, insert_for

meta = MetaData()
notes = Table(
    "notes",
    meta,
    Column("id", String(16), primary_key=True),
    Column("body", String(100), nullable=False),
    Column("size", BigInteger, nullable=False),
    Column("pinned", Boolean, nullable=False),
    Column("blob", LargeBinary, nullable=True),
)


@pytest.fixture(params=["sqlite", "postgres"])
def db(request, tmp_path):
    uri = (
        f"sqlite:///{tmp_path / 'notes.db'}"
        if request.param == "sqlite"
        else request.getfixturevalue("postgres_uri")
    )
    database = open_database(uri)
    meta.create_all(database.engine)
    yield database
    database.dispose()


def _note(i: int, **changes: object) -> dict[str, object]:
    row: dict[str, object] = {
        "id": f"n{i}",
        "body": f"note {i}",
        "size": 2**40 + i,
        "pinned": i % 2 == 0,
        "blob": bytes([i]),
    }
    row.update(changes)
    return row


def test_rows_written_and_read_by_name_round_trip_on_each_backend(db) -> None:
    dialect = db.engine.dialect
    write = Compiled(insert(notes), dialect)
    read = Compiled(select(notes).where(notes.c.id == bindparam("id")), dialect)
    with db.raw_write() as cur:
        write.execute(cur, _note(1))
        write.executemany(cur, [_note(2), _note(3, blob=None)])
    with db.raw_read() as cur:
        found = read.first(cur, {"id": "n2"})
        missing = read.first(cur, {"id": "nope"})
    assert (found.id, found.body, found.size, bool(found.pinned), bytes(found.blob)) == (
        "n2",
        "note 2",
        2**40 + 2,
        True,
        b"\x02",
    )
    assert missing is None
    assert read.columns == tuple(c.name for c in notes.columns)


def test_an_expanding_list_is_compiled_once_per_length_and_keeps_the_other_values(db) -> None:
    dialect = db.engine.dialect
    with db.raw_write() as cur:
        Compiled(insert(notes), dialect).executemany(cur, [_note(i) for i in range(6)])
    c = notes.c
    find = ExpandingStatement(
        select(c.id, c.size)
        .where(c.id.in_(bindparam("ids", expanding=True)), c.size > bindparam("least"))
        .order_by(c.id),
        dialect,
        "ids",
    )
    with db.raw_read() as cur:
        rows = find.all(cur, {"ids": ["n1", "n2", "n5"], "least": 2**40 + 1})
        again = find.all(cur, {"ids": ["n0", "n3", "n4"], "least": 0})
        compiled = find.execute(cur, {"ids": ["n4"], "least": 0})
        only = list(map(compiled.getter("id"), cur.fetchall()))
    assert [(r.id, r.size - 2**40) for r in rows] == [("n2", 2), ("n5", 5)]
    assert [r.id for r in again] == ["n0", "n3", "n4"]
    assert only == ["n4"]
    assert find.compiled(3) is find.compiled(3)


def test_values_bound_in_the_statement_are_converted_once_and_need_not_be_passed(db) -> None:
    dialect = db.engine.dialect
    with db.raw_write() as cur:
        Compiled(insert(notes), dialect).executemany(cur, [_note(1), _note(2)])
    pinned = Compiled(
        select(notes.c.id, literal("x").label("mark")).where(notes.c.pinned == True),  # noqa: E712
        dialect,
    )
    with db.raw_read() as cur:
        assert [(r.id, r.mark) for r in pinned.all(cur)] == [("n2", "x")]


def test_an_upsert_is_spelt_alike_on_both_backends(db) -> None:
    dialect = db.engine.dialect
    stmt = insert_for(dialect.name, notes)
    upsert = Compiled(
        stmt.on_conflict_do_update(index_elements=[notes.c.id], set_={"body": stmt.excluded.body}),
        dialect,
    )
    with db.raw_write() as cur:
        upsert.execute(cur, _note(1))
        upsert.execute(cur, _note(1, body="changed"))
    with db.raw_read() as cur:
        rows = Compiled(select(notes.c.body), dialect).all(cur)
    assert [r.body for r in rows] == ["changed"]


def test_the_driver_gets_its_own_parameter_style() -> None:
    find = select(notes.c.body).where(notes.c.id == bindparam("id"))
    on_sqlite = Compiled(find, sqlite.dialect())
    on_postgres = Compiled(find, postgresql.psycopg.dialect())
    assert on_sqlite.sql.endswith("notes.id = ?")
    assert on_sqlite.args({"id": "n1"}) == ("n1",)
    assert "%(id)s" in on_postgres.sql
    assert on_postgres.args({"id": "n1"}) == {"id": "n1"}


def test_a_missing_value_is_named() -> None:
    write = Compiled(insert(notes), sqlite.dialect())
    with pytest.raises(KeyError, match="size"):
        write.args({"id": "n1", "body": "b", "pinned": True, "blob": None})


def test_a_wrong_number_of_list_values_is_refused() -> None:
    find = Compiled(
        select(notes.c.id).where(notes.c.id.in_(bindparam("ids", expanding=True))),
        sqlite.dialect(),
        {"ids": 2},
    )
    assert find.args({"ids": ["a", "b"]}) == ["a", "b"]
    with pytest.raises(ValueError, match="2 values"):
        find.args({"ids": ["a"]})


def test_a_name_selected_twice_is_told_apart() -> None:
    twice = Compiled(select(notes.c.id, notes.c.body.label("id")), sqlite.dialect())
    assert twice.columns == ("id", "id_1")
    assert twice.getter("id", "id_1")(("n1", "body")) == ("n1", "body")
