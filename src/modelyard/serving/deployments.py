"""Deployments: named endpoints whose revisions hold a traffic policy, with the rules for
changing them.

Every change appends a revision (never edits one), moves ``current_revision`` and appends
an audit event, in one transaction — so the audit trail and what data planes serve can
never disagree. Changes:

* ``create``: one version at 100 %;
* ``switch`` (blue-green): the other version takes 100 % at once; the previous one stays
  loaded at 0 % so ``switch`` again (or ``rollback``) is instant;
* ``canary``: the candidate's share follows a stepped schedule; data planes roll it back
  automatically when the judge finds it worse (``rollback(expected_revision=…)``);
* ``shadow``: versions that get mirrored copies of requests and never answer;
* ``ab``: a sticky split by a hash of a request key;
* ``promote``: a candidate (canary, or the A/B winner) becomes the primary;
* ``rollback``: back to the policy before the last change (or a named revision).

Admission: a version may serve users in an environment that ``requires`` another only
after it served there (production ← staging), and in a ``protected`` environment only when
the registry's promotion policy allows it (approvals, quality gate). The refusal names the
missing condition. Shadows are exempt: they never answer users.

>>> deploy = DeploymentService.from_settings(settings)                 # doctest: +SKIP
>>> deploy.create("web-staging", "models:/churn/3", environment="staging")  # doctest: +SKIP
>>> deploy.create("web", "models:/churn/3", environment="production")  # doctest: +SKIP
>>> deploy.canary("web", "models:/churn/4", steps=[5, 25, 50, 100])   # doctest: +SKIP
"""

from __future__ import annotations

import builtins
import json
import secrets
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, func, select, update

from modelyard.config import Settings, load_settings
from modelyard.errors import AlreadyExists, InvalidParameter, InvalidState, NotFound
from modelyard.ids import now_ms
from modelyard.registry import audit
from modelyard.registry.client import RegistryClient
from modelyard.registry.entities import Actor, ModelVersion
from modelyard.registry.uris import ModelRef, check_model_name, parse_model_uri
from modelyard.serving.environments import Environment, Environments, admit
from modelyard.serving.policy import (
    DEFAULT_CANARY_INTERVAL_S,
    DEFAULT_CANARY_STEPS,
    CanarySchedule,
    ContractHook,
    RollbackRules,
    Shadow,
    TrafficPolicy,
    Variant,
    check_steps,
)
from modelyard.serving.tables import deployment_revisions, deployments
from modelyard.store.engine import Database
from modelyard.store.lineage import node, record_edges

#: Who the data plane acts as when it rolls back or completes a canary on its own.
AUTOMATIC_ACTOR = Actor("modelyard-canary")


@dataclass(frozen=True, slots=True)
class Revision:
    deployment: str
    revision: int
    action: str
    policy: TrafficPolicy
    reason: str | None
    restores: int | None
    created_by: str
    created_at: int


@dataclass(frozen=True, slots=True)
class Deployment:
    name: str
    environment: str
    current_revision: int
    policy: TrafficPolicy
    description: str | None
    created_by: str
    created_at: int
    updated_at: int


def check_deployment_name(name: object) -> str:
    """Deployment names appear in URLs, metric labels and Kubernetes object names: lower-case
    letters, digits and '-' (at most 63, starting with a letter), as DNS labels demand."""
    ok = (
        isinstance(name, str)
        and 0 < len(name) <= 63
        and name[0].isalpha()
        and all(ch.islower() or ch.isdigit() or ch == "-" for ch in name)
        and not name.endswith("-")
    )
    if not ok:
        raise InvalidParameter(
            f"deployment name {name!r} is invalid: use 1-63 lower-case letters, digits and "
            "'-', starting with a letter (it becomes a Kubernetes object name)",
            field="name",
        )
    return str(name)


