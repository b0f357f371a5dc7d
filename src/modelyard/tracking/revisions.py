"""Run revisions: the statements that bump ``run_revisions`` (see ``tables.py``).

Every write to a run bumps its revision in the write's own transaction, whatever process
writes, so a reader that keeps a rendered run (the server's search answers) can tell by
one integer whether it still holds. The same SQL runs on SQLite and PostgreSQL; ``?`` is
turned into the driver's style by ``Database.sql``.
"""

from __future__ import annotations

from modelyard.tracking.entities import LifecycleStage

_BUMP = "ON CONFLICT (run_id) DO UPDATE SET revision = run_revisions.revision + 1"

#: One run changed (parameter: its id).
BUMP_RUN = f"INSERT INTO run_revisions (run_id, revision) VALUES (?, 1) {_BUMP}"

#: One run changed, if it exists and is active (parameter: its id): the logging path's
#: check and bump in one statement; no row written means the run is missing or deleted.
BUMP_ACTIVE_RUN = (
    "INSERT INTO run_revisions (run_id, revision) SELECT run_id, 1 FROM runs "
    f"WHERE run_id = ? AND lifecycle_stage = '{LifecycleStage.ACTIVE.value}' {_BUMP}"
)

#: Every run of an experiment in one lifecycle stage changed (parameters: the
#: experiment's key, the stage).
BUMP_EXPERIMENT_RUNS = (
    "INSERT INTO run_revisions (run_id, revision) SELECT run_id, 1 FROM runs "
    f"WHERE experiment_id = ? AND lifecycle_stage = ? {_BUMP}"
)

__all__ = ["BUMP_ACTIVE_RUN", "BUMP_EXPERIMENT_RUNS", "BUMP_RUN"]
