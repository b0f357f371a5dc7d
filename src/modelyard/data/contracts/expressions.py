"""Cross-column rules: a small, safe expression language evaluated over whole columns.

``discount <= price``, ``0 <= share <= 1``, ``end_date >= start_date``,
``region != 'north' or promo == 0``, ``abs(forecast - actual) < 1000``,
``notnull(ship_date) or status == 'open'``.

Expressions are parsed with Python's ``ast`` and only a whitelist of nodes is accepted
(column names, constants, arithmetic, comparisons, ``and``/``or``/``not``, ``in`` with a
literal list, and the functions ``abs``, ``isnull``, ``notnull``), so a contract file can
never run code. Evaluation is vectorised: every name is a NumPy/pandas column.
"""

from __future__ import annotations

import ast
import operator
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from modelyard.data.contracts.result import ContractError
from modelyard.errors import InvalidParameter

_BINARY: dict[type[ast.operator], Callable[[Any, Any], Any]] = {
    ast.Add: operator.add,
    ast.Sub: operator.sub,
    ast.Mult: operator.mul,
    ast.Div: operator.truediv,
    ast.FloorDiv: operator.floordiv,
    ast.Mod: operator.mod,
    ast.Pow: operator.pow,
}
_COMPARE: dict[type[ast.cmpop], Callable[[Any, Any], Any]] = {
    ast.Lt: operator.lt,
    ast.LtE: operator.le,
    ast.Gt: operator.gt,
    ast.GtE: operator.ge,
    ast.Eq: operator.eq,
    ast.NotEq: operator.ne,
}
FUNCTIONS = ("abs", "isnull", "notnull")


@dataclass(frozen=True, slots=True)
class Expression:
    """A parsed rule: its text, the columns it reads, and whether it tests for nulls
    itself (then it is evaluated on every row; otherwise rows with a null in any column
    it reads are not judged by it)."""

    text: str
    columns: tuple[str, ...]
    handles_nulls: bool
    tree: ast.Expression

    def evaluate(self, columns: Mapping[str, Any]) -> Any:
        """A boolean array: True where the rule holds."""
        return _eval(self.tree.body, columns, self.text)


def parse(text: object, where: str = "rule") -> Expression:
    """Parse and check ``text``; InvalidParameter names the offending part."""
    if not isinstance(text, str) or not text.strip():
        raise ContractError(f"{where} must be an expression string, got {text!r}", field=where)
    try:
        tree = ast.parse(text.strip(), mode="eval")
    except SyntaxError as exc:
        raise ContractError(
            f"{where} {text!r} is not a valid expression: {exc.msg}", field=where
        ) from None
    names: list[str] = []
    handles_nulls = False
    for node in ast.walk(tree):
        if isinstance(node, ast.Call):
            if not isinstance(node.func, ast.Name) or node.func.id not in FUNCTIONS:
                raise ContractError(
                    f"{where} {text!r} calls {ast.unparse(node.func)!r}; only "
                    f"{', '.join(FUNCTIONS)} are allowed",
                    field=where,
                )
            if len(node.args) != 1 or node.keywords:
                raise ContractError(
                    f"{where} {text!r}: {node.func.id}() takes exactly one argument",
                    field=where,
                )
            handles_nulls |= node.func.id in ("isnull", "notnull")
        elif isinstance(node, ast.Name):
            if not (isinstance(_parent_call(tree, node), ast.Call) and node.id in FUNCTIONS):
                names.append(node.id)
        elif not isinstance(node, _ALLOWED):
            raise ContractError(
                f"{where} {text!r} uses {type(node).__name__.lower()} "
                f"({ast.unparse(node) if isinstance(node, ast.expr) else '...'}), which rules "
                "do not allow; use column names, numbers, strings, arithmetic, comparisons, "
                "and/or/not",
                field=where,
            )
    if not names:
        raise ContractError(f"{where} {text!r} reads no column", field=where)
    return Expression(text.strip(), tuple(dict.fromkeys(names)), handles_nulls, tree)


_ALLOWED = (
    ast.Expression,
    ast.BoolOp,
    ast.And,
    ast.Or,
    ast.UnaryOp,
    ast.Not,
    ast.USub,
    ast.UAdd,
    ast.BinOp,
    ast.Compare,
    ast.Constant,
    ast.Load,
    ast.List,
    ast.Tuple,
    ast.In,
    ast.NotIn,
    *_BINARY,
    *_COMPARE,
)


def _parent_call(tree: ast.AST, target: ast.Name) -> ast.AST | None:
    for node in ast.walk(tree):
        if isinstance(node, ast.Call) and node.func is target:
            return node
    return None


def _eval(node: ast.AST, cols: Mapping[str, Any], text: str) -> Any:
    import numpy as np
    import pandas as pd

    if isinstance(node, ast.Constant):
        return node.value
    if isinstance(node, ast.Name):
        if node.id not in cols:
            raise InvalidParameter(
                f"rule {text!r} reads column {node.id!r}, which the data does not have",
                field="rules",
            )
        return cols[node.id]
    if isinstance(node, (ast.List, ast.Tuple)):
        return [_eval(e, cols, text) for e in node.elts]
    if isinstance(node, ast.BoolOp):
        values = [np.asarray(_eval(v, cols, text), dtype=bool) for v in node.values]
        combine = np.logical_and if isinstance(node.op, ast.And) else np.logical_or
        out = values[0]
        for value in values[1:]:
            out = combine(out, value)
        return out
    if isinstance(node, ast.UnaryOp):
        operand = _eval(node.operand, cols, text)
        if isinstance(node.op, ast.Not):
            return np.logical_not(np.asarray(operand, dtype=bool))
        return -operand if isinstance(node.op, ast.USub) else operand
    if isinstance(node, ast.BinOp):
        return _BINARY[type(node.op)](_eval(node.left, cols, text), _eval(node.right, cols, text))
    if isinstance(node, ast.Compare):
        left = _eval(node.left, cols, text)
        chained: np.ndarray | None = None  # a < b < c: each comparison, and-ed
        for op, right_node in zip(node.ops, node.comparators, strict=True):
            right = _eval(right_node, cols, text)
            if isinstance(op, (ast.In, ast.NotIn)):
                result = pd.Series(left).isin(right).to_numpy()
                if isinstance(op, ast.NotIn):
                    result = ~result
            else:
                result = np.asarray(_COMPARE[type(op)](left, right), dtype=bool)
            chained = result if chained is None else np.logical_and(chained, result)
            left = right
        return chained
    if isinstance(node, ast.Call):
        assert isinstance(node.func, ast.Name)
        arg = _eval(node.args[0], cols, text)
        if node.func.id == "abs":
            return np.abs(arg)
        nulls = pd.isna(arg)
        return nulls if node.func.id == "isnull" else ~nulls
    raise InvalidParameter(f"rule {text!r} cannot be evaluated", field="rules")  # pragma: no cover
