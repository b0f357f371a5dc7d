"""A registered version is written once: its files carry a digest taken at registration,
loading verifies it, and the tags and verdicts that steer promotion come only from
modelyard itself — never from a client's request."""

from __future__ import annotations

import pytest
from sqlalchemy import text
from tests.registry.conftest import log_sklearn_model

from modelyard.digests import tree_digest
from modelyard.errors import IntegrityViolation, InvalidState, PermissionDenied
from modelyard.registry.entities import GateVerdict, Stage
from modelyard.registry.logged_models import PENDING, READY
from modelyard.registry.policy import PromotionPolicy, recorded_gate


@pytest.fixture
def version(local_yard, saved_model):
    run_id = log_sklearn_model(local_yard.tracking, saved_model)
    return local_yard.registry.register_model(f"runs:/{run_id}/model", "churn")


def blob_file(local_yard, digest: str):
    root = local_yard.settings.resolved_artifacts_uri().removeprefix("file://")
    from pathlib import Path

    return Path(root) / "blobs" / "sha256" / digest[:2] / digest[2:]


def test_a_version_records_the_digest_of_its_frozen_files(local_yard, version):
    files = local_yard.registry.artifacts.digests_under(version.storage_location)
    assert {path for path, _ in files} >= {"MLmodel.json", "model.skops"}
    assert version.files_digest == tree_digest(files)
    assert local_yard.registry.get_model_version("churn", 1).files_digest == version.files_digest


def test_a_blob_replaced_behind_the_registry_is_refused_and_audited(local_yard, version):
    registry = local_yard.registry
    digest = dict(registry.artifacts.digests_under(version.storage_location))["model.skops"]
    path = blob_file(local_yard, digest)
    path.chmod(0o644)
    path.write_bytes(b"not the registered model")

    with pytest.raises(IntegrityViolation, match="do not match the digest recorded") as caught:
        registry.load_model("models:/churn/1")
    assert caught.value.code == "DATA_LOSS"
    event = registry.audit_log("churn")[-1]
    assert event.action == "version.integrity_failed"
    assert event.before == {"files_digest": version.files_digest}
    assert event.after["files_digest"] != version.files_digest
    assert registry.verify_audit().ok


def test_an_index_row_pointed_at_other_bytes_is_refused(local_yard, version):
    registry = local_yard.registry
    other = registry.artifacts.log_bytes("elsewhere/evil.bin", b"other bytes").digest
    with registry.db.write() as conn:
        conn.execute(
            text("UPDATE artifact_entries SET digest = :d WHERE path = :p"),
            {"d": other, "p": f"{version.storage_location}/model.skops"},
        )
    with pytest.raises(IntegrityViolation):
        registry.download_model("models:/churn/1")


def test_a_requests_client_may_not_touch_modelyard_tags_on_any_path(local_yard, version):
    remote = local_yard.registry.for_clients()
    attempts = [
        lambda: remote.set_model_version_tag("churn", 1, "modelyard.gate.status", "passed"),
        lambda: remote.set_model_version_tag("churn", 1, "Modelyard.Gate.Status", "passed"),
        lambda: remote.delete_model_version_tag("churn", 1, "modelyard.compiled.path"),
        lambda: remote.set_registered_model_tag("churn", "modelyard.owner", "x"),
        lambda: remote.delete_registered_model_tag("churn", "modelyard.owner"),
        lambda: remote.create_registered_model("other", tags={"modelyard.gate.status": "passed"}),
        lambda: remote.create_model_version(
            "churn", version.source, tags={"modelyard.compiled.path": "1/r/artifacts/evil"}
        ),
        lambda: remote.register_model(version.source, "churn", tags={"modelyard.x": "1"}),
        lambda: remote.record_gate_verdict("churn", 1, passed=True, policy="p", summary="s"),
    ]
    for attempt in attempts:
        with pytest.raises(PermissionDenied, match=r"reserved|written by `modelyard gate`"):
            attempt()
    after = local_yard.registry.get_model_version("churn", 1)
    assert after.tags == version.tags
    assert [v.version for v in local_yard.registry.list_model_versions("churn")] == [1]
    remote.set_model_version_tag("churn", 1, "team.note", "fine")  # other keys are the client's


def test_a_gate_tag_alone_never_passes_the_gate(local_yard, version):
    local_yard.registry.set_model_version_tag("churn", 1, "modelyard.gate.status", "passed")
    result = recorded_gate(local_yard.registry.get_model_version("churn", 1), None)
    assert not result.passed and "no recorded quality gate" in result.detail


def test_a_passing_verdict_counts_only_for_the_files_it_judged(local_yard, version):
    registry = local_yard.registry
    policy = PromotionPolicy(gate=recorded_gate)
    gated = registry.as_actor(registry.actor)
    gated.policy = policy
    gated.transition_model_version_stage("churn", 1, "Staging")
    stale = GateVerdict("churn", 1, True, "0" * 64, "demand", "passed", "ana", 1)
    registry.store.record_gate_verdict(stale, registry.actor)
    with pytest.raises(InvalidState, match="judged other files"):
        gated.transition_model_version_stage("churn", 1, "Production")

    registry.record_gate_verdict("churn", 1, passed=True, policy="demand", summary="ok")
    assert gated.transition_model_version_stage("churn", 1, "Production").stage == Stage.PRODUCTION
    actions = [e.action for e in registry.audit_log("churn")]
    assert actions.count("version.gate") == 2


def test_a_finalized_logged_model_cannot_be_reopened(local_yard):
    store = local_yard.registry.logged_models
    experiment = local_yard.tracking.get_or_create_experiment("lm").experiment_id
    model = store.create(experiment, "model")
    assert store.finalized_overlapping(model.artifact_location) is None
    store.set_status(model.model_id, READY)
    with pytest.raises(InvalidState, match="finalized"):
        store.set_status(model.model_id, PENDING)
    location = model.artifact_location
    for path in (location, f"{location}/model.pkl", location.rsplit("/", 2)[0], experiment):
        assert store.finalized_overlapping(path) == model.model_id, path
    assert store.finalized_overlapping(f"{experiment}/other-run/artifacts") is None
