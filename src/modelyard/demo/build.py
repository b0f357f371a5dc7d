"""The stages from raw sales to an approved model: dataset version and contract, feature
store, sweep and time-aware training, slices, the gate, registration and approval."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from modelyard.demo import features as feats
from modelyard.demo import training
from modelyard.demo.data import KEYS, TARGET
from modelyard.demo.workspace import DATASET, EXPERIMENT, MODEL, REVIEWER, SCIENTIST

if TYPE_CHECKING:
    from pathlib import Path

    import pandas as pd

    from modelyard.demo.story import Stage
    from modelyard.demo.workspace import Workspace

CONTRACT = f"""\
contract: {DATASET}
description: Daily units sold per store and product.
rows: {{min: 1000}}
columns:
  store_id: {{type: int, nullable: false, min: 0}}
  product_id: {{type: int, nullable: false, min: 0}}
  region: {{type: string, allowed: [north, south, east, west]}}
  category: {{type: string, allowed: [grocery, beverages, household, snacks]}}
  price: {{type: float, min: 0.01, max: 1000}}
  promo: {{type: int, allowed: [0, 1]}}
  disruption: {{type: int, allowed: [0, 1]}}
  {TARGET}: {{type: float, nullable: false, min: 0}}
  date: {{type: datetime}}
unique: [[store_id, product_id, date]]
rules:
  - {{name: promotions_cut_prices, expr: "promo == 0 or price > 0", severity: warning}}
"""
GATE = {
    "gate": "demand-quality",
    "task": "regression",
    "target": TARGET,
    "slices": ["region", "category"],
    "rules": [
        "rmse <= champion * 1.0",  # no worse than the model serving today
        "slice rmse <= champion * 1.10",  # and no region or category much worse
        "latency p95_ms <= 250",  # one row; a daily forecast, not a checkout path
    ],
    "bootstrap": 50,
}
INTENDED_USE = "Daily units per store and product for replenishment orders, 1 day ahead."
LIMITATIONS = (
    "Trained on synthetic history; promotions deeper than seen in training, and new stores "
    "or products, are outside what it learnt."
)


def snapshot(stage: Stage, ws: Workspace, table: pd.DataFrame, what: str) -> Any:
    """``table`` as a version of the sales dataset (an existing identical one is reused),
    checked against the contract; refuses to go on when the contract fails."""
    from modelyard.errors import InvalidState

    known = {v.digest for v in ws.data.list_versions(DATASET)} if _has(ws, DATASET) else set()
    version = ws.data.snapshot(table, DATASET, description=what)
    if version.digest in known:
        stage.reused(f"{version.ref} ({what}) was recorded by an earlier run")
    else:
        stage.say(f"{version.ref}: {what}, {version.num_rows:,} rows, digest {version.digest[:12]}")
    contract = ws.folder / "contract.yaml"
    contract.write_text(CONTRACT, encoding="utf-8")
    result = ws.data.check(version.ref, contract)
    stage.say(f"contract {contract.name}: {result.summary()}")
    if not result.passed:
        raise InvalidState(f"{version.ref} breaks its contract: {result.summary()}")
    stage.numbers[f"{what} version"] = version.ref
    return version


def _has(ws: Workspace, name: str) -> bool:
    return any(v.name == name for v in ws.data.list_versions())


def feature_store(stage: Stage, ws: Workspace, source: Path) -> list[str]:
    """Apply the entity and the view (unchanged definitions are kept as they are)."""
    entity, view, names = feats.definitions(source)
    changes = ws.features.apply([entity, view], origin="modelyard demo")
    for change in changes:
        if change.action == "unchanged":
            stage.reused(f"{change.kind} {change.name} v{change.version} unchanged")
        else:
            stage.say(f"{change.kind} {change.name}: {change.action} (v{change.version})")
    stage.say(
        f"{len(names)} features in view {feats.VIEW}: lags, rolling statistics over "
        f"{len(feats.WINDOWS)} windows, calendar, price and promotion features"
    )
    stage.numbers["features"] = len(names)
    return names


def training_rows(ws: Workspace, table: pd.DataFrame, names: list[str], name: str) -> Any:
    rows = table[[*KEYS, "date", TARGET, "region", "category"]]
    return feats.training_frame(ws.features, rows, names, name)


def sweep_and_train(
    stage: Stage,
    ws: Workspace,
    frame: pd.DataFrame,
    names: list[str],
    options: Any,
    inputs: tuple[Any, Any],
) -> tuple[training.Trained, training.Trained]:
    """The sweep, then the incumbent (a ridge baseline) and the chosen boosting model,
    each cross-validated along time in its own run."""
    from modelyard.tracking import fluent

    fluent.set_experiment(EXPERIMENT)
    result = training.run_sweep(frame, names, options.trials, options.max_iter)
    if result.resumed:
        stage.reused(f"sweep {result.name}: its trials were run before")
    best = dict(result.best_params or {"learning_rate": 0.1, "max_leaf_nodes": 31})
    stage.say(
        f"sweep {result.name}: {len(result.trials)} trials, best hold-out rmse "
        f"{result.best_value:.3f} with {_params(best)} (run {result.run_id})"
    )
    tags = {"objective": "forecast daily demand to cut stock-outs"}
    baseline = training.train_tracked(
        fluent, ws.tracking, training.make_baseline(), frame, names,
        run_name="ridge-baseline", params={"model": "ridge"}, folds=options.folds, tags=tags,
    )  # fmt: skip
    params = {**best, "max_iter": options.max_iter}
    model = training.make_model(best, options.max_iter)
    chosen = training.train_tracked(
        fluent, ws.tracking, model, frame, names,
        run_name="gbm-poisson", params={"model": "hist_gbm", **params}, folds=options.folds,
        tags=tags,
    )  # fmt: skip
    dataset, training_set = inputs
    for trained in (baseline, chosen):  # lineage: dataset → training set → run → model
        ws.data.log_input(trained.run_id, dataset, context="training")
        ws.features.log_training_set(ws.tracking, trained.run_id, training_set)
    for trained, label in ((baseline, "ridge baseline"), (chosen, "boosting")):
        folds = ", ".join(f"{f['rmse']:.2f}" for f in trained.folds)
        stage.say(
            f"{label}: {options.folds}-fold time-aware CV rmse {trained.rmse:.3f} "
            f"(folds {folds}), mae {trained.mae:.3f}, run {trained.run_id}"
        )
    stage.numbers.update(
        {
            "cv rmse (baseline)": baseline.rmse,
            "cv rmse (boosting)": chosen.rmse,
            "sweep": result.run_id,
        }
    )
    return baseline, chosen


def _params(params: dict[str, Any]) -> str:
    return ", ".join(
        f"{k}={v:.3g}" if isinstance(v, float) else f"{k}={v}" for k, v in params.items()
    )


def slices(stage: Stage, trained: training.Trained) -> None:
    worst = max(trained.slices.items(), key=lambda item: item[1]["rmse"])
    for key, value in sorted(trained.slices.items()):
        stage.say(f"{key:<22} rmse {value['rmse']:7.3f}  ({value['rows']:,} rows)")
    stage.say(f"worst slice: {worst[0]} (logged with the run as evaluation slices)")
    stage.numbers["worst slice"] = f"{worst[0]} rmse {worst[1]['rmse']:.3f}"


def register(ws: Workspace, trained: training.Trained, description: str) -> Any:
    """Register the run's model as ``ana`` (the data scientist), with its card filled."""
    registry = ws.as_user(SCIENTIST)
    version = registry.register_model(
        f"runs:/{trained.run_id}/model", MODEL, description=description
    )
    folds = {f"cv.fold{f['index']}.rmse": f["rmse"] for f in trained.folds}
    registry.update_card(
        MODEL,
        version.version,
        intended_use=INTENDED_USE,
        limitations=LIMITATIONS,
        validation_methodology="expanding-window time-series CV on date; slices region, category",
        validation_results={"cv.rmse": trained.rmse, "cv.mae": trained.mae, **folds},
        owners=[SCIENTIST],
    )
    return version


