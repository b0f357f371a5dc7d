"""Reference profiles of model versions: what "normal" looks like, stored once.

A drift check compares what a version serves with what it was trained on. Reloading the
training data (and predicting on it) at every check would cost as much as the training's
own read, so the reference is profiled once — per input feature, and for the
predictions the version makes on that data — and stored as two small files in the
artifact store (``monitoring/references/<model>/<version>/{input,predictions}.profile``,
a system folder clients cannot write), each recorded with its digest in the
``reference_profiles`` table. Every later check reads only those files, and refuses one
whose bytes no longer match the recorded digest.

Where the training data comes from:

* automatically, when a version is registered from a run that logged a dataset version
  of the data room as a *training* input (``DataClient.log_input``, or a training set of
  the feature store): ``ReferenceRecorder.on_version_created`` runs after registration;
* on demand, from any dataset version or table: ``build_reference(..., data="sales@3")``
  (``modelyard monitor reference models:/demand/3 --data sales@3``).

Profiling may fail (the data was purged, the model cannot load here): registration then
succeeds anyway and says so in the log; a monitor of that version reports "no reference
profile" with the reason, never "no drift".
"""

from __future__ import annotations

import hashlib
import logging
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from modelyard.artifacts import namespaces
from modelyard.errors import IntegrityViolation, InvalidParameter, NotFound
from modelyard.monitoring.store import MonitorStore

if TYPE_CHECKING:
    from modelyard.monitoring.profiles import ReferenceProfile
    from modelyard.registry.client import RegistryClient
    from modelyard.registry.entities import ModelVersion

log = logging.getLogger(__name__)

INPUTS = "input"
PREDICTIONS = "predictions"
KINDS = (INPUTS, PREDICTIONS)
#: The column of the predictions profile (one per output for a multi-output model).
PREDICTION_COLUMN = "prediction"
#: Rows predicted on for the predictions profile: quantiles and a reservoir sample of
#: 200,000 predictions are as good as all of them, and the model is called once.
MAX_PREDICTED_ROWS = 200_000


def reference_path(model: str, version: int, kind: str) -> str:
    return f"{namespaces.MONITORING}/references/{model}/{version}/{kind}.profile"


@dataclass(frozen=True, slots=True)
class StoredReference:
    """Where a version's reference profiles are, and what they were built from."""

    model: str
    version: int
    source: str  # "sales@3", a table's label
    inputs: ReferenceProfile
    predictions: ReferenceProfile | None


def training_dataset(registry: RegistryClient, version: ModelVersion) -> str | None:
    """The dataset version (``name@digest``) the version's source run trained on, when the
    data room knows it; None otherwise."""
    run = registry.version_run(version) if version.run_id else None
    if run is None:
        return None
    for dataset in run.inputs:
        # Only the data room's versions can be read back: a feature-store training set
        # records its provenance, not its rows, and an MLflow dataset only its digest.
        if dataset.context == "training" and dataset.digest and dataset.source_type == "modelyard":
            return f"{dataset.name}@{dataset.digest}"
    return None


def feature_columns(version: ModelVersion, columns: list[str]) -> list[str]:
    """The columns the model reads: its signature's names, else every column."""
    named = [spec.get("name") for spec in (version.signature or {}).get("inputs") or []]
    if named and all(isinstance(n, str) for n in named):
        missing = [n for n in named if n not in columns]
        if missing:
            raise InvalidParameter(
                f"the reference data lacks the model's input columns {missing}", field="data"
            )
        return [str(n) for n in named]
    return columns


