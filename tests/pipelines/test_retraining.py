"""The shipped retraining pipeline on generated retail data (stores × products × days): a
new dataset version is checked, joined with features as of each day, trained, evaluated
over time, registered with its card, gated against the champion and rolled out — or
stopped, saying why, with the report attached."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sqlalchemy import select

from modelyard.config import Settings
from modelyard.data.client import DataClient
from modelyard.errors import InvalidParameter
from modelyard.features.client import FeatureStore
from modelyard.features.definitions import Entity, FeatureService, FeatureView, Field
from modelyard.features.sources import FileSource
from modelyard.pipelines import PipelineFailed, PipelineRegistry, load_output
from modelyard.pipelines.retraining_config import load_config
from modelyard.registry.client import RegistryClient
from modelyard.serving.deployments import DeploymentService
from modelyard.store.schema import lineage_edges

TARGET = "modelyard.pipelines.retraining:retraining"
START = pd.Timestamp("2026-09-01", tz="UTC")
STORES, PRODUCTS = 3, 4

GATE = """
gate: demand-quality
task: regression
target: units
bootstrap: 20
rules:
  - rmse <= {bound}
"""


def sales(days: int, seed: int = 0) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """(sales rows, product prices by day, store sizes): units grow with the store's size
    and promotions, fall with price, and peak at weekends."""
    rng = np.random.default_rng(seed)
    day = pd.date_range(START, periods=days, freq="D")
    prices = pd.DataFrame(
        [(p, d, 5.0 + p + rng.normal(0, 0.5), bool(rng.random() < 0.2))
         for p in range(PRODUCTS) for d in day],
        columns=["product_id", "day", "price", "promo"],
    )  # fmt: skip
    sizes = pd.DataFrame(
        {"store_id": range(STORES), "size": [1.0, 2.0, 3.5], "since": START - pd.Timedelta("1D")}
    )
    rows = prices.merge(pd.DataFrame({"store_id": range(STORES)}), how="cross")
    rows = rows.merge(sizes[["store_id", "size"]], on="store_id")
    weekend = rows["day"].dt.dayofweek >= 5
    rows["units"] = (
        20 + 8 * rows["size"] + 12 * rows["promo"] - 2 * rows["price"] + 6 * weekend
        + rng.normal(0, 1.0, len(rows))
    )  # fmt: skip
    return rows[["store_id", "product_id", "day", "units"]], prices, sizes


@pytest.fixture
def yard(settings, tmp_path, monkeypatch):
    """Stores for the steps (through the environment, as a scheduler's), feature views of
    prices and store sizes, sales@1 (40 days), and the pipeline registered."""
    monkeypatch.setenv("MODELYARD_HOME", str(settings.home))
    rows, prices, sizes = sales(40)
    prices.to_parquet(tmp_path / "prices.parquet", index=False)
    sizes.to_parquet(tmp_path / "stores.parquet", index=False)
    product, store = Entity("product", ["product_id"]), Entity("store", ["store_id"])
    price_view = FeatureView(
        "prices", entities=[product], schema=[Field("price", "float64"), Field("promo", "bool")],
        source=FileSource(tmp_path / "prices.parquet", timestamp_field="day"),
    )  # fmt: skip
    store_view = FeatureView(
        "stores", entities=[store], schema=[Field("size", "float64")],
        source=FileSource(tmp_path / "stores.parquet", timestamp_field="since"),
    )  # fmt: skip
    features = FeatureStore.from_settings(settings)
    features.apply(
        [
            product,
            store,
            price_view,
            store_view,
            FeatureService("demand", features=[price_view, store_view]),
        ]
    )
    features.close()
    DataClient.from_settings(settings).snapshot(rows, "sales", pointer=False)
    (tmp_path / "contract.yaml").write_text(
        "contract: sales\ncolumns:\n  units: {type: float, min: -50}\n  store_id: {type: int}\n"
    )
    write_config(tmp_path)
    registry = PipelineRegistry(settings)
    registry.register("retrain-demand", TARGET, {"config": str(tmp_path / "retrain.yaml")})
    return registry


def write_config(tmp_path, *, bound="champion * 1.5", rollout="", contract="contract.yaml"):
    (tmp_path / "gate.yaml").write_text(GATE.format(bound=bound))
    (tmp_path / "retrain.yaml").write_text(
        f"""
dataset: sales
contract: {contract}
training_set: {{keys: [store_id, product_id], timestamp: day, target: units, service: demand}}
model:
  name: demand
  estimator: sklearn.tree.DecisionTreeRegressor
  params: {{max_depth: 6, random_state: 0}}
  intended_use: daily demand per store and product
evaluation: {{holdout: 7d, cv: {{n_splits: 3}}}}
gate: gate.yaml
{rollout}
"""
    )


def start(registry, **params):
    return registry.start("retrain-demand", params, cause={"kind": "test"}, executor="local")


def champion_in_shop(registry, environment="stores"):
    """Version 1 from a first run, made champion, serving the deployment ``shop``."""
    first = start(registry)
    assert first.status == "FINISHED"
    models = RegistryClient.from_settings(registry.settings)
    models.set_registered_model_alias("demand", "champion", 1)
    deployments = DeploymentService.from_settings(registry.settings)
    deployments.create_environment(environment, protected=environment == "locked")
    deployments.create("shop", "models:/demand/1", environment=environment)
    rows, _, _ = sales(47, seed=1)  # a week more of sales: the new version
    DataClient.from_settings(registry.settings).snapshot(rows, "sales", pointer=False)
    return models, deployments


def test_a_new_dataset_version_goes_from_contract_to_canary(yard, tmp_path):
    models, deployments = champion_in_shop(yard)
    rollout = "rollout: {deployment: shop, shadow: 100, canary: {steps: [10, 50, 100]}}"
    write_config(tmp_path, rollout=rollout)

    run = start(yard)

    assert run.status == "FINISHED"
    assert [s.step_key for s in run.steps] == [
        "load_dataset", "check_contract", "training_set", "train", "evaluate", "register",
        "gate", "require_passed", "roll_out",
    ]  # fmt: skip
    assert load_output(run, "load_dataset", "dataset")["ref"] == "sales@2"
    version = models.get_model_version("demand", 2)
    assert version.tags["modelyard.retraining.dataset"] == "sales@2"
    assert version.tags["modelyard.retraining.pipeline_run"] == run.run_id
    assert version.tags["modelyard.gate.status"] == "passed"
    card = models.get_card("demand", 2)
    assert card.intended_use == "daily demand per store and product"
    assert "time-aware CV on day" in card.validation_methodology
    assert card.validation_results["cv.rmse"] > 0 and card.training_data[0].name == "sales"
    verdict = load_output(run, "gate")
    assert verdict["passed"] and "models:/demand@champion" in verdict["details"]["champion"]
    policy = deployments.get("shop").policy
    assert [(s.model, s.version) for s in policy.shadows] == [("demand", 2)]
    assert policy.kind == "canary" and policy.canary.steps == (10.0, 50.0, 100.0)
    assert load_output(run, "roll_out")["canary"]["status"] == "started"

    # the thread from the data to the version: dataset → training set → train step →
    # its model artifact → register step → model version
    steps = {s.step_key: s for s in run.steps}
    train, registered = steps["train"], steps["register"]
    ts_id = load_output(run, "training_set", "training_set")["training_set_id"]
    with models.db.read() as conn:
        edges = {(e.src, e.dst) for e in conn.execute(select(lineage_edges))}
    digest = load_output(run, "load_dataset", "dataset")["digest"]
    assert (f"dataset:sales@{digest}", f"training_set:{ts_id}") in edges
    assert (f"training_set:{ts_id}", f"run:{train.step_run_id}") in edges
    model_artifact = {d for s, d in edges if s == f"step:{train.step_run_id}"}
    assert {(a, f"step:{registered.step_run_id}") for a in model_artifact} <= edges
    assert any(s.endswith(registered.step_run_id) and d == "model:demand/2" for s, d in edges)
    # ... and the lineage room walks it: the version's upstream reaches the dataset.
    from modelyard.lineage.service import LineageService

    upstream = LineageService(models.db, models.artifacts).trace("models:/demand/2")
    assert f"dataset:sales@{digest}" in upstream.nodes
    assert f"training_set:{ts_id}" in upstream.nodes


def test_a_gate_failure_fails_the_run_with_the_report_attached(yard, tmp_path):
    models, deployments = champion_in_shop(yard)
    write_config(tmp_path, bound="champion * 0.5", rollout="rollout: {deployment: shop}")
    before = deployments.get("shop").current_revision

    with pytest.raises(PipelineFailed, match="failed its gate") as failed:
        start(yard)

    run = failed.value.run
    assert run.status == "FAILED" and "rmse" in run.error
    steps = {s.step_key: s.status for s in run.steps}
    assert steps["gate"] == "COMPLETED" and steps["require_passed"] == "FAILED"
    assert steps["roll_out"] == "SKIPPED"
    report = load_output(run, "gate")
    assert report["passed"] is False and report["details"]["outcomes"]
    assert models.get_model_version("demand", 2).tags["modelyard.gate.status"] == "failed"
    assert deployments.get("shop").current_revision == before  # nothing reached traffic


def test_a_protected_environment_holds_the_canary_until_approved(yard, tmp_path):
    _, deployments = champion_in_shop(yard, environment="locked")
    write_config(
        tmp_path, rollout="rollout: {deployment: shop, shadow: 50, canary: {steps: [10, 100]}}"
    )
    # the steps apply the run's policy (its settings), whatever their environment says
    strict = Settings(home=yard.settings.home, registry_required_approvals=1)

    run = start(PipelineRegistry(strict))

    rolled = load_output(run, "roll_out")
    assert rolled["shadow"]["percent"] == 50  # a shadow never answers users: allowed
    assert rolled["canary"]["status"] == "held" and "approv" in rolled["canary"]["reason"]
    policy = deployments.get("shop").policy
    assert policy.kind == "single" and [s.version for s in policy.shadows] == [2]


def test_a_dataset_breaking_its_contract_stops_before_training(yard, tmp_path):
    (tmp_path / "strict.yaml").write_text("contract: sales\ncolumns:\n  units: {min: 1000}\n")
    write_config(tmp_path, contract="strict.yaml")

    with pytest.raises(PipelineFailed, match="sales@1 breaks its contract"):
        start(yard)
    (run,) = [r for r in yard.store.list_runs("retrain-demand")]
    steps = {s.step_key: s.status for s in yard.store.get_run(run.run_id).steps}
    assert steps["check_contract"] == "FAILED" and steps["train"] == "SKIPPED"


def test_bad_configs_are_refused_naming_the_key(tmp_path):
    write_config(tmp_path)
    good = (tmp_path / "retrain.yaml").read_text()
    (tmp_path / "contract.yaml").write_text("contract: sales\n")
    assert load_config(tmp_path / "retrain.yaml").spec.model.name == "demand"
    cases = {
        "unknown key 'holdot'": good.replace("holdout:", "holdot:"),
        "model.estimator 'sklearn.tree.Nope' cannot be imported": good.replace(
            "DecisionTreeRegressor", "Nope"
        ),
        "gate: .* does not exist": good.replace("gate: gate.yaml", "gate: missing.yaml"),
        "training_set needs service": good.replace(", service: demand", ""),
    }
    for message, text in cases.items():
        (tmp_path / "bad.yaml").write_text(text)
        with pytest.raises(InvalidParameter, match=message):
            load_config(tmp_path / "bad.yaml")


def test_a_drift_alert_naming_the_pipeline_retrains_once(yard):
    from modelyard.pipelines.scheduler import PipelineScheduler
    from modelyard.tracking.backends import database_for

    from .scheduler_yard import BASE, Clock, add_alert

    alert_id = add_alert(database_for(yard.settings), trigger="retrain-demand")
    scheduler = PipelineScheduler(yard, executor="local", background=False, clock=Clock(BASE))

    assert len(scheduler.tick().started) == 1
    assert scheduler.tick().started == []  # the same firing episode: once
    (run,) = yard.store.list_runs("retrain-demand")
    assert run.status == "FINISHED" and run.cause["alert_id"] == alert_id
    assert RegistryClient.from_settings(yard.settings).get_model_version("demand", 1)
