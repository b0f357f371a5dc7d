"""Deployments: every change is a revision and an audit event; admission rules name what
is missing; rollbacks are instant and compare-and-set."""

from __future__ import annotations

import pytest

from modelyard.errors import AlreadyExists, InvalidParameter, InvalidState, NotFound
from modelyard.registry.audit import list_events, verify
from modelyard.registry.entities import Actor
from modelyard.registry.policy import PromotionPolicy
from modelyard.serving.deployments import DeploymentService


def weights(deployment) -> dict[str, tuple[int, float]]:
    return {v.name: (v.version, v.weight) for v in deployment.policy.variants}


def test_blue_green_switches_at_once_and_back(yard):
    v1, v2 = yard.regressor(), yard.regressor(seed=1)
    d = yard.deployments.create("web", v1.uri)
    assert d.current_revision == 1 and weights(d) == {"primary": (1, 100.0)}
    d = yard.deployments.switch("web", v2.uri, reason="new features")
    assert weights(d) == {"blue": (2, 100.0), "green": (1, 0.0)}
    d = yard.deployments.switch("web")  # back to the standby: instant
    assert weights(d) == {"green": (1, 100.0), "blue": (2, 0.0)}
    d = yard.deployments.switch("web")
    assert weights(d) == {"blue": (2, 100.0), "green": (1, 0.0)}
    assert d.current_revision == 4
    with pytest.raises(InvalidState, match="already takes all traffic"):
        yard.deployments.switch("web", v2.uri)


def test_every_revision_is_an_audit_event_in_one_intact_chain(yard):
    v1, v2, v3 = yard.regressor(), yard.regressor(seed=1), yard.regressor(seed=2)
    svc = yard.deployments
    svc.create("web", v1.uri)
    svc.canary("web", v2.uri, steps=[10, 50, 100], interval_s=60)
    svc.rollback("web", reason="latency")
    svc.shadow("web", [v3.uri], percent=25)
    svc.ab("web", v2.uri, split=30, key="customer_id")
    svc.promote("web")
    events = [e for e in list_events(yard.registry.db) if e.entity == "deployment:web"]
    assert [e.action for e in events] == [
        "deployment.create", "deployment.canary", "deployment.rollback",
        "deployment.shadow", "deployment.ab", "deployment.promote",
    ]  # fmt: skip
    assert [e.after["revision"] for e in events] == [1, 2, 3, 4, 5, 6]
    assert events[2].after["reason"] == "latency" and events[2].after["restores"] == 1
    assert events[0].before is None and events[1].before["policy"]["kind"] == "single"
    assert verify(yard.registry.db).ok
    assert len(svc.history("web")) == 6


def test_canary_schedule_rollback_and_promote(yard):
    v1, v2 = yard.regressor(), yard.regressor(seed=1)
    svc = yard.deployments
    svc.create("web", v1.uri)
    d = svc.canary("web", v2.uri, steps=[5, 25, 50, 100], interval_s=600,
                   rules={"max_p95_ratio": 2.0, "feedback_metric": "accuracy"})  # fmt: skip
    c = d.policy.canary
    assert c is not None and c.steps == (5.0, 25.0, 50.0, 100.0) and c.rules.max_p95_ratio == 2.0
    start = c.started_at_ms
    assert [c.weight_at(start + s * 1000) for s in (0, 599, 600, 1800, 99999)] == [
        5.0, 5.0, 25.0, 100.0, 100.0
    ]  # fmt: skip
    with pytest.raises(InvalidState, match="while a canary is running"):
        svc.ab("web", v2.uri)
    d = svc.rollback("web")
    assert weights(d) == {"primary": (1, 100.0)} and d.policy.canary is None
    svc.canary("web", v2.uri)
    d = svc.promote("web")
    assert weights(d) == {"primary": (2, 100.0), "previous": (1, 0.0)}
    assert d.policy.kind == "single"


def test_compare_and_set_rollback_records_one_revision(yard):
    v1, v2 = yard.regressor(), yard.regressor(seed=1)
    svc = yard.deployments
    svc.create("web", v1.uri)
    rev = svc.canary("web", v2.uri).current_revision
    first = svc.rollback("web", expected_revision=rev, reason="automatic")
    second = svc.rollback("web", expected_revision=rev, reason="automatic")
    assert first is not None and second is None
    assert svc.current_revision("web") == rev + 1


