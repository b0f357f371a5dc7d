"""Training sets: point-in-time correct, every entity row kept, executed in DuckDB."""

from __future__ import annotations

import sqlite3

import pandas as pd
import pytest

from modelyard.features.definitions import (
    DataFrameSource,
    Entity,
    FeatureView,
    Field,
    FileSource,
    SqlSource,
)

BASE = pd.Timestamp("2024-01-01", tz="UTC")


def ts(minutes: float) -> pd.Timestamp:
    return BASE + pd.Timedelta(minutes=minutes)


def entities(*rows: tuple[int, float]) -> pd.DataFrame:
    return pd.DataFrame(
        {"store_id": [r[0] for r in rows], "event_timestamp": [ts(r[1]) for r in rows]}
    )


def test_each_row_gets_the_latest_value_at_or_before_its_time(fstore, sales_view):
    fstore.apply([sales_view])
    frame = fstore.get_training_set(
        entities((1, 5), (1, 10), (1, 15), (2, 4), (2, 5)), ["sales:units", "sales:promo"]
    ).to_df()
    assert frame["units"].tolist()[:3] == [1.0, 2.0, 2.0]
    assert frame["units"].isna().tolist()[3:] == [True, False]
    assert frame["promo"].tolist()[:3] == [False, True, True]


def test_every_entity_row_comes_back_in_order_with_nulls_where_nothing_qualifies(
    fstore, sales_view
):
    fstore.apply([sales_view])
    rows = entities((3, 100), (1, -1), (2, 6), (1, 5))
    rows["label"] = [10, 20, 30, 40]
    frame = fstore.get_training_set(rows, ["sales:units"]).to_df()
    assert len(frame) == 4
    assert frame["label"].tolist() == [10, 20, 30, 40]
    assert frame["store_id"].tolist() == [3, 1, 2, 1]
    assert frame["units"].isna().tolist() == [True, True, False, False]


def test_values_older_than_the_ttl_are_not_joined(fstore, sales_view):
    fstore.apply([sales_view])  # ttl 1h
    frame = fstore.get_training_set(entities((2, 64), (2, 66)), ["sales:units"]).to_df()
    assert frame["units"].tolist()[0] == 5.0
    assert pd.isna(frame["units"].tolist()[1])


def test_ties_go_to_the_latest_created_row_and_backfills_can_be_excluded(
    fstore, tmp_path, store_entity
):
    source = pd.DataFrame(
        {
            "store_id": [1, 1, 1],
            "event_ts": [ts(0), ts(10), ts(10)],
            "created": [ts(0), ts(11), ts(30)],  # the second row at 10 was backfilled at 30
            "units": [1.0, 2.0, 3.0],
        }
    )
    view = FeatureView(
        "sales",
        entities=[store_entity],
        source=DataFrameSource(
            source, timestamp_field="event_ts", created_timestamp_field="created"
        ),
        schema=[Field("units")],
    )
    fstore.apply([view])
    rows = entities((1, 10), (1, 20), (1, 40))
    plain = fstore.get_training_set(rows, ["sales:units"]).to_df()
    assert plain["units"].tolist() == [3.0, 3.0, 3.0]
    strict = fstore.get_training_set(rows, ["sales:units"], exclude_created_after=True).to_df()
    assert strict["units"].tolist() == [1.0, 2.0, 3.0]


def test_sql_and_python_transformations_run_over_the_source(fstore, sales_file, store_entity):
    source = FileSource(sales_file, timestamp_field="event_ts")

    def doubled(frame: pd.DataFrame) -> pd.DataFrame:
        return frame.assign(units2=frame["units"] * 2)

    py = FeatureView(
        "py", entities=[store_entity], source=source, schema=[Field("units2")], transform=doubled
    )
    sql = FeatureView(
        "sq",
        entities=[store_entity],
        source=source,
        schema=[Field("running")],
        sql="SELECT store_id, event_ts, sum(units) OVER (PARTITION BY store_id ORDER BY event_ts) "
        "AS running FROM source",
    )
    fstore.apply([py, sql])
    frame = fstore.get_training_set(entities((1, 20), (2, 20)), ["py:units2", "sq:running"]).to_df()
    assert frame["units2"].tolist() == [4.0, 10.0]
    assert frame["running"].tolist() == [3.0, 5.0]


