"""``modelyard.autolog()`` for scikit-learn: what one fit logs, where, and what it never breaks."""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

sklearn = pytest.importorskip("sklearn")
skops_io = pytest.importorskip("skops.io")

from joblib import parallel_backend  # noqa: E402
from sklearn import metrics  # noqa: E402
from sklearn.cluster import Birch  # noqa: E402
from sklearn.datasets import load_diabetes, make_classification  # noqa: E402
from sklearn.ensemble import RandomForestRegressor  # noqa: E402
from sklearn.linear_model import LinearRegression, LogisticRegression, Ridge  # noqa: E402
from sklearn.model_selection import GridSearchCV  # noqa: E402
from sklearn.model_selection._search import BaseSearchCV  # noqa: E402
from sklearn.pipeline import Pipeline  # noqa: E402
from sklearn.preprocessing import StandardScaler  # noqa: E402
from skops.io.exceptions import UntrustedTypesFoundException  # noqa: E402

from modelyard.errors import InvalidParameter, MissingExtra  # noqa: E402
from modelyard.tracking.autolog import AutologWarning, autolog  # noqa: E402
from modelyard.tracking.entities import RunStatus  # noqa: E402

#: The methods as scikit-learn defines them, captured before any test patches them.
ORIGINAL_FITS = {
    cls: cls.__dict__["fit"] for cls in (LinearRegression, Ridge, Pipeline, BaseSearchCV)
}


@pytest.fixture
def autologged(fluent) -> Iterator[object]:
    """The fluent API on a fresh store with autologging on; always switched off after."""
    autolog()
    try:
        yield fluent
    finally:
        autolog(disable=True)


def regression_data() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    X, y = load_diabetes(return_X_y=True)
    weight = np.random.default_rng(0).uniform(0.5, 2.0, len(y))
    return X, y, weight


def classification_data(n_classes: int) -> tuple[np.ndarray, np.ndarray]:
    return make_classification(
        n_samples=300, n_features=8, n_informative=5, n_classes=n_classes, random_state=0
    )


def all_runs(api) -> list:
    return api.search_runs(output_format="list")


def only_run(api):
    runs = all_runs(api)
    assert len(runs) == 1, f"expected exactly one run, got {len(runs)}"
    return runs[0]


# -- what one fit logs -----------------------------------------------------------------


def test_regressor_fit_logs_params_weighted_metrics_and_tags(autologged) -> None:
    X, y, weight = regression_data()
    model = Ridge(alpha=0.5).fit(X, y, sample_weight=weight)

    run = only_run(autologged)
    assert run.info.status == RunStatus.FINISHED
    assert autologged.active_run() is None
    assert run.data.params["alpha"] == "0.5"
    assert run.data.params["fit_intercept"] == "True"
    assert run.data.params["solver"] == "auto"
    pred = model.predict(X)
    expected = {
        "training_mean_squared_error": metrics.mean_squared_error(y, pred, sample_weight=weight),
        "training_root_mean_squared_error": metrics.root_mean_squared_error(
            y, pred, sample_weight=weight
        ),
        "training_mean_absolute_error": metrics.mean_absolute_error(y, pred, sample_weight=weight),
        "training_r2_score": metrics.r2_score(y, pred, sample_weight=weight),
    }
    assert run.data.metrics == pytest.approx(expected)
    assert run.data.metrics["training_r2_score"] != pytest.approx(metrics.r2_score(y, pred))
    assert run.data.tags["estimator_name"] == "Ridge"
    assert run.data.tags["estimator_class"] == f"{Ridge.__module__}.Ridge"


@pytest.mark.parametrize("n_classes", [2, 3])
def test_classifier_fit_logs_weighted_classification_metrics(autologged, n_classes) -> None:
    X, y = classification_data(n_classes)
    model = LogisticRegression(C=0.3, max_iter=1000).fit(X, y)

    run = only_run(autologged)
    assert run.data.params["C"] == "0.3"
    assert run.data.params["max_iter"] == "1000"
    pred, proba = model.predict(X), model.predict_proba(X)
    roc_auc = (
        metrics.roc_auc_score(y, proba[:, 1])
        if n_classes == 2
        else metrics.roc_auc_score(y, proba, multi_class="ovr", average="weighted")
    )
    expected = {
        "training_accuracy_score": metrics.accuracy_score(y, pred),
        "training_precision_score": metrics.precision_score(y, pred, average="weighted"),
        "training_recall_score": metrics.recall_score(y, pred, average="weighted"),
        "training_f1_score": metrics.f1_score(y, pred, average="weighted"),
        "training_log_loss": metrics.log_loss(y, proba),
        "training_roc_auc": roc_auc,
    }
    assert run.data.metrics == pytest.approx(expected)
    assert run.data.tags["estimator_name"] == "LogisticRegression"


