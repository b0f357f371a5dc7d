"""Registered models, versions, stages and aliases — the same behaviour on SQLite and PostgreSQL."""

from __future__ import annotations

import pytest

from modelyard.errors import AlreadyExists, InvalidState, NotFound
from modelyard.registry.entities import READY, Stage
from modelyard.store.lineage import edges_of


def test_registering_a_run_model_creates_version_1_ready_with_flavor_and_signature(yard, run_id):
    version = yard.registry.register_model(f"runs:/{run_id}/model", "churn")

    assert (version.name, version.version, version.status) == ("churn", 1, READY)
    assert version.stage == Stage.NONE
    assert version.run_id == run_id
    assert version.created_by == "ana"
    assert version.flavor == "sklearn"
    assert [c["name"] for c in version.signature["inputs"]] == ["price", "visits"]


def test_versions_count_up_and_numbers_are_never_reused(yard, run_id):
    source = f"runs:/{run_id}/model"
    for _ in range(3):
        yard.registry.register_model(source, "churn")
    yard.registry.delete_model_version("churn", 3)

    assert yard.registry.register_model(source, "churn").version == 4
    assert [v.version for v in yard.registry.list_model_versions("churn")] == [4, 2, 1]


def test_a_version_is_a_frozen_copy_that_survives_its_run_artifacts(yard, run_id):
    version = yard.registry.register_model(f"runs:/{run_id}/model", "churn")
    yard.tracking.artifacts.delete(yard.tracking.get_run(run_id).info.artifact_root)

    model = yard.registry.load_model("models:/churn/1")

    assert model.flavor == "sklearn"
    assert version.storage_location.startswith("registry/")


def test_registration_records_the_lineage_edge_from_the_run(yard, run_id):
    yard.registry.register_model(f"runs:/{run_id}/model", "churn")

    with yard.registry.db.read() as conn:
        assert (f"run:{run_id}", "model:churn/1", "produced") in edges_of(conn, "model:churn/1")


def test_stages_move_through_staging_into_production(yard, run_id):
    yard.registry.register_model(f"runs:/{run_id}/model", "churn")

    yard.registry.transition_model_version_stage("churn", 1, "Staging")
    promoted = yard.registry.transition_model_version_stage("churn", 1, "production")

    assert promoted.stage == Stage.PRODUCTION
    assert yard.registry.get_latest_versions("churn", ["Production"])[0].version == 1


def test_promoting_a_version_archives_the_previous_production_version(yard, run_id):
    for _ in range(2):
        version = yard.registry.register_model(f"runs:/{run_id}/model", "churn")
        yard.registry.transition_model_version_stage("churn", version.version, "Staging")
        yard.registry.transition_model_version_stage("churn", version.version, "Production")

    stages = {v.version: v.stage for v in yard.registry.list_model_versions("churn")}
    assert stages == {1: Stage.ARCHIVED, 2: Stage.PRODUCTION}


def test_repeating_the_current_stage_is_a_harmless_retry(yard, run_id):
    yard.registry.register_model(f"runs:/{run_id}/model", "churn")
    yard.registry.transition_model_version_stage("churn", 1, "Staging")
    events = len(yard.registry.audit_log())

    yard.registry.transition_model_version_stage("churn", 1, "Staging")

    assert len(yard.registry.audit_log()) == events


def test_archive_existing_versions_clears_the_target_stage(yard, run_id):
    for _ in range(2):
        v = yard.registry.register_model(f"runs:/{run_id}/model", "churn")
        yard.registry.transition_model_version_stage(
            "churn", v.version, "Staging", archive_existing_versions=True
        )

    stages = {v.version: v.stage for v in yard.registry.list_model_versions("churn")}
    assert stages == {1: Stage.ARCHIVED, 2: Stage.STAGING}


def test_aliases_name_one_version_and_move(yard, run_id):
    for _ in range(2):
        yard.registry.register_model(f"runs:/{run_id}/model", "churn")

    yard.registry.set_registered_model_alias("churn", "champion", 1)
    yard.registry.set_registered_model_alias("churn", "challenger", 2)
    yard.registry.set_registered_model_alias("churn", "champion", 2)

    assert yard.registry.get_model_version_by_alias("churn", "champion").version == 2
    assert yard.registry.get_registered_model("churn").aliases == {"challenger": 2, "champion": 2}
    assert yard.registry.get_model_version("churn", 2).aliases == ("challenger", "champion")
    yard.registry.delete_registered_model_alias("churn", "challenger")
    assert yard.registry.get_registered_model("churn").aliases == {"champion": 2}


