"""Registry fixtures: a registry and a tracking client over the same stores, and a run that
logged a small scikit-learn model (``model/``), a training dataset and a metric."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from modelyard.config import Settings
from modelyard.registry.client import RegistryClient
from modelyard.registry.entities import Actor
from modelyard.registry.formats.flavors import save_model
from modelyard.tracking.client import TrackingClient


@dataclass
class Yard:
    settings: Settings
    tracking: TrackingClient
    registry: RegistryClient  # acting as "ana", who registers versions

    def as_user(self, name: str, *roles: str) -> RegistryClient:
        actor = Actor(name, frozenset(roles)) if roles else Actor(name)
        return self.registry.as_actor(actor)


def training_frame(n: int = 40) -> tuple[pd.DataFrame, pd.Series]:
    rng = np.random.default_rng(7)
    X = pd.DataFrame({"price": rng.random(n), "visits": rng.integers(0, 9, n).astype(float)})
    return X, (X["price"] > 0.5).astype(int)


def log_sklearn_model(tracking: TrackingClient, saved: Path, path: str = "model") -> str:
    """A run that logged the saved model at ``path``, read a dataset and scored an AUC."""
    experiment = tracking.get_or_create_experiment("churn").experiment_id
    run_id = tracking.create_run(experiment).info.run_id
    X, _ = training_frame()
    tracking.log_input(run_id, X, name="accounts-2026-01")
    tracking.log_metric(run_id, "auc", 0.91)
    tracking.log_param(run_id, "C", "1.0")
    tracking.log_artifacts(run_id, saved, path)
    return run_id


@pytest.fixture(scope="session")
def saved_model(tmp_path_factory) -> Path:
    """A fitted LogisticRegression saved once per session (runs log copies of it)."""
    from sklearn.linear_model import LogisticRegression

    X, y = training_frame()
    folder = tmp_path_factory.mktemp("saved") / "model"
    save_model(LogisticRegression().fit(X, y), folder, input_example=X.head(3))
    return folder


def make_yard(settings: Settings) -> Yard:
    settings = settings.model_copy(update={"user": "ana"})
    tracking = TrackingClient.from_settings(settings)
    return Yard(settings, tracking, RegistryClient.from_settings(settings))


@pytest.fixture
def yard(backend_settings) -> Yard:
    """Runs on SQLite and on PostgreSQL."""
    return make_yard(backend_settings)


@pytest.fixture
def local_yard(settings) -> Yard:
    """SQLite only: for tests about formats, rendering and the fluent API."""
    return make_yard(settings)


@pytest.fixture
def run_id(yard, saved_model) -> str:
    return log_sklearn_model(yard.tracking, saved_model)


@pytest.fixture
def local_run_id(local_yard, saved_model) -> str:
    return log_sklearn_model(local_yard.tracking, saved_model)


@pytest.fixture
def frame() -> tuple[pd.DataFrame, pd.Series]:
    return training_frame()
