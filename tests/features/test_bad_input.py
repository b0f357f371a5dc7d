"""Bad input gets an error that names the field and the reason, and changes nothing."""

from __future__ import annotations

from datetime import timedelta

import pandas as pd
import pytest

from modelyard.errors import InvalidParameter, NotFound
from modelyard.features.definitions import (
    DataFrameSource,
    Entity,
    FeatureService,
    FeatureView,
    Field,
    FileSource,
    OnDemandFeatureView,
    RequestSource,
    parse_ttl,
)

BASE = pd.Timestamp("2024-01-01", tz="UTC")


def rows(**columns):
    frame = pd.DataFrame(columns)
    if "event_timestamp" not in frame:
        frame["event_timestamp"] = BASE
    return frame


@pytest.mark.parametrize("ttl", ["1 day", "abc", "1x", "", "-1h", [], True, -5])
def test_a_ttl_that_is_not_a_duration_is_refused(ttl):
    with pytest.raises(InvalidParameter, match="ttl") as info:
        parse_ttl(ttl)
    assert info.value.field == "ttl"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("1d", timedelta(days=1)),
        ("12h", timedelta(hours=12)),
        ("1d12h", timedelta(hours=36)),
        ("90s", timedelta(seconds=90)),
        ("1.5h", timedelta(minutes=90)),
        ("2w", timedelta(weeks=2)),
        (timedelta(minutes=3), timedelta(minutes=3)),
        (60, timedelta(minutes=1)),
        (None, None),
        ("0s", None),
    ],
)
def test_ttls_parse_from_text_timedeltas_and_seconds(text, expected):
    assert parse_ttl(text) == expected


def test_unknown_features_are_named(fstore, sales_view):
    fstore.apply([sales_view])
    entities = rows(store_id=[1])
    with pytest.raises(NotFound, match=r"'sales:nope'.*units, promo"):
        fstore.get_training_set(entities, ["sales:nope"])
    with pytest.raises(NotFound, match="no feature view 'nosuch'"):
        fstore.get_online_features([{"store_id": 1}], ["nosuch:units"])
    with pytest.raises(InvalidParameter, match="'units' is not 'view:feature'"):
        fstore.get_online_features([{"store_id": 1}], ["units"])
    with pytest.raises(NotFound, match="feature service 'svc'"):
        fstore.get_online_features([{"store_id": 1}], service="svc")
    with pytest.raises(InvalidParameter, match="has no feature 'nope'"):
        sales_view[["nope"]]


def test_entity_rows_missing_a_join_key(fstore, sales_view):
    fstore.apply([sales_view])
    with pytest.raises(InvalidParameter, match="missing join key 'store_id'") as info:
        fstore.get_training_set(rows(shop=[1]), ["sales:units"])
    assert info.value.field == "store_id"
    with pytest.raises(InvalidParameter, match="missing join key 'store_id'"):
        fstore.get_online_features([{"shop": 1}], ["sales:units"])
    with pytest.raises(InvalidParameter, match="missing join key 'store_id'"):
        fstore.get_online_features({"shop": [1]}, ["sales:units"])


def test_wrong_types_in_entity_rows_and_sources(fstore, sales_view, tmp_path, store_entity):
    fstore.apply([sales_view])
    with pytest.raises(InvalidParameter, match=r"join key 'store_id' is (large_)?string.*int64"):
        fstore.get_training_set(rows(store_id=["1"]), ["sales:units"])
    with pytest.raises(InvalidParameter, match="'store_id' must be an integer, got str '1'"):
        fstore.get_online_features([{"store_id": "1"}], ["sales:units"])
    with pytest.raises(
        InvalidParameter, match=r"timestamp column 'event_timestamp' is .*string, not a timestamp"
    ):
        fstore.get_training_set(rows(store_id=[1], event_timestamp=["2024-01-01"]), ["sales:units"])
    source = pd.DataFrame({"store_id": [1], "event_ts": [BASE], "units": ["many"]})
    bad = FeatureView(
        "bad",
        entities=[store_entity],
        schema=[Field("units", "float64")],
        source=DataFrameSource(source, timestamp_field="event_ts"),
    )
    fstore.apply([bad])
    with pytest.raises(InvalidParameter, match=r"feature 'units'.* is VARCHAR.*declared float64"):
        fstore.get_training_set(rows(store_id=[1]), ["bad:units"])
    with pytest.raises(
        InvalidParameter, match=r"'float64' is not a feature type|not a feature type"
    ):
        Field("x", "float128")