def test_deleting_a_version_deletes_its_aliases(yard, run_id):
    yard.registry.register_model(f"runs:/{run_id}/model", "churn")
    yard.registry.set_registered_model_alias("churn", "champion", 1)

    yard.registry.delete_model_version("churn", 1)

    with pytest.raises(NotFound, match="no alias 'champion'"):
        yard.registry.get_model_version_by_alias("churn", "champion")


def test_model_uris_resolve_by_number_alias_stage_and_latest(yard, run_id):
    for _ in range(3):
        yard.registry.register_model(f"runs:/{run_id}/model", "churn")
    yard.registry.set_registered_model_alias("churn", "champion", 2)
    yard.registry.transition_model_version_stage("churn", 1, "Staging")

    def version_of(uri: str) -> int:
        return yard.registry.resolve(uri).version.version

    assert version_of("models:/churn/3") == 3
    assert version_of("models:/churn@champion") == 2
    assert version_of("models:/churn/Staging") == 1
    assert version_of("models:/churn/latest") == 3
    assert yard.registry.resolve(f"runs:/{run_id}/model").run_id == run_id


def test_descriptions_tags_and_renames(yard, run_id):
    yard.registry.create_registered_model("churn", "first try", tags={"team": "retention"})
    yard.registry.create_model_version("churn", f"runs:/{run_id}/model", description="v1")
    yard.registry.set_registered_model_alias("churn", "champion", 1)
    yard.registry.set_model_version_tag("churn", 1, "validated", "yes")
    yard.registry.update_registered_model("churn", "churn in 30 days")

    renamed = yard.registry.rename_registered_model("churn", "churn-30d")

    assert renamed.description == "churn in 30 days"
    assert renamed.tags == {"team": "retention"}
    assert renamed.aliases == {"champion": 1}
    moved = yard.registry.get_model_version("churn-30d", 1)
    assert (moved.description, moved.tags) == ("v1", {"validated": "yes"})
    with pytest.raises(NotFound):
        yard.registry.get_registered_model("churn")


def test_creating_an_existing_model_is_refused(yard):
    yard.registry.create_registered_model("churn")
    with pytest.raises(AlreadyExists, match="name=churn\\) already exists"):
        yard.registry.create_registered_model("churn")


def test_search_pages_through_models_by_name(yard):
    for name in ("a-churn", "b-churn", "c-demand", "d-churn"):
        yard.registry.create_registered_model(name)

    first = yard.registry.search_registered_models("name LIKE '%churn%'", max_results=2)
    second = yard.registry.search_registered_models(
        "name LIKE '%churn%'", max_results=2, page_token=first.next_page_token
    )

    assert [m.name for m in first] == ["a-churn", "b-churn"]
    assert [m.name for m in second] == ["d-churn"]
    assert second.next_page_token is None


def test_latest_versions_holds_the_newest_of_each_stage(yard, run_id):
    for _ in range(3):
        yard.registry.register_model(f"runs:/{run_id}/model", "churn")
    yard.registry.transition_model_version_stage("churn", 1, "Staging")

    latest = yard.registry.get_registered_model("churn").latest_versions

    assert sorted((v.version, v.stage.value) for v in latest) == [(1, "Staging"), (3, "None")]


def test_deleting_a_model_removes_its_versions(yard, run_id):
    yard.registry.register_model(f"runs:/{run_id}/model", "churn")
    yard.registry.delete_registered_model("churn")

    with pytest.raises(NotFound):
        yard.registry.get_model_version("churn", 1)
    assert yard.registry.list_registered_models() == []


def test_production_is_only_reachable_from_staging(yard, run_id):
    yard.registry.register_model(f"runs:/{run_id}/model", "churn")
    with pytest.raises(InvalidState, match="promote it to Staging first"):
        yard.registry.transition_model_version_stage("churn", 1, "Production")
