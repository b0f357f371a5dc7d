"""``evaluate``: cross-validated and held-out metrics, slices, fairness, behaviour, logging."""

from __future__ import annotations

import json

import numpy as np
import pytest
from sklearn.linear_model import LogisticRegression, Ridge
from tests.validation.conftest import FEATURES

from modelyard.errors import InvalidParameter, NotFound
from modelyard.tracking.client import TrackingClient
from modelyard.validation.behaviour import Directional, Invariance, MinimumFunctionality
from modelyard.validation.evaluate import evaluate, log_evaluation

TIME_CV = {"kind": "time", "column": "day", "n_splits": 4, "gap": "3d"}


def test_time_aware_cv_reports_folds_intervals_and_slices(demand):
    result = evaluate(
        Ridge(), demand, target="units", cv=TIME_CV, slices=["region"], features=FEATURES, log=False
    )
    assert len(result.folds) == 4
    for fold in result.folds:
        assert fold.train_period[1] < fold.test_period[0]
    rmse = result.metrics["rmse"]
    assert rmse.ci_low < rmse.value < rmse.ci_high and len(rmse.per_fold) == 4
    assert rmse.value == pytest.approx(2.0, abs=0.3)
    assert {s.value for s in result.slices["region"]} == {"north", "south"}
    worst = result.worst_slices["region"]
    assert worst.metrics["rmse"] == max(s.metrics["rmse"] for s in result.slices["region"])
    assert result.rows == sum(f.test_rows for f in result.folds) < len(demand)
    assert result.predictions.notna().sum() == result.rows
    assert result.model is not None and hasattr(result.model, "coef_")


def test_classification_cv_with_fairness(demand):
    demand = demand.assign(group=np.where(demand["price"] > 5, "a", "b"))
    result = evaluate(
        LogisticRegression(),
        demand,
        target="sold_out",
        task="classification",
        cv=5,
        features=FEATURES,
        sensitive=["group"],
        log=False,
    )
    assert set(result.metrics) == {"accuracy", "precision", "recall", "f1", "roc_auc", "log_loss"}
    assert result.metrics["roc_auc"].value > 0.9
    gaps = result.fairness["group"]
    assert gaps.demographic_parity_difference > 0.3  # price drives sell-outs, so groups differ
    assert 0 <= gaps.equalized_odds_difference <= 1


def test_a_fitted_model_is_scored_with_bootstrap_intervals(demand):
    model = Ridge().fit(demand[FEATURES], demand["units"])
    result = evaluate(model, demand, target="units", features=FEATURES, n_bootstrap=50, log=False)
    assert result.folds == [] and result.rows == len(demand)
    summary = result.metrics["mae"]
    assert summary.ci_low < summary.value < summary.ci_high


def test_behavioural_tests(demand):
    demand = demand.iloc[:800]  # at most 1,000 rows are tested: all of these
    model = Ridge().fit(demand[FEATURES], demand["units"])
    tests = [
        Directional("price_up_never_raises_demand", "price", {"multiply": 1.1}, "not_increase"),
        Directional("promo_raises_demand", "promo", {"set": 1}, "increase"),  # fails for promo=1
        Invariance("tiny_price_noise", "price", {"add": 0.001}, epsilon=0.01),
        MinimumFunctionality("cheap_sells", [{"price": 1.0, "promo": 1}], min=45),
    ]
    result = evaluate(model, demand, "units", features=FEATURES, behaviour=tests, log=False)
    by_name = {b.name: b for b in result.behaviour}
    assert by_name["price_up_never_raises_demand"].passed
    promo = by_name["promo_raises_demand"]
    assert not promo.passed and promo.failed_rows == (demand["promo"] == 1).sum()
    assert by_name["tiny_price_noise"].passed and by_name["cheap_sells"].passed
    assert not result.behaviour_passed


