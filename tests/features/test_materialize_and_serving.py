"""Materialisation into the online store, and online reads with a status per value."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from modelyard.errors import InvalidParameter
from modelyard.features.client import FeatureStore
from modelyard.features.definitions import (
    DataFrameSource,
    Entity,
    FeatureService,
    FeatureView,
    Field,
)

BASE = pd.Timestamp("2024-01-01", tz="UTC")


def ts(minutes: float) -> pd.Timestamp:
    return BASE + pd.Timedelta(minutes=minutes)


def at(store: FeatureStore, minutes: float) -> None:
    """Make the server's clock read BASE + minutes."""
    store.server.clock = lambda: int(ts(minutes).value)


def test_materialize_writes_the_latest_value_per_entity_in_the_window(fstore, sales_view):
    fstore.apply([sales_view])
    [report] = fstore.materialize(ts(0), ts(8))
    assert (report.view, report.rows) == ("sales", 2)
    at(fstore, 9)
    got = fstore.get_online_features(
        [{"store_id": 1}, {"store_id": 2}, {"store_id": 3}], ["sales:units", "sales:promo"]
    )
    assert got.to_dict() == {
        "store_id": [1, 2, 3],
        "units": [1.0, 5.0, None],
        "promo": [False, False, None],
    }
    assert got.status_dict()["units"] == ["present", "present", "missing"]
    fstore.materialize(ts(8), ts(20))
    assert fstore.get_online_features([{"store_id": 1}], ["sales:units"])["units"] == [2.0]


def test_an_older_window_does_not_overwrite_newer_values(fstore, sales_view):
    fstore.apply([sales_view])
    fstore.materialize(ts(0), ts(20))
    fstore.materialize(ts(0), ts(5))
    at(fstore, 20)
    assert fstore.get_online_features({"store_id": [1]}, ["sales:units"])["units"] == [2.0]


def test_ttl_is_enforced_on_read(fstore, sales_view):
    fstore.apply([sales_view])  # ttl 1h
    fstore.materialize(ts(0), ts(20))
    at(fstore, 60)
    got = fstore.get_online_features([{"store_id": 1}, {"store_id": 2}], ["sales:units"])
    assert got.status_dict()["units"] == ["present", "present"]
    at(fstore, 66)  # store 2's value (minute 5) is now older than an hour
    got = fstore.get_online_features([{"store_id": 1}, {"store_id": 2}], ["sales:units"])
    assert got["units"] == [2.0, None]
    assert got.status_dict()["units"] == ["present", "expired"]


def test_incremental_materialization_continues_from_the_watermark(fstore, tmp_path, store_entity):
    path = tmp_path / "live.parquet"
    pd.DataFrame({"store_id": [1], "event_ts": [ts(0)], "units": [1.0]}).to_parquet(path)
    from modelyard.features.definitions import FileSource

    view = FeatureView(
        "live",
        entities=[store_entity],
        schema=[Field("units")],
        source=FileSource(path, timestamp_field="event_ts"),
    )
    fstore.apply([view])
    [first] = fstore.materialize_incremental(ts(10))
    assert first.start_us is None and first.rows == 1
    pd.DataFrame(
        {"store_id": [1, 2], "event_ts": [ts(12), ts(15)], "units": [3.0, 4.0]}
    ).to_parquet(path)
    [second] = fstore.materialize_incremental(ts(20))
    assert second.start_us == first.end_us and second.rows == 2
    at(fstore, 21)
    assert fstore.get_online_features({"store_id": [1, 2]}, ["live:units"])["units"] == [3.0, 4.0]
    [third] = fstore.materialize_incremental(ts(30))
    assert third.rows == 0


def test_materialization_streams_in_chunks(fstore, store_entity):
    n = 1_000
    frame = pd.DataFrame(
        {"store_id": np.arange(n), "event_ts": [ts(1)] * n, "units": np.arange(n) * 0.5}
    )
    view = FeatureView(
        "big",
        entities=[store_entity],
        schema=[Field("units")],
        source=DataFrameSource(frame, timestamp_field="event_ts"),
    )
    fstore.apply([view])
    [report] = fstore.materialize(ts(0), ts(2), chunk_rows=64)
    assert report.rows == n and report.chunks >= n // 64
    at(fstore, 2)
    keys = list(range(0, n, 7))
    assert fstore.get_online_features({"store_id": keys}, ["big:units"])["units"] == [
        k * 0.5 for k in keys
    ]


