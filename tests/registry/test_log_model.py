"""``modelyard.log_model`` / ``load_model``: the fluent way in and out of the registry."""

from __future__ import annotations

import numpy as np
import pytest

from modelyard.errors import PermissionDenied
from modelyard.registry.formats.python_model import PythonModel
from modelyard.registry.log_model import load_model, log_model, registry_for


@pytest.fixture
def fitted(frame):
    from sklearn.linear_model import LogisticRegression

    X, y = frame
    return LogisticRegression().fit(X, y)


def test_log_model_infers_the_flavor_and_signature_and_registers(fluent, fitted, frame):
    X, _ = frame
    with fluent.start_run() as run:
        info = log_model(fitted, "model", input_example=X.head(3), registered_model_name="churn")

    assert info.model_uri == f"runs:/{run.info.run_id}/model"
    assert info.flavor == "sklearn"
    assert [c["name"] for c in info.signature["inputs"]] == ["price", "visits"]
    assert info.registered_version.version == 1
    np.testing.assert_array_equal(load_model("models:/churn/1").predict(X), fitted.predict(X))
    np.testing.assert_array_equal(load_model(info.model_uri).predict(X), fitted.predict(X))


def test_without_an_active_run_one_is_started_and_finished(fluent, fitted):
    info = log_model(fitted, "model")

    run = fluent.get_client().get_run(info.run_id)
    assert run.info.status == "FINISHED"
    assert fluent.active_run() is None


def test_aliases_resolve_through_load_model(fluent, fitted, frame):
    X, _ = frame
    info = log_model(fitted, "model", registered_model_name="churn")
    registry_for(fluent.get_client().settings).set_registered_model_alias("churn", "champion", 1)

    loaded = load_model("models:/churn@champion")

    assert loaded.run_id == info.run_id
    np.testing.assert_array_equal(loaded.predict(X), fitted.predict(X))


class Clipped(PythonModel):
    def __init__(self, inner):
        self.inner = inner

    def predict(self, model_input):
        return np.clip(self.inner.predict(model_input), 0, 1)


def test_an_untrusted_python_model_is_refused_and_the_run_records_the_failure(fluent, fitted):
    with pytest.raises(PermissionDenied, match="trusted=True"):
        log_model(Clipped(fitted), "model")

    assert fluent.last_active_run().info.status == "FAILED"
    assert fluent.get_client().list_artifacts(fluent.last_active_run().info.run_id) == []


def test_a_trusted_python_model_logs_and_loads(fluent, fitted, frame):
    X, _ = frame
    info = log_model(Clipped(fitted), "wrapped", trusted=True)
    assert load_model(info.model_uri, trusted=True).predict(X).max() <= 1


def test_an_autologged_model_registers_and_loads_with_the_same_format(fluent, frame):
    """autolog writes ``model/`` in this room's skops layout, so its models register as is."""
    from sklearn.ensemble import RandomForestClassifier

    import modelyard.tracking.autolog as autolog

    X, y = frame
    autolog.autolog(log_training_metrics=False)
    try:
        forest = RandomForestClassifier(n_estimators=3, random_state=0).fit(X, y)
    finally:
        autolog.autolog(disable=True)
    run_id = fluent.last_active_run().info.run_id

    registry = registry_for(fluent.get_client().settings)
    version = registry.register_model(f"runs:/{run_id}/model", "forest")

    assert version.flavor == "sklearn"
    np.testing.assert_array_equal(load_model("models:/forest/1").predict(X), forest.predict(X))