def test_a_pipeline_logs_once_with_its_nested_step_params(autologged) -> None:
    X, y = classification_data(2)
    pipe = Pipeline([("scaler", StandardScaler()), ("clf", LogisticRegression(C=2.0))])
    pipe.fit(X, y)

    run = only_run(autologged)  # the steps' own fits logged nothing
    params = run.data.params
    assert params["clf__C"] == "2.0"
    assert params["scaler__with_mean"] == "True"
    assert params["scaler"] == "StandardScaler"  # estimators are logged by class name
    assert params["clf"] == "LogisticRegression"
    assert params["steps"] == "[('scaler', StandardScaler), ('clf', LogisticRegression)]"
    assert run.data.tags["estimator_name"] == "Pipeline"
    assert run.data.metrics["training_accuracy_score"] == pytest.approx(
        metrics.accuracy_score(y, pipe.predict(X))
    )


def test_a_grid_search_logs_once_with_best_params_and_cv_score(autologged) -> None:
    X, y = classification_data(2)
    search = GridSearchCV(LogisticRegression(max_iter=1000), {"C": [0.01, 1.0]}, cv=3)
    search.fit(X, y)

    run = only_run(autologged)  # 2 candidates x 3 folds + refit: none logged on its own
    assert run.data.params["best_C"] == str(search.best_params_["C"])
    assert run.data.params["estimator"] == "LogisticRegression"
    assert run.data.params["estimator__max_iter"] == "1000"
    assert run.data.params["param_grid"] == "{'C': [0.01, 1.0]}"
    assert run.data.metrics["best_cv_score"] == pytest.approx(search.best_score_)
    assert run.data.tags["estimator_name"] == "GridSearchCV"


def test_a_search_on_joblib_threads_still_logs_once(autologged) -> None:
    X, y = classification_data(2)
    search = GridSearchCV(LogisticRegression(max_iter=1000), {"C": [0.1, 1.0]}, cv=2, n_jobs=2)
    with parallel_backend("threading", n_jobs=2):
        search.fit(X, y)

    assert only_run(autologged).data.params["best_C"] == str(search.best_params_["C"])


# -- which run -------------------------------------------------------------------------


def test_a_fit_inside_an_active_run_logs_into_it_and_leaves_it_open(autologged) -> None:
    X, y, _ = regression_data()
    with autologged.start_run() as run:
        autologged.log_param("dataset", "diabetes")
        LinearRegression().fit(X, y)
        assert autologged.active_run() is run

    logged = only_run(autologged)
    assert logged.info.run_id == run.info.run_id
    assert logged.data.params["dataset"] == "diabetes"
    assert logged.data.params["fit_intercept"] == "True"
    assert "training_r2_score" in logged.data.metrics


def test_a_failing_fit_marks_its_run_failed_and_reraises(autologged) -> None:
    X, y, _ = regression_data()
    X[0, 0] = np.nan

    with pytest.raises(ValueError, match="NaN"):
        LinearRegression().fit(X, y)

    run = only_run(autologged)
    assert run.info.status == RunStatus.FAILED
    assert run.info.end_time is not None
    assert autologged.active_run() is None


def test_a_failing_fit_inside_an_active_run_leaves_that_run_to_its_owner(autologged) -> None:
    X, y, _ = regression_data()
    X[0, 0] = np.nan
    with autologged.start_run() as run:
        with pytest.raises(ValueError):
            LinearRegression().fit(X, y)
        assert autologged.active_run() is run
    assert only_run(autologged).info.status == RunStatus.FINISHED


# -- the model -------------------------------------------------------------------------


