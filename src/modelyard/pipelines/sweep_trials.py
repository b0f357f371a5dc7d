"""Running a sweep's trials: each one a child run of the sweep's run, in this process or in
a worker (``work``, what a pipeline executor runs).

The objective sees its trial as ``objective(params)`` or ``objective(params, trial)``:
``params`` maps each parameter of the space to this trial's value, and ``trial`` (a
``SweepTrial``) logs intermediate values — ``trial.log_metric("val_loss", v, step=epoch)``
logs the metric on the trial's run and, for the sweep's metric, reports it to the pruner,
which stops an unpromising trial there (``TrialPruned`` is raised out of ``log_metric``;
the sweep catches it). While a trial runs its run is the active one, so
``modelyard.log_metric`` and friends log to it too.
"""

from __future__ import annotations

import contextvars
import importlib.util
import inspect
import math
import sys
import traceback
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import optuna
from optuna.trial import Trial, TrialState

from modelyard.config import Settings
from modelyard.errors import InvalidParameter, InvalidState, NotFound
from modelyard.tracking import fluent
from modelyard.tracking.client import TrackingClient
from modelyard.tracking.entities import Metric, Param, RunStatus, RunTag

TrialPruned = optuna.TrialPruned

TAG_SWEEP = "modelyard.sweep.name"
TAG_TRIAL = "modelyard.sweep.trial"
TAG_STATE = "modelyard.sweep.state"
TAG_BEST = "modelyard.sweep.best"
TAG_ERROR = "modelyard.sweep.error"
_ERROR_CHARS = 4000


@dataclass
class SweepTrial:
    """What the objective knows of its trial: its number, its run, its params, and the
    way to log values that the pruner watches."""

    number: int
    run_id: str
    params: dict[str, Any]
    metric: str
    _trial: Trial = field(repr=False)
    _client: TrackingClient = field(repr=False)
    last: tuple[int, float] | None = None

    def log_metric(self, key: str, value: float, step: int = 0) -> None:
        """Log ``key`` on the trial's run. For the sweep's metric, also report it to the
        pruner: raises ``TrialPruned`` when the trial is not worth finishing."""
        self._client.log_metric(self.run_id, key, value, step)
        if key != self.metric:
            return
        self.last = (int(step), float(value))
        self._trial.report(float(value), int(step))
        if self._trial.should_prune():
            raise TrialPruned(f"pruned at step {step}: {key}={value:.6g}")

    def report(self, value: float, step: int) -> None:
        """``log_metric(<the sweep's metric>, value, step)``."""
        self.log_metric(self.metric, value, step)


@dataclass(frozen=True)
class TrialContext:
    """What every trial of one sweep shares."""

    sweep: str
    sweep_run_id: str
    experiment_id: str
    metric: str
    space: Mapping[str, Any]
    objective: Callable[..., Any]
    #: Writes what the study's journal holds (``SqlJournal.flush``): once a trial has
    #: started, once it has ended.
    flush: Callable[[], None] = lambda: None


def takes_trial(objective: Callable[..., Any]) -> bool:
    """Whether the objective takes ``(params, trial)`` rather than ``(params)``."""
    try:
        parameters = list(inspect.signature(objective).parameters.values())
    except (TypeError, ValueError):
        return False
    positional = [
        p
        for p in parameters
        if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD, p.VAR_POSITIONAL)
    ]
    if any(p.kind == p.VAR_POSITIONAL for p in positional):
        return True
    if not positional:
        raise InvalidParameter(
            "the objective takes no argument; define it as objective(params) or "
            "objective(params, trial)",
            field="objective",
        )
    return len(positional) >= 2


def run_trials(
    study: optuna.Study, context: TrialContext, client: TrackingClient, count: int
) -> int:
    """Run ``count`` trials one after the other; returns how many ran. A failing objective
    fails its trial only; Ctrl-C marks the trial and its run KILLED and stops.

    ``client`` is the fluent API's client. The trials run in a context of their own (the
    fluent API's active runs are context variables): the sweep's run is made active
    there, so each trial's run is created nested under it in one step, and nothing leaks
    into the caller's context."""
    with_trial = takes_trial(context.objective)

    def trials() -> int:
        fluent.start_run(run_id=context.sweep_run_id, nested=True)
        for _ in range(count):
            run_one(study, context, client, with_trial)
        return count

    return contextvars.Context().run(trials)


def run_one(
    study: optuna.Study, context: TrialContext, client: TrackingClient, with_trial: bool
) -> TrialState:
    """One trial, in a context where the sweep's run is the active one."""
    trial = study.ask(dict(context.space))
    context.flush()  # the trial is RUNNING in the study before its objective runs
    params = dict(trial.params)
    active = fluent.start_run(
        experiment_id=context.experiment_id,
        run_name=f"trial-{trial.number}",
        nested=True,
        tags={TAG_SWEEP: context.sweep, TAG_TRIAL: str(trial.number)},
    )
    run_id = active.info.run_id
    client.log_batch(run_id, params=[Param(k, v) for k, v in params.items()])
    handle = SweepTrial(trial.number, run_id, params, context.metric, trial, client)
    error: str | None = None
    value: float | None = None
    state = TrialState.COMPLETE
    try:
        returned = context.objective(params, handle) if with_trial else context.objective(params)
        value = _value(returned, handle)
    except TrialPruned:
        state = TrialState.PRUNED
    except KeyboardInterrupt:
        study.tell(trial, state=TrialState.FAIL)
        context.flush()
        client.set_tag(run_id, TAG_STATE, "FAIL")
        fluent.end_run(RunStatus.KILLED, _run=active)
        raise
    except Exception as exc:
        state = TrialState.FAIL
        error = "".join(traceback.format_exception(exc)[-8:]).strip()[-_ERROR_CHARS:]
    metrics: list[Metric] = []
    if value is not None and (handle.last is None or handle.last[1] != value):
        step = handle.last[0] if handle.last is not None else 0
        metrics.append(Metric(context.metric, value, _now(), step))
    tags = [RunTag(TAG_STATE, state.name)]
    if error is not None:
        tags.append(RunTag(TAG_ERROR, error))
    client.log_batch(run_id, metrics=metrics, tags=tags)
    if state == TrialState.COMPLETE:
        study.tell(trial, value)
    else:
        study.tell(trial, state=state)
    context.flush()
    fluent.end_run(RunStatus.FAILED if error else RunStatus.FINISHED, _run=active)
    return state


