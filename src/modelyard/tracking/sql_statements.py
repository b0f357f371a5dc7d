"""The SQL tracking store's hot-path statements: run creation and logging.

Built from the tables (``tables.py``) and compiled once per database for its raw DB-API
cursor (``store/statements.py``); parameters are given by column name, so a column added
to a table reaches these statements with no SQL to edit. Every row written is a mapping
of column names: ``run_row`` makes a run's from its ``RunInfo``.
"""

from __future__ import annotations

from dataclasses import fields
from functools import cached_property
from operator import attrgetter
from typing import Any

from sqlalchemy import Table, bindparam, insert, select
from sqlalchemy.engine import Dialect

from modelyard.store.statements import Compiled, ExpandingStatement, insert_for
from modelyard.tracking import revisions
from modelyard.tracking import tables as t
from modelyard.tracking.entities import RunInfo

#: The fields of ``RunInfo``: each is a column of ``runs`` of the same name.
RUN_INFO_FIELDS = tuple(f.name for f in fields(RunInfo))


#: The columns of ``runs`` a new run's entity fills, and those it starts without.
_FROM_INFO = tuple(c.name for c in t.runs.columns if c.name in RUN_INFO_FIELDS)
_NOT_IN_INFO = tuple(c.name for c in t.runs.columns if c.name not in RUN_INFO_FIELDS)
_info_values = attrgetter(*_FROM_INFO)


def run_row(info: RunInfo, experiment_key: int) -> dict[str, Any]:
    """The ``runs`` row of a new run: every column, from the field of ``info`` of the same
    name (values as the drivers take them: plain text, not enums); a column the entity has
    no field for (``deleted_time``) starts empty."""
    row: dict[str, Any] = dict.fromkeys(_NOT_IN_INFO)
    row.update(zip(_FROM_INFO, _info_values(info), strict=True))
    row["experiment_id"] = experiment_key
    return row


def upsert(dialect: str, table: Table, where: Any = None) -> Any:
    """``INSERT`` into ``table`` that, on a primary-key conflict, overwrites every other
    column (when ``where`` holds, if given; ``excluded`` is the row offered)."""
    stmt = insert_for(dialect, table)
    set_ = {c.name: stmt.excluded[c.name] for c in table.columns if not c.primary_key}
    return stmt.on_conflict_do_update(
        index_elements=list(table.primary_key),
        set_=set_,
        where=None if where is None else where(stmt.excluded),
    )


def _newer_point(offered: Any) -> Any:
    """MLflow's "latest" order: highest step, then timestamp, then value."""
    held = t.latest_metrics.c
    return (offered.step > held.step) | (
        (offered.step == held.step)
        & (
            (offered.timestamp > held.timestamp)
            | ((offered.timestamp == held.timestamp) & (offered.value > held.value))
        )
    )


class HotStatements:
    """The statements of run creation and logging for one dialect, each compiled on first
    use (opening a store, or a process that only reads, compiles none)."""

    def __init__(self, dialect: Dialect) -> None:
        self._dialect = dialect

    def _compiled(self, statement: Any) -> Compiled:
        return Compiled(statement, self._dialect)

    @cached_property
    def experiment_state(self) -> Compiled:
        e = t.experiments.c
        return self._compiled(
            select(e.name, e.lifecycle_stage).where(e.experiment_id == bindparam("experiment_id"))
        )

    @cached_property
    def run_stage(self) -> Compiled:
        r = t.runs.c
        return self._compiled(select(r.lifecycle_stage).where(r.run_id == bindparam("run_id")))

    @cached_property
    def insert_run(self) -> Compiled:
        return self._compiled(insert(t.runs))

    @cached_property
    def insert_tag(self) -> Compiled:
        return self._compiled(insert(t.tags))

    @cached_property
    def upsert_tag(self) -> Compiled:
        return self._compiled(upsert(self._dialect.name, t.tags))

    @cached_property
    def insert_param(self) -> Compiled:
        return self._compiled(insert_for(self._dialect.name, t.params).on_conflict_do_nothing())

    @cached_property
    def stored_params(self) -> ExpandingStatement:
        p = t.params.c
        return ExpandingStatement(
            select(p.key, p.value).where(
                p.run_id == bindparam("run_id"), p.key.in_(bindparam("keys", expanding=True))
            ),
            self._dialect,
            "keys",
        )

    @cached_property
    def insert_chunk(self) -> Compiled:
        return self._compiled(insert(t.metric_chunks))

    @cached_property
    def upsert_latest(self) -> Compiled:
        return self._compiled(upsert(self._dialect.name, t.latest_metrics, _newer_point))

    @cached_property
    def bump_active_run(self) -> Compiled:
        return self._compiled(revisions.bump_active_run(self._dialect.name))


__all__ = ["RUN_INFO_FIELDS", "HotStatements", "run_row", "upsert"]
