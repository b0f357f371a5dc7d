"""Monitors, their evaluations and alerts, and reference profile rows, in the metadata store.

``MonitorStore`` is the monitoring room's one way in and out of its tables (a monitor's
lease is ``monitor:<name>`` in ``store.leases``). Writing an evaluation is idempotent by
window: the row and the alert transitions it causes are written in one transaction, and a window
already written is returned as it is, with no transitions — so a retried or raced
evaluation never notifies twice.

>>> store = MonitorStore(db)                                                # doctest: +SKIP
>>> store.create("web-drift", "web", schedule="*/15 * * * *", rules=open("rules.yaml").read(),
...              created_by="ana")                                          # doctest: +SKIP
>>> done = store.record_evaluation("web-drift", start, end, observations=obs,
...                                outcomes=evaluate_rules(spec, obs))      # doctest: +SKIP
>>> [t for t in done.transitions if t.notify]                               # doctest: +SKIP
"""

from __future__ import annotations

import builtins
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, delete, func, select, update
from sqlalchemy.exc import IntegrityError

from modelyard import json_codec
from modelyard.errors import AlreadyExists, Conflict, InvalidParameter, NotFound
from modelyard.ids import now_ms
from modelyard.monitoring.alerts import (
    OPEN_STATES,
    Alert,
    AlertEvent,
    AlertTransition,
    advance_alerts,
    list_alert_events,
    list_alerts,
)
from modelyard.monitoring.observations import Observation
from modelyard.monitoring.rules import MonitorSpec, RuleOutcome, parse_rules
from modelyard.monitoring.schedule import CronSchedule, parse_cron
from modelyard.monitoring.tables import monitor_evaluations, monitors, reference_profiles
from modelyard.serving.tables import deployments
from modelyard.store.engine import Database
from modelyard.store.lineage import node, record_edges
from modelyard.store.statements import insert_for

__all__ = [
    "EVALUATION_STATUSES",
    "PROFILE_KINDS",
    "Evaluation",
    "Monitor",
    "MonitorStore",
    "RecordedEvaluation",
    "ReferenceProfileRecord",
    "check_monitor_name",
    "evaluation_status",
]

EVALUATION_STATUSES = ("ok", "breached", "unknown", "error")
PROFILE_KINDS = ("input", "predictions")
_NAME = re.compile(r"[a-z0-9][a-z0-9._-]{0,127}")
_DIGEST = re.compile(r"[0-9a-f]{64}")


def check_monitor_name(name: object) -> str:
    """Monitor names appear in URLs, metric labels and file names: 1-128 lower-case
    letters, digits, '.', '_' and '-', starting with a letter or digit."""
    if not isinstance(name, str) or not _NAME.fullmatch(name):
        raise InvalidParameter(
            f"monitor name {name!r} is invalid: use 1-128 lower-case letters, digits, '.', "
            "'_' and '-', starting with a letter or digit",
            field="name",
        )
    return name


@dataclass(frozen=True, slots=True)
class Monitor:
    name: str
    deployment: str
    schedule: str
    rules: str  # the spec as written
    spec: MonitorSpec
    window_s: int
    enabled: bool
    created_by: str
    created_at: int
    updated_at: int
    last_run_at: int | None

    @property
    def cron(self) -> CronSchedule:
        return parse_cron(self.schedule)

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "deployment": self.deployment,
            "schedule": self.schedule,
            "rules": self.rules,
            "window_s": self.window_s,
            "enabled": self.enabled,
            "created_by": self.created_by,
            "created_at": self.created_at,
            "updated_at": self.updated_at,
            "last_run_at": self.last_run_at,
        }


@dataclass(frozen=True, slots=True)
class Evaluation:
    """One evaluated window (``window_start`` inclusive, ``window_end`` exclusive, ms)."""

    id: int
    monitor: str
    deployment: str
    window_start: int
    window_end: int
    status: str
    rows: int | None
    observations: list[Observation]
    outcomes: list[dict[str, Any]]  # RuleOutcome.to_dict() of each
    drift: dict[str, Any] | None
    detail: str | None
    created_at: int

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "monitor": self.monitor,
            "deployment": self.deployment,
            "window_start": self.window_start,
            "window_end": self.window_end,
            "status": self.status,
            "rows": self.rows,
            "observations": [o.to_dict() for o in self.observations],
            "outcomes": self.outcomes,
            "drift": self.drift,
            "detail": self.detail,
            "created_at": self.created_at,
        }


