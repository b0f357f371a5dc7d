"""The fluent tracking API (``modelyard.start_run``, ``log_metric``…), MLflow-shaped.

Its only state is the active experiment and the stack of active runs, kept in
``contextvars`` so that threads and asyncio tasks each have their own; every call
delegates to one ``TrackingClient`` built from the settings on first use. That client is
closed (its background logging written, its connections closed) when ``configure``
replaces it and when the interpreter exits.
"""

from __future__ import annotations

import atexit
import sys
import threading
from collections.abc import Mapping, Sequence
from contextvars import ContextVar
from pathlib import Path
from typing import Any

from modelyard.config import Settings, load_settings
from modelyard.errors import InvalidParameter, InvalidState, NotFound
from modelyard.ids import now_ms
from modelyard.tracking.client import TrackingClient
from modelyard.tracking.entities import (
    DatasetInput,
    Experiment,
    Metric,
    Param,
    Run,
    RunStatus,
    RunTag,
    ViewType,
)
from modelyard.tracking.sql_experiments import DEFAULT_EXPERIMENT_ID

_client: TrackingClient | None = None
_client_lock = threading.Lock()
_active_runs: ContextVar[tuple[ActiveRun, ...]] = ContextVar("modelyard_active_runs", default=())
_active_experiment: ContextVar[str | None] = ContextVar("modelyard_experiment", default=None)
_last_run: ContextVar[str | None] = ContextVar("modelyard_last_run", default=None)


class ActiveRun:
    """The run that fluent calls log to; as a context manager it ends the run.

    Leaving the block normally marks it FINISHED, an exception marks it FAILED, and
    Ctrl-C marks it KILLED.
    """

    def __init__(self, run: Run, async_logging: bool) -> None:
        self.info = run.info
        self.async_logging = async_logging

    @property
    def data(self) -> Any:
        return get_client().get_run(self.info.run_id).data

    def __enter__(self) -> ActiveRun:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, *_: object) -> None:
        if exc_type is None:
            status = RunStatus.FINISHED
        elif issubclass(exc_type, KeyboardInterrupt):
            status = RunStatus.KILLED
        else:
            status = RunStatus.FAILED
        end_run(status, _run=self)

    def __repr__(self) -> str:
        return f"<ActiveRun {self.info.run_id} {self.info.run_name!r}>"


def configure(settings: Settings | None = None, **overrides: Any) -> TrackingClient:
    """Point the fluent API at other stores, e.g. ``configure(home="/tmp/yard")``."""
    global _client
    with _client_lock:
        if _client is not None:
            _client.close()
        _client = TrackingClient.from_settings(settings or load_settings(**overrides))
        _active_experiment.set(None)
        return _client


def set_tracking_uri(uri: str) -> TrackingClient:
    """An http(s) server address, or a database URI for a local store."""
    if uri.startswith(("http://", "https://")):
        return configure(tracking_uri=uri)
    return configure(store_uri=uri)


def get_client() -> TrackingClient:
    global _client
    if _client is None:
        with _client_lock:
            if _client is None:
                _client = TrackingClient.from_settings(load_settings())
    return _client


@atexit.register
def _close_at_exit() -> None:
    with _client_lock:
        client = _client
    if client is None:
        return
    try:
        client.close()
    except Exception as exc:  # the process is ending: report, don't raise
        print(f"modelyard: closing the tracking client at exit failed: {exc}", file=sys.stderr)


def set_experiment(
    experiment_name: str | None = None, experiment_id: str | None = None
) -> Experiment:
    """Make an experiment the target of new runs, creating it by name if needed."""
    client = get_client()
    if (experiment_name is None) == (experiment_id is None):
        raise InvalidParameter(
            "give exactly one of experiment_name or experiment_id", field="experiment_name"
        )
    if experiment_id is not None:
        experiment = client.get_experiment(str(experiment_id))
    else:
        experiment = client.get_or_create_experiment(experiment_name)  # type: ignore[arg-type]
    if experiment.lifecycle_stage != "active":
        raise InvalidState(
            f"experiment {experiment.name!r} is deleted; restore it with "
            f"`modelyard experiments restore {experiment.experiment_id}`",
            field="experiment_name",
        )
    _active_experiment.set(experiment.experiment_id)
    return experiment


