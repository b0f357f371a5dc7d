"""Fixtures for validation: a retail demand table, and registered candidate/champion models."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from modelyard.config import Settings

FEATURES = ["price", "promo"]


def demand_frame(n: int = 1_200, seed: int = 0) -> pd.DataFrame:
    """Units sold fall with price and rise with promotions; two regions, 60 days."""
    rng = np.random.default_rng(seed)
    frame = pd.DataFrame(
        {
            "price": rng.uniform(1, 10, n),
            "promo": rng.integers(0, 2, n),
            "region": rng.choice(["north", "south"], n),
            "day": pd.Timestamp("2024-01-01") + pd.to_timedelta(rng.integers(0, 60, n), unit="D"),
        }
    )
    frame["units"] = 50 - 3 * frame["price"] + 5 * frame["promo"] + rng.normal(0, 2, n)
    frame["sold_out"] = (frame["units"] > 35).astype(int)
    return frame


@pytest.fixture
def demand() -> pd.DataFrame:
    return demand_frame()


@pytest.fixture
def yard(tmp_path):
    """Tracking and registry clients on one fresh local store."""
    from modelyard.registry.client import RegistryClient
    from modelyard.tracking.client import TrackingClient

    settings = Settings(home=tmp_path / "yard", user="ana")
    return TrackingClient.from_settings(settings), RegistryClient.from_settings(settings)


def register(yard, model, frame: pd.DataFrame, tmp_path: Path, name: str = "demand"):
    """Save ``model`` in a run and register it as the next version of ``name``."""
    from modelyard.registry.formats.flavors import save_model

    tracking, registry = yard
    experiment = tracking.get_or_create_experiment(name).experiment_id
    run = tracking.create_run(experiment)
    folder = tmp_path / f"model-{run.info.run_id}"
    save_model(model, folder, input_example=frame[FEATURES].head(3))
    tracking.log_artifacts(run.info.run_id, folder, "model")
    return registry.register_model(f"runs:/{run.info.run_id}/model", name)


@pytest.fixture
def champion_and_candidate(yard, demand, tmp_path):
    """Version 1 ignores promotions (the champion); version 2 uses them (better)."""
    from sklearn.linear_model import Ridge

    weak = Ridge().fit(demand[FEATURES].assign(promo=0), demand["units"])
    strong = Ridge().fit(demand[FEATURES], demand["units"])
    v1 = register(yard, weak, demand, tmp_path)
    v2 = register(yard, strong, demand, tmp_path)
    yard[1].set_registered_model_alias("demand", "champion", v1.version)
    return v1, v2
