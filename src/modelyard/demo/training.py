"""Training the demand model: a small sweep, then the chosen model trained with time-aware
cross-validation in a tracked run, with metrics per region and category.

The model is scikit-learn's histogram gradient boosting with a Poisson loss (counts, and
missing values for the windows that have not filled yet, are what it handles natively).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from modelyard.demo.data import TARGET

if TYPE_CHECKING:
    import pandas as pd

SLICES = ("region", "category")
SEED = 7
HOLDOUT_DAYS = 28
SPACE = {
    "learning_rate": {"type": "float", "low": 0.05, "high": 0.2, "log": True},
    "max_leaf_nodes": {"type": "int", "low": 15, "high": 63},
}


@dataclass
class Trained:
    """One trained model and what was measured of it."""

    run_id: str
    model: Any
    rmse: float
    mae: float
    folds: list[dict[str, Any]] = field(default_factory=list)
    slices: dict[str, dict[str, float]] = field(default_factory=dict)
    params: dict[str, Any] = field(default_factory=dict)


def make_model(params: dict[str, Any], max_iter: int) -> Any:
    from sklearn.ensemble import HistGradientBoostingRegressor

    return HistGradientBoostingRegressor(
        loss="poisson", max_iter=max_iter, random_state=SEED, **params
    )


def make_baseline() -> Any:
    """The first production model: a ridge regression on the weekly level and the plan."""
    from sklearn.compose import ColumnTransformer
    from sklearn.impute import SimpleImputer
    from sklearn.linear_model import Ridge
    from sklearn.pipeline import Pipeline

    columns = ["units_same_weekday_4w", "units_avg_7d", "units_avg_28d", "promo", "price"]
    pick = ColumnTransformer([("pick", SimpleImputer(strategy="median"), columns)])
    return Pipeline([("pick", pick), ("ridge", Ridge(alpha=1.0))])


def holdout_split(frame: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Train on all but the last ``HOLDOUT_DAYS`` days; hold those out (a time split)."""
    import pandas as pd

    cut = frame["date"].max() - pd.Timedelta(days=HOLDOUT_DAYS - 1)
    return frame[frame["date"] < cut], frame[frame["date"] >= cut]


def rmse(actual: Any, predicted: Any) -> float:
    import numpy as np

    return float(np.sqrt(np.mean((np.asarray(actual) - np.asarray(predicted)) ** 2)))


def run_sweep(frame: pd.DataFrame, names: list[str], trials: int, max_iter: int) -> Any:
    """A small tracked sweep (random sampler, in this process) on the hold-out split;
    returns the SweepResult (each trial a child run of the sweep's run)."""
    from modelyard.pipelines.sweeps import sweep

    train, valid = holdout_split(frame)

    def objective(params: dict[str, Any]) -> float:
        model = make_model(params, max_iter).fit(train[names], train[TARGET])
        return rmse(valid[TARGET], model.predict(valid[names]))

    return sweep(
        objective,
        SPACE,
        n_trials=trials,
        sampler="random",
        seed=SEED,
        pruner="none",
        metric="rmse",
        name="retail-demand-sweep",
        executor="local",
    )


def train_tracked(
    fluent: Any,
    client: Any,
    model: Any,
    frame: pd.DataFrame,
    names: list[str],
    *,
    run_name: str,
    params: dict[str, Any],
    folds: int,
    tags: dict[str, str],
) -> Trained:
    """Cross-validate ``model`` along time (expanding window, ``folds`` folds), refit on all
    rows and log everything — params, per-fold and per-slice metrics, the saved model — in
    one run of the active experiment."""
    from modelyard.registry.log_model import log_model
    from modelyard.validation.evaluate import evaluate
    from modelyard.validation.splits import TimeSeriesSplit

    data = frame[[*names, TARGET, "date", *SLICES]]
    with fluent.start_run(run_name=run_name, tags=tags) as run:
        fluent.log_params({**params, "features": len(names), "rows": len(frame)})
        result = evaluate(
            model,
            data,
            TARGET,
            cv=TimeSeriesSplit("date", n_splits=folds),
            slices=SLICES,
            features=names,
            n_bootstrap=50,
            min_slice_rows=30,
            run_id=run.info.run_id,
            client=client,
        )
        log_model(result.model, "model", input_example=frame[names].head(3))
    slices = {
        f"{column}={s.value}": {"rmse": s.metrics["rmse"], "rows": s.rows}
        for column, items in result.slices.items()
        for s in items
    }
    return Trained(
        run.info.run_id,
        result.model,
        result.value("rmse"),
        result.value("mae"),
        [
            {"index": f.index, "rmse": f.metrics["rmse"], "test": f.test_period}
            for f in result.folds
        ],
        slices,
        params,
    )
