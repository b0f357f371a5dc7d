"""Metrics (NumPy, no scikit-learn needed), their confidence intervals, and fairness gaps.

Intervals: across cross-validation folds, a Student-t interval over the fold values (the
quantile from SciPy, the ``validation`` extra); on a single evaluation set, a percentile
bootstrap over rows (seeded, so reports are reproducible).

Fairness (binary classifiers), over the groups of a sensitive column:

* demographic parity difference: max - min over groups of P(prediction = positive);
* equalised odds difference: the larger of the max - min gaps in true-positive rate and
  in false-positive rate (Fairlearn's definitions, so numbers agree with it).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from modelyard.errors import InvalidParameter, MissingExtra

REGRESSION = ("rmse", "mae", "mape", "r2", "bias")
CLASSIFICATION = ("accuracy", "precision", "recall", "f1", "roc_auc", "log_loss")
GREATER_IS_BETTER = frozenset({"r2", "accuracy", "precision", "recall", "f1", "roc_auc"})
#: The metric a report leads with and worst slices are ranked by.
PRIMARY = {"regression": "rmse", "classification": "accuracy"}


@dataclass(frozen=True, slots=True)
class Predictions:
    """What a model said about some rows: labels/values, and for classifiers the
    probability of the positive class (binary) or of every class (multiclass)."""

    y_true: Any
    y_pred: Any
    scores: Any = None  # positive-class probability (binary) or an (n, k) matrix
    classes: tuple[Any, ...] = ()
    positive: Any = None

    def take(self, idx: Any) -> Predictions:
        scores = None if self.scores is None else self.scores[idx]
        return Predictions(self.y_true[idx], self.y_pred[idx], scores, self.classes, self.positive)


@dataclass(frozen=True, slots=True)
class MetricSummary:
    """A metric's value with its 95% interval; ``per_fold`` is empty without CV."""

    value: float
    ci_low: float | None = None
    ci_high: float | None = None
    std: float | None = None
    per_fold: tuple[float, ...] = ()


def metric_names(task: str, has_scores: bool, binary: bool) -> tuple[str, ...]:
    if task == "regression":
        return REGRESSION
    names = ["accuracy", "precision", "recall", "f1"]
    if has_scores and binary:
        names.append("roc_auc")
    if has_scores:
        names.append("log_loss")
    return tuple(names)


def compute(names: tuple[str, ...], p: Predictions) -> dict[str, float]:
    return {name: _METRICS[name](p) for name in names}


def direction(name: str) -> int:
    """+1 when larger is better, -1 when smaller is better (bias: closer to 0 is better,
    compared by absolute value)."""
    return 1 if name in GREATER_IS_BETTER else -1


def better(name: str, a: float, b: float) -> bool:
    """Whether value ``a`` is better than ``b`` for metric ``name``."""
    if name == "bias":
        return abs(a) < abs(b)
    return a > b if direction(name) > 0 else a < b


def _t_quantile(q: float, df: float) -> float:
    """Student's t quantile: SciPy's ``stdtrit``, the function ``scipy.stats.t.ppf``
    evaluates (scipy.special loads in a quarter of the time scipy.stats takes)."""
    try:
        from scipy import special
    except ImportError as exc:
        raise MissingExtra("scipy", "validation", "Confidence intervals of metrics") from exc
    return float(special.stdtrit(df, q))


def fold_summary(values: list[float]) -> MetricSummary:
    """Mean over folds with its 95% Student-t interval (``scipy.stats.t.interval``);
    folds whose value is NaN are left out."""
    import numpy as np

    arr = np.asarray(values, dtype=np.float64)
    mean = float(np.nanmean(arr))
    k = int(np.count_nonzero(~np.isnan(arr)))
    std = float(np.nanstd(arr, ddof=1)) if k > 1 else 0.0
    half = _t_quantile(0.975, k - 1) * std / math.sqrt(k) if k > 1 else 0.0
    return MetricSummary(mean, mean - half, mean + half, std, tuple(float(v) for v in arr))


