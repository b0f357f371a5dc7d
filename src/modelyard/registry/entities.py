"""Registry entities: immutable records that cross every boundary (store, client, CLI, wire).

Field names follow MLflow's registry entities where one exists, so the MLflow-compatible
API is a direct mapping. Versions are integers here and strings on the wire.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from modelyard.errors import InvalidParameter


class Stage(StrEnum):
    """MLflow's stages. Production is unique per model (a database index enforces it)."""

    NONE = "None"
    STAGING = "Staging"
    PRODUCTION = "Production"
    ARCHIVED = "Archived"

    @classmethod
    def parse(cls, value: object) -> Stage:
        """Case-insensitive, as MLflow accepts ``production``; a clear error otherwise."""
        if isinstance(value, Stage):
            return value
        if isinstance(value, str):
            for stage in cls:
                if stage.value.lower() == value.strip().lower():
                    return stage
        allowed = ", ".join(s.value for s in cls)
        raise InvalidParameter(f"unknown stage {value!r}; use one of {allowed}", field="stage")


#: The lifecycle: a version moves forward through Staging to Production and is archived at
#: the end; it may step back from Staging or Production, and be revived from Archived into
#: Staging for another review. Production is only reachable from Staging.
ALLOWED_TRANSITIONS: dict[Stage, frozenset[Stage]] = {
    Stage.NONE: frozenset({Stage.STAGING, Stage.ARCHIVED}),
    Stage.STAGING: frozenset({Stage.PRODUCTION, Stage.NONE, Stage.ARCHIVED}),
    Stage.PRODUCTION: frozenset({Stage.STAGING, Stage.ARCHIVED}),
    Stage.ARCHIVED: frozenset({Stage.NONE, Stage.STAGING}),
}


class Decision(StrEnum):
    APPROVED = "approved"
    REJECTED = "rejected"


#: A version's files are copied into the registry before its row commits, so it is READY
#: from the moment it exists (the MLflow client polls anything else for minutes).
READY = "READY"


@dataclass(frozen=True, slots=True)
class Actor:
    """Who does something: a user name and roles (viewer, editor, approver, admin).

    Without the server's authentication the local user acts, with every role: the embedded
    mode is single-user, but the promotion policy (four-eyes, approvals) still applies.
    """

    name: str
    roles: frozenset[str] = frozenset({"viewer", "editor", "approver", "admin"})

    def has(self, role: str) -> bool:
        return role in self.roles or "admin" in self.roles


@dataclass(frozen=True, slots=True)
class ModelVersion:
    name: str
    version: int
    source: str
    storage_location: str
    stage: Stage
    status: str
    created_by: str
    creation_time: int
    last_updated_time: int
    description: str | None = None
    run_id: str | None = None
    model_id: str | None = None
    run_link: str | None = None
    flavor: str | None = None
    signature: dict[str, Any] | None = None
    tags: dict[str, str] = field(default_factory=dict)
    aliases: tuple[str, ...] = ()
    #: ``modelyard.digests.tree_digest`` of the frozen files, taken at registration.
    files_digest: str | None = None

    @property
    def uri(self) -> str:
        """The stable way to name this version everywhere: ``models:/name/3``."""
        return f"models:/{self.name}/{self.version}"


@dataclass(frozen=True, slots=True)
class RegisteredModel:
    name: str
    created_by: str
    creation_time: int
    last_updated_time: int
    description: str | None = None
    tags: dict[str, str] = field(default_factory=dict)
    aliases: dict[str, int] = field(default_factory=dict)
    #: The newest version in each stage that has one (MLflow's ``latest_versions``).
    latest_versions: tuple[ModelVersion, ...] = ()


@dataclass(frozen=True, slots=True)
class Approval:
    name: str
    version: int
    actor: str
    decision: Decision
    created_at: int
    reason: str | None = None


@dataclass(frozen=True, slots=True)
class GateVerdict:
    """What a quality gate decided about a version's files (``files_digest``): written only
    by the gate, never taken from a client, so promotion can rely on it."""

    name: str
    version: int
    passed: bool
    files_digest: str | None
    policy: str
    summary: str
    created_by: str
    created_at: int
    report: str | None = None


@dataclass(frozen=True, slots=True)
class AuditEvent:
    """One entry of the trail. ``before``/``after`` are the changed fields, or None."""

    seq: int
    ts: int
    actor: str
    action: str
    entity: str
    model_name: str | None
    before: dict[str, Any] | None
    after: dict[str, Any] | None
    prev_hash: str
    hash: str


@dataclass(frozen=True, slots=True)
class ModelMetric:
    """One metric point logged against a logged model, by ``run_id``, on a dataset."""

    key: str
    value: float
    timestamp: int
    step: int
    run_id: str | None = None
    dataset_name: str | None = None
    dataset_digest: str | None = None


@dataclass(frozen=True, slots=True)
class LoggedModel:
    """An MLflow 3 logged model: files under ``artifact_location`` logged from a run."""

    model_id: str
    experiment_id: str
    name: str
    artifact_location: str
    status: str
    creation_time: int
    last_updated_time: int
    source_run_id: str | None = None
    model_type: str | None = None
    tags: dict[str, str] = field(default_factory=dict)
    params: dict[str, str] = field(default_factory=dict)
    metrics: list[ModelMetric] = field(default_factory=list)
