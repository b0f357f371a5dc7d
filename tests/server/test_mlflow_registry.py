"""The unmodified MLflow client against ``modelyard server``: registry and logged models.

A real server process (``live_server``) and the real ``mlflow`` package: ``log_model`` with
``registered_model_name``, ``register_model``, the ``MlflowClient`` registry calls, stage
transitions, aliases, and ``mlflow.pyfunc.load_model("models:/name@alias")``. Governance
holds on this path too: the events land in modelyard's audit trail.
"""

from __future__ import annotations

import numpy as np
import pytest

mlflow = pytest.importorskip("mlflow")
from mlflow.exceptions import MlflowException  # noqa: E402
from mlflow.tracking import MlflowClient  # noqa: E402


@pytest.fixture
def client(live_server, monkeypatch):
    monkeypatch.setenv("MLFLOW_TRACKING_URI", live_server.url)
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")
    mlflow.set_tracking_uri(live_server.url)
    yield MlflowClient(live_server.url)
    while mlflow.active_run() is not None:
        mlflow.end_run()


@pytest.fixture
def data():
    rng = np.random.default_rng(5)
    X = rng.random((40, 3))
    return X, (X[:, 0] > 0.5).astype(int)


@pytest.fixture
def logged(client, data, unique):
    """A LogisticRegression logged by mlflow.sklearn.log_model and registered as version 1."""
    from sklearn.linear_model import LogisticRegression

    X, y = data
    model = LogisticRegression().fit(X, y)
    mlflow.set_experiment(f"registry-{unique}")
    with mlflow.start_run() as run:
        info = mlflow.sklearn.log_model(
            model, name="model", registered_model_name=f"churn-{unique}", input_example=X[:2]
        )
    return model, info, run.info.run_id, f"churn-{unique}"


def test_log_model_with_registered_model_name_creates_a_ready_version(client, logged):
    _, info, run_id, name = logged

    version = client.get_model_version(name, "1")

    assert version.status == "READY"
    assert version.current_stage == "None"
    assert version.run_id == run_id
    assert version.source == info.model_uri
    assert client.get_registered_model(name).latest_versions[0].version == "1"


def test_pyfunc_loads_a_version_through_its_alias(client, logged, data):
    model, _, _, name = logged
    X, _ = data
    client.set_registered_model_alias(name, "champion", "1")

    loaded = mlflow.pyfunc.load_model(f"models:/{name}@champion")

    np.testing.assert_array_equal(loaded.predict(X), model.predict(X))


def test_aliases_round_trip(client, logged):
    _, info, _, name = logged
    mlflow.register_model(info.model_uri, name)
    client.set_registered_model_alias(name, "challenger", "2")

    assert client.get_model_version_by_alias(name, "challenger").version == "2"
    assert client.get_registered_model(name).aliases == {"challenger": "2"}
    client.delete_registered_model_alias(name, "challenger")
    assert client.get_registered_model(name).aliases == {}
    with pytest.raises(MlflowException, match="no alias 'challenger'"):
        client.get_model_version_by_alias(name, "challenger")


def test_stage_transitions_and_updates(client, logged):
    _, info, _, name = logged
    mlflow.register_model(info.model_uri, name)
    for version in ("1", "2"):
        client.transition_model_version_stage(name, version, "Staging")
        client.transition_model_version_stage(name, version, "Production")
    client.update_model_version(name, "2", description="retrained on January")

    stages = {v.version: v.current_stage for v in client.search_model_versions(f"name='{name}'")}
    assert stages == {"1": "Archived", "2": "Production"}
    assert client.get_model_version(name, "2").description == "retrained on January"


def test_an_invalid_transition_is_a_client_error_not_a_retry(client, logged):
    _, _, _, name = logged
    with pytest.raises(MlflowException, match="promote it to Staging first") as caught:
        client.transition_model_version_stage(name, "1", "Production")
    assert caught.value.error_code == "INVALID_STATE"


def test_search_registered_models_finds_by_name(client, logged):
    _, _, _, name = logged
    found = client.search_registered_models(filter_string=f"name LIKE '{name}%'")
    assert [m.name for m in found] == [name]
    assert client.search_registered_models(filter_string=f"name = '{name}'")[0].name == name


def test_changes_made_through_mlflow_are_in_the_audit_trail(client, logged, live_server):
    from modelyard.registry.client import RegistryClient

    _, _, _, name = logged
    client.set_registered_model_alias(name, "champion", "1")

    registry = RegistryClient.from_settings(live_server.local_settings())
    actions = [e.action for e in registry.audit_log(name)]
    assert actions == ["model.create", "version.create", "alias.set"]
    assert registry.verify_audit().ok
