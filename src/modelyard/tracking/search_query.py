"""Turn parsed run-search clauses into one SQLAlchemy Core ``SELECT runs.run_id``; the
comparisons (:func:`compare`, :func:`keyed_condition`) every MLflow search compiles to.

Filters on metrics, params, tags and datasets are correlated ``EXISTS`` subqueries, each
an index lookup on ``(run_id, key)``; sort keys on them are ``LEFT OUTER JOIN`` s of at
most one row per run (those primary keys again), so no filter or sort multiplies rows
and no ``DISTINCT`` is needed (the join explosion of mlflow#1865).

Semantics, on SQLite and PostgreSQL alike:

* metric clauses compare the latest value; a NaN latest value matches no comparison and
  a run without the metric matches none either;
* ``=``/``!=``/``IN`` on strings and ``LIKE`` are case-sensitive, ``ILIKE`` is not
  (SQLite's own ``LIKE`` ignores case, so there ``LIKE`` compiles to ``GLOB``);
* in LIKE patterns ``%`` and ``_`` are wildcards and a backslash escapes the next
  character;
* sorting puts runs lacking the sort key last in both directions (and, for metrics, NaN
  just before them), then breaks ties by ``start_time DESC, run_id``.

Example::

    stmt = run_search_statement([1], parse_filter("metrics.rmse < 1"), "ACTIVE_ONLY",
                                parse_order_by(["metrics.rmse"]), offset=0, limit=100)
    run_ids = conn.execute(stmt).scalars().all()
"""

from __future__ import annotations

import operator
from collections.abc import Callable
from typing import Any, cast

from sqlalchemy import (
    Boolean,
    ColumnElement,
    Select,
    and_,
    bindparam,
    case,
    exists,
    false,
    func,
    not_,
    select,
    true,
)
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.sql.expression import FunctionElement

from modelyard.errors import InvalidParameter
from modelyard.tracking.search_filter import Clause, OrderKey
from modelyard.tracking.tables import (
    dataset_inputs,
    latest_metrics,
    params,
    run_revisions,
    runs,
    tags,
)

#: A SELECT of any columns (``Select[Any]`` means one column to the type checker).
_Statement = Select[*tuple[Any, ...]]
VIEW_TYPES = {"ACTIVE_ONLY": ("active",), "DELETED_ONLY": ("deleted",), "ALL": None}
_KEYED = {"metric": latest_metrics, "param": params, "tag": tags}
_WILDCARDS = {"%": "*", "_": "?"}
_COMPARISONS: dict[str, Callable[[Any, Any], Any]] = {
    "=": operator.eq,
    "!=": operator.ne,
    "<": operator.lt,
    "<=": operator.le,
    ">": operator.gt,
    ">=": operator.ge,
}


def run_search_statement(
    experiment_ids: list[int],
    clauses: list[Clause],
    view_type: str,
    order_by: list[OrderKey],
    offset: int,
    limit: int | None,
    with_revision: bool = False,
) -> Select[Any]:
    """The runs of ``experiment_ids`` matching every clause, as a ``SELECT run_id`` (and
    ``revision`` when asked).

    ``view_type`` is ``ACTIVE_ONLY``, ``DELETED_ONLY`` or ``ALL`` (by ``lifecycle_stage``);
    ``limit=None`` means no limit.
    """
    stages = _stages(view_type)
    if offset < 0 or (limit is not None and limit < 0):
        raise InvalidParameter(
            f"offset {offset} and limit {limit} must not be negative", field="max_results"
        )
    base: Any = runs
    stmt: _Statement
    if with_revision:
        revisions = run_revisions.c
        stmt = select(runs.c.run_id, func.coalesce(revisions.revision, 0).label("revision"))
        base = runs.outerjoin(run_revisions, revisions.run_id == runs.c.run_id)
    else:
        stmt = select(runs.c.run_id)
    stmt = stmt.where(runs.c.experiment_id.in_(list(experiment_ids)))
    if stages is not None:
        stmt = stmt.where(runs.c.lifecycle_stage.in_(stages))
    for clause in sorted(clauses, key=_probe_cost):
        stmt = stmt.where(_condition(clause))
    stmt, ordering = _order(stmt, order_by, base)
    stmt = stmt.order_by(*ordering).offset(offset)
    return stmt if limit is None else stmt.limit(limit)


def _probe_cost(clause: Clause) -> int:
    """The order SQLite tests a run's clauses in (it keeps the written order): columns of
    the run itself first, then equality and set tests on params, tags and metrics (they
    usually rule out most runs), then ranges and patterns — so fewer runs pay the later
    lookups. The result is the same in any order."""
    if clause.kind == "attribute":
        return 0
    return 1 if clause.op in ("=", "IN") else 2


def _stages(view_type: str) -> tuple[str, ...] | None:
    try:
        return VIEW_TYPES[view_type.upper()]
    except (KeyError, AttributeError):
        raise InvalidParameter(
            f"view type {view_type!r} is not one of {', '.join(VIEW_TYPES)}", field="run_view_type"
        ) from None