def build_reference(
    registry: RegistryClient,
    version: ModelVersion,
    data: Any,
    *,
    source: str,
    predict: bool = True,
    trusted: bool = False,
) -> StoredReference:
    """Profile ``data`` (a DataFrame) as ``version``'s reference, predict on it for the
    predictions profile, and store both (replacing earlier ones: an explicit rebuild)."""
    import pandas as pd

    from modelyard.monitoring.profiles import ReferenceProfile

    if not isinstance(data, pd.DataFrame):
        raise InvalidParameter("reference data must be a table", field="data")
    if data.empty:
        raise InvalidParameter("the reference data has no rows", field="data")
    columns = feature_columns(version, [str(c) for c in data.columns])
    inputs = ReferenceProfile.from_table(data[columns], source=source)
    predictions = None
    if predict:
        sample = data[columns]
        if len(sample) > MAX_PREDICTED_ROWS:
            sample = sample.sample(n=MAX_PREDICTED_ROWS, random_state=0)
        loaded = registry.load_model(version.uri, trusted=trusted)
        predictions = ReferenceProfile.from_table(
            prediction_table(loaded.predict(sample)), source=f"{version.uri} on {source}"
        )
    store = MonitorStore(registry.db)
    for kind, profile in ((INPUTS, inputs), (PREDICTIONS, predictions)):
        if profile is None:
            continue
        data = profile.to_bytes()
        path = reference_path(version.name, version.version, kind)
        registry.artifacts.log_bytes(path, data)
        store.put_reference_profile(
            version.name,
            version.version,
            kind,
            artifact_path=path,
            digest=hashlib.sha256(data).hexdigest(),
            rows=profile.rows,
            source=profile.source,
            replace=True,
        )
    return StoredReference(version.name, version.version, source, inputs, predictions)


def prediction_table(predictions: Any) -> dict[str, Any]:
    """Predictions as named columns: ``prediction`` for one output, ``prediction_<i>`` (or
    the frame's own names) for several."""
    import numpy as np
    import pandas as pd

    if isinstance(predictions, pd.DataFrame):
        return {f"{PREDICTION_COLUMN}_{c}": predictions[c].to_numpy() for c in predictions}
    array = np.asarray(predictions)
    if array.ndim <= 1:
        return {PREDICTION_COLUMN: array.reshape(-1)}
    return {f"{PREDICTION_COLUMN}_{i}": array[:, i] for i in range(array.shape[1])}


def load_reference(
    db: Any, artifacts: Any, model: str, version: int, kind: str
) -> ReferenceProfile:
    """The stored profile of ``kind``; ``NotFound`` when none was built,
    ``IntegrityViolation`` when its bytes changed since."""
    from modelyard.monitoring.profiles import ReferenceProfile

    record = MonitorStore(db).get_reference_profile(model, version, kind)
    data = artifacts.read_bytes(record.artifact_path)
    if hashlib.sha256(data).hexdigest() != record.digest:
        raise IntegrityViolation(
            f"the {kind} reference profile of models:/{model}/{version} changed after it was "
            "stored; rebuild it with `modelyard monitor reference`",
            field="reference",
        )
    return ReferenceProfile.from_bytes(data)


def has_reference(db: Any, model: str, version: int) -> bool:
    try:
        MonitorStore(db).get_reference_profile(model, version, INPUTS)
    except NotFound:
        return False
    return True


class ReferenceRecorder:
    """Builds a new version's reference profiles from its training dataset, once.

    Handed to the registry client as a version observer by the interfaces (CLI, server,
    the Python API); a failure is logged, never raised: registration does not depend on
    monitoring.
    """

    def __init__(self, data_client: Any) -> None:
        self.data_client = data_client

    def on_version_created(self, registry: RegistryClient, version: ModelVersion) -> None:
        try:
            self.record(registry, version)
        except Exception as exc:
            log.warning(
                "no reference profile for %s: %s (build one with `modelyard monitor "
                "reference %s --data DATASET`)",
                version.uri,
                exc,
                version.uri,
            )

    def record(self, registry: RegistryClient, version: ModelVersion) -> StoredReference | None:
        if has_reference(registry.db, version.name, version.version):
            return None
        dataset = training_dataset(registry, version)
        if dataset is None:
            return None
        resolved = self.data_client.resolve(dataset)
        return build_reference(
            registry, version, self.data_client.load(resolved), source=resolved.ref
        )


def recording_references(registry: RegistryClient) -> RegistryClient:
    """``registry``, also profiling each new version's training data (the interfaces —
    CLI, server — hand out this client)."""
    from modelyard.data.client import DataClient

    recorder = ReferenceRecorder(DataClient(registry.db, registry.artifacts, registry.settings))
    registry.version_observers = (*registry.version_observers, recorder.on_version_created)
    return registry
