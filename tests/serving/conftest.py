"""Serving fixtures: a yard (tracking + registry + deployments over one store) and small
registered scikit-learn models with signatures and input examples."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from modelyard.config import Settings
from modelyard.registry.client import RegistryClient
from modelyard.registry.entities import ModelVersion
from modelyard.registry.formats.flavors import save_model
from modelyard.serving.deployments import DeploymentService
from modelyard.tracking.client import TrackingClient

FEATURES = [f"x{i}" for i in range(4)]


def frame(n: int = 200, seed: int = 0) -> tuple[pd.DataFrame, np.ndarray]:
    rng = np.random.default_rng(seed)
    X = pd.DataFrame(rng.normal(size=(n, len(FEATURES))), columns=FEATURES)
    y = 2.0 * X["x0"].to_numpy() - X["x1"].to_numpy() + rng.normal(scale=0.1, size=n)
    return X, y


@dataclass
class Yard:
    settings: Settings
    tracking: TrackingClient
    registry: RegistryClient
    deployments: DeploymentService
    tmp: Path

    def register(self, model: Any, name: str, example: Any, **save: Any) -> ModelVersion:
        """Save ``model`` with ``example`` in a run and register it as a new version."""
        experiment = self.tracking.get_or_create_experiment("serving").experiment_id
        run_id = self.tracking.create_run(experiment).info.run_id
        folder = self.tmp / f"model-{run_id}"
        save_model(model, folder, input_example=example, run_id=run_id, **save)
        self.tracking.log_artifacts(run_id, folder, "model")
        return self.registry.register_model(f"runs:/{run_id}/model", name)

    def regressor(self, name: str = "demand", *, seed: int = 0, trees: int = 10) -> ModelVersion:
        from sklearn.ensemble import GradientBoostingRegressor

        X, y = frame(seed=seed)
        model = GradientBoostingRegressor(n_estimators=trees, max_depth=2, random_state=seed)
        return self.register(model.fit(X, y), name, X.head(20))

    def classifier(self, name: str = "churn", *, seed: int = 0) -> ModelVersion:
        from sklearn.linear_model import LogisticRegression

        X, y = frame(seed=seed)
        return self.register(LogisticRegression().fit(X, y > 0), name, X.head(20))


def make_yard(tmp_path: Path, **overrides: Any) -> Yard:
    settings = Settings(home=tmp_path / "yard", user="ana", **overrides)
    tracking = TrackingClient.from_settings(settings)
    registry = RegistryClient.from_settings(settings)
    return Yard(settings, tracking, registry, DeploymentService(registry.db, registry), tmp_path)


@pytest.fixture
def yard(tmp_path) -> Yard:
    return make_yard(tmp_path)


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class InProcessServer:
    """The inference app on a real loopback port, served by uvicorn in a thread of this
    process (fast to start; runs the app's lifespan: start, follow revisions, flush)."""

    def __init__(self, app: Any) -> None:
        import threading

        import uvicorn

        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        config = uvicorn.Config(
            app, host="127.0.0.1", port=self.port, log_level="warning", access_log=False
        )
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    def __enter__(self) -> InProcessServer:
        import time

        self.thread.start()
        deadline = time.monotonic() + 20
        while not self.server.started:
            if time.monotonic() > deadline or not self.thread.is_alive():
                raise RuntimeError("the in-process server did not start")
            time.sleep(0.01)
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.should_exit = True
        self.thread.join(30)


def serve_in_process(yard: Yard, target: str, **settings: Any) -> tuple[InProcessServer, Any]:
    """(server, runtime) for ``target`` over the yard's stores; use as a context manager."""
    from modelyard.server.inference.app import build_runtime, create_inference_app
    from modelyard.server.inference.metrics import InferenceMetrics
    from modelyard.serving.settings import ServingSettings

    options = {"serve_poll_interval_s": 0.1, "serve_log_flush_s": 0.2, **settings}
    serving = ServingSettings(home=yard.settings.home, user="ana", **options)
    metrics = InferenceMetrics()
    runtime = build_runtime(serving, target, metrics=metrics)
    return InProcessServer(create_inference_app(runtime, metrics)), runtime


def wait_until(condition: Any, timeout_s: float = 10.0, what: str = "condition") -> None:
    import time

    deadline = time.monotonic() + timeout_s
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.02)
