"""A yard for the monitoring, data and lineage pages, written by the real rooms before the
server starts (``tests/monitoring/monitor_yard.py``'s pieces):

* dataset ``sales`` version 1 (the training data, with its stored profile) and a model
  ``demand`` version 1 trained on it in a tracked run (lineage: dataset → run → model);
* deployment ``shop`` serving it; an hour of predictions up to ``end_ms`` whose prices
  drifted up, half of them with feedback; monitor ``shop-drift`` (live MAE per ``promo``
  slice too) evaluated on that hour (drift alerts firing);
* dataset ``notes`` version 1 whose description and a column name hold markup (the pages
  must show it as text);
* feature view ``store_sales`` (with entity ``store`` and service ``demand``) applied and
  materialised to the online store.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pandas as pd
from tests.monitoring.monitor_yard import HOUR_MS, RULES, Yard, sales

from modelyard.config import Settings
from modelyard.data.client import DataClient
from modelyard.features.client import FeatureStore
from modelyard.features.definitions import (
    DataFrameSource,
    Entity,
    FeatureService,
    FeatureView,
    Field,
)
from modelyard.ids import now_ms
from modelyard.monitoring import references
from modelyard.monitoring.monitors import MonitorService
from modelyard.registry.client import RegistryClient
from modelyard.serving.deployments import DeploymentService
from modelyard.tracking.client import TrackingClient

DEPLOYMENT = "shop"
MONITOR = "shop-drift"
VIEW = "store_sales"
HOSTILE = "<img src=x onerror=alert(1)>"
#: The monitor yard's rules and one per slice of ``promo``, so live metrics come per slice.
SLICED_RULES = RULES.replace(
    "notify:",
    '  - name: mae per promo\n    metric: {name: mae, above: 5.0, slice: "promo=*"}\nnotify:',
)


@dataclass(frozen=True)
class Observed:
    end_ms: int  # the end of the evaluated window
    run_id: str  # the training run


def _features(settings: Settings) -> None:
    frame = pd.DataFrame(
        {
            "store_id": [7, 7, 8],
            "units": [3, 5, 2],
            "day": pd.to_datetime(["2024-01-01", "2024-01-02", "2024-01-01"], utc=True),
        }
    )
    store = Entity("store", join_keys=["store_id"])
    view = FeatureView(
        VIEW,
        entities=[store],
        schema=[Field("units", "int64")],
        source=DataFrameSource(frame, timestamp_field="day"),
    )
    features = FeatureStore.from_settings(settings)
    try:
        features.apply([store, view, FeatureService("demand", features=[view])])
        features.materialize_incremental()
    finally:
        features.close()


def write_observed(tmp: Path, home: Path) -> Observed:
    settings = Settings(home=home, user="ana")
    end = now_ms() // 60_000 * 60_000
    with TrackingClient.from_settings(settings) as tracking:
        registry = references.recording_references(RegistryClient.from_settings(settings))
        data = DataClient(registry.db, registry.artifacts, settings)
        deployments = DeploymentService(registry.db, registry)
        yard = Yard(settings, tracking, registry, data, deployments, tmp)
        yard.train()
        deployments.create(DEPLOYMENT, "models:/demand/1")
        current = sales(300, seed=7, price_shift=3.0)
        yard.serve(current, version=1, start_ms=end - HOUR_MS, prefix="r")
        yard.feedback(current, prefix="r")
        monitors = MonitorService(registry, deployments, environ={})
        monitors.create(MONITOR, DEPLOYMENT, schedule="*/15 * * * *", rules=SLICED_RULES)
        monitors.run(MONITOR, end_ms=end)
        run_id = registry.get_model_version("demand", 1).run_id
        data.snapshot(pd.DataFrame({HOSTILE: [1.0, 2.0]}), "notes", description=HOSTILE)
    _features(settings)
    return Observed(end, run_id)
