"""The Ray executor (the ``ray`` extra): the same pipelines on a local Ray instance the
test starts, independent steps in parallel on Ray workers, values passed through the
artifact store; a cluster address that does not answer fails fast and marks the run."""

from __future__ import annotations

import os
import socket
from pathlib import Path

import pytest

from modelyard.config import Settings
from modelyard.errors import StoreUnavailable
from modelyard.pipelines import PipelineFailed, load_output, pipelines_store, resume, run_pipeline

from . import pipeline_yard as yard

ray = pytest.importorskip("ray")
pytestmark = pytest.mark.slow


@pytest.fixture
def marker(tmp_path) -> Path:
    folder = tmp_path / "marker"
    folder.mkdir()
    return folder


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_an_unreachable_cluster_is_refused_at_once_and_the_run_marked_failed(tmp_path, marker):
    assert not ray.is_initialized()
    address = f"127.0.0.1:{closed_port()}"
    settings = Settings(home=tmp_path / "yard", ray_address=address)
    with pytest.raises(StoreUnavailable, match=f"Ray is not reachable at {address}") as err:
        run_pipeline(yard.parallel, {"marker": str(marker)}, settings=settings, executor="ray")
    assert "MODELYARD_RAY_ADDRESS" in str(err.value)
    (record,) = pipelines_store(settings).list_runs()
    assert record.status == "FAILED"
    assert record.error.startswith("the ray executor could not start: Ray is not reachable")
    assert not ray.is_initialized()  # refused before Ray's own minute of connection retries


@pytest.fixture(scope="module")
def local_ray():
    ray.init(num_cpus=2, include_dashboard=False, logging_level="WARNING", log_to_driver=False)
    yield
    ray.shutdown()


def test_independent_steps_run_in_parallel_on_ray_workers(settings, marker, local_ray):
    record = run_pipeline(
        yard.parallel, {"marker": str(marker), "seconds": 0.2}, settings=settings, executor="ray"
    )
    assert load_output(record, "add", settings=settings) == 13
    workers = {int(p) for p in (marker / "slow_square.count").read_text().split()}
    assert len(workers) == 2 and os.getpid() not in workers


def test_tables_flow_through_the_artifact_store_and_resume_works_on_ray(
    settings, marker, local_ray
):
    (marker / "broken").touch()
    with pytest.raises(PipelineFailed, match="step 'gate' failed") as err:
        run_pipeline(yard.branches, {"marker": str(marker)}, settings=settings, executor="ray")
    statuses = {s.step_key: s.status for s in err.value.run.steps}
    assert statuses["gate"] == "FAILED" and statuses["column_sum_2"] == "COMPLETED"
    (marker / "broken").unlink()
    resumed = resume(err.value.run.run_id, settings=settings)
    assert resumed.executor == "ray" and resumed.status == "FINISHED"
    assert load_output(resumed, "gate", settings=settings) == {"total": 45.0, "passed": True}
    assert load_output(resumed, "split", "high", settings=settings)["a"].tolist() == [5, 6, 7, 8, 9]
    assert yard.executions(marker, "make_table") == 1


def test_steps_on_ray_workers_open_the_run_s_stores(settings, marker, local_ray):
    """A Ray worker's environment and working folder name no store of the run's: the step
    reaches the run's through ``step_settings()``."""
    from modelyard.tracking.client import TrackingClient

    record = run_pipeline(yard.stores, {"marker": str(marker)}, settings=settings, executor="ray")
    assert load_output(record, "own_store", settings=settings) == settings.resolved_store_uri()
    with TrackingClient.from_settings(settings) as client:
        assert client.get_run(record.steps[0].step_run_id).data.tags["reached"] == "yes"
