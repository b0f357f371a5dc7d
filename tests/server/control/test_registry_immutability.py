"""Attacks on the registry through ``modelyard server``, with the unmodified MLflow client
and raw HTTP: a registered version's files and a finalized logged model's files are written
once, and the ``modelyard.*`` tags that steer the gate and serving are not a client's to set.
"""

from __future__ import annotations

import uuid

import numpy as np
import pytest
from tests.server.conftest import assert_error

from modelyard.artifacts.namespaces import SYSTEM_FOLDERS

mlflow = pytest.importorskip("mlflow")
from mlflow.exceptions import MlflowException  # noqa: E402
from mlflow.tracking import MlflowClient  # noqa: E402

ARTIFACTS = "/api/2.0/mlflow-artifacts/artifacts"
REGISTRY = "/api/2.0/mlflow"


@pytest.fixture(scope="module")
def tracking_uri(live_server):
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("MLFLOW_TRACKING_URI", live_server.url)
        patch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")
        mlflow.set_tracking_uri(live_server.url)
        yield live_server.url
        mlflow.set_tracking_uri(None)  # MLflow's global outlives the environment: unset it


@pytest.fixture(scope="module")
def registered(tracking_uri):
    """A LogisticRegression logged with ``mlflow.sklearn.log_model`` and registered."""
    from sklearn.linear_model import LogisticRegression

    rng = np.random.default_rng(3)
    X = rng.random((30, 3))
    model = LogisticRegression().fit(X, (X[:, 0] > 0.5).astype(int))
    name = f"immutable-{uuid.uuid4().hex[:8]}"
    mlflow.set_experiment(f"exp-{name}")
    with mlflow.start_run():
        info = mlflow.sklearn.log_model(
            model, name="model", registered_model_name=name, pip_requirements=["scikit-learn"]
        )
    return name, info, X


@pytest.fixture
def client(tracking_uri):
    return MlflowClient(tracking_uri)


def version_files(http, location: str) -> dict[str, bytes]:
    listing = http.get(ARTIFACTS, params={"path": location}).json()
    return {
        f["path"]: http.get(f"{ARTIFACTS}/{location}/{f['path']}").content
        for f in listing["files"]
        if not f["is_dir"]
    }


def test_a_registered_versions_files_cannot_be_overwritten_or_deleted(client, registered, http):
    name, _, X = registered
    location = client.get_model_version_download_uri(name, "1").removeprefix("mlflow-artifacts:/")
    assert location.startswith("registry/")
    before = version_files(http, location)
    target = next(path for path in before if path != "MLmodel")

    put = http.put(f"{ARTIFACTS}/{location}/{target}", content=b"attacker's model")
    body = assert_error(put, 403, "PERMISSION_DENIED", "path")
    assert "register a new version" in body["message"]
    assert_error(http.delete(f"{ARTIFACTS}/{location}/{target}"), 403, "PERMISSION_DENIED")
    assert_error(http.delete(f"{ARTIFACTS}/{location}"), 403, "PERMISSION_DENIED")
    assert_error(http.delete(f"{ARTIFACTS}/registry"), 403, "PERMISSION_DENIED")
    assert_error(
        http.put(f"{ARTIFACTS}/{location}/new.bin", content=b"x"), 403, "PERMISSION_DENIED"
    )

    assert version_files(http, location) == before
    loaded = mlflow.pyfunc.load_model(f"models:/{name}/1")
    assert loaded.predict(X[:2]).shape == (2,)


def test_the_mlflow_clients_own_artifact_upload_is_refused_there(client, registered, tmp_path):
    from mlflow.store.artifact.artifact_repository_registry import get_artifact_repository

    name, _, _ = registered
    repo = get_artifact_repository(client.get_model_version_download_uri(name, "1"))
    forged = tmp_path / "MLmodel"
    forged.write_text("flavors: {}\n")
    with pytest.raises(Exception, match=r"403|PERMISSION_DENIED|immutable|modelyard writes"):
        repo.log_artifact(str(forged))


@pytest.mark.parametrize("folder", sorted(SYSTEM_FOLDERS - {"registry"}))  # registry: above
def test_every_folder_modelyard_writes_itself_is_refused(http, folder):
    put = http.put(f"{ARTIFACTS}/{folder}/x/evil.parquet", content=b"x")
    assert_error(put, 403, "PERMISSION_DENIED", "path")


def test_a_finalized_logged_models_files_are_written_once(client, registered, http):
    _, info, _ = registered
    model = client.get_logged_model(info.model_id)
    location = model.artifact_location.removeprefix("mlflow-artifacts:/")
    assert_error(
        http.put(f"{ARTIFACTS}/{location}/MLmodel", content=b"x"), 403, "PERMISSION_DENIED"
    )
    experiment = location.split("/", 1)[0]
    assert_error(http.delete(f"{ARTIFACTS}/{experiment}"), 403, "PERMISSION_DENIED")
    reopen = http.patch(
        f"{REGISTRY}/logged-models/{info.model_id}",
        json={"model_id": info.model_id, "status": "LOGGED_MODEL_PENDING"},
    )
    assert_error(reopen, 400, "INVALID_STATE", "status")


def test_runs_artifacts_stay_writable(client, registered, http):
    run = client.create_run(client.get_experiment_by_name(f"exp-{registered[0]}").experiment_id)
    root = run.info.artifact_uri.removeprefix("mlflow-artifacts:/")
    assert http.put(f"{ARTIFACTS}/{root}/notes.txt", content=b"ok").status_code == 200
    assert http.delete(f"{ARTIFACTS}/{root}/notes.txt").status_code == 200


@pytest.mark.parametrize(
    "key", ["modelyard.gate.status", "Modelyard.Gate.Status", "modelyard.compiled.path"]
)
def test_a_client_cannot_fake_the_gate_or_steer_serving_by_tags(client, registered, key):
    name, info, _ = registered
    attempts = [
        lambda: client.set_model_version_tag(name, "1", key, "passed"),
        lambda: client.delete_model_version_tag(name, "1", key),
        lambda: client.set_registered_model_tag(name, key, "passed"),
        lambda: client.create_model_version(name, info.model_uri, tags={key: "passed"}),
        lambda: client.create_registered_model(f"{name}-copy", tags={key: "passed"}),
        lambda: client.set_logged_model_tags(info.model_id, {key: "passed"}),
        lambda: client.delete_logged_model_tag(info.model_id, key),
    ]
    for attempt in attempts:
        with pytest.raises(MlflowException) as caught:
            attempt()
        assert caught.value.error_code == "PERMISSION_DENIED", caught.value
        assert "reserved" in caught.value.message
    version = client.get_model_version(name, "1")
    assert key not in version.tags
    assert len(client.search_model_versions(f"name = '{name}'")) == 1
