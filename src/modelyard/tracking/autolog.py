"""Automatic logging for scikit-learn: call ``modelyard.autolog()`` once, then fit as usual.

Every scikit-learn class that defines its own ``fit`` gets a thin wrapper. When an
estimator is fitted, the wrapper logs its parameters, training metrics, tags and the
fitted model (``model/model.skops``) into the active run, or into a run it starts and
ends around the fit. Only the outermost fit logs: a Pipeline's steps and a search's
candidate fits run inside it and are not logged separately. Logging never breaks
training: when a logging step fails, the fit still returns and an ``AutologWarning`` says
what was lost. ``autolog(disable=True)`` puts the original methods back.
"""

from __future__ import annotations

import functools
import importlib
import inspect
import json
import tempfile
import threading
import types
import warnings
from collections.abc import Callable, Mapping
from contextvars import ContextVar
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from modelyard.errors import InvalidParameter, MissingExtra
from modelyard.ids import now_ms
from modelyard.tracking import checks, fluent
from modelyard.tracking.client import TrackingClient
from modelyard.tracking.entities import Metric, Param, RunStatus, RunTag

#: Where the model goes in the run's artifacts, and the files it holds.
MODEL_DIR = "model"
MODEL_FILE = "model.skops"
MODEL_META_FILE = "MLmodel.json"
REQUIREMENTS_FILE = "requirements.txt"
TAG_AUTOLOGGING = "modelyard.autologging"

#: Looked up besides ``sklearn.utils.all_estimators()``: the meta-estimators most used, in
#: case it stops listing them, and the experimental ones it leaves out.
_EXTRA_CLASSES = (
    ("sklearn.pipeline", "Pipeline"),
    ("sklearn.pipeline", "FeatureUnion"),
    ("sklearn.compose", "ColumnTransformer"),
    ("sklearn.model_selection", "GridSearchCV"),
    ("sklearn.model_selection", "RandomizedSearchCV"),
    ("sklearn.model_selection._search_successive_halving", "HalvingGridSearchCV"),
    ("sklearn.model_selection._search_successive_halving", "HalvingRandomSearchCV"),
    ("sklearn.impute._iterative", "IterativeImputer"),
)
_MARK = "__modelyard_autolog__"


class AutologWarning(UserWarning):
    """Autologging lost something for one fit; the fit itself went through."""


@dataclass(frozen=True)
class _Config:
    log_models: bool
    log_training_metrics: bool
    max_param_length: int


_config: _Config | None = None  # None: autologging is off
_originals: dict[type, Callable[..., Any]] = {}
_lock = threading.Lock()
# True inside an autologged fit in this thread/task: nested fits run without logging.
_in_fit: ContextVar[bool] = ContextVar("modelyard_autolog_in_fit", default=False)


def autolog(
    disable: bool = False,
    log_models: bool = True,
    log_training_metrics: bool = True,
    max_param_length: int = checks.MAX_PARAM_VALUE_LENGTH,
) -> None:
    """Log every scikit-learn ``fit`` to modelyard (or stop, with ``disable=True``).

    Logged per outermost fit: ``get_params(deep=True)`` as params (estimators as their class
    name, values cut to ``max_param_length`` characters with a trailing "…"); the
    ``training_*`` metrics on the data given to fit, weighted by ``sample_weight``; tags
    ``estimator_name`` and ``estimator_class``; for hyper-parameter searches the winning
    params as ``best_<name>`` and the ``best_cv_score`` metric; and, with ``log_models``,
    the model under ``model/`` (skops file, ``MLmodel.json``, ``requirements.txt``).

    Calling it again changes the options; patching happens once.

    >>> import modelyard
    >>> from sklearn.linear_model import LinearRegression  # doctest: +SKIP
    >>> modelyard.autolog()  # doctest: +SKIP
    >>> model = LinearRegression().fit([[0], [1]], [0, 1])  # doctest: +SKIP
    >>> modelyard.last_active_run().data.metrics["training_r2_score"]  # doctest: +SKIP
    1.0
    """
    global _config
    with _lock:
        if disable:
            _config = None
            _restore()
            return
        limit = checks.MAX_PARAM_VALUE_LENGTH
        if type(max_param_length) is not int or not 1 <= max_param_length <= limit:
            raise InvalidParameter(
                f"max_param_length must be an integer from 1 to {limit}, got {max_param_length!r}",
                field="max_param_length",
            )
        try:
            importlib.import_module("sklearn")
            if log_models:
                importlib.import_module("skops.io")
        except ImportError as exc:
            package = "skops" if (exc.name or "").startswith("skops") else "scikit-learn"
            raise MissingExtra(package, "sklearn", "modelyard.autolog()") from exc
        _config = _Config(log_models, log_training_metrics, max_param_length)
        for cls in _fitting_classes():
            _patch(cls)


