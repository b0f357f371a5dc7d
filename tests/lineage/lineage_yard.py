"""A whole story written by the real rooms, for the lineage tests to read back:

sales.parquet --snapshot--> dataset version sales@1
           \\--FileSource--> feature view sales@1 --> training set --> run --> models:/demand/1
models:/demand/1 --> deployment "web" (revision 1, then revision 2 serving demand/2)
a prediction of revision 1 in the prediction log; a monitor of "web".
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from modelyard.config import Settings
from modelyard.data.client import DataClient
from modelyard.features.client import FeatureStore
from modelyard.features.definitions import Entity, FeatureView, Field, FileSource
from modelyard.monitoring.store import MonitorStore
from modelyard.registry.client import RegistryClient
from modelyard.registry.formats.flavors import save_model
from modelyard.serving.deployments import DeploymentService
from modelyard.serving.prediction_log import PredictionLog, PredictionRecord
from modelyard.tracking.client import TrackingClient

BASE = pd.Timestamp("2024-01-01", tz="UTC")
RULES = "window: 30m\nrules:\n  - name: drift\n    drift_share: {above: 0.3}\n"
REQUEST_ID = "req-000042"


@dataclass
class Story:
    settings: Settings
    tracking: TrackingClient
    registry: RegistryClient
    data: DataClient
    features: FeatureStore
    deployments: DeploymentService
    dataset_node: str
    view_node: str
    training_set_node: str
    run_id: str
    other_run_id: str

    def close(self) -> None:
        self.features.close()
        self.tracking.close()


def write_sales(path: Path) -> Path:
    frame = pd.DataFrame(
        {
            "store_id": [1, 1, 2, 2],
            "event_ts": [BASE + pd.Timedelta(minutes=m) for m in (0, 10, 5, 15)],
            "units": [1.0, 2.0, 5.0, 3.0],
        }
    )
    frame.to_parquet(path, index=False)
    return path


def _register(story_tmp: Path, tracking: TrackingClient, registry: RegistryClient, run_id: str):
    from sklearn.linear_model import LinearRegression

    rng = np.random.default_rng(0)
    X = pd.DataFrame(rng.normal(size=(20, 2)), columns=["a", "b"])
    model = LinearRegression().fit(X, X["a"] * 2)
    folder = story_tmp / f"model-{run_id}"
    save_model(model, folder, input_example=X.head(5), run_id=run_id)
    tracking.log_artifacts(run_id, folder, "model")
    return registry.register_model(f"runs:/{run_id}/model", "demand")


def write_story(tmp: Path, settings: Settings | None = None) -> Story:
    settings = settings or Settings(home=tmp / "yard", user="ana")
    tracking = TrackingClient.from_settings(settings)
    registry = RegistryClient.from_settings(settings)
    data = DataClient.from_settings(settings)
    features = FeatureStore.from_settings(settings)
    sales = write_sales(tmp / "sales.parquet")
    version = data.snapshot(sales, name="sales", pointer=False)
    view = FeatureView(
        "sales",
        entities=[Entity("store", join_keys=["store_id"])],
        source=FileSource(sales, timestamp_field="event_ts", name="sales"),
        schema=[Field("units", "float64")],
        ttl="1h",
    )
    features.apply([view])
    entities = pd.DataFrame(
        {"store_id": [1, 2], "event_timestamp": [BASE + pd.Timedelta(minutes=20)] * 2}
    )
    ts = features.get_training_set(entities, ["sales:units"], name="demand-train")
    experiment = tracking.create_experiment("demand")
    run_id = tracking.create_run(experiment).info.run_id
    features.log_training_set(tracking, run_id, ts)
    data.log_input(run_id, "sales@1", context="evaluation")
    _register(tmp, tracking, registry, run_id)
    other_run_id = tracking.create_run(experiment).info.run_id
    _register(tmp, tracking, registry, other_run_id)

    deployments = DeploymentService(registry.db, registry)
    deployments.create("web", "models:/demand/1", environment="staging")
    log = PredictionLog(registry.artifacts, flush_interval_s=0.05)
    log.append(
        PredictionRecord(
            request_id=REQUEST_ID,
            ts_ms=int(BASE.timestamp() * 1000),
            deployment="web",
            revision=1,
            variant="primary",
            model="demand",
            version=1,
            role="primary",
            status="ok",
            latency_ms=1.5,
            n_rows=1,
            inputs={"a": [1.0], "b": [2.0]},
            outputs=[2.0],
        )
    )
    log.close()
    deployments.switch("web", "models:/demand/2")
    MonitorStore(registry.db).create(
        "web-drift", "web", schedule="@hourly", rules=RULES, created_by="ana"
    )
    return Story(
        settings=settings,
        tracking=tracking,
        registry=registry,
        data=data,
        features=features,
        deployments=deployments,
        dataset_node=f"dataset:sales@{version.digest}",
        view_node="feature_view:sales@1",
        training_set_node=f"training_set:{ts.training_set_id}",
        run_id=run_id,
        other_run_id=other_run_id,
    )