def start_run(
    run_id: str | None = None,
    experiment_id: str | None = None,
    run_name: str | None = None,
    nested: bool = False,
    tags: Mapping[str, Any] | None = None,
    description: str | None = None,
    async_logging: bool | None = None,
) -> ActiveRun:
    """Start (or resume, with ``run_id``) a run and make it the active one.

    ``async_logging=True`` queues metrics, params and tags and writes them in the
    background; they are flushed when the run ends and at process exit.
    """
    client = get_client()
    stack = _active_runs.get()
    if stack and not nested:
        raise InvalidState(
            f"run {stack[-1].info.run_id} is already active; end it first or pass nested=True",
            field="nested",
        )
    use_async = client.settings.async_logging if async_logging is None else async_logging
    if run_id is not None:
        run = client.get_run(run_id)
        if run.info.lifecycle_stage != "active":
            raise InvalidState(f"run {run_id} is deleted; restore it first", field="run_id")
        client.update_run(run_id, status=RunStatus.RUNNING)
        run = client.get_run(run_id)
    else:
        target = experiment_id or _active_experiment.get() or DEFAULT_EXPERIMENT_ID
        all_tags = dict(tags or {})
        if description is not None:
            all_tags["mlflow.note.content"] = description
        run = client.create_run(
            str(target),
            run_name=run_name,
            tags=all_tags,
            parent_run_id=stack[-1].info.run_id if stack else None,
        )
    active = ActiveRun(run, use_async)
    _active_runs.set((*stack, active))
    return active


def end_run(status: RunStatus | str = RunStatus.FINISHED, *, _run: ActiveRun | None = None) -> None:
    """End the active run (flushing its queued writes first)."""
    stack = _active_runs.get()
    if not stack:
        return
    run = _run or stack[-1]
    try:
        get_client().set_terminated(run.info.run_id, status)
    finally:
        _active_runs.set(tuple(r for r in stack if r is not run))
        _last_run.set(run.info.run_id)


def active_run() -> ActiveRun | None:
    stack = _active_runs.get()
    return stack[-1] if stack else None


def last_active_run() -> Run | None:
    run = active_run()
    run_id = run.info.run_id if run else _last_run.get()
    return get_client().get_run(run_id) if run_id else None


def _require_run() -> ActiveRun:
    run = active_run()
    if run is None:
        raise InvalidState(
            "no active run: wrap the code in `with modelyard.start_run():`", field="run"
        )
    return run


def _sync(run: ActiveRun, synchronous: bool | None) -> bool:
    return not run.async_logging if synchronous is None else synchronous


def log_metric(
    key: str,
    value: float,
    step: int | None = None,
    timestamp: int | None = None,
    synchronous: bool | None = None,
) -> None:
    run = _require_run()
    get_client().log_metric(
        run.info.run_id, key, value, step or 0, timestamp, synchronous=_sync(run, synchronous)
    )


def log_metrics(
    metrics: Mapping[str, float], step: int | None = None, synchronous: bool | None = None
) -> None:
    run = _require_run()
    ts = now_ms()
    points = [Metric(k, v, ts, step or 0) for k, v in metrics.items()]  # type: ignore[arg-type]
    get_client().log_batch(run.info.run_id, metrics=points, synchronous=_sync(run, synchronous))


def log_param(key: str, value: Any, synchronous: bool | None = None) -> Any:
    run = _require_run()
    get_client().log_param(run.info.run_id, key, value, synchronous=_sync(run, synchronous))
    return value


def log_params(params: Mapping[str, Any], synchronous: bool | None = None) -> None:
    run = _require_run()
    items = [Param(k, v) for k, v in params.items()]
    get_client().log_batch(run.info.run_id, params=items, synchronous=_sync(run, synchronous))


def set_tag(key: str, value: Any, synchronous: bool | None = None) -> None:
    run = _require_run()
    get_client().set_tag(run.info.run_id, key, value, synchronous=_sync(run, synchronous))


