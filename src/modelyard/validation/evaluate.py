"""``evaluate``: how good a model is — across folds or on a held-out set, per slice, for
fairness, and against behavioural tests — logged to a run.

With ``cv=None`` the model is already fitted (an estimator, a loaded model, or a model URI
such as ``models:/demand/4``) and is scored on ``data``; with ``cv`` it is an unfitted
estimator (or a factory) that is cloned and fitted per fold, and the metrics of
out-of-fold predictions feed slices and fairness. Then it is refitted on all rows for the
behavioural tests (``result.model``).

>>> import numpy as np
>>> import pandas as pd
>>> from sklearn.linear_model import Ridge
>>> rng = np.random.default_rng(0)
>>> frame = pd.DataFrame({"day": pd.date_range("2024-01-01", periods=120),
...                       "price": rng.uniform(1, 5, 120), "region": ["north", "south"] * 60})
>>> frame["units"] = 20 - 3 * frame["price"] + rng.normal(0, 0.5, 120)
>>> result = evaluate(Ridge(), frame, target="units", features=["price"], cv={"kind": "time",
...                   "column": "day", "n_splits": 4, "gap": "7d"}, slices=["region"])
>>> round(result.metrics["rmse"].value, 1), result.worst_slices["region"].value
(0.5, 'south')
"""

from __future__ import annotations

import copy
import json
import math
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

from modelyard.errors import InvalidParameter
from modelyard.validation import metrics as m
from modelyard.validation.behaviour import BehaviouralTest, BehaviourResult, run_tests
from modelyard.validation.splits import TimeSeriesSplit, make_splitter

TASKS = ("regression", "classification")


@dataclass(frozen=True, slots=True)
class FoldResult:
    index: int
    train_rows: int
    test_rows: int
    metrics: dict[str, float]
    train_period: tuple[str, str] | None = None
    test_period: tuple[str, str] | None = None


@dataclass(frozen=True, slots=True)
class SliceResult:
    column: str
    value: Any
    rows: int
    metrics: dict[str, float]


@dataclass
class EvaluationResult:
    task: str
    target: str
    primary_metric: str
    rows: int
    metrics: dict[str, m.MetricSummary]
    folds: list[FoldResult] = field(default_factory=list)
    slices: dict[str, list[SliceResult]] = field(default_factory=dict)
    worst_slices: dict[str, SliceResult] = field(default_factory=dict)
    fairness: dict[str, m.FairnessResult] = field(default_factory=dict)
    behaviour: list[BehaviourResult] = field(default_factory=list)
    duration_s: float = 0.0
    predictions: Any = None  # pandas Series aligned with the data (NaN: never predicted)
    model: Any = None  # the fitted model (refitted on all rows after CV)

    def value(self, metric: str) -> float:
        m.check_metric(metric, tuple(self.metrics), "metric")
        return self.metrics[metric].value

    @property
    def behaviour_passed(self) -> bool:
        return all(b.passed for b in self.behaviour)

    def to_dict(self) -> dict[str, Any]:
        return _jsonable(
            {
                "task": self.task,
                "target": self.target,
                "primary_metric": self.primary_metric,
                "rows": self.rows,
                "metrics": {k: asdict(v) for k, v in self.metrics.items()},
                "folds": [asdict(f) for f in self.folds],
                "slices": {k: [asdict(s) for s in v] for k, v in self.slices.items()},
                "worst_slices": {k: asdict(v) for k, v in self.worst_slices.items()},
                "fairness": {k: asdict(v) for k, v in self.fairness.items()},
                "behaviour": [asdict(b) for b in self.behaviour],
                "duration_s": self.duration_s,
            }
        )


