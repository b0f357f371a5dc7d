"""The demo's generated sales: stores × products × days, with the shapes a retailer has."""

from __future__ import annotations

import pandas as pd
import pytest

from modelyard.demo.data import CATEGORIES, REGIONS, TARGET, Scale, make_sales


@pytest.fixture(scope="module")
def sales():
    return make_sales(Scale(stores=8, products=12, history_days=210, live_days=28))


def test_is_every_store_and_product_on_every_day(sales):
    series = sales.groupby(["store_id", "product_id"]).size()
    assert len(series) == 8 * 12
    assert set(series) == {210 + 28}
    assert sales["live"].sum() == 8 * 12 * 28


def test_is_reproducible(sales):
    again = make_sales(Scale(stores=8, products=12, history_days=210, live_days=28))
    assert again.equals(sales)


def test_stores_sit_in_regions_and_products_in_categories(sales):
    assert set(sales["region"]) == set(REGIONS)
    assert set(sales["category"]) == set(CATEGORIES)
    assert (sales.groupby("store_id")["region"].nunique() == 1).all()
    assert (sales.groupby("product_id")["category"].nunique() == 1).all()


def test_weekends_sell_more(sales):
    history = sales[~sales["live"]]
    by_day = history.groupby(history["date"].dt.dayofweek)[TARGET].mean()
    assert by_day[[5, 6]].min() > by_day[[0, 1, 2]].max()


def test_promotions_lift_demand_and_cut_the_price(sales):
    history = sales[~sales["live"]]
    promo = history[history["promo"] == 1]
    plain = history[(history["promo"] == 0) & (history["disruption"] == 0)]
    assert promo[TARGET].mean() > 1.2 * plain[TARGET].mean()
    price = history.groupby(["product_id", "promo"])["price"].max().unstack()
    assert (price[1] < price[0]).all()


def test_supplier_disruptions_cut_sales(sales):
    history = sales[(~sales["live"]) & (sales["promo"] == 0)]
    short = history.groupby("disruption")[TARGET].mean()
    assert short[1] < 0.6 * short[0]


def test_after_the_calm_live_days_the_season_shifts_and_promotions_surge(sales):
    scale = Scale(stores=8, products=12, history_days=210, live_days=28)
    live = sales[sales["live"]]
    first = live["date"].min()
    shocked = live[live["date"] >= first + pd.Timedelta(days=scale.calm_days)]
    assert shocked["promo"].mean() > 2 * sales[~sales["live"]]["promo"].mean()
    assert shocked[TARGET].mean() > 1.3 * sales[~sales["live"]][TARGET].mean()


def test_the_scale_follows_the_rows_asked_for():
    assert Scale.for_rows(20_000) == Scale(8, 12, 208, 28)
    quick = Scale.for_rows(8_000, live_days=16)
    assert (quick.stores, quick.products, quick.live_days, quick.calm_days) == (6, 8, 16, 4)
    small = Scale.for_rows(1_000)
    assert (small.stores, small.products) == (4, 5)
    assert small.history_days >= 120  # every rolling window fills
