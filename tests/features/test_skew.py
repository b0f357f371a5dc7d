"""No training-serving skew: the same code gives the same values offline and online."""

from __future__ import annotations

import numpy as np
import pandas as pd

from modelyard.features.definitions import (
    FeatureService,
    FeatureView,
    Field,
    FileSource,
    OnDemandFeatureView,
    RequestSource,
)

BASE = pd.Timestamp("2024-01-01", tz="UTC")


def ts(minutes: float) -> pd.Timestamp:
    return BASE + pd.Timedelta(minutes=minutes)


def scaled(frame: pd.DataFrame) -> pd.DataFrame:
    return frame.assign(log_units=np.log1p(frame["units"]) / 3.0, big=frame["units"] > 50)


def discount_pandas(frame: pd.DataFrame) -> pd.DataFrame:
    return pd.DataFrame({"net": frame["price"] * (1 - frame["discount"]) / 7.0})


def discount_python(columns: dict) -> dict:
    return {
        "net_py": [
            None if p is None else p * (1 - d) / 7.0
            for p, d in zip(columns["price"], columns["discount"], strict=True)
        ]
    }


def per_unit(frame: pd.DataFrame) -> pd.DataFrame:
    return pd.DataFrame({"price_per_unit": frame["price"] / (frame["log_units"] + 1.0)})


def build(path, store_entity, rows=400, seed=3):
    rng = np.random.default_rng(seed)
    frame = pd.DataFrame(
        {
            "store_id": rng.integers(0, 60, rows),
            "event_ts": [ts(m) for m in rng.integers(0, 500, rows)],
            "units": rng.random(rows) * 100,
            "price": rng.random(rows) * 10,
            "label": rng.choice(["a", "b", "c"], rows),
        }
    )
    frame.to_parquet(path, index=False)
    source = FileSource(path, timestamp_field="event_ts")
    py_view = FeatureView(
        "py",
        entities=[store_entity],
        source=source,
        transform=scaled,
        schema=[Field("log_units"), Field("big", "bool"), Field("label", "string")],
    )
    sql_view = FeatureView(
        "sq",
        entities=[store_entity],
        source=source,
        schema=[Field("price"), Field("price_x", "float32")],
        sql="SELECT store_id, event_ts, price, price * 1.1 AS price_x FROM source",
    )
    request = RequestSource("checkout", [Field("discount")])
    odfv = OnDemandFeatureView(
        "net",
        sources=[sql_view[["price"]], request],
        schema=[Field("net")],
        transform=discount_pandas,
    )
    odfv_py = OnDemandFeatureView(
        "net_py",
        sources=[sql_view[["price"]], request],
        schema=[Field("net_py")],
        transform=discount_python,
        mode="python",
    )
    odfv_views = OnDemandFeatureView(
        "ppu",
        sources=[sql_view[["price"]], py_view[["log_units"]]],
        schema=[Field("price_per_unit")],
        transform=per_unit,
    )
    service = FeatureService("pricing", features=[py_view, sql_view, odfv, odfv_py, odfv_views])
    return service


def test_offline_and_online_values_are_identical(fstore, tmp_path, store_entity):
    fstore.apply([build(tmp_path / "src.parquet", store_entity)])
    fstore.materialize(ts(0), ts(1000))
    fstore.server.clock = lambda: int(ts(1000).value)
    keys = list(range(70))  # 60 stores and 10 that never sold anything
    discount = [((k * 37) % 10) / 10 for k in keys]
    entities = pd.DataFrame(
        {"store_id": keys, "event_timestamp": [ts(1000)] * len(keys), "discount": discount}
    )
    offline = fstore.get_training_set(entities, service="pricing").to_df()
    online = fstore.get_online_features(
        {"store_id": keys}, service="pricing", request_data={"discount": discount}
    )
    names = ["log_units", "big", "label", "price", "price_x", "net", "net_py", "price_per_unit"]
    assert set(names) <= set(online.columns)
    for name in names:
        off = [None if pd.isna(v) else v for v in offline[name].tolist()]
        assert off == online[name], name
    assert fstore.check_skew("pricing", sample=100).ok


def test_skew_reports_values_that_changed_after_materialization(fstore, tmp_path, store_entity):
    path = tmp_path / "src.parquet"
    fstore.apply([build(path, store_entity)])
    fstore.materialize(ts(0), ts(1000))
    late = pd.read_parquet(path)
    late.loc[len(late)] = {
        "store_id": 5,
        "event_ts": ts(999),
        "units": 1.0,
        "price": 123.0,
        "label": "late",
    }
    late.to_parquet(path, index=False)  # a late row, not materialised
    report = fstore.check_skew("pricing", sample=1000)
    assert not report.ok
    assert report.by_feature["sq:price"] == 1
    example = next(m for m in report.examples if m.feature == "sq:price")
    assert example.entity == {"store_id": 5} and example.offline == 123.0
