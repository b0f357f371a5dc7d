"""The reviewed allow-list: exact names only, and enough for the models people fit.

Every estimator below is saved and loaded back *untrusted*, with nothing listed by hand:
the promise is safe loading without hand listing, for what a retail demand-forecasting
team fits (linear models, trees, forests, gradient boosting, KNN, SVMs, pipelines with
preprocessing, imputation and feature selection, target transforms, searches).
"""

from __future__ import annotations

import importlib
import inspect
from typing import Any

import numpy as np
import pandas as pd
import pytest

from modelyard.registry.formats.flavors import load_model, read_manifest, save_model
from modelyard.registry.formats.sklearn_skops import refused_types
from modelyard.registry.formats.skops_allowlist import ALLOWED_TYPES


def resolve(name: str) -> Any:
    module, _, attr = name.rpartition(".")
    return getattr(importlib.import_module(module), attr)


def test_every_name_is_exact_and_resolves_to_a_class_or_function():
    for name in ALLOWED_TYPES:
        obj = resolve(name)  # a typo or a name gone after an upgrade fails here: review it
        assert inspect.isclass(obj) or callable(obj), name
        assert ".testing" not in name and "._testing" not in name, name
        assert not name.endswith("."), name


def test_nothing_that_runs_code_or_touches_files_is_listed():
    dangerous = {
        "numpy.testing._private.utils.runstring",
        "numpy.load",
        "numpy.save",
        "numpy.savetxt",
        "numpy.loadtxt",
        "numpy.fromfile",
        "scipy.io.savemat",
        "scipy.io.loadmat",
        "sklearn.datasets.dump_svmlight_file",
        "sklearn.metrics._dist_metrics.PyFuncDistance64",
        "skops.io.dump",
        "skops.io.load",
        "builtins.eval",
        "builtins.exec",
        "builtins.getattr",
        "builtins.__import__",
        "builtins.open",
        "importlib.import_module",
        "operator.attrgetter",
        "operator.methodcaller",
        "operator.call",
        "os.system",
        "subprocess.Popen",
    }
    assert ALLOWED_TYPES.isdisjoint(dangerous)
    assert refused_types(sorted(dangerous)) == sorted(dangerous)


def test_the_caller_can_name_more_types_but_no_prefix_is_trusted():
    assert refused_types(["numpy.savetxt"], trusted_types=["numpy.savetxt"]) == []
    assert refused_types(["numpy.savetxt"], trusted_types=["numpy"]) == ["numpy.savetxt"]
    assert refused_types(["sklearn.tree._tree.Tree"]) == []


@pytest.fixture(scope="module")
def sales() -> tuple[pd.DataFrame, np.ndarray]:
    rng = np.random.default_rng(11)
    n = 240
    X = pd.DataFrame(
        {
            "store": rng.choice(["north", "south", "centre"], n),
            "weekday": rng.integers(0, 7, n).astype(float),
            "price": rng.uniform(1, 10, n),
            "promo": rng.integers(0, 2, n).astype(float),
            "temperature": rng.normal(18, 6, n),
        }
    )
    X.loc[::13, "temperature"] = np.nan
    units = rng.poisson(4 + 3 * X["promo"] - 0.2 * X["price"].clip(0, 9)).astype(float)
    return X, units


NUMERIC = ["weekday", "price", "promo", "temperature"]