def bootstrap(
    names: tuple[str, ...], p: Predictions, n_resamples: int = 200, seed: int = 0
) -> dict[str, MetricSummary]:
    """Point values with 95% percentile-bootstrap intervals over rows.

    The same intervals and standard errors as ``scipy.stats.bootstrap(method="percentile",
    paired=True, batch=1, rng=numpy.random.default_rng(seed))`` (the tests hold it to them),
    but a resample on which a metric is undefined (one class only, for ``roc_auc``) is left
    out of that metric's interval, where SciPy's would turn NaN; and no scipy.stats import.
    """
    import numpy as np

    point = compute(names, p)
    n = len(p.y_true)
    if n_resamples <= 0 or n < 2:
        return {k: MetricSummary(v) for k, v in point.items()}
    rng = np.random.default_rng(seed)
    draws: dict[str, list[float]] = {k: [] for k in names}
    for _ in range(n_resamples):
        sample = p.take(rng.integers(0, n, n))
        for name, value in compute(names, sample).items():
            draws[name].append(value)
    out = {}
    for name, value in point.items():
        values = np.asarray(draws[name], dtype=np.float64)
        values = values[~np.isnan(values)]
        if not len(values):
            out[name] = MetricSummary(value)
            continue
        low, high = np.percentile(values, [2.5, 97.5])
        out[name] = MetricSummary(value, float(low), float(high), float(values.std(ddof=1)))
    return out


# -- regression --------------------------------------------------------------------------


def _errors(p: Predictions) -> Any:
    import numpy as np

    return np.asarray(p.y_pred, dtype=np.float64) - np.asarray(p.y_true, dtype=np.float64)


def rmse(p: Predictions) -> float:
    import numpy as np

    return float(np.sqrt(np.mean(np.square(_errors(p))))) if len(p.y_true) else math.nan


def mae(p: Predictions) -> float:
    import numpy as np

    return float(np.mean(np.abs(_errors(p)))) if len(p.y_true) else math.nan


def mape(p: Predictions) -> float:
    """Mean absolute percentage error over rows whose true value is not zero."""
    import numpy as np

    y = np.asarray(p.y_true, dtype=np.float64)
    keep = y != 0
    if not keep.any():
        return math.nan
    return float(np.mean(np.abs(_errors(p)[keep] / y[keep])))


def r2(p: Predictions) -> float:
    import numpy as np

    y = np.asarray(p.y_true, dtype=np.float64)
    total = float(np.sum(np.square(y - y.mean()))) if len(y) else 0.0
    if total == 0:
        return math.nan
    return 1.0 - float(np.sum(np.square(_errors(p)))) / total


def bias(p: Predictions) -> float:
    import numpy as np

    return float(np.mean(_errors(p))) if len(p.y_true) else math.nan


# -- classification ----------------------------------------------------------------------


def accuracy(p: Predictions) -> float:
    import numpy as np

    return (
        float(np.mean(np.asarray(p.y_true) == np.asarray(p.y_pred))) if len(p.y_true) else math.nan
    )


def _per_class(p: Predictions) -> tuple[Any, Any, Any]:
    """True positives, predicted positives and actual positives per class (one-vs-rest),
    for the positive class only when binary."""
    import numpy as np

    y, yhat = np.asarray(p.y_true), np.asarray(p.y_pred)
    classes = [p.positive] if len(p.classes) <= 2 else list(p.classes)
    tp = np.array([np.sum((y == c) & (yhat == c)) for c in classes], dtype=np.float64)
    predicted = np.array([np.sum(yhat == c) for c in classes], dtype=np.float64)
    actual = np.array([np.sum(y == c) for c in classes], dtype=np.float64)
    return tp, predicted, actual


def _ratio(num: Any, den: Any) -> Any:
    import numpy as np

    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(den > 0, num / np.where(den > 0, den, 1), 0.0)


def precision(p: Predictions) -> float:
    tp, predicted, _ = _per_class(p)
    return float(_ratio(tp, predicted).mean())