@dataclass(frozen=True, slots=True)
class RecordedEvaluation:
    """What ``record_evaluation`` did: the stored row, whether this call wrote it, and
    the alert transitions it caused (none when the window was already written)."""

    evaluation: Evaluation
    created: bool
    transitions: list[AlertTransition]

    @property
    def to_notify(self) -> list[AlertTransition]:
        return [t for t in self.transitions if t.notify]


@dataclass(frozen=True, slots=True)
class ReferenceProfileRecord:
    """Where a model version's stored reference profile is."""

    model_name: str
    model_version: int
    kind: str  # input | predictions
    artifact_path: str
    digest: str  # sha256 of the profile's bytes
    rows: int
    source: str | None
    created_at: int


def evaluation_status(outcomes: Sequence[RuleOutcome]) -> str:
    """``breached`` when any rule breached, else ``unknown`` when any could not be
    decided, else ``ok``."""
    if any(o.breached is True for o in outcomes):
        return "breached"
    if any(o.breached is None for o in outcomes):
        return "unknown"
    return "ok"


def _monitor(row: Any) -> Monitor:
    return Monitor(
        name=row.name,
        deployment=row.deployment,
        schedule=row.schedule,
        rules=row.rules,
        spec=parse_rules(row.rules),
        window_s=row.window_s,
        enabled=bool(row.enabled),
        created_by=row.created_by,
        created_at=row.created_at,
        updated_at=row.updated_at,
        last_run_at=row.last_run_at,
    )


def _evaluation(row: Any) -> Evaluation:
    return Evaluation(
        id=row.id,
        monitor=row.monitor,
        deployment=row.deployment,
        window_start=row.window_start,
        window_end=row.window_end,
        status=row.status,
        rows=row.rows,
        observations=[Observation.from_dict(o) for o in json_codec.loads_int64(row.observations)],
        outcomes=json_codec.loads_int64(row.outcomes),
        drift=None if row.drift is None else json_codec.loads_int64(row.drift),
        detail=row.detail,
        created_at=row.created_at,
    )


def _evaluations_query() -> Any:
    """Evaluations with their monitor's deployment."""
    return select(monitor_evaluations, monitors.c.deployment).join(
        monitors, monitors.c.name == monitor_evaluations.c.monitor
    )


def _profile(row: Any) -> ReferenceProfileRecord:
    return ReferenceProfileRecord(
        model_name=row.model_name,
        model_version=row.model_version,
        kind=row.kind,
        artifact_path=row.artifact_path,
        digest=row.digest,
        rows=row.rows,
        source=row.source,
        created_at=row.created_at,
    )


def _text(rules: str | bytes) -> str:
    if isinstance(rules, bytes):
        try:
            return rules.decode("utf-8")
        except UnicodeDecodeError:
            raise InvalidParameter("the rules file is not UTF-8 text", field="rules") from None
    if not isinstance(rules, str):
        raise InvalidParameter(
            f"rules must be the spec's text (YAML or JSON), got {type(rules).__name__}",
            field="rules",
        )
    return rules


