"""Run revisions: the statements that bump ``run_revisions`` (see ``tables.py``).

Every write to a run bumps its revision in the write's own transaction, whatever process
writes, so a reader that keeps a rendered run (the server's search answers) can tell by
one integer whether it still holds. The statements are built from the tables once per
dialect name (SQLite and PostgreSQL spell the upsert alike); run them through SQLAlchemy,
or compile them for a raw cursor (``store/statements.py``).
"""

from __future__ import annotations

from functools import cache
from typing import Any

from sqlalchemy import bindparam, literal, select

from modelyard.store.statements import insert_for
from modelyard.tracking.entities import LifecycleStage
from modelyard.tracking.tables import run_revisions, runs

#: Constants are written into the SQL, not bound: the logging path then passes one value.
_ONE = literal(1, run_revisions.c.revision.type, literal_execute=True)


def _bump(stmt: Any) -> Any:
    """``stmt`` (inserting revision 1) adding 1 to the revision a run already has."""
    return stmt.on_conflict_do_update(
        index_elements=list(run_revisions.primary_key),
        set_={"revision": run_revisions.c.revision + _ONE},
    )


def _bump_runs_where(dialect: str, *conditions: Any) -> Any:
    """Bump each run matching ``conditions``."""
    found = select(runs.c.run_id, _ONE).where(*conditions)
    return _bump(insert_for(dialect, run_revisions).from_select(["run_id", "revision"], found))


@cache
def bump_run(dialect: str) -> Any:
    """One run changed (parameter ``run_id``); for a run known to exist."""
    return _bump(insert_for(dialect, run_revisions).values(run_id=bindparam("run_id"), revision=1))


@cache
def bump_active_run(dialect: str) -> Any:
    """One run changed, if it exists and is active (parameter ``run_id``): the logging
    path's check and bump in one statement; no row written means the run is missing or
    deleted."""
    return _bump_runs_where(
        dialect,
        runs.c.run_id == bindparam("run_id"),
        runs.c.lifecycle_stage == literal(LifecycleStage.ACTIVE.value, literal_execute=True),
    )


@cache
def bump_experiment_runs(dialect: str) -> Any:
    """Every run of an experiment in one lifecycle stage changed (parameters
    ``experiment_id``, the experiment's key, and ``lifecycle_stage``).

    Run it *after* the statement that moved the runs, with the stage they are in now:
    PostgreSQL reads each statement afresh, so runs picked by a bump run *before* the move
    can miss one that another transaction committed in between (a run just created) and
    that the move then marks — unbumped, and served stale by every cache that holds it.
    After the move, each run it changed is this transaction's own (locked) row. Every
    other write that changes a run's row and its revision locks the row first too
    (``SqlTrackingStore._require_run(lock=True)``): one order, no deadlock between them.
    """
    return _bump_runs_where(
        dialect,
        runs.c.experiment_id == bindparam("experiment_id"),
        runs.c.lifecycle_stage == bindparam("lifecycle_stage"),
    )


__all__ = ["bump_active_run", "bump_experiment_runs", "bump_run"]