def _condition(clause: Clause) -> ColumnElement[bool]:
    if clause.kind == "attribute":
        return compare(runs.c[clause.key], clause.op, clause.value)
    if clause.kind == "dataset":
        match = compare(dataset_inputs.c[clause.key], clause.op, clause.value)
        return exists().where(dataset_inputs.c.run_id == runs.c.run_id, match)
    if clause.kind not in _KEYED:
        raise InvalidParameter(f"unknown clause kind {clause.kind!r}", field="filter")
    table = _KEYED[clause.kind]
    if clause.kind == "metric" and clause.op not in ("IS NULL", "IS NOT NULL"):
        match = and_(table.c.is_nan == false(), compare(table.c.value, clause.op, clause.value))
        return exists().where(table.c.run_id == runs.c.run_id, table.c.key == clause.key, match)
    return keyed_condition(table, table.c.run_id == runs.c.run_id, clause)


def keyed_condition(
    table: Any, same_owner: ColumnElement[bool], clause: Clause
) -> ColumnElement[bool]:
    """A clause on a ``(owner…, key, value)`` table (tags, params): a correlated ``EXISTS``
    of the row with the clause's key and a matching value (so ``!=`` needs the key to be
    there, as in MLflow), or its absence for ``IS NULL``."""
    present = exists().where(same_owner, table.c.key == clause.key)
    if clause.op == "IS NULL":
        return not_(present)
    if clause.op == "IS NOT NULL":
        return present
    return present.where(compare(table.c.value, clause.op, clause.value))


def compare(column: ColumnElement[Any], op: str, value: Any) -> ColumnElement[bool]:
    """``column op value`` with the grammar's semantics on every backend (see above)."""
    if op in ("IN", "NOT IN"):
        if not isinstance(value, tuple):
            raise InvalidParameter(f"{op} needs a tuple of values, got {value!r}", field="filter")
        members = column.in_(list(value))
        return members if op == "IN" else not_(members)
    if op == "LIKE":
        return CaseSensitiveLike(column, _like_items(str(value)))
    if op == "ILIKE":
        return column.ilike(_render_like(_like_items(str(value))), escape="\\")
    if op not in _COMPARISONS:
        raise InvalidParameter(f"unknown comparator {op!r}", field="filter")
    return cast("ColumnElement[bool]", _COMPARISONS[op](column, value))


# --- LIKE patterns ---------------------------------------------------------------------

_Item = tuple[bool, str]  # (is_wildcard, character)


def _like_items(pattern: str) -> list[_Item]:
    """Split a LIKE pattern into wildcards and literal characters (``\\`` escapes)."""
    items: list[_Item] = []
    chars = iter(pattern)
    for char in chars:
        if char == "\\":
            items.append((False, next(chars, "\\")))  # a trailing backslash stands for itself
        else:
            items.append((char in _WILDCARDS, char))
    return items


def _render_like(items: list[_Item]) -> str:
    return "".join(c if wild or c not in "%_\\" else "\\" + c for wild, c in items)


def _render_glob(items: list[_Item]) -> str:
    return "".join(_WILDCARDS[c] if wild else f"[{c}]" if c in "*?[" else c for wild, c in items)


class CaseSensitiveLike(FunctionElement[bool]):
    """``column LIKE pattern`` that honours case on every backend (``GLOB`` on SQLite)."""

    type = Boolean()
    inherit_cache = True
    name = "case_sensitive_like"

    def __init__(self, column: Any, items: list[_Item]) -> None:
        super().__init__(
            column,
            bindparam(None, _render_like(items), unique=True),
            bindparam(None, _render_glob(items), unique=True),
        )


@compiles(CaseSensitiveLike)
def _like_default(element: CaseSensitiveLike, compiler: SQLCompiler, **kw: Any) -> str:
    column, like, _ = element.clauses
    return f"({compiler.process(column, **kw)} LIKE {compiler.process(like, **kw)} ESCAPE '\\')"


@compiles(CaseSensitiveLike, "sqlite")
def _like_sqlite(element: CaseSensitiveLike, compiler: SQLCompiler, **kw: Any) -> str:
    column, _, glob = element.clauses
    return f"({compiler.process(column, **kw)} GLOB {compiler.process(glob, **kw)})"


# --- ordering --------------------------------------------------------------------------


def _order(stmt: _Statement, order_by: list[OrderKey], base: Any) -> tuple[_Statement, list[Any]]:
    """Outer-join each sort key's table to ``base`` (``runs`` or a join of it) and return
    the ORDER BY terms, tiebreakers last."""
    terms: list[Any] = []
    source: Any = base
    for index, key in enumerate(order_by):
        if key.kind == "attribute":
            value = runs.c[key.key]
            if value.nullable:
                terms.append(case((value.is_(None), 1), else_=0))
        elif key.kind in _KEYED:
            joined = _KEYED[key.kind].alias(f"order_{index}")
            source = source.outerjoin(
                joined, and_(joined.c.run_id == runs.c.run_id, joined.c.key == key.key)
            )
            value = joined.c.value
            absent = joined.c.run_id.is_(None)
            if key.kind == "metric":  # numbers, then NaN, then runs without the metric
                terms.append(case((absent, 2), (joined.c.is_nan == true(), 1), else_=0))
            else:
                terms.append(case((absent, 1), else_=0))
        else:
            raise InvalidParameter(f"runs cannot be ordered by {key.kind} fields", field="order_by")
        terms.append(value.asc() if key.ascending else value.desc())
    if not any(k.kind == "attribute" and k.key == "start_time" for k in order_by):
        terms.append(runs.c.start_time.desc())
    terms.append(runs.c.run_id.asc())
    if source is not runs:
        stmt = stmt.select_from(source)
    return stmt, terms


__all__ = ["VIEW_TYPES", "CaseSensitiveLike", "compare", "keyed_condition", "run_search_statement"]