def set_tags(tags: Mapping[str, Any], synchronous: bool | None = None) -> None:
    run = _require_run()
    items = [RunTag(k, v) for k, v in tags.items()]
    get_client().log_batch(run.info.run_id, tags=items, synchronous=_sync(run, synchronous))


def flush() -> None:
    """Wait until every queued asynchronous write is stored."""
    get_client().flush()


def log_artifact(local_path: str | Path, artifact_path: str | None = None) -> str:
    return get_client().log_artifact(_require_run().info.run_id, local_path, artifact_path)


def log_artifacts(local_dir: str | Path, artifact_path: str | None = None) -> str:
    return get_client().log_artifacts(_require_run().info.run_id, local_dir, artifact_path)


def log_text(text: str, artifact_file: str) -> str:
    return get_client().log_text(_require_run().info.run_id, text, artifact_file)


def log_dict(dictionary: Mapping[str, Any], artifact_file: str) -> str:
    return get_client().log_dict(_require_run().info.run_id, dictionary, artifact_file)


def log_figure(figure: Any, artifact_file: str) -> str:
    return get_client().log_figure(_require_run().info.run_id, figure, artifact_file)


def log_input(dataset: Any, context: str = "training", name: str | None = None) -> DatasetInput:
    """Record that the active run read ``dataset`` (DataFrame, path or DatasetInput)."""
    return get_client().log_input(_require_run().info.run_id, dataset, context, name)


def search_runs(
    experiment_ids: Sequence[str] | None = None,
    filter_string: str | None = None,
    run_view_type: ViewType | str = ViewType.ACTIVE_ONLY,
    max_results: int = 100_000,
    order_by: Sequence[str] | None = None,
    output_format: str = "pandas",
    experiment_names: Sequence[str] | None = None,
) -> Any:
    """Search runs with MLflow's filter grammar; a pandas DataFrame (or ``output_format="list"``).

    >>> search_runs(experiment_names=["demand"], filter_string="metrics.rmse < 12",
    ...             order_by=["metrics.rmse ASC"])  # doctest: +SKIP
    """
    client = get_client()
    ids = [str(e) for e in experiment_ids or []]
    for name in experiment_names or []:
        experiment = client.get_experiment_by_name(name)
        if experiment is None:
            raise NotFound(f"no experiment named {name!r}", field="experiment_names")
        ids.append(experiment.experiment_id)
    if not ids:
        ids = [_active_experiment.get() or DEFAULT_EXPERIMENT_ID]
    runs: list[Run] = []
    token: str | None = None
    while len(runs) < max_results:
        page = client.search_runs(
            ids, filter_string, run_view_type, min(50_000, max_results - len(runs)), order_by, token
        )
        runs.extend(page.items)
        token = page.next_page_token
        if not token:
            break
    if output_format == "list":
        return runs
    if output_format != "pandas":
        raise InvalidParameter(
            f"output_format must be 'pandas' or 'list', got {output_format!r}",
            field="output_format",
        )
    return runs_to_frame(runs)


def runs_to_frame(runs: Sequence[Run]) -> Any:
    """MLflow's ``search_runs`` columns: run attributes, then metrics.*, params.*, tags.*."""
    import pandas as pd

    n = len(runs)
    columns: dict[str, list[Any]] = {
        "run_id": [r.info.run_id for r in runs],
        "experiment_id": [r.info.experiment_id for r in runs],
        "run_name": [r.info.run_name for r in runs],
        "status": [r.info.status for r in runs],
        "artifact_uri": [r.info.artifact_uri for r in runs],
        "start_time": pd.to_datetime([r.info.start_time for r in runs], unit="ms", utc=True),
        "end_time": pd.to_datetime([r.info.end_time for r in runs], unit="ms", utc=True),
    }
    for prefix, attr, fill in (
        ("metrics", "metrics", float("nan")),
        ("params", "params", None),
        ("tags", "tags", None),
    ):
        keys = sorted({k for r in runs for k in getattr(r.data, attr)})
        for key in keys:
            columns[f"{prefix}.{key}"] = [getattr(r.data, attr).get(key, fill) for r in runs]
    return pd.DataFrame(columns, index=pd.RangeIndex(n))