def test_the_model_round_trips_with_exactly_the_recorded_trusted_types(
    autologged, tmp_path: Path
) -> None:
    X, y, _ = regression_data()
    model = RandomForestRegressor(n_estimators=3, max_depth=4, random_state=0).fit(X, y)
    run_id = only_run(autologged).info.run_id
    client = autologged.get_client()

    files = sorted(e.path for e in client.list_artifacts(run_id, "model"))
    assert files == ["model/MLmodel.json", "model/model.skops", "model/requirements.txt"]
    folder = Path(client.download_artifacts(run_id, "model", tmp_path))
    meta = json.loads((folder / "MLmodel.json").read_text())
    assert meta["flavor"] == "sklearn"
    assert meta["sklearn_version"] == sklearn.__version__
    assert meta["estimator_class"] == f"{RandomForestRegressor.__module__}.RandomForestRegressor"
    assert meta["untrusted_types"] == ["sklearn.tree._tree.Tree"]
    requirements = (folder / "requirements.txt").read_text().splitlines()
    assert f"scikit-learn=={sklearn.__version__}" in requirements
    assert f"numpy=={np.__version__}" in requirements
    assert any(line.startswith("skops==") for line in requirements)

    with pytest.raises(UntrustedTypesFoundException):
        skops_io.load(folder / "model.skops")
    loaded = skops_io.load(folder / "model.skops", trusted=meta["untrusted_types"])
    np.testing.assert_array_equal(loaded.predict(X), model.predict(X))


def test_log_models_false_logs_no_model(fluent) -> None:
    autolog(log_models=False, log_training_metrics=False)
    try:
        X, y, _ = regression_data()
        LinearRegression().fit(X, y)
    finally:
        autolog(disable=True)
    run = only_run(fluent)
    assert fluent.get_client().list_artifacts(run.info.run_id) == []
    assert not [k for k in run.data.metrics if k.startswith("training_")]
    assert run.data.params["fit_intercept"] == "True"


# -- logging never breaks training -----------------------------------------------------


def test_a_model_skops_cannot_save_warns_and_keeps_the_rest(autologged) -> None:
    X, _ = classification_data(2)
    with pytest.warns(AutologWarning, match="could not log the model"):
        model = Birch(n_clusters=2).fit(X)

    assert model.subcluster_centers_ is not None
    run = only_run(autologged)
    assert run.info.status == RunStatus.FINISHED
    assert run.data.params["n_clusters"] == "2"
    assert run.data.tags["estimator_name"] == "Birch"


def test_a_store_failure_warns_and_the_fit_still_returns(autologged, monkeypatch) -> None:
    def broken(*args, **kwargs):
        raise ConnectionError("store is down")

    monkeypatch.setattr(autologged.get_client(), "log_batch", broken)
    X, y, _ = regression_data()
    model = LinearRegression()
    with pytest.warns(AutologWarning, match="store is down"):
        assert model.fit(X, y) is model
    assert model.coef_.shape == (X.shape[1],)
    assert only_run(autologged).info.status == RunStatus.FINISHED


def test_long_param_values_are_cut_to_the_limit(fluent) -> None:
    autolog(max_param_length=20, log_models=False)
    try:
        X, y = classification_data(2)
        Pipeline([("scaler", StandardScaler()), ("clf", LogisticRegression())]).fit(X, y)
    finally:
        autolog(disable=True)
    steps = only_run(fluent).data.params["steps"]
    assert len(steps) == 20
    assert steps == "[('scaler', Standar…"


@pytest.mark.parametrize("bad", [0, -1, 6001, 2.5, True])
def test_an_impossible_param_limit_is_refused(bad) -> None:
    with pytest.raises(InvalidParameter, match="max_param_length") as info:
        autolog(max_param_length=bad)
    assert info.value.field == "max_param_length"


def test_logging_models_without_skops_says_what_to_install(monkeypatch) -> None:
    monkeypatch.setitem(sys.modules, "skops.io", None)  # makes `import skops.io` fail
    with pytest.raises(MissingExtra, match=r"'skops'.*pip install 'modelyard\[sklearn\]'"):
        autolog()
    try:
        autolog(log_models=False)  # the model is the only part that needs skops
    finally:
        autolog(disable=True)


# -- switching off ---------------------------------------------------------------------


def test_disable_restores_the_original_fit_methods(fluent) -> None:
    autolog()
    try:
        assert LinearRegression.fit is not ORIGINAL_FITS[LinearRegression]
        assert LinearRegression.fit.__wrapped__ is ORIGINAL_FITS[LinearRegression]
        autolog()  # a second call does not wrap twice
        assert LinearRegression.fit.__wrapped__ is ORIGINAL_FITS[LinearRegression]
    finally:
        autolog(disable=True)

    for cls, original in ORIGINAL_FITS.items():
        assert cls.fit is original, cls.__name__
    X, y, _ = regression_data()
    LinearRegression().fit(X, y)
    assert all_runs(fluent) == []