# -- patching --------------------------------------------------------------------------


def _fitting_classes() -> list[type]:
    """Every scikit-learn class (estimators and their private bases) that defines ``fit``."""
    from sklearn.utils import all_estimators

    with warnings.catch_warnings():  # importing every sklearn module may warn
        warnings.simplefilter("ignore")
        candidates = [cls for _, cls in all_estimators()]
        for module, name in _EXTRA_CLASSES:
            try:
                candidates.append(getattr(importlib.import_module(module), name))
            except (ImportError, AttributeError):
                continue
    found: dict[type, None] = {}
    for cls in candidates:
        for klass in cls.__mro__:
            if klass.__module__.startswith("sklearn.") and inspect.isfunction(
                klass.__dict__.get("fit")
            ):
                found[klass] = None
    return list(found)


def _patch(cls: type) -> None:
    current = cls.__dict__["fit"]
    if getattr(current, _MARK, False):
        return
    cls.fit = _wrap(current)  # type: ignore[attr-defined]
    _originals[cls] = current


def _restore() -> None:
    for cls, original in _originals.items():
        # If someone patched it after us, leave theirs: our wrapper inside is now inert.
        if getattr(cls.__dict__.get("fit"), _MARK, False):
            cls.fit = original  # type: ignore[attr-defined]
    _originals.clear()


def _wrap(original: Callable[..., Any]) -> Callable[..., Any]:
    signature = inspect.signature(original)  # follows __wrapped__ to the real signature

    @functools.wraps(original)
    def fit(self: Any, *args: Any, **kwargs: Any) -> Any:
        config = _config
        if config is None or _in_fit.get() or _in_joblib_worker():
            return original(self, *args, **kwargs)
        token = _in_fit.set(True)
        try:
            data = _training_data(signature, self, args, kwargs)
            return _fit_and_log(config, lambda: original(self, *args, **kwargs), self, data)
        finally:
            _in_fit.reset(token)

    setattr(fit, _MARK, True)
    return fit


def _in_joblib_worker() -> bool:
    """Whether this is a joblib worker thread with no run of its own.

    Thread workers (a search under ``parallel_backend("threading")``) do not inherit the
    context of the fit that dispatched them, so the ``_in_fit`` guard cannot see it; like
    process workers, where autolog is not active, they must not log on their own.
    """
    try:
        from joblib.parallel import get_active_backend

        nested = get_active_backend()[0].nesting_level > 0
    except Exception:
        return False
    return nested and fluent.active_run() is None


# -- one fit ---------------------------------------------------------------------------


def _fit_and_log(
    config: _Config, run_fit: Callable[[], Any], estimator: Any, data: tuple[Any, Any, Any]
) -> Any:
    active = fluent.active_run()
    started = active is None
    if active is None:
        try:
            active = fluent.start_run()
        except Exception as exc:
            _warn(f"could not start a run, so this fit is not logged: {exc}")
            return run_fit()
    try:
        fitted = run_fit()
    except BaseException as exc:
        if started:
            failed = RunStatus.KILLED if isinstance(exc, KeyboardInterrupt) else RunStatus.FAILED
            _safely("end the run", lambda: fluent.end_run(failed))
        raise
    try:
        run_id = active.info.run_id
        _safely(
            "log this fit", lambda: _log_fit(config, fluent.get_client(), run_id, estimator, data)
        )
    finally:
        if started:
            _safely("end the run", lambda: fluent.end_run(RunStatus.FINISHED))
    return fitted


