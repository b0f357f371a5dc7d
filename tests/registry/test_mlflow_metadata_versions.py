"""Versions registered through the MLflow API that name a run or files this store lacks:
stored as MLflow stores them (metadata), their lineage edge recorded as unresolved, and
refused promotion by a policy that requires resolved lineage (off by default)."""

from __future__ import annotations

import time

import pytest
from sqlalchemy import select

from modelyard.errors import InvalidParameter, InvalidState, NotFound
from modelyard.registry.client import RegistryClient
from modelyard.registry.policy import PromotionPolicy
from modelyard.registry.sql_store import PRODUCED, PRODUCED_UNRESOLVED
from modelyard.store.schema import lineage_edges


def served(yard, policy: PromotionPolicy | None = None) -> RegistryClient:
    """The registry as the server hands it a request (``for_clients``)."""
    registry = RegistryClient(
        yard.registry.db, yard.registry.artifacts, yard.settings, policy=policy
    )
    return registry.for_clients()


def edges_into(yard, node: str) -> set[tuple[str, str]]:
    c = lineage_edges.c
    with yard.registry.db.read() as conn:
        rows = conn.execute(select(c.src, c.relation).where(c.dst == node)).all()
    return {(r.src, r.relation) for r in rows}


def test_a_version_naming_an_unknown_run_and_no_files_is_kept_as_metadata(yard):
    registry = served(yard)
    registry.create_registered_model("churn")

    version = registry.create_model_version("churn", "runs:/run_id/model", run_id="run_id_1")

    assert (version.version, version.run_id, version.source) == (
        1,
        "run_id_1",
        "runs:/run_id/model",
    )
    assert version.files_digest is None
    assert registry.get_download_uri("churn", 1) == "runs:/run_id/model"
    assert edges_into(yard, "model:churn/1") == {("run:run_id_1", PRODUCED_UNRESOLVED)}


def test_a_metadata_only_version_cannot_be_loaded_and_says_why(yard):
    registry = served(yard)
    registry.create_registered_model("churn")
    registry.create_model_version("churn", "s3://elsewhere/model")

    with pytest.raises(NotFound, match="holds no files: its source 's3://elsewhere/model'"):
        registry.load_model("models:/churn/1")


def test_files_from_a_known_run_under_an_unknown_run_id_are_frozen_with_unresolved_lineage(
    yard, run_id
):
    registry = served(yard)
    registry.create_registered_model("churn")

    version = registry.create_model_version("churn", f"runs:/{run_id}/model", run_id="elsewhere")

    assert version.run_id == "elsewhere"
    assert version.files_digest is not None
    assert registry.load_model("models:/churn/1").flavor == "sklearn"
    assert edges_into(yard, "model:churn/1") == {("run:elsewhere", PRODUCED_UNRESOLVED)}


def test_a_version_from_a_known_run_has_resolved_lineage(yard, run_id):
    registry = served(yard)
    registry.create_registered_model("churn")
    registry.create_model_version("churn", f"runs:/{run_id}/model", run_id=run_id)

    assert edges_into(yard, "model:churn/1") == {(f"run:{run_id}", PRODUCED)}


def test_modelyards_own_callers_are_still_refused_an_unknown_run(yard):
    yard.registry.create_registered_model("churn")

    with pytest.raises(NotFound, match="Run with id=run_id not found"):
        yard.registry.create_model_version("churn", "runs:/run_id/model")


def test_promotion_ignores_lineage_by_default(yard):
    registry = served(yard)
    registry.create_registered_model("churn")
    registry.create_model_version("churn", "runs:/run_id/model", run_id="run_id_1")
    registry.transition_model_version_stage("churn", 1, "Staging")

    promoted = registry.transition_model_version_stage("churn", 1, "Production")

    assert promoted.stage.value == "Production"


@pytest.mark.parametrize("run_named", [True, False], ids=["unknown-run", "no-run"])
def test_a_policy_requiring_lineage_refuses_production_and_gated_aliases(yard, run_named):
    strict = served(yard, PromotionPolicy(require_lineage=True))
    strict.create_registered_model("churn")
    strict.create_model_version("churn", "runs:/run_id/model", "run_id_1" if run_named else None)
    strict.transition_model_version_stage("churn", 1, "Staging")  # not a promotion

    why = "its run 'run_id_1' is not in this store" if run_named else "it names no run"
    with pytest.raises(InvalidState, match=f"has no resolved lineage \\({why}\\)"):
        strict.transition_model_version_stage("churn", 1, "Production")
    with pytest.raises(InvalidState, match="registry_require_lineage"):
        strict.set_registered_model_alias("churn", "champion", 1)
    strict.set_registered_model_alias("churn", "candidate", 1)  # an ungated alias is fine


def test_a_policy_requiring_lineage_promotes_a_version_from_a_known_run(yard, run_id):
    strict = served(yard, PromotionPolicy(require_lineage=True))
    strict.register_model(f"runs:/{run_id}/model", "churn")
    strict.transition_model_version_stage("churn", 1, "Staging")

    assert strict.transition_model_version_stage("churn", 1, "Production").stage.value == (
        "Production"
    )


def test_the_lineage_requirement_comes_from_settings(settings):
    strict = settings.model_copy(update={"registry_require_lineage": True})

    assert PromotionPolicy.from_settings(strict).require_lineage is True
    assert PromotionPolicy.from_settings(settings).require_lineage is False


@pytest.mark.parametrize(
    "source",
    [
        "mlflow-artifacts://host:9000/models/../../../",
        "http://host:9000/models/../../../",
        "s3a://bucket/api/2.0/mlflow-artifacts/artifacts/../../../",
        "mlflow-artifacts://host:9000/models/..%2f..%2fartifacts",
        "mlflow-artifacts://host:9000/models/artifact%00",
    ],
)
def test_a_metadata_source_that_climbs_out_of_its_folder_is_refused(yard, source):
    registry = served(yard)
    registry.create_registered_model("churn")

    with pytest.raises(InvalidParameter, match="If supplying a source as an http, https,"):
        registry.create_model_version("churn", source)
    assert registry.search_model_versions("name = 'churn'").items == []


@pytest.mark.parametrize("source", ["/etc/passwd", "file:///srv/models/m", "C:/models/m"])
def test_a_local_path_source_is_refused(yard, source):
    registry = served(yard)
    registry.create_registered_model("churn")

    with pytest.raises(InvalidParameter, match="To use a local path as a model version source"):
        registry.create_model_version("churn", source, run_id="run_id_1")


def test_a_stage_transition_updates_the_models_last_update_time(yard):
    registry = served(yard)
    registry.create_registered_model("churn")
    registry.create_model_version("churn", "runs:/run_id/model", run_id="run_id_1")
    before = registry.get_registered_model("churn").last_updated_time
    time.sleep(0.005)  # a later millisecond than the model's last change

    moved = registry.transition_model_version_stage("churn", 1, "Staging")

    after = registry.get_registered_model("churn").last_updated_time
    assert after >= moved.last_updated_time > before
