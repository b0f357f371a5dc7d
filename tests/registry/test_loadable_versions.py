"""A registered version holds a loadable model: modelyard refuses files without a saved
model, and a version accepted through the MLflow API without one is flagged at once."""

from __future__ import annotations

import pytest

from modelyard.errors import InvalidParameter
from modelyard.registry.reserved_tags import UNLOADABLE_TAG


@pytest.fixture
def bare_run(local_yard, tmp_path):
    """A run that logged a model file as a plain artifact (no MLmodel.json manifest)."""
    (tmp_path / "model.skops").write_bytes(b"bytes that are not a saved model")
    experiment = local_yard.tracking.get_or_create_experiment("bare").experiment_id
    run_id = local_yard.tracking.create_run(experiment).info.run_id
    local_yard.tracking.log_artifact(run_id, tmp_path / "model.skops", "model")
    return run_id


def test_registering_files_without_a_saved_model_is_refused_and_creates_nothing(
    local_yard, bare_run
):
    with pytest.raises(InvalidParameter, match=r"holds no saved model .*modelyard\.log_model"):
        local_yard.registry.register_model(f"runs:/{bare_run}/model", "bare")
    assert local_yard.registry.list_registered_models() == []


def test_through_the_mlflow_api_it_is_accepted_but_flagged_with_the_fix(local_yard, bare_run):
    remote = local_yard.registry.for_clients()
    remote.create_registered_model("bare")
    version = remote.create_model_version("bare", f"runs:/{bare_run}/model")
    assert "holds no saved model" in version.tags[UNLOADABLE_TAG]
    with pytest.raises(PermissionError, match="reserved"):
        remote.delete_model_version_tag("bare", version.version, UNLOADABLE_TAG)


def test_a_saved_model_registers_unflagged(local_yard, local_run_id):
    version = local_yard.registry.register_model(f"runs:/{local_run_id}/model", "churn")
    assert version.flavor == "sklearn" and UNLOADABLE_TAG not in version.tags
