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

import json
import operator
from collections.abc import Callable, Sequence
from typing import Any, cast

from sqlalchemy import (
    Boolean,
    ColumnElement,
    Select,
    and_,
    any_,
    bindparam,
    case,
    exists,
    false,
    func,
    literal,
    literal_column,
    not_,
    null,
    select,
    true,
    union_all,
)
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.sql.expression import FunctionElement
from sqlalchemy.sql.visitors import InternalTraversal

from modelyard.errors import InvalidParameter
from modelyard.store.keyset import SortKey
from modelyard.store.keyset import after as after_position
from modelyard.store.schema import VALUE_INDEX_BYTES
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
VIEW_TYPES: dict[str, tuple[str, ...] | None] = {
    "ACTIVE_ONLY": ("active",),
    "DELETED_ONLY": ("deleted",),
    "ALL": None,
}
VIEW_NAMES = {stages: name for name, stages in VIEW_TYPES.items()}
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
    *,
    after: Sequence[Any] | None = None,
    run_ids: Sequence[str] | DrivingRuns | None = None,
) -> Select[Any]:
    """The runs of ``experiment_ids`` matching every clause, as a ``SELECT run_id`` (and
    ``revision`` when asked), then — when the order is seekable (:func:`keyset_columns`)
    — the run's sort values as ``sort_0``, ``sort_1`` … (what a page token holds).

    ``view_type`` is ``ACTIVE_ONLY``, ``DELETED_ONLY`` or ``ALL`` (by ``lifecycle_stage``);
    ``limit=None`` means no limit. ``after``: only runs sorting after these sort values
    (a seekable order only). ``run_ids``: only these runs (a probe found them; see
    ``search_plan.py``). Several experiments in a seekable order are searched one by
    one, each from its own index range, and the pages merged (``UNION ALL``): a global
    sort of every run of every experiment is what made this 82 ms at 100,000 runs.
    """
    stages = _stages(view_type)
    if offset < 0 or (limit is not None and limit < 0):
        raise InvalidParameter(
            f"offset {offset} and limit {limit} must not be negative", field="max_results"
        )
    seek = keyset_columns(order_by)
    if after is not None and seek is None:
        raise InvalidParameter("this order cannot resume after a position", field="page_token")
    experiments = list(experiment_ids)
    merge = seek is not None and run_ids is None and limit is not None
    if merge and 1 < len(experiments) <= MERGED_EXPERIMENTS:
        assert seek is not None and limit is not None
        return _merged(
            experiments, clauses, stages, order_by, seek, offset, limit, with_revision, after
        )

    # A driven search hides the experiment test from SQLite's index choice
    # (``NotAnIndexKey``): the probe's runs drive it, not a scan of the experiment.
    experiment = (
        NotAnIndexKey(runs.c.experiment_id) if _hides_experiment(run_ids) else runs.c.experiment_id
    )
    stmt, base = _columns(with_revision, seek)
    stmt = stmt.where(experiment.in_(experiments))
    if stages is not None:
        stmt = stmt.where(runs.c.lifecycle_stage.in_(stages))
    if run_ids is not None:
        stmt = stmt.where(_driven_by(run_ids))
    if after is not None and seek is not None:
        stmt = stmt.where(after_position([SortKey(c, a) for c, a in seek], after))
    for clause in sorted(clauses, key=_probe_cost):
        stmt = stmt.where(_condition(clause))
    stmt, ordering = _order(stmt, order_by, base)
    stmt = stmt.order_by(*ordering).offset(offset)
    return stmt if limit is None else stmt.limit(limit)


#: Up to this many experiments are searched one by one and merged (see above).
MERGED_EXPERIMENTS = 64


def keyset_columns(order_by: Sequence[OrderKey]) -> list[tuple[Any, bool]] | None:
    """The columns (and whether ascending) a search in this order is sorted by, tie
    breakers included, when they are all never-null columns of ``runs`` — a page can then
    resume *after* the last run's values; ``None`` otherwise."""
    columns: list[tuple[Any, bool]] = []
    for key in order_by:
        if key.kind != "attribute" or key.key not in runs.c or runs.c[key.key].nullable:
            return None
        columns.append((runs.c[key.key], key.ascending))
    if not any(k.key == "start_time" for k in order_by):
        columns.append((runs.c.start_time, False))
    if not any(k.key == "run_id" for k in order_by):
        columns.append((runs.c.run_id, True))
    return columns


