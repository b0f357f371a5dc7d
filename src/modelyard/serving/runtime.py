"""The data plane's engine: follows a deployment's revisions and answers predictions.

``ServingRuntime`` holds one immutable ``RouteTable`` per revision (policy, router, loaded
versions). A new revision is loaded in the background — versions already loaded are
reused, so a blue-green switch costs no load — and swapped in with one assignment. A
request reads the table once at its start and finishes on it, so a switch never drops or
fails an in-flight request; versions that left the table are closed once their last
request is done.

Per request: choose the variant (pinned version, sticky key, or weight), complete the rows
from the feature store when the version has a feature service, check them against the
signature (and the deployment's data contract), predict through the version's batcher,
remember and log the answer, and mirror it to the shadows *after* the primary answered,
as fire-and-forget tasks with a timeout and a cap on how many run at once. A shadow's
failure is counted and logged, and never reaches the caller.

The canary judge runs beside it; when it finds the canary worse, it records a rollback
revision (compare-and-set on the revision number, so many replicas record one).
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import itertools
import logging
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, TypeGuard

import numpy as np

from modelyard.errors import (
    IntegrityViolation,
    InvalidParameter,
    InvalidState,
    ModelyardError,
    NotFound,
    PermissionDenied,
)
from modelyard.ids import now_ms
from modelyard.serving.feedback import FeedbackItem, FeedbackStore, RecentPredictions, Served
from modelyard.serving.inputs import Batch, InputSpec
from modelyard.serving.loading import BatchingOptions, LoadedVersion, load_version
from modelyard.serving.policy import TrafficPolicy, Variant
from modelyard.serving.prediction_log import PredictionLog, PredictionRecord
from modelyard.serving.routing import CanaryJudge, Router

log = logging.getLogger("modelyard.serving")
_REMEMBERED_ROWS = 1000
_SETTLE_AFTER_S = 0.5
#: Longest wait between two tries to load a revision after consecutive failures (the
#: store unreachable, a download failing): the wait doubles from the poll interval.
MAX_RETRY_WAIT_S = 30.0


class NotReady(ModelyardError):
    """No revision is loaded yet (start-up, or the store is unreachable): retry (503)."""

    code = "TEMPORARILY_UNAVAILABLE"


class PredictionFailed(ModelyardError):
    """The model raised on checked input: a model bug, counted as an error (500)."""

    code = "INTERNAL_ERROR"


class Observer:
    """Events the runtime reports; the metrics module implements them (no-ops here)."""

    def model_loaded(self, deployment: str, model: str, version: int, seconds: float) -> None: ...
    def batch(self, deployment: str, model: str, version: int, size: int) -> None: ...
    def shadow(self, deployment: str, variant: str, version: int, ok: bool, s: float) -> None: ...
    def log_dropped(self, deployment: str, reason: str, n: int) -> None: ...
    def revision(self, deployment: str, revision: int) -> None: ...
    def automatic(self, deployment: str, action: str, reason: str) -> None: ...
    def contract_violation(self, deployment: str, mode: str) -> None: ...


@dataclass
class ServingOptions:
    poll_interval_s: float = 2.0
    judge_interval_s: float = 1.0
    batching: BatchingOptions = field(default_factory=BatchingOptions)
    compiled: bool = True
    shadow_timeout_s: float = 10.0
    max_shadow_in_flight: int = 64
    trusted: bool = False
    remember: int = 100_000
    #: Largest request body the data plane reads; a bigger one is refused with 413.
    max_body_bytes: int = 64 * 1024 * 1024
    #: The runtime owns its process (``modelyard serve``): once the first revision is in,
    #: warm the prediction log's writer up, then move everything alive (modules, models)
    #: out of the garbage collector's reach (``gc.freeze``, again after each revision), so
    #: full collections walk only what requests left behind, not the whole heap (pauses
    #: of 50-70 ms → a few ms). Off by default, as it is process-wide.
    freeze_gc: bool = False


class DeploymentTarget:
    """A deployment in the metadata store: revisions come from ``DeploymentService``."""

    def __init__(self, service: Any, name: str) -> None:
        from modelyard.serving.deployments import AUTOMATIC_ACTOR

        self.service = service
        self.automatic = service.as_actor(AUTOMATIC_ACTOR)
        self.name = name

    def revision(self) -> int:
        return self.service.current_revision(self.name)

    def policy(self, revision: int) -> TrafficPolicy:
        return self.service.get_revision(self.name, revision).policy

    def rollback(self, expected: int, reason: str) -> bool:
        return (
            self.automatic.rollback(self.name, reason=reason, expected_revision=expected)
            is not None
        )

    def promote(self, expected: int, reason: str) -> bool:
        return (
            self.automatic.promote(self.name, reason=reason, expected_revision=expected) is not None
        )


class ModelTarget:
    """A one-off ``models:/name@alias`` (or ``/3``): the "revision" is the version the URI
    names now, so moving the alias moves the server."""

    def __init__(self, registry: Any, uri: str) -> None:
        self.registry = registry
        self.uri = uri
        version = registry.resolve(uri).version
        if version is None:
            raise InvalidParameter(f"{uri!r} names no registered version", field="model_uri")
        self.model = version.name
        self.name = "".join(ch if ch.isalnum() or ch == "-" else "-" for ch in version.name.lower())

    def revision(self) -> int:
        return int(self.registry.resolve(self.uri).version.version)

    def policy(self, revision: int) -> TrafficPolicy:
        return TrafficPolicy.single(self.model, revision)

    def rollback(self, expected: int, reason: str) -> bool:
        return False

    def promote(self, expected: int, reason: str) -> bool:
        return False


@dataclass
class RouteTable:
    revision: int
    policy: TrafficPolicy
    router: Router
    loaded: dict[str, LoadedVersion]  # by variant or shadow name
    contract: Any = None


@dataclass
class InferenceRequest:
    """A parsed request, protocol-neutral. ``build`` turns the payload into a checked batch
    for a version's input spec (called again, per spec, for shadows)."""

    request_id: str
    build: Callable[[InputSpec], Batch]
    key_of: Callable[[str], str | None] = lambda _field: None
    version: int | None = None
    records: list[dict[str, Any]] | None = None  # native /predict: feature lookups


