"""Fixtures for the data room: a client on a fresh local store, and small tables."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from modelyard.config import Settings


@pytest.fixture
def data_client(tmp_path):
    from modelyard.data.client import DataClient

    return DataClient.from_settings(Settings(home=tmp_path / "yard", user="ana"))


def sales_frame(n: int = 1_000, seed: int = 0) -> pd.DataFrame:
    """Retail-like rows: ids, prices with some nulls, regions, SKUs and days."""
    rng = np.random.default_rng(seed)
    price = rng.normal(20, 5, n).round(2)
    price[rng.random(n) < 0.05] = np.nan
    return pd.DataFrame(
        {
            "order_id": np.arange(n, dtype=np.int64),
            "store": rng.integers(1, 20, n),
            "price": price,
            "units": rng.poisson(3, n),
            "region": pd.Categorical(rng.choice(["north", "south", "east", "west"], n)),
            "sku": pd.array([f"SKU-{i:06d}" for i in rng.integers(0, 10_000, n)], dtype="str"),
            "day": pd.Timestamp("2024-01-01") + pd.to_timedelta(rng.integers(0, 90, n), unit="D"),
            "promo": rng.random(n) < 0.2,
        }
    )


@pytest.fixture
def frame() -> pd.DataFrame:
    return sales_frame()