def _columns(with_revision: bool, seek: list[tuple[Any, bool]] | None) -> tuple[_Statement, Any]:
    """The SELECT list (run id, revision, sort values) and the FROM it needs."""
    selected: list[Any] = [runs.c.run_id]
    base: Any = runs
    if with_revision:
        revisions = run_revisions.c
        selected.append(func.coalesce(revisions.revision, 0).label("revision"))
        base = runs.outerjoin(run_revisions, revisions.run_id == runs.c.run_id)
    for index, (column, _) in enumerate(seek or []):
        selected.append(column.label(f"sort_{index}"))
    return select(*selected), base


def _merged(
    experiments: list[int],
    clauses: list[Clause],
    stages: tuple[str, ...] | None,
    order_by: list[OrderKey],
    seek: list[tuple[Any, bool]],
    offset: int,
    limit: int,
    with_revision: bool,
    after: Sequence[Any] | None,
) -> Select[Any]:
    """Each experiment's first ``offset + limit`` runs, merged into one page."""
    branches = []
    for experiment in experiments:
        branch = run_search_statement(
            [experiment],
            clauses,
            VIEW_NAMES[stages],
            order_by,
            0,
            offset + limit,
            with_revision,
            after=after,
        )
        branches.append(select(branch.subquery()))
    merged = union_all(*branches).subquery("merged")
    ordering = []
    for index, (_, ascending) in enumerate(seek):
        column = merged.c[f"sort_{index}"]
        ordering.append(column.asc() if ascending else column.desc())
    outer = select(*merged.c).order_by(*ordering).offset(offset).limit(limit)
    return outer


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


# --- ordered by a metric -------------------------------------------------------------


#: The parts a metric order lists, in this order in both directions.
METRIC_PARTS = ("number", "nan", "absent")


def metric_ordered_statements(
    experiment_ids: list[int],
    clauses: list[Clause],
    view_type: str,
    key: OrderKey,
    limit: int,
    with_revision: bool,
    *,
    after: Sequence[Any] | None = None,
    run_ids: Sequence[str] | DrivingRuns | None = None,
    walk: bool = True,
) -> list[Select[Any]]:
    """A search ordered by one metric as three statements, to be run in turn until the
    page is full: runs with a number (by value), with NaN, without the metric — each by
    ``start_time DESC, run_id`` within. Columns: ``run_id`` (``revision``), then
    ``sort_0`` … ``sort_3`` = part (0, 1, 2), value (``NULL`` but for numbers), start
    time, run id: the position a page token holds (``after``).

    Why not one ``ORDER BY``: the "absent or NaN last" terms are expressions no index
    holds, so every run of the experiment was joined and sorted (0.8 s at 100,000 runs).
    Here the first statement *walks* the metric's index (``key, is_nan, value``) in value
    order and stops at the page's end (``walk``; the experiment test a ``NotAnIndexKey`` so
    the planner does not start from the experiment instead); the later ones run only when
    the page is not yet full. A small experiment in a large store is better read whole
    and sorted: ``walk=False`` leaves the planner to that.
    """
    stages = _stages(view_type)
    m = latest_metrics.alias("order_metric")
    part = int(after[0]) if after is not None else 0
    statements = []
    for number in range(part, len(METRIC_PARTS)):
        stmt, base = _columns(with_revision, None)
        if number < 2:
            base = base.join(
                m,
                and_(
                    m.c.run_id == runs.c.run_id,
                    m.c.key == key.key,
                    m.c.is_nan == (true() if number == 1 else false()),
                ),
            )
            value: Any = m.c.value if number == 0 else null()
        else:
            value = null()
        stmt = stmt.add_columns(
            literal(number).label("sort_0"),
            value.label("sort_1"),
            runs.c.start_time.label("sort_2"),
            runs.c.run_id.label("sort_3"),
        ).select_from(base)
        driven_or_walked = _hides_experiment(run_ids) or (walk and number == 0)
        experiment = (
            NotAnIndexKey(runs.c.experiment_id) if driven_or_walked else runs.c.experiment_id
        )
        stmt = stmt.where(experiment.in_(list(experiment_ids)))
        if stages is not None:
            stmt = stmt.where(runs.c.lifecycle_stage.in_(stages))
        if run_ids is not None:
            stmt = stmt.where(_driven_by(run_ids))
        if number == 2:
            stmt = stmt.where(
                ~exists().where(
                    latest_metrics.c.run_id == runs.c.run_id, latest_metrics.c.key == key.key
                )
            )
        for clause in sorted(clauses, key=_probe_cost):
            stmt = stmt.where(_condition(clause))
        within = [(runs.c.start_time, False), (runs.c.run_id, True)]
        seek = [(m.c.value, key.ascending), *within] if number == 0 else within
        if after is not None and number == part:
            position = list(after[1:]) if number == 0 else list(after[2:])
            stmt = stmt.where(after_position([SortKey(c, a) for c, a in seek], position))
        ordering = [column.asc() if ascending else column.desc() for column, ascending in seek]
        statements.append(stmt.order_by(*ordering).limit(limit))
    return statements


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
    #: A condition as written: no ``= 1`` appended on SQLite — with it SQLite could not
    #: search an index by the pattern's literal prefix (``name LIKE 'model-0004%'`` read
    #: all 100,000 registered models; ``ValueIn`` likewise).
    _is_implicitly_boolean = True

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


