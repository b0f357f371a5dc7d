"""The demo's feature definitions: one entity (a store × product series) and one view whose
SQL computes, per series and day, what is known at the start of that day.

Only the past counts: lags and rolling windows end the day before (``1 PRECEDING``), while
the day's own price, promotion plan and known supply disruption are inputs a planner has.
The columns are generated from small tables of windows and statistics, so the view holds
a few hundred features from one query DuckDB runs over the whole source.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from modelyard.demo.data import KEYS

if TYPE_CHECKING:
    from modelyard.features.definitions import Entity, FeatureView

VIEW = "retail_daily"
ENTITY = "series"
TIMESTAMP = "date"
UNIT_LAGS = (*range(1, 29), 35, 42, 49, 56)
WINDOWS = (3, 7, 14, 21, 28, 42, 56, 91)
UNIT_STATS = ("avg", "stddev_samp", "min", "max")
SHORT_LAGS = tuple(range(1, 15))


def feature_sql() -> tuple[str, list[str]]:
    """The view's SQL over the relation ``source`` and the feature names it returns."""
    over = f"OVER (PARTITION BY {', '.join(KEYS)} ORDER BY date"
    cols: list[tuple[str, str]] = []

    def lag(column: str, n: int) -> str:
        return f"lag({column}, {n}) {over})"

    def rolling(fn: str, column: str, w: int) -> str:
        return f"{fn}({column}) {over} ROWS BETWEEN {w} PRECEDING AND 1 PRECEDING)"

    cols += [(f"units_lag_{n}", lag("units_sold", n)) for n in UNIT_LAGS]
    for w in WINDOWS:
        cols += [
            (f"units_{fn.split('_')[0]}_{w}d", rolling(fn, "units_sold", w)) for fn in UNIT_STATS
        ]
        cols.append((f"units_cv_{w}d", f"units_stddev_{w}d / nullif(units_avg_{w}d, 0)"))
        cols.append((f"price_avg_{w}d", rolling("avg", "price", w)))
        cols.append((f"price_min_{w}d", rolling("min", "price", w)))
        cols.append((f"price_ratio_{w}d", f"price / nullif(price_avg_{w}d, 0)"))
        cols.append((f"promo_days_{w}d", rolling("sum", "promo", w)))
        cols.append((f"disruption_days_{w}d", rolling("sum", "disruption", w)))
        on_promo = "CASE WHEN promo = 1 THEN units_sold END"
        cols.append((f"promo_units_avg_{w}d", rolling("avg", on_promo, w)))
        cols.append(
            (f"plain_units_avg_{w}d", rolling("avg", "CASE WHEN promo = 0 THEN units_sold END", w))
        )
    for a, b in ((7, 28), (14, 56), (28, 91), (3, 14)):
        cols.append((f"units_trend_{a}_{b}", f"units_avg_{a}d / nullif(units_avg_{b}d, 0)"))
    for w in (28, 91):
        cols.append((f"promo_lift_{w}d", f"promo_units_avg_{w}d / nullif(plain_units_avg_{w}d, 0)"))
    for n in (7, 14):
        cols.append((f"units_diff_{n}", f"units_lag_1 - units_lag_{n}"))
    cols.append(
        (
            "units_same_weekday_4w",
            "(units_lag_7 + units_lag_14 + units_lag_21 + units_lag_28) / 4.0",
        )
    )
    cols += [(f"price_lag_{n}", lag("price", n)) for n in SHORT_LAGS]
    cols += [(f"promo_lag_{n}", lag("promo", n)) for n in range(1, 8)]
    cols += [(f"disruption_lag_{n}", lag("disruption", n)) for n in range(1, 8)]
    cols += [
        ("price", "price"),
        ("promo", "promo"),
        ("disruption", "disruption"),
        ("price_change_1", "price - price_lag_1"),
        ("price_max_91d", rolling("max", "price", 91)),
        ("discount_depth", "1 - price / nullif(price_max_91d, 0)"),
    ]
    dow, doy = "isodow(date) - 1", "dayofyear(date)"
    cols += [(f"dow_{d}", f"CASE WHEN {dow} = {d} THEN 1 ELSE 0 END") for d in range(7)]
    cols += [(f"month_{m}", f"CASE WHEN month(date) = {m} THEN 1 ELSE 0 END") for m in range(1, 13)]
    cols += [
        ("day_of_week", dow),
        ("is_weekend", f"CASE WHEN {dow} >= 5 THEN 1 ELSE 0 END"),
        ("day_of_month", "day(date)"),
        ("week_of_year", "weekofyear(date)"),
        ("day_of_year", doy),
        ("quarter", "quarter(date)"),
    ]
    for k in (1, 2, 3):
        cols.append((f"doy_sin_{k}", f"sin(2 * pi() * {k} * {doy} / 365.25)"))
        cols.append((f"doy_cos_{k}", f"cos(2 * pi() * {k} * {doy} / 365.25)"))
    # DuckDB resolves a column alias used later in the same SELECT list (lateral aliases).
    body = ",\n  ".join(f"CAST({expr} AS DOUBLE) AS {name}" for name, expr in cols)
    sql = f"SELECT {', '.join(KEYS)}, date,\n  {body}\nFROM source"
    return sql, [name for name, _ in cols]


def definitions(source_path: Path) -> tuple[Entity, FeatureView, list[str]]:
    """The entity, the view over the sales file at ``source_path``, and its feature names."""
    from modelyard.features.definitions import Entity, FeatureView, Field, FileSource

    sql, names = feature_sql()
    entity = Entity(ENTITY, join_keys=KEYS, description="one product in one store")
    view = FeatureView(
        VIEW,
        entities=[entity],
        source=FileSource(source_path, timestamp_field=TIMESTAMP),
        schema=[Field(name, "float64") for name in names],
        ttl="3d",
        sql=sql,
        description="lags, rolling statistics, calendar, price and promotion features",
        owner="demand-planning",
    )
    return entity, view, names


def training_frame(store: Any, rows: Any, names: list[str], name: str) -> Any:
    """The point-in-time-correct features of ``rows`` (keys, date, labels), recorded as a
    training set named ``name``; returns the TrainingSet."""
    return store.get_training_set(
        rows, [f"{VIEW}:{n}" for n in names], timestamp_column=TIMESTAMP, name=name
    )
