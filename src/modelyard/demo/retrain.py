"""The retraining stage: the shipped retraining pipeline
(``modelyard.pipelines.retraining:retraining``) registered by name, named by the monitor's
alert (``trigger:``), and started by the scheduler's alert trigger — the same code path
``modelyard scheduler`` runs, here ticked once in this process with the local executor.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from modelyard.demo import features as feats
from modelyard.demo.data import KEYS, TARGET
from modelyard.demo.workspace import DATASET, MODEL, PIPELINE, PRODUCTION, environment

if TYPE_CHECKING:
    from pathlib import Path

    from modelyard.demo.story import Stage
    from modelyard.demo.workspace import Workspace

TARGET_PIPELINE = "modelyard.pipelines.retraining:retraining"


def write_config(
    ws: Workspace,
    names: list[str],
    params: dict[str, Any],
    canary_interval_s: float,
    holdout_days: int,
) -> Path:
    """The pipeline's YAML config and its gate policy, beside the demo's contract. The
    pipeline trains on the rows before its hold-out (the latest ``holdout_days``), so the
    hold-out is kept short enough to leave shocked days to learn from."""
    import yaml

    gate = {
        "gate": "retrained-demand",
        "task": "regression",
        "target": TARGET,
        "rules": ["rmse <= champion * 1.0", "latency p95_ms <= 250"],
        "bootstrap": 50,
    }
    (ws.folder / "retrain-gate.yaml").write_text(yaml.safe_dump(gate), encoding="utf-8")
    config = {
        "dataset": DATASET,
        "contract": "contract.yaml",
        "training_set": {
            "keys": KEYS,
            "timestamp": feats.TIMESTAMP,
            "target": TARGET,
            "features": [f"{feats.VIEW}:{n}" for n in names],
        },
        "model": {
            "name": MODEL,
            "estimator": "sklearn.ensemble.HistGradientBoostingRegressor",
            "params": {"loss": "poisson", "random_state": 7, **params},
            "intended_use": "Daily units per store and product, 1 day ahead (retrained).",
        },
        "evaluation": {"holdout": f"{holdout_days}d", "cv": {"n_splits": 3}},
        "gate": "retrain-gate.yaml",
        "champion": "champion",
        "rollout": {
            "deployment": PRODUCTION,
            "shadow": 100,
            "canary": {"steps": [25, 50], "interval": f"{max(1, round(canary_interval_s))}s"},
        },
    }
    path = ws.folder / "retrain.yaml"
    path.write_text(yaml.safe_dump(config, sort_keys=False), encoding="utf-8")
    return path


def register_pipeline(stage: Stage, ws: Workspace, config: Path) -> None:
    from modelyard.pipelines.registry import PipelineRegistry

    registry = PipelineRegistry(ws.settings)
    registry.register(
        PIPELINE,
        TARGET_PIPELINE,
        {"config": str(config)},
        description="retrain the demand model when its monitor fires",
        replace=True,
    )
    stage.say(f"pipeline {PIPELINE} → {TARGET_PIPELINE} (config {config.name})")


def triggered_run(stage: Stage, ws: Workspace) -> Any:
    """Tick the scheduler once: the firing alert that names the pipeline starts it, with
    the alert as its cause. Returns the pipeline run record (None when nothing was due)."""
    from modelyard.pipelines.firings import Firings
    from modelyard.pipelines.registry import PipelineRegistry
    from modelyard.pipelines.runner import pipelines_store
    from modelyard.pipelines.scheduler import PipelineScheduler

    scheduler = PipelineScheduler(
        PipelineRegistry(ws.settings), monitors=None, executor="local", background=False
    )
    with environment(ws.environment()):  # the steps open the stores the environment names
        report = scheduler.tick()
        scheduler.join()
    if not report.started:
        stage.skipped("no firing alert named the pipeline: nothing was retrained")
        return None
    firings = [Firings(scheduler.db).get(started.key) for started in report.started]
    for firing in firings:  # one per alert that fired naming the pipeline
        stage.say(
            f"the scheduler claimed firing {firing.key} (alert of monitor {firing.source}) and "
            f"ran {firing.pipeline}: {firing.status}"
            + (f" — {firing.detail}" if firing.detail else "")
        )
    if len(firings) > 1:
        stage.say("a later run on the same data reuses the first one's cached steps")
    first = firings[0]
    if first.run_id is None:
        return None
    return pipelines_store(ws.settings).get_run(first.run_id)
