"""``modelyard demo``: the story runs end to end, and every stage left its records in the
stores — runs, dataset versions, approvals, revisions, evaluations, alerts, pipeline runs,
lineage — not only lines on the screen."""

from __future__ import annotations

import re

import pytest
from typer.testing import CliRunner

from modelyard.cli.demo import how_to_run
from modelyard.cli.main import app
from modelyard.config import Settings
from modelyard.demo.workspace import (
    DATASET,
    EXPERIMENT,
    MODEL,
    PIPELINE,
    PRODUCTION,
    REVIEWER,
    SCIENTIST,
    STAGING,
)


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    """One scaled-down demo (``--quick``: 6 stores × 8 products, 16 live days)."""
    home = tmp_path_factory.mktemp("demo") / "yard"
    result = CliRunner().invoke(app, ["demo", "--home", str(home), "--quick", "--no-serve"])
    assert result.exit_code == 0, result.output
    return result, Settings(home=home), home


pytestmark = pytest.mark.slow


def test_every_stage_is_reported_in_order(demo):
    out = demo[0].stdout
    titles = [
        "generate sales history",
        "dataset version and contract check",
        "feature store",
        "training: sweep and time-aware cross-validation",
        "metrics per region and category",
        "registration with a model card",
        "quality gate against the champion",
        "approval (four eyes)",
        "blue-green in staging, then a canary in production",
        "live traffic over HTTP: canary days",
        "live traffic: seasonal shift and promotion shock",
        "drift and live-metric alert",
        "the retraining pipeline, triggered by the alert",
        "the retrained model: shadow, canary, then promoted or rolled back",
    ]
    positions = [out.index(f"] {title}") for title in titles]
    assert positions == sorted(positions)
    assert "✗" not in out
    assert "key numbers" in out and "lead time" in out


def test_training_runs_are_tracked_with_time_aware_cv_and_a_sweep(demo):
    from modelyard.tracking.client import TrackingClient

    _, settings, _ = demo
    client = TrackingClient.from_settings(settings)
    experiment = client.get_experiment_by_name(EXPERIMENT)
    runs = {r.info.run_name: r for r in client.search_runs([experiment.experiment_id]).items}
    for name in ("ridge-baseline", "gbm-poisson"):
        run = runs[name]
        assert run.info.status == "FINISHED"
        assert run.data.params["features"] == "202"
        metrics = set(run.data.metrics)
        assert {"eval.rmse", "eval.mae", "eval.fold.rmse"} <= metrics
        folds = client.get_metric_history(run.info.run_id, "eval.fold.rmse")
        assert len(folds) == 2  # --quick: two time-ordered folds
        assert {
            f"eval.slice.region.{r}.rmse" for r in ("north", "south", "east", "west")
        } <= metrics
    sweep_id = re.search(r"sweep retail-demand-sweep: .* \(run (\w+)\)", demo[0].stdout)[1]
    sweep = client.get_run(sweep_id)
    trials = client.search_runs(
        [sweep.info.experiment_id], f"tags.mlflow.parentRunId = '{sweep_id}'"
    ).items
    assert len(trials) == 2 and all(t.info.status == "FINISHED" for t in trials)


def test_two_dataset_versions_pass_the_contract(demo):
    from modelyard.data.client import DataClient

    _, settings, _ = demo
    data = DataClient.from_settings(settings)
    versions = data.list_versions(DATASET)
    assert [v.version for v in versions][:2] in ([1, 2], [2, 1])
    assert data.check(f"{DATASET}@2", demo[2] / "demo" / "contract.yaml").passed


def test_the_candidate_passed_its_gate_and_has_a_card_and_four_eyes_approval(demo):
    from modelyard.registry.client import RegistryClient

    _, settings, _ = demo
    registry = RegistryClient.from_settings(settings)
    candidate = registry.get_model_version(MODEL, 2)
    assert candidate.created_by == SCIENTIST
    verdict = registry.latest_gate_verdict(MODEL, 2)
    assert verdict is not None and verdict.passed
    card = registry.get_card(MODEL, 2)
    assert card.intended_use and card.limitations and card.validation_results["cv.rmse"] > 0
    approvals = registry.list_approvals(MODEL, 2)
    assert [(a.actor, str(a.decision)) for a in approvals] == [(REVIEWER, "approved")]
    assert "cannot approve it (four-eyes rule)" in demo[0].stdout


def test_deployments_went_blue_green_canary_shadow_and_a_verdict(demo):
    from modelyard.serving.deployments import DeploymentService

    _, settings, _ = demo
    deployments = DeploymentService.from_settings(settings)
    staging = [r.action for r in deployments.history(STAGING)]
    production = [r.action for r in deployments.history(PRODUCTION)]
    assert "switch" in staging
    assert "canary" in production  # the candidate's; the retrained one's when its gate passed
    assert {"promote", "rollback"} & set(production)  # the verdict, either way


