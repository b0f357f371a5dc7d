"""Promotion to Production follows the policy: N approvals, four-eyes, roles, gates, rejections."""

from __future__ import annotations

import pytest

from modelyard.errors import InvalidState, PermissionDenied
from modelyard.registry.client import RegistryClient
from modelyard.registry.entities import Actor, Decision, Stage
from modelyard.registry.policy import GateResult, PromotionPolicy


@pytest.fixture
def governed(local_yard, local_run_id):
    """A registry needing two approvals; ana registered churn version 1 and staged it."""

    def as_user(name: str, *roles: str, policy: PromotionPolicy | None = None) -> RegistryClient:
        actor = Actor(name, frozenset(roles)) if roles else Actor(name)
        return RegistryClient(
            local_yard.registry.db,
            local_yard.registry.artifacts,
            local_yard.settings,
            policy=policy or PromotionPolicy(required_approvals=2),
            actor=actor,
        )

    ana = as_user("ana")
    ana.register_model(f"runs:/{local_run_id}/model", "churn")
    ana.transition_model_version_stage("churn", 1, "Staging")
    return as_user


def test_production_needs_the_configured_number_of_approvals(governed):
    ana = governed("ana")
    governed("bo", "approver").approve("churn", 1)

    with pytest.raises(InvalidState, match=r"needs 2 approvals .* has 1 \(approved by bo\)"):
        ana.transition_model_version_stage("churn", 1, "Production")

    governed("cy", "approver").approve("churn", 1, comment="metrics checked")
    assert ana.transition_model_version_stage("churn", 1, "Production").stage == Stage.PRODUCTION


def test_the_creator_cannot_approve_their_own_version(governed):
    with pytest.raises(PermissionDenied, match="four-eyes"):
        governed("ana").approve("churn", 1)


def test_a_viewer_cannot_approve(governed):
    with pytest.raises(PermissionDenied, match="approver role is required"):
        governed("vic", "viewer").approve("churn", 1)


def test_a_viewer_cannot_promote_even_with_approvals(governed):
    policy = PromotionPolicy(required_approvals=0)
    with pytest.raises(PermissionDenied, match="editor role"):
        governed("vic", "viewer", policy=policy).transition_model_version_stage(
            "churn", 1, "Production"
        )


def test_a_rejection_needs_a_reason_and_blocks_until_withdrawn(governed):
    bo, cy = governed("bo", "approver"), governed("cy", "approver")
    with pytest.raises(ValueError, match="needs a reason"):
        bo.reject("churn", 1, "  ")
    bo.reject("churn", 1, "recall on new accounts is too low")
    cy.approve("churn", 1)
    cy.approve("churn", 1)  # the same person twice still counts once

    with pytest.raises(InvalidState, match=r"rejected by .bo. \(recall on new accounts"):
        governed("ana").transition_model_version_stage("churn", 1, "Production")

    bo.approve("churn", 1, comment="retrained data looks fine")
    governed("ana").transition_model_version_stage("churn", 1, "Production")
    decisions = [(a.actor, a.decision) for a in governed("ana").list_approvals("churn", 1)]
    assert decisions[0] == ("bo", Decision.REJECTED)


def test_only_listed_approvers_count_when_a_list_is_configured(governed):
    policy = PromotionPolicy(required_approvals=1, approvers=frozenset({"cy"}))
    with pytest.raises(PermissionDenied, match="not one of this registry's approvers"):
        governed("bo", "approver", policy=policy).approve("churn", 1)
    governed("cy", "approver", policy=policy).approve("churn", 1)
    governed("ana", policy=policy).transition_model_version_stage("churn", 1, "Production")


def test_a_gated_alias_such_as_champion_needs_the_same_approvals(governed):
    with pytest.raises(InvalidState, match="needs 2 approvals"):
        governed("ana").set_registered_model_alias("churn", "champion", 1)
    governed("ana").set_registered_model_alias("churn", "shadow", 1)  # not gated


def test_a_failing_quality_gate_blocks_promotion(governed):
    seen = []

    def gate(version, verdict):
        seen.append((version.version, verdict))
        return GateResult(False, "AUC 0.71 is below the champion's 0.78")

    policy = PromotionPolicy(required_approvals=0, gate=gate)
    with pytest.raises(InvalidState, match=r"quality gate: AUC 0\.71"):
        governed("ana", policy=policy).transition_model_version_stage("churn", 1, "Production")
    assert seen == [(1, None)]


def test_the_policy_can_come_from_settings_fields(monkeypatch):
    from modelyard.config import Settings

    monkeypatch.setenv("MODELYARD_REGISTRY_APPROVERS", "ana,bo")
    configured = Settings(registry_required_approvals=3, registry_four_eyes=False)
    policy = PromotionPolicy.from_settings(configured)
    assert (policy.required_approvals, policy.approvers, policy.four_eyes) == (
        3,
        frozenset({"ana", "bo"}),
        False,
    )


def test_a_negative_approval_count_is_refused():
    with pytest.raises(ValueError, match="required_approvals must be a non-negative integer"):
        PromotionPolicy(required_approvals=-1)


def test_settings_can_require_a_passed_quality_gate(governed, local_yard):
    settings = local_yard.settings.model_copy(
        update={"registry_require_gate": True, "registry_required_approvals": 0}
    )
    policy = PromotionPolicy.from_settings(settings)
    ana = governed("ana", policy=policy)
    with pytest.raises(InvalidState, match="has no recorded quality gate; run `modelyard gate"):
        ana.transition_model_version_stage("churn", 1, "Production")
    ana.record_gate_verdict("churn", 1, passed=False, policy="demand", summary="rmse 14 > 12")
    with pytest.raises(InvalidState, match="failed its last quality gate"):
        ana.transition_model_version_stage("churn", 1, "Production")
    ana.record_gate_verdict("churn", 1, passed=True, policy="demand", summary="all rules pass")
    assert ana.transition_model_version_stage("churn", 1, "Production").stage == Stage.PRODUCTION


def test_a_gated_alias_is_gated_in_every_spelling(governed):
    for spelling in ("Champion", "CHAMPION", "champion"):
        with pytest.raises(InvalidState, match="needs 2 approvals"):
            governed("ana").set_registered_model_alias("churn", spelling, 1)


@pytest.mark.parametrize("look_alike", ["\uff43hampion", "\u0441hampion", "champion\n"])
def test_aliases_are_ascii_so_no_look_alike_escapes_the_gate(governed, look_alike):
    with pytest.raises(ValueError, match="ASCII letters"):
        governed("ana").set_registered_model_alias("churn", look_alike, 1)
