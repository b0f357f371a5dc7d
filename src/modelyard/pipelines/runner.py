"""Running a pipeline: the coordinator that owns every metadata write.

``run_pipeline`` builds the DAG, opens a tracked run for the pipeline, and walks the
steps: a step whose upstream is done is either answered from the cache (same code hash,
same input digests: the reason is recorded) or sent to the executor. Each attempt's
result comes back as blob digests; the coordinator records them as artifacts under the
step's nested run, then marks the step COMPLETED together with its cache entry and its
lineage edges in one transaction. A failed attempt is retried after a back-off that
doubles; a step out of attempts is FAILED, the steps below it are SKIPPED, independent
branches still run, and the run ends FAILED with the first failure as its reason.

``resume`` rebuilds the same DAG from the run's recorded target and params and runs it
again under the same run: steps that finished keep their outputs, the rest run.

Steps run with the run's settings (``StepTask.settings``, read in a step through
``tasks.step_settings()``), made absolute, so a step in a worker process or on a Ray
node opens the stores the run records to — ``modelyard --home X pipelines run`` — not
whatever its own environment names.
"""

from __future__ import annotations

import hashlib
import json
import posixpath
import time
from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from modelyard.artifacts.blobs import BlobRef
from modelyard.config import Settings, load_settings
from modelyard.errors import InvalidParameter, InvalidState, NotImplementedFeature
from modelyard.ids import now_ms
from modelyard.pipelines import store as st
from modelyard.pipelines.definitions import Graph, Output, Pipeline, StepCall
from modelyard.pipelines.executors import DEFAULT_EXECUTOR, check_executor, open_executor
from modelyard.pipelines.executors.base import Executor
from modelyard.pipelines.loading import function_ref, load_target, target_of
from modelyard.pipelines.sources import KIND_PIPELINE, source_tags
from modelyard.pipelines.store import PipelineRunRecord, PipelineStore, StepRecord
from modelyard.pipelines.tasks import StepResult, StepTask, StoredValue, blob_store
from modelyard.store.lineage import node
from modelyard.tracking.backends import database_for
from modelyard.tracking.client import TrackingClient
from modelyard.tracking.entities import Metric, Param, RunStatus, RunTag

DEFAULT_EXPERIMENT = "pipelines"
# Tags on the pipeline's run and on each step's nested run.
TAG_PIPELINE = "modelyard.pipeline.name"
TAG_TARGET = "modelyard.pipeline.target"
TAG_CAUSE = "modelyard.pipeline.cause"
TAG_EXECUTOR = "modelyard.pipeline.executor"
#: "false" on a run started with ``cache=False`` (its resume bypasses the cache too).
TAG_CACHE = "modelyard.pipeline.cache"
TAG_STEP = "modelyard.step.name"
TAG_STEP_KEY = "modelyard.step.key"
TAG_CACHE_KEY = "modelyard.step.cache_key"
TAG_STATUS = "modelyard.step.status"
TAG_DURATION = "modelyard.step.duration_ms"
TAG_ATTEMPTS = "modelyard.step.attempts"
TAG_REASON = "modelyard.step.reason"
TAG_CACHED_FROM = "modelyard.step.cached_from"


class PipelineFailed(InvalidState):
    """A pipeline run ended FAILED; ``run`` is its record (status, steps, reasons)."""

    def __init__(self, message: str, run: PipelineRunRecord) -> None:
        super().__init__(message, field=run.run_id)
        self.run = run


def pipelines_store(settings: Settings) -> PipelineStore:
    if settings.is_remote:
        raise NotImplementedFeature(
            "pipelines run against a local metadata and artifact store "
            "(MODELYARD_STORE_URI, MODELYARD_ARTIFACTS_URI), not a tracking server"
        )
    return PipelineStore(database_for(settings))


