"""Live metrics: feedback joined to logged predictions by request id and row, in DuckDB,
with values held to scikit-learn/NumPy on the same rows and intervals to SciPy."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
from scipy import stats
from sklearn import metrics as skm

from modelyard.errors import InvalidParameter
from modelyard.monitoring.live_metrics import LiveMetric, check_metrics, wilson
from modelyard.monitoring.log_windows import evaluate_window
from modelyard.serving.feedback import FeedbackItem

from .prediction_log_data import (
    DEPLOYMENT,
    HOUR_MS,
    T0,
    Request,
    give_feedback,
    open_stores,
    write_log,
)


def by_name(
    live: list[LiveMetric], variant: str = "blue", slice: str | None = None
) -> dict[str, LiveMetric]:
    return {m.name: m for m in live if m.variant == variant and m.slice == slice}


def evaluate(stores, **options):
    return evaluate_window(
        stores.artifacts,
        stores.db,
        DEPLOYMENT,
        T0,
        T0 + HOUR_MS,
        reference=None,
        prediction_reference=None,
        **options,
    )


def test_regression_metrics_equal_sklearn_on_the_joined_rows(tmp_path: Path) -> None:
    rng = np.random.default_rng(3)
    truth, predicted = [], []
    requests, feedback = [], []
    for i in range(120):
        n = 1 + i % 3  # multi-row requests: the row index matters
        pred = rng.normal(50, 10, n).round(3)
        actual = (pred + rng.normal(1, 4, n)).round(3)
        if i % 10 == 0:
            actual[0] = 0.0  # zero actuals: MAPE skips them and says so
        requests.append(Request(f"r{i}", T0 + i * 1000, {"x": pred.tolist()}, pred.tolist()))
        for j in range(n):
            if (i + j) % 3:  # feedback for some rows only
                feedback.append(FeedbackItem(f"r{i}", j, value=float(actual[j])))
                truth.append(actual[j])
                predicted.append(pred[j])
    y, p = np.array(truth), np.array(predicted)
    with open_stores(tmp_path) as s:
        write_log(s.artifacts, requests)
        give_feedback(s.db, feedback)
        result = evaluate(s)
    m = by_name(result.live)
    assert result.feedback_rows == len(y)
    assert m["mae"].value == pytest.approx(skm.mean_absolute_error(y, p))
    assert m["rmse"].value == pytest.approx(math.sqrt(skm.mean_squared_error(y, p)))
    assert m["bias"].value == pytest.approx(np.mean(p - y))
    nonzero = y != 0
    assert m["mape"].value == pytest.approx(
        skm.mean_absolute_percentage_error(y[nonzero], p[nonzero])
    )
    assert m["mape"].count == int(nonzero.sum()) and m["mae"].count == len(y)
    assert "skipped" in (m["mape"].note or "")
    # Student-t intervals of the means, as scipy.stats computes them
    for name, values in (("mae", np.abs(p - y)), ("bias", p - y)):
        low, high = stats.t.interval(0.95, len(values) - 1, values.mean(), stats.sem(values))
        assert (m[name].ci_low, m[name].ci_high) == (pytest.approx(low), pytest.approx(high))
    low, high = stats.t.interval(0.95, len(y) - 1, np.mean((p - y) ** 2), stats.sem((p - y) ** 2))
    assert m["rmse"].ci_low == pytest.approx(math.sqrt(low))
    assert m["rmse"].ci_high == pytest.approx(math.sqrt(high))
    # coverage: rows with feedback over rows served
    (overall,) = [c for c in result.coverage if c.slice is None]
    assert overall.predictions == sum(r.n_rows for r in requests)
    assert overall.with_feedback == len(y)


def test_the_join_is_by_request_id_and_row_and_the_latest_item_wins(tmp_path: Path) -> None:
    requests = [
        Request("a", T0 + 1, {"x": [1, 2, 3]}, [10.0, 20.0, 30.0]),
        Request("b", T0 + 2, {"x": [1]}, [5.0]),
    ]
    feedback = [
        FeedbackItem("a", 2, value=33.0),  # row 2 of a: error 3
        FeedbackItem("b", 0, value=100.0),  # corrected below
        FeedbackItem("b", 0, value=6.0),  # error 1: the later item wins
        FeedbackItem("a", 7, value=1.0),  # no such row: ignored
        FeedbackItem("zzz", 0, value=1.0),  # no such request in the window
    ]
    with open_stores(tmp_path) as s:
        write_log(s.artifacts, requests)
        give_feedback(s.db, feedback)
        result = evaluate(s)
    m = by_name(result.live)
    assert result.feedback_rows == 2
    assert m["mae"].value == pytest.approx(2.0) and m["mae"].count == 2
    assert m["bias"].value == pytest.approx(-2.0)


def test_binary_scores_give_accuracy_precision_recall_auc_and_ece(tmp_path: Path) -> None:
    rng = np.random.default_rng(5)
    n = 300
    y = rng.integers(0, 2, n)
    score = np.clip(0.35 * y + rng.uniform(0, 0.65, n), 0, 1).round(4)
    requests = [Request(f"r{i}", T0 + i, {"x": [i]}, [float(score[i])]) for i in range(n)]
    feedback = [FeedbackItem(f"r{i}", 0, value=float(y[i])) for i in range(n)]
    with open_stores(tmp_path) as s:
        write_log(s.artifacts, requests)
        give_feedback(s.db, feedback)
        result = evaluate(s, metrics=["accuracy", "precision", "recall", "roc_auc", "ece"])
    m = by_name(result.live)
    predicted = (score >= 0.5).astype(int)
    assert m["accuracy"].value == pytest.approx(skm.accuracy_score(y, predicted))
    assert m["precision"].value == pytest.approx(skm.precision_score(y, predicted))
    assert m["recall"].value == pytest.approx(skm.recall_score(y, predicted))
    assert m["roc_auc"].value == pytest.approx(skm.roc_auc_score(y, score))
    assert m["ece"].value == pytest.approx(ece(y, predicted, np.maximum(score, 1 - score)))
    assert m["ece"].ci_low is None and m["ece"].note
    hits = int((y == predicted).sum())
    ci = stats.binomtest(hits, n).proportion_ci(method="wilson")
    assert (m["accuracy"].ci_low, m["accuracy"].ci_high) == (
        pytest.approx(ci.low),
        pytest.approx(ci.high),
    )
    assert m["roc_auc"].ci_low < m["roc_auc"].value < m["roc_auc"].ci_high


def ece(y: np.ndarray, predicted: np.ndarray, confidence: np.ndarray, bins: int = 10) -> float:
    """Expected calibration error of the top-label confidence (Guo et al.), in NumPy."""
    index = np.minimum((confidence * bins).astype(int), bins - 1)
    total = 0.0
    for b in range(bins):
        inside = index == b
        if inside.any():
            gap = abs(np.mean(y[inside] == predicted[inside]) - np.mean(confidence[inside]))
            total += gap * inside.sum() / len(y)
    return total


def test_multiclass_labels_give_macro_precision_and_recall(tmp_path: Path) -> None:
    rng = np.random.default_rng(7)
    classes = np.array(["cat", "dog", "eel"])
    n = 240
    y = classes[rng.integers(0, 3, n)]
    predicted = np.where(rng.uniform(size=n) < 0.7, y, classes[rng.integers(0, 3, n)])
    requests = [Request(f"r{i}", T0 + i, {"x": [i]}, [str(predicted[i])]) for i in range(n)]
    feedback = [FeedbackItem(f"r{i}", 0, label=str(y[i])) for i in range(n)]
    with open_stores(tmp_path) as s:
        write_log(s.artifacts, requests)
        give_feedback(s.db, feedback)
        result = evaluate(s)  # labels in the feedback: classification metrics
    m = by_name(result.live)
    assert m["accuracy"].value == pytest.approx(skm.accuracy_score(y, predicted))
    assert m["precision"].value == pytest.approx(skm.precision_score(y, predicted, average="macro"))
    assert m["recall"].value == pytest.approx(skm.recall_score(y, predicted, average="macro"))
    assert m["roc_auc"].value is None and "labels" in (m["roc_auc"].note or "")
    assert m["precision"].ci_low < m["precision"].value < m["precision"].ci_high


def test_class_scores_per_row_give_the_argmax_class_and_calibration(tmp_path: Path) -> None:
    rng = np.random.default_rng(11)
    n = 150
    proba = rng.dirichlet([1, 1, 1], n).round(4)
    y = rng.integers(0, 3, n)
    requests = [Request(f"r{i}", T0 + i, {"x": [i]}, [proba[i].tolist()]) for i in range(n)]
    feedback = [FeedbackItem(f"r{i}", 0, label=str(y[i])) for i in range(n)]
    with open_stores(tmp_path) as s:
        write_log(s.artifacts, requests)
        give_feedback(s.db, feedback)
        result = evaluate(s, metrics=["accuracy", "ece"])
    m = by_name(result.live)
    predicted = proba.argmax(axis=1)
    assert m["accuracy"].value == pytest.approx(skm.accuracy_score(y, predicted))
    assert m["ece"].value == pytest.approx(ece(y, predicted, proba.max(axis=1)))


def test_metrics_per_slice_and_variant(tmp_path: Path) -> None:
    requests, feedback = [], []
    errors = {("blue", "north"): 1.0, ("blue", "south"): 3.0, ("green", "north"): 5.0}
    for i, (variant, region) in enumerate(list(errors) * 20):
        requests.append(
            Request(
                f"r{i}",
                T0 + i,
                {"region": [region]},
                [10.0],
                variant=variant,
                version=1 if variant == "blue" else 2,
            )
        )
        feedback.append(FeedbackItem(f"r{i}", 0, value=10.0 + errors[(variant, region)]))
    with open_stores(tmp_path) as s:
        write_log(s.artifacts, requests)
        give_feedback(s.db, feedback)
        result = evaluate(s, slices=["region"], metrics=["mae"])
    mae = {(m.variant, m.slice): m for m in result.live if m.name == "mae"}
    assert mae[("blue", "region=north")].value == pytest.approx(1.0)
    assert mae[("blue", "region=south")].value == pytest.approx(3.0)
    assert mae[("blue", None)].value == pytest.approx(2.0)
    assert mae[("green", "region=north")].value == pytest.approx(5.0)
    assert mae[("green", "region=north")].count == 20
    obs = [
        o for o in result.observations if o.name == "metric" and o.label("slice") == "region=south"
    ]
    assert [(o.label("variant"), o.label("version"), o.value) for o in obs] == [("blue", "1", 3.0)]


def test_no_feedback_gives_unknown_metrics_and_zero_coverage(tmp_path: Path) -> None:
    with open_stores(tmp_path) as s:
        write_log(s.artifacts, [Request("r1", T0 + 1, {"x": [1, 2]}, [1.0, 2.0])])
        result = evaluate(s, metrics=["mae", "accuracy"])
    assert result.feedback_rows == 0
    assert {m.name: m.value for m in result.live} == {"mae": None, "accuracy": None}
    assert all(m.note for m in result.live)
    coverage = [o for o in result.observations if o.name == "feedback_coverage"]
    assert [(o.value, o.count) for o in coverage] == [(0.0, 2)]
    metrics = [o for o in result.observations if o.name == "metric"]
    assert metrics and all(o.value is None and o.reason for o in metrics)


def test_unknown_metric_names_are_refused_naming_the_field() -> None:
    with pytest.raises(InvalidParameter) as caught:
        check_metrics(["mae", "f7"])
    assert caught.value.field == "metrics"


@pytest.mark.parametrize("hits,n", [(0, 10), (3, 10), (10, 10), (480, 1000)])
def test_wilson_matches_scipy(hits: int, n: int) -> None:
    ci = stats.binomtest(hits, n).proportion_ci(method="wilson")
    assert wilson(hits, n) == (pytest.approx(ci.low, abs=1e-12), pytest.approx(ci.high))
