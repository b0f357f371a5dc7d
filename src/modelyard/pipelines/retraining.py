"""The retraining pipeline, shipped: a new dataset version to a candidate in shadow and
canary, every stage a tracked, cached, lineage-linked step.

::

    load_dataset      the dataset version (newest, or the one given): its rows, its ref
    check_contract    the data contract, when the config names one: a violation stops here
    training_set      entity rows (keys, time, target) joined point-in-time with the
                      feature store's features; recorded with its lineage
    train             the configured estimator fitted on the rows before the holdout
    evaluate          time-aware cross-validation on those rows (validation.evaluate)
    register          the trained model saved with its signature and registered as the next
                      version of the model, its card filled (intended use, data, CV
                      results) — no alias, no stage
    gate              the validation gate against the champion on the holdout (the latest
                      days, never trained on); the verdict recorded on the version
    require_passed    stops the run when the gate failed
    roll_out          by the config: mirror requests to it (shadow), then a canary

Register it once, and start it from a schedule or an alert trigger by name::

    modelyard pipelines register retrain-demand modelyard.pipelines.retraining:retraining \\
        --param config=/srv/yard/retrain.yaml
    modelyard schedule create retrain-demand --cron "0 3 * * *"

Decisions:

* **A gate failure fails the run.** ``require_passed`` raises, so the run ends FAILED with
  the gate's summary as its reason; the full report is the ``gate`` step's output (and is
  recorded on the version: tags, card, ``validation/gates/...`` reports). A run that
  produced nothing for traffic is not a success, and FAILED is what alerting watches.
* **The candidate is registered before it is gated**, so the verdict lands on the version
  it judged — the verdict the registry's promotion policy reads. A failed candidate stays
  registered, with its failed verdict, and never gets an alias or traffic.
* **Nothing reaches traffic without the registry's policy.** Shadows never answer users.
  A canary passes the deployment's admission: in a protected environment the version needs
  its approvals (and a passed gate when the registry requires one), and an environment
  that requires another needs the version to have served there; until then ``roll_out``
  records the canary as ``held`` with the environment's reason and the run FINISHES —
  approve (or deploy it where required), then ``modelyard deploy canary``.
* Steps with effects outside the run are not cached where a repeat must redo them
  (``load_dataset`` resolves "newest" each run; ``gate`` re-reads the champion;
  ``roll_out`` re-applies); ``register`` is cached, so a repeat on the same data and model
  does not register a duplicate version.
* The steps open the stores of the run's settings (``tasks.step_settings``): those of the
  process that started the run (``modelyard --home X pipelines run``, ``modelyard --home
  X scheduler``), even in a worker process or on a Ray node whose environment names
  others.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import pandas as pd

from modelyard.errors import InvalidParameter, InvalidState
from modelyard.pipelines.definitions import pipeline, step
from modelyard.pipelines.retraining_config import RetrainingConfig, estimator_class, load_config
from modelyard.pipelines.tasks import current_step, step_settings

__all__ = ["ContractViolated", "GateFailed", "retraining"]

EXPERIMENT = "retraining"


class ContractViolated(InvalidState):
    """The new dataset version breaks its data contract."""


class GateFailed(InvalidState):
    """The candidate did not pass its gate against the champion."""


def _config(path: str) -> RetrainingConfig:
    return load_config(path)


def _step_run() -> str:
    context = current_step()
    if context is None:
        raise InvalidState("this function runs as a step of the retraining pipeline")
    return context.step_run_id


def _link_step_to(version: Any, step_run: str, settings: Any) -> None:
    """``step:<register run> --produced--> the version``: the registry records the run as
    ``run:<id>``; the pipeline's artifact edges name the same run ``step:<id>``, and this
    edge joins the two, so the version's upstream reaches the train step and its data."""
    from modelyard.store.lineage import node, record_edges
    from modelyard.tracking.backends import database_for

    target = node("model", version.name, str(version.version))
    with database_for(settings).write() as conn:
        record_edges(conn, [(node("step", step_run), target, "produced")])


