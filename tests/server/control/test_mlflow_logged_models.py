"""MLflow 3 logged models through the unmodified ``mlflow`` client: created, named,
searched, tagged, finalized, linked to metrics and to runs' inputs and outputs, listed
as the UI lists them, and registered as versions (which MLflow notes on the model)."""

from __future__ import annotations

import time

import pytest

mlflow = pytest.importorskip("mlflow")

from mlflow import MlflowClient  # noqa: E402
from mlflow.entities import Metric  # noqa: E402
from mlflow.entities.logged_model_input import LoggedModelInput  # noqa: E402
from mlflow.entities.logged_model_output import LoggedModelOutput  # noqa: E402
from mlflow.entities.logged_model_status import LoggedModelStatus  # noqa: E402
from mlflow.exceptions import MlflowException  # noqa: E402
from tests.server.conftest import assert_error  # noqa: E402

API = "/api/2.0/mlflow"


@pytest.fixture(autouse=True)
def mlflow_env(live_server, monkeypatch):
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")
    monkeypatch.setenv("MLFLOW_DISABLE_TELEMETRY", "true")


@pytest.fixture
def client(live_server) -> MlflowClient:
    return MlflowClient(live_server.url)


@pytest.fixture
def experiment_id(client, unique) -> str:
    return client.create_experiment(f"logged-{unique}")


def test_unnamed_models_get_distinct_generated_names(client, experiment_id):
    first = client.create_logged_model(experiment_id)
    time.sleep(0.002)  # created a millisecond later: newest first is then well defined
    second = client.create_logged_model(experiment_id)

    assert first.name and second.name and first.name != second.name
    found = client.search_logged_models(experiment_ids=[experiment_id])
    assert [m.name for m in found] == [second.name, first.name]  # newest first


def test_a_model_keeps_what_it_was_created_with(client, experiment_id):
    model = client.create_logged_model(
        experiment_id,
        name="clf",
        model_type="LLM",
        params={"param": "value"},
        tags={"tag": "value"},
    )

    loaded = client.get_logged_model(model.model_id)
    assert (loaded.name, loaded.model_type) == ("clf", "LLM")
    assert loaded.params == {"param": "value"} and loaded.tags == {"tag": "value"}
    assert loaded.artifact_location == (
        f"mlflow-artifacts:/{experiment_id}/models/{model.model_id}/artifacts"
    )


def test_a_source_run_naming_no_run_is_kept_as_given(client, experiment_id):
    model = client.create_logged_model(experiment_id, source_run_id="123")

    assert client.get_logged_model(model.model_id).source_run_id == "123"


def test_search_pages_filters_and_orders(client, experiment_id):
    first = client.create_logged_model(experiment_id, name="first")
    time.sleep(0.002)
    second = client.create_logged_model(experiment_id, name="second")

    page = client.search_logged_models(experiment_ids=[experiment_id], max_results=1)
    rest = client.search_logged_models(
        experiment_ids=[experiment_id], max_results=1, page_token=page.token
    )
    by_name = client.search_logged_models(
        experiment_ids=[experiment_id], filter_string="name = 'first'"
    )
    oldest_first = client.search_logged_models(
        experiment_ids=[experiment_id],
        order_by=[{"field_name": "creation_timestamp", "ascending": True}],
    )

    assert [m.name for m in page] == ["second"] and page.token is not None
    assert [m.name for m in rest] == ["first"] and rest.token is None
    assert [m.model_id for m in by_name] == [first.model_id]
    assert [m.model_id for m in oldest_first] == [first.model_id, second.model_id]


def test_metrics_logged_against_a_model_are_the_models_and_the_runs(client, experiment_id):
    run = client.create_run(experiment_id)
    model = client.create_logged_model(experiment_id)
    other = client.create_logged_model(experiment_id)
    client.log_metric(
        run.info.run_id,
        key="metric",
        value=0.5,
        timestamp=123456789,
        step=1,
        dataset_name="name",
        dataset_digest="digest",
        model_id=model.model_id,
    )

    assert client.get_logged_model(model.model_id).metrics == [
        Metric(
            key="metric",
            value=0.5,
            timestamp=123456789,
            step=1,
            model_id=model.model_id,
            dataset_name="name",
            dataset_digest="digest",
            run_id=run.info.run_id,
        )
    ]
    assert client.get_run(run.info.run_id).data.metrics == {"metric": 0.5}
    on_dataset = client.search_logged_models(
        experiment_ids=[experiment_id],
        datasets=[{"dataset_name": "name", "dataset_digest": "digest"}],
    )
    assert [m.model_id for m in on_dataset] == [model.model_id] != [other.model_id]


