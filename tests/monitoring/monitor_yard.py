"""A yard for the monitors' tests: tracking, data, registry (recording reference profiles)
and deployments over one store; a regressor trained on a dataset version; its served
predictions written to the prediction log by the real writer, and feedback."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from modelyard.config import Settings
from modelyard.data.client import DataClient
from modelyard.monitoring import references
from modelyard.monitoring.monitors import MonitorService
from modelyard.registry.client import RegistryClient
from modelyard.registry.formats.flavors import save_model
from modelyard.serving.deployments import DeploymentService
from modelyard.serving.feedback import FeedbackItem, FeedbackStore
from modelyard.serving.prediction_log import PredictionLog, PredictionRecord
from modelyard.tracking.client import TrackingClient

HOUR_MS = 3_600_000
END = 1_790_067_600_000 - 1_790_067_600_000 % HOUR_MS  # an hour boundary
FEATURES = ["price", "promo", "temperature"]
RULES = """
window: 1h
rules:
  - name: input drift
    drift_share: {above: 0.3}
  - name: price drifted
    feature_drift: {feature: price}
  - name: error floor
    metric: {name: mae, above: 5.0}
  - name: coverage
    feedback_coverage: {below: 0.1}
notify:
  - log: true
"""


def sales(n: int, seed: int, price_shift: float = 0.0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    frame = pd.DataFrame(
        {
            "price": rng.normal(10.0 + price_shift, 2.0, n),
            "promo": rng.integers(0, 2, n).astype(float),
            "temperature": rng.normal(15.0, 5.0, n),
        }
    )
    frame["units"] = 50 - 2.0 * frame["price"] + 8 * frame["promo"] + rng.normal(0, 1, n)
    return frame


@dataclass
class Yard:
    settings: Settings
    tracking: TrackingClient
    registry: RegistryClient
    data: DataClient
    deployments: DeploymentService
    tmp: Path

    def train(self, name: str = "demand", *, log_dataset: bool = True, inputs: tuple = ()) -> int:
        """Fit a regressor on a dataset version in a tracked run and register it."""
        from sklearn.linear_model import LinearRegression

        train = sales(3000, seed=1)
        dataset = self.data.snapshot(train, "sales")
        experiment = self.tracking.get_or_create_experiment("demand").experiment_id
        run_id = self.tracking.create_run(experiment).info.run_id
        if log_dataset:
            self.data.log_input(run_id, dataset.ref)
        if inputs:
            self.tracking.log_inputs(run_id, list(inputs))
        model = LinearRegression().fit(train[FEATURES], train["units"])
        folder = self.tmp / f"model-{run_id}"
        save_model(model, folder, input_example=train[FEATURES].head(5), run_id=run_id)
        self.tracking.log_artifacts(run_id, folder, "model")
        return self.registry.register_model(f"runs:/{run_id}/model", name).version

    def serve(self, rows: pd.DataFrame, *, version: int, start_ms: int, prefix: str) -> None:
        """Log one-row requests of ``rows`` (predicted by the version) spread over an hour."""
        loaded = self.registry.load_model(f"models:/demand/{version}")
        predictions = np.asarray(loaded.predict(rows[FEATURES]))
        log = PredictionLog(self.registry.artifacts, flush_interval_s=3600)
        step = HOUR_MS // (len(rows) + 1)
        for i, (_, row) in enumerate(rows.iterrows()):
            log.append(
                PredictionRecord(
                    request_id=f"{prefix}-{i}",
                    ts_ms=start_ms + (i + 1) * step,
                    deployment="shop",
                    revision=1,
                    variant="primary",
                    model="demand",
                    version=version,
                    role="primary",
                    status="ok",
                    latency_ms=4.0,
                    n_rows=1,
                    inputs={c: [float(row[c])] for c in FEATURES},
                    outputs=[float(predictions[i])],
                )
            )
        log.close()

    def feedback(self, rows: pd.DataFrame, *, prefix: str, every: int = 2) -> None:
        items = [
            FeedbackItem(f"{prefix}-{i}", value=float(units))
            for i, units in enumerate(rows["units"])
            if i % every == 0
        ]
        FeedbackStore(self.registry.db).record("shop", items, [None] * len(items))


@pytest.fixture
def yard(tmp_path) -> Iterator[Yard]:
    settings = Settings(home=tmp_path / "yard", user="ana")
    tracking = TrackingClient.from_settings(settings)
    registry = references.recording_references(RegistryClient.from_settings(settings))
    data = DataClient(registry.db, registry.artifacts, settings)
    deployments = DeploymentService(registry.db, registry)
    try:
        yield Yard(settings, tracking, registry, data, deployments, tmp_path)
    finally:
        tracking.close()


def service(yard: Yard, **options: object) -> MonitorService:
    return MonitorService(yard.registry, yard.deployments, environ={}, **options)  # type: ignore[arg-type]