def regressors() -> dict[str, Any]:
    from sklearn import ensemble, linear_model, neighbors, neural_network, svm, tree
    from sklearn.compose import TransformedTargetRegressor
    from sklearn.dummy import DummyRegressor
    from sklearn.model_selection import GridSearchCV, RandomizedSearchCV, TimeSeriesSplit
    from sklearn.preprocessing import QuantileTransformer

    return {
        "linear": linear_model.LinearRegression(),
        "ridge_cv": linear_model.RidgeCV(),
        "lasso_cv": linear_model.LassoCV(cv=3),
        "elastic_net": linear_model.ElasticNet(alpha=0.1),
        "huber": linear_model.HuberRegressor(),
        "quantile": linear_model.QuantileRegressor(quantile=0.9, alpha=0.0),
        "poisson": linear_model.PoissonRegressor(),
        "tweedie": linear_model.TweedieRegressor(power=1.5),
        "sgd": linear_model.SGDRegressor(loss="huber"),
        "bayesian_ridge": linear_model.BayesianRidge(),
        "decision_tree": tree.DecisionTreeRegressor(max_depth=4),
        "random_forest": ensemble.RandomForestRegressor(n_estimators=5, random_state=0),
        "random_forest_rng": ensemble.RandomForestRegressor(
            n_estimators=3, random_state=np.random.RandomState(0)
        ),
        "extra_trees": ensemble.ExtraTreesRegressor(n_estimators=5),
        "bagging": ensemble.BaggingRegressor(n_estimators=3, max_features=0.6),
        "adaboost": ensemble.AdaBoostRegressor(n_estimators=3),
        "gbm": ensemble.GradientBoostingRegressor(n_estimators=5),
        "gbm_quantile": ensemble.GradientBoostingRegressor(
            n_estimators=5, loss="quantile", alpha=0.9, subsample=0.8
        ),
        "hist_gbm_poisson": ensemble.HistGradientBoostingRegressor(max_iter=5, loss="poisson"),
        "hist_gbm_early_stopping": ensemble.HistGradientBoostingRegressor(
            max_iter=20, early_stopping=True, n_iter_no_change=2, random_state=0
        ),
        "voting": ensemble.VotingRegressor(
            [("ridge", linear_model.Ridge()), ("tree", tree.DecisionTreeRegressor())]
        ),
        "stacking": ensemble.StackingRegressor(
            [("ridge", linear_model.Ridge()), ("tree", tree.DecisionTreeRegressor())], cv=3
        ),
        "knn": neighbors.KNeighborsRegressor(),
        "knn_ball_tree_manhattan": neighbors.KNeighborsRegressor(
            algorithm="ball_tree", metric="manhattan", weights="distance"
        ),
        "svr": svm.SVR(),
        "linear_svr": svm.LinearSVR(max_iter=20_000),
        "mlp": neural_network.MLPRegressor(max_iter=30),  # Adam: its state is kept
        "dummy": DummyRegressor(strategy="median"),
        "log_target": TransformedTargetRegressor(
            regressor=linear_model.Ridge(), func=np.log1p, inverse_func=np.expm1
        ),
        "quantile_target": TransformedTargetRegressor(
            regressor=linear_model.Ridge(), transformer=QuantileTransformer(n_quantiles=20)
        ),
        "grid_search_time_series": GridSearchCV(
            linear_model.Ridge(),
            {"alpha": [0.1, 1.0]},
            cv=TimeSeriesSplit(3),
            scoring="neg_mean_absolute_error",
        ),
        "random_search": RandomizedSearchCV(
            ensemble.RandomForestRegressor(n_estimators=3),
            {"max_depth": [2, 3]},
            n_iter=2,
            cv=3,
            random_state=0,
        ),
    }


def preprocessing(scaler: Any = None) -> Any:
    from sklearn.compose import ColumnTransformer
    from sklearn.impute import SimpleImputer
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import OneHotEncoder, StandardScaler

    numeric = make_pipeline(SimpleImputer(strategy="median"), scaler or StandardScaler())
    return ColumnTransformer(
        [("store", OneHotEncoder(handle_unknown="ignore"), ["store"]), ("num", numeric, NUMERIC)]
    )


def pipelines() -> dict[str, Any]:
    from sklearn import decomposition, feature_selection, impute
    from sklearn import preprocessing as pp
    from sklearn.compose import ColumnTransformer, make_column_selector
    from sklearn.ensemble import HistGradientBoostingRegressor
    from sklearn.experimental import enable_iterative_imputer  # noqa: F401
    from sklearn.linear_model import Ridge
    from sklearn.pipeline import FeatureUnion, Pipeline, make_pipeline

    scalers = {
        "minmax": pp.MinMaxScaler(),
        "robust": pp.RobustScaler(),
        "power": pp.PowerTransformer(),
        "quantile": pp.QuantileTransformer(n_quantiles=20),
        "bins": pp.KBinsDiscretizer(n_bins=3, strategy="uniform"),
        "poly": pp.PolynomialFeatures(2),
        "spline": pp.SplineTransformer(),
        "log1p": pp.FunctionTransformer(np.log1p, inverse_func=np.expm1),
        "pca": decomposition.PCA(2),
    }
    out = {f"{k}_pipeline": make_pipeline(preprocessing(s), Ridge()) for k, s in scalers.items()}
    out["select_k_best_f_regression"] = make_pipeline(
        preprocessing(), feature_selection.SelectKBest(feature_selection.f_regression, k=3), Ridge()
    )
    out["select_mutual_info"] = make_pipeline(
        preprocessing(),
        feature_selection.SelectPercentile(feature_selection.mutual_info_regression),
        Ridge(),
    )
    out["select_from_model_rfe"] = make_pipeline(
        preprocessing(),
        feature_selection.VarianceThreshold(),
        feature_selection.SelectFromModel(Ridge()),
        feature_selection.RFE(Ridge(), n_features_to_select=2),
        Ridge(),
    )
    out["imputers_and_encoders"] = Pipeline(
        [
            (
                "columns",
                ColumnTransformer(
                    [
                        ("ordinal", pp.OrdinalEncoder(), ["store"]),
                        ("target", pp.TargetEncoder(target_type="continuous"), ["store"]),
                        ("knn", impute.KNNImputer(), NUMERIC),
                        ("iterative", impute.IterativeImputer(max_iter=3), NUMERIC),
                        ("missing", impute.MissingIndicator(), NUMERIC),
                    ]
                ),
            ),
            ("union", FeatureUnion([("pca", decomposition.PCA(2)), ("id", "passthrough")])),
            ("model", Ridge()),
        ]
    )
    out["column_selectors"] = make_pipeline(
        ColumnTransformer(
            [
                ("num", impute.SimpleImputer(), make_column_selector(dtype_include=np.number)),
                ("cat", pp.OneHotEncoder(), make_column_selector(dtype_include=object)),
            ]
        ),
        Ridge(),
    )
    out["hist_gbm_categorical"] = make_pipeline(
        ColumnTransformer(
            [("store", pp.OrdinalEncoder(), ["store"])],
            remainder="passthrough",
            verbose_feature_names_out=False,
        ),
        HistGradientBoostingRegressor(max_iter=5, categorical_features=["store"]),
    ).set_output(transform="pandas")
    return out