def champion(ws: Workspace) -> Any:
    from modelyard.errors import NotFound

    try:
        return ws.registry.get_model_version_by_alias(MODEL, "champion")
    except NotFound:
        return None


def gate(stage: Stage, ws: Workspace, version: Any, holdout: pd.DataFrame, names: list[str]) -> Any:
    """The candidate against the champion on the hold-out days; the verdict is recorded."""
    from modelyard.validation.gates import GatePolicy, record_gate, run_gate

    policy = GatePolicy.from_dict({**GATE, "features": names})
    report = run_gate(
        policy,
        version.uri,
        holdout[[*names, "region", "category", TARGET]],
        champion=f"models:/{MODEL}@champion",
        registry=ws.registry,
    )
    record_gate(report, ws.registry)
    stage.say(report.summary())
    for outcome in report.outcomes:
        stage.say(
            f"  {'pass' if outcome.passed else 'FAIL'}  {outcome.rule}: "
            f"observed {outcome.observed}, "
            f"limit {outcome.threshold}"
        )
    stage.numbers["gate"] = "passed" if report.passed else "failed"
    return report


def approve(stage: Stage, ws: Workspace, version: Any) -> None:
    """Four eyes: the author's own approval is refused; the reviewer's is recorded."""
    from modelyard.errors import ModelyardError

    if version.created_by == SCIENTIST:
        try:
            ws.as_user(SCIENTIST).approve(MODEL, version.version, "looks good to me")
            stage.say(f"{SCIENTIST} approved their own version?! (four eyes did not hold)")
        except ModelyardError as exc:
            stage.say(f"{SCIENTIST} (the author) tried to approve: refused — {exc.message}")
    earlier = ws.registry.list_approvals(MODEL, version.version)
    if any(a.actor == REVIEWER for a in earlier):
        stage.reused(f"{REVIEWER} approved {version.uri} in an earlier run")
    else:
        ws.as_user(REVIEWER).approve(MODEL, version.version, "gate passed; card reviewed")
    approvals = ws.registry.list_approvals(MODEL, version.version)
    who = ", ".join(f"{a.actor} ({a.decision})" for a in approvals)
    stage.say(f"{version.uri}: approvals {who}")