def test_csv_and_sql_table_sources(fstore, tmp_path, store_entity):
    frame = pd.DataFrame(
        {
            "store_id": [1, 2],
            "event_ts": ["2024-01-01 00:00:00", "2024-01-01 00:05:00"],
            "units": [1.5, 2.5],
        }
    )
    frame.to_csv(tmp_path / "s.csv", index=False)
    with sqlite3.connect(tmp_path / "src.db") as con:
        frame.assign(event_ts=pd.to_datetime(frame["event_ts"])).to_sql("sales", con, index=False)
    csv = FeatureView(
        "csv",
        entities=[store_entity],
        schema=[Field("units")],
        source=FileSource(tmp_path / "s.csv", timestamp_field="event_ts"),
    )
    table = FeatureView(
        "tbl",
        entities=[store_entity],
        schema=[Field("units")],
        source=SqlSource(
            f"sqlite:///{tmp_path / 'src.db'}", table="sales", timestamp_field="event_ts"
        ),
    )
    fstore.apply([csv, table])
    out = fstore.get_training_set(
        entities((1, 1), (2, 10)), ["csv:units", "tbl:units"], full_names=True
    ).to_df()
    assert out["csv__units"].tolist() == [1.5, 2.5]
    assert out["tbl__units"].tolist() == [1.5, 2.5]


def test_composite_keys_and_string_keys(fstore, tmp_path):
    item = Entity("item", join_keys=["store_id", "sku"], dtypes={"sku": "string"})
    source = pd.DataFrame(
        {"store_id": [1, 1], "sku": ["a", "b"], "event_ts": [ts(0), ts(0)], "price": [3.0, 4.0]}
    )
    view = FeatureView(
        "prices",
        entities=[item],
        schema=[Field("price")],
        source=DataFrameSource(source, timestamp_field="event_ts"),
    )
    fstore.apply([view])
    rows = pd.DataFrame(
        {"store_id": [1, 1, 2], "sku": ["b", "a", "a"], "event_timestamp": [ts(1)] * 3}
    )
    assert fstore.get_training_set(rows, ["prices:price"]).to_df()["price"].tolist()[:2] == [
        4.0,
        3.0,
    ]


def test_same_feature_name_in_two_views_needs_full_names(
    fstore, sales_view, sales_file, store_entity
):
    other = FeatureView(
        "other",
        entities=[store_entity],
        schema=[Field("units")],
        source=FileSource(sales_file, timestamp_field="event_ts"),
    )
    fstore.apply([sales_view, other])
    rows = entities((1, 5))
    with pytest.raises(ValueError, match="full_names=True"):
        fstore.get_training_set(rows, ["sales:units", "other:units"])
    frame = fstore.get_training_set(rows, ["sales:units", "other:units"], full_names=True).to_df()
    assert list(frame.columns[-2:]) == ["sales__units", "other__units"]


def test_naive_entity_timestamps_are_read_as_utc(fstore, sales_view):
    fstore.apply([sales_view])
    rows = entities((1, 10))
    rows["event_timestamp"] = rows["event_timestamp"].dt.tz_localize(None)
    assert fstore.get_training_set(rows, ["sales:units"]).to_df()["units"].tolist() == [2.0]


def test_warming_opens_the_connection_and_hashes_what_it_can(tmp_path, sales_file):
    from modelyard.errors import InvalidParameter
    from modelyard.features.relations import OfflineEngine

    engine = OfflineEngine(tmp_path / "cache")
    engine.warm([str(tmp_path / "missing.parquet"), str(sales_file)])  # never raises
    assert str(sales_file) in engine._digests  # the next read finds the digest ready
    assert engine._local.con is not None
    with pytest.raises(InvalidParameter, match="does not exist"):
        engine.file_digest(str(tmp_path / "missing.parquet"))  # the read reports it
    engine.close()
