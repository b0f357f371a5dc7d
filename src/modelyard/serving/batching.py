"""Adaptive micro-batching: requests that arrive while the model is busy share one call.

Vectorised models (trees, linear models, ONNX graphs) cost little more for 32 rows than
for one, so under concurrency one ``predict`` over the rows of many requests beats many
calls. The batcher never makes a lone request wait for company:

* the model runs on one dedicated thread; requests that arrive while it is busy queue up
  and form the next batch (so the batch size follows the load by itself);
* a batch that would otherwise leave at once waits up to ``max_wait_ms`` only when the
  recent arrival rate says another request is due within that time, and a model call
  costs more than the wait (so waiting can pay);
* a batch never exceeds ``max_batch_size`` rows (a larger request runs alone, unsplit);
* a model whose calls take less than ``inline_below_ms`` runs on the event loop itself,
  at once: handing a 50 µs call to a thread, or queueing it, costs more than the call (a
  wake-up and a GIL hand-off, ~1 ms on a busy machine). Slower models run on their own
  thread, so the loop keeps accepting requests meanwhile — which is when batches form,
  and where batching pays.

BentoML's batcher (off by default) fits a latency model and answers 503 when a request
would miss its budget; users report spurious 503s. This one never refuses: under overload
requests queue, and latency shows it.

>>> batcher = MicroBatcher(model.predict, max_batch_size=64, max_wait_ms=2)  # doctest: +SKIP
>>> y = await batcher.predict(matrix)                                       # doctest: +SKIP
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import numpy as np

#: Weight of the newest inter-arrival gap in the moving average.
_EWMA = 0.2
#: Requests count as sparse when they arrive this many model calls apart.
_SPARSE = 4.0


class MicroBatcher:
    """Batches ``predict`` calls made from one event loop; ``predict(x)`` is awaited."""

    def __init__(
        self,
        predict: Callable[[Any], Any],
        *,
        max_batch_size: int = 64,
        max_wait_ms: float = 2.0,
        on_batch: Callable[[int], None] | None = None,
        name: str = "model",
        inline_below_ms: float = 1.0,
    ) -> None:
        self._predict = predict
        self.inline_below_s = inline_below_ms / 1000.0
        self._call_s = 1.0  # moving average of one model call; unknown until measured
        self._calls = 0
        self.max_batch_size = max(1, int(max_batch_size))
        self.max_wait_s = max(0.0, max_wait_ms / 1000.0)
        self._on_batch = on_batch
        self._executor = ThreadPoolExecutor(1, thread_name_prefix=f"predict-{name}")
        self._queue: deque[tuple[Any, int, asyncio.Future[Any]]] = deque()
        self._rows_queued = 0
        self._worker: asyncio.Task[None] | None = None
        self._gap_s = 1.0
        self._last_arrival = 0.0
        self.batches = 0
        self.rows = 0

    @property
    def enabled(self) -> bool:
        return self.max_batch_size > 1

    async def predict(self, x: Any, n_rows: int) -> Any:
        """The model's output for ``x`` (``n_rows`` rows), possibly computed in a batch."""
        loop = asyncio.get_running_loop()
        now = time.perf_counter()
        if self._last_arrival:
            self._gap_s += _EWMA * (min(now - self._last_arrival, 1.0) - self._gap_s)
        self._last_arrival = now
        if self.inline or self._sparse():
            # A fast model, or requests far apart: answer now, without a trip round the
            # loop or a thread hop (each costs a system call, ~0.1 ms on a busy or
            # sandboxed machine) — more than batching could save.
            if self._on_batch:
                self._on_batch(n_rows)
            self.batches += 1
            self.rows += n_rows
            return self._timed(x)
        if not self.enabled or n_rows >= self.max_batch_size:
            if self._on_batch:
                self._on_batch(n_rows)
            return await self._call(loop, x)
        future: asyncio.Future[Any] = loop.create_future()
        self._queue.append((x, n_rows, future))
        self._rows_queued += n_rows
        if self._worker is None or self._worker.done():
            self._worker = loop.create_task(self._drain())
        return await future

    async def _drain(self) -> None:
        loop = asyncio.get_running_loop()
        while self._queue:
            if (
                self.max_wait_s
                and self._rows_queued < self.max_batch_size
                and self._gap_s < self.max_wait_s
                and self._call_s > self.max_wait_s
            ):
                # Another request is due before the wait is over: give it the chance to join.
                deadline = time.perf_counter() + self.max_wait_s
                while self._rows_queued < self.max_batch_size and time.perf_counter() < deadline:
                    await asyncio.sleep(min(self._gap_s, deadline - time.perf_counter()))
            batch = self._take()
            inputs = [item[0] for item in batch]
            sizes = [item[1] for item in batch]
            total = sum(sizes)
            self.batches += 1
            self.rows += total
            if self._on_batch:
                self._on_batch(total)
            try:
                joined = inputs[0] if len(inputs) == 1 else _concat(inputs)
                out = await self._call(loop, joined)
                parts = [out] if len(inputs) == 1 else _split(out, sizes)
            except BaseException as exc:
                for _, _, future in batch:
                    if not future.done():
                        future.set_exception(exc)
                if not isinstance(exc, Exception):
                    raise
                continue
            for (_, _, future), part in zip(batch, parts, strict=True):
                if not future.done():
                    future.set_result(part)

    def _timed(self, x: Any) -> Any:
        started = time.perf_counter()
        out = self._predict(x)
        elapsed = time.perf_counter() - started
        self._calls += 1
        self._call_s = (
            elapsed if self._calls == 1 else self._call_s + _EWMA * (elapsed - self._call_s)
        )
        return out

    @property
    def inline(self) -> bool:
        """Whether calls run on the event loop (fast models, once measured)."""
        return self._calls >= 3 and self._call_s < self.inline_below_s

    def _sparse(self) -> bool:
        """Nothing queued or running, and requests arrive much further apart than a call
        takes: nobody would join a batch, so running on the loop costs no one anything."""
        idle = not self._queue and (self._worker is None or self._worker.done())
        return idle and self._calls >= 3 and self._gap_s > _SPARSE * self._call_s

    async def _call(self, loop: asyncio.AbstractEventLoop, x: Any) -> Any:
        if self.inline:
            return self._timed(x)
        return await loop.run_in_executor(self._executor, self._timed, x)

    def _take(self) -> list[tuple[Any, int, asyncio.Future[Any]]]:
        batch = [self._queue.popleft()]
        rows = batch[0][1]
        while self._queue and rows + self._queue[0][1] <= self.max_batch_size:
            item = self._queue.popleft()
            batch.append(item)
            rows += item[1]
        self._rows_queued -= rows
        return batch

    def close(self) -> None:
        self._executor.shutdown(wait=True, cancel_futures=False)


def _concat(inputs: list[Any]) -> Any:
    if isinstance(inputs[0], np.ndarray):
        return np.concatenate(inputs, axis=0)
    import pandas as pd

    return pd.concat(inputs, ignore_index=True)


def _split(output: Any, sizes: list[int]) -> list[Any]:
    if isinstance(output, list | tuple) and not isinstance(output, np.ndarray):
        output = np.asarray(output)
    if hasattr(output, "iloc"):
        output = output.to_numpy()
    edges = np.cumsum(sizes)[:-1]
    return list(np.split(output, edges, axis=0))