def _log_fit(
    config: _Config,
    client: TrackingClient,
    run_id: str,
    estimator: Any,
    data: tuple[Any, Any, Any],
) -> None:
    cls = type(estimator)
    tags = {
        "estimator_name": cls.__name__,
        "estimator_class": _qualname(cls),
        TAG_AUTOLOGGING: "sklearn",
    }
    params: dict[str, str] = {}
    metrics: dict[str, float] = {}
    limit = config.max_param_length
    _safely("read the params", lambda: params.update(_params(estimator, limit)))
    best = getattr(estimator, "best_params_", None)
    if isinstance(best, Mapping):
        params.update({f"best_{k}": _param_text(v, limit) for k, v in best.items()})
        if isinstance(getattr(estimator, "best_score_", None), (int, float)):
            metrics["best_cv_score"] = float(estimator.best_score_)
    X, y, weight = data
    if config.log_training_metrics and X is not None and y is not None:
        _safely(
            "compute training metrics",
            lambda: metrics.update(_training_metrics(estimator, X, y, weight)),
        )
    bad = [key for key in params if not _valid_param_key(key)]
    if bad:
        _warn(f"skipped params whose names cannot be logged: {', '.join(bad)}")
    ts = now_ms()
    logged_metrics = [Metric(k, v, ts, 0) for k, v in metrics.items()]
    logged_params = [Param(k, v) for k, v in params.items() if k not in bad]
    logged_tags = [RunTag(k, v) for k, v in tags.items()]
    _safely(
        "log params, metrics and tags",
        lambda: client.log_batch(
            run_id, metrics=logged_metrics, params=logged_params, tags=logged_tags
        ),
    )
    if config.log_models:
        _safely("log the model", lambda: _log_model(client, run_id, estimator))


def _valid_param_key(key: str) -> bool:
    try:
        checks.check_key(key, "param")
    except InvalidParameter:
        return False
    return True


def _training_data(
    signature: inspect.Signature, estimator: Any, args: tuple[Any, ...], kwargs: dict[str, Any]
) -> tuple[Any, Any, Any]:
    """(X, y, sample_weight) as given to fit: its first two positional parameters."""
    try:
        bound = signature.bind(estimator, *args, **kwargs)
    except TypeError:
        return None, None, None
    positional = (inspect.Parameter.POSITIONAL_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD)
    names = [p.name for p in signature.parameters.values() if p.kind in positional][1:]
    values = [bound.arguments.get(name) for name in names[:2]] + [None, None]
    weight = bound.arguments.get("sample_weight", kwargs.get("sample_weight"))
    return values[0], values[1], weight


# -- what is logged ----------------------------------------------------------------------


class _Bare(str):
    """A string that prints without quotes, so ``[('clf', SVC)]`` reads naturally."""

    __slots__ = ()

    def __repr__(self) -> str:
        return str(self)


def _plain(value: Any) -> Any:
    """``value`` with estimators (and functions) replaced by their names, recursively."""
    if hasattr(value, "get_params") and not isinstance(value, type):
        return _Bare(type(value).__name__)
    if isinstance(value, (types.FunctionType, types.BuiltinFunctionType)):
        return _Bare(_qualname(value))
    if type(value) in (list, tuple):  # not subclasses such as named tuples
        return type(value)(_plain(v) for v in value)
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    return value


def _qualname(obj: Any) -> str:
    module = getattr(obj, "__module__", None)
    return f"{module}.{obj.__qualname__}" if module else obj.__qualname__


def _param_text(value: Any, limit: int) -> str:
    text = str(_plain(value))
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _params(estimator: Any, limit: int) -> dict[str, str]:
    return {k: _param_text(v, limit) for k, v in estimator.get_params(deep=True).items()}