def test_a_metric_for_an_unknown_model_changes_nothing(client, experiment_id):
    run = client.create_run(experiment_id)

    with pytest.raises(MlflowException, match="Logged model with ID 'm-nope' not found"):
        client.log_metric(run.info.run_id, "metric", 1.0, model_id="m-nope")
    assert client.get_run(run.info.run_id).data.metrics == {}


def test_runs_show_the_models_they_used_and_produced(client, experiment_id):
    run = client.create_run(experiment_id)
    used = client.create_logged_model(experiment_id)
    produced = client.create_logged_model(experiment_id)

    client.log_inputs(run.info.run_id, models=[LoggedModelInput(model_id=used.model_id)])
    client.log_outputs(run.info.run_id, [LoggedModelOutput(produced.model_id, 1)])

    loaded = client.get_run(run.info.run_id)
    assert [m.model_id for m in loaded.inputs.model_inputs] == [used.model_id]
    assert loaded.outputs.model_outputs == [LoggedModelOutput(produced.model_id, 1)]


def test_tags_are_set_and_deleted_and_a_missing_tag_is_an_error(client, experiment_id):
    model = client.create_logged_model(experiment_id)
    client.set_logged_model_tags(model.model_id, {"tag1": "value1", "tag2": "value2"})
    client.delete_logged_model_tag(model.model_id, "tag1")

    assert client.get_logged_model(model.model_id).tags == {"tag2": "value2"}
    with pytest.raises(MlflowException, match="No tag with key"):
        client.delete_logged_model_tag(model.model_id, "tag1")


def test_a_deleted_model_is_gone(client, experiment_id):
    model = client.create_logged_model(experiment_id)
    client.delete_logged_model(model.model_id)

    with pytest.raises(MlflowException, match="not found"):
        client.get_logged_model(model.model_id)
    assert list(client.search_logged_models(experiment_ids=[experiment_id])) == []


def test_a_finalized_model_cannot_be_failed_afterwards(client, experiment_id):
    """Security rule over MLflow's: a READY model's files are immutable, so it stays READY."""
    model = client.create_logged_model(experiment_id)
    ready = client.finalize_logged_model(model.model_id, LoggedModelStatus.READY)

    assert ready.status == LoggedModelStatus.READY
    with pytest.raises(MlflowException, match="finalized \\(READY\\)"):
        client.finalize_logged_model(model.model_id, LoggedModelStatus.FAILED)


def test_the_ui_lists_and_reads_a_models_files(http, client, experiment_id):
    model = client.create_logged_model(experiment_id)
    folder = f"{experiment_id}/models/{model.model_id}/artifacts"
    put = http.put(f"/api/2.0/mlflow-artifacts/artifacts/{folder}/MLmodel", content=b"flavors: {}")
    assert put.status_code == 200, put.text

    listing = http.get(f"/ajax-api/2.0/mlflow/logged-models/{model.model_id}/artifacts/directories")
    read = http.get(
        f"/ajax-api/2.0/mlflow/logged-models/{model.model_id}/artifacts/files",
        params={"artifact_file_path": "MLmodel"},
    )
    escape = http.get(
        f"/ajax-api/2.0/mlflow/logged-models/{model.model_id}/artifacts/files",
        params={"artifact_file_path": "../../other/MLmodel"},
    )

    assert listing.status_code == 200
    assert [(f["path"], f["is_dir"]) for f in listing.json()["files"]] == [("MLmodel", False)]
    assert read.status_code == 200 and read.content == b"flavors: {}"
    assert_error(escape, 400, "INVALID_PARAMETER_VALUE", "artifact_file_path")


def test_registering_a_model_notes_the_version_on_it(client, experiment_id, unique):
    name = f"noted-{unique}"
    client.create_registered_model(name)
    model = client.create_logged_model(experiment_id)

    for _ in range(2):
        client.create_model_version(name, source=model.artifact_location, model_id=model.model_id)

    assert client.get_logged_model(model.model_id).tags["mlflow.modelVersions"] == (
        f'[{{"name": "{name}", "version": 1}}, {{"name": "{name}", "version": 2}}]'
    )