class DeploymentService:
    """The deployment rules over one metadata database and registry."""

    def __init__(
        self,
        db: Database,
        registry: RegistryClient,
        *,
        actor: Actor | None = None,
        clock: Callable[[], int] = now_ms,
    ) -> None:
        self.db = db
        self.registry = registry
        self.actor = actor or registry.actor
        self.clock = clock
        self.environments = Environments(db, clock)

    @classmethod
    def from_settings(cls, settings: Settings | None = None) -> DeploymentService:
        settings = settings or load_settings()
        registry = RegistryClient.from_settings(settings)
        return cls(registry.db, registry)

    def as_actor(self, actor: Actor) -> DeploymentService:
        return DeploymentService(
            self.db, self.registry.as_actor(actor), actor=actor, clock=self.clock
        )

    # -- environments -------------------------------------------------------------------

    def _ensure_defaults(self) -> None:
        self.environments.ensure_defaults()

    def create_environment(
        self,
        name: str,
        *,
        requires: str | None = None,
        protected: bool = False,
        description: str | None = None,
    ) -> Environment:
        """A new environment (``canary-eu``, ``qa``…); ``requires`` names the one before it."""
        check_deployment_name(name)
        return self.environments.create(
            name, requires=requires, protected=protected, description=description
        )

    def get_environment(self, name: str) -> Environment:
        return self.environments.get(name)

    def list_environments(self) -> list[Environment]:
        return self.environments.list()

    def _environment(self, conn: Connection, name: str) -> Environment:
        return Environments.get_in(conn, name)

    # -- reading ------------------------------------------------------------------------

    def get(self, name: str) -> Deployment:
        with self.db.read() as conn:
            return self._deployment(conn, name)

    def list(self) -> list[Deployment]:
        with self.db.read() as conn:
            names = conn.execute(select(deployments.c.name).order_by("name")).scalars().all()
            return [self._deployment(conn, n) for n in names]

    def current_revision(self, name: str) -> int:
        """The revision number in force: one indexed read, what data planes poll."""
        with self.db.read() as conn:
            value = conn.execute(
                select(deployments.c.current_revision).where(deployments.c.name == name)
            ).scalar()
        if value is None:
            raise NotFound(f"no deployment {name!r}", field="deployment")
        return int(value)

    def history(self, name: str, limit: int | None = None) -> builtins.list[Revision]:
        """Revisions, newest first."""
        c = deployment_revisions.c
        query = select(deployment_revisions).where(c.deployment == name).order_by(c.revision.desc())
        if limit:
            query = query.limit(limit)
        with self.db.read() as conn:
            self._deployment(conn, name)
            return [_revision(row) for row in conn.execute(query)]

    def get_revision(self, name: str, revision: int) -> Revision:
        c = deployment_revisions.c
        with self.db.read() as conn:
            row = conn.execute(
                select(deployment_revisions).where(c.deployment == name, c.revision == revision)
            ).first()
        if row is None:
            raise NotFound(f"deployment {name!r} has no revision {revision}", field="revision")
        return _revision(row)

    def _deployment(self, conn: Connection, name: str) -> Deployment:
        row = conn.execute(select(deployments).where(deployments.c.name == name)).first()
        if row is None:
            raise NotFound(
                f"no deployment {name!r}; create it with `modelyard deploy create {name} "
                "models:/NAME/VERSION`",
                field="deployment",
            )
        c = deployment_revisions.c
        policy = conn.execute(
            select(c.policy).where(c.deployment == name, c.revision == row.current_revision)
        ).scalar_one()
        return Deployment(
            row.name,
            row.environment,
            int(row.current_revision),
            TrafficPolicy.from_dict(json.loads(policy)),
            row.description,
            row.created_by,
            int(row.created_at),
            int(row.updated_at),
        )

    # -- changes ------------------------------------------------------------------------

    def create(
        self,
        name: str,
        model_uri: str,
        *,
        environment: str = "staging",
        description: str | None = None,
    ) -> Deployment:
        """A new deployment serving ``model_uri`` (``models:/name/3`` or ``@alias``, resolved
        now: a deployment pins versions; moving an alias later does not move it)."""
        check_deployment_name(name)
        version = self._version(model_uri)
        self._ensure_defaults()
        policy = TrafficPolicy.single(version.name, version.version)
        now = self.clock()
        with self.db.write() as conn:
            env = self._environment(conn, environment)
            if conn.execute(select(deployments.c.name).where(deployments.c.name == name)).first():
                raise AlreadyExists(
                    f"deployment {name!r} already exists; change it with `modelyard deploy "
                    f"switch|canary|ab {name} …`",
                    field="name",
                )
            self._admit(conn, env, [version])
            conn.execute(
                deployments.insert().values(
                    name=name,
                    environment=env.name,
                    current_revision=0,
                    description=description,
                    created_by=self.actor.name,
                    created_at=now,
                    updated_at=now,
                )
            )
            self._append(conn, name, env, None, policy, "create", None)
        return self.get(name)

    def switch(
        self, name: str, model_uri: str | None = None, *, reason: str | None = None
    ) -> Deployment:
        """Blue-green: ``model_uri`` (or, without one, the standby) takes 100 % at once; the
        version it replaces stays loaded at 0 % for an instant switch back."""
        version = self._version(model_uri) if model_uri else None

        def change(conn: Connection, env: Environment, current: TrafficPolicy) -> TrafficPolicy:
            self._refuse_running_experiment(current, "switch")
            active = max(current.variants, key=lambda v: v.weight)
            if version is None:
                standby = [v for v in current.variants if v.name != active.name]
                if not standby:
                    raise InvalidState(
                        f"deployment {name!r} has no standby version to switch to; name one: "
                        f"`modelyard deploy switch {name} models:/NAME/VERSION`",
                        field="model_uri",
                    )
                target = standby[0]
            else:
                same = [
                    v
                    for v in current.variants
                    if (v.model, v.version) == (version.name, version.version)
                ]
                if same and same[0].name == active.name:
                    raise InvalidState(
                        f"{version.uri} already takes all traffic of {name!r}", field="model_uri"
                    )
                self._admit(conn, env, [version])
                target = same[0] if same else Variant("new", version.name, version.version, 0)
            # Colours alternate, so "blue"/"green" always name the two sides of a switch.
            colour = "green" if active.name == "blue" else "blue"
            other = "blue" if colour == "green" else "green"
            return current.with_changes(
                variants=(
                    Variant(colour, target.model, target.version, 100.0),
                    Variant(other, active.model, active.version, 0.0),
                ),
                kind="blue_green",
                canary=None,
                sticky_key=None,
            )

        return _required(self._change(name, "switch", change, reason))

    def canary(
        self,
        name: str,
        model_uri: str,
        *,
        steps: Sequence[float] = DEFAULT_CANARY_STEPS,
        interval_s: float = DEFAULT_CANARY_INTERVAL_S,
        rules: RollbackRules | Mapping[str, Any] | None = None,
        auto_promote: bool = False,
        reason: str | None = None,
    ) -> Deployment:
        """Start a canary of ``model_uri``: its share follows ``steps`` (percent), one step
        every ``interval_s`` seconds, and it is rolled back automatically by ``rules``."""
        version = self._version(model_uri)
        clean_steps = check_steps(steps)
        if interval_s <= 0:
            raise InvalidParameter("interval must be positive", field="interval_s")
        judge_rules = rules if isinstance(rules, RollbackRules) else RollbackRules.from_dict(rules)

        def change(conn: Connection, env: Environment, current: TrafficPolicy) -> TrafficPolicy:
            self._refuse_running_experiment(current, "start a canary")
            primary = max(current.variants, key=lambda v: v.weight)
            if (primary.model, primary.version) == (version.name, version.version):
                raise InvalidState(
                    f"{version.uri} is already the primary of {name!r}", field="model_uri"
                )
            self._admit(conn, env, [version])
            schedule = CanarySchedule(
                "primary", "canary", clean_steps, float(interval_s), self.clock(),
                judge_rules, auto_promote,
            )  # fmt: skip
            return current.with_changes(
                variants=(
                    Variant("primary", primary.model, primary.version, 100.0 - clean_steps[0]),
                    Variant("canary", version.name, version.version, clean_steps[0]),
                ),
                kind="canary",
                canary=schedule,
                sticky_key=None,
            )

        return _required(self._change(name, "canary", change, reason))

    def shadow(
        self,
        name: str,
        model_uris: Sequence[str],
        *,
        percent: float = 100.0,
        reason: str | None = None,
    ) -> Deployment:
        """Mirror ``percent`` % of requests to ``model_uris`` (replacing earlier shadows; an
        empty list stops shadowing). Their answers are logged, never returned."""
        versions = [self._version(uri) for uri in model_uris]
        if not 0 < percent <= 100:
            raise InvalidParameter(f"percent must be in (0, 100], got {percent}", field="percent")
        shadows = tuple(
            Shadow(f"shadow-{v.name}-{v.version}".lower(), v.name, v.version, float(percent))
            for v in {(v.name, v.version): v for v in versions}.values()
        )

        def change(conn: Connection, env: Environment, current: TrafficPolicy) -> TrafficPolicy:
            return current.with_changes(shadows=shadows)

        return _required(self._change(name, "shadow", change, reason))

    def ab(
        self,
        name: str,
        model_uri: str,
        *,
        split: float = 50.0,
        key: str = "request_id",
        salt: str | None = None,
        reason: str | None = None,
    ) -> Deployment:
        """An A/B test: ``split`` % of keys (by a hash of request field ``key``) go to
        ``model_uri`` (variant ``b``); the rest stay on the primary (variant ``a``)."""
        version = self._version(model_uri)
        if not 0 < split < 100:
            raise InvalidParameter(f"split must be in (0, 100), got {split}", field="split")
        if not isinstance(key, str) or not key:
            raise InvalidParameter("key must name a request field", field="key")

        def change(conn: Connection, env: Environment, current: TrafficPolicy) -> TrafficPolicy:
            self._refuse_running_experiment(current, "start an A/B test")
            primary = max(current.variants, key=lambda v: v.weight)
            self._admit(conn, env, [version])
            return current.with_changes(
                variants=(
                    Variant("a", primary.model, primary.version, 100.0 - split),
                    Variant("b", version.name, version.version, float(split)),
                ),
                kind="ab",
                canary=None,
                sticky_key=key,
                salt=salt or secrets.token_hex(8),
            )

        return _required(self._change(name, "ab", change, reason))

    def promote(
        self,
        name: str,
        variant: str | None = None,
        *,
        reason: str | None = None,
        expected_revision: int | None = None,
    ) -> Deployment | None:
        """Make ``variant`` (default: the canary, or ``b`` of an A/B test) the primary at
        100 %; the old primary stays loaded as the standby."""

        def change(conn: Connection, env: Environment, current: TrafficPolicy) -> TrafficPolicy:
            if variant is not None:
                winner = current.variant(variant)
            elif current.canary is not None:
                winner = current.variant(current.canary.candidate)
            elif current.kind == "ab":
                winner = current.variant("b")
            else:
                raise InvalidState(
                    f"deployment {name!r} runs no canary or A/B test; name the variant to "
                    f"promote ({', '.join(v.name for v in current.variants)})",
                    field="variant",
                )
            others = [v for v in current.variants if v.name != winner.name]
            loser = max(others, key=lambda v: v.weight) if others else None
            variants = [Variant("primary", winner.model, winner.version, 100.0)]
            if loser is not None:
                variants.append(Variant("previous", loser.model, loser.version, 0.0))
            return current.with_changes(
                variants=tuple(variants), kind="single", canary=None, sticky_key=None
            )

        return self._change(name, "promote", change, reason, expected_revision)

    def rollback(
        self,
        name: str,
        to_revision: int | None = None,
        *,
        reason: str | None = None,
        expected_revision: int | None = None,
    ) -> Deployment | None:
        """Back to the policy before the last change (or revision ``to_revision``), at once.

        ``expected_revision`` makes it conditional (compare-and-set): when the deployment
        has moved on, nothing happens and None is returned — so many replicas' judges can
        all try to roll back one bad canary and exactly one revision is recorded.
        Admission is not re-checked: a rollback restores what was admitted before, and must
        never be refused in an incident.
        """
        with self.db.write() as conn:
            row = self._lock_deployment(conn, name)
            current = int(row.current_revision)
            if expected_revision is not None and current != expected_revision:
                return None
            target = to_revision if to_revision is not None else self._undo_target(conn, name)
            if target is None or target == current:
                raise InvalidState(
                    f"deployment {name!r} has no earlier revision to roll back to", field="revision"
                )
            c = deployment_revisions.c
            policy_json = conn.execute(
                select(c.policy).where(c.deployment == name, c.revision == target)
            ).scalar()
            if policy_json is None:
                raise NotFound(f"deployment {name!r} has no revision {target}", field="revision")
            restored = TrafficPolicy.from_dict(json.loads(policy_json))
            if restored.canary is not None:  # restoring a canary restarts its schedule
                restored = restored.with_changes(canary=_restart(restored.canary, self.clock()))
            env = self._environment(conn, row.environment)
            before = self._policy_at(conn, name, current)
            self._append(conn, name, env, before, restored, "rollback", reason, restores=target)
        return self.get(name)

    def set_contract(
        self,
        name: str,
        contract: Any,
        *,
        mode: str = "reject",
        reason: str | None = None,
    ) -> Deployment:
        """Enforce a data contract on requests (``reject``: 400; ``flag``: serve and log).
        ``contract`` is a ``Contract``, its dict/YAML form, a YAML path, or None to remove."""
        hook = None
        if contract is not None:
            from modelyard.data.contracts import Contract

            if not isinstance(contract, Contract):
                contract = (
                    Contract.from_dict(contract)
                    if isinstance(contract, Mapping)
                    else Contract.from_yaml(contract)
                )
            hook = ContractHook(contract.to_dict(), mode)

        def change(conn: Connection, env: Environment, current: TrafficPolicy) -> TrafficPolicy:
            return current.with_changes(contract=hook)

        return _required(self._change(name, "contract", change, reason))

    # -- machinery ----------------------------------------------------------------------

    def _change(
        self,
        name: str,
        action: str,
        change: Callable[[Connection, Environment, TrafficPolicy], TrafficPolicy],
        reason: str | None,
        expected_revision: int | None = None,
    ) -> Deployment | None:
        with self.db.write() as conn:
            row = self._lock_deployment(conn, name)
            if expected_revision is not None and int(row.current_revision) != expected_revision:
                return None
            env = self._environment(conn, row.environment)
            current = self._policy_at(conn, name, int(row.current_revision))
            new = change(conn, env, current)
            self._append(conn, name, env, current, new, action, reason)
        return self.get(name)

    def _lock_deployment(self, conn: Connection, name: str) -> Any:
        query = select(deployments).where(deployments.c.name == name)
        if not self.db.is_sqlite:
            query = query.with_for_update()
        row = conn.execute(query).first()
        if row is None:
            raise NotFound(
                f"no deployment {name!r}; create it with `modelyard deploy create {name} "
                "models:/NAME/VERSION`",
                field="deployment",
            )
        return row

    def _policy_at(self, conn: Connection, name: str, revision: int) -> TrafficPolicy:
        c = deployment_revisions.c
        text = conn.execute(
            select(c.policy).where(c.deployment == name, c.revision == revision)
        ).scalar_one()
        return TrafficPolicy.from_dict(json.loads(text))

    def _undo_target(self, conn: Connection, name: str) -> int | None:
        """The revision before the last change; rolling back a rollback goes further back."""
        c = deployment_revisions.c
        rows = conn.execute(
            select(c.revision, c.restores).where(c.deployment == name).order_by(c.revision.desc())
        ).all()
        if len(rows) < 2:
            return None
        latest = rows[0]
        if latest.restores is not None:
            return latest.restores - 1 if latest.restores > 1 else None
        return int(rows[1].revision)

    def _append(
        self,
        conn: Connection,
        name: str,
        env: Environment,
        before: TrafficPolicy | None,
        policy: TrafficPolicy,
        action: str,
        reason: str | None,
        *,
        restores: int | None = None,
    ) -> int:
        now = self.clock()
        c = deployment_revisions.c
        last = conn.execute(select(func.max(c.revision)).where(c.deployment == name)).scalar()
        revision = int(last or 0) + 1
        body = policy.to_dict()
        conn.execute(
            deployment_revisions.insert().values(
                deployment=name,
                revision=revision,
                action=action,
                policy=json.dumps(body, sort_keys=True),
                reason=reason,
                restores=restores,
                created_by=self.actor.name,
                created_at=now,
            )
        )
        conn.execute(
            update(deployments)
            .where(deployments.c.name == name)
            .values(current_revision=revision, updated_at=now)
        )
        self.environments.record_served(conn, name, env, policy, revision)
        record_edges(conn, revision_edges(name, revision, policy))
        main = max(policy.variants, key=lambda v: v.weight)
        audit.append(
            conn,
            actor=self.actor.name,
            action=f"deployment.{action}",
            entity=f"deployment:{name}",
            model_name=main.model,
            before=None if before is None else {"policy": before.to_dict()},
            after={
                "revision": revision,
                "environment": env.name,
                "policy": body,
                "reason": reason,
                "restores": restores,
            },
        )
        return revision

    def _admit(self, conn: Connection, env: Environment, versions: Sequence[ModelVersion]) -> None:
        admit(conn, env, versions, self.registry, self.actor)

    def _version(self, model_uri: str) -> ModelVersion:
        """The registry version ``model_uri`` names now (deployments pin versions)."""
        ref = parse_model_uri(model_uri)
        if not isinstance(ref, ModelRef):
            raise InvalidParameter(
                f"deployments serve registered versions; register {model_uri!r} first "
                "(`modelyard models register URI NAME`) and use models:/NAME/VERSION",
                field="model_uri",
            )
        check_model_name(ref.name)
        version = self.registry.resolve(model_uri).version
        assert version is not None
        return version

    @staticmethod
    def _refuse_running_experiment(current: TrafficPolicy, what: str) -> None:
        if current.canary is not None or current.kind == "ab":
            running = "a canary" if current.canary is not None else "an A/B test"
            raise InvalidState(
                f"cannot {what} while {running} is running: `modelyard deploy promote` or "
                "`modelyard deploy rollback` it first",
                field="policy",
            )


def revision_edges(name: str, revision: int, policy: TrafficPolicy) -> list[tuple[str, str, str]]:
    """The lineage of a revision: each version it routes users to (``serves``, even at 0 %:
    it stays loaded) or mirrors requests to (``shadows``), and the deployment it belongs to."""
    rev = node("deployment_revision", name, str(revision))
    edges = [(node("model", v.model, str(v.version)), rev, "serves") for v in policy.variants]
    edges += [(node("model", s.model, str(s.version)), rev, "shadows") for s in policy.shadows]
    return [*edges, (rev, node("deployment", name), "revision_of")]


def _required(deployment: Deployment | None) -> Deployment:
    assert deployment is not None  # only a compare-and-set change may come back empty
    return deployment


def _restart(schedule: CanarySchedule, now: int) -> CanarySchedule:
    from dataclasses import replace

    return replace(schedule, started_at_ms=now)


def _revision(row: Any) -> Revision:
    return Revision(
        row.deployment,
        int(row.revision),
        row.action,
        TrafficPolicy.from_dict(json.loads(row.policy)),
        row.reason,
        row.restores,
        row.created_by,
        int(row.created_at),
    )
