"""The data and features JSON of the web UI, over the real rooms: dataset versions with
their stored profiles (and no invented contract results), feature definitions with their
code and each online store's materialisation watermark. Bad input is a 400 naming the
field; unknown names are 404."""

from __future__ import annotations

from collections.abc import Iterator

import pandas as pd
import pytest
from starlette.testclient import TestClient
from tests.server.conftest import assert_error

from modelyard.config import Settings
from modelyard.data.client import DataClient
from modelyard.features.client import FeatureStore
from modelyard.features.definitions import (
    DataFrameSource,
    Entity,
    FeatureService,
    FeatureView,
    Field,
)
from modelyard.registry.client import RegistryClient
from modelyard.server.control.app import create_app
from modelyard.tracking.client import TrackingClient


@pytest.fixture
def client(tmp_path) -> Iterator[TestClient]:
    settings = Settings(home=tmp_path / "yard", user="ana")
    data = DataClient.from_settings(settings)
    data.snapshot(pd.DataFrame({"price": [1.0, 2.0, 3.0, 4.0], "shop": list("aaab")}), "sales")
    data.snapshot(pd.DataFrame({"price": [5.0, 6.0], "shop": list("ab")}), "sales")
    frame = pd.DataFrame(
        {
            "store_id": [7, 7, 8],
            "units": [3, 5, 2],
            "day": pd.to_datetime(["2024-01-01", "2024-01-02", "2024-01-01"], utc=True),
        }
    )
    store = Entity("store", join_keys=["store_id"])
    view = FeatureView(
        "store_sales",
        entities=[store],
        schema=[Field("units", "int64")],
        source=DataFrameSource(frame, timestamp_field="day"),
    )
    features = FeatureStore.from_settings(settings)
    try:
        features.apply([store, view, FeatureService("demand", features=[view])])
        features.materialize_incremental()
    finally:
        features.close()
    with TrackingClient.from_settings(settings) as tracking:
        app = create_app(settings, tracking, registry=RegistryClient.from_settings(settings))
        with TestClient(app) as test_client:
            yield test_client


def test_dataset_versions_are_listed_newest_first_with_their_lineage_node(
    client: TestClient,
) -> None:
    versions = client.get("/api/v1/datasets").json()["versions"]
    assert [(v["ref"], v["num_rows"]) for v in versions] == [("sales@2", 2), ("sales@1", 4)]
    assert versions[0]["lineage_node"] == f"dataset:sales@{versions[0]['digest']}"
    assert "profile" not in versions[0]


def test_a_version_comes_with_its_profile_and_its_contract_checks(
    client: TestClient, tmp_path
) -> None:
    body = client.get("/api/v1/datasets/sales/versions/1").json()["version"]
    assert [c["name"] for c in body["schema"]] == ["price", "shop"]
    price = body["profile"]["columns"]["price"]
    assert price["min"] == 1.0 and price["max"] == 4.0 and sum(price["histogram"]["counts"]) == 4
    assert body["profile"]["columns"]["shop"]["top"][0] == ["a", 3]
    assert body["contract_results"] == []  # none made yet: said, not "passed"

    contract = tmp_path / "contract.yaml"
    contract.write_text("contract: sales\ncolumns:\n  price: {type: float, max: 2}\n")
    data = DataClient.from_settings(Settings(home=tmp_path / "yard", user="ana"))
    data.check("sales@1", contract)
    (check,) = client.get("/api/v1/datasets/sales/versions/1").json()["version"]["contract_results"]
    assert check["contract"] == "sales" and check["passed"] is False and check["failed"] >= 1


def test_feature_definitions_come_with_code_and_freshness(client: TestClient) -> None:
    definitions = client.get("/api/v1/features").json()["definitions"]
    by_name = {(d["kind"], d["name"]): d for d in definitions}
    view = by_name[("feature_view", "store_sales")]
    assert view["version"] == 1 and view["lineage_node"] == "feature_view:store_sales@1"
    (materialized,) = view["materializations"]
    day_2_us = int(pd.Timestamp("2024-01-02", tz="UTC").value // 1000)
    assert materialized["watermark_us"] >= day_2_us and materialized["rows"] == 2
    assert "materializations" not in by_name[("entity", "store")]
    one = client.get("/api/v1/features/feature_view/store_sales").json()
    assert [v["version"] for v in one["versions"]] == [1]
    assert one["definition"]["materializations"] == view["materializations"]


@pytest.mark.parametrize(
    ("path", "field"),
    [
        ("/api/v1/datasets/sales/versions/0", "version"),
        ("/api/v1/datasets/sales/versions/x", "version"),
        ("/api/v1/datasets/-bad/versions/1", "name"),
        ("/api/v1/features/table/store_sales", "kind"),
    ],
)
def test_bad_input_is_refused_naming_the_field(client: TestClient, path: str, field: str) -> None:
    assert_error(client.get(path), 400, "INVALID_PARAMETER_VALUE", field)


def test_unknown_datasets_and_definitions_are_404(client: TestClient) -> None:
    assert_error(client.get("/api/v1/datasets/sales/versions/9"), 404, "RESOURCE_DOES_NOT_EXIST")
    assert_error(client.get("/api/v1/features/feature_view/nope"), 404, "RESOURCE_DOES_NOT_EXIST")
