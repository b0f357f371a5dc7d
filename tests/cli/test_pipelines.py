"""``modelyard pipelines``: run a file's pipeline with params, list and show runs as a
readable tree, resume a failed run (exit 1 then 0), name pipelines for schedulers."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from modelyard.cli.main import app
from modelyard.tracking.client import TrackingClient

from ..pipelines import pipeline_yard

FLOW = """
from pathlib import Path

from modelyard.pipelines import pipeline, step


@step
def numbers(n: int) -> list[int]:
    return list(range(n))


@step
def total(values: list[int], marker: str) -> int:
    if Path(marker).exists():
        raise ValueError("total refused: the marker file exists")
    return sum(values)


@pipeline
def flow(n: int = 3, marker: str = "none"):
    return total(numbers(n), marker)
"""


@pytest.fixture
def flow_file(tmp_path) -> Path:
    path = tmp_path / "flows.py"
    path.write_text(FLOW)
    return path


def invoke(home: Path, *args: str):
    return CliRunner().invoke(app, ["--home", str(home), "pipelines", *args])


def run_id_of(output: str) -> str:
    return output.split(" run ", 1)[1].split()[0]


def test_run_prints_the_tree_and_list_and_show_find_the_run(tmp_path, flow_file):
    home = tmp_path / "yard"
    first = invoke(home, "run", f"{flow_file}:flow", "--param", "n=5", "-e", "local")
    assert first.exit_code == 0, first.output
    assert "flow run " in first.output and "FINISHED" in first.output
    assert "numbers  COMPLETED" in first.output and "total  COMPLETED" in first.output
    run_id = run_id_of(first.output)

    again = invoke(home, "run", f"{flow_file}:flow", "--param", "n=5", "-e", "local")
    assert "2 steps, 2 cached" in again.output
    assert "cache hit: same code and inputs as step run" in again.output

    listed = invoke(home, "list")
    assert listed.exit_code == 0 and run_id in listed.output and "manual" in listed.output
    shown = invoke(home, "show", run_id)
    assert shown.exit_code == 0
    assert 'params {"marker": "none", "n": 5}' in shown.output
    assert 'cause {"kind": "manual", "via": "cli"}' in shown.output
    assert shown.output.index("numbers") < shown.output.index("total")


def test_a_failed_run_exits_1_with_the_reason_and_resume_finishes_it(tmp_path, flow_file):
    home = tmp_path / "yard"
    marker = tmp_path / "refuse"
    marker.touch()
    failed = invoke(home, "run", f"{flow_file}:flow", "-p", f"marker={marker}", "-e", "local")
    assert failed.exit_code == 1
    assert "step 'total' failed: ValueError: total refused" in failed.output
    run_id = run_id_of(failed.output)
    assert f"modelyard pipelines resume {run_id}" in failed.output

    marker.unlink()
    resumed = invoke(home, "resume", run_id)
    assert resumed.exit_code == 0, resumed.output
    assert "FINISHED" in resumed.output and "resumed 1x" in resumed.output
    finished = invoke(home, "resume", run_id)
    assert finished.exit_code == 2 and "already finished" in finished.output


def test_registered_pipelines_run_by_name_with_their_default_params(tmp_path, flow_file):
    home = tmp_path / "yard"
    made = invoke(home, "register", "nightly", f"{flow_file}:flow", "-p", "n=4")
    assert made.exit_code == 0, made.output
    listed = invoke(home, "registered")
    assert "nightly" in listed.output and json.dumps({"n": 4}) in listed.output
    ran = invoke(home, "run", "nightly", "-e", "local")
    assert ran.exit_code == 0 and "nightly run" in ran.output
    taken = invoke(home, "register", "nightly", f"{flow_file}:flow")
    assert taken.exit_code == 2 and "already registered" in taken.output
    assert invoke(home, "unregister", "nightly").exit_code == 0
    gone = invoke(home, "run", "nightly")
    assert gone.exit_code == 2 and "no pipeline named 'nightly'" in gone.output


def test_bad_targets_params_and_executors_exit_2_naming_them(tmp_path, flow_file):
    home = tmp_path / "yard"
    missing = invoke(home, "run", f"{tmp_path / 'nope.py'}:flow")
    assert missing.exit_code == 2 and "does not exist" in missing.output
    not_a_pipeline = invoke(home, "run", f"{flow_file}:numbers")
    assert not_a_pipeline.exit_code == 2 and "not a function decorated with @pipeline" in (
        not_a_pipeline.output
    )
    unknown = invoke(home, "run", f"{flow_file}:flow", "-p", "depth=3", "-e", "local")
    assert unknown.exit_code == 2 and "no param 'depth'" in unknown.output
    malformed = invoke(home, "run", f"{flow_file}:flow", "-p", "n")
    assert malformed.exit_code == 2 and "is not KEY=VALUE" in malformed.output
    executor = invoke(home, "run", f"{flow_file}:flow", "-e", "spark")
    assert executor.exit_code == 2 and "unknown executor 'spark'" in executor.output


def test_no_cache_executes_every_step_and_its_resume_bypasses_the_cache_too(tmp_path, flow_file):
    home = tmp_path / "yard"
    marker = tmp_path / "refuse"  # absent: total succeeds; same path, same cache key
    first = invoke(home, "run", f"{flow_file}:flow", "-p", f"marker={marker}", "-e", "local")
    assert first.exit_code == 0, first.output

    marker.touch()
    fresh = invoke(
        home, "run", f"{flow_file}:flow", "-p", f"marker={marker}", "-e", "local", "--no-cache"
    )
    assert fresh.exit_code == 1  # total executed (not read back) and refused
    assert "numbers  COMPLETED" in fresh.output and "cache bypassed for this run" in fresh.output
    assert "step 'total' failed: ValueError: total refused" in fresh.output

    marker.unlink()
    resumed = invoke(home, "resume", run_id_of(fresh.output))
    assert resumed.exit_code == 0, resumed.output
    assert "2 steps, 0 cached" in resumed.output and "total  COMPLETED" in resumed.output


def test_steps_in_worker_processes_open_the_stores_of_home_not_the_environment_s(
    tmp_path, monkeypatch
):
    """``--home`` reaches a step in a spawned worker, whose environment names another
    home (``MODELYARD_HOME``): it tags its own run, in the run's store."""
    from modelyard.config import Settings
    from modelyard.pipelines import load_output, pipelines_store

    other = tmp_path / "other"
    monkeypatch.setenv("MODELYARD_HOME", str(other))
    home = tmp_path / "yard"
    ran = invoke(
        home, "run", f"{pipeline_yard.__file__}:stores", "-p", f"marker={tmp_path}", "-e", "process"
    )
    assert ran.exit_code == 0, ran.output

    settings = Settings(home=home)
    record = pipelines_store(settings).get_run(run_id_of(ran.output))
    assert load_output(record, "own_store", settings=settings) == settings.resolved_store_uri()
    with TrackingClient.from_settings(settings) as client:
        assert client.get_run(record.steps[0].step_run_id).data.tags["reached"] == "yes"
    assert not other.exists()  # nothing opened the environment's stores
