"""The registry store interface: every method abstract, one contract test suite for all.

Every write names its ``actor`` and is recorded in the audit trail in the same
transaction; rules that depend on the current state (the promotion policy, one
Production version, no alias on a missing version) are checked inside that transaction,
so concurrent callers cannot interleave past them.

Implementation: ``SqlRegistryStore`` (SQLite, PostgreSQL). A remote store speaking to
``modelyard server`` slots in behind the same interface.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from typing import Any

from modelyard.registry.audit import Verification
from modelyard.registry.entities import (
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
from modelyard.tracking.entities import Page


class RegistryStore(ABC):
    # registered models -----------------------------------------------------------------
    @abstractmethod
    def create_registered_model(
        self,
        name: str,
        actor: Actor,
        description: str | None = None,
        tags: Mapping[str, str] | None = None,
    ) -> RegisteredModel: ...

    @abstractmethod
    def get_registered_model(self, name: str) -> RegisteredModel: ...

    @abstractmethod
    def search_registered_models(
        self,
        filter_string: str | None = None,
        max_results: int = 100,
        page_token: str | None = None,
        order_by: Sequence[str] | None = None,
    ) -> Page[RegisteredModel]:
        """MLflow's registered-model search (``registry.search.REGISTERED_MODELS``): by
        ``order_by``, then by name."""

    @abstractmethod
    def update_registered_model(
        self, name: str, description: str | None, actor: Actor
    ) -> RegisteredModel: ...

    @abstractmethod
    def rename_registered_model(self, name: str, new_name: str, actor: Actor) -> RegisteredModel:
        """Versions, aliases, tags, approvals and cards follow the new name."""

    @abstractmethod
    def delete_registered_model(self, name: str, actor: Actor) -> None: ...

    @abstractmethod
    def set_registered_model_tag(self, name: str, key: str, value: str, actor: Actor) -> None: ...

    @abstractmethod
    def delete_registered_model_tag(self, name: str, key: str, actor: Actor) -> None: ...

    # versions --------------------------------------------------------------------------
    @abstractmethod
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
        """The next version number (never reused), READY, in stage None; records the
        ``run --produced--> model`` lineage edge when ``run_id`` is given (relation
        ``produced_unresolved`` when not ``lineage_resolved``: the run is not here)."""

    @abstractmethod
    def get_model_version(self, name: str, version: int) -> ModelVersion: ...

    @abstractmethod
    def search_model_versions(
        self,
        filter_string: str | None = None,
        max_results: int = 1000,
        page_token: str | None = None,
        order_by: Sequence[str] | None = None,
    ) -> Page[ModelVersion]:
        """MLflow's model-version search (``registry.search.MODEL_VERSIONS``): by
        ``order_by``, then models by name and the newest version first."""

    @abstractmethod
    def update_model_version(
        self, name: str, version: int, description: str | None, actor: Actor
    ) -> ModelVersion: ...

    @abstractmethod
    def delete_model_version(self, name: str, version: int, actor: Actor) -> None:
        """Its aliases go with it (no alias is ever left dangling)."""

    @abstractmethod
    def set_model_version_tag(
        self, name: str, version: int, key: str, value: str, actor: Actor
    ) -> None: ...

    @abstractmethod
    def delete_model_version_tag(self, name: str, version: int, key: str, actor: Actor) -> None: ...

    @abstractmethod
    def transition_stage(
        self,
        name: str,
        version: int,
        stage: Stage,
        actor: Actor,
        policy: PromotionPolicy,
        archive_existing_versions: bool = False,
    ) -> ModelVersion:
        """Move along ``ALLOWED_TRANSITIONS``; entering Production checks ``policy`` and
        archives the version that was there. Repeating the current stage is a no-op."""

    # aliases ---------------------------------------------------------------------------
    @abstractmethod
    def set_alias(
        self, name: str, alias: str, version: int, actor: Actor, policy: PromotionPolicy
    ) -> None: ...

    @abstractmethod
    def delete_alias(self, name: str, alias: str, actor: Actor) -> None: ...

    @abstractmethod
    def get_version_by_alias(self, name: str, alias: str) -> ModelVersion: ...

    # governance ------------------------------------------------------------------------
    @abstractmethod
    def record_decision(
        self,
        name: str,
        version: int,
        decision: Decision,
        actor: Actor,
        policy: PromotionPolicy,
        reason: str | None = None,
    ) -> Approval: ...

    @abstractmethod
    def list_approvals(self, name: str, version: int) -> list[Approval]: ...

    @abstractmethod
    def record_gate_verdict(self, verdict: GateVerdict, actor: Actor) -> GateVerdict:
        """Store the gate's verdict (audited). Only the gate calls this; no API does."""

    @abstractmethod
    def latest_gate_verdict(self, name: str, version: int) -> GateVerdict | None: ...

    @abstractmethod
    def record_integrity_failure(
        self, name: str, version: int, expected: str | None, actual: str, actor: Actor
    ) -> None:
        """Audit that the version's files no longer match their recorded digest."""

    @abstractmethod
    def get_card(self, name: str, version: int) -> dict[str, Any]: ...

    @abstractmethod
    def update_card(
        self, name: str, version: int, changes: Mapping[str, Any], actor: Actor
    ) -> dict[str, Any]:
        """Apply ``changes`` to the stored card; the audit event holds old and new values."""

    # audit -----------------------------------------------------------------------------
    @abstractmethod
    def audit_events(
        self, model_name: str | None = None, limit: int | None = None
    ) -> list[AuditEvent]: ...

    @abstractmethod
    def verify_audit(self, anchor: str | None = None) -> Verification: ...
