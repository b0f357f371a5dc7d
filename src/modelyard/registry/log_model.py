"""The fluent model API: ``modelyard.log_model`` and ``modelyard.load_model``.

``log_model`` saves a model in its flavor's safe format (inferred from the object) into the
active run's artifacts under ``name/`` — starting and ending a run around it when none is
active — and registers it as a new version when ``registered_model_name`` is given.
``load_model`` takes any model URI (``models:/churn@champion``, ``models:/churn/3``,
``runs:/<id>/model``) or a local folder.

>>> import modelyard
>>> with modelyard.start_run():                                        # doctest: +SKIP
...     info = modelyard.log_model(forest, "model", input_example=X[:5],
...                                registered_model_name="churn")
>>> modelyard.load_model("models:/churn/1").predict(X)                 # doctest: +SKIP
"""

from __future__ import annotations

import tempfile
import threading
from collections.abc import Collection
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from modelyard.artifacts.repository import validate_artifact_path
from modelyard.config import Settings
from modelyard.registry.client import RegistryClient
from modelyard.registry.entities import ModelVersion
from modelyard.registry.formats.flavors import LoadedModel, save_model
from modelyard.registry.formats.flavors import load_model as load_model_folder
from modelyard.registry.formats.signature import Signature
from modelyard.tracking import fluent
from modelyard.tracking.entities import RunStatus

_registries: dict[int, RegistryClient] = {}
_lock = threading.Lock()


@dataclass(frozen=True, slots=True)
class ModelInfo:
    """Where a logged model went: its URI, run, flavor and (when registered) its version."""

    model_uri: str
    run_id: str
    artifact_path: str
    flavor: str
    signature: dict[str, Any] | None
    registered_version: ModelVersion | None = None


def registry_for(settings: Settings) -> RegistryClient:
    """One ``RegistryClient`` per settings object (the fluent API's stores)."""
    with _lock:
        client = _registries.get(id(settings))
        if client is None or client.settings is not settings:
            client = RegistryClient.from_settings(settings)
            _registries[id(settings)] = client
        return client


def log_model(
    model: Any,
    name: str,
    signature: Signature | dict[str, Any] | None = None,
    input_example: Any = None,
    registered_model_name: str | None = None,
    *,
    flavor: str | None = None,
    trusted: bool = False,
) -> ModelInfo:
    """Save ``model`` under ``name/`` in the active run and optionally register it.

    The flavor is inferred (scikit-learn → skops, LightGBM, XGBoost, ONNX, PythonModel);
    the signature is inferred from ``input_example`` when not given. ``trusted=True`` is
    required only for a ``PythonModel``, which is stored with cloudpickle.
    """
    validate_artifact_path(name, "name")
    client = fluent.get_client()
    active = fluent.active_run()
    started = active is None
    run = active or fluent.start_run()
    run_id = run.info.run_id
    try:
        with tempfile.TemporaryDirectory(prefix="modelyard-log-model-") as tmp:
            folder = Path(tmp) / "model"
            manifest = save_model(
                model,
                folder,
                flavor=flavor,
                signature=signature,
                input_example=input_example,
                run_id=run_id,
                trusted=trusted,
            )
            client.log_artifacts(run_id, folder, name)
        uri = f"runs:/{run_id}/{name}"
        version = None
        if registered_model_name is not None:
            version = registry_for(client.settings).register_model(uri, registered_model_name)
    except BaseException:
        if started:
            fluent.end_run(RunStatus.FAILED)
        raise
    if started:
        fluent.end_run(RunStatus.FINISHED)
    return ModelInfo(uri, run_id, name, manifest["flavor"], manifest.get("signature"), version)


def load_model(
    model_uri: str | Path, *, trusted: bool = False, trusted_types: Collection[str] = ()
) -> LoadedModel:
    """Load a model from a URI (``models:/…``, ``runs:/…``) or a saved model folder.

    Safe formats load as they are; pickle-based ones need ``trusted=True``.
    """
    if isinstance(model_uri, Path) or not str(model_uri).startswith(("models:/", "runs:/")):
        return load_model_folder(model_uri, trusted=trusted, trusted_types=trusted_types)
    registry = registry_for(fluent.get_client().settings)
    return registry.load_model(str(model_uri), trusted=trusted, trusted_types=trusted_types)
