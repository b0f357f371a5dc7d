"""Pipelines: steps composed by calling them, run as tracked, cached, resumable runs.

::

    from modelyard.pipelines import pipeline, step

    @step
    def load(days: int) -> pd.DataFrame: ...

    @step(retries=2, backoff="5s", timeout="30m")
    def train(sales: pd.DataFrame, depth: int) -> GradientBoostingRegressor: ...

    @step(outputs=("rmse", "report"))
    def evaluate(model, sales): ...

    @pipeline
    def retrain(days: int = 90, depth: int = 6):
        sales = load(days)
        model = train(sales, depth)
        rmse, report = evaluate(model, sales)
        return model

    run = retrain.run({"depth": 8}, executor="process")   # a PipelineRunRecord

Public API (stable; the sweeps, reproduce and scheduler work builds on it):

* ``step`` / ``pipeline`` (decorators), ``Step``, ``Pipeline``, ``Output`` (a handle a step
  call returns inside a pipeline; ``output.after(*others)`` orders without data), ``Graph``
  (``Pipeline.build(params)``: the DAG, with ``order()``). ``@step(name=None,
  outputs=None, retries=0, backoff=1.0, timeout=None, cache=True, trusted_outputs=False)``
  (durations as seconds or ``"90s"``, ``"10m"``); ``@pipeline(name=None)``.
* ``run_pipeline(pipeline, params=None, *, executor="process", settings=None,
  experiment=None, cause=None, name=None, target=None, workers=None, tags=None,
  cache=True) -> PipelineRunRecord``; ``Pipeline.run(params, **same)``. Raises
  ``PipelineFailed`` (``.run`` holds the record) when a step failed; the run is recorded
  either way. ``cache=False`` (``pipelines run --no-cache``; ``runs reproduce``) executes
  every step, none answered from the cache; a resume of that run bypasses it too.
* ``resume(run_id, *, executor=None, settings=None, workers=None, force=False)``.
* ``load_output(record, step_key, output="return", *, settings=None)``: a step's value.
* ``current_step() -> StepContext | None`` inside a step: the pipeline's run id, the step
  call's nested run id (its outputs are ``runs:/<step_run_id>/outputs/<name>``), key and
  attempt, and the run's ``settings`` — for steps that register what an earlier step
  stored.
* ``step_settings() -> Settings`` inside a step: the run's settings (absolute store URIs),
  so a step in a worker process or on Ray opens the stores the run uses (``modelyard
  --home X pipelines run``, ``modelyard --home X scheduler``), not what its own
  environment names; outside a step, ``load_settings()``. Steps open clients with it.
* ``load_target("pkg.module:NAME" | "/path/file.py:NAME") -> Pipeline``;
  ``target_of(pipeline) -> str``; ``parse_params(pipeline, ["k=v", ...])``.
* ``PipelineRegistry(settings)``: ``register(name, target, params=None, *, description=None,
  replace=False)``, ``get(name)``, ``list()``, ``unregister(name)``, ``start(name,
  params=None, *, cause=None, executor="process", experiment=None, workers=None,
  tags=None)``. A monitor alert's ``trigger`` is such a name: the scheduler calls
  ``start(trigger, cause={"kind": "alert", "alert_id": ..., "monitor": ..., "rule": ...})``.
* ``PipelineStore`` (``pipelines_store(settings)``): ``get_run``, ``list_runs``; records
  ``PipelineRunRecord`` (run_id, pipeline, target, params, executor, status RUNNING |
  FINISHED | FAILED, cause, error, started_at, ended_at, attempts, steps) and
  ``StepRecord`` (step_key, step_name, status PENDING | RUNNING | COMPLETED | CACHED |
  FAILED | SKIPPED, reason, attempts, duration_ms, cache_key, inputs, outputs, ...).
* Executors by name: ``local`` (in this process), ``process`` (spawned local workers; the
  default), ``ray`` (``pip install 'modelyard[ray]'``; ``MODELYARD_RAY_ADDRESS`` names an
  existing cluster, else a local instance is started). ``executors.base.Executor`` is the
  interface a new backend implements.

Recorded where:

* The pipeline run is a tracking run (experiment ``pipelines`` unless given) tagged
  ``modelyard.pipeline.name`` / ``.target`` / ``.executor`` / ``.cause`` (and ``.cache``
  ``false`` when run with ``cache=False``), the code it ran (``sources.source_tags``:
  ``modelyard.source.kind`` ``pipeline``, ``.target``, and the commit, root and dirtiness
  of the git repository holding the pipeline's file, for ``runs reproduce``), its params
  logged as params (JSON text), and the caller's ``tags`` (also on every step's run, so
  a team's required run tags are given once). Each step call is a nested run named by its
  step key (``train``, ``train_2`` for a second call) tagged ``modelyard.step.name``,
  ``.key``, ``.cache_key``, ``.status``, ``.duration_ms``, ``.attempts``, ``.reason``,
  ``.cached_from``.
* A step's numeric output is also a metric: on the step's run named by the output (the
  step's name for a single output), on the pipeline's run by step key
  (``weekly_mean_2``, ``evaluate.rmse`` for named outputs).
* Outputs are artifacts of the step's run, ``outputs/<output name>/<file>`` (``value.json``,
  ``value.parquet``, ``value.npy``, a model folder in the registry's format, or
  ``value.pkl`` only for ``trusted_outputs=True`` steps) — see ``values``.
* Lineage edges (``store.lineage``): ``run:<pipeline run>`` → ``step:<step run>``
  ("step"); ``step:<step run>`` → ``artifact:<output path>`` ("output", or
  "cached_output" for a cache hit); ``artifact:<output path>`` → ``step:<consumer>``
  ("input"). A ``step:`` node's id is its nested tracking run's id.
* Tables: ``pipelines.tables`` (migration 0012).
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

# Exports load on first use: a worker process, or a file that only decorates its
# functions, imports ``step`` and ``pipeline`` without the tracking client and SQLAlchemy.
_EXPORTS: dict[str, str] = {
    "Graph": "modelyard.pipelines.definitions",
    "Output": "modelyard.pipelines.definitions",
    "Pipeline": "modelyard.pipelines.definitions",
    "Step": "modelyard.pipelines.definitions",
    "pipeline": "modelyard.pipelines.definitions",
    "step": "modelyard.pipelines.definitions",
    "load_target": "modelyard.pipelines.loading",
    "parse_params": "modelyard.pipelines.loading",
    "target_of": "modelyard.pipelines.loading",
    "PipelineRegistry": "modelyard.pipelines.registry",
    "PipelineFailed": "modelyard.pipelines.runner",
    "load_output": "modelyard.pipelines.runner",
    "pipelines_store": "modelyard.pipelines.runner",
    "resume": "modelyard.pipelines.runner",
    "run_pipeline": "modelyard.pipelines.runner",
    "PipelineRunRecord": "modelyard.pipelines.store",
    "PipelineStore": "modelyard.pipelines.store",
    "StepRecord": "modelyard.pipelines.store",
    "StepContext": "modelyard.pipelines.tasks",
    "current_step": "modelyard.pipelines.tasks",
    "step_settings": "modelyard.pipelines.tasks",
}
__all__ = [
    "Graph",
    "Output",
    "Pipeline",
    "PipelineFailed",
    "PipelineRegistry",
    "PipelineRunRecord",
    "PipelineStore",
    "Step",
    "StepContext",
    "StepRecord",
    "current_step",
    "load_output",
    "load_target",
    "parse_params",
    "pipeline",
    "pipelines_store",
    "resume",
    "run_pipeline",
    "step",
    "step_settings",
    "target_of",
]


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'modelyard.pipelines' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted([*globals(), *__all__])


if TYPE_CHECKING:  # pragma: no cover - for type checkers and IDEs only
    from modelyard.pipelines.definitions import Graph, Output, Pipeline, Step, pipeline, step
    from modelyard.pipelines.loading import load_target, parse_params, target_of
    from modelyard.pipelines.registry import PipelineRegistry
    from modelyard.pipelines.runner import (
        PipelineFailed,
        load_output,
        pipelines_store,
        resume,
        run_pipeline,
    )
    from modelyard.pipelines.store import PipelineRunRecord, PipelineStore, StepRecord
    from modelyard.pipelines.tasks import StepContext, current_step, step_settings
