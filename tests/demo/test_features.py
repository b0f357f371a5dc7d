"""The demo's feature view: over 200 features, each known at the start of its day."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from modelyard.demo.data import KEYS, TARGET, Scale, make_sales
from modelyard.demo.features import definitions, feature_sql, training_frame
from modelyard.features.client import FeatureStore


def test_the_view_holds_over_200_distinct_features():
    _, names = feature_sql()
    assert len(names) >= 200
    assert len(set(names)) == len(names)
    for family in ("units_lag_", "units_avg_", "price_ratio_", "promo_days_", "dow_", "doy_sin_"):
        assert any(n.startswith(family) for n in names), family


@pytest.fixture
def frame(settings, tmp_path):
    sales = make_sales(Scale(stores=2, products=3, history_days=120, live_days=0))
    source = tmp_path / "sales.parquet"
    sales.drop(columns="live").to_parquet(source, index=False)
    entity, view, names = definitions(source)
    store = FeatureStore.from_settings(settings)
    try:
        store.apply([entity, view])
        rows = sales[[*KEYS, "date", TARGET]]
        built = training_frame(store, rows, names, "test").to_df()
    finally:
        store.close()
    return sales, built


def test_lags_and_windows_end_the_day_before(frame):
    sales, built = frame
    one = built[(built["store_id"] == 1) & (built["product_id"] == 2)].sort_values("date")
    units = sales[(sales["store_id"] == 1) & (sales["product_id"] == 2)][TARGET].to_numpy()
    assert np.array_equal(one["units_lag_1"].to_numpy()[1:], units[:-1])
    assert np.array_equal(one["units_lag_7"].to_numpy()[7:], units[:-7])
    assert one["units_avg_7d"].iloc[30] == pytest.approx(units[23:30].mean())
    assert one["units_max_28d"].iloc[60] == units[32:60].max()
    assert np.isnan(one["units_lag_1"].iloc[0])  # no day before the first


def test_the_days_own_plan_is_known_but_not_its_sales(frame):
    sales, built = frame
    merged = built.merge(sales, on=[*KEYS, "date"], suffixes=("", "_raw"))
    assert (merged["price"] == merged["price_raw"]).all()
    assert (merged["promo"] == merged["promo_raw"]).all()
    assert not any(c.startswith(TARGET) for c in built.columns if c != TARGET)


def test_calendar_features_follow_the_date(frame):
    _, built = frame
    dates = pd.to_datetime(built["date"])
    assert (built["day_of_week"] == dates.dt.dayofweek).all()
    assert (built["is_weekend"] == (dates.dt.dayofweek >= 5)).all()
    month = built[[f"month_{m}" for m in range(1, 13)]].to_numpy().argmax(axis=1) + 1
    assert (month == dates.dt.month).all()
