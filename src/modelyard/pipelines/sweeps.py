"""Hyperparameter sweeps on Optuna, tracked by modelyard: ``modelyard.sweep``.

::

    import modelyard

    def objective(params, trial):
        model = make_model(lr=params["lr"], depth=params["depth"])
        for epoch in range(20):
            loss = model.train_one_epoch()
            trial.log_metric("val_loss", loss, step=epoch)  # the pruner watches this
        return loss

    result = modelyard.sweep(
        objective,
        {"lr": {"type": "float", "low": 1e-3, "high": 0.3, "log": True},
         "depth": {"type": "int", "low": 2, "high": 8}},
        n_trials=64, metric="val_loss", direction="minimize", seed=7, parallel=2,
    )
    result.best_run_id, result.best_value, result.best_params

What is recorded: the sweep is a run (experiment ``sweeps`` unless given) with the config
as params and ``sweep.json``; every trial is a child run ``trial-N`` with its params, the
metrics it logged and its state (tag ``modelyard.sweep.state``: COMPLETE, PRUNED, FAIL);
the best trial's run is tagged ``modelyard.sweep.best=true`` and named on the sweep's run
(``modelyard.sweep.best_run``, metric ``best_<metric>``), so ``modelyard runs compare``
puts it beside the others.

Restarting: the study lives in a journal beside the metadata database (``sweep_journal``).
A sweep started again under the same ``name`` continues: ``n_trials`` counts the trials it
has, trials an interrupted process left running are marked failed and run again, and the
same run carries on. A restart with another space, direction, sampler, metric or seed is
refused: give it another name.

Parallel: ``parallel=N`` runs N workers through a pipeline executor (``process``: local
worker processes, the default; ``ray``: a Ray cluster, ``MODELYARD_RAY_ADDRESS``), each
taking a share of the trials and sharing the study through the journal. A parallel
sweep's objective must be importable by the workers: defined at the top level of a module
or script (guard the script's own call with ``if __name__ == "__main__":``).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from modelyard.errors import InvalidParameter, InvalidState, MissingExtra, NotImplementedFeature
from modelyard.tracking.entities import Metric, Param, Run, RunStatus, RunTag

TAG_SWEEP_RUN = "modelyard.sweep.run"
TAG_BEST_RUN = "modelyard.sweep.best_run"
ATTR_CONFIG = "modelyard.config"
ATTR_SWEEP_RUN = "modelyard.sweep_run_id"
CONFIG_ARTIFACT = "sweep.json"


@dataclass(frozen=True)
class TrialRecord:
    number: int
    run_id: str | None
    state: str
    value: float | None
    params: dict[str, Any]


@dataclass(frozen=True)
class SweepResult:
    """A sweep's outcome: its run, its trials, and the best one (None when no trial
    completed)."""

    name: str
    run_id: str
    direction: str
    metric: str
    trials: list[TrialRecord]
    best_run_id: str | None
    best_value: float | None
    best_params: dict[str, Any] | None
    resumed: bool

    def count(self, state: str) -> int:
        return sum(t.state == state for t in self.trials)


class NoTrialCompleted(InvalidState):
    """Every trial of a sweep failed or was pruned (the sweep's run is FAILED)."""


def require_optuna() -> Any:
    """Optuna, or ``MissingExtra`` naming the ``sweeps`` extra."""
    try:
        import optuna
    except ImportError as exc:
        raise MissingExtra("optuna", "sweeps", "A hyperparameter sweep") from exc
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    return optuna


def sweep(
    objective: Callable[..., Any],
    space: Mapping[str, Any],
    *,
    n_trials: int | None = None,
    direction: str = "minimize",
    sampler: str = "tpe",
    seed: int | None = None,
    parallel: int = 1,
    executor: str | None = None,
    pruner: str = "median",
    metric: str = "objective",
    name: str | None = None,
    experiment: str | None = None,
    target: str | None = None,
) -> SweepResult:
    """Search ``space`` for the params that minimise (or maximise) what ``objective``
    returns, with ``n_trials`` trials in all, each a tracked child run of the sweep's run.

    ``objective(params)`` or ``objective(params, trial)`` returns the value of ``metric``
    (or None after reporting it with ``trial.log_metric``). ``sampler``: tpe, random or
    grid (``n_trials`` defaults to the grid's size). ``pruner``: median, hyperband or
    none; it acts on the values of ``metric`` the objective logs per step. ``parallel``:
    workers (``executor``: process, the default when parallel > 1, or ray; local runs the
    trials in this process). ``name``: the sweep's name (default: the objective's); a
    sweep started again under one name continues. ``target``: how other processes load
    the objective (``FILE.py:NAME``), when it cannot be found from the function itself.

    Trials log to the fluent API's store (``modelyard.configure``, ``MODELYARD_*``).
    """
    optuna = require_optuna()
    from optuna.storages import JournalStorage

    from modelyard.pipelines.sweep_journal import SqlJournal
    from modelyard.pipelines.sweep_setup import build_sampler_and_pruner, make_config
    from modelyard.pipelines.sweep_trials import (
        TrialContext,
        check_not_loading,
        objective_target,
        run_trials,
        takes_trial,
    )
    from modelyard.tracking import fluent

    check_not_loading()

    if not callable(objective):
        raise InvalidParameter(
            f"objective must be a function, got {type(objective).__name__}", field="objective"
        )
    takes_trial(objective)  # refuses an objective that takes no argument, before any run
    config = make_config(
        name=name or str(getattr(objective, "__name__", "sweep")),
        space=space,
        n_trials=n_trials,
        direction=direction,
        sampler=sampler,
        pruner=pruner,
        metric=metric,
        seed=seed,
        parallel=parallel,
        executor=executor,
        experiment=experiment,
    )
    target = target or objective_target(objective)
    remote_workers = config.parallel > 1 and config.executor != "local"
    if remote_workers and target is None:
        raise InvalidParameter(
            "a parallel sweep's objective must be importable by its workers: define it at "
            "the top level of a module or script (not inside a function, not a lambda), "
            "or use executor='local'",
            field="objective",
        )
    client = fluent.get_client()
    settings = client.settings
    if settings.is_remote:
        raise NotImplementedFeature(
            "sweeps run against a local metadata store (MODELYARD_STORE_URI), not a "
            "tracking server: they keep their study beside the database"
        )
    journal = SqlJournal(settings, config.name, sole_writer=not remote_workers)
    resumed = journal.count() > 0
    storage = JournalStorage(journal)
    sampler_, pruner_ = build_sampler_and_pruner(config)
    if resumed:
        study = optuna.load_study(
            study_name=config.name, storage=storage, sampler=sampler_, pruner=pruner_
        )
        run_id = _continue(study, config, client)
        journal.flush()
        # n_trials (the total) and parallel may change from one start to the next
        client.log_dict(run_id, _replay_config(config), CONFIG_ARTIFACT)
    else:
        study = optuna.create_study(
            study_name=config.name,
            storage=storage,
            sampler=sampler_,
            pruner=pruner_,
            direction=config.direction,
        )
        run_id = _start(study, config, client, target)
        journal.flush()
    experiment_id = client.get_run(run_id).info.experiment_id
    done = _counted(study)
    remaining = max(config.n_trials - done, 0)
    context = TrialContext(
        config.name, run_id, experiment_id, config.metric, config.space, objective, journal.flush
    )
    try:
        if remaining and remote_workers:
            _run_on_workers(config, settings, run_id, experiment_id, target or "", remaining)
        elif remaining:
            run_trials(study, context, client, remaining)
    except KeyboardInterrupt:
        client.set_terminated(run_id, RunStatus.KILLED)
        raise
    except BaseException:
        client.set_terminated(run_id, RunStatus.FAILED)
        raise
    return _finish(study, config, client, run_id, resumed)


def _start(study: Any, config: Any, client: Any, target: str | None) -> str:
    from modelyard.pipelines.sources import KIND_SWEEP, source_tags
    from modelyard.pipelines.sweep_trials import TAG_SWEEP

    experiment = client.get_or_create_experiment(config.experiment)
    tags = {TAG_SWEEP: config.name, **(source_tags(target, KIND_SWEEP) if target else {})}
    run = client.create_run(experiment.experiment_id, run_name=config.name, tags=tags)
    run_id: str = run.info.run_id
    record = config.to_record()
    shown = {
        k: record[k]
        for k in ("n_trials", "direction", "sampler", "pruner", "metric", "seed", "parallel")
    }
    client.log_batch(
        run_id,
        params=[Param(f"sweep.{k}", "None" if v is None else v) for k, v in shown.items()],
    )
    client.log_dict(run_id, _replay_config(config), CONFIG_ARTIFACT)
    study.set_user_attr(ATTR_CONFIG, config.study_identity())
    study.set_user_attr(ATTR_SWEEP_RUN, run_id)
    return run_id


def _replay_config(config: Any) -> dict[str, Any]:
    """``sweep.json``: the config in ``sweep.yaml``'s own form (``runs reproduce`` hands
    it to ``modelyard sweep --config``)."""
    from modelyard.pipelines.sweep_space import space_to_spec

    record = config.to_record()
    record["space"] = space_to_spec(config.space)
    return record


def _continue(study: Any, config: Any, client: Any) -> str:
    """Check a restarted sweep against its study; fail the trials an interrupted process
    left running, and mark the sweep's run running again."""
    from optuna.trial import TrialState

    from modelyard.pipelines.sweep_trials import TAG_STATE

    attrs = study.user_attrs
    recorded = attrs.get(ATTR_CONFIG, {})
    wanted = config.study_identity()
    for key, value in wanted.items():
        if recorded.get(key) != value:
            raise InvalidParameter(
                f"sweep {config.name!r} exists with another {key} "
                f"({json.dumps(recorded.get(key))} there, {json.dumps(value)} now); "
                "give the new sweep another name",
                field=key,
            )
    run_id: str = attrs[ATTR_SWEEP_RUN]
    running = study.get_trials(deepcopy=False, states=(TrialState.RUNNING,))
    runs = trial_runs(client, run_id) if running else {}
    for trial in running:
        study.tell(trial.number, state=TrialState.FAIL)
        stale = runs.get(trial.number)
        if stale is not None:
            client.set_tag(stale.info.run_id, TAG_STATE, "FAIL")
            client.set_terminated(stale.info.run_id, RunStatus.KILLED)
    client.update_run(run_id, status=str(RunStatus.RUNNING))
    return run_id


def trial_runs(client: Any, sweep_run_id: str) -> dict[int, Run]:
    """Trial number -> its run (the trials' runs carry their number as a tag)."""
    from modelyard.pipelines.sweep_trials import TAG_TRIAL

    experiment_id = client.get_run(sweep_run_id).info.experiment_id
    found: dict[int, Run] = {}
    token: str | None = None
    while True:
        page = client.search_runs(
            [experiment_id],
            f"tags.`mlflow.parentRunId` = '{sweep_run_id}'",
            max_results=50_000,
            page_token=token,
        )
        for run in page.items:
            number = run.data.tags.get(TAG_TRIAL)
            if number is not None and number.isdigit():
                found[int(number)] = run
        token = page.next_page_token
        if not token:
            return found


def _counted(study: Any) -> int:
    """Trials that count towards ``n_trials``: completed and pruned ones (a failed trial
    is run again)."""
    from optuna.trial import TrialState

    return len(study.get_trials(deepcopy=False, states=(TrialState.COMPLETE, TrialState.PRUNED)))


def _shares(total: int, workers: int) -> list[int]:
    base, extra = divmod(total, workers)
    return [base + (1 if i < extra else 0) for i in range(workers) if base or i < extra]


def _run_on_workers(
    config: Any, settings: Any, run_id: str, experiment_id: str, target: str, remaining: int
) -> None:
    """Each worker a task of a pipeline executor; a worker that fails (its process
    killed, Ray gone) loses only the trials it had not run: a restart runs them."""
    from modelyard.pipelines.executors import open_executor
    from modelyard.pipelines.sources import source_file
    from modelyard.pipelines.tasks import FunctionRef, StepTask

    job = {
        "settings": settings.model_dump(mode="json", exclude_none=True),
        "config": config.to_record(),
        "sweep_run_id": run_id,
        "experiment_id": experiment_id,
        "target": target,
        "file": str(source_file(target) or "") or None,
    }
    function = FunctionRef("modelyard.pipelines.sweep_trials", "work")
    tasks = [
        StepTask(
            key=f"worker-{i}",
            step_name=f"sweep {config.name} worker {i}",
            function=function,
            artifacts_uri=settings.resolved_artifacts_uri(),
            arguments={"job": ("literal", {**job, "worker": i, "count": count})},
            outputs=None,
            trusted_outputs=False,
            timeout_s=None,
        )
        for i, count in enumerate(_shares(remaining, config.parallel))
    ]
    failures: list[str] = []
    with open_executor(config.executor or "process", settings, workers=config.parallel) as ex:
        pending = list(tasks)
        running = 0
        while pending or running:
            while pending and running < max(ex.capacity, 1):
                ex.submit(pending.pop(0))
                running += 1
            for result in ex.wait(None):
                running -= 1
                if not result.ok:
                    failures.append(f"{result.key}: {result.error}")
    if failures:
        raise InvalidState(
            f"sweep {config.name!r}: {len(failures)} worker(s) failed; run the sweep again "
            "to continue from the trials it has. " + " | ".join(failures)[:4000],
            field="parallel",
        )


def _finish(study: Any, config: Any, client: Any, run_id: str, resumed: bool) -> SweepResult:
    """Tag the best trial's run, record the summary on the sweep's run and end it."""
    from optuna.trial import TrialState

    from modelyard.pipelines.sweep_trials import TAG_BEST

    trials = study.get_trials(deepcopy=False)
    runs = trial_runs(client, run_id)
    records = [
        TrialRecord(
            t.number,
            runs[t.number].info.run_id if t.number in runs else None,
            t.state.name,
            t.value if t.state == TrialState.COMPLETE else None,
            dict(t.params),
        )
        for t in trials
    ]
    complete = [t for t in trials if t.state == TrialState.COMPLETE]
    best = study.best_trial if complete else None
    best_run = runs[best.number].info.run_id if best is not None and best.number in runs else None
    tags = [RunTag(TAG_BEST_RUN, best_run or "")]
    # A restart may have found a better trial: one run carries the tag.
    for other in runs.values():
        if other.data.tags.get(TAG_BEST) == "true" and other.info.run_id != best_run:
            client.set_tag(other.info.run_id, TAG_BEST, "false")
    if best_run:
        client.set_tag(best_run, TAG_BEST, "true")
    counts = {s: sum(r.state == s for r in records) for s in ("COMPLETE", "PRUNED", "FAIL")}
    metrics = [Metric(f"trials_{k.lower()}", float(v), _now(), 0) for k, v in counts.items()]
    if best is not None:
        metrics.append(Metric(f"best_{config.metric}", float(best.value), _now(), 0))
    client.log_batch(run_id, metrics=metrics, tags=tags)
    status = RunStatus.FINISHED if best is not None else RunStatus.FAILED
    client.set_terminated(run_id, status)
    if best is None:
        failed = next((r for r in records if r.state == "FAIL"), None)
        why = ""
        if failed is not None and failed.run_id:
            why = client.get_run(failed.run_id).data.tags.get("modelyard.sweep.error", "")
        raise NoTrialCompleted(
            f"sweep {config.name!r}: no trial completed ({counts['PRUNED']} pruned, "
            f"{counts['FAIL']} failed). {why}".strip(),
            field="objective",
        )
    return SweepResult(
        name=config.name,
        run_id=run_id,
        direction=config.direction,
        metric=config.metric,
        trials=records,
        best_run_id=best_run,
        best_value=float(best.value) if best is not None else None,
        best_params=dict(best.params) if best is not None else None,
        resumed=resumed,
    )


def _now() -> int:
    from modelyard.ids import now_ms

    return now_ms()
