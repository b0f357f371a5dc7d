"""``modelyard demo``: the end-to-end retail demand-forecasting demo on the embedded default.

It generates a synthetic data set in memory (stores × products × days with weekly and
yearly seasonality, promotions and supplier disruptions; nothing is downloaded), trains
three scikit-learn regressors in tracked runs of the experiment ``retail-demand``, and
prints how they compare and where to look next. Each run logs its params, per-stage
validation curves (gradient boosting), final rmse/mae, its dataset inputs, a
predicted-vs-actual figure, an evaluation summary and the model itself, saved as a
registrable model (`MLmodel.json` and a skops file).

    modelyard demo --home /tmp/yard
    modelyard runs list --home /tmp/yard
"""

from __future__ import annotations

import shlex
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer

if TYPE_CHECKING:
    import numpy as np
    import pandas as pd
    from rich.console import Console

    from modelyard.tracking.client import TrackingClient

EXPERIMENT = "retail-demand"
OBJECTIVE = "forecast daily demand to cut stock-outs"
TARGET = "units_sold"
CATEGORICAL = ["store", "product", "day_of_week"]
NUMERIC = ["doy_sin", "doy_cos", "promo", "price", "disruption", "lag_1", "lag_7", "mean_7"]
FEATURES = CATEGORICAL + NUMERIC
WARMUP_DAYS = 14  # the first days have no complete lag window
VALID_DAYS = 28
DEFAULT_ROWS = 30_000
SEED = 7


@dataclass(frozen=True)
class Candidate:
    """One model the demo trains: its run name, its family and its hyperparameters."""

    name: str
    kind: str  # "ridge" or "gbm"
    params: dict[str, Any]


CANDIDATES = (
    Candidate("ridge-onehot", "ridge", {"alpha": 1.0}),
    Candidate(
        "gbm-shallow",
        "gbm",
        {"n_estimators": 60, "learning_rate": 0.1, "max_depth": 3, "subsample": 0.5},
    ),
    Candidate(
        "gbm-deep",
        "gbm",
        {"n_estimators": 100, "learning_rate": 0.08, "max_depth": 4, "subsample": 0.5},
    ),
)