def run_pipeline(
    pipeline: Pipeline,
    params: Mapping[str, Any] | None = None,
    *,
    executor: str = DEFAULT_EXECUTOR,
    settings: Settings | None = None,
    experiment: str | None = None,
    cause: Mapping[str, Any] | None = None,
    name: str | None = None,
    target: str | None = None,
    workers: int | None = None,
    tags: Mapping[str, str] | None = None,
    cache: bool = True,
) -> PipelineRunRecord:
    """Run ``pipeline`` with ``params`` as a tracked run; return its record, or raise
    ``PipelineFailed`` (carrying the record) when a step failed.

    ``name``: the name runs are listed under (a registered pipeline's; default the
    function's). ``cause``: why it runs, recorded on the run (``{"kind": "alert",
    "alert_id": 7}``). ``workers``: parallel steps (process and Ray executors). ``tags``:
    set on the pipeline's run and on every step's run (a team's required run tags).
    ``cache=False``: every step executes, none answered from the cache (what ``runs
    reproduce`` needs); what they compute is still cached for later runs.

    The run records the code it ran (``sources.source_tags``): the commit of the
    repository holding the pipeline's file, for ``modelyard runs reproduce``.
    """
    settings = settings or load_settings()
    check_executor(executor)
    store = pipelines_store(settings)
    values = pipeline.bind_params(params or {})
    graph = pipeline.build(values)
    target = target or target_of(pipeline)
    in_process = executor == "local"
    refs = {k: function_ref(c.step, in_process=in_process) for k, c in graph.calls.items()}
    shown = name or pipeline.name
    with TrackingClient.from_settings(settings) as client:
        experiment_id = client.get_or_create_experiment(experiment or DEFAULT_EXPERIMENT)
        user_tags = {str(k): str(v) for k, v in (tags or {}).items()}
        run_tags = {
            **user_tags,
            **source_tags(target, KIND_PIPELINE),
            TAG_PIPELINE: shown,
            TAG_TARGET: target,
            TAG_EXECUTOR: executor,
        }
        if not cache:
            run_tags[TAG_CACHE] = "false"
        if cause is not None:
            run_tags[TAG_CAUSE] = json.dumps(dict(cause), sort_keys=True)
        run = client.create_run(experiment_id.experiment_id, run_name=shown, tags=run_tags)
        run_id = run.info.run_id
        if values:
            client.log_batch(
                run_id, params=[Param(k, json.dumps(v)) for k, v in sorted(values.items())]
            )
        store.create_run(
            run_id,
            pipeline=shown,
            target=target,
            params=values,
            executor=executor,
            cause=cause,
        )
        with _executor(client, store, run_id, executor, settings, workers) as pool:
            _Execution(
                client, store, settings, graph, run_id, pool, refs, user_tags, use_cache=cache
            ).run()
    return _finished(store, run_id)


def resume(
    run_id: str,
    *,
    executor: str | None = None,
    settings: Settings | None = None,
    workers: int | None = None,
    force: bool = False,
) -> PipelineRunRecord:
    """Run again what did not finish in pipeline run ``run_id`` (FAILED, or RUNNING with
    ``force`` when the process running it is gone), under the same run."""
    settings = settings or load_settings()
    store = pipelines_store(settings)
    record = store.get_run(run_id)
    if record.status == st.FINISHED:
        raise InvalidState(f"pipeline run {run_id} already finished: nothing to resume")
    if record.status == st.RUNNING and not force:
        raise InvalidState(
            f"pipeline run {run_id} is RUNNING; if the process running it is gone, "
            "resume it with force=True (`--force`)",
            field="run_id",
        )
    pipeline = load_target(record.target)
    graph = pipeline.build(record.params)
    chosen = executor or record.executor
    check_executor(chosen)
    refs = {
        key: function_ref(call.step, in_process=chosen == "local")
        for key, call in graph.calls.items()
    }
    with TrackingClient.from_settings(settings) as client:
        store.resume_run(run_id, chosen)
        client.update_run(run_id, status=RunStatus.RUNNING)
        with _executor(client, store, run_id, chosen, settings, workers) as pool:
            previous = {s.step_key: s for s in record.steps}
            recorded = client.get_run(run_id).data.tags
            tags = _user_tags(recorded)
            cache = recorded.get(TAG_CACHE) != "false"
            _Execution(
                client, store, settings, graph, run_id, pool, refs, tags, previous, use_cache=cache
            ).run()
    return _finished(store, run_id)


