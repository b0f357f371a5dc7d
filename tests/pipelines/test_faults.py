"""Faults on the process executor: a worker killed mid-step and a step that hangs fail only
their step, naming it and the cause; nothing of theirs is visible as an output; resume
finishes the run. Independent steps run in separate worker processes."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from modelyard.pipelines import PipelineFailed, load_output, resume, run_pipeline
from modelyard.tracking.client import TrackingClient

from . import pipeline_yard as yard


@pytest.fixture
def marker(tmp_path) -> Path:
    folder = tmp_path / "marker"
    folder.mkdir()
    return folder


def pids(marker: Path, name: str) -> list[int]:
    return [int(line) for line in (marker / f"{name}.count").read_text().splitlines()]


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def test_a_worker_killed_mid_step_fails_that_step_and_resume_finishes(settings, marker):
    with pytest.raises(PipelineFailed) as err:
        run_pipeline(
            yard.dying, {"marker": str(marker)}, settings=settings, executor="process", workers=2
        )
    record = err.value.run
    assert record.status == "FAILED"
    assert record.error == (
        "step 'die' failed: the worker process running step 'die' died (killed by SIGKILL)"
    )
    steps = {s.step_key: s for s in record.steps}
    assert steps["column_sum"].status == "COMPLETED"  # its branch did not depend on 'die'
    assert steps["die"].status == "FAILED" and steps["die"].outputs is None
    with TrackingClient.from_settings(settings) as client:
        assert client.list_artifacts(steps["die"].step_run_id, "outputs") == []
        assert client.get_run(record.run_id).info.status == "FAILED"

    (marker / "fixed").touch()
    resumed = resume(record.run_id, settings=settings)
    assert resumed.status == "FINISHED"
    assert load_output(resumed, "die", settings=settings) == 4
    assert yard.executions(marker, "make_table") == 1
    assert yard.executions(marker, "die") == 2


def test_a_hanging_step_has_its_worker_killed_at_the_timeout(settings, marker):
    with pytest.raises(PipelineFailed, match="timed out after 1s") as err:
        run_pipeline(yard.hanging, {"marker": str(marker)}, settings=settings, executor="process")
    (step,) = err.value.run.steps
    assert step.attempts == 2  # retried once, then out of attempts
    assert "its worker process was killed" in step.reason
    assert not any(alive(pid) for pid in pids(marker, "hang"))

    (marker / "fixed").touch()
    assert resume(err.value.run.run_id, settings=settings).status == "FINISHED"


def test_independent_steps_run_in_separate_workers(settings, marker):
    record = run_pipeline(
        yard.parallel,
        {"marker": str(marker), "seconds": 0.2},
        settings=settings,
        executor="process",
        workers=2,
    )
    assert load_output(record, "add", settings=settings) == 13
    assert len(set(pids(marker, "slow_square"))) == 2
    assert os.getpid() not in pids(marker, "slow_square")