def test_live_traffic_was_logged_and_the_monitor_fired_the_error_alert(demo):
    from modelyard.monitoring.alerts import list_alerts
    from modelyard.monitoring.monitors import MonitorService
    from modelyard.serving.prediction_log import read_predictions

    _, settings, _ = demo
    monitors = MonitorService.from_settings(settings)
    logged = read_predictions(monitors.artifacts, PRODUCTION)
    assert len(logged) > 50 and set(logged["status"]) == {"ok"}
    (monitor,) = monitors.list(PRODUCTION)
    evaluations = monitors.store.evaluations(monitor.name)
    assert evaluations
    with monitors.db.read() as conn:
        alerts = list_alerts(conn, monitor.name)
    error = [a for a in alerts if a.rule == "forecast error"]
    assert error and error[0].trigger == PIPELINE and error[0].state == "firing"


def test_the_alert_started_the_retraining_pipeline_which_registered_a_version(demo):
    from modelyard.pipelines.runner import pipelines_store

    _, settings, _ = demo
    store = pipelines_store(settings)
    runs = [store.get_run(listed.run_id) for listed in store.list_runs(PIPELINE)]
    assert runs  # one per firing alert naming it (a repeat reuses the cached steps)
    for run in runs:
        assert run.cause["kind"] == "alert" and run.cause["rule"] == "forecast error"
        steps = {s.step_key: s.status for s in run.steps}
        assert steps["register"] in ("COMPLETED", "CACHED")
        # which champion it meets depends on the first canary's verdict: it passes its gate
        # and rolls out, or the run fails at the gate, saying so
        if run.status == "FAILED":
            assert steps["require_passed"] == "FAILED"
        else:
            assert run.status == "FINISHED" and steps["roll_out"] == "COMPLETED"


def test_lineage_joins_the_served_candidate_to_its_run_training_set_and_dataset(demo):
    from modelyard.lineage.service import LineageService

    _, settings, _ = demo
    document = LineageService.from_settings(settings).trace(f"models:/{MODEL}/2")
    kinds = {node.split(":", 1)[0] for node in document.nodes}
    assert {"dataset", "run", "training_set"} <= kinds


class TestTheNextCommands:
    """After ``make demo``, ``modelyard`` is in .venv/bin, not on the PATH: the commands the
    demo prints must be ones the user's shell runs."""

    def test_name_the_venv_script_and_how_to_activate_when_not_on_the_path(self, tmp_path):
        script = tmp_path / ".venv" / "bin" / "modelyard"
        command, hint = how_to_run(None, script, True, tmp_path)
        assert command == ".venv/bin/modelyard"
        assert hint == "or run `source .venv/bin/activate` once, then `modelyard …`"

    def test_are_plain_when_the_shell_finds_this_installation(self, tmp_path):
        script = tmp_path / ".venv" / "bin" / "modelyard"
        script.parent.mkdir(parents=True)
        script.write_text("#!/bin/sh\n")
        assert how_to_run(str(script), script, True, tmp_path) == ("modelyard", None)

    def test_name_this_installation_when_the_path_finds_another(self, tmp_path):
        script, other = tmp_path / "venv" / "bin" / "modelyard", tmp_path / "other"
        for path in (script, other):
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text("#!/bin/sh\n")
        command, hint = how_to_run(str(other), script, True, tmp_path / "elsewhere")
        assert command == str(script) and f"source {script.parent / 'activate'}" in hint

    def test_outside_a_venv_give_the_full_path_without_activate(self, tmp_path):
        script = tmp_path / "with space" / "bin" / "modelyard"
        command, hint = how_to_run(None, script, False, tmp_path / "elsewhere")
        assert command == f"'{script}'" and hint is None


def test_the_printed_commands_run_as_shown(demo):
    result, _, home = demo
    command, hint = how_to_run()
    assert f"{command} runs list --home {home} --experiment {EXPERIMENT}" in result.stdout
    assert f"{command} lineage models:/{MODEL}/" in result.stdout
    if hint:
        assert hint in result.stdout


def test_too_few_rows_is_a_usage_error(tmp_path):
    result = CliRunner().invoke(app, ["demo", "--home", str(tmp_path), "--rows", "10"])
    assert result.exit_code == 2


def test_a_second_run_in_the_same_home_works_and_says_what_it_reused(demo):
    """Last in this module: it adds versions and revisions to the shared home."""
    _, _, home = demo
    again = CliRunner().invoke(app, ["demo", "--home", str(home), "--quick", "--no-serve"])
    assert again.exit_code == 0, again.output
    out = again.stdout
    for reused in (
        f"reused: {DATASET}@1 (history up to the cut-off) was recorded by an earlier run",
        "reused: feature_view retail_daily v1 unchanged",
        "reused: sweep retail-demand-sweep: its trials were run before",
        f"reused: champion models:/{MODEL}/",
        f"reused: deployment {PRODUCTION} (production) at revision",
        "reused: monitors of earlier runs kept (retail-demand-watch-1)",
    ):
        assert reused in out, reused
    assert "✗" not in out
