"""The process executor on its own: a worker that dies while idle is replaced on the next
submit, and a worker killed mid-step is that step's failure, naming the signal."""

from __future__ import annotations

import os
import signal

from modelyard.pipelines.executors.processes import ProcessExecutor
from modelyard.pipelines.tasks import FunctionRef, StepTask

from . import pipeline_yard as yard


def task(key: str, tmp_path, function: str, **arguments) -> StepTask:
    return StepTask(
        key=key,
        step_name=function,
        function=FunctionRef(yard.__name__, function, yard.__file__),
        artifacts_uri=str(tmp_path / "artifacts"),
        arguments={k: ("literal", v) for k, v in arguments.items()},
        outputs=None,
        trusted_outputs=False,
        timeout_s=None,
    )


def test_a_worker_that_died_idle_is_replaced(tmp_path):
    with ProcessExecutor(workers=1) as pool:
        pool.submit(task("first", tmp_path, "add", a=1, b=2))
        (first,) = pool.wait(None)
        assert first.ok and first.outputs["return"].meta == {"number": 3}
        (idle,) = pool._workers
        os.kill(idle.process.pid, signal.SIGKILL)
        idle.process.join(5)
        pool.submit(task("second", tmp_path, "add", a=2, b=3))
        (second,) = pool.wait(None)
        assert second.ok and second.outputs["return"].meta == {"number": 5}
        assert idle not in pool._workers


def test_a_worker_killed_mid_step_is_reported_with_the_signal(tmp_path):
    marker = tmp_path / "marker"
    marker.mkdir()
    with ProcessExecutor(workers=1) as pool:
        pool.submit(task("hang", tmp_path, "hang", marker=str(marker)))
        assert pool.wait(0.0) == []  # nothing ended yet
        (worker,) = pool._workers
        while not (marker / "hang.count").exists():  # the step has begun
            pool.wait(0.05)
        os.kill(worker.process.pid, signal.SIGTERM)
        (result,) = pool.wait(None)
    assert not result.ok and result.retryable
    assert result.error == "the worker process running step 'hang' died (killed by SIGTERM)"