class MonitorStore:
    """The monitoring room's tables over one metadata database."""

    def __init__(self, db: Database, *, clock: Callable[[], int] = now_ms) -> None:
        self.db = db
        self.clock = clock

    # -- monitors ----------------------------------------------------------------------

    def create(
        self,
        name: str,
        deployment: str,
        *,
        schedule: str,
        rules: str | bytes,
        created_by: str,
        enabled: bool = True,
    ) -> Monitor:
        """A new monitor of ``deployment``; the schedule and rules are checked first."""
        check_monitor_name(name)
        text = _text(rules)
        spec = parse_rules(text)
        cron = parse_cron(schedule)
        now = self.clock()
        row: dict[str, Any] = {
            "name": name,
            "deployment": deployment,
            "schedule": cron.text,
            "rules": text,
            "window_s": int(spec.window.total_seconds()),
            "enabled": bool(enabled),
            "created_by": created_by,
            "created_at": now,
            "updated_at": now,
            "last_run_at": None,
        }
        try:
            with self.db.write() as conn:
                self._deployment_exists(conn, deployment)
                if self._row(conn, name) is not None:
                    raise AlreadyExists(f"monitor {name!r} already exists", field="name")
                conn.execute(monitors.insert().values(**row))
                record_edges(
                    conn, [(node("deployment", deployment), node("monitor", name), "monitors")]
                )
        except IntegrityError as exc:  # created by someone else meanwhile
            raise AlreadyExists(f"monitor {name!r} already exists", field="name") from exc
        return Monitor(spec=spec, **row)

    @staticmethod
    def _deployment_exists(conn: Connection, deployment: str) -> None:
        found = conn.execute(
            select(deployments.c.name).where(deployments.c.name == deployment)
        ).first()
        if found is None:
            raise NotFound(f"no deployment {deployment!r}", field="deployment")

    @staticmethod
    def _row(conn: Connection, name: str) -> Any:
        return conn.execute(select(monitors).where(monitors.c.name == name)).first()

    def _get(self, conn: Connection, name: str) -> Monitor:
        row = self._row(conn, name)
        if row is None:
            raise NotFound(f"no monitor {name!r}", field="monitor")
        return _monitor(row)

    def get(self, name: str) -> Monitor:
        with self.db.read() as conn:
            return self._get(conn, name)

    def list(self, *, deployment: str | None = None, enabled: bool | None = None) -> list[Monitor]:
        """Monitors by name; of one deployment, or only the enabled ones, when asked."""
        c = monitors.c
        query = select(monitors).order_by(c.name)
        if deployment is not None:
            query = query.where(c.deployment == deployment)
        if enabled is not None:
            query = query.where(c.enabled == enabled)
        with self.db.read() as conn:
            return [_monitor(row) for row in conn.execute(query)]

    def update(
        self,
        name: str,
        *,
        schedule: str | None = None,
        rules: str | bytes | None = None,
        enabled: bool | None = None,
    ) -> Monitor:
        """Change a monitor's schedule, rules or enabled flag (checked as on create).
        Open alerts of rules that are gone resolve at the next evaluation."""
        changes: dict[str, Any] = {}
        if schedule is not None:
            changes["schedule"] = parse_cron(schedule).text
        if rules is not None:
            text = _text(rules)
            changes["rules"] = text
            changes["window_s"] = int(parse_rules(text).window.total_seconds())
        if enabled is not None:
            changes["enabled"] = bool(enabled)
        with self.db.write() as conn:
            self._get(conn, name)
            if changes:
                changes["updated_at"] = self.clock()
                conn.execute(update(monitors).where(monitors.c.name == name).values(**changes))
            return self._get(conn, name)

    def delete(self, name: str) -> None:
        """Remove a monitor with its evaluations and alerts."""
        with self.db.write() as conn:
            gone = conn.execute(delete(monitors).where(monitors.c.name == name)).rowcount
        if gone != 1:
            raise NotFound(f"no monitor {name!r}", field="monitor")

    def mark_run(self, name: str, at: int | None = None) -> None:
        """Record that the scheduler ran the monitor (even when nothing was written)."""
        with self.db.write() as conn:
            changed = conn.execute(
                update(monitors)
                .where(monitors.c.name == name)
                .values(last_run_at=self.clock() if at is None else at)
            ).rowcount
        if changed != 1:
            raise NotFound(f"no monitor {name!r}", field="monitor")

    # -- evaluations -------------------------------------------------------------------

    def record_evaluation(
        self,
        monitor: str,
        window_start: int,
        window_end: int,
        *,
        observations: Sequence[Observation],
        outcomes: Sequence[RuleOutcome],
        status: str | None = None,
        rows: int | None = None,
        drift: Mapping[str, Any] | None = None,
        detail: str | None = None,
        at: int | None = None,
    ) -> RecordedEvaluation:
        """Store one window's evaluation and move the monitor's alerts, in one
        transaction. A window already stored is returned unchanged, with no transitions;
        so is the alert state for a window older than one already stored (a backfill is
        history, while alerts follow the newest data).

        ``status`` defaults to ``evaluation_status(outcomes)``; pass ``"error"`` (with
        ``detail``) when the window could not be evaluated at all.
        """
        if not (isinstance(window_start, int) and isinstance(window_end, int)):
            raise InvalidParameter("window bounds are integer milliseconds", field="window")
        if window_end <= window_start:
            raise InvalidParameter(
                f"the window ends ({window_end}) before it starts ({window_start})",
                field="window",
            )
        status = evaluation_status(outcomes) if status is None else status
        if status not in EVALUATION_STATUSES:
            raise InvalidParameter(
                f"evaluation status {status!r} is not one of {', '.join(EVALUATION_STATUSES)}",
                field="status",
            )
        at = self.clock() if at is None else at
        row = {
            "monitor": monitor,
            "window_start": window_start,
            "window_end": window_end,
            "status": status,
            "rows": rows,
            "observations": json_codec.dumps([o.to_dict() for o in observations]).decode(),
            "outcomes": json_codec.dumps([o.to_dict() for o in outcomes]).decode(),
            "drift": None if drift is None else json_codec.dumps(dict(drift)).decode(),
            "detail": detail,
            "created_at": at,
        }
        c = monitor_evaluations.c
        statement = (
            insert_for(self.db.dialect, monitor_evaluations)
            .values(**row)
            .on_conflict_do_nothing(index_elements=[c.monitor, c.window_start, c.window_end])
            .returning(c.id)  # no row when the window was written before
        )
        try:
            return self._record(statement, monitor, window_start, window_end, outcomes, at)
        except IntegrityError as exc:  # two writers opened the same alert: one transaction lost
            raise Conflict(
                f"another evaluation of monitor {monitor!r} changed its alerts at the same "
                "time (schedulers take the monitor's lease to avoid this); nothing was "
                "written, retry",
                field="monitor",
            ) from exc

    def _record(
        self,
        statement: Any,
        monitor: str,
        window_start: int,
        window_end: int,
        outcomes: Sequence[RuleOutcome],
        at: int,
    ) -> RecordedEvaluation:
        """``record_evaluation``'s transaction: the row, then the alerts it moves."""
        c = monitor_evaluations.c
        with self.db.write() as conn:
            current = self._get(conn, monitor)
            created = conn.execute(statement).first() is not None
            transitions: builtins.list[AlertTransition] = []
            if created and not self._newer_window(conn, monitor, window_end):
                names = {r.name for r in current.spec.rules}
                transitions = advance_alerts(conn, monitor, outcomes, at=at, rules=names)
                opened = [t.alert.id for t in transitions if t.previous is None]
                record_edges(
                    conn,
                    [(node("monitor", monitor), node("alert", str(i)), "raised") for i in opened],
                )
                conn.execute(
                    update(monitors).where(monitors.c.name == monitor).values(last_run_at=at)
                )
            stored = conn.execute(
                _evaluations_query().where(
                    c.monitor == monitor, c.window_start == window_start, c.window_end == window_end
                )
            ).one()
        return RecordedEvaluation(_evaluation(stored), created, transitions)

    @staticmethod
    def _newer_window(conn: Connection, monitor: str, window_end: int) -> bool:
        """Whether a later window is already stored: a backfilled older window is kept
        for the history, but alerts follow the newest data only."""
        c = monitor_evaluations.c
        newer = select(c.id).where(c.monitor == monitor, c.window_end > window_end).limit(1)
        return conn.execute(newer).first() is not None

    def get_evaluation(self, monitor: str, window_start: int, window_end: int) -> Evaluation | None:
        c = monitor_evaluations.c
        with self.db.read() as conn:
            row = conn.execute(
                _evaluations_query().where(
                    c.monitor == monitor, c.window_start == window_start, c.window_end == window_end
                )
            ).first()
        return None if row is None else _evaluation(row)

    def evaluations(
        self,
        monitor: str,
        *,
        since: int | None = None,
        until: int | None = None,
        limit: int | None = None,
    ) -> builtins.list[Evaluation]:
        """A monitor's evaluations in window order (for charts of drift over time): those
        whose window ends after ``since`` and starts before ``until``; the newest
        ``limit`` of them when given."""
        c = monitor_evaluations.c
        query = (
            _evaluations_query()
            .where(c.monitor == monitor)
            .order_by(c.window_end.desc(), c.window_start.desc())
        )
        if since is not None:
            query = query.where(c.window_end > since)
        if until is not None:
            query = query.where(c.window_start < until)
        if limit is not None:
            query = query.limit(limit)
        with self.db.read() as conn:
            self._get(conn, monitor)
            rows = conn.execute(query).all()
        return [_evaluation(row) for row in reversed(rows)]

    def latest_evaluations(self) -> builtins.list[Evaluation]:
        """Each monitor's latest evaluation (by window end), by monitor name: what the
        server's ``/metrics`` gauges show."""
        c = monitor_evaluations.c
        newest = (
            select(c.monitor, func.max(c.window_end).label("window_end"))
            .group_by(c.monitor)
            .subquery()
        )
        query = (
            _evaluations_query()
            .join(newest, (newest.c.monitor == c.monitor) & (newest.c.window_end == c.window_end))
            .order_by(c.monitor, c.window_start)
        )
        with self.db.read() as conn:
            latest = {row.monitor: row for row in conn.execute(query)}  # the last start wins
        return [_evaluation(row) for row in latest.values()]

    # -- alerts ------------------------------------------------------------------------

    def open_alerts(self) -> builtins.list[Alert]:
        """Every monitor's pending and firing alerts, newest first."""
        return self.alerts(open_only=True)

    def alerts(
        self, monitor: str | None = None, *, open_only: bool = False, limit: int | None = None
    ) -> builtins.list[Alert]:
        """Alerts, newest first; only pending and firing ones with ``open_only``."""
        with self.db.read() as conn:
            if monitor is not None:
                self._get(conn, monitor)
            states = OPEN_STATES if open_only else None
            return list_alerts(conn, monitor, states=states, limit=limit)

    def alert_events(
        self, *, alert_id: int | None = None, monitor: str | None = None, limit: int | None = None
    ) -> builtins.list[AlertEvent]:
        """Transitions of an alert or of a monitor's alerts, oldest first."""
        with self.db.read() as conn:
            return list_alert_events(conn, alert_id=alert_id, monitor=monitor, limit=limit)

    # -- reference profiles ------------------------------------------------------------

    def put_reference_profile(
        self,
        model_name: str,
        model_version: int,
        kind: str,
        *,
        artifact_path: str,
        digest: str,
        rows: int,
        source: str | None = None,
        replace: bool = False,
    ) -> ReferenceProfileRecord:
        """Record where a version's profile is stored. A profile is stored once: a second
        one for the same (model, version, kind) raises ``AlreadyExists`` unless
        ``replace`` (profiling again on demand)."""
        if kind not in PROFILE_KINDS:
            raise InvalidParameter(
                f"profile kind {kind!r} is not one of {', '.join(PROFILE_KINDS)}", field="kind"
            )
        if not isinstance(digest, str) or not _DIGEST.fullmatch(digest):
            raise InvalidParameter(
                f"digest {digest!r} is not a sha256 hex digest (64 lower-case hex digits)",
                field="digest",
            )
        if isinstance(rows, bool) or not isinstance(rows, int) or rows < 0:
            raise InvalidParameter(f"rows must be a count (>= 0), got {rows!r}", field="rows")
        row: dict[str, Any] = {
            "model_name": model_name,
            "model_version": model_version,
            "kind": kind,
            "artifact_path": artifact_path,
            "digest": digest,
            "rows": rows,
            "source": source,
            "created_at": self.clock(),
        }
        statement: Any = insert_for(self.db.dialect, reference_profiles).values(**row)
        if replace:
            c = reference_profiles.c
            statement = statement.on_conflict_do_update(
                index_elements=[c.model_name, c.model_version, c.kind],
                set_={k: statement.excluded[k] for k in row if k not in ("model_name", "kind")},
            )
        where = f"{model_name} version {model_version}"
        try:
            with self.db.write() as conn:
                if not replace and self._find_profile(conn, model_name, model_version, kind):
                    raise AlreadyExists(
                        f"a {kind} reference profile of {where} is already stored",
                        field="kind",
                    )
                conn.execute(statement)
        except IntegrityError as exc:
            raise NotFound(f"no model version {where}", field="model_version") from exc
        return ReferenceProfileRecord(**row)

    @staticmethod
    def _find_profile(conn: Connection, model_name: str, model_version: int, kind: str) -> Any:
        c = reference_profiles.c
        return conn.execute(
            select(reference_profiles).where(
                c.model_name == model_name, c.model_version == model_version, c.kind == kind
            )
        ).first()

    def get_reference_profile(
        self, model_name: str, model_version: int, kind: str = "input"
    ) -> ReferenceProfileRecord:
        """The stored profile of a version; ``NotFound`` naming it when there is none."""
        with self.db.read() as conn:
            row = self._find_profile(conn, model_name, model_version, kind)
        if row is None:
            raise NotFound(
                f"no {kind} reference profile of {model_name} version {model_version}: one is "
                "stored when a version is registered from a run with a training dataset, or "
                "when it is profiled on demand",
                field="reference",
            )
        return _profile(row)

    def list_reference_profiles(
        self, model_name: str | None = None
    ) -> builtins.list[ReferenceProfileRecord]:
        c = reference_profiles.c
        query = select(reference_profiles).order_by(c.model_name, c.model_version, c.kind)
        if model_name is not None:
            query = query.where(c.model_name == model_name)
        with self.db.read() as conn:
            return [_profile(row) for row in conn.execute(query)]