def _driven_by(run_ids: Sequence[str] | DrivingRuns) -> ColumnElement[bool]:
    """Only the runs a probe found (a plain list: each looked up)."""
    if not isinstance(run_ids, DrivingRuns):
        return runs.c.run_id.in_(list(run_ids))
    if run_ids.as_array:
        ids = func.string_to_array(bindparam(None, ",".join(run_ids.ids), unique=True), ",")
        if run_ids.look_up:
            return runs.c.run_id.in_(select(func.unnest(ids)).scalar_subquery())
        return runs.c.run_id == any_(ids)
    # SQLite: one JSON array, read as a table (its IN subquery becomes an ephemeral index).
    listed = func.json_each(bindparam(None, json.dumps(run_ids.ids), unique=True))
    members = select(literal_column("value")).select_from(listed).scalar_subquery()
    column = runs.c.run_id if run_ids.look_up else NotAnIndexKey(runs.c.run_id)
    return column.in_(members)


def _hides_experiment(run_ids: Sequence[str] | DrivingRuns | None) -> bool:
    """Whether the driving runs are looked up, so the experiment must not drive."""
    if run_ids is None:
        return False
    return not isinstance(run_ids, DrivingRuns) or run_ids.look_up


class DrivingRuns:
    """The runs a probe found, which a search is driven by, in one of two shapes chosen
    here by their count rather than by a planner's costs (PostgreSQL's, with its default
    ``random_page_cost``, walked 95,000 index entries for 1,000 runs, 14 ms, instead of
    looking them up):

    * ``look_up`` — a few runs, each looked up by primary key, then sorted;
    * otherwise the experiment's start-time index is walked in the page's order and a run
      kept when it is one of them: a hash (PostgreSQL) or an ephemeral index (SQLite) of
      the ids — ~4 ms for 10,000 runs at a million, where looking each up took 60 ms and
      testing each walked run's params 300 ms.

    The ids are bound as one value — an ``IN`` list of 10,000 bound parameters costs
    more to send and compile than to answer: on SQLite a JSON array (``json_each``); with
    ``as_array`` (PostgreSQL) a comma-joined string the statement splits
    (``string_to_array``), whose array the planner sees in a custom plan
    (``plan_cache_mode``), so it knows how many runs there are.
    """

    def __init__(self, ids: Sequence[str], *, look_up: bool, as_array: bool) -> None:
        self.ids = list(ids)
        self.look_up = look_up
        self.as_array = as_array

    def __len__(self) -> int:
        return len(self.ids)


