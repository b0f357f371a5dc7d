"""The demo's retail sales history, generated (nothing is downloaded).

Stores sit in regions, products in categories; daily units are Poisson around a level set
by the store, the product, the weekday, the season, promotions (a lift with a 20 % price
cut) and supplier disruptions (sales fall to a third while stock is short). The days after
the data cut-off are the "live" period the demo serves: there the season shifts (demand
moves up, more in some categories) and a promotion shock starts (many more promotions,
deeper cuts) after the first quarter of the live days, so a model trained before the
cut-off meets data it has not seen.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import pandas as pd

TARGET = "units_sold"
KEYS = ["store_id", "product_id"]
REGIONS = ("north", "south", "east", "west")
CATEGORIES = ("grocery", "beverages", "household", "snacks")
SEED = 7
START = "2024-01-01"  # a Monday: day_of_week 0 = Monday … 6 = Sunday


@dataclass(frozen=True)
class Scale:
    """How big the generated history is: stores × products × days, and the live days."""

    stores: int
    products: int
    history_days: int
    live_days: int

    @property
    def calm_days(self) -> int:
        """Live days before the seasonal shift and the promotion shock begin."""
        return self.live_days // 4

    @property
    def rows(self) -> int:
        return self.stores * self.products * self.history_days

    @classmethod
    def for_rows(cls, rows: int, live_days: int = 28) -> Scale:
        """A shape of about ``rows`` history rows: 8 × 12 series from 20,000 rows on, 6 × 8
        from 8,000 (else 4 × 5), over at least 120 days so every rolling window fills."""
        stores, products = (8, 12) if rows >= 20_000 else (6, 8) if rows >= 8_000 else (4, 5)
        days = max(rows // (stores * products), 120)
        return cls(stores, products, days, live_days)


def make_sales(scale: Scale, seed: int = SEED) -> pd.DataFrame:
    """Daily sales of every store × product over ``history_days + live_days`` days,
    sorted by date; the column ``live`` marks the days after the cut-off."""
    import numpy as np
    import pandas as pd

    rng = np.random.default_rng(seed)
    stores, products = scale.stores, scale.products
    days = scale.history_days + scale.live_days
    shape = (stores, products, days)
    day = np.arange(days)
    live = day >= scale.history_days
    shocked = day >= scale.history_days + scale.calm_days  # the shift and the shock start
    dow = day % 7
    doy = 2 * np.pi * (day % 365) / 365.0

    region = np.arange(stores) % len(REGIONS)
    category = np.arange(products) % len(CATEGORIES)
    store_scale = rng.lognormal(0.0, 0.3, stores)[:, None, None]
    base = rng.lognormal(np.log(20.0), 0.5, products)[None, :, None]
    weekly = np.array([0.9, 0.85, 0.9, 1.0, 1.15, 1.35, 1.25])[dow][None, None, :]
    season = (1.0 + 0.15 * np.sin(doy))[None, None, :]
    # the seasonal shift: live demand rises, beverages and snacks the most
    shift = (
        np.where(shocked, 1.0, 0.0)[None, None, :]
        * np.array([0.25, 0.6, 0.1, 0.5])[category][None, :, None]
    )

    promo_rate = np.where(shocked, 0.35, 0.08)[None, None, :]  # the promotion shock
    promo = rng.random(shape) < promo_rate
    promo |= np.roll(promo, 1, axis=2) & (rng.random(shape) < 0.5)  # promotions last a while
    lift = rng.uniform(0.3, 0.8, products)[None, :, None] * np.where(shocked, 1.8, 1.0)
    cut = np.where(shocked, 0.6, 0.8)[None, None, :]
    base_price = rng.uniform(1.5, 12.0, products)[None, :, None]
    price = np.broadcast_to(base_price, shape) * np.where(promo, cut, 1.0)

    disruption = np.zeros((1, products, days), dtype=bool)
    for p in range(products):  # two short supplier outages per product
        for begin in rng.integers(0, days - 10, 2):
            disruption[0, p, begin : begin + rng.integers(4, 10)] = True
    disruption = np.broadcast_to(disruption, shape)

    mean = store_scale * base * weekly * season * (1.0 + shift)
    mean = mean * np.where(promo, 1.0 + lift, 1.0) * np.where(disruption, 0.35, 1.0)
    units = rng.poisson(mean).astype(float)

    s_idx, p_idx, d_idx = np.meshgrid(np.arange(stores), np.arange(products), day, indexing="ij")
    frame = pd.DataFrame(
        {
            "date": np.datetime64(START) + d_idx.ravel(),
            "store_id": s_idx.ravel(),
            "product_id": p_idx.ravel(),
            "region": np.asarray(REGIONS)[region][s_idx.ravel()],
            "category": np.asarray(CATEGORIES)[category][p_idx.ravel()],
            "price": np.broadcast_to(price, shape).ravel().round(2),
            "promo": promo.ravel().astype("int64"),
            "disruption": disruption.ravel().astype("int64"),
            TARGET: units.ravel(),
            "live": live[d_idx.ravel()],
        }
    )
    frame["date"] = frame["date"].astype("datetime64[us]").dt.tz_localize("UTC")
    return frame.sort_values(["date", "store_id", "product_id"], ignore_index=True)