def recall(p: Predictions) -> float:
    tp, _, actual = _per_class(p)
    return float(_ratio(tp, actual).mean())


def f1(p: Predictions) -> float:
    tp, predicted, actual = _per_class(p)
    return float(_ratio(2 * tp, predicted + actual).mean())


def roc_auc(p: Predictions) -> float:
    """Binary AUC as the Mann-Whitney statistic, with average ranks for ties."""
    import numpy as np

    y = np.asarray(p.y_true) == p.positive
    pos, neg = int(y.sum()), int((~y).sum())
    if pos == 0 or neg == 0 or p.scores is None:
        return math.nan
    scores = np.asarray(p.scores, dtype=np.float64)
    order = np.argsort(scores, kind="mergesort")
    ranked = scores[order]
    boundaries = np.flatnonzero(np.diff(ranked)) + 1
    starts = np.concatenate(([0], boundaries))
    ends = np.concatenate((boundaries, [len(ranked)]))
    average = (starts + ends + 1) / 2.0  # 1-based average rank of each tie group
    ranks = np.empty(len(scores))
    ranks[order] = np.repeat(average, ends - starts)
    return float((ranks[y].sum() - pos * (pos + 1) / 2) / (pos * neg))


def log_loss(p: Predictions) -> float:
    import numpy as np

    if p.scores is None or not len(p.y_true):
        return math.nan
    eps = 1e-15
    y = np.asarray(p.y_true)
    scores = np.asarray(p.scores, dtype=np.float64)
    if scores.ndim == 1:
        prob = np.where(y == p.positive, scores, 1.0 - scores)
    else:
        index = {c: i for i, c in enumerate(p.classes)}
        cols = np.array([index.get(v, -1) for v in y])
        prob = np.where(cols >= 0, scores[np.arange(len(y)), np.maximum(cols, 0)], 0.0)
    return float(-np.mean(np.log(np.clip(prob, eps, 1.0))))


_METRICS: dict[str, Callable[[Predictions], float]] = {
    "rmse": rmse,
    "mae": mae,
    "mape": mape,
    "r2": r2,
    "bias": bias,
    "accuracy": accuracy,
    "precision": precision,
    "recall": recall,
    "f1": f1,
    "roc_auc": roc_auc,
    "log_loss": log_loss,
}
KNOWN = tuple(_METRICS)


def check_metric(name: object, available: tuple[str, ...], where: str = "metric") -> str:
    if name not in available:
        raise InvalidParameter(
            f"{where} {name!r} is not computed here; available: {', '.join(available)}",
            field=where,
        )
    return str(name)


# -- fairness ----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class FairnessResult:
    """Gaps across the groups of one sensitive column (0 = perfectly even)."""

    column: str
    demographic_parity_difference: float
    equalized_odds_difference: float
    selection_rate: dict[str, float]
    true_positive_rate: dict[str, float]
    false_positive_rate: dict[str, float]
    rows: dict[str, int]


def fairness(column: str, groups: Any, p: Predictions) -> FairnessResult:
    import numpy as np
    import pandas as pd

    y = np.asarray(p.y_true) == p.positive
    yhat = np.asarray(p.y_pred) == p.positive
    codes, labels = pd.factorize(pd.Series(groups), use_na_sentinel=True)
    selection, tpr, fpr, rows = {}, {}, {}, {}
    for code, label in enumerate(labels):
        member = codes == code
        key = str(label)
        rows[key] = int(member.sum())
        selection[key] = float(yhat[member].mean())
        pos, neg = member & y, member & ~y
        tpr[key] = float(yhat[pos].mean()) if pos.any() else math.nan
        fpr[key] = float(yhat[neg].mean()) if neg.any() else math.nan
    return FairnessResult(
        column,
        _spread(selection.values()),
        max(_spread(tpr.values()), _spread(fpr.values())),
        selection,
        tpr,
        fpr,
        rows,
    )


def _spread(values: Any) -> float:
    clean = [v for v in values if not math.isnan(v)]
    return (max(clean) - min(clean)) if len(clean) > 1 else 0.0