@pytest.mark.parametrize("created", [False, True])
@pytest.mark.parametrize("width", [1, 40])  # sorted and streamed; wide: looked for first
def test_ties_at_the_latest_time_go_online_as_offline(fstore, store_entity, created, width):
    # Some entities have two rows at their latest time, found only after earlier chunks
    # were written (chunks of 64 rows, sorted by key; the tie at 127/128 straddles two),
    # while the rest of the result is still unread; a row without a key is skipped.
    n = 5_000
    tied = {127, 1_500, 1_501, 4_999}
    rows = [(k, 1, k * 1.0) for k in range(n)] + [(k, 5, k + 0.25) for k in range(n)]
    rows += [(k, 5, k + 0.75) for k in sorted(tied)]
    frame = pd.DataFrame(rows, columns=["store_id", "minute", "units"])
    frame["event_ts"] = [ts(m) for m in frame["minute"]]
    frame["created"] = [ts(9 - u % 1) for u in frame["units"]]  # the .25 row is newer
    frame["store_id"] = frame["store_id"].astype("Int64")
    frame.loc[len(frame)] = [pd.NA, 5, -1.0, ts(5), ts(5)]
    extra = [f"f{i}" for i in range(width - 1)]
    for name in extra:
        frame[name] = frame["units"]
    source = DataFrameSource(
        frame, timestamp_field="event_ts", created_timestamp_field="created" if created else None
    )
    schema = [Field("units"), *(Field(name) for name in extra)]
    view = FeatureView("tied", entities=[store_entity], schema=schema, source=source)
    fstore.apply([view])
    [report] = fstore.materialize(ts(0), ts(10), chunk_rows=64)
    assert report.rows == n
    entities = pd.DataFrame({"store_id": range(n), "event_timestamp": [ts(10)] * n})
    offline = fstore.get_training_set(entities, ["tied:units"], record=False).to_df()
    at(fstore, 10)
    online = fstore.get_online_features({"store_id": list(range(n))}, ["tied:units"])["units"]
    assert online == offline["units"].tolist()
    if created:
        assert [online[k] for k in sorted(tied)] == [k + 0.25 for k in sorted(tied)]


def test_definitions_are_resolved_once_not_per_call(fstore, sales_view, monkeypatch):
    fstore.apply([sales_view, FeatureService("svc", features=[sales_view])])
    fstore.materialize(ts(0), ts(20))
    at(fstore, 20)
    fstore.get_online_features([{"store_id": 1}], service="svc")

    def no_registry(*_args, **_kwargs):
        raise AssertionError("the registry was read on a request")

    monkeypatch.setattr(fstore.registry, "latest", no_registry)
    monkeypatch.setattr(fstore.registry, "get", no_registry)
    for _ in range(50):
        assert fstore.get_online_features([{"store_id": 1}], service="svc")["units"] == [2.0]


def test_a_new_version_applied_elsewhere_is_picked_up(
    settings, sales_view, sales_file, store_entity
):
    serving = FeatureStore.from_settings(settings)
    serving.server._refresh_interval_s = 0.0
    other = FeatureStore.from_settings(settings)
    other.apply([sales_view])
    with pytest.raises(KeyError, match="extra"):
        serving.get_online_features([{"store_id": 1}], ["sales:extra"])
    from modelyard.features.definitions import FileSource

    longer = FeatureView(
        "sales",
        entities=[store_entity],
        ttl="2h",
        source=FileSource(sales_file, timestamp_field="event_ts"),
        schema=[Field("units"), Field("promo", "bool")],
    )
    other.apply([longer])
    other.materialize(ts(0), ts(20))
    at(serving, 100)  # store 2's value is 95 minutes old: expired under 1h, not 2h
    got = serving.get_online_features([{"store_id": 2}], ["sales:units"])
    assert got.status_dict()["units"] == ["present"]
    serving.close()
    other.close()