def test_rolling_back_a_rollback_goes_further_back(yard):
    v1, v2, v3 = (yard.regressor(seed=s) for s in range(3))
    svc = yard.deployments
    svc.create("web", v1.uri)
    svc.switch("web", v2.uri)
    svc.switch("web", v3.uri)
    assert weights(svc.rollback("web"))["blue"] == (2, 100.0)  # back to revision 2
    assert weights(svc.rollback("web")) == {"primary": (1, 100.0)}  # back to revision 1
    with pytest.raises(InvalidState, match="no earlier revision"):
        svc.rollback("web")
    assert weights(svc.rollback("web", to_revision=3))["green"] == (3, 100.0)


def test_production_admits_only_what_served_in_staging(yard):
    v1 = yard.regressor()
    with pytest.raises(InvalidState) as refused:
        yard.deployments.create("web", v1.uri, environment="production")
    assert "has not been deployed in staging yet" in refused.value.message
    assert refused.value.field == "environment"
    yard.deployments.create("web-staging", v1.uri, environment="staging")
    d = yard.deployments.create("web", v1.uri, environment="production")
    assert d.environment == "production"
    v2 = yard.regressor(seed=1)
    with pytest.raises(InvalidState, match="demand version 2 cannot enter production"):
        yard.deployments.canary("web", v2.uri)
    with pytest.raises(InvalidState, match="deployed in staging"):
        yard.deployments.ab("web", v2.uri)
    yard.deployments.shadow("web", [v2.uri])  # shadows never answer users: allowed


def test_production_applies_the_registry_promotion_policy(yard):
    v1 = yard.regressor()
    yard.deployments.create("web-staging", v1.uri)
    strict = yard.registry.__class__(
        yard.registry.db, yard.registry.artifacts, yard.settings,
        policy=PromotionPolicy(required_approvals=1),
    )  # fmt: skip
    svc = DeploymentService(strict.db, strict)
    with pytest.raises(InvalidState) as refused:
        svc.create("web", v1.uri, environment="production")
    assert "needs 1 approval" in refused.value.message
    assert "cannot enter production" in refused.value.message
    strict.as_actor(Actor("bo")).approve("demand", 1, "checked")
    assert svc.create("web", v1.uri, environment="production").current_revision == 1


def test_bad_input_is_refused_and_changes_nothing(yard):
    v1 = yard.regressor()
    svc = yard.deployments
    with pytest.raises(InvalidParameter, match="deployment name"):
        svc.create("Web_1", v1.uri)
    with pytest.raises(NotFound, match="no environment 'qa'"):
        svc.create("web", v1.uri, environment="qa")
    with pytest.raises(InvalidParameter, match="register"):
        svc.create("web", "runs:/abc/model")
    with pytest.raises(NotFound):
        svc.create("web", "models:/demand/9")
    svc.create("web", v1.uri)
    with pytest.raises(AlreadyExists):
        svc.create("web", v1.uri)
    with pytest.raises(InvalidParameter, match="increasing"):
        svc.canary("web", yard.regressor(seed=1).uri, steps=[50, 10])
    with pytest.raises(InvalidParameter, match="unknown rollback rule"):
        svc.canary("web", "models:/demand/2", rules={"max_errors": 1})
    with pytest.raises(InvalidParameter, match="split"):
        svc.ab("web", "models:/demand/2", split=100)
    with pytest.raises(InvalidState, match="no standby"):
        svc.switch("web")
    with pytest.raises(InvalidState, match="runs no canary"):
        svc.promote("web")
    assert svc.current_revision("web") == 1


def test_environments(yard):
    svc = yard.deployments
    assert [e.name for e in svc.list_environments()] == ["staging", "production"]
    qa = svc.create_environment("qa", requires="staging")
    assert qa.requires == "staging" and not qa.protected
    with pytest.raises(AlreadyExists):
        svc.create_environment("qa")
    with pytest.raises(NotFound):
        svc.create_environment("eu", requires="nowhere")
