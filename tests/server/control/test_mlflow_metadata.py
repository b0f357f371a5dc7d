"""What MLflow stores as given, through the unmodified ``mlflow`` client: model versions
naming a run (or files) this server lacks, a parent-run tag naming no run; and experiment
tags deleted as MLflow deletes them."""

from __future__ import annotations

import pytest

mlflow = pytest.importorskip("mlflow")

from mlflow import MlflowClient  # noqa: E402
from mlflow.exceptions import MlflowException  # noqa: E402
from mlflow.utils.mlflow_tags import MLFLOW_PARENT_RUN_ID  # noqa: E402


@pytest.fixture(autouse=True)
def mlflow_env(live_server, monkeypatch):
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")
    monkeypatch.setenv("MLFLOW_DISABLE_TELEMETRY", "true")


@pytest.fixture
def client(live_server) -> MlflowClient:
    return MlflowClient(live_server.url)


def test_versions_naming_unknown_runs_are_stored_searched_and_tagged(client, unique):
    name = f"meta-{unique}"
    client.create_registered_model(name)

    first = client.create_model_version(name, "runs:/run_id/model", "run_id_1", {"k": "v"})
    second = client.create_model_version(name, "runs:/run_id/another_model", "run_id_1")
    client.set_model_version_tag(name, "2", "empty", "")

    assert (first.version, first.run_id, first.tags) == ("1", "run_id_1", {"k": "v"})
    assert first.status == "READY"
    assert client.get_model_version_download_uri(name, "1") == "runs:/run_id/model"
    found = client.search_model_versions(f"name = '{name}' AND run_id = 'run_id_1'")
    assert [v.version for v in found] == ["2", "1"]
    assert client.get_model_version(name, "2").tags == {"empty": ""}
    assert second.source == "runs:/run_id/another_model"


def test_a_version_naming_an_unknown_run_can_take_aliases_and_stages(client, unique):
    name = f"meta-stage-{unique}"
    client.create_registered_model(name)
    client.create_model_version(name, "runs:/run_id/model", "run_id_1")

    client.set_registered_model_alias(name, "champion", "1")
    client.transition_model_version_stage(name, "1", "Staging")

    assert client.get_model_version_by_alias(name, "champion").version == "1"
    assert client.get_model_version(name, "1").current_stage == "Staging"


def test_a_source_climbing_out_of_its_folder_is_refused(client, unique):
    name = f"meta-bad-{unique}"
    client.create_registered_model(name)

    with pytest.raises(MlflowException, match="If supplying a source as an http, https,"):
        client.create_model_version(name, "http://host:9000/models/../../../", "run_id_1")


def test_a_parent_run_tag_naming_no_run_is_kept(client, unique):
    experiment_id = client.create_experiment(f"parent-{unique}")

    run = client.create_run(experiment_id, tags={MLFLOW_PARENT_RUN_ID: "7", "my": "tag"})

    assert client.get_run(run.info.run_id).data.tags[MLFLOW_PARENT_RUN_ID] == "7"
    assert [r.info.run_id for r in client.search_runs([experiment_id])] == [run.info.run_id]


def test_experiment_tags_are_deleted_and_a_missing_one_is_an_error(client, unique):
    experiment_id = client.create_experiment(f"tags-{unique}", tags={"a": "1", "b": "2"})

    client.delete_experiment_tag(experiment_id, "a")

    assert client.get_experiment(experiment_id).tags == {"b": "2"}
    with pytest.raises(MlflowException, match="No tag with name: a") as info:
        client.delete_experiment_tag(experiment_id, "a")
    assert info.value.error_code == "RESOURCE_DOES_NOT_EXIST"


def test_reserved_experiment_tags_cannot_be_deleted_by_a_client(client, unique):
    experiment_id = client.create_experiment(f"reserved-{unique}")

    with pytest.raises(MlflowException, match=r"modelyard\.gate") as info:
        client.delete_experiment_tag(experiment_id, "modelyard.gate")
    assert info.value.error_code == "PERMISSION_DENIED"


def test_dataset_input_tags_come_back_as_sent(client, unique):
    from mlflow.entities import Dataset, DatasetInput, InputTag

    run = client.create_run(client.create_experiment(f"inputs-{unique}"))
    dataset = Dataset(name="d", digest="f0f3e026", source_type="local", source="{}")
    tagged = DatasetInput(
        dataset, [InputTag("foo", "baz"), InputTag("mlflow.data.context", "train")]
    )
    other = Dataset(name="e", digest="abc", source_type="local", source="{}")
    untagged_context = DatasetInput(other, [InputTag("tag1", "value1")])

    client.log_inputs(run.info.run_id, datasets=[tagged, untagged_context])

    inputs = {d.dataset.name: d for d in client.get_run(run.info.run_id).inputs.dataset_inputs}
    assert [(t.key, t.value) for t in inputs["d"].tags] == [
        ("foo", "baz"),
        ("mlflow.data.context", "train"),
    ]
    assert [(t.key, t.value) for t in inputs["e"].tags] == [("tag1", "value1")]


def test_a_relative_artifact_location_is_resolved_by_the_server(client, live_server, unique):
    relative = client.create_experiment(f"rel-{unique}", artifact_location="my_location")
    remote = client.create_experiment(f"s3-{unique}", artifact_location="s3://bucket/x")

    location = client.get_experiment(relative).artifact_location
    assert location.startswith("/") and location.endswith("/my_location")
    assert client.get_experiment(remote).artifact_location == "s3://bucket/x"


def test_a_copy_of_a_metadata_version_downloads_from_the_original_source(client, unique):
    name = f"meta-copy-{unique}"
    client.create_registered_model(name)
    client.create_model_version(name, "runs:/run_id/model", "run_id_1", description="dummy")
    client.set_registered_model_alias(name, "test_alias", "1")

    copy = client.copy_model_version(f"models:/{name}@test_alias", name)

    assert (copy.version, copy.source, copy.run_id) == ("2", f"models:/{name}/1", "run_id_1")
    assert client.get_model_version_download_uri(name, "2") == "runs:/run_id/model"


def test_a_version_without_description_has_an_empty_one(client, unique):
    name = f"meta-desc-{unique}"
    client.create_registered_model(name)
    client.create_model_version(name, "runs:/run_id/model", "run_id_1")

    assert client.get_model_version(name, "1").description == ""