def classifiers() -> dict[str, Any]:
    from sklearn import ensemble, linear_model, neighbors, svm
    from sklearn.calibration import CalibratedClassifierCV
    from sklearn.feature_selection import SelectKBest, f_classif
    from sklearn.pipeline import make_pipeline

    models = {
        "logistic": linear_model.LogisticRegression(max_iter=500),
        "random_forest_classifier": ensemble.RandomForestClassifier(n_estimators=5),
        "gbm_classifier": ensemble.GradientBoostingClassifier(n_estimators=5),
        "hist_gbm_classifier": ensemble.HistGradientBoostingClassifier(max_iter=5),
        "knn_classifier": neighbors.KNeighborsClassifier(),
        "svc": svm.SVC(probability=True),
        "calibrated": CalibratedClassifierCV(linear_model.LogisticRegression(), cv=3),
    }
    out = {name: make_pipeline(preprocessing(), m) for name, m in models.items()}
    out["select_k_best_f_classif"] = make_pipeline(
        preprocessing(), SelectKBest(f_classif, k=3), linear_model.LogisticRegression()
    )
    return out


MODELS = {
    **{f"regressor_{k}": ("numeric", v) for k, v in regressors().items()},
    **{f"pipeline_{k}": ("frame", v) for k, v in pipelines().items()},
    **{f"classifier_{k}": ("classes", v) for k, v in classifiers().items()},
}


@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")  # tiny fits
@pytest.mark.parametrize("name", MODELS)
def test_common_estimators_save_and_load_untrusted_with_nothing_listed(name, sales, tmp_path):
    kind, model = MODELS[name]
    X, units = sales
    if kind == "numeric":
        X = pd.DataFrame(X[NUMERIC].fillna(0.0))
    y = (units > np.median(units)).astype(int) if kind == "classes" else units
    model.fit(X, y)

    save_model(model, tmp_path / "m", input_example=X.head(3))
    loaded = load_model(tmp_path / "m")

    np.testing.assert_allclose(loaded.predict(X), model.predict(X))
    assert refused_types(read_manifest(tmp_path / "m")["untrusted_types"]) == []


def test_multi_horizon_forecasters_load_untrusted(sales, tmp_path):
    """One model per horizon (next day, next week): MultiOutputRegressor and chains."""
    from sklearn.ensemble import HistGradientBoostingRegressor, RandomForestRegressor
    from sklearn.multioutput import MultiOutputRegressor, RegressorChain

    X, units = sales
    X = pd.DataFrame(X[NUMERIC].fillna(0.0))
    horizons = np.column_stack([units, np.roll(units, -7)])
    for i, model in enumerate(
        [
            MultiOutputRegressor(HistGradientBoostingRegressor(max_iter=5)),
            RegressorChain(RandomForestRegressor(n_estimators=3, random_state=0)),
        ]
    ):
        model.fit(X, horizons)
        save_model(model, tmp_path / str(i))
        np.testing.assert_allclose(load_model(tmp_path / str(i)).predict(X), model.predict(X))
