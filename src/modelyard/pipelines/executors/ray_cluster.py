"""Run steps as Ray tasks: on a local Ray instance, or on a cluster at ``ray_address``.

Values travel through modelyard's artifact store, not Ray's object store: a task gets
blob digests and returns digests, so a run's outputs outlive the cluster and ``resume``
works after it is gone. A remote cluster's workers therefore need the same artifact store
(``s3://…`` or a shared folder) and the step code (an installed package, or the same
file path on every node).

When no Ray instance runs in this process, one is started (``ray.init``) and shut down
with the executor; an instance the caller started (``ray.init`` in a test or a notebook)
is used and left running. An address that does not answer is refused at once with
``StoreUnavailable`` instead of Ray's own minute-long connection retries.

A step's timeout counts from its submission (the runner submits no more tasks than the
cluster has CPUs, so little of it is queueing; a Ray worker's first start-up is counted),
and a task past it is cancelled with ``force=True``, which kills its worker.
"""

from __future__ import annotations

import socket
import time
from typing import Any
from urllib.parse import urlsplit

from modelyard.errors import InvalidParameter, MissingExtra, StoreUnavailable
from modelyard.pipelines.executors.base import Executor, timed_out
from modelyard.pipelines.tasks import StepResult, StepTask, execute_step

#: Seconds to wait for a TCP answer from the cluster before calling it unreachable.
CONNECT_TIMEOUT_S = 3.0


def _ray() -> Any:
    try:
        import ray
    except ImportError as exc:
        raise MissingExtra("ray", "ray", "The Ray executor") from exc
    return ray


def check_reachable(address: str) -> None:
    """Raise StoreUnavailable unless something answers at ``address`` (``host:port`` or
    ``ray://host:port``); ``auto`` and ``local`` are Ray's own lookups, left to Ray."""
    if address in ("auto", "local"):
        return
    parsed = urlsplit(address if "://" in address else f"tcp://{address}")
    try:
        host, port = parsed.hostname, parsed.port
    except ValueError:
        host, port = None, None
    if not host or port is None:
        raise InvalidParameter(
            f"ray_address {address!r} is not host:port or ray://host:port", field="ray_address"
        )
    try:
        with socket.create_connection((host, port), timeout=CONNECT_TIMEOUT_S):
            return
    except OSError as exc:
        raise StoreUnavailable(
            f"Ray is not reachable at {address} ({exc.strerror or exc}): start a cluster "
            "(`ray start --head`) or fix MODELYARD_RAY_ADDRESS"
        ) from None


class RayExecutor(Executor):
    name = "ray"

    def __init__(self, address: str | None = None, workers: int | None = None) -> None:
        ray = _ray()
        self._ray = ray
        self._owned = False
        if not ray.is_initialized():
            if address:
                check_reachable(address)
                ray.init(address=address, logging_level="WARNING", log_to_driver=False)
            else:
                ray.init(
                    num_cpus=workers,
                    include_dashboard=False,
                    logging_level="WARNING",
                    log_to_driver=False,
                )
            self._owned = True
        cpus = int(ray.cluster_resources().get("CPU", 1))
        self.capacity = max(1, workers or cpus)
        self._remote = ray.remote(execute_step).options(num_cpus=1, max_retries=0)
        self._running: dict[Any, tuple[StepTask, float]] = {}

    def submit(self, task: StepTask) -> None:
        self._running[self._remote.remote(task)] = (task, time.perf_counter())

    def wait(self, timeout: float | None) -> list[StepResult]:
        if not self._running:
            if timeout:
                time.sleep(timeout)
            return []
        now = time.perf_counter()
        spans = [timeout] if timeout is not None else []
        spans += [
            max(0.0, started + task.timeout_s - now)
            for task, started in self._running.values()
            if task.timeout_s is not None
        ]
        ready, _ = self._ray.wait(
            list(self._running), num_returns=1, timeout=min(spans) if spans else None
        )
        results = [self._result(ref) for ref in ready]
        now = time.perf_counter()
        for ref, (task, started) in list(self._running.items()):
            if task.timeout_s is not None and now - started >= task.timeout_s:
                self._ray.cancel(ref, force=True)
                del self._running[ref]
                results.append(timed_out(task, now - started, " (its Ray task was cancelled)"))
        return results

    def _result(self, ref: Any) -> StepResult:
        task, started = self._running.pop(ref)
        try:
            result: StepResult = self._ray.get(ref)
            return result
        except self._ray.exceptions.RayError as exc:  # a worker or node died
            return StepResult(
                task.key,
                task.attempt,
                False,
                error=f"the Ray task running step {task.step_name!r} failed: "
                f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}",
                retryable=True,
                seconds=time.perf_counter() - started,
            )

    def close(self) -> None:
        for ref in list(self._running):
            self._ray.cancel(ref, force=True)
        self._running.clear()
        if self._owned and self._ray.is_initialized():
            self._ray.shutdown()
            self._owned = False