def test_results_are_logged_to_the_run(demand, yard):
    tracking, _ = yard
    run = tracking.create_run(tracking.create_experiment("eval"))
    evaluate(
        Ridge(), demand, "units", cv=3, slices=["region"], features=FEATURES,
        run_id=run.info.run_id, client=tracking,
    )  # fmt: skip
    logged = tracking.get_run(run.info.run_id).data.metrics
    assert "eval.rmse" in logged and "eval.rmse_ci_high" in logged
    assert "eval.slice.region.north.rmse" in logged
    assert len(tracking.get_metric_history(run.info.run_id, "eval.fold.rmse")) == 3
    report = json.loads(tracking.read_artifact(run.info.run_id, "evaluation.json"))
    assert report["task"] == "regression" and len(report["folds"]) == 3


@pytest.fixture
def closed_clients(monkeypatch) -> list[TrackingClient]:
    """Every TrackingClient closed while the test runs."""
    closed: list[TrackingClient] = []
    close = TrackingClient.close

    def recording(self: TrackingClient) -> None:
        closed.append(self)
        close(self)

    monkeypatch.setattr(TrackingClient, "close", recording)
    return closed


def test_the_client_logging_opens_from_the_settings_is_closed(
    demand, tmp_path, monkeypatch, closed_clients
):
    monkeypatch.setenv("MODELYARD_HOME", str(tmp_path / "yard"))
    with TrackingClient.from_settings() as setup:
        run_id = setup.create_run(setup.create_experiment("eval")).info.run_id
    result = evaluate(Ridge(), demand, "units", cv=3, features=FEATURES, log=False)
    closed_clients.clear()
    assert log_evaluation(result, run_id=run_id) == run_id
    assert len(closed_clients) == 1  # the one it opened: its store's connections released
    with pytest.raises(NotFound):  # closed when the write fails too
        log_evaluation(result, run_id="0" * 32)
    assert len(closed_clients) == 2
    with TrackingClient.from_settings() as reader:
        assert "eval.rmse" in reader.get_run(run_id).data.metrics


def test_the_callers_client_is_left_open(demand, yard, closed_clients):
    tracking, _ = yard
    run_id = tracking.create_run(tracking.create_experiment("eval")).info.run_id
    result = evaluate(Ridge(), demand, "units", cv=3, features=FEATURES, log=False)
    log_evaluation(result, run_id=run_id, client=tracking)
    assert closed_clients == []
    assert "eval.rmse" in tracking.get_run(run_id).data.metrics


def test_model_uris_are_loaded_from_the_registry(demand, champion_and_candidate, fluent):
    # `fluent` points the fluent API (whose settings resolve URIs) at the same store.
    result = evaluate("models:/demand/2", demand, "units", features=FEATURES, log=False)
    assert result.metrics["rmse"].value < 2.5


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"target": "sales"}, "target column 'sales' is not in the data"),
        ({"target": "units", "slices": ["segment"]}, "slice column 'segment' is not in the data"),
        ({"target": "units", "task": "ranking"}, "task must be 'regression' or 'classification'"),
        ({"target": "units", "cv": {"kind": "time", "column": "region"}}, "time column 'region'"),
        (
            {"target": "units", "cv": {"kind": "time", "column": "week"}},
            "'week' is not in the data",
        ),
        ({"target": "region"}, "regression target must be numeric"),
        ({"target": "sold_out", "task": "classification", "positive": 7}, "positive class 7"),
        ({"target": "units", "features": ["price", "units"]}, "also listed as a feature"),
        ({"target": "units", "sensitive": ["region"]}, "fairness gaps are defined for binary"),
    ],
)
def test_bad_input_names_the_column_or_option(demand, kwargs, message):
    model = Ridge().fit(demand[FEATURES], demand["units"])
    with pytest.raises(InvalidParameter, match=message):
        evaluate(model if "cv" not in kwargs else Ridge(), demand, log=False, **kwargs)


def test_a_model_without_predict_is_refused(demand):
    with pytest.raises(InvalidParameter, match="has no predict"):
        evaluate(object(), demand, "units", log=False)
