"""Monitors, evaluated: a deployment's window of served predictions → observations →
rules → alerts → notifications, stored once per window.

``MonitorService.run`` is the one way a window is evaluated, whoever asks (``modelyard
monitor run``, the scheduler, a test):

1. the window is ``[end - window, end)``; one already stored is returned as it is;
2. the monitor's lease (``monitor:<name>`` in ``store.leases``) is taken, so two schedulers
   never evaluate it at once;
3. the reference profiles of every version the deployment served recently are read (built
   now from the training dataset when registration could not: ``references``);
4. the prediction log and the feedback of the window are evaluated (``log_windows``);
5. the rules are applied (``rules``); the evaluation and the alert transitions it causes
   are written in one transaction (``store``) — idempotent by window;
6. transitions worth telling (firing; resolved after firing) go to the monitor's
   notification targets after the commit (``notifications``).

A window that cannot be evaluated at all (the log unreadable, a bad reference) is stored
with status ``error`` and the reason, and changes no alert: "we could not look" is never
recorded as "all clear".
"""

from __future__ import annotations

import builtins
import logging
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any

from modelyard.errors import Conflict, ModelyardError, NotFound
from modelyard.ids import now_ms
from modelyard.monitoring import references
from modelyard.monitoring.notifications import Delivery, notifiers_for, notify
from modelyard.monitoring.observations import Observation
from modelyard.monitoring.rules import evaluate_rules
from modelyard.monitoring.store import Evaluation, Monitor, MonitorStore
from modelyard.store.leases import Leases, default_holder

if TYPE_CHECKING:
    from modelyard.config import Settings
    from modelyard.monitoring.alerts import AlertTransition
    from modelyard.monitoring.log_windows import WindowResult
    from modelyard.monitoring.profiles import ReferenceProfile
    from modelyard.registry.client import RegistryClient
    from modelyard.serving.deployments import DeploymentService

log = logging.getLogger(__name__)

#: How long a lease lasts before another scheduler may take the monitor over (a window
#: of 10M rows evaluates in well under this; a crashed scheduler frees it after it).
LEASE_TTL_S = 900.0
#: Revisions looked back through for the versions a window may have served.
RECENT_REVISIONS = 20


def lease_name(monitor: str) -> str:
    """The lease a scheduler holds while it evaluates ``monitor``."""
    return f"monitor:{monitor}"


@dataclass
class MonitorRun:
    """What one ``run`` did: the stored evaluation, whether this call wrote it, the alert
    transitions and notification deliveries it caused, and the window it read (None when
    the window was stored before, or could not be read)."""

    evaluation: Evaluation
    created: bool
    transitions: list[AlertTransition] = field(default_factory=list)
    deliveries: list[Delivery] = field(default_factory=list)
    window: WindowResult | None = None


@dataclass
class References:
    """The profiles of the versions a deployment served, by version number."""

    inputs: dict[int, ReferenceProfile] = field(default_factory=dict)
    predictions: dict[int, ReferenceProfile] = field(default_factory=dict)
    #: Why a version has no (or only part of a) reference, by version number.
    missing: dict[int, str] = field(default_factory=dict)

    @property
    def notes(self) -> list[str]:
        return list(self.missing.values())