def _executor(
    client: TrackingClient,
    store: PipelineStore,
    run_id: str,
    name: str,
    settings: Settings,
    workers: int | None,
) -> Executor:
    """Open the executor; if it cannot start (Ray unreachable), the run ends FAILED saying
    so, and the error is raised."""
    try:
        return open_executor(name, settings, workers)
    except Exception as exc:
        store.end_run(run_id, st.FAILED, f"the {name} executor could not start: {exc}")
        client.set_terminated(run_id, RunStatus.FAILED)
        raise


def _user_tags(tags: Mapping[str, str]) -> dict[str, str]:
    """The tags a user gave a run (not modelyard's or MLflow's own)."""
    return {k: v for k, v in tags.items() if not k.startswith(("modelyard.", "mlflow."))}


def _finished(store: PipelineStore, run_id: str) -> PipelineRunRecord:
    record = store.get_run(run_id)
    if record.status != st.FINISHED:
        raise PipelineFailed(
            f"pipeline run {run_id} ({record.pipeline}) failed: {record.error}", record
        )
    return record


def _portable(settings: Settings) -> Settings:
    """``settings`` as a step in another process or on another node needs them: stores
    as absolute URIs (a relative home means another folder in another working
    directory), and no server token (pipelines run on local stores; a token need not
    travel to workers)."""
    return settings.model_copy(
        update={
            "home": settings.home.absolute(),
            "store_uri": settings.resolved_store_uri(),
            "artifacts_uri": settings.resolved_artifacts_uri(),
            "tracking_token": None,
        }
    )


def _cache_reason(step_caches: bool, run_caches: bool) -> str | None:
    """Why a step that ran was not looked up in the cache (None: it was, and missed)."""
    if not step_caches:
        return "cache disabled for this step"
    if not run_caches:
        return "cache bypassed for this run (cache=False); its result is cached for later runs"
    return None


def _digest_json(value: Any) -> str:
    text = json.dumps(value, sort_keys=True, separators=(",", ":"), allow_nan=True)
    return hashlib.sha256(text.encode()).hexdigest()


@dataclass
class _Active:
    """A step whose attempts are under way."""

    call: StepCall
    step_run_id: str
    artifact_root: str
    cache_key: str
    arguments: dict[str, tuple[str, Any]]
    started_ms: int
    attempt: int = 1


