"""The tracking store's SQL is made from its tables, never kept by hand: a column added to a
table reaches every statement that writes or reads the table, and a field added to
``RunInfo`` (with its column) reaches run creation and run loading, with no SQL to edit.
What is left to touch for a new run column: the entity, the table, a migration, the wire
mapping."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest
from sqlalchemy import Table
from sqlalchemy.dialects import postgresql, sqlite

import modelyard
from modelyard.tracking import tables as t
from modelyard.tracking.entities import RunInfo
from modelyard.tracking.sql_run_loading import RunLoader
from modelyard.tracking.sql_statements import RUN_INFO_FIELDS, HotStatements, run_row

SOURCE = Path(modelyard.__file__).parent
TRACKING_TABLES = sorted(v.name for v in vars(t).values() if isinstance(v, Table))
DIALECTS = {"sqlite": sqlite.dialect(), "postgresql": postgresql.psycopg.dialect()}

_SQL_WORD = re.compile(r"\b(SELECT|INSERT|UPDATE|DELETE|WHERE|ON CONFLICT|VALUES)\b")
_TABLE_WORD = re.compile(r"\b(" + "|".join(TRACKING_TABLES) + r")\b")


def _strings(tree: ast.AST) -> list[ast.Constant]:
    """Every string literal of a module (f-string parts included), docstrings left out."""
    docstrings = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Module | ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef):
            first = node.body[0] if node.body else None
            if isinstance(first, ast.Expr) and isinstance(first.value, ast.Constant):
                docstrings.add(id(first.value))
    return [
        node
        for node in ast.walk(tree)
        if isinstance(node, ast.Constant)
        and isinstance(node.value, str)
        and id(node) not in docstrings
    ]


def _modules() -> list[tuple[str, ast.AST]]:
    found = []
    for path in sorted(SOURCE.rglob("*.py")):
        name = path.relative_to(SOURCE).as_posix()
        # The tables are the schema; a migration is a snapshot of its history.
        if name == "tracking/tables.py" or name.startswith("store/alembic/"):
            continue
        found.append((name, ast.parse(path.read_text(), name)))
    return found


def test_no_sql_string_names_a_tracking_table_outside_the_table_module() -> None:
    written = [
        f"{name}:{node.lineno}: {node.value[:80]!r}"
        for name, tree in _modules()
        for node in _strings(tree)
        if _SQL_WORD.search(node.value) and _TABLE_WORD.search(node.value)
    ]
    assert written == [], "SQL kept by hand; build it from tracking/tables.py instead"


def test_the_scan_would_see_a_hand_kept_statement() -> None:
    tree = ast.parse(
        'marks = "?"\n'
        'SQL = "INSERT INTO tags (run_id, key, value) VALUES (?, ?, ?)"\n'
        'def f(n):\n    return f"SELECT key FROM params WHERE key IN ({marks})"\n'
    )
    hits = [n.value for n in _strings(tree) if _SQL_WORD.search(n.value)]
    assert [bool(_TABLE_WORD.search(h)) for h in hits] == [True, True]


def _rows_read_by_position(tree: ast.AST) -> list[str]:
    return [
        ast.unparse(node)
        for node in ast.walk(tree)
        if isinstance(node, ast.Subscript)
        and isinstance(node.value, ast.Name)
        and node.value.id.endswith("row")
        and isinstance(node.slice, ast.Constant)
        and isinstance(node.slice.value, int)
    ]


def test_the_sql_stores_read_no_row_by_a_written_position() -> None:
    """``row[7]`` breaks silently when a column moves; rows are read by column name."""
    positional = [
        f"{name}: {read}"
        for name, tree in _modules()
        if name.startswith(("tracking/sql_", "store/"))
        for read in _rows_read_by_position(tree)
    ]
    assert positional == []
    assert _rows_read_by_position(ast.parse("info = row[0], str(row[1])")) == ["row[0]", "row[1]"]


def _inserted(sql: str, table: Table) -> list[str]:
    found = re.search(rf"INSERT INTO {table.name} \(([^)]*)\)", sql)
    assert found, sql
    return [column.strip().strip('"') for column in found.group(1).split(",")]


def _updated(sql: str) -> set[str]:
    found = re.search(r"DO UPDATE SET (.*?)(?: WHERE |$)", sql, re.S)
    assert found, sql
    return {part.split("=")[0].strip().strip('"') for part in found.group(1).split(", ")}


@pytest.mark.parametrize("dialect", DIALECTS.values(), ids=DIALECTS.keys())
def test_the_generated_writes_list_every_column_of_their_table(dialect) -> None:
    hot = HotStatements(dialect)
    every = {
        hot.insert_run: t.runs,
        hot.insert_tag: t.tags,
        hot.upsert_tag: t.tags,
        hot.insert_param: t.params,
        hot.insert_chunk: t.metric_chunks,
        hot.upsert_latest: t.latest_metrics,
    }
    for statement, table in every.items():
        assert _inserted(statement.sql, table) == [c.name for c in table.columns]
    for statement, table in ((hot.upsert_tag, t.tags), (hot.upsert_latest, t.latest_metrics)):
        assert _updated(statement.sql) == {c.name for c in table.columns if not c.primary_key}


@pytest.mark.parametrize("dialect", DIALECTS.values(), ids=DIALECTS.keys())
def test_the_generated_writes_take_their_values_by_column_name(dialect) -> None:
    hot = HotStatements(dialect)
    row = {c.name: f"<{c.name}>" for c in t.runs.columns}
    args = hot.insert_run.args(row)
    values = list(args.values()) if isinstance(args, dict) else list(args)
    assert sorted(values) == sorted(row.values())


def test_a_new_runs_row_fills_every_column_from_the_entity_field_of_its_name() -> None:
    info = RunInfo("r1", "7", "name", "me", "RUNNING", 10, None, "active", "uri", "p0")
    row = run_row(info, 7)
    assert set(row) == {c.name for c in t.runs.columns}
    assert {name: row[name] for name in RUN_INFO_FIELDS if name != "experiment_id"} == {
        name: getattr(info, name) for name in RUN_INFO_FIELDS if name != "experiment_id"
    }
    assert row["experiment_id"] == 7
    assert row["deleted_time"] is None  # a column the entity has no field for starts empty


def test_every_field_of_a_run_is_a_column_the_loaders_select_by_name() -> None:
    assert set(RUN_INFO_FIELDS) <= {c.name for c in t.runs.columns}
    on_sqlite = RunLoader(DIALECTS["sqlite"])._sqlite.compiled(1)  # type: ignore[union-attr]
    on_postgres = RunLoader(DIALECTS["postgresql"])._postgres
    for compiled in (on_sqlite, on_postgres):
        assert set(RUN_INFO_FIELDS) | {"data"} <= set(compiled.columns)  # type: ignore[union-attr]
