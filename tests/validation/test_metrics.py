"""Metrics agree with scikit-learn; intervals cover; fairness gaps follow Fairlearn's rules."""

from __future__ import annotations

import sys

import numpy as np
import pytest
from scipy import stats
from sklearn import metrics as sk

from modelyard.errors import MissingExtra
from modelyard.validation import metrics as m


@pytest.fixture
def binary():
    rng = np.random.default_rng(0)
    y = rng.integers(0, 2, 500)
    scores = np.clip(y * 0.3 + rng.random(500) * 0.7, 0, 1).round(2)  # with ties
    pred = (scores > 0.5).astype(int)
    return m.Predictions(y, pred, scores, (0, 1), 1)


def test_regression_metrics_match_scikit_learn():
    rng = np.random.default_rng(1)
    y = rng.normal(10, 3, 300)
    pred = y + rng.normal(0, 1, 300)
    p = m.Predictions(y, pred)
    assert m.rmse(p) == pytest.approx(np.sqrt(sk.mean_squared_error(y, pred)))
    assert m.mae(p) == pytest.approx(sk.mean_absolute_error(y, pred))
    assert m.r2(p) == pytest.approx(sk.r2_score(y, pred))
    assert m.mape(p) == pytest.approx(sk.mean_absolute_percentage_error(y, pred))
    assert m.bias(p) == pytest.approx(np.mean(pred - y))


def test_binary_metrics_match_scikit_learn(binary):
    y, pred, scores = binary.y_true, binary.y_pred, binary.scores
    assert m.accuracy(binary) == pytest.approx(sk.accuracy_score(y, pred))
    assert m.precision(binary) == pytest.approx(sk.precision_score(y, pred))
    assert m.recall(binary) == pytest.approx(sk.recall_score(y, pred))
    assert m.f1(binary) == pytest.approx(sk.f1_score(y, pred))
    assert m.roc_auc(binary) == pytest.approx(sk.roc_auc_score(y, scores))
    assert m.log_loss(binary) == pytest.approx(sk.log_loss(y, scores))


def test_multiclass_metrics_are_macro_averaged():
    rng = np.random.default_rng(2)
    y = rng.choice(["a", "b", "c"], 400)
    pred = np.where(rng.random(400) < 0.7, y, rng.choice(["a", "b", "c"], 400))
    p = m.Predictions(y, pred, None, ("a", "b", "c"), "c")
    assert m.precision(p) == pytest.approx(sk.precision_score(y, pred, average="macro"))
    assert m.recall(p) == pytest.approx(sk.recall_score(y, pred, average="macro"))
    assert m.f1(p) == pytest.approx(sk.f1_score(y, pred, average="macro"))


def test_intervals_from_folds_and_from_the_bootstrap():
    folds = m.fold_summary([1.0, 1.2, 0.9, 1.1, 1.0])
    assert folds.ci_low < folds.value < folds.ci_high
    assert folds.value == pytest.approx(1.04) and len(folds.per_fold) == 5
    rng = np.random.default_rng(3)
    y = rng.normal(0, 1, 2_000)
    boot = m.bootstrap(("rmse",), m.Predictions(y, y + rng.normal(0, 1, 2_000)), 100)
    assert boot["rmse"].ci_low < boot["rmse"].value < boot["rmse"].ci_high
    assert boot["rmse"].ci_high - boot["rmse"].ci_low < 0.1


@pytest.mark.parametrize("k", [2, 3, 5, 10, 31, 32, 50, 200])
def test_the_fold_interval_is_scipys_student_t_interval_for_any_number_of_folds(k):
    values = list(np.random.default_rng(k).normal(1.0, 0.2, k))
    summary = m.fold_summary(values)
    low, high = stats.t.interval(0.95, k - 1, loc=np.mean(values), scale=stats.sem(values))
    # beyond 31 folds there was no table: 1.96 made the interval too narrow
    assert (summary.ci_low, summary.ci_high) == pytest.approx((low, high), rel=1e-12)


def test_a_fold_that_is_nan_is_left_out_of_the_interval():
    summary = m.fold_summary([1.0, float("nan"), 1.2, 0.9])
    low, high = stats.t.interval(
        0.95, 2, loc=np.mean([1.0, 1.2, 0.9]), scale=stats.sem([1.0, 1.2, 0.9])
    )
    assert (summary.ci_low, summary.ci_high) == pytest.approx((low, high), rel=1e-12)
    single = m.fold_summary([1.0])
    assert single.ci_low == single.ci_high == 1.0


@pytest.mark.parametrize("task", ["regression", "classification"])
def test_the_bootstrap_intervals_are_scipys_percentile_bootstrap(task, binary):
    rng = np.random.default_rng(4)
    if task == "regression":
        y = rng.normal(0, 1, 300)
        p, names = m.Predictions(y, y + rng.normal(0, 1, 300)), m.REGRESSION
    else:
        p, names = binary, m.metric_names("classification", True, True)
    ours = m.bootstrap(names, p, 120, seed=7)

    def statistic(rows, axis=-1):
        return np.array([[m.compute(names, p.take(r))[k] for r in rows] for k in names])

    n = len(p.y_true)
    theirs = stats.bootstrap(
        (np.arange(n),),
        statistic,
        n_resamples=120,
        batch=1,
        vectorized=True,
        method="percentile",
        rng=np.random.default_rng(7),
    )
    for i, name in enumerate(names):
        summary = ours[name]
        low, high = theirs.confidence_interval.low[i], theirs.confidence_interval.high[i]
        assert (summary.ci_low, summary.ci_high) == pytest.approx((low, high), rel=1e-12)
        assert summary.std == pytest.approx(theirs.standard_error[i], rel=1e-12)


def test_without_scipy_a_fold_interval_names_the_extra_to_install(monkeypatch):
    monkeypatch.setitem(sys.modules, "scipy", None)
    with pytest.raises(MissingExtra, match=r"pip install 'modelyard\[validation\]'") as caught:
        m.fold_summary([1.0, 1.2, 0.9])
    assert caught.value.package == "scipy" and caught.value.extra == "validation"


def test_fairness_gaps():
    groups = np.array(["f"] * 4 + ["m"] * 4)
    y = np.array([1, 1, 0, 0, 1, 1, 0, 0])
    pred = np.array([1, 1, 1, 0, 1, 0, 0, 0])
    gaps = m.fairness("gender", groups, m.Predictions(y, pred, None, (0, 1), 1))
    assert gaps.selection_rate == {"f": 0.75, "m": 0.25}
    assert gaps.demographic_parity_difference == pytest.approx(0.5)
    # TPR: f 1.0, m 0.5 (gap 0.5); FPR: f 0.5, m 0.0 (gap 0.5)
    assert gaps.equalized_odds_difference == pytest.approx(0.5)


def test_direction_and_comparison():
    assert m.better("rmse", 1.0, 2.0) and m.better("accuracy", 0.9, 0.8)
    assert m.better("bias", -0.1, 0.5)
