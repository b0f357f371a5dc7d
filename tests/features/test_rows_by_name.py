"""The feature store reads what its queries return by column name: ``row[0]`` or
``batch.column(1)`` breaks silently when a query's columns are reordered."""

from __future__ import annotations

import ast
from pathlib import Path

import modelyard.features

FEATURES = Path(modelyard.features.__file__).parent


def read_by_position(tree: ast.AST) -> list[str]:
    """``row[2]``, ``rows[0][1]``-style reads and ``batch.column(1)`` / ``batch.columns[2:]``."""
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Subscript):
            index = node.slice
            if isinstance(index, ast.Slice):
                index = index.lower or index.upper
            if not (isinstance(index, ast.Constant) and isinstance(index.value, int)):
                continue
            target = node.value
            a_row = isinstance(target, ast.Name) and target.id.endswith("row")
            a_listed_row = (  # rows[0][1]
                isinstance(target, ast.Subscript)
                and isinstance(target.value, ast.Name)
                and target.value.id.endswith("rows")
            )
            columns = isinstance(target, ast.Attribute) and target.attr == "columns"
            if a_row or a_listed_row or columns:
                found.append(ast.unparse(node))
        elif (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Attribute)
            and node.func.attr == "column"
            and node.args
            and isinstance(node.args[0], ast.Constant)
            and isinstance(node.args[0].value, int)
        ):
            found.append(ast.unparse(node))
    return found


def test_no_feature_module_reads_a_row_or_batch_column_by_position() -> None:
    positional = [
        f"{path.relative_to(FEATURES)}: {read}"
        for path in sorted(FEATURES.rglob("*.py"))
        for read in read_by_position(ast.parse(path.read_text(encoding="utf-8")))
    ]
    assert positional == []


def test_the_check_sees_each_positional_form() -> None:
    code = "a = row[0]; b = batch.column(1); c = batch.columns[2:]; d = rows[0][1]; e = rows[0]"
    assert read_by_position(ast.parse(code)) == [
        "row[0]",
        "batch.column(1)",
        "batch.columns[2:]",
        "rows[0][1]",
    ]