class MonitorService:
    """Create, list, evaluate and delete monitors over one set of stores."""

    def __init__(
        self,
        registry: RegistryClient,
        deployments: DeploymentService,
        *,
        environ: Mapping[str, str] | None = None,
        holder: str | None = None,
        clock: Any = now_ms,
        lease_ttl_s: float = LEASE_TTL_S,
    ) -> None:
        self.registry = registry
        self.deployments = deployments
        self.db = registry.db
        self.artifacts = registry.artifacts
        self.store = MonitorStore(self.db, clock=clock)
        self.leases = Leases(self.db, clock=clock)
        self.environ = os.environ if environ is None else environ
        self.holder = holder or default_holder()
        self.clock = clock
        self.lease_ttl_s = lease_ttl_s

    @classmethod
    def from_settings(cls, settings: Settings | None = None) -> MonitorService:
        from modelyard.registry.client import RegistryClient
        from modelyard.serving.deployments import DeploymentService

        registry = RegistryClient.from_settings(settings)
        return cls(registry, DeploymentService(registry.db, registry))

    # -- monitors -------------------------------------------------------------------------

    def create(self, name: str, deployment: str, *, schedule: str, rules: str | bytes) -> Monitor:
        """A new monitor of ``deployment`` (which must exist)."""
        return self.store.create(
            name,
            deployment,
            schedule=schedule,
            rules=rules,
            created_by=self.registry.actor.name,
        )

    def get(self, name: str) -> Monitor:
        return self.store.get(name)

    def list(self, deployment: str | None = None) -> builtins.list[Monitor]:
        return self.store.list(deployment=deployment)

    def delete(self, name: str) -> None:
        self.store.delete(name)

    # -- evaluating -----------------------------------------------------------------------

    def run(self, name: str, *, end_ms: int | None = None) -> MonitorRun:
        """Evaluate the window of ``name`` ending at ``end_ms`` (default: now).

        Raises ``Conflict`` when another process holds the monitor's lease."""
        monitor = self.store.get(name)
        end = int(self.clock() if end_ms is None else end_ms)
        start = end - monitor.window_s * 1000
        stored = self.store.get_evaluation(name, start, end)
        if stored is not None:
            return MonitorRun(stored, created=False)
        lease = self.leases.acquire(lease_name(name), self.holder, ttl_s=self.lease_ttl_s)
        if lease is None:
            current = self.leases.current(lease_name(name))
            holder = current.holder if current else "another scheduler"
            raise Conflict(f"monitor {name!r} is being evaluated by {holder}", field="monitor")
        try:
            return self._evaluate(monitor, start, end)
        finally:
            self.leases.release(lease)

    def _evaluate(self, monitor: Monitor, start: int, end: int) -> MonitorRun:
        from modelyard.monitoring.log_windows import evaluate_window

        spec = monitor.spec
        try:
            refs = self.references(monitor.deployment)
            window = evaluate_window(
                self.artifacts,
                self.db,
                monitor.deployment,
                start,
                end,
                reference=refs.inputs or None,
                prediction_reference=refs.predictions or None,
                slices=spec.slice_columns(),
                metrics=spec.metric_names() or None,
                memory_limit=self.registry.settings.monitor_memory_limit,
            )
        except ModelyardError as exc:
            recorded = self.store.record_evaluation(
                monitor.name,
                start,
                end,
                observations=[],
                outcomes=[],
                status="error",
                detail=str(exc),
            )
            return MonitorRun(recorded.evaluation, recorded.created)
        observations = [_with_reason(o, refs) for o in window.observations]
        outcomes = evaluate_rules(spec, observations)
        notes = [*refs.notes, *window.notes]
        recorded = self.store.record_evaluation(
            monitor.name,
            start,
            end,
            observations=observations,
            outcomes=outcomes,
            rows=window.rows,
            drift=window.input_drift.to_dict() if window.input_drift is not None else None,
            detail="; ".join(notes) or None,
        )
        deliveries: builtins.list[Delivery] = []
        if recorded.to_notify:
            deliveries = self._notify(monitor, recorded.transitions)
        return MonitorRun(
            recorded.evaluation, recorded.created, recorded.transitions, deliveries, window
        )

    def _notify(
        self, monitor: Monitor, transitions: Sequence[AlertTransition]
    ) -> builtins.list[Delivery]:
        try:
            notifiers = notifiers_for(monitor.spec, self.environ)
        except ModelyardError as exc:  # a secret went missing since the monitor was made
            log.error("monitor %s: alerts not sent: %s", monitor.name, exc)
            return []
        try:
            return notify(
                notifiers, transitions, monitor=monitor.name, deployment=monitor.deployment
            )
        finally:
            for notifier in notifiers:
                notifier.close()

    # -- references -----------------------------------------------------------------------

    def references(self, deployment: str) -> References:
        """The stored profiles of the versions ``deployment`` served in its recent
        revisions (building a missing one from the version's training dataset, once)."""
        found = References()
        versions: dict[int, str] = {}
        for revision in self.deployments.history(deployment, RECENT_REVISIONS):
            policy = revision.policy
            served = [(v.model, v.version) for v in policy.variants]
            served += [(s.model, s.version) for s in policy.shadows]
            for model, version in served:
                versions.setdefault(int(version), model)
        for version, model in versions.items():
            self._load(found, model, version)
        return found

    def _load(self, found: References, model: str, version: int) -> None:
        uri = f"models:/{model}/{version}"
        try:
            inputs = self._profile(model, version, references.INPUTS)
        except NotFound:
            try:
                built = references.ReferenceRecorder(self._data_client()).record(
                    self.registry, self.registry.get_model_version(model, version)
                )
            except (ModelyardError, OSError) as exc:
                found.missing[version] = f"{uri}: no reference profile could be built: {exc}"
                return
            if built is None:
                found.missing[version] = (
                    f"{uri}: no reference profile (its run logged no training dataset version "
                    "of the data room — a feature-store training set keeps no rows; build one "
                    f"with `modelyard monitor reference {uri} --data DATASET`)"
                )
                return
            inputs = built.inputs
        except ModelyardError as exc:
            found.missing[version] = f"{uri}: its reference profile is unusable: {exc}"
            return
        found.inputs[version] = inputs
        try:
            found.predictions[version] = self._profile(model, version, references.PREDICTIONS)
        except ModelyardError as exc:
            found.missing[version] = f"{uri}: no predictions reference profile: {exc}"

    def _profile(self, model: str, version: int, kind: str) -> ReferenceProfile:
        return references.load_reference(self.db, self.artifacts, model, version, kind)

    def _data_client(self) -> Any:
        from modelyard.data.client import DataClient

        return DataClient(self.db, self.artifacts, self.registry.settings)


def _with_reason(observation: Observation, refs: References) -> Observation:
    """An unknown drift observation of a version without a reference, with the reason."""
    version = observation.label("version")
    if observation.value is not None or version is None or not version.isdigit():
        return observation
    why = refs.missing.get(int(version))
    if why is None or observation.name not in ("drift_share", "prediction_drift"):
        return observation
    return replace(observation, reason=why)
