"""The promotion policy: who may approve, and what a version needs before Production.

A version may enter Production (or take a gated alias such as ``champion``) only when

* at least ``required_approvals`` distinct approvers' latest decision on it is "approved",
  and nobody's latest decision is "rejected" (a rejection blocks until its author approves);
* no approval counts from the version's creator (four-eyes), who may not approve at all;
* every approver holds the ``approver`` role, and is listed in ``approvers`` when that is
  set;
* the quality gate passes, when one is configured (``gate``): the newest verdict in the
  ``gate_verdicts`` table — which only the gate writes, never a client — passed, and it
  judged the very files the version holds (its ``files_digest``).

Gated aliases compare case-insensitively (``Champion`` is ``champion``), so a gated alias
cannot be copied under another spelling; aliases are ASCII (``uris.check_alias``).

The rules are checked inside the same write transaction as the promotion, against the
approvals in the database, so a concurrent rejection cannot slip past.

>>> policy = PromotionPolicy(required_approvals=2, approvers=frozenset({"ana", "bo", "cy"}))
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass

from modelyard.config import Settings
from modelyard.errors import InvalidParameter, InvalidState, PermissionDenied
from modelyard.registry.entities import Actor, Approval, Decision, GateVerdict, ModelVersion

APPROVER_ROLE = "approver"
EDITOR_ROLE = "editor"


@dataclass(frozen=True, slots=True)
class GateResult:
    """What a quality gate says about a version; ``detail`` explains a failure."""

    passed: bool
    detail: str = ""


#: A quality gate: given the version and its newest recorded verdict (None: never gated),
#: says whether it may be promoted. Called inside the promotion's transaction.
Gate = Callable[[ModelVersion, GateVerdict | None], GateResult]

#: The version tag where ``modelyard gate`` also shows its verdict ("passed" or "failed"),
#: for people and MLflow's UI. Informational only: promotion reads ``gate_verdicts``.
GATE_STATUS_TAG = "modelyard.gate.status"


def recorded_gate(version: ModelVersion, verdict: GateVerdict | None) -> GateResult:
    """The gate used when settings require one: the verdict ``modelyard gate`` recorded,
    valid only for the files it judged."""
    where = f"{version.name} version {version.version}"
    rerun = (
        f"; run `modelyard gate --candidate models:/{version.name}/{version.version} "
        f"--champion models:/{version.name}@champion --data … --policy …` and pass it"
    )
    if verdict is None:
        return GateResult(False, f"{where} has no recorded quality gate{rerun}")
    if not verdict.passed:
        return GateResult(False, f"{where} failed its last quality gate ({verdict.policy}){rerun}")
    if verdict.files_digest is None or verdict.files_digest != version.files_digest:
        return GateResult(
            False,
            f"{where}'s last passing gate judged other files (digest "
            f"{(verdict.files_digest or 'none')[:12]}, the version holds "
            f"{(version.files_digest or 'none')[:12]}){rerun}",
        )
    return GateResult(True, verdict.summary)


def alias_key(alias: str) -> str:
    """How aliases compare for the policy: case-insensitively."""
    return alias.casefold()


@dataclass(frozen=True, slots=True)
class PromotionPolicy:
    """The rules for entering Production. The default asks for no approvals, which keeps
    plain MLflow workflows working; regulated teams set ``required_approvals``."""

    required_approvals: int = 0
    approvers: frozenset[str] | None = None
    four_eyes: bool = True
    gated_aliases: frozenset[str] = frozenset({"champion"})
    gate: Gate | None = None
    #: Refuse a version whose producing run is not known here (an MLflow client may
    #: register a version naming any run id; it is stored, its lineage unresolved).
    require_lineage: bool = False

    def __post_init__(self) -> None:
        if type(self.required_approvals) is not int or self.required_approvals < 0:
            raise InvalidParameter(
                f"required_approvals must be a non-negative integer, got "
                f"{self.required_approvals!r}",
                field="required_approvals",
            )

    @classmethod
    def from_settings(cls, settings: Settings) -> PromotionPolicy:
        """The policy the settings' ``registry_*`` fields describe."""
        approvers = settings.registry_approvers
        return cls(
            required_approvals=settings.registry_required_approvals,
            approvers=frozenset(approvers) if approvers else None,
            four_eyes=settings.registry_four_eyes,
            gate=recorded_gate if settings.registry_require_gate else None,
            require_lineage=settings.registry_require_lineage,
        )

    # -- who may decide -----------------------------------------------------------------

    def check_can_decide(self, actor: Actor, version: ModelVersion) -> None:
        """Raise PermissionDenied unless ``actor`` may approve or reject ``version``."""
        where = f"{version.name} version {version.version}"
        if not actor.has(APPROVER_ROLE):
            raise PermissionDenied(
                f"{actor.name!r} cannot approve or reject {where}: the approver role is "
                f"required (they have: {', '.join(sorted(actor.roles)) or 'no roles'})",
                field="actor",
            )
        if self.approvers is not None and actor.name not in self.approvers:
            raise PermissionDenied(
                f"{actor.name!r} is not one of this registry's approvers "
                f"({', '.join(sorted(self.approvers))})",
                field="actor",
            )
        if self.four_eyes and actor.name == version.created_by:
            raise PermissionDenied(
                f"{actor.name!r} registered {where} and cannot approve it (four-eyes rule): "
                "ask another approver",
                field="actor",
            )

    # -- what a promotion needs ----------------------------------------------------------

    def is_gated_alias(self, alias: str) -> bool:
        return alias_key(alias) in {alias_key(a) for a in self.gated_aliases}

    def check_promotion(
        self,
        actor: Actor,
        version: ModelVersion,
        approvals: Iterable[Approval],
        verdict: GateVerdict | None = None,
        lineage_resolved: bool = True,
    ) -> None:
        """Raise unless ``version`` may enter Production now. The error says what is missing.
        ``lineage_resolved``: the version's producing run is known here."""
        if not actor.has(EDITOR_ROLE):
            raise PermissionDenied(
                f"{actor.name!r} cannot promote models: the editor role is required",
                field="actor",
            )
        where = f"{version.name} version {version.version}"
        if self.require_lineage and not lineage_resolved:
            why = (
                f"its run {version.run_id!r} is not in this store"
                if version.run_id
                else "it names no run"
            )
            raise InvalidState(
                f"{where} has no resolved lineage ({why}), and this registry requires a "
                "known producing run (registry_require_lineage); register a version logged "
                "from a run here",
                field="version",
            )
        latest: dict[str, Approval] = {}
        for approval in sorted(approvals, key=lambda a: a.created_at):
            latest[approval.actor] = approval
        rejections = [a for a in latest.values() if a.decision == Decision.REJECTED]
        if rejections:
            first = rejections[0]
            raise InvalidState(
                f"{where} was rejected by {first.actor!r} ({first.reason}); it cannot be "
                "promoted until they approve it",
                field="version",
            )
        valid = sorted(
            a.actor
            for a in latest.values()
            if a.decision == Decision.APPROVED
            and not (self.four_eyes and a.actor == version.created_by)
            and (self.approvers is None or a.actor in self.approvers)
        )
        if len(valid) < self.required_approvals:
            have = f" (approved by {', '.join(valid)})" if valid else ""
            raise InvalidState(
                f"{where} needs {self.required_approvals} approval"
                f"{'s' if self.required_approvals != 1 else ''} from approvers other than its "
                f"creator {version.created_by!r} and has {len(valid)}{have}; run "
                f"`modelyard models approve {version.name} {version.version}` as an approver",
                field="version",
            )
        if self.gate is not None:
            result = self.gate(version, verdict)
            if not result.passed:
                raise InvalidState(
                    f"{where} did not pass the quality gate: {result.detail or 'no detail'}",
                    field="version",
                )