def test_a_source_without_its_timestamp_column(fstore, tmp_path, store_entity):
    frame = pd.DataFrame({"store_id": [1], "when": [BASE], "units": [1.0]})
    with pytest.raises(InvalidParameter, match="no column 'event_ts'"):
        DataFrameSource(frame, timestamp_field="event_ts")
    frame.to_parquet(tmp_path / "f.parquet")
    view = FeatureView(
        "v",
        entities=[store_entity],
        schema=[Field("units")],
        source=FileSource(tmp_path / "f.parquet", timestamp_field="event_ts"),
    )
    fstore.apply([view])
    with pytest.raises(InvalidParameter, match=r"no timestamp column 'event_ts'.*'when'") as info:
        fstore.get_training_set(rows(store_id=[1]), ["v:units"])
    assert info.value.field == "timestamp_field"
    with pytest.raises(InvalidParameter, match="no timestamp column 'event_ts'"):
        fstore.materialize(BASE, BASE + pd.Timedelta(days=1))
    with pytest.raises(InvalidParameter, match="does not exist"):
        fstore.apply(
            [
                FeatureView(
                    "gone",
                    entities=[store_entity],
                    schema=[Field("units")],
                    source=FileSource(tmp_path / "nope.parquet", timestamp_field="when"),
                )
            ]
        )
        fstore.get_training_set(rows(store_id=[1]), ["gone:units"])


def test_bad_definitions_are_refused_when_written(store_entity, sales_view):
    src = sales_view.source
    with pytest.raises(InvalidParameter, match="feature view name"):
        FeatureView("bad name", entities=[store_entity], source=src, schema=[Field("a")])
    with pytest.raises(InvalidParameter, match="needs entities"):
        FeatureView("v", entities=[], source=src, schema=[Field("a")])
    with pytest.raises(InvalidParameter, match="declares \\['store_id'\\] twice"):
        FeatureView("v", entities=[store_entity], source=src, schema=[Field("store_id")])
    with pytest.raises(InvalidParameter, match="sql= or transform=, not both"):
        FeatureView(
            "v",
            entities=[store_entity],
            source=src,
            schema=[Field("a")],
            sql="SELECT 1",
            transform=lambda f: f,
        )
    with pytest.raises(InvalidParameter, match="keys are int64 or string"):
        Entity("e", join_keys=["k"], dtype="float64")
    with pytest.raises(InvalidParameter, match="no features"):
        FeatureService("s", features=[])


def test_request_data_is_checked(fstore, sales_view):
    odfv = OnDemandFeatureView(
        "adj",
        sources=[sales_view[["units"]], RequestSource("r", [Field("factor")])],
        schema=[Field("adjusted")],
        transform=lambda f: pd.DataFrame({"adjusted": f["units"] * f["factor"]}),
    )
    fstore.apply([odfv])
    with pytest.raises(InvalidParameter, match="missing request field 'factor'"):
        fstore.get_training_set(rows(store_id=[1]), ["adj:adjusted"])
    with pytest.raises(InvalidParameter, match="request data is missing 'factor'"):
        fstore.get_online_features([{"store_id": 1}], ["adj:adjusted"])
    with pytest.raises(InvalidParameter, match="'factor' must hold float64"):
        fstore.get_online_features(
            [{"store_id": 1}], ["adj:adjusted"], request_data={"factor": ["x"]}
        )


def test_materialize_window_and_times_are_checked(fstore, sales_view):
    fstore.apply([sales_view])
    with pytest.raises(InvalidParameter, match="start is after its end"):
        fstore.materialize(BASE + pd.Timedelta(days=1), BASE)
    with pytest.raises(InvalidParameter, match="'yesterday-ish' is not a point in time"):
        fstore.materialize("yesterday-ish", BASE)
    with pytest.raises(InvalidParameter, match="is a number"):
        fstore.materialize(0, BASE)


def test_a_refused_apply_changes_nothing(fstore, sales_view, store_entity, sales_file):
    twin = FeatureView(
        "sales",
        entities=[store_entity],
        schema=[Field("units")],
        source=FileSource(sales_file, timestamp_field="event_ts"),
    )
    with pytest.raises(InvalidParameter, match="two different feature views are named 'sales'"):
        fstore.apply([sales_view, twin])
    assert fstore.registry.list() == []


def test_an_offline_only_view_is_not_served(fstore, sales_file, store_entity):
    view = FeatureView(
        "archive",
        entities=[store_entity],
        schema=[Field("units")],
        online=False,
        source=FileSource(sales_file, timestamp_field="event_ts"),
    )
    fstore.apply([view])
    assert fstore.materialize_incremental(BASE) == []  # nothing to copy
    with pytest.raises(InvalidParameter, match="archive is offline only"):
        fstore.get_online_features([{"store_id": 1}], ["archive:units"])
