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


@pytest.fixture(scope="module")
def tracking_uri(live_server):
    """Point the MLflow client at the server for this module (no retries: fail fast)."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("MLFLOW_TRACKING_URI", live_server.url)
        patch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")
        mlflow.set_tracking_uri(live_server.url)
        yield live_server.url
        while mlflow.active_run() is not None:
            mlflow.end_run()
        mlflow.set_tracking_uri(None)  # MLflow's global outlives the environment: unset it


@pytest.fixture(scope="module")
def data():
    rng = np.random.default_rng(5)
    X = rng.random((40, 3))
    return X, (X[:, 0] > 0.5).astype(int)


@pytest.fixture(scope="module")
def logged(tracking_uri, data):
    """One LogisticRegression logged by ``mlflow.sklearn.log_model`` with
    ``registered_model_name`` (logging is slow, so the module shares it)."""
    import uuid

    from sklearn.linear_model import LogisticRegression

    X, y = data
    model = LogisticRegression().fit(X, y)
    name = f"churn-{uuid.uuid4().hex[:8]}"
    mlflow.set_experiment(f"registry-{name}")
    with mlflow.start_run() as run:
        info = mlflow.sklearn.log_model(
            model,
            name="model",
            registered_model_name=name,
            input_example=X[:2],
            pip_requirements=["scikit-learn"],  # skips MLflow's slow requirement inference
        )
    return model, info, run.info.run_id, name


@pytest.fixture
def client(tracking_uri):
    return MlflowClient(tracking_uri)


@pytest.fixture
def registered(client, logged, unique):
    """The logged model registered (``mlflow.register_model``) under a fresh name."""
    model, info, run_id, _ = logged
    name = f"fraud-{unique}"
    version = mlflow.register_model(info.model_uri, name)
    assert version.version == "1"
    return model, info, run_id, name


def test_log_model_with_registered_model_name_creates_a_ready_version(client, logged):
    _, info, run_id, name = logged

    version = client.get_model_version(name, "1")

    assert version.status == "READY"
    assert version.current_stage == "None"
    assert version.run_id == run_id
    assert version.source == info.model_uri
    assert client.get_registered_model(name).latest_versions[0].version == "1"


def test_pyfunc_loads_a_version_through_its_alias(client, registered, data):
    model, _, _, name = registered
    X, _ = data
    client.set_registered_model_alias(name, "champion", "1")

    loaded = mlflow.pyfunc.load_model(f"models:/{name}@champion")

    np.testing.assert_array_equal(loaded.predict(X), model.predict(X))


def test_aliases_round_trip(client, registered):
    _, info, _, name = registered
    mlflow.register_model(info.model_uri, name)
    client.set_registered_model_alias(name, "challenger", "2")

    assert client.get_model_version_by_alias(name, "challenger").version == "2"
    assert client.get_registered_model(name).aliases == {"challenger": "2"}
    client.delete_registered_model_alias(name, "challenger")
    assert client.get_registered_model(name).aliases == {}
    with pytest.raises(MlflowException, match="no alias 'challenger'"):
        client.get_model_version_by_alias(name, "challenger")


def test_stage_transitions_and_updates(client, registered):
    _, info, _, name = registered
    mlflow.register_model(info.model_uri, name)
    for version in ("1", "2"):
        client.transition_model_version_stage(name, version, "Staging")
        client.transition_model_version_stage(name, version, "Production")
    client.update_model_version(name, "2", description="retrained on January")

    stages = {v.version: v.current_stage for v in client.search_model_versions(f"name='{name}'")}
    assert stages == {"1": "Archived", "2": "Production"}
    assert client.get_model_version(name, "2").description == "retrained on January"


def test_an_invalid_transition_is_a_client_error_not_a_retry(client, registered):
    _, _, _, name = registered
    with pytest.raises(MlflowException, match="promote it to Staging first") as caught:
        client.transition_model_version_stage(name, "1", "Production")
    assert caught.value.error_code == "INVALID_STATE"


def test_search_registered_models_finds_by_name(client, registered):
    _, _, _, name = registered
    found = client.search_registered_models(filter_string=f"name LIKE '{name}%'")
    assert [m.name for m in found] == [name]
    assert client.search_registered_models(filter_string=f"name = '{name}'")[0].name == name


def test_changes_made_through_mlflow_are_in_the_audit_trail(client, registered, live_server):
    from modelyard.registry.client import RegistryClient

    _, _, _, name = registered
    client.set_registered_model_alias(name, "champion", "1")

    registry = RegistryClient.from_settings(live_server.local_settings())
    actions = [e.action for e in registry.audit_log(name)]
    assert actions == ["model.create", "version.create", "alias.set"]
    assert registry.verify_audit().ok


def test_modelyard_loads_what_the_mlflow_client_logged(registered, live_server, data):
    from modelyard.registry.client import RegistryClient

    model, _, _, name = registered
    X, _ = data

    registry = RegistryClient.from_settings(live_server.local_settings())
    loaded = registry.load_model(f"models:/{name}/1")

    assert loaded.flavor == "sklearn"
    np.testing.assert_array_equal(loaded.predict(X), model.predict(X))


@pytest.mark.parametrize(
    ("method", "path", "payload", "status", "code", "message"),
    [
        (
            "GET",
            "registered-models/get",
            {"name": "no-such-model"},
            404,
            "RESOURCE_DOES_NOT_EXIST",
            "Registered Model with name=no-such-model not found",
        ),
        (
            "GET",
            "model-versions/get",
            {"name": "x", "version": "abc"},
            400,
            "INVALID_PARAMETER_VALUE",
            "Parameter 'version' must be an integer, got 'abc'",
        ),
        (
            "POST",
            "model-versions/create",
            {"name": "x"},
            400,
            "INVALID_PARAMETER_VALUE",
            "Missing value for required parameter 'source'.",
        ),
        (
            "GET",
            "registered-models/search",
            {"filter": "name > 'a'"},
            400,
            "INVALID_PARAMETER_VALUE",
            "invalid filter at position 5 near '>': comparator > is not allowed for name",
        ),
        (
            "POST",
            "logged-models",
            {"experiment_id": "999999", "name": "m"},
            404,
            "RESOURCE_DOES_NOT_EXIST",
            "999999",
        ),
        (
            "GET",
            "logged-models/m-00000000000000000000000000000000",
            None,
            404,
            "RESOURCE_DOES_NOT_EXIST",
            "Logged model with ID 'm-00000000000000000000000000000000' not found",
        ),
    ],
)
def test_bad_registry_requests_are_clear_4xx_errors(
    http, method, path, payload, status, code, message
):
    url = f"/api/2.0/mlflow/{path}"
    if method == "GET":
        response = http.get(url, params=payload)
    else:
        response = http.request(method, url, json=payload)

    assert response.status_code == status, response.text
    assert response.json()["error_code"] == code
    assert message in response.json()["message"]


def test_an_invalid_transition_over_http_changes_nothing(http, client, registered):
    _, _, _, name = registered
    body = {"name": name, "version": "1", "stage": "Production"}

    response = http.post("/api/2.0/mlflow/model-versions/transition-stage", json=body)

    assert (response.status_code, response.json()["error_code"]) == (400, "INVALID_STATE")
    assert client.get_model_version(name, "1").current_stage == "None"
