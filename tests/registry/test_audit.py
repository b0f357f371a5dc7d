"""Every registry change is an audit event; the hash chain exposes any edit, deletion or
reordering done directly in the database, and names the first bad entry."""

from __future__ import annotations

import json
import threading

import pytest
from sqlalchemy import text

from modelyard.registry import audit
from modelyard.registry.entities import Actor


@pytest.fixture
def history(yard, run_id):
    """Seven events: create, register, stage, alias, approval (by bo), rejection, card edit."""
    registry = yard.registry
    registry.register_model(f"runs:/{run_id}/model", "churn")
    registry.transition_model_version_stage("churn", 1, "Staging")
    registry.set_registered_model_alias("churn", "champion", 1)
    yard.as_user("bo").approve("churn", 1)
    yard.as_user("cy").reject("churn", 1, "needs a fairness review")
    registry.update_card("churn", 1, intended_use="Retention calls")
    return registry


def sql(registry, statement: str, **params) -> None:
    with registry.db.engine.begin() as conn:
        conn.execute(text(statement), params)


def test_every_change_is_recorded_with_actor_before_and_after(history):
    events = history.audit_log()

    assert [e.action for e in events] == [
        "model.create",
        "version.create",
        "version.stage",
        "alias.set",
        "version.approve",
        "version.reject",
        "card.edit",
    ]
    stage = events[2]
    assert (stage.actor, stage.entity) == ("ana", "model:churn/1")
    assert (stage.before, stage.after) == ({"stage": "None"}, {"stage": "Staging"})
    assert events[5].actor == "cy" and events[5].after["reason"] == "needs a fairness review"
    assert events[6].before == {"intended_use": ""}


def test_an_untouched_trail_verifies(history):
    result = history.verify_audit()
    assert result.ok and result.checked == 7
    assert result.head_hash == history.audit_log()[-1].hash


def test_an_edited_entry_is_named(history):
    sql(history, "UPDATE audit_events SET actor = 'mallory' WHERE seq = 3")

    result = history.verify_audit()

    assert not result.ok
    assert result.first_bad == 3
    assert "edited" in result.problem


def test_an_edited_before_value_is_named(history):
    forged = json.dumps({"stage": "Production"})
    sql(history, "UPDATE audit_events SET before = :v WHERE seq = 3", v=forged)
    assert history.verify_audit().first_bad == 3


def test_a_deleted_entry_is_named(history):
    sql(history, "DELETE FROM audit_events WHERE seq = 4")

    result = history.verify_audit()

    assert (result.ok, result.first_bad) == (False, 4)
    assert "entry #4 was deleted" in result.problem


def test_reordered_entries_are_named(history):
    sql(history, "UPDATE audit_events SET seq = 100 WHERE seq = 5")
    sql(history, "UPDATE audit_events SET seq = 5 WHERE seq = 6")
    sql(history, "UPDATE audit_events SET seq = 6 WHERE seq = 100")

    result = history.verify_audit()

    assert (result.ok, result.first_bad) == (False, 5)


def test_a_deleted_tail_is_noticed(history):
    sql(history, "DELETE FROM audit_events WHERE seq = 7")

    result = history.verify_audit()

    assert (result.ok, result.first_bad) == (False, 7)
    assert "newest entries were deleted" in result.problem


def test_a_rewritten_chain_is_caught_by_an_anchor_kept_elsewhere(history):
    anchor = history.verify_audit().head_hash
    with history.db.engine.begin() as conn:  # forge a whole new, internally valid chain
        conn.execute(text("DELETE FROM audit_events"))
        conn.execute(text("DELETE FROM audit_head"))
        audit.append(conn, actor="mallory", action="model.create", entity="model:churn")

    assert history.verify_audit().ok
    result = history.verify_audit(anchor=anchor)
    assert not result.ok and "history was rewritten" in result.problem


def test_the_log_filters_by_model(history, yard):
    yard.registry.create_registered_model("demand")
    assert {e.model_name for e in history.audit_log("demand")} == {"demand"}
    assert len(history.audit_log("churn")) == 7


def test_concurrent_appends_keep_one_unbroken_chain(yard):
    """Threads writing at once (each its own transaction) never fork the chain."""
    errors: list[BaseException] = []

    def worker(i: int) -> None:
        try:
            client = yard.registry.as_actor(Actor(f"user{i}"))
            for j in range(5):
                client.create_registered_model(f"m-{i}-{j}")
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert errors == []
    result = yard.registry.verify_audit()
    assert result.ok and result.checked == 30
