"""``modelyard scheduler`` and ``modelyard schedule``: one process evaluates the monitors
that are due, starts the schedules' runs and the alerts' pipelines; schedules are created
checked, listed with their last run, paused, resumed and deleted."""

from __future__ import annotations

from typer.testing import CliRunner

from modelyard.cli.main import app
from modelyard.ids import now_ms
from modelyard.pipelines import pipelines_store
from modelyard.pipelines.schedules import Schedules
from modelyard.tracking.backends import database_for

from ..pipelines import pipeline_yard
from ..pipelines.scheduler_yard import HOUR_MS, add_alert, register
from .test_monitor import served, yard

__all__ = ["served", "yard"]  # fixtures, used by name


def invoke(settings, *args: str):
    return CliRunner().invoke(app, ["--home", str(settings.home), *args])


def test_the_scheduler_once_evaluates_the_monitors_that_are_due(served):
    result = invoke(served.settings, "scheduler", "--once")

    assert result.exit_code == 0, result.output
    assert "monitor shop: window ending" in result.output
    assert invoke(served.settings, "monitor", "scheduler").exit_code == 2  # one way: gone


def test_schedules_from_the_command_line(settings, tmp_path):
    register(settings, tmp_path)
    made = invoke(
        settings, "schedule", "create", "nightly", "--cron", "0 3 * * *", "--param",
        "failures=0", "--executor", "local",
    )  # fmt: skip
    assert made.exit_code == 0, made.output
    assert "schedule nightly: nightly at '0 3 * * *', next" in made.output
    assert Schedules(database_for(settings)).get("nightly").params == {"failures": 0}
    listed = invoke(settings, "schedule", "list")
    assert "nightly" in listed.output and "active" in listed.output
    assert "paused" in invoke(settings, "schedule", "pause", "nightly").output
    assert "paused" in invoke(settings, "schedule", "list").output
    assert invoke(settings, "schedule", "resume", "nightly").exit_code == 0
    assert invoke(settings, "schedule", "delete", "nightly").exit_code == 0
    assert "nightly" not in invoke(settings, "schedule", "list").output


def test_bad_schedules_exit_2_naming_the_problem(settings, tmp_path):
    register(settings, tmp_path)
    bad_cron = invoke(settings, "schedule", "create", "nightly", "--cron", "0 3 * *")
    assert bad_cron.exit_code == 2 and "has 4 fields" in bad_cron.output
    unknown = invoke(settings, "schedule", "create", "nope", "--cron", "@daily")
    assert unknown.exit_code == 2 and "no pipeline named 'nope'" in unknown.output
    bad_param = invoke(settings, "schedule", "create", "nightly", "--cron", "@daily", "-p", "x")
    assert bad_param.exit_code == 2 and "KEY=VALUE" in bad_param.output
    assert invoke(settings, "schedule", "pause", "nope").exit_code == 2


def test_the_scheduler_once_starts_a_due_schedule_and_an_alert_trigger(settings, tmp_path):
    register(settings, tmp_path)
    db = database_for(settings)
    two_hours_ago = now_ms() - 2 * HOUR_MS
    Schedules(db, clock=lambda: two_hours_ago).create("nightly", "0 * * * *", executor="local")
    alert_id = add_alert(db, trigger="nightly", at=now_ms() - HOUR_MS)

    result = invoke(settings, "scheduler", "--once", "--no-monitors", "--executor", "local")

    assert result.exit_code == 0, result.output
    assert "started nightly for schedule:nightly@" in result.output
    assert f"started nightly for alert:{alert_id}" in result.output
    runs = pipelines_store(settings).list_runs("nightly")
    assert sorted(r.cause["kind"] for r in runs) == ["alert", "schedule"]
    assert {r.status for r in runs} == {"FINISHED"}
    again = invoke(settings, "scheduler", "--once", "--no-monitors")
    assert "started" not in again.output  # a restart starts nothing twice
    listed = invoke(settings, "schedule", "list")
    assert "finished" in listed.output


def test_a_scheduler_given_home_runs_worker_steps_on_that_home_s_stores(
    settings, tmp_path, monkeypatch
):
    """``modelyard --home X scheduler``: a schedule's steps in worker processes open X's
    stores, not those of ``MODELYARD_HOME`` in their environment."""
    from modelyard.pipelines import PipelineRegistry
    from modelyard.tracking.client import TrackingClient

    PipelineRegistry(settings).register(
        "stores", f"{pipeline_yard.__file__}:stores", {"marker": str(tmp_path)}
    )
    two_hours_ago = now_ms() - 2 * HOUR_MS
    schedules = Schedules(database_for(settings), clock=lambda: two_hours_ago)
    schedules.create("stores", "0 * * * *", executor="process")
    other = tmp_path / "other"
    monkeypatch.setenv("MODELYARD_HOME", str(other))

    result = invoke(settings, "scheduler", "--once", "--no-monitors")

    assert result.exit_code == 0, result.output
    store = pipelines_store(settings)
    (listed,) = store.list_runs("stores")
    run = store.get_run(listed.run_id)
    assert run.status == "FINISHED", run.error
    with TrackingClient.from_settings(settings) as client:
        assert client.get_run(run.steps[0].step_run_id).data.tags["reached"] == "yes"
    assert not other.exists()