class _Execution:
    def __init__(
        self,
        client: TrackingClient,
        store: PipelineStore,
        settings: Settings,
        graph: Graph,
        run_id: str,
        executor: Executor,
        refs: Mapping[str, Any],
        tags: Mapping[str, str],
        previous: Mapping[str, StepRecord] | None = None,
        *,
        use_cache: bool = True,
    ) -> None:
        self.client = client
        self.store = store
        self.settings = settings
        self.graph = graph
        self.run_id = run_id
        self.executor = executor
        self.refs = refs
        self.tags = dict(tags)  # the user's, on every step's run
        self.previous = dict(previous or {})
        self.experiment_id = client.get_run(run_id).info.experiment_id
        self.artifacts_uri = settings.resolved_artifacts_uri()
        self.step_settings = _portable(settings)
        self.use_cache = use_cache  # False: every step executes (``cache=False``)
        self.status: dict[str, str] = {}
        self.outputs: dict[str, dict[str, Any]] = {}  # step key → output name → stored JSON
        self.failure: str | None = None
        self.upstream = {k: [u.key for u in c.upstream()] for k, c in graph.calls.items()}
        self.parent_metrics: list[Metric] = []  # logged in one batch when the run ends

    # the loop ------------------------------------------------------------------------
    def run(self) -> None:
        order = self.graph.order()
        self.store.plan_steps(
            self.run_id,
            [
                {
                    "step_key": c.key,
                    "step_name": c.step.name,
                    "position": c.position,
                    "upstream": self.upstream[c.key],
                }
                for c in order
            ],
        )
        pending = deque(order)
        ready: deque[_Active] = deque()
        retries: list[tuple[float, _Active]] = []
        running: dict[str, _Active] = {}
        try:
            while pending or ready or retries or running:
                now = time.monotonic()
                for due in [r for r in retries if r[0] <= now]:
                    retries.remove(due)
                    ready.append(due[1])
                self._advance(pending, ready)
                while ready and len(running) < self.executor.capacity:
                    active = ready.popleft()
                    running[active.call.key] = active
                    self.executor.submit(self._task(active))
                if not running:
                    if retries:
                        time.sleep(max(0.0, min(r[0] for r in retries) - time.monotonic()))
                    continue
                timeout = None
                if retries:
                    timeout = max(0.0, min(r[0] for r in retries) - time.monotonic())
                for result in self.executor.wait(timeout):
                    active = running.pop(result.key)
                    again = self._settle(active, result)
                    if again is not None:
                        retries.append(again)
        except BaseException as exc:
            reason = f"interrupted: {type(exc).__name__}: {exc}"
            # Every step with a nested run open: running, ready, or waiting for a retry.
            for active in [*running.values(), *ready, *(r[1] for r in retries)]:
                self._fail(active, reason)
            self._end(st.FAILED, self.failure or reason)
            raise
        self._end(st.FAILED if self.failure else st.FINISHED, self.failure)

    def _advance(self, pending: deque[StepCall], ready: deque[_Active]) -> None:
        """Move each pending call whose upstream is settled: skipped, reused, or ready."""
        progressed = True
        while progressed:
            progressed = False
            for call in list(pending):
                ups = self.upstream[call.key]
                if any(u not in self.status for u in ups):
                    continue  # an upstream step has not settled yet
                pending.remove(call)
                progressed = True
                broken = [u for u in ups if self.status[u] not in st.DONE]
                if broken:
                    self._skip(call, broken)
                    continue
                active = self._prepare(call)
                if active is not None:
                    ready.append(active)

    # one step ------------------------------------------------------------------------
    def _prepare(self, call: StepCall) -> _Active | None:
        """Inputs, cache key, and a finished answer if there is one; else the step's run."""
        arguments: dict[str, tuple[str, Any]] = {}
        described: dict[str, Any] = {}
        for param, value in call.arguments.items():
            if isinstance(value, Output):
                stored = self.outputs[value.call.key][value.name]
                arguments[param] = ("stored", StoredValue.from_json(stored))
                described[param] = {"digest": StoredValue.from_json(stored).digest}
            else:
                arguments[param] = ("literal", value)
                described[param] = {"literal": value}
        options = call.step.options
        cache_key = _digest_json({"code": call.step.code_hash, "inputs": described})
        before = self.previous.get(call.key)
        if before is not None and before.status in st.DONE and before.cache_key == cache_key:
            self.status[call.key] = before.status
            self.outputs[call.key] = dict(before.outputs or {})
            return None  # finished before this run was resumed: its row stands
        if options.cache and self.use_cache:
            hit = self._cache_hit(cache_key)
            if hit is not None:
                self._reuse(call, cache_key, described, *hit)
                return None
        tags = {
            **self.tags,
            TAG_STEP: call.step.name,
            TAG_STEP_KEY: call.key,
            TAG_CACHE_KEY: cache_key,
            TAG_STATUS: st.RUNNING,
            TAG_PIPELINE: self.graph.pipeline_name,
        }
        run = self.client.create_run(
            self.experiment_id,
            run_name=call.key,
            tags=tags,
            parent_run_id=self.run_id,
            record_system_tags=False,
        )
        started = now_ms()
        self.store.start_step(
            self.run_id,
            call.key,
            step_run_id=run.info.run_id,
            cache_key=cache_key,
            inputs=described,
            attempts=1,
            started_at=started,
        )
        return _Active(call, run.info.run_id, run.info.artifact_root, cache_key, arguments, started)

    def _cache_hit(self, cache_key: str) -> tuple[str, dict[str, Any], int] | None:
        hit = self.store.cached(cache_key)
        if hit is None:
            return None
        blobs = blob_store(self.artifacts_uri)
        for stored in hit[1].values():
            if not all(blobs.exists(digest) for _, digest, _ in stored["files"]):
                self.store.forget_cached(cache_key)  # its bytes were collected
                return None
        return hit

    def _task(self, active: _Active) -> StepTask:
        options = active.call.step.options
        return StepTask(
            key=active.call.key,
            step_name=active.call.step.name,
            function=self.refs[active.call.key],
            artifacts_uri=self.artifacts_uri,
            arguments=active.arguments,
            outputs=options.outputs,
            trusted_outputs=options.trusted_outputs,
            timeout_s=options.timeout_s,
            attempt=active.attempt,
            run_id=self.run_id,
            step_run_id=active.step_run_id,
            settings=self.step_settings,
        )

    def _settle(self, active: _Active, result: StepResult) -> tuple[float, _Active] | None:
        """Record a finished attempt; a retry to schedule ``(when, active)`` or None."""
        if result.ok:
            try:
                self._complete(active, result)
                return None
            except Exception as exc:  # recording failed (a store error): the step failed
                result = StepResult(active.call.key, result.attempt, False, error=str(exc))
        options = active.call.step.options
        error = result.error or "failed"
        if result.retryable and active.attempt <= options.retries:
            wait = options.backoff_s * (2 ** (active.attempt - 1))
            first = error.splitlines()[0]
            self.store.set_attempts(
                self.run_id,
                active.call.key,
                active.attempt + 1,
                f"attempt {active.attempt} failed ({first}); retrying in {wait:g}s",
            )
            active.attempt += 1
            return time.monotonic() + wait, active
        attempts = f" (after {active.attempt} attempts)" if active.attempt > 1 else ""
        self._fail(active, error + attempts)
        return None

    def _complete(self, active: _Active, result: StepResult) -> None:
        call = active.call
        items: list[tuple[str, BlobRef]] = []
        manifest: dict[str, Any] = {}
        for name, stored in result.outputs.items():
            prefix = posixpath.join(active.artifact_root, "outputs", name)
            items += [(f"{prefix}/{f}", BlobRef(d, s)) for f, d, s in stored.files]
            manifest[name] = {**stored.to_json(), "path": prefix}
        self.client.artifacts.log_blobs(items)
        duration = now_ms() - active.started_ms
        step_node = node("step", active.step_run_id)
        edges = [(node("run", self.run_id), step_node, "step")]
        edges += [(step_node, node("artifact", m["path"]), "output") for m in manifest.values()]
        edges += self._input_edges(call, step_node)
        cache = (active.cache_key, call.step.name, active.step_run_id)
        self.store.complete_step(
            self.run_id,
            call.key,
            status=st.COMPLETED,
            outputs=manifest,
            reason=_cache_reason(call.step.options.cache, self.use_cache),
            duration_ms=duration,
            cache=cache if call.step.options.cache else None,
            edges=edges,
        )
        self.status[call.key] = st.COMPLETED
        self.outputs[call.key] = manifest
        own, parent = _metrics(call, manifest)
        self._end_step_run(active.step_run_id, st.COMPLETED, duration, active.attempt, None, own)
        self.parent_metrics += parent

    def _input_edges(self, call: StepCall, step_node: str) -> list[tuple[str, str, str]]:
        return [
            (node("artifact", self.outputs[v.call.key][v.name]["path"]), step_node, "input")
            for v in call.arguments.values()
            if isinstance(v, Output)
        ]

    def _reuse(
        self,
        call: StepCall,
        cache_key: str,
        described: Mapping[str, Any],
        source_run_id: str,
        outputs: dict[str, Any],
        created_at: int,
    ) -> None:
        reason = (
            f"cache hit: same code and inputs as step run {source_run_id} ({_when(created_at)})"
        )
        tags = {
            **self.tags,
            TAG_STEP: call.step.name,
            TAG_STEP_KEY: call.key,
            TAG_CACHE_KEY: cache_key,
            TAG_PIPELINE: self.graph.pipeline_name,
            TAG_CACHED_FROM: source_run_id,
        }
        run = self.client.create_run(
            self.experiment_id,
            run_name=call.key,
            tags=tags,
            parent_run_id=self.run_id,
            record_system_tags=False,
        )
        step_run_id = run.info.run_id
        self.store.start_step(
            self.run_id,
            call.key,
            step_run_id=step_run_id,
            cache_key=cache_key,
            inputs=described,
            attempts=0,
            started_at=now_ms(),
        )
        step_node = node("step", step_run_id)
        edges = [(node("run", self.run_id), step_node, "step")]
        edges += [
            (step_node, node("artifact", m["path"]), "cached_output") for m in outputs.values()
        ]
        edges += self._input_edges(call, step_node)
        self.store.complete_step(
            self.run_id,
            call.key,
            status=st.CACHED,
            outputs=outputs,
            reason=reason,
            duration_ms=0,
            cache=None,
            edges=edges,
        )
        self.status[call.key] = st.CACHED
        self.outputs[call.key] = outputs
        own, parent = _metrics(call, outputs)
        self._end_step_run(step_run_id, st.CACHED, 0, 0, reason, own)
        self.parent_metrics += parent

    def _fail(self, active: _Active, reason: str) -> None:
        duration = now_ms() - active.started_ms
        self.store.fail_step(
            self.run_id, active.call.key, status=st.FAILED, reason=reason, duration_ms=duration
        )
        self.status[active.call.key] = st.FAILED
        if self.failure is None:
            self.failure = f"step {active.call.key!r} failed: {reason.splitlines()[0]}"
        self._end_step_run(active.step_run_id, st.FAILED, duration, active.attempt, reason)

    def _skip(self, call: StepCall, broken: list[str]) -> None:
        reason = f"not run: upstream step {', '.join(map(repr, broken))} did not finish"
        self.store.fail_step(
            self.run_id, call.key, status=st.SKIPPED, reason=reason, duration_ms=None
        )
        self.status[call.key] = st.SKIPPED

    def _end_step_run(
        self,
        step_run_id: str,
        status: str,
        duration: int,
        attempts: int,
        reason: str | None,
        metrics: list[Metric] | None = None,
    ) -> None:
        tags = [
            RunTag(TAG_STATUS, status),
            RunTag(TAG_DURATION, str(duration)),
            RunTag(TAG_ATTEMPTS, str(attempts)),
        ]
        if reason:
            tags.append(RunTag(TAG_REASON, reason[:4000]))
        self.client.log_batch(step_run_id, metrics=metrics or [], tags=tags)
        ended = RunStatus.FAILED if status == st.FAILED else RunStatus.FINISHED
        self.client.set_terminated(step_run_id, ended)

    def _end(self, status: str, error: str | None) -> None:
        if self.parent_metrics:
            self.client.log_batch(self.run_id, metrics=self.parent_metrics)
        self.store.end_run(self.run_id, status, error)
        tracked = RunStatus.FINISHED if status == st.FINISHED else RunStatus.FAILED
        self.client.set_terminated(self.run_id, tracked)


