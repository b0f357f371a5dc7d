"""Fixtures for the feature store: a store on a fresh home, generated sources, Redis."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import pandas as pd
import pytest

from modelyard.config import Settings
from modelyard.features.client import FeatureStore
from modelyard.features.definitions import Entity, FeatureView, Field, FileSource

BASE = pd.Timestamp("2024-01-01", tz="UTC")
REDIS_HOST, REDIS_PORT = "127.0.0.1", 6379


def ts(minutes: float) -> pd.Timestamp:
    return BASE + pd.Timedelta(minutes=minutes)


def root_require_server(request: pytest.FixtureRequest, name: str, host: str, port: int) -> None:
    """``require_server`` of tests/conftest.py: skip on a laptop, fail under CI."""
    for plugin in request.config.pluginmanager.get_plugins():
        path = Path(getattr(plugin, "__file__", "") or "")
        if path.name == "conftest.py" and path.parent.name == "tests":
            plugin.require_server(name, host, port)
            return
    raise RuntimeError("tests/conftest.py was not loaded")


@pytest.fixture
def fstore(settings: Settings) -> Iterator[FeatureStore]:
    store = FeatureStore.from_settings(settings)
    yield store
    store.close()


@pytest.fixture
def redis_uri(request: pytest.FixtureRequest) -> Iterator[str]:
    """The real Redis server, with a key prefix unique to this test, deleted afterwards."""
    root_require_server(request, "Redis", REDIS_HOST, REDIS_PORT)
    import redis

    prefix = f"modelyard-test-{uuid.uuid4().hex[:12]}:"
    yield f"redis://{REDIS_HOST}:{REDIS_PORT}/0?prefix={prefix}"
    client = redis.Redis(host=REDIS_HOST, port=REDIS_PORT)
    keys = list(client.scan_iter(match=f"{prefix}*", count=1000))
    if keys:
        client.delete(*keys)
    client.close()


@pytest.fixture
def sales_file(tmp_path: Path) -> Path:
    """Two stores' sales: store 1 at minutes 0 and 10, store 2 at minute 5."""
    frame = pd.DataFrame(
        {
            "store_id": [1, 1, 2],
            "event_ts": [ts(0), ts(10), ts(5)],
            "units": [1.0, 2.0, 5.0],
            "promo": [False, True, False],
        }
    )
    path = tmp_path / "sales.parquet"
    frame.to_parquet(path, index=False)
    return path


@pytest.fixture
def store_entity() -> Entity:
    return Entity("store", join_keys=["store_id"])


@pytest.fixture
def sales_view(sales_file: Path, store_entity: Entity) -> FeatureView:
    return FeatureView(
        "sales",
        entities=[store_entity],
        source=FileSource(sales_file, timestamp_field="event_ts"),
        schema=[Field("units", "float64"), Field("promo", "bool")],
        ttl="1h",
    )
