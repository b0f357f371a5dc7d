"""Adaptive micro-batching: concurrent requests share model calls, each gets its own rows
back, a lone request never waits, and a failure reaches every request of its batch."""

from __future__ import annotations

import asyncio
import threading
import time

import numpy as np
import pytest

from modelyard.serving.batching import MicroBatcher


class SlowModel:
    """1 ms per call plus a little per row: batching pays, as for real vectorised models."""

    def __init__(self) -> None:
        self.calls: list[int] = []
        self.lock = threading.Lock()

    def __call__(self, x: np.ndarray) -> np.ndarray:
        time.sleep(0.001)
        with self.lock:
            self.calls.append(len(x))
        return x[:, 0] * 2.0


def run(batcher: MicroBatcher, requests: list[np.ndarray]) -> list[np.ndarray]:
    async def go() -> list[np.ndarray]:
        return list(await asyncio.gather(*(batcher.predict(r, len(r)) for r in requests)))

    return asyncio.run(go())


def test_concurrent_requests_share_calls_and_get_their_own_rows():
    model = SlowModel()
    batcher = MicroBatcher(model, max_batch_size=16, max_wait_ms=0)
    requests = [np.full((1 + i % 3, 2), float(i)) for i in range(64)]
    answers = run(batcher, requests)
    for i, (request, answer) in enumerate(zip(requests, answers, strict=True)):
        assert answer.tolist() == [2.0 * i] * len(request)
    assert len(model.calls) < 32 and max(model.calls) <= 16
    assert batcher.rows == sum(len(r) for r in requests)
    batcher.close()


def test_a_lone_request_does_not_wait_for_company():
    model = SlowModel()
    batcher = MicroBatcher(model, max_batch_size=64, max_wait_ms=200)
    started = time.perf_counter()
    for i in range(5):
        assert run(batcher, [np.full((1, 2), float(i))])[0].tolist() == [2.0 * i]
    assert time.perf_counter() - started < 0.5  # five sequential requests, no 200 ms waits
    assert model.calls == [1] * 5
    batcher.close()


def test_a_failure_reaches_every_request_of_the_batch_and_the_next_batch_works():
    calls = {"n": 0}

    def flaky(x: np.ndarray) -> np.ndarray:
        calls["n"] += 1
        if calls["n"] == 1:
            raise ValueError("bad batch")
        return x[:, 0]

    batcher = MicroBatcher(flaky, max_batch_size=8, max_wait_ms=0)

    async def go() -> list[object]:
        return list(
            await asyncio.gather(
                *(batcher.predict(np.ones((1, 1)), 1) for _ in range(3)), return_exceptions=True
            )
        )

    outcomes = asyncio.run(go())
    assert any(isinstance(o, ValueError) for o in outcomes)
    assert run(batcher, [np.ones((1, 1))])[0].tolist() == [1.0]
    batcher.close()


def test_batching_off_calls_the_model_once_per_request():
    model = SlowModel()
    batcher = MicroBatcher(model, max_batch_size=1)
    run(batcher, [np.ones((1, 2))] * 10)
    assert model.calls == [1] * 10
    batcher.close()


@pytest.mark.parametrize("size", [100])
def test_a_request_larger_than_a_batch_runs_alone(size):
    model = SlowModel()
    batcher = MicroBatcher(model, max_batch_size=16)
    assert len(run(batcher, [np.ones((size, 2))])[0]) == size
    batcher.close()


def test_a_fast_model_runs_on_the_event_loop_without_a_thread_hop():
    calls: list[str] = []

    def fast(x: np.ndarray) -> np.ndarray:
        calls.append(threading.current_thread().name)
        return x[:, 0]

    batcher = MicroBatcher(fast, max_batch_size=16, inline_below_ms=50)
    for _ in range(5):
        run(batcher, [np.ones((1, 1))])
    assert batcher.inline
    assert calls[:3] == ["predict-model_0"] * 3  # measured on its thread first
    assert all(not name.startswith("predict-") for name in calls[3:])
    batcher.close()
