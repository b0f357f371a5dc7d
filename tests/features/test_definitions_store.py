"""Definitions are versioned by their spec and code; apply, list, show and diff them."""

from __future__ import annotations

import textwrap

import pandas as pd
import pytest

from modelyard.errors import InvalidState, NotFound
from modelyard.features.client import FeatureStore
from modelyard.features.definitions import FeatureService, FeatureView, Field, FileSource
from modelyard.store.lineage import edges_of

BASE = pd.Timestamp("2024-01-01", tz="UTC")


def plus_one(frame):
    return frame.assign(more=frame["units"] + 1)


def plus_two(frame):
    return frame.assign(more=frame["units"] + 2)


def view_with(transform, source, entity, **kwargs):
    return FeatureView(
        "derived",
        entities=[entity],
        source=source,
        schema=[Field("more")],
        transform=transform,
        **kwargs,
    )


def test_apply_versions_only_what_changed(fstore, sales_view):
    first = fstore.apply([sales_view])
    assert [(c.kind, c.name, c.action, c.version) for c in first] == [
        ("entity", "store", "created", 1),
        ("feature_view", "sales", "created", 1),
    ]
    assert {c.action for c in fstore.apply([sales_view])} == {"unchanged"}


def test_changed_transformation_code_makes_a_new_version(fstore, sales_view, store_entity):
    source = sales_view.source
    fstore.apply([view_with(plus_one, source, store_entity)])
    [_, change] = fstore.apply([view_with(plus_two, source, store_entity)])
    assert (change.action, change.previous_version, change.version) == ("updated", 1, 2)
    diff = fstore.registry.diff_versions("derived")
    assert '+    return frame.assign(more=frame["units"] + 2)' in diff.code_diff
    assert ("transform", "plus_one", "plus_two") in diff.changes


def test_a_description_change_is_a_version_but_keeps_the_online_layout(
    fstore, sales_view, store_entity
):
    source = sales_view.source
    a = view_with(plus_one, source, store_entity)
    b = view_with(plus_one, source, store_entity, description="units plus one", ttl="2d")
    assert a.digest != b.digest and a.data_digest == b.data_digest
    fstore.apply([a])
    fstore.apply([b])
    v1, v2 = fstore.registry.versions("derived", "feature_view")
    assert (v1.version, v2.version) == (1, 2) and v1.data_digest == v2.data_digest
    changes = dict((p, (o, n)) for p, o, n in fstore.registry.diff_versions("derived").changes)
    assert changes == {"description": ("", "units plus one"), "ttl": ("0s", "2d")}


def test_diff_shows_what_apply_would_change_without_changing_anything(
    fstore, sales_view, store_entity, sales_file
):
    fstore.apply([sales_view])
    changed = FeatureView(
        "sales",
        entities=[store_entity],
        ttl="1h",
        source=FileSource(sales_file, timestamp_field="event_ts"),
        schema=[Field("units", "float32"), Field("promo", "bool")],
    )
    new_service = FeatureService("svc", features=[changed])
    diffs = {d.name: d for d in fstore.registry.diff([new_service])}
    assert diffs["sales"].changes == [("schema[0].dtype", "float64", "float32")]
    assert diffs["svc"].old_version is None
    assert "store" not in diffs  # unchanged
    assert fstore.registry.get("sales").version == 1


def test_list_show_and_not_found(fstore, sales_view):
    fstore.apply([FeatureService("svc", features=[sales_view[["units"]]])])
    assert [(r.kind, r.name) for r in fstore.registry.list()] == [
        ("entity", "store"),
        ("feature_view", "sales"),
        ("feature_service", "svc"),
    ]
    assert [r.name for r in fstore.registry.list("feature_service")] == ["svc"]
    record = fstore.registry.get("svc")
    assert record.spec["features"] == ["sales:units"]
    with pytest.raises(NotFound, match="'nope'"):
        fstore.registry.get("nope")
    with pytest.raises(NotFound, match="version 7"):
        fstore.registry.get("sales", version=7)


def test_apply_links_view_versions_to_the_services_using_them(fstore, sales_view):
    fstore.apply([FeatureService("svc", features=[sales_view])])
    with fstore.db.read() as conn:
        edges = edges_of(conn, "feature_service:svc@1")
    assert ("feature_view:sales@1", "feature_service:svc@1", "feature") in edges


def test_another_process_rebuilds_definitions_from_the_registry(settings, tmp_path, sales_file):
    defs = tmp_path / "features.py"
    defs.write_text(
        textwrap.dedent(f"""
        from modelyard.features.definitions import *

        store = Entity("store", join_keys=["store_id"])
        source = FileSource({str(sales_file)!r}, timestamp_field="event_ts")

        def doubled(frame):
            return frame.assign(twice=frame["units"] * 2)

        twice = FeatureView("twice", entities=[store], source=source, schema=[Field("twice")],
                            transform=doubled)
        plain = FeatureView("plain", entities=[store], source=source, schema=[Field("units")],
                            sql="SELECT * FROM source")
        svc = FeatureService("svc", features=[twice, plain])
    """)
    )
    writer = FeatureStore.from_settings(settings)
    writer.apply_file(defs)
    writer.close()
    reader = FeatureStore.from_settings(settings)  # knows nothing but the registry
    entities = pd.DataFrame({"store_id": [1], "event_timestamp": [BASE + pd.Timedelta(hours=1)]})
    frame = reader.get_training_set(entities, service="svc").to_df()
    assert frame[["twice", "units"]].values.tolist() == [[4.0, 2.0]]
    defs.write_text(defs.read_text().replace("* 2", "* 3"))
    later = FeatureStore.from_settings(settings)
    with pytest.raises(InvalidState, match=r"has changed since it was applied.*features apply"):
        later.get_training_set(entities, service="svc")
    reader.close()
    later.close()


def test_a_dataframe_source_is_read_back_from_its_snapshot(settings, store_entity):
    from modelyard.features.definitions import DataFrameSource

    frame = pd.DataFrame({"store_id": [1], "event_ts": [BASE], "units": [4.5]})
    view = FeatureView(
        "mem",
        entities=[store_entity],
        schema=[Field("units")],
        source=DataFrameSource(frame, timestamp_field="event_ts"),
    )
    writer = FeatureStore.from_settings(settings)
    writer.apply([view])
    writer.close()
    reader = FeatureStore.from_settings(settings)  # the frame is gone: only the snapshot
    entities = pd.DataFrame({"store_id": [1], "event_timestamp": [BASE + pd.Timedelta(hours=1)]})
    assert reader.get_training_set(entities, ["mem:units"]).to_df()["units"].tolist() == [4.5]
    reader.close()