def evaluate(
    model: Any,
    data: Any,
    target: str,
    task: str = "regression",
    cv: Any = None,
    slices: Sequence[str] = (),
    *,
    sensitive: Sequence[str] = (),
    behaviour: Sequence[BehaviouralTest] = (),
    features: Sequence[str] | None = None,
    positive: Any = None,
    n_bootstrap: int = 200,
    min_slice_rows: int = 1,
    seed: int = 0,
    refit: bool = True,
    run_id: str | None = None,
    log: bool = True,
    client: Any = None,
    trusted: bool = False,
) -> EvaluationResult:
    """Evaluate ``model`` on ``data`` (see the module docstring). Results are logged to
    ``run_id`` — or to the active run of the fluent API — unless ``log=False``.

    ``slices`` are columns whose every value gets its own metrics (and the worst slice is
    named); ``sensitive`` columns get fairness gaps (binary classifiers); ``features``
    defaults to every column but the target and the time column of a time split.
    ``refit=False`` skips refitting on all rows after CV (``result.model`` is then None
    unless behavioural tests need it).
    """
    started = time.perf_counter()
    if task not in TASKS:
        raise InvalidParameter(
            f"task must be 'regression' or 'classification', got {task!r}", field="task"
        )
    frame = _frame(data)
    _require_columns(frame, [target], "target")
    _require_columns(frame, list(slices), "slice")
    _require_columns(frame, list(sensitive), "sensitive")
    splitter = make_splitter(cv, task)
    time_column = splitter.column if isinstance(splitter, TimeSeriesSplit) else None
    if time_column is not None:
        _require_columns(frame, [time_column], "time")
    X = _features(frame, target, features, time_column)
    y = frame[target].to_numpy()
    if frame[target].isna().any():
        raise InvalidParameter(
            f"target column {target!r} has {int(frame[target].isna().sum())} missing values; "
            "drop or fill them before evaluating",
            field="target",
        )
    classes, positive = _classes(y, task, positive)
    if sensitive and (task != "classification" or len(classes) > 2):
        raise InvalidParameter(
            "fairness gaps are defined for binary classifiers; drop sensitive= or use a "
            "binary target",
            field="sensitive",
        )
    import numpy as np
    import pandas as pd

    folds: list[FoldResult] = []
    if splitter is None:  # a fitted model, scored on every row
        fitted = _resolve(model, trusted)
        preds = predict_all(fitted, X, task, classes, positive)
        positions = np.arange(len(frame))
        names = m.metric_names(task, preds.scores is not None, len(classes) <= 2)
        summary = m.bootstrap(names, _with_truth(preds, y), n_bootstrap, seed)
    else:  # out-of-fold predictions: only rows some fold validated on
        folds, preds, positions = _cross_validate(
            model, splitter, frame, X, y, task, classes, positive
        )
        names = m.metric_names(task, preds.scores is not None, len(classes) <= 2)
        summary = {name: m.fold_summary([f.metrics[name] for f in folds]) for name in names}
        fitted = _fit(_fresh(model), X, y) if (refit or behaviour) else None
    primary = m.PRIMARY[task] if m.PRIMARY[task] in summary else next(iter(summary))
    evaluated = _with_truth(preds, y[positions])
    result = EvaluationResult(task, target, primary, len(positions), summary, folds)
    judged = frame.iloc[positions]
    for column in slices:
        found = _slice_metrics(column, judged[column].to_numpy(), evaluated, names, min_slice_rows)
        result.slices[column] = found
        if found:
            result.worst_slices[column] = _worst(found, primary)
    for column in sensitive:
        result.fairness[column] = m.fairness(column, judged[column].to_numpy(), evaluated)
    if behaviour:
        result.behaviour = run_tests(list(behaviour), fitted.predict, X, task, seed=seed)
    result.model = fitted
    series = pd.Series(math.nan, index=frame.index, dtype=object)
    series.iloc[positions] = list(preds.y_pred)
    result.predictions = series
    result.duration_s = time.perf_counter() - started
    if log:
        log_evaluation(result, run_id=run_id, client=client)
    return result


def _with_truth(p: m.Predictions, y: Any) -> m.Predictions:
    return m.Predictions(y, p.y_pred, p.scores, p.classes, p.positive)


def _frame(data: Any) -> Any:
    if hasattr(data, "iloc") and hasattr(data, "columns"):
        return data
    from modelyard.data.contracts.checks import as_frame

    return as_frame(data)[0]


def _require_columns(frame: Any, columns: list[str], role: str) -> None:
    for column in columns:
        if column not in frame.columns:
            raise InvalidParameter(
                f"{role} column {column!r} is not in the data (columns: "
                f"{', '.join(map(str, frame.columns))})",
                field=role,
            )


def _features(
    frame: Any, target: str, features: Sequence[str] | None, time_column: str | None
) -> Any:
    if features is not None:
        _require_columns(frame, list(features), "feature")
        if target in features:
            raise InvalidParameter(
                f"the target {target!r} is also listed as a feature", field="features"
            )
        return frame[list(features)]
    drop = [target] + ([time_column] if time_column else [])
    return frame.drop(columns=drop)


