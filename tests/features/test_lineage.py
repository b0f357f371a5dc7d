"""Training sets record what they were built from; runs and models link to them."""

from __future__ import annotations

import pandas as pd
import pytest

from modelyard.errors import NotFound
from modelyard.features import training_sets
from modelyard.features.definitions import FeatureService
from modelyard.store.lineage import edges_of
from modelyard.tracking.client import TrackingClient

BASE = pd.Timestamp("2024-01-01", tz="UTC")


def entities() -> pd.DataFrame:
    return pd.DataFrame({"store_id": [1, 2], "event_timestamp": [BASE + pd.Timedelta(hours=1)] * 2})


def test_a_training_set_records_view_versions_and_source_digests(fstore, sales_view):
    fstore.apply([sales_view])
    ts = fstore.get_training_set(entities(), ["sales:units"], name="demand-train")
    info = training_sets.get(fstore.db, ts.training_set_id)
    assert info.name == "demand-train" and info.row_count == 2
    assert info.views == {"sales": {"version": 1, "digest": sales_view.digest}}
    [source] = info.sources
    assert source["name"] == "sales" and len(source["digest"]) == 64
    with fstore.db.read() as conn:
        edges = edges_of(conn, "feature_view:sales@1")
    assert (f"dataset:sales@{source['digest']}", "feature_view:sales@1", "source") in edges
    assert ("feature_view:sales@1", f"training_set:{ts.training_set_id}", "input") in edges


def test_a_run_that_uses_a_training_set_gets_an_input_and_an_edge(fstore, settings, sales_view):
    fstore.apply([sales_view])
    ts = fstore.get_training_set(entities(), ["sales:units"])
    tracking = TrackingClient.from_settings(settings)
    run = tracking.create_run(tracking.create_experiment("demand"))
    fstore.log_training_set(tracking, run.info.run_id, ts)
    inputs = tracking.get_run(run.info.run_id).inputs
    assert [(i.name, i.source_type) for i in inputs] == [("training_set", "feature_store")]
    with fstore.db.read() as conn:
        edges = edges_of(conn, f"run:{run.info.run_id}")
    assert (f"training_set:{ts.training_set_id}", f"run:{run.info.run_id}", "input") in edges


def test_unrecorded_training_sets_cannot_be_logged(fstore, settings, sales_view):
    fstore.apply([sales_view])
    ts = fstore.get_training_set(entities(), ["sales:units"], record=False)
    assert ts.training_set_id is None
    tracking = TrackingClient.from_settings(settings)
    run = tracking.create_run(tracking.create_experiment("demand"))
    with pytest.raises(NotFound, match="not recorded"):
        fstore.log_training_set(tracking, run.info.run_id, ts)


def test_a_feature_service_attaches_to_a_model_version(fstore, sales_view):
    fstore.apply([FeatureService("demand", features=[sales_view])])
    binding = fstore.attach_service("demand-model", 3, "demand")
    assert (binding.service, binding.service_version) == ("demand", 1)
    assert fstore.service_of_model("demand-model", "3") == binding
    with fstore.db.read() as conn:
        assert ("feature_service:demand@1", "model:demand-model/3", "features") in edges_of(
            conn, "model:demand-model/3"
        )
    with pytest.raises(NotFound, match="no feature service attached"):
        fstore.service_of_model("demand-model", 4)
    with pytest.raises(NotFound, match="'other'"):
        fstore.attach_service("demand-model", 3, "other")