@dataclass
class InferenceResult:
    request_id: str
    deployment: str
    revision: int
    variant: str
    model: str
    version: int
    outputs: np.ndarray
    output_name: str
    output_datatype: str
    n_rows: int
    contract: str | None = None


class ServingRuntime:
    def __init__(
        self,
        target: Any,
        registry: Any,
        *,
        options: ServingOptions | None = None,
        prediction_log: PredictionLog | None = None,
        feedback: FeedbackStore | None = None,
        features: Callable[[], Any] | None = None,
        observer: Observer | None = None,
    ) -> None:
        self.target = target
        self.deployment: str = target.name
        self.registry = registry
        self.options = options or ServingOptions()
        self.log = prediction_log
        self.feedback = feedback
        self._features_factory = features
        self._features: Any = None
        self.observer = observer or Observer()
        self.table: RouteTable | None = None
        self.judge = CanaryJudge()
        self.recent = RecentPredictions(self.options.remember)
        self._cache: dict[tuple[str, int], LoadedVersion] = {}
        # Versions whose model file was refused (an untrusted type, a malformed tree). A
        # version's files never change (download checks their digest), nor does this
        # process's trust: it is refused again without fetching and auditing it each poll.
        self._refused: dict[tuple[str, int], ModelyardError] = {}
        self._in_flight: dict[int, int] = {}
        self._shadows_running = 0
        self._tasks: list[asyncio.Task[None]] = []
        self._background: set[asyncio.Task[None]] = set()
        self._poll_now = asyncio.Event()
        self.last_error: str | None = None
        self._refusal: str | None = None  # why the wanted revision's model was refused

    # -- lifecycle ----------------------------------------------------------------------

    async def start(self) -> None:
        """Begin following revisions (the first one loads in the background: until it is
        in, requests get 503 and ``ready`` is False)."""
        self._poll_now = asyncio.Event()
        self._tasks = [
            asyncio.create_task(self._follow(), name="follow-revisions"),
            asyncio.create_task(self._judge_loop(), name="canary-judge"),
        ]

    def _spawn(self, coroutine: Any) -> None:
        """Run ``coroutine`` in the background, holding a reference until it ends."""
        task = asyncio.create_task(coroutine)
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    async def wait_ready(self, timeout_s: float = 60.0) -> None:
        deadline = time.monotonic() + timeout_s
        while self.table is None:
            if time.monotonic() > deadline:
                raise NotReady(f"no revision loaded after {timeout_s:g} s: {self.last_error}")
            await asyncio.sleep(0.02)

    @property
    def ready(self) -> bool:
        return self.table is not None

    @property
    def not_ready_reason(self) -> str | None:
        """Why no revision is served yet (None once one is): for the readiness probes."""
        if self.table is not None:
            return None
        if self._refusal is not None:
            return f"the model was refused: {self._refusal}"
        if self.last_error is not None:
            return f"loading failed, retrying with back-off: {self.last_error}"
        return "loading"

    async def stop(self) -> None:
        """Stop following, wait for shadows, write the prediction log, release models."""
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        deadline = time.monotonic() + self.options.shadow_timeout_s
        while self._shadows_running and time.monotonic() < deadline:
            await asyncio.sleep(0.01)
        if self.log is not None:
            await asyncio.to_thread(self.log.close)
        for loaded in self._cache.values():
            await asyncio.to_thread(loaded.close)

    async def _follow(self) -> None:
        failures = 0  # consecutive: the wait before the next try doubles, up to a bound
        while True:
            try:
                revision = await asyncio.to_thread(self.target.revision)
                if self.table is None or revision != self.table.revision:
                    await self._install(revision)
                self.last_error = self._refusal = None
                failures = 0
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # keep serving the table we have; retry next poll
                self.last_error = f"{type(exc).__name__}: {exc}"
                self._refusal = exc.message if _refused_model(exc) else None
                failures = 0 if self._refusal is not None else failures + 1
                if self._refusal is None:  # a refusal is logged once, by _load
                    log.warning("deployment %s: cannot follow revisions: %s", self.deployment, exc)
            wait = self.options.poll_interval_s
            if failures:
                wait = max(wait, min(wait * 2 ** (failures - 1), MAX_RETRY_WAIT_S))
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._poll_now.wait(), wait)
            self._poll_now.clear()

    async def _install(self, revision: int) -> None:
        policy = await asyncio.to_thread(self.target.policy, revision)
        loaded: dict[str, LoadedVersion] = {}
        members: list[Any] = [*policy.variants, *policy.shadows]
        for member in members:
            loaded[member.name] = await self._load(member.model, member.version)
        contract = None
        if policy.contract is not None:
            from modelyard.data.contracts import Contract

            contract = Contract.from_dict(policy.contract.spec)
        old = self.table
        self.table = RouteTable(revision, policy, Router(policy), loaded, contract)
        if self.options.freeze_gc:
            if old is None:
                self._tasks.append(asyncio.create_task(self._settle(), name="settle"))
            else:  # the versions just loaded join the frozen heap
                gc.freeze()
        self.judge.reset()
        self.observer.revision(self.deployment, revision)
        log.info("deployment %s: serving revision %d (%s)", self.deployment, revision, policy.kind)
        if old is not None:
            keep = {id(v) for v in loaded.values()}
            gone = [v for v in old.loaded.values() if id(v) not in keep]
            for stale in {id(v): v for v in gone}.values():
                self._spawn(self._retire(stale))

    async def _settle(self) -> None:
        """Soon after serving starts (not while readiness probes and the first requests
        come in): import what the prediction log's writer needs (an import holds the GIL
        for its whole length: better now than at the first flush, under load), then
        freeze the heap (see ``ServingOptions.freeze_gc``)."""
        await asyncio.sleep(_SETTLE_AFTER_S)
        if self.log is not None:
            with contextlib.suppress(Exception):
                await asyncio.to_thread(self.log.prepare)
        gc.freeze()

    async def _load(self, model: str, version: int) -> LoadedVersion:
        key = (model, version)
        cached = self._cache.get(key)
        if cached is not None:
            return cached
        refused = self._refused.get(key)
        if refused is not None:
            raise type(refused)(refused.message, field=refused.field)

        def on_batch(size: int) -> None:
            self.observer.batch(self.deployment, model, version, size)

        try:
            loaded = await asyncio.to_thread(
                load_version,
                self.registry,
                model,
                version,
                batching=self.options.batching,
                compiled=self.options.compiled,
                feature_service=self._service_of(model, version),
                on_batch=on_batch,
                trusted=self.options.trusted,
            )
        except (PermissionDenied, InvalidState, IntegrityViolation) as exc:
            if not _refused_model(exc):
                raise
            self._refused[key] = exc
            log.error(
                "deployment %s: %s version %d is refused, and is not loaded again: %s",
                *(self.deployment, model, version, exc),
            )
            raise
        self._cache[key] = loaded
        self.observer.model_loaded(self.deployment, model, version, loaded.load_seconds)
        return loaded

    def _service_of(self, model: str, version: int) -> str | None:
        try:
            from modelyard.features.services import service_of_model

            return service_of_model(self.registry.db, model, version).service
        except Exception:  # no binding, or no feature tables in this store
            return None

    async def _retire(self, loaded: LoadedVersion) -> None:
        """Close a version that left the table once its in-flight requests are done."""
        deadline = time.monotonic() + 300
        while self._in_flight.get(id(loaded), 0) and time.monotonic() < deadline:
            await asyncio.sleep(0.1)
        table = self.table
        if table is not None and any(v is loaded for v in table.loaded.values()):
            return  # a newer revision took it back
        self._cache.pop((loaded.model, loaded.number), None)
        await asyncio.to_thread(loaded.close)
        if self.options.freeze_gc:
            collect_frozen()

    async def _judge_loop(self) -> None:
        while True:
            await asyncio.sleep(self.options.judge_interval_s)
            table = self.table
            if table is None or table.policy.canary is None:
                continue
            canary = table.policy.canary
            try:
                verdict = self.judge.judge(canary.primary, canary.candidate, canary.rules)
                if verdict.rollback:
                    reason = f"automatic rollback: {verdict.reason}"
                    if await asyncio.to_thread(self.target.rollback, table.revision, reason):
                        self.observer.automatic(self.deployment, "rollback", verdict.reason)
                        log.warning("deployment %s: %s", self.deployment, reason)
                    self._poll_now.set()
                elif canary.auto_promote and now_ms() >= canary.finished_at_ms():
                    reason = "automatic promotion: the canary completed its schedule"
                    if await asyncio.to_thread(self.target.promote, table.revision, reason):
                        self.observer.automatic(self.deployment, "promote", reason)
                    self._poll_now.set()
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                log.warning("deployment %s: canary judge failed: %s", self.deployment, exc)

    # -- requests -----------------------------------------------------------------------

    def current(self) -> RouteTable:
        table = self.table
        if table is None:
            if self._refusal is not None:
                raise NotReady(
                    f"deployment {self.deployment!r} is not serving: its model was refused "
                    f"({self._refusal}); it answers once it points at another version"
                )
            detail = f" ({self.last_error})" if self.last_error else ""
            raise NotReady(f"deployment {self.deployment!r} is still loading{detail}; retry")
        return table

    def pick(self, table: RouteTable, request: InferenceRequest) -> tuple[Variant, str | None]:
        policy = table.policy
        if request.version is not None:
            for variant in policy.variants:
                if variant.version == request.version:
                    return variant, None
            served = sorted({v.version for v in policy.variants})
            raise NotFound(
                f"deployment {self.deployment!r} does not serve version {request.version}; "
                f"it serves {served}",
                field="version",
            )
        key = None
        if policy.sticky_key:
            key = (
                request.request_id
                if policy.sticky_key == "request_id"
                else request.key_of(policy.sticky_key)
            )
        return table.router.choose(key, now_ms()), key

    async def infer(self, request: InferenceRequest) -> InferenceResult:
        table = self.current()
        variant, key = self.pick(table, request)
        loaded = table.loaded[variant.name]
        batch = await self._batch(loaded, request)
        verdict = self._check_contract(table, batch)
        started = time.perf_counter()
        self._in_flight[id(loaded)] = self._in_flight.get(id(loaded), 0) + 1
        try:
            outputs = await loaded.predict(batch)
        except Exception as exc:
            elapsed = time.perf_counter() - started
            self.judge.record(variant.name, elapsed, True)
            problem = f"{type(exc).__name__}: {exc}"
            self._log(table, variant.name, loaded, request.request_id, "primary", "error",
                      elapsed, batch, None, key, problem, verdict)  # fmt: skip
            if isinstance(exc, ValueError | TypeError | KeyError):
                raise InvalidParameter(
                    f"the model rejected the input: {type(exc).__name__}: {exc}",
                    field="inputs",
                ) from exc
            raise PredictionFailed(
                f"version {loaded.number} of {loaded.model} failed: {type(exc).__name__}"
            ) from exc
        finally:
            self._in_flight[id(loaded)] -= 1
        elapsed = time.perf_counter() - started
        if len(outputs) != batch.n_rows:
            raise PredictionFailed(
                f"version {loaded.number} of {loaded.model} returned {len(outputs)} outputs "
                f"for {batch.n_rows} rows"
            )
        self.judge.record(variant.name, elapsed, False)
        served = Served(variant.name, loaded.number, outputs[:_REMEMBERED_ROWS], key)
        self.recent.remember(request.request_id, served)
        self._log(table, variant.name, loaded, request.request_id, "primary", "ok", elapsed,
                  batch, outputs, key, None, verdict)  # fmt: skip
        for shadow in table.router.shadows_for():
            self._mirror(table, shadow.name, request)
        return InferenceResult(
            request.request_id,
            self.deployment,
            table.revision,
            variant.name,
            loaded.model,
            loaded.number,
            outputs,
            loaded.output_name,
            loaded.output_datatype,
            batch.n_rows,
            verdict,
        )

    async def _batch(self, loaded: LoadedVersion, request: InferenceRequest) -> Batch:
        if loaded.feature_service and request.records is not None:
            records = await asyncio.to_thread(
                self._with_features, loaded.feature_service, request.records
            )
            return loaded.spec.from_records(records)
        return request.build(loaded.spec)

    def _with_features(self, service: str, records: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """Rows completed with the feature service's values; values sent win."""
        if self._features is None:
            if self._features_factory is None:
                raise NotReady("this version needs the feature store, which is not configured")
            self._features = self._features_factory()
        found = self._features.get_online_features(records, service=service).rows()
        merged = [{**features, **row} for features, row in zip(found, records, strict=True)]
        for i, (features, row) in enumerate(zip(found, merged, strict=True)):
            absent = [k for k, v in features.items() if v is None and row.get(k) is None]
            if absent:
                keys = {k: v for k, v in records[i].items() if k in features}
                raise InvalidParameter(
                    f"row {i}: feature {absent[0]!r} of service {service!r} has no online value "
                    f"for {keys} (never materialised, or older than its TTL); send it in the "
                    "request or materialise it",
                    field=absent[0],
                )
        return merged

    def _check_contract(self, table: RouteTable, batch: Batch) -> str | None:
        if table.contract is None:
            return None
        import pandas as pd

        frame = pd.DataFrame({**batch.extra, **batch.columns})
        result = table.contract.validate(frame)
        if result.passed:
            return None
        mode = table.policy.contract.mode if table.policy.contract else "reject"
        self.observer.contract_violation(self.deployment, mode)
        if mode == "reject":
            from modelyard.data.contracts import ContractViolation

            raise ContractViolation(result)
        return result.summary()

    def _mirror(self, table: RouteTable, name: str, request: InferenceRequest) -> None:
        if self._shadows_running >= self.options.max_shadow_in_flight:
            loaded = table.loaded[name]
            self.observer.shadow(self.deployment, name, loaded.number, False, 0.0)
            return
        self._shadows_running += 1
        self._spawn(self._shadow(table, name, request))

    async def _shadow(self, table: RouteTable, name: str, request: InferenceRequest) -> None:
        loaded = table.loaded[name]
        started = time.perf_counter()
        batch: Batch | None = None
        try:
            batch = await self._batch(loaded, request)
            outputs = await asyncio.wait_for(loaded.predict(batch), self.options.shadow_timeout_s)
            status, error = "ok", None
        except Exception as exc:  # never reaches the caller: counted and logged
            outputs, status, error = None, "error", f"{type(exc).__name__}: {exc}"
        finally:
            self._shadows_running -= 1
        elapsed = time.perf_counter() - started
        self.observer.shadow(self.deployment, name, loaded.number, status == "ok", elapsed)
        self._log(table, name, loaded, request.request_id, "shadow", status, elapsed, batch,
                  outputs, None, error, None)  # fmt: skip

    def _log(
        self,
        table: RouteTable,
        variant: str,
        loaded: LoadedVersion,
        request_id: str,
        role: str,
        status: str,
        elapsed: float,
        batch: Batch | None,
        outputs: Any,
        key: str | None,
        error: str | None,
        contract: str | None,
    ) -> None:
        if self.log is None:
            return
        self.log.append(
            PredictionRecord(
                request_id=request_id,
                ts_ms=now_ms(),
                deployment=self.deployment,
                revision=table.revision,
                variant=variant,
                model=loaded.model,
                version=loaded.number,
                role=role,
                status=status,
                latency_ms=elapsed * 1000.0,
                n_rows=batch.n_rows if batch is not None else 0,
                key=key,
                inputs=batch.log_source() if batch is not None else None,
                outputs=outputs,
                error=error,
                contract=contract,
            )
        )

    # -- feedback -----------------------------------------------------------------------

    async def record_feedback(self, items: list[FeedbackItem]) -> int:
        served = [self.recent.get(item.request_id) for item in items]
        metric = None
        table = self.table
        if table is not None and table.policy.canary is not None:
            metric = table.policy.canary.rules.feedback_metric
        for item, info in zip(items, served, strict=True):
            variant = info.variant if info else item.variant
            if variant is None or metric is None:
                continue
            if metric == "mean" and item.value is not None:
                self.judge.record_feedback(variant, item.value)
            elif metric == "accuracy":
                from modelyard.serving.feedback import correct

                hit = correct(info, item)
                if hit is not None:
                    self.judge.record_feedback(variant, 1.0 if hit else 0.0)
        if self.feedback is None:
            return len(items)
        return await asyncio.to_thread(self.feedback.record, self.deployment, items, served)


_ID_PREFIX = uuid.uuid4().hex[:16]
_ID_COUNTER = itertools.count(1)


def _refused_model(exc: BaseException) -> TypeGuard[ModelyardError]:
    """Whether ``exc`` refuses a version for what its files hold — for good, so it is not
    fetched again: a type the loaders refuse (they name ``trusted``/``trusted_types`` as
    the way past), files that no longer match their digest, or no saved model at all."""
    if isinstance(exc, PermissionDenied):
        return exc.field in ("trusted", "trusted_types")
    if isinstance(exc, InvalidState):
        return exc.field == "saved_model"
    return isinstance(exc, IntegrityViolation)


def new_request_id() -> str:
    """A unique id without a system call per request: a random per-process prefix and a
    counter (``os.urandom`` per request costs ~50 µs on a busy machine)."""
    return f"{_ID_PREFIX}{next(_ID_COUNTER):08x}"


def collect_frozen() -> None:
    """Let the collector reach the frozen heap once: a retired version's objects were
    frozen with it (``ServingOptions.freeze_gc``), and any reference cycle among them
    would otherwise never be freed. One full collection per retired version."""
    gc.unfreeze()
    gc.collect()
    gc.freeze()