def _now() -> int:
    from modelyard.ids import now_ms

    return now_ms()


def _value(returned: Any, handle: SweepTrial) -> float:
    if returned is None and handle.last is not None:
        return handle.last[1]
    if isinstance(returned, bool) or not isinstance(returned, (int, float)):
        raise InvalidParameter(
            f"the objective returned {returned!r}; return a number (the value of "
            f"{handle.metric!r}), or report it with trial.log_metric before returning None",
            field="objective",
        )
    value = float(returned)
    if not math.isfinite(value):
        raise InvalidParameter(f"the objective returned {value}", field="objective")
    return value


# -- loading an objective in another process -----------------------------------------------


def objective_target(objective: Callable[..., Any]) -> str | None:
    """How another process loads ``objective``: ``module:NAME`` for an importable module,
    ``/abs/path/file.py:NAME`` for a script or a file loaded by path; None for a function
    defined inside another function (it runs only in this process)."""
    qualname = getattr(objective, "__qualname__", None)
    module_name = getattr(objective, "__module__", None)
    if not qualname or not module_name or "<locals>" in qualname or "<lambda>" in qualname:
        return None
    module = sys.modules.get(module_name)
    file = getattr(module, "__file__", None)
    by_file = f"{Path(file).resolve()}:{qualname}" if file else None
    if module_name == "__main__" or module_name.startswith("modelyard_pipeline_"):
        return by_file
    try:
        importable = importlib.util.find_spec(module_name) is not None
    except (ImportError, ValueError):
        importable = False
    return f"{module_name}:{qualname}" if importable or by_file is None else by_file


def load_objective(target: str, file: str | None = None) -> Callable[..., Any]:
    """The function ``target`` names (``FILE.py:NAME`` or ``module:NAME``). ``file``: the
    module's file, loaded under the module's name when the name does not import here (a
    test module, a folder not on this worker's path)."""
    from modelyard.pipelines.loading import file_module_name
    from modelyard.pipelines.tasks import load_file_module

    source, sep, name = target.rpartition(":")
    if not sep or not source or not name:
        raise InvalidParameter(
            f"objective {target!r} must be FILE.py:NAME or package.module:NAME", field="target"
        )
    if source.endswith(".py"):
        path = Path(source).resolve()
        if not path.is_file():
            raise NotFound(f"objective file {source!r} does not exist", field="target")
        module = load_file_module(path, file_module_name(path))
    else:
        try:
            module = importlib.import_module(source)
        except ImportError as exc:
            if file is None or not Path(file).is_file():
                raise NotFound(f"cannot import {source!r}: {exc}", field="target") from None
            module = load_file_module(Path(file), source)
    found: Any = module
    for part in name.split("."):
        found = getattr(found, part, None)
    if not callable(found):
        what = "nothing" if found is None else f"a {type(found).__name__}"
        raise InvalidParameter(f"{name!r} in {source!r} is {what}, not a function", field="target")
    return getattr(found, "fn", found)  # a @step's plain function


#: The sweep whose objective a worker is loading: a script that calls ``modelyard.sweep``
#: at its top level, unguarded, would start the sweep again inside every worker.
in_worker: contextvars.ContextVar[str | None] = contextvars.ContextVar(
    "modelyard_sweep_worker", default=None
)


def check_not_loading() -> None:
    """Refuse a sweep started while a worker loads an objective's file."""
    loading = in_worker.get()
    if loading is not None:
        raise InvalidState(
            f"modelyard.sweep was called while a worker of sweep {loading!r} loaded the "
            "objective's file: put the script's own call under "
            '`if __name__ == "__main__":`',
            field="objective",
        )


def work(job: dict[str, Any]) -> dict[str, int]:
    """A worker's share of a sweep (run by a pipeline executor in another process or on a
    Ray worker): open the sweep's study from its journal and run ``job["count"]`` trials."""
    from optuna.storages import JournalStorage

    from modelyard.pipelines.sweep_journal import SqlJournal
    from modelyard.pipelines.sweep_setup import build_sampler_and_pruner, config_from_record

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    settings = Settings(**job["settings"])
    config = config_from_record(job["config"])
    loading = in_worker.set(config.name)
    try:
        objective = load_objective(job["target"], job.get("file"))
    finally:
        in_worker.reset(loading)
    client = fluent.configure(settings)
    sampler, pruner = build_sampler_and_pruner(config, worker=int(job["worker"]))
    study = optuna.load_study(
        study_name=config.name,
        storage=JournalStorage(SqlJournal(settings, config.name)),
        sampler=sampler,
        pruner=pruner,
    )
    context = TrialContext(
        config.name,
        job["sweep_run_id"],
        job["experiment_id"],
        config.metric,
        config.space,
        objective,
    )
    try:
        ran = run_trials(study, context, client, int(job["count"]))
    finally:
        client.close()
    return {"trials": ran}