def _classes(y: Any, task: str, positive: Any) -> tuple[tuple[Any, ...], Any]:
    import numpy as np

    if task == "regression":
        if np.asarray(y).dtype.kind not in "fiub":
            raise InvalidParameter(
                f"a regression target must be numeric, got {np.asarray(y).dtype}", field="target"
            )
        return (), None
    classes = tuple(np.unique(y).tolist())
    if len(classes) < 2:
        raise InvalidParameter(
            f"a classification target needs at least two classes, found {list(classes)}",
            field="target",
        )
    if positive is None:
        positive = classes[-1]
    elif positive not in classes:
        raise InvalidParameter(
            f"positive class {positive!r} is not among the target's classes {list(classes)}",
            field="positive",
        )
    return classes, positive


def _resolve(model: Any, trusted: bool) -> Any:
    """A model object, loading ``models:/…``/``runs:/…`` URIs through the registry."""
    if isinstance(model, str):
        from modelyard.registry.log_model import load_model

        return load_model(model, trusted=trusted)
    if not hasattr(model, "predict"):
        raise InvalidParameter(
            f"model {type(model).__name__} has no predict(); pass a fitted model, a model "
            "URI, or (with cv=) an estimator with fit() and predict()",
            field="model",
        )
    return model


def _fresh(model: Any) -> Any:
    """An unfitted copy: scikit-learn's clone when possible, a factory's product, or a
    deep copy."""
    if callable(model) and not hasattr(model, "fit"):
        return model()
    try:
        from sklearn.base import clone

        return clone(model)
    except Exception:
        return copy.deepcopy(model)


def _fit(model: Any, X: Any, y: Any) -> Any:
    if not hasattr(model, "fit"):
        raise InvalidParameter(
            f"cross-validation refits the model per fold, but {type(model).__name__} has no "
            "fit(); pass an estimator (or a function returning one), or cv=None for a fitted "
            "model",
            field="model",
        )
    fitted = model.fit(X, y)
    return model if fitted is None else fitted


def predict_all(
    model: Any, X: Any, task: str, classes: tuple[Any, ...], positive: Any
) -> m.Predictions:
    """Predictions for every row of ``X``; classifiers also give probabilities when the
    model (or a loaded model's native object) has ``predict_proba``."""
    import numpy as np

    y_pred = np.asarray(model.predict(X))
    if y_pred.ndim > 1:
        y_pred = y_pred.reshape(len(y_pred), -1)[:, 0]
    scores = None
    if task == "classification":
        proba_owner = model if hasattr(model, "predict_proba") else getattr(model, "native", None)
        if proba_owner is not None and hasattr(proba_owner, "predict_proba"):
            try:
                proba = np.asarray(proba_owner.predict_proba(X))
                model_classes = list(getattr(proba_owner, "classes_", classes))
                if len(classes) <= 2 and positive in model_classes:
                    scores = proba[:, model_classes.index(positive)]
                elif len(model_classes) == proba.shape[1]:
                    order = [model_classes.index(c) for c in classes if c in model_classes]
                    if len(order) == len(classes):
                        scores = proba[:, order]
            except Exception:  # a model whose predict_proba needs other input
                scores = None
    return m.Predictions(None, y_pred, scores, classes, positive)


def _cross_validate(
    model: Any,
    splitter: Any,
    frame: Any,
    X: Any,
    y: Any,
    task: str,
    classes: tuple[Any, ...],
    positive: Any,
) -> tuple[list[FoldResult], m.Predictions, Any]:
    import numpy as np

    folds_spec = splitter.split(frame, y)
    n = len(frame)
    oof_pred = np.empty(n, dtype=object if task == "classification" else np.float64)
    oof_scores = None
    covered = np.zeros(n, dtype=bool)
    results = []
    for fold in folds_spec:
        fitted = _fit(_fresh(model), X.iloc[fold.train], y[fold.train])
        preds = predict_all(fitted, X.iloc[fold.test], task, classes, positive)
        truth = _with_truth(preds, y[fold.test])
        names = m.metric_names(task, preds.scores is not None, len(classes) <= 2)
        results.append(
            FoldResult(
                fold.index,
                len(fold.train),
                len(fold.test),
                m.compute(names, truth),
                fold.train_period,
                fold.test_period,
            )
        )
        oof_pred[fold.test] = preds.y_pred
        if preds.scores is not None:
            if oof_scores is None:
                shape = (n,) if preds.scores.ndim == 1 else (n, preds.scores.shape[1])
                oof_scores = np.full(shape, np.nan)
            oof_scores[fold.test] = preds.scores
        covered[fold.test] = True
    idx = np.flatnonzero(covered)
    y_pred = oof_pred[idx]
    if task == "classification":
        y_pred = np.asarray(y_pred.tolist())
    scores = None if oof_scores is None else oof_scores[idx]
    return results, m.Predictions(None, y_pred, scores, classes, positive), idx