def _features(frame: pd.DataFrame, config: RetrainingConfig) -> list[str]:
    ts = config.spec.training_set
    skip = {*ts.keys, ts.timestamp, ts.target}
    return [c for c in frame.columns if c not in skip]


def _split(frame: pd.DataFrame, config: RetrainingConfig) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(rows before the holdout, the holdout: the latest ``evaluation.holdout``)."""
    times = pd.to_datetime(frame[config.spec.training_set.timestamp], utc=True)
    cut = times.max() - pd.Timedelta(seconds=config.holdout_s)
    before, after = frame[times <= cut], frame[times > cut]
    if before.empty or after.empty:
        raise InvalidParameter(
            f"evaluation.holdout {config.spec.evaluation.holdout!r} leaves "
            f"{len(before)} rows to train on and {len(after)} to gate on; both need rows",
            field="evaluation.holdout",
        )
    return before.reset_index(drop=True), after.reset_index(drop=True)


# -- the steps -----------------------------------------------------------------------------


@step(outputs=("table", "dataset"), cache=False)
def load_dataset(config: str, dataset: str | None = None) -> tuple[pd.DataFrame, dict[str, Any]]:
    """The dataset version to train on (``dataset``: ``sales@4``; default the newest of the
    config's dataset), recorded as this step's input."""
    from modelyard.data.client import DataClient

    spec = _config(config).spec
    ref = dataset or spec.dataset
    if ref.partition("@")[0] != spec.dataset:
        raise InvalidParameter(
            f"dataset {ref!r} is not a version of the config's dataset {spec.dataset!r}",
            field="dataset",
        )
    client = DataClient.from_settings(step_settings())
    version = client.resolve(ref)
    client.log_input(_step_run(), version, context="training")
    described = {"name": version.name, "version": version.version, "digest": version.digest}
    return client.load(version), {**described, "ref": version.ref}


@step(cache=False)
def check_contract(table: pd.DataFrame, dataset: dict[str, Any], config: str) -> dict[str, Any]:
    """The data contract's verdict; a failed contract stops the run (ContractViolated)."""
    from modelyard.data.client import DataClient

    loaded = _config(config)
    if loaded.contract is None:
        return {"checked": False, "passed": True, "summary": "no contract configured"}
    result = DataClient.from_settings(step_settings()).check(table, loaded.contract)
    if not result.passed:
        raise ContractViolated(f"{dataset['ref']} breaks its contract: {result.summary()}")
    return {"checked": True, "passed": True, "summary": result.summary()}


@step(outputs=("frame", "training_set"))
def training_set(
    table: pd.DataFrame, dataset: dict[str, Any], contract: dict[str, Any], config: str
) -> tuple[pd.DataFrame, dict[str, Any]]:
    """The entity rows of the dataset version joined point-in-time with the feature
    store's features; recorded (its views and sources) and linked to the dataset."""
    from modelyard.data.client import dataset_node
    from modelyard.features.client import FeatureStore
    from modelyard.features.training_sets import training_set_node
    from modelyard.store.lineage import record_edges

    del contract  # ordering only: the contract passed before features are joined
    ts = _config(config).spec.training_set
    entity = table[[*ts.keys, ts.timestamp, ts.target]].copy()
    entity[ts.timestamp] = pd.to_datetime(entity[ts.timestamp], utc=True)
    store = FeatureStore.from_settings(step_settings())
    try:
        built = store.get_training_set(
            entity,
            features=list(ts.features) if ts.features else None,
            service=ts.service,
            timestamp_column=ts.timestamp,
            name=f"{dataset['name']}-training",
        )
        assert built.training_set_id is not None
        with store.db.write() as conn:
            record_edges(
                conn,
                [
                    (
                        dataset_node(dataset["name"], dataset["digest"]),
                        training_set_node(built.training_set_id),
                        "input",
                    )
                ],
            )
    finally:
        store.close()
    frame = built.to_df().reset_index(drop=True)
    return frame, {"training_set_id": built.training_set_id, "rows": len(frame)}


@step
def train(frame: pd.DataFrame, training: dict[str, Any], config: str) -> Any:
    """The estimator fitted on the rows before the holdout (stored in the registry's
    format as this step's output), linked to the training set it learnt from."""
    from modelyard.features.training_sets import training_set_node
    from modelyard.store.lineage import node, record_edges
    from modelyard.tracking.backends import database_for

    loaded = _config(config)
    spec = loaded.spec
    before, _ = _split(frame, loaded)
    features = _features(frame, loaded)
    try:
        model = estimator_class(spec.model.estimator)(**spec.model.params)
    except TypeError as exc:
        raise InvalidParameter(f"model.params: {exc}", field="model.params") from None
    model.fit(before[features], before[spec.training_set.target])
    step_run = _step_run()
    with database_for(step_settings()).write() as conn:
        # Both names of this step's run: ``run:`` as tracking spells it, ``step:`` as the
        # pipeline's artifact edges do — so a walk from either reaches the training set.
        ts_node = training_set_node(training["training_set_id"])
        record_edges(
            conn,
            [(ts_node, node("run", step_run), "input"), (ts_node, node("step", step_run), "input")],
        )
    return model


@step
def evaluate(frame: pd.DataFrame, config: str) -> dict[str, Any]:
    """Time-aware cross-validation of a fresh estimator on the rows before the holdout:
    each fold trains on earlier days and validates on later ones."""
    from modelyard.validation.evaluate import evaluate as run_evaluation

    loaded = _config(config)
    spec = loaded.spec
    before, _ = _split(frame, loaded)
    cv = {"kind": "time", "column": spec.training_set.timestamp, **spec.evaluation.cv}
    estimator = estimator_class(spec.model.estimator)(**spec.model.params)
    result = run_evaluation(
        estimator,
        before[[*_features(frame, loaded), spec.training_set.timestamp, spec.training_set.target]],
        spec.training_set.target,
        "regression" if not hasattr(estimator, "predict_proba") else "classification",
        cv=cv,
        refit=False,
        log=False,
    )
    return {
        "method": f"time-aware CV on {spec.training_set.timestamp}: {cv}",
        "rows": result.rows,
        "metrics": {k: v["value"] for k, v in result.to_dict()["metrics"].items()},
    }


@step
def register(
    model: Any,
    frame: pd.DataFrame,
    dataset: dict[str, Any],
    training: dict[str, Any],
    evaluation: dict[str, Any],
    config: str,
) -> dict[str, Any]:
    """The trained model as the next version of the configured model, with its card: saved
    with its signature as this step's ``model`` artifact, then registered from there."""
    import tempfile
    from pathlib import Path

    from modelyard.registry.client import RegistryClient
    from modelyard.registry.formats.flavors import save_model
    from modelyard.tracking.client import TrackingClient

    loaded = _config(config)
    spec = loaded.spec
    step_run = _step_run()
    context = current_step()
    settings = step_settings()
    example = frame[_features(frame, loaded)].head(5)
    with tempfile.TemporaryDirectory(prefix="modelyard-retraining-") as tmp:
        folder = Path(tmp) / "model"
        save_model(model, folder, input_example=example, run_id=step_run)
        with TrackingClient.from_settings(settings) as tracking:
            tracking.log_artifacts(step_run, folder, "model")
    registry = RegistryClient.from_settings(settings)
    version = registry.register_model(
        f"runs:/{step_run}/model",
        spec.model.name,
        description=f"retrained on {dataset['ref']} by the retraining pipeline",
        tags={
            "modelyard.retraining.dataset": dataset["ref"],
            "modelyard.retraining.training_set": training["training_set_id"],
            "modelyard.retraining.pipeline_run": context.run_id if context else "",
        },
    )
    _link_step_to(version, step_run, settings)
    registry.update_card(
        spec.model.name,
        version.version,
        intended_use=spec.model.intended_use,
        limitations=spec.model.limitations,
        validation_methodology=evaluation["method"],
        validation_results={f"cv.{k}": v for k, v in evaluation["metrics"].items()},
        training_data=[
            {"name": dataset["name"], "digest": dataset["digest"], "context": "training"}
        ],
    )
    return {"name": version.name, "version": int(version.version), "uri": version.uri}


@step(cache=False)
def gate(version: dict[str, Any], frame: pd.DataFrame, config: str) -> dict[str, Any]:
    """The gate policy applied to the candidate and the champion on the holdout; the
    verdict and reports recorded on the candidate version."""
    from modelyard.registry.client import RegistryClient
    from modelyard.validation.gates import GatePolicy, record_gate, run_gate

    loaded = _config(config)
    spec = loaded.spec
    _, holdout = _split(frame, loaded)
    features = _features(frame, loaded)
    policy = GatePolicy.from_yaml(loaded.gate)
    if policy.features is None:
        policy = dataclasses.replace(policy, features=tuple(features))
    if policy.target != spec.training_set.target:
        raise InvalidParameter(
            f"the gate's target {policy.target!r} is not training_set.target "
            f"{spec.training_set.target!r}",
            field="gate",
        )
    columns = list(dict.fromkeys([*features, *policy.slices, spec.training_set.target]))
    registry = RegistryClient.from_settings(step_settings())
    report = run_gate(
        policy,
        version["uri"],
        holdout[columns],
        champion=f"models:/{spec.model.name}@{spec.champion}",
        registry=registry,
    )
    folder = record_gate(report, registry)
    return {
        "passed": report.passed,
        "summary": report.summary(),
        "report": folder,
        "details": report.to_dict(),
    }


@step(retries=0)
def require_passed(verdict: dict[str, Any], version: dict[str, Any]) -> dict[str, Any]:
    """The version, once its gate passed; otherwise the run stops here, saying why."""
    if not verdict["passed"]:
        raise GateFailed(
            f"{version['uri']} failed its gate: {verdict['summary']} "
            f"(report: the gate step's output, and {verdict['report']})"
        )
    return version


@step(cache=False)
def roll_out(version: dict[str, Any], config: str) -> dict[str, Any]:
    """Shadow, then a canary, as the config says; a canary the deployment's environment
    does not admit yet (approvals missing) is recorded as held, with the reason."""
    from modelyard.durations import parse_duration
    from modelyard.serving.deployments import DeploymentService

    rollout = _config(config).spec.rollout
    if rollout is None:
        return {"deployment": None, "shadow": None, "canary": None}
    deployments = DeploymentService.from_settings(step_settings())
    done: dict[str, Any] = {"deployment": rollout.deployment, "shadow": None, "canary": None}
    if rollout.shadow is not None:
        deployments.shadow(rollout.deployment, [version["uri"]], percent=rollout.shadow)
        done["shadow"] = {"percent": rollout.shadow, "revision": None}
        done["shadow"]["revision"] = deployments.current_revision(rollout.deployment)
    if rollout.canary is not None:
        interval = parse_duration(rollout.canary.interval, "rollout.canary.interval")
        try:
            deployments.canary(
                rollout.deployment,
                version["uri"],
                steps=list(rollout.canary.steps),
                interval_s=interval.total_seconds(),
                reason=f"retraining: {version['uri']}",
            )
        except InvalidState as exc:
            done["canary"] = {"status": "held", "reason": exc.message}
        else:
            revision = deployments.current_revision(rollout.deployment)
            done["canary"] = {"status": "started", "revision": revision}
    return done


@pipeline
def retraining(config: str, dataset: str | None = None):
    """Retrain, evaluate, gate and roll out per ``config`` (a YAML file; see the module)."""
    table, version = load_dataset(config, dataset)
    contract = check_contract(table, version, config)
    frame, training = training_set(table, version, contract, config)
    model = train(frame, training, config)
    metrics = evaluate(frame, config)
    candidate = register(model, frame, version, training, metrics, config)
    verdict = gate(candidate, frame, config)
    passed = require_passed(verdict, candidate)
    return roll_out(passed, config)