def _metrics(call: StepCall, manifest: Mapping[str, Any]) -> tuple[list[Metric], list[Metric]]:
    """Numeric outputs as metrics: on the step's run named by the output (``return``: the
    step's name), on the pipeline's run by step key (``weekly_mean_2``, ``evaluate.rmse``),
    so ``runs compare`` and ``runs reproduce`` see them."""
    now = now_ms()
    own: list[Metric] = []
    parent: list[Metric] = []
    for name, stored in manifest.items():
        meta = stored.get("meta") or {}
        if "number" not in meta:
            continue
        value = float(meta["number"])
        own.append(Metric(call.step.name if name == "return" else name, value, now))
        parent.append(Metric(call.key if name == "return" else f"{call.key}.{name}", value, now))
    return own, parent


def _when(ms: int) -> str:
    from datetime import UTC, datetime

    return datetime.fromtimestamp(ms / 1000, UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def load_output(
    record: PipelineRunRecord,
    step_key: str,
    output: str = "return",
    *,
    settings: Settings | None = None,
) -> Any:
    """The value step ``step_key`` of a run returned (``output``: a named output)."""
    from modelyard.pipelines import values

    step = next((s for s in record.steps if s.step_key == step_key), None)
    if step is None:
        known = ", ".join(s.step_key for s in record.steps)
        raise InvalidParameter(
            f"pipeline run {record.run_id} has no step {step_key!r} (its steps: {known})",
            field="step",
        )
    if step.status not in st.DONE or not step.outputs or output not in step.outputs:
        raise InvalidState(
            f"step {step_key!r} of run {record.run_id} has no stored output {output!r} "
            f"(status {step.status})",
            field="step",
        )
    stored = StoredValue.from_json(step.outputs[output])
    blobs = blob_store((settings or load_settings()).resolved_artifacts_uri())
    files = {name: blobs.read_bytes(digest) for name, digest, _ in stored.files}
    return values.decode(stored.kind, files, stored.meta)