def make_retail_demand(rows: int = DEFAULT_ROWS, seed: int = SEED) -> pd.DataFrame:
    """A synthetic daily-sales table of about ``rows`` rows (after the lag warm-up).

    Demand per store × product × day is Poisson around a base level scaled by the store,
    the weekday (weekends sell more), the season, promotions (a lift of 30–80 % with a
    20 % price cut) and supplier disruptions (sales fall to a third while stock is short).
    Lag features use only past days, so the table can be split by date without leakage.
    """
    import numpy as np
    import pandas as pd

    rng = np.random.default_rng(seed)
    stores, products = (8, 12) if rows >= 20_000 else (4, 5)
    days = max(rows // (stores * products), VALID_DAYS * 2) + WARMUP_DAYS
    shape = (stores, products, days)

    store_scale = rng.lognormal(0.0, 0.3, stores)[:, None, None]
    base = rng.lognormal(np.log(20.0), 0.5, products)[None, :, None]
    day = np.arange(days)
    start = np.datetime64("2024-01-01")
    dow = day % 7  # 2024-01-01 is a Monday, so 0 = Monday … 6 = Sunday
    weekly = np.array([0.9, 0.85, 0.9, 1.0, 1.15, 1.35, 1.25])[dow][None, None, :]
    doy = 2 * np.pi * (day % 365) / 365.0
    season = (1.0 + 0.15 * np.sin(doy))[None, None, :]

    promo = rng.random(shape) < 0.08
    promo |= np.roll(promo, 1, axis=2) & (rng.random(shape) < 0.5)  # promotions last a while
    lift = rng.uniform(0.3, 0.8, products)[None, :, None]
    base_price = rng.uniform(1.5, 12.0, products)[None, :, None]
    price = np.broadcast_to(base_price, shape) * np.where(promo, 0.8, 1.0)

    disruption = np.zeros((1, products, days), dtype=bool)
    for p in range(products):  # two short supplier outages per product
        for begin in rng.integers(0, days - 10, 2):
            disruption[0, p, begin : begin + rng.integers(4, 10)] = True
    disruption = np.broadcast_to(disruption, shape)

    mean = store_scale * base * weekly * season * np.where(promo, 1.0 + lift, 1.0)
    mean = mean * np.where(disruption, 0.35, 1.0)
    units = rng.poisson(mean).astype(float)

    lag_1 = np.zeros(shape)
    lag_1[..., 1:] = units[..., :-1]
    lag_7 = np.zeros(shape)
    lag_7[..., 7:] = units[..., :-7]
    csum = np.concatenate([np.zeros((stores, products, 1)), np.cumsum(units, axis=2)], axis=2)
    mean_7 = np.zeros(shape)
    mean_7[..., 7:] = (csum[..., 7:-1] - csum[..., :-8]) / 7.0  # days t-7 … t-1

    s_idx, p_idx, d_idx = np.meshgrid(np.arange(stores), np.arange(products), day, indexing="ij")
    keep = (d_idx >= WARMUP_DAYS).ravel()

    def column(values: np.ndarray) -> np.ndarray:
        return np.broadcast_to(values, shape).ravel()[keep]

    frame = pd.DataFrame(
        {
            "date": (start + d_idx.ravel()[keep]).astype("datetime64[ns]"),
            "store": column(s_idx),
            "product": column(p_idx),
            "day_of_week": column(dow[None, None, :]),
            "doy_sin": column(np.sin(doy)[None, None, :]),
            "doy_cos": column(np.cos(doy)[None, None, :]),
            "promo": column(promo.astype(int)),
            "price": column(price).round(2),
            "disruption": column(disruption.astype(int)),
            "lag_1": column(lag_1),
            "lag_7": column(lag_7),
            "mean_7": column(mean_7),
            TARGET: column(units),
        }
    )
    return frame.sort_values(["date", "store", "product"], ignore_index=True)


def _build_model(candidate: Candidate) -> Any:
    from sklearn.compose import ColumnTransformer
    from sklearn.ensemble import GradientBoostingRegressor
    from sklearn.linear_model import Ridge
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import OneHotEncoder, StandardScaler

    if candidate.kind == "ridge":
        encode = ColumnTransformer(
            [
                ("categories", OneHotEncoder(handle_unknown="ignore"), CATEGORICAL),
                ("numbers", StandardScaler(), NUMERIC),
            ]
        )
        return Pipeline([("encode", encode), ("ridge", Ridge(**candidate.params))])
    return GradientBoostingRegressor(random_state=SEED, **candidate.params)


def _rmse(actual: np.ndarray, predicted: np.ndarray) -> float:
    import numpy as np

    return float(np.sqrt(np.mean((actual - predicted) ** 2)))


def _figure(valid: pd.DataFrame, predicted: np.ndarray, title: str) -> Any:
    """Predicted vs actual per row, and total daily demand over the validation weeks."""
    import numpy as np
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    figure = Figure(figsize=(10, 4), dpi=90)
    FigureCanvasAgg(figure)  # render with Agg: no display, no pyplot global state
    left, right = figure.subplots(1, 2)
    actual = valid[TARGET].to_numpy()
    sample = np.random.default_rng(SEED).choice(len(actual), min(len(actual), 3000), False)
    left.scatter(actual[sample], predicted[sample], s=4, alpha=0.3)
    top = float(max(actual.max(), predicted.max()))
    left.plot([0, top], [0, top], color="black", linewidth=1)
    left.set(xlabel="actual units", ylabel="predicted units", title="per store × product × day")
    daily = valid.assign(predicted=predicted).groupby("date")[[TARGET, "predicted"]].sum()
    right.plot(daily.index, daily[TARGET], label="actual")
    right.plot(daily.index, daily["predicted"], label="predicted")
    right.set(title="total units per day", ylabel="units")
    right.legend()
    right.tick_params(axis="x", labelrotation=30)
    figure.suptitle(title)
    figure.tight_layout()
    return figure


def _train_one(
    client: TrackingClient,
    fluent: Any,
    candidate: Candidate,
    train: pd.DataFrame,
    valid: pd.DataFrame,
    data_params: dict[str, Any],
) -> tuple[str, dict[str, float]]:
    """Train ``candidate`` inside a tracked run; returns the run id and its final metrics."""
    import numpy as np

    from modelyard.ids import now_ms
    from modelyard.registry.log_model import log_model
    from modelyard.tracking.entities import Metric

    with fluent.start_run(run_name=candidate.name, tags={"objective": OBJECTIVE}) as run:
        run_id = run.info.run_id
        fluent.log_params({"model": candidate.kind, **candidate.params, **data_params})
        fluent.log_input(train, context="training", name="retail-demand-train")
        fluent.log_input(valid, context="validation", name="retail-demand-valid")

        model = _build_model(candidate)
        x_train, y_train = train[FEATURES], train[TARGET].to_numpy()
        x_valid, y_valid = valid[FEATURES], valid[TARGET].to_numpy()
        began = time.perf_counter()
        model.fit(x_train, y_train)
        fit_seconds = time.perf_counter() - began

        if candidate.kind == "gbm":  # the validation curve, one point per boosting stage
            stamp = now_ms()
            curve = [_rmse(y_valid, p) for p in model.staged_predict(x_valid)]
            points = [Metric("valid_rmse", v, stamp, step) for step, v in enumerate(curve, 1)]
            points += [
                Metric("train_loss", float(v), stamp, step)
                for step, v in enumerate(model.train_score_, 1)
            ]
            client.log_batch(run_id, metrics=points)  # one transaction for the whole curve
            fluent.log_metric("best_stage", int(np.argmin(curve)) + 1)

        predicted = model.predict(x_valid)
        final = {
            "rmse": _rmse(y_valid, predicted),
            "mae": float(np.mean(np.abs(y_valid - predicted))),
            "train_rmse": _rmse(y_train, model.predict(x_train)),
            "fit_seconds": fit_seconds,
        }
        fluent.log_metrics(final)

        by_store = valid.assign(err=(y_valid - predicted) ** 2).groupby("store")["err"].mean()
        promo = valid["promo"].to_numpy() == 1
        fluent.log_dict(
            {
                "target": TARGET,
                "features": FEATURES,
                "validation_days": VALID_DAYS,
                "rmse": final["rmse"],
                "rmse_on_promotion_days": _rmse(y_valid[promo], predicted[promo]),
                "rmse_off_promotion": _rmse(y_valid[~promo], predicted[~promo]),
                "rmse_by_store": {str(k): float(np.sqrt(v)) for k, v in by_store.items()},
            },
            "evaluation/summary.json",
        )
        fluent.log_figure(
            _figure(valid, predicted, f"{candidate.name}: rmse {final['rmse']:.2f}"),
            "plots/predicted_vs_actual.png",
        )
        # A saved model (MLmodel.json, skops file, signature, input example): it registers
        # and serves as it is (`modelyard models register runs:/<id>/model demand`).
        log_model(model, "model", input_example=x_valid.head(5))
    return run_id, final


def demo(
    ctx: typer.Context,
    rows: int = typer.Option(DEFAULT_ROWS, "--rows", hidden=True, help="Rows to generate."),
) -> None:
    """Run the retail demand-forecasting demo: three tracked models, compared.

    Where it stores runs follows the global options: modelyard demo --home /tmp/yard.
    """
    began = time.perf_counter()
    try:
        import matplotlib  # noqa: F401
        import sklearn  # noqa: F401
        import skops  # noqa: F401
    except ImportError as exc:
        from modelyard.errors import MissingExtra

        package = {"sklearn": "scikit-learn"}.get(exc.name or "", exc.name or "scikit-learn")
        extra = "plots" if package == "matplotlib" else "sklearn"
        raise MissingExtra(package, extra, "modelyard demo") from None
    if rows < 1_000:
        raise typer.BadParameter(f"needs at least 1000 rows, got {rows}", param_hint="--rows")

    from modelyard.tracking import fluent

    console = ctx.obj.console()
    settings = ctx.obj.settings()
    client = fluent.configure(settings)
    with console.status("generating the retail demand data set…"):
        frame = make_retail_demand(rows)
        cutoff = frame["date"].max() - _days(VALID_DAYS - 1)
        train, valid = frame[frame["date"] < cutoff], frame[frame["date"] >= cutoff]
    console.print(
        f"[bold]retail demand[/]: {frame['store'].nunique()} stores × "
        f"{frame['product'].nunique()} products × {frame['date'].nunique()} days = "
        f"{len(frame):,} rows; training on {len(train):,}, validating on the last "
        f"{VALID_DAYS} days ({len(valid):,} rows)"
    )
    experiment = fluent.set_experiment(EXPERIMENT)
    data_params = {
        "rows": len(frame),
        "train_rows": len(train),
        "valid_rows": len(valid),
        "seed": SEED,
    }
    results: list[tuple[Candidate, str, dict[str, float]]] = []
    for candidate in CANDIDATES:
        with console.status(f"training {candidate.name}…"):
            run_id, final = _train_one(client, fluent, candidate, train, valid, data_params)
        results.append((candidate, run_id, final))
        console.print(
            f"  [green]✓[/] {candidate.name:<14} rmse {final['rmse']:7.3f}   "
            f"mae {final['mae']:7.3f}   run {run_id}"
        )
    baseline = _rmse(valid[TARGET].to_numpy(), valid["lag_7"].to_numpy())
    _summary(console, ctx, settings, experiment.experiment_id, results, baseline)
    console.print(f"[dim]done in {time.perf_counter() - began:.1f}s[/]")


def _days(n: int) -> Any:
    import pandas as pd

    return pd.Timedelta(days=n)


def _summary(
    console: Console,
    ctx: typer.Context,
    settings: Any,
    experiment_id: str,
    results: list[tuple[Candidate, str, dict[str, float]]],
    baseline: float,
) -> None:
    from rich.markup import escape
    from rich.table import Table

    ranked = sorted(results, key=lambda item: item[2]["rmse"])
    best_candidate, best_id, best = ranked[0]
    table = Table(title=f"experiment {EXPERIMENT!r} (id {experiment_id}): runs compared")
    for column, justify in (
        ("", "center"),
        ("run", "left"),
        ("run id", "left"),
        ("valid rmse", "right"),
        ("valid mae", "right"),
        ("train rmse", "right"),
        ("fit", "right"),
    ):
        table.add_column(column, justify=justify, no_wrap=True)  # type: ignore[arg-type]
    for candidate, run_id, final in ranked:
        is_best = run_id == best_id
        table.add_row(
            "★" if is_best else "",
            candidate.name,
            run_id,
            f"{final['rmse']:.3f}",
            f"{final['mae']:.3f}",
            f"{final['train_rmse']:.3f}",
            f"{final['fit_seconds']:.1f}s",
            style="bold green" if is_best else None,
        )
    table.caption = f"seasonal-naive baseline (same weekday last week): rmse {baseline:.3f}"
    console.print(table)
    gain = 100.0 * (1.0 - best["rmse"] / baseline) if baseline else 0.0
    console.print(
        f"best run: [bold green]{best_candidate.name}[/] ({best_id}), rmse {best['rmse']:.3f}, "
        f"{gain:.0f}% below the seasonal-naive baseline"
    )
    where = " ".join(
        f"{option} {shlex.quote(str(value))}"
        for option, value in (
            ("--home", Path(settings.home).absolute()),
            ("--store-uri", ctx.obj.overrides.get("store_uri")),
            ("--artifacts-uri", ctx.obj.overrides.get("artifacts_uri")),
        )
        if value
    )
    ids = " ".join(run_id for _, run_id, _ in results)
    command, hint = how_to_run()
    console.print("\n[bold]where to look[/]")
    for line in (
        f"{command} runs list {where} --experiment {EXPERIMENT}",
        f"{command} runs show {best_id} {where}",
        f"{command} runs compare {ids} {where}",
    ):
        console.print(f"  [cyan]{escape(line)}[/]", soft_wrap=True)
    if hint:
        console.print(f"  [dim]{escape(hint)}[/]", soft_wrap=True)
    console.print(f"  metadata:  {escape(settings.resolved_store_uri())}", soft_wrap=True)
    console.print(f"  artifacts: {escape(settings.resolved_artifacts_uri())}", soft_wrap=True)


def how_to_run(
    on_path: str | None = None,
    script: Path | None = None,
    in_venv: bool | None = None,
    cwd: Path | None = None,
) -> tuple[str, str | None]:
    """How the user can type ``modelyard`` in their shell, and a hint line (or None).

    After ``make demo`` the command lives in ``.venv/bin``, which is not on the PATH: the
    next commands must name that path (or the venv be activated first). The arguments
    default to this process's view: ``shutil.which``, the running interpreter's scripts
    folder, whether it runs in a virtual environment, the working directory.

    >>> how_to_run(None, Path("/src/.venv/bin/modelyard"), True, Path("/src"))
    ('.venv/bin/modelyard', 'or run `source .venv/bin/activate` once, then `modelyard …`')
    """
    import os
    import shutil
    import sys
    import sysconfig

    if on_path is None:
        on_path = shutil.which("modelyard")
    if script is None:
        name = "modelyard.exe" if os.name == "nt" else "modelyard"
        script = Path(sysconfig.get_path("scripts")) / name
    if in_venv is None:
        in_venv = sys.prefix != sys.base_prefix
    cwd = cwd or Path.cwd()
    if on_path and (not script.exists() or _same_file(Path(on_path), script)):
        return "modelyard", None  # the shell finds this very installation
    shown = script
    if script.is_absolute() and script.is_relative_to(cwd):
        shown = script.relative_to(cwd)
    command = shlex.quote(str(shown))
    if not in_venv:
        return command, None
    activate = shlex.quote(str(shown.parent / "activate"))
    return command, f"or run `source {activate}` once, then `modelyard …`"


def _same_file(a: Path, b: Path) -> bool:
    try:
        return a.samefile(b)
    except OSError:
        return False