def _training_metrics(estimator: Any, X: Any, y: Any, weight: Any) -> dict[str, float]:
    """The ``training_*`` metrics; one that cannot be computed (e.g. ROC AUC on a single
    class) is left out, the others are still logged."""
    from sklearn import metrics as m
    from sklearn.base import is_classifier, is_regressor

    if not hasattr(estimator, "predict"):  # e.g. a search with refit=False
        return {}
    sw = {"sample_weight": weight}
    scores: dict[str, Callable[[], float]] = {}
    with warnings.catch_warnings():  # e.g. UndefinedMetricWarning: not the user's concern
        warnings.simplefilter("ignore")
        if is_regressor(estimator):
            pred = estimator.predict(X)
            for fn in (m.mean_squared_error, m.root_mean_squared_error, m.mean_absolute_error):
                scores[fn.__name__] = functools.partial(fn, y, pred, **sw)
            scores["r2_score"] = functools.partial(m.r2_score, y, pred, **sw)
        elif is_classifier(estimator):
            pred = estimator.predict(X)
            scores["accuracy_score"] = functools.partial(m.accuracy_score, y, pred, **sw)
            for fn in (m.precision_score, m.recall_score, m.f1_score):
                kw = {"average": "weighted", "zero_division": 0, **sw}
                scores[fn.__name__] = functools.partial(fn, y, pred, **kw)
            if hasattr(estimator, "predict_proba"):
                proba, labels = estimator.predict_proba(X), estimator.classes_
                scores["log_loss"] = functools.partial(m.log_loss, y, proba, labels=labels, **sw)
                scores["roc_auc"] = functools.partial(_roc_auc, y, proba, labels, weight)
        out: dict[str, float] = {}
        for name, score in scores.items():
            try:
                out[f"training_{name}"] = float(score())
            except Exception:
                continue
    return out


def _roc_auc(y: Any, proba: Any, labels: Any, weight: Any) -> float:
    from sklearn.metrics import roc_auc_score

    if len(labels) == 2:  # classes_ is sorted, so column 1 is the positive class
        return float(roc_auc_score(y, proba[:, 1], sample_weight=weight))
    kw = {"multi_class": "ovr", "average": "weighted", "labels": labels, "sample_weight": weight}
    return float(roc_auc_score(y, proba, **kw))


def _log_model(client: TrackingClient, run_id: str, estimator: Any) -> None:
    """Write ``model/`` (skops file, metadata, pinned requirements) in one artifact call.

    ``untrusted_types`` in ``MLmodel.json`` records, for information, the types of this
    model beyond skops' defaults (the name MLflow users know). It grants nothing: modelyard's
    loader accepts a type only from its reviewed list of exact names or from the caller
    (``registry.formats.sklearn_skops``), since whoever uploads a model writes this file too.
    """
    import numpy
    import sklearn
    import skops
    import skops.io

    cls = type(estimator)
    with tempfile.TemporaryDirectory(prefix="modelyard-autolog-") as tmp:
        folder = Path(tmp) / MODEL_DIR
        folder.mkdir()
        model_path = folder / MODEL_FILE
        skops.io.dump(estimator, model_path)
        meta = {
            "artifact_path": MODEL_DIR,
            "flavor": "sklearn",
            "run_id": run_id,
            "utc_time_created": datetime.now(UTC).isoformat(),
            "model_file": MODEL_FILE,
            "serialization_format": "skops",
            "estimator_class": _qualname(cls),
            "sklearn_version": sklearn.__version__,
            "skops_version": skops.__version__,
            "untrusted_types": sorted(skops.io.get_untrusted_types(file=model_path)),
        }
        (folder / MODEL_META_FILE).write_text(json.dumps(meta, indent=2), encoding="utf-8")
        requirements = (
            f"scikit-learn=={sklearn.__version__}\n"
            f"skops=={skops.__version__}\n"
            f"numpy=={numpy.__version__}\n"
        )
        (folder / REQUIREMENTS_FILE).write_text(requirements, encoding="utf-8")
        client.log_artifacts(run_id, folder, MODEL_DIR)


def _safely(what: str, action: Callable[[], object]) -> None:
    """Run one logging step; a failure becomes a warning, never an error in ``fit``."""
    try:
        action()
    except Exception as exc:
        _warn(f"could not {what}: {type(exc).__name__}: {exc}")


def _warn(message: str) -> None:
    warnings.warn(f"modelyard autolog {message}", AutologWarning, stacklevel=4)