# --- planner hints --------------------------------------------------------------------


class NotAnIndexKey(FunctionElement[Any]):
    """A column SQLite must not start from: ``+column`` there (SQLite picks the index of
    an equality on its own, so the probe's runs or the metric's index would not drive);
    the column itself elsewhere — PostgreSQL costs the alternatives from its statistics,
    and ``+ 0`` would only blind its estimate (it then took the experiment for 0.5 % of the
    runs and sorted them all: 0.4 s at 100,000 runs)."""

    inherit_cache = True
    name = "not_an_index_key"

    def __init__(self, column: Any) -> None:
        super().__init__(column)
        self.type = column.type


@compiles(NotAnIndexKey)
def _column_itself(element: NotAnIndexKey, compiler: SQLCompiler, **kw: Any) -> str:
    return compiler.process(next(iter(element.clauses)), **kw)


@compiles(NotAnIndexKey, "sqlite")
def _column_plus(element: NotAnIndexKey, compiler: SQLCompiler, **kw: Any) -> str:
    # SQLite's documented way to disqualify a term from an index: the unary ``+`` (a
    # no-op on any value, text included — ``+ 0`` would make a text id a number).
    return f"+{compiler.process(next(iter(element.clauses)), **kw)}"


# --- a value probe -----------------------------------------------------------------


class ValueIn(FunctionElement[bool]):
    """``value IN (…)`` on a ``(…, key, value)`` table, written so that table's value index
    answers it alone (``store.schema.value_index``). On PostgreSQL that index holds values
    of at most ``VALUE_INDEX_BYTES`` whole (only for rows that short: the test says so, so
    the partial index applies) and longer ones by their digest; a list holding both kinds
    tests each against its own index."""

    type = Boolean()
    inherit_cache = True
    name = "value_in"
    #: A condition as written, not a boolean value: no ``= 1`` appended on SQLite (which
    #: would hide the column from the index).
    _is_implicitly_boolean = True
    #: How many of the values (the first ones) fit the whole-value index: part of the
    #: statement's shape, so of its cache key.
    _traverse_internals = [
        *FunctionElement._traverse_internals,
        ("short", InternalTraversal.dp_plain_obj),
    ]

    def __init__(self, column: Any, values: Sequence[str]) -> None:
        fits = [v for v in values if len(v.encode()) <= VALUE_INDEX_BYTES]
        longer = [v for v in values if len(v.encode()) > VALUE_INDEX_BYTES]
        self.short = len(fits)
        super().__init__(column, *(bindparam(None, v, unique=True) for v in fits + longer))


@compiles(ValueIn)
def _value_in_default(element: ValueIn, compiler: SQLCompiler, **kw: Any) -> str:
    column, *values = (compiler.process(c, **kw) for c in element.clauses)
    return f"({column} IN ({', '.join(values)}))"


@compiles(ValueIn, "postgresql")
def _value_in_postgresql(element: ValueIn, compiler: SQLCompiler, **kw: Any) -> str:
    column, *values = (compiler.process(c, **kw) for c in element.clauses)
    fits, longer = values[: element.short], values[element.short :]
    tests = []
    if fits:
        tests.append(
            f"({column} IN ({', '.join(fits)}) AND octet_length({column}) <= {VALUE_INDEX_BYTES})"
        )
    if longer:
        digests = ", ".join(f"md5({value})" for value in longer)
        tests.append(
            f"(md5({column}) IN ({digests}) AND {column} IN ({', '.join(longer)}) "
            f"AND NOT (octet_length({column}) <= {VALUE_INDEX_BYTES}))"
        )
    return f"({' OR '.join(tests)})" if tests else "(1 = 0)"


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


__all__ = [
    "VIEW_TYPES",
    "CaseSensitiveLike",
    "ValueIn",
    "compare",
    "keyed_condition",
    "keyset_columns",
    "run_search_statement",
]
