"""The registry store on a SQL database (SQLite by default, PostgreSQL to scale out).

Every write is one transaction that first takes the registry's write lock — ``BEGIN
IMMEDIATE`` on SQLite (``Database.write``), a transaction-scoped advisory lock on
PostgreSQL — then reads the state it depends on, checks the rules, changes the rows and
appends the audit event. Registry writes are rare and small, so one lock for the whole
registry costs nothing measurable and rules out every interleaving (two promotions, an
alias set while its version is deleted, two appends racing for the same audit ``seq``).
The database backs this up with constraints: one Production row per model (a partial
unique index) and aliases that cascade with their version.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import Any

from sqlalchemy import Connection, delete, insert, select, text, update

from modelyard.errors import AlreadyExists, InvalidParameter, InvalidState, NotFound
from modelyard.ids import now_ms
from modelyard.registry import audit
from modelyard.registry import tables as t
from modelyard.registry.entities import (
    ALLOWED_TRANSITIONS,
    READY,
    Actor,
    Approval,
    AuditEvent,
    Decision,
    GateVerdict,
    ModelVersion,
    RegisteredModel,
    Stage,
)
from modelyard.registry.policy import PromotionPolicy
from modelyard.registry.search import (
    MODEL_VERSIONS,
    REGISTERED_MODELS,
    model_versions_search,
    registered_models_search,
)
from modelyard.registry.sql_rows import (
    approvals_of,
    check_max_results,
    latest_verdict,
    model_row,
    models_from_rows,
    version_entity,
    version_row,
    versions_from_rows,
)
from modelyard.registry.store import RegistryStore
from modelyard.registry.uris import check_alias, check_model_name
from modelyard.store.engine import Database
from modelyard.store.keyset import fetch_page
from modelyard.store.lineage import node, record_edges
from modelyard.store.schema import lineage_edges
from modelyard.tracking.entities import Page
from modelyard.tracking.search_filter import parse_filter, parse_order_by

#: Key of the PostgreSQL advisory lock that serialises registry writes.
REGISTRY_LOCK = 7_310_425_992


#: The lineage relation from a run to the version it produced; ``…_unresolved`` when the
#: run id a version names (through the MLflow API) is not a run in this store.
PRODUCED = "produced"
PRODUCED_UNRESOLVED = "produced_unresolved"


def has_resolved_lineage(conn: Connection, name: str, version: int) -> bool:
    """Whether a run known here produced the version (its ``produced`` edge exists)."""
    c = lineage_edges.c
    found = conn.execute(
        select(c.src).where(
            c.dst == _entity(name, version), c.relation == PRODUCED, c.src.like("run:%")
        )
    ).first()
    return found is not None


def _entity(name: str, version: int | None = None) -> str:
    return node("model", name) if version is None else node("model", name, str(version))


def _audit(
    conn: Connection,
    actor: Actor,
    action: str,
    name: str,
    version: int | None = None,
    *,
    before: Mapping[str, Any] | None = None,
    after: Mapping[str, Any] | None = None,
) -> None:
    """Record a change to model ``name`` (or one of its versions) in the audit trail."""
    audit.append(
        conn,
        actor=actor.name,
        action=action,
        entity=_entity(name, version),
        model_name=name,
        before=before,
        after=after,
    )


class SqlRegistryStore(RegistryStore):
    def __init__(self, db: Database) -> None:
        self.db = db

    @contextmanager
    def _writing(self) -> Iterator[Connection]:
        with self.db.write() as conn:
            if not self.db.is_sqlite:
                conn.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": REGISTRY_LOCK})
            yield conn

    # -- rows -----------------------------------------------------------------------------

    def _touch(self, conn: Connection, name: str, version: int | None = None) -> None:
        now = now_ms()
        mc = t.registered_models.c
        conn.execute(
            update(t.registered_models).where(mc.name == name).values(last_updated_time=now)
        )
        if version is not None:
            vc = t.model_versions.c
            conn.execute(
                update(t.model_versions)
                .where(vc.name == name, vc.version == version)
                .values(last_updated_time=now)
            )

    # -- registered models ----------------------------------------------------------------

    def create_registered_model(
        self,
        name: str,
        actor: Actor,
        description: str | None = None,
        tags: Mapping[str, str] | None = None,
    ) -> RegisteredModel:
        check_model_name(name)
        now = now_ms()
        with self._writing() as conn:
            exists = conn.execute(
                select(t.registered_models.c.name).where(t.registered_models.c.name == name)
            ).first()
            if exists is not None:
                raise AlreadyExists(f"Registered Model (name={name}) already exists.", field="name")
            conn.execute(
                insert(t.registered_models).values(
                    name=name,
                    description=description,
                    next_version=1,
                    created_by=actor.name,
                    creation_time=now,
                    last_updated_time=now,
                )
            )
            if tags:
                conn.execute(
                    insert(t.registered_model_tags),
                    [{"name": name, "key": k, "value": v} for k, v in tags.items()],
                )
            after = {"description": description, "tags": dict(tags or {})}
            _audit(conn, actor, "model.create", name, after=after)
            return models_from_rows(conn, [model_row(conn, name)])[0]

    def get_registered_model(self, name: str) -> RegisteredModel:
        with self.db.read() as conn:
            return models_from_rows(conn, [model_row(conn, name)])[0]

    def search_registered_models(
        self,
        filter_string: str | None = None,
        max_results: int = 100,
        page_token: str | None = None,
        order_by: Sequence[str] | None = None,
    ) -> Page[RegisteredModel]:
        check_max_results(max_results)
        clauses = parse_filter(filter_string, REGISTERED_MODELS)
        order = parse_order_by(list(order_by or []), REGISTERED_MODELS)
        with self.db.read() as conn:
            query, keys = registered_models_search(conn, clauses, order)
            rows, token = fetch_page(
                conn, query, keys, "registered_models", page_token, max_results
            )
            return Page(models_from_rows(conn, rows), token)

    def update_registered_model(
        self, name: str, description: str | None, actor: Actor
    ) -> RegisteredModel:
        with self._writing() as conn:
            row = model_row(conn, name)
            if row.description != description:
                conn.execute(
                    update(t.registered_models)
                    .where(t.registered_models.c.name == name)
                    .values(description=description, last_updated_time=now_ms())
                )
                _audit(
                    conn,
                    actor,
                    "model.update",
                    name,
                    before={"description": row.description},
                    after={"description": description},
                )
            return models_from_rows(conn, [model_row(conn, name)])[0]

    def rename_registered_model(self, name: str, new_name: str, actor: Actor) -> RegisteredModel:
        check_model_name(new_name, "new_name")
        with self._writing() as conn:
            model_row(conn, name)
            taken = conn.execute(
                select(t.registered_models.c.name).where(t.registered_models.c.name == new_name)
            ).first()
            if taken is not None:
                raise AlreadyExists(
                    f"Registered Model (name={new_name}) already exists: cannot rename {name!r}",
                    field="new_name",
                )
            conn.execute(
                update(t.registered_models)
                .where(t.registered_models.c.name == name)
                .values(name=new_name, last_updated_time=now_ms())
            )
            _audit(
                conn,
                actor,
                "model.rename",
                new_name,
                before={"name": name},
                after={"name": new_name},
            )
            return models_from_rows(conn, [model_row(conn, new_name)])[0]

    def delete_registered_model(self, name: str, actor: Actor) -> None:
        with self._writing() as conn:
            model = models_from_rows(conn, [model_row(conn, name)])[0]
            versions = conn.execute(
                select(t.model_versions.c.version).where(t.model_versions.c.name == name)
            ).scalars()
            conn.execute(delete(t.registered_models).where(t.registered_models.c.name == name))
            before = {
                "description": model.description,
                "versions": sorted(int(v) for v in versions),
                "aliases": model.aliases,
            }
            _audit(conn, actor, "model.delete", name, before=before)

    def set_registered_model_tag(self, name: str, key: str, value: str, actor: Actor) -> None:
        with self._writing() as conn:
            model_row(conn, name)
            c = t.registered_model_tags.c
            old = conn.execute(select(c.value).where(c.name == name, c.key == key)).scalar()
            if old == value:
                return
            conn.execute(delete(t.registered_model_tags).where(c.name == name, c.key == key))
            conn.execute(insert(t.registered_model_tags).values(name=name, key=key, value=value))
            self._touch(conn, name)
            _audit(conn, actor, "model.tag.set", name, before={key: old}, after={key: value})

    def delete_registered_model_tag(self, name: str, key: str, actor: Actor) -> None:
        with self._writing() as conn:
            model_row(conn, name)
            c = t.registered_model_tags.c
            old = conn.execute(select(c.value).where(c.name == name, c.key == key)).scalar()
            if old is None:
                raise NotFound(f"registered model {name!r} has no tag {key!r}", field="key")
            conn.execute(delete(t.registered_model_tags).where(c.name == name, c.key == key))
            _audit(conn, actor, "model.tag.delete", name, before={key: old})

    # -- versions -------------------------------------------------------------------------

    def create_model_version(
        self,
        name: str,
        actor: Actor,
        *,
        source: str,
        storage_location: str,
        run_id: str | None = None,
        model_id: str | None = None,
        run_link: str | None = None,
        description: str | None = None,
        tags: Mapping[str, str] | None = None,
        flavor: str | None = None,
        signature: Mapping[str, Any] | None = None,
        card: Mapping[str, Any] | None = None,
        files_digest: str | None = None,
        lineage_resolved: bool = True,
    ) -> ModelVersion:
        now = now_ms()
        with self._writing() as conn:
            model = model_row(conn, name)
            version = int(model.next_version)
            conn.execute(
                update(t.registered_models)
                .where(t.registered_models.c.name == name)
                .values(next_version=version + 1, last_updated_time=now)
            )
            conn.execute(
                insert(t.model_versions).values(
                    name=name,
                    version=version,
                    description=description,
                    source=source,
                    storage_location=storage_location,
                    run_id=run_id,
                    model_id=model_id,
                    run_link=run_link,
                    flavor=flavor,
                    signature=json.dumps(signature) if signature else None,
                    files_digest=files_digest,
                    stage=Stage.NONE.value,
                    status=READY,
                    created_by=actor.name,
                    creation_time=now,
                    last_updated_time=now,
                )
            )
            if tags:
                conn.execute(
                    insert(t.model_version_tags),
                    [
                        {"name": name, "version": version, "key": k, "value": v}
                        for k, v in tags.items()
                    ],
                )
            if card is not None:
                conn.execute(
                    insert(t.model_cards).values(
                        name=name,
                        version=version,
                        content=json.dumps(dict(card)),
                        updated_by=actor.name,
                        updated_at=now,
                    )
                )
            produced = PRODUCED if lineage_resolved else PRODUCED_UNRESOLVED
            edges = [(node("run", run_id), _entity(name, version), produced)] if run_id else []
            if model_id:
                edges.append(
                    (node("logged_model", model_id), _entity(name, version), "registered_as")
                )
            record_edges(conn, edges)
            after = {
                "source": source,
                "run_id": run_id,
                "flavor": flavor,
                "stage": "None",
                "files_digest": files_digest,
            }
            _audit(conn, actor, "version.create", name, version, after=after)
            return version_entity(conn, name, version)

    def get_model_version(self, name: str, version: int) -> ModelVersion:
        with self.db.read() as conn:
            return version_entity(conn, name, version)

    def search_model_versions(
        self,
        filter_string: str | None = None,
        max_results: int = 1000,
        page_token: str | None = None,
        order_by: Sequence[str] | None = None,
    ) -> Page[ModelVersion]:
        check_max_results(max_results)
        clauses = parse_filter(filter_string, MODEL_VERSIONS)
        order = parse_order_by(list(order_by or []), MODEL_VERSIONS)
        with self.db.read() as conn:
            query, keys = model_versions_search(conn, clauses, order)
            rows, token = fetch_page(conn, query, keys, "model_versions", page_token, max_results)
            return Page(versions_from_rows(conn, rows), token)

    def update_model_version(
        self, name: str, version: int, description: str | None, actor: Actor
    ) -> ModelVersion:
        with self._writing() as conn:
            row = version_row(conn, name, version)
            if row.description != description:
                c = t.model_versions.c
                conn.execute(
                    update(t.model_versions)
                    .where(c.name == name, c.version == version)
                    .values(description=description, last_updated_time=now_ms())
                )
                _audit(
                    conn,
                    actor,
                    "version.update",
                    name,
                    version,
                    before={"description": row.description},
                    after={"description": description},
                )
            return version_entity(conn, name, version)

    def delete_model_version(self, name: str, version: int, actor: Actor) -> None:
        with self._writing() as conn:
            before = version_entity(conn, name, version)
            c = t.model_versions.c
            conn.execute(delete(t.model_versions).where(c.name == name, c.version == version))
            self._touch(conn, name)
            _audit(
                conn,
                actor,
                "version.delete",
                name,
                version,
                before={"stage": before.stage.value, "aliases": list(before.aliases)},
            )

    def set_model_version_tag(
        self, name: str, version: int, key: str, value: str, actor: Actor
    ) -> None:
        with self._writing() as conn:
            version_row(conn, name, version)
            c = t.model_version_tags.c
            where = (c.name == name, c.version == version, c.key == key)
            old = conn.execute(select(c.value).where(*where)).scalar()
            if old == value:
                return
            conn.execute(delete(t.model_version_tags).where(*where))
            conn.execute(
                insert(t.model_version_tags).values(
                    name=name, version=version, key=key, value=value
                )
            )
            self._touch(conn, name, version)
            _audit(
                conn, actor, "version.tag.set", name, version, before={key: old}, after={key: value}
            )

    def delete_model_version_tag(self, name: str, version: int, key: str, actor: Actor) -> None:
        with self._writing() as conn:
            version_row(conn, name, version)
            c = t.model_version_tags.c
            where = (c.name == name, c.version == version, c.key == key)
            old = conn.execute(select(c.value).where(*where)).scalar()
            if old is None:
                raise NotFound(f"model {name!r} version {version} has no tag {key!r}", field="key")
            conn.execute(delete(t.model_version_tags).where(*where))
            _audit(conn, actor, "version.tag.delete", name, version, before={key: old})

    def transition_stage(
        self,
        name: str,
        version: int,
        stage: Stage,
        actor: Actor,
        policy: PromotionPolicy,
        archive_existing_versions: bool = False,
    ) -> ModelVersion:
        stage = Stage.parse(stage)
        with self._writing() as conn:
            current = version_entity(conn, name, version)
            if current.stage == stage:
                return current  # a retried request: nothing to do, nothing to audit
            if stage not in ALLOWED_TRANSITIONS[current.stage]:
                allowed = ", ".join(sorted(s.value for s in ALLOWED_TRANSITIONS[current.stage]))
                hint = " (promote it to Staging first)" if stage == Stage.PRODUCTION else ""
                raise InvalidState(
                    f"{name} version {version} cannot move from {current.stage.value} to "
                    f"{stage.value}{hint}; from {current.stage.value} it may move to {allowed}",
                    field="stage",
                )
            if stage == Stage.PRODUCTION:
                policy.check_promotion(
                    actor,
                    current,
                    approvals_of(conn, name, version),
                    latest_verdict(conn, name, version),
                    lineage_resolved=has_resolved_lineage(conn, name, version),
                )
            c = t.model_versions.c
            displaced_stages = {Stage.PRODUCTION} if stage == Stage.PRODUCTION else set()
            if archive_existing_versions and stage in (Stage.STAGING, Stage.PRODUCTION):
                displaced_stages.add(stage)
            for other in conn.execute(
                select(c.version, c.stage).where(
                    c.name == name,
                    c.version != version,
                    c.stage.in_([s.value for s in displaced_stages]),
                )
            ).all():
                self._set_stage(
                    conn,
                    actor,
                    name,
                    int(other.version),
                    other.stage,
                    Stage.ARCHIVED,
                    reason=f"replaced by version {version}",
                )
            self._set_stage(conn, actor, name, version, current.stage.value, stage)
            self._touch(conn, name)  # the model changed too, as MLflow records it
            return version_entity(conn, name, version)

    def _set_stage(
        self,
        conn: Connection,
        actor: Actor,
        name: str,
        version: int,
        old: str,
        new: Stage,
        reason: str | None = None,
    ) -> None:
        c = t.model_versions.c
        conn.execute(
            update(t.model_versions)
            .where(c.name == name, c.version == version)
            .values(stage=new.value, last_updated_time=now_ms())
        )
        after: dict[str, Any] = {"stage": new.value}
        if reason:
            after["reason"] = reason
        _audit(conn, actor, "version.stage", name, version, before={"stage": old}, after=after)

    # -- aliases --------------------------------------------------------------------------

    def set_alias(
        self, name: str, alias: str, version: int, actor: Actor, policy: PromotionPolicy
    ) -> None:
        check_alias(alias)
        with self._writing() as conn:
            target = version_entity(conn, name, version)
            c = t.model_aliases.c
            old = conn.execute(select(c.version).where(c.name == name, c.alias == alias)).scalar()
            if old == version:
                return
            if policy.is_gated_alias(alias):
                policy.check_promotion(
                    actor,
                    target,
                    approvals_of(conn, name, version),
                    latest_verdict(conn, name, version),
                    lineage_resolved=has_resolved_lineage(conn, name, version),
                )
            conn.execute(delete(t.model_aliases).where(c.name == name, c.alias == alias))
            conn.execute(insert(t.model_aliases).values(name=name, alias=alias, version=version))
            self._touch(conn, name)
            _audit(
                conn,
                actor,
                "alias.set",
                name,
                before={"alias": alias, "version": old},
                after={"alias": alias, "version": version},
            )

    def delete_alias(self, name: str, alias: str, actor: Actor) -> None:
        with self._writing() as conn:
            model_row(conn, name)
            c = t.model_aliases.c
            old = conn.execute(select(c.version).where(c.name == name, c.alias == alias)).scalar()
            if old is None:
                raise NotFound(f"model {name!r} has no alias {alias!r}", field="alias")
            conn.execute(delete(t.model_aliases).where(c.name == name, c.alias == alias))
            _audit(conn, actor, "alias.delete", name, before={"alias": alias, "version": old})

    def get_version_by_alias(self, name: str, alias: str) -> ModelVersion:
        with self.db.read() as conn:
            c = t.model_aliases.c
            version = conn.execute(
                select(c.version).where(c.name == name, c.alias == alias)
            ).scalar()
            if version is None:
                model = models_from_rows(conn, [model_row(conn, name)])[0]
                known = ", ".join(model.aliases) or "none"
                raise NotFound(
                    f"model {name!r} has no alias {alias!r} (its aliases: {known})",
                    field="alias",
                )
            return version_entity(conn, name, int(version))

    # -- governance -----------------------------------------------------------------------

    def record_decision(
        self,
        name: str,
        version: int,
        decision: Decision,
        actor: Actor,
        policy: PromotionPolicy,
        reason: str | None = None,
    ) -> Approval:
        decision = Decision(decision)
        if decision == Decision.REJECTED and not (reason and reason.strip()):
            raise InvalidParameter(
                "a rejection needs a reason (say what must change)", field="reason"
            )
        with self._writing() as conn:
            target = version_entity(conn, name, version)
            policy.check_can_decide(actor, target)
            now = now_ms()
            conn.execute(
                insert(t.approvals).values(
                    name=name,
                    version=version,
                    actor=actor.name,
                    decision=decision.value,
                    reason=reason,
                    created_at=now,
                )
            )
            action = "version.approve" if decision == Decision.APPROVED else "version.reject"
            audit.append(
                conn,
                actor=actor.name,
                action=action,
                entity=_entity(name, version),
                model_name=name,
                after={"decision": decision.value, "reason": reason},
            )
            return Approval(name, version, actor.name, decision, now, reason)

    def record_gate_verdict(self, verdict: GateVerdict, actor: Actor) -> GateVerdict:
        with self._writing() as conn:
            version_row(conn, verdict.name, verdict.version)
            conn.execute(
                insert(t.gate_verdicts).values(
                    name=verdict.name,
                    version=verdict.version,
                    passed=verdict.passed,
                    files_digest=verdict.files_digest,
                    policy=verdict.policy,
                    summary=verdict.summary,
                    report=verdict.report,
                    created_by=actor.name,
                    created_at=verdict.created_at,
                )
            )
            _audit(
                conn,
                actor,
                "version.gate",
                verdict.name,
                verdict.version,
                after={
                    "passed": verdict.passed,
                    "policy": verdict.policy,
                    "files_digest": verdict.files_digest,
                },
            )
            return latest_verdict(conn, verdict.name, verdict.version)  # type: ignore[return-value]

    def latest_gate_verdict(self, name: str, version: int) -> GateVerdict | None:
        with self.db.read() as conn:
            version_row(conn, name, version)
            return latest_verdict(conn, name, version)

    def record_integrity_failure(
        self, name: str, version: int, expected: str | None, actual: str, actor: Actor
    ) -> None:
        with self._writing() as conn:
            _audit(
                conn,
                actor,
                "version.integrity_failed",
                name,
                version,
                before={"files_digest": expected},
                after={"files_digest": actual},
            )

    def list_approvals(self, name: str, version: int) -> list[Approval]:
        with self.db.read() as conn:
            version_row(conn, name, version)
            return approvals_of(conn, name, version)

    def get_card(self, name: str, version: int) -> dict[str, Any]:
        with self.db.read() as conn:
            version_row(conn, name, version)
            c = t.model_cards.c
            content = conn.execute(
                select(c.content).where(c.name == name, c.version == version)
            ).scalar()
        return json.loads(content) if content else {}

    def update_card(
        self, name: str, version: int, changes: Mapping[str, Any], actor: Actor
    ) -> dict[str, Any]:
        with self._writing() as conn:
            version_row(conn, name, version)
            c = t.model_cards.c
            where = (c.name == name, c.version == version)
            content = conn.execute(select(c.content).where(*where)).scalar()
            card = json.loads(content) if content else {}
            before = {k: card.get(k) for k in changes if card.get(k) != changes[k]}
            if not before:
                return card
            card.update(changes)
            conn.execute(delete(t.model_cards).where(*where))
            conn.execute(
                insert(t.model_cards).values(
                    name=name,
                    version=version,
                    content=json.dumps(card),
                    updated_by=actor.name,
                    updated_at=now_ms(),
                )
            )
            _audit(
                conn,
                actor,
                "card.edit",
                name,
                version,
                before=before,
                after={k: changes[k] for k in before},
            )
            return card

    # -- audit ----------------------------------------------------------------------------

    def audit_events(
        self, model_name: str | None = None, limit: int | None = None
    ) -> list[AuditEvent]:
        return audit.list_events(self.db, model_name, limit=limit)

    def verify_audit(self, anchor: str | None = None) -> audit.Verification:
        return audit.verify(self.db, anchor)


# -- paging -------------------------------------------------------------------------------