def test_the_redis_online_store_serves_the_same_values(settings, redis_uri, sales_view):
    store = FeatureStore.from_settings(settings, online_store_uri=redis_uri)
    store.apply([sales_view])
    store.materialize(ts(0), ts(20))
    at(store, 30)
    got = store.get_online_features({"store_id": [2, 1, 9]}, ["sales:units", "sales:promo"])
    assert got.to_dict() == {
        "store_id": [2, 1, 9],
        "units": [5.0, 2.0, None],
        "promo": [False, True, None],
    }
    assert got.status_dict()["units"] == ["present", "present", "missing"]
    at(store, 70)
    assert store.get_online_features([{"store_id": 2}], ["sales:units"]).status_dict()["units"] == [
        "expired"
    ]
    store.close()


def test_results_convert_to_rows_and_frames(fstore, sales_view):
    fstore.apply([sales_view])
    fstore.materialize(ts(0), ts(20))
    at(fstore, 20)
    got = fstore.get_online_features([{"store_id": 1}], ["sales:units"])
    assert got.rows() == [{"store_id": 1, "units": 2.0}]
    assert got.to_df()["units"].tolist() == [2.0]
    assert len(got) == 1


def test_one_entity_reads_the_same_as_many(fstore):
    """The single-entity fast path agrees with the batch path: every type, nulls, a
    composite key, a missing entity."""
    item = Entity("item", join_keys=["store_id", "sku"], dtypes={"sku": "string"})
    frame = pd.DataFrame(
        {
            "store_id": [1, 1, 2, 3],
            "sku": ["a", "b", "a", "c"],
            "event_ts": [ts(1), ts(2), ts(3), ts(4)],
            "units": [1.5, None, 3.0, 4.0],
            "count": pd.array([1, 2, None, 4], dtype="Int64"),
            "promo": pd.array([True, None, False, True], dtype="boolean"),
            "label": ["x", "y", None, "ü"],
            "seen": [ts(0), ts(1), None, ts(3)],
        }
    )
    view = FeatureView(
        "stock",
        entities=[item],
        schema=[
            Field("units", "float64"),
            Field("count", "int64"),
            Field("promo", "bool"),
            Field("label", "string"),
            Field("seen", "timestamp"),
        ],
        source=DataFrameSource(frame, timestamp_field="event_ts"),
    )
    fstore.apply([view])
    fstore.materialize(ts(0), ts(10))
    at(fstore, 10)
    refs = ["stock:units", "stock:count", "stock:promo", "stock:label", "stock:seen"]
    entities = [
        {"store_id": 1, "sku": "a"},
        {"store_id": 1, "sku": "b"},
        {"store_id": 2, "sku": "a"},
        {"store_id": 3, "sku": "c"},
        {"store_id": 9, "sku": "a"},
    ]
    many = fstore.get_online_features(entities, refs)
    assert many["units"] == [1.5, None, 3.0, 4.0, None]
    assert many["label"] == ["x", "y", None, "ü", None]
    assert many.status_dict()["units"] == ["present"] * 4 + ["missing"]
    for i, entity in enumerate(entities):
        one = fstore.get_online_features([entity], refs)
        assert one.to_dict() == {name: [values[i]] for name, values in many.to_dict().items()}
        assert one.status_dict() == {name: [s[i]] for name, s in many.status_dict().items()}


def test_one_entity_keys_are_checked_like_many(fstore, sales_view):
    fstore.apply([sales_view])
    fstore.materialize(ts(0), ts(20))
    at(fstore, 20)
    got = fstore.get_online_features([{"store_id": np.int64(1)}], ["sales:units"])
    assert got["units"] == [2.0]
    with pytest.raises(InvalidParameter, match="'store_id' must be an integer, got bool True"):
        fstore.get_online_features([{"store_id": True}], ["sales:units"])
    with pytest.raises(InvalidParameter, match="entity_rows must be a list of dicts"):
        fstore.get_online_features([1], ["sales:units"])  # type: ignore[list-item]