def _slice_metrics(
    column: str, values: Any, p: m.Predictions, names: tuple[str, ...], min_rows: int
) -> list[SliceResult]:
    import pandas as pd

    codes, labels = pd.factorize(pd.Series(values), use_na_sentinel=True)
    out = []
    for code, label in enumerate(labels):
        idx = (codes == code).nonzero()[0]
        if len(idx) < min_rows:
            continue
        out.append(SliceResult(column, _plain(label), len(idx), m.compute(names, p.take(idx))))
    return sorted(out, key=lambda s: str(s.value))


def _worst(slices: list[SliceResult], metric: str) -> SliceResult:
    valid = [s for s in slices if not math.isnan(s.metrics.get(metric, math.nan))]
    if not valid:
        return slices[0]
    worst = valid[0]
    for s in valid[1:]:
        if m.better(metric, worst.metrics[metric], s.metrics[metric]):
            worst = s
    return worst


def log_evaluation(
    result: EvaluationResult, *, run_id: str | None = None, client: Any = None
) -> str | None:
    """Log aggregate, per-fold and per-slice metrics and ``evaluation.json`` to a run (the
    active fluent run when ``run_id`` is None; nothing when there is none). ``client``
    stays the caller's; without one, a client opened from the settings is closed here."""
    from modelyard.tracking import fluent

    if run_id is None:
        active = fluent.active_run()
        if active is None:
            return None
        run_id = active.info.run_id
        client = client or fluent.get_client()
    if client is not None:
        _write_evaluation(client, run_id, result)
        return run_id
    from modelyard.tracking.client import TrackingClient

    with TrackingClient.from_settings() as opened:
        _write_evaluation(opened, run_id, result)
    return run_id


def _write_evaluation(client: Any, run_id: str, result: EvaluationResult) -> None:
    from modelyard.tracking.entities import Metric

    now = int(time.time() * 1000)
    points: list[Metric] = []
    for name, summary in result.metrics.items():
        for suffix, value in (
            ("", summary.value),
            ("_ci_low", summary.ci_low),
            ("_ci_high", summary.ci_high),
        ):
            if value is not None and not math.isnan(value):
                points.append(Metric(f"eval.{name}{suffix}", float(value), now, 0))
        for step, value in enumerate(summary.per_fold):
            if not math.isnan(value):
                points.append(Metric(f"eval.fold.{name}", float(value), now, step))
    for column, slices in result.slices.items():
        for s in slices:
            value = s.metrics.get(result.primary_metric)
            if value is not None and not math.isnan(value):
                points.append(
                    Metric(
                        f"eval.slice.{_key(column)}.{_key(s.value)}.{result.primary_metric}",
                        value,
                        now,
                        0,
                    )
                )
    for column, gaps in result.fairness.items():
        points.append(
            Metric(f"eval.fairness.{_key(column)}.dpd", gaps.demographic_parity_difference, now, 0)
        )
        points.append(
            Metric(f"eval.fairness.{_key(column)}.eod", gaps.equalized_odds_difference, now, 0)
        )
    if result.behaviour:
        points.append(
            Metric(
                "eval.behaviour.failed", float(sum(not b.passed for b in result.behaviour)), now, 0
            )
        )
    for start in range(0, len(points), 1000):
        client.log_batch(run_id, metrics=points[start : start + 1000])
    client.log_text(run_id, json.dumps(result.to_dict(), indent=2), "evaluation.json")


def _key(value: Any) -> str:
    """A metric-key-safe rendering of a column or slice value."""
    import re

    return re.sub(r"[^\w.\- ]", "_", str(value))[:60] or "_"


def _plain(value: Any) -> Any:
    return value.item() if hasattr(value, "item") else value


def _jsonable(value: Any) -> Any:
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if hasattr(value, "item") and not isinstance(value, (str, bytes)):
        return _jsonable(value.item())
    if value is None or isinstance(value, (str, int, float, bool)):
        return value
    return str(value)
