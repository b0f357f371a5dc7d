"""Sweeps: every trial a child run of the sweep's run with its params and metrics, trials
pruned from the values they log per step, the best run tagged, parallel workers, and a
sweep that continues after an interruption (on SQLite and PostgreSQL)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from modelyard.errors import InvalidParameter, MissingExtra
from modelyard.pipelines.sweep_space import parse_space
from modelyard.pipelines.sweep_trials import TAG_BEST, TAG_STATE, objective_target
from modelyard.pipelines.sweeps import TAG_BEST_RUN, NoTrialCompleted, sweep
from modelyard.tracking.entities import RunStatus

SPACE = {
    "x": {"type": "float", "low": -4.0, "high": 4.0},
    "kind": ["a", "b"],
}


def quadratic(params):
    """Smallest at x = 1 with kind b."""
    return (params["x"] - 1.0) ** 2 + (0.0 if params["kind"] == "b" else 0.5)


def curve(params, trial):
    """A loss that falls over 8 steps towards (x - 1)², logged per step."""
    final = (params["x"] - 1.0) ** 2
    loss = final
    for step in range(8):
        loss = final + 4.0 / (step + 1)
        trial.log_metric("loss", loss, step=step)
    return loss


def text_result(params):
    return "not a number"


@pytest.fixture
def yard(backend_settings):
    """The fluent API (which trials log to) pointed at a fresh store, on each backend."""
    from modelyard.tracking import fluent

    client = fluent.configure(backend_settings)
    yield client
    while fluent.active_run() is not None:
        fluent.end_run()
    client.close()


@pytest.fixture
def local(settings):
    from modelyard.tracking import fluent

    client = fluent.configure(settings)
    yield client
    client.close()


def children(client, run_id):
    experiment = client.get_run(run_id).info.experiment_id
    runs = client.search_runs(
        [experiment], f"tags.`mlflow.parentRunId` = '{run_id}'", max_results=1000
    ).items
    return {r.info.run_name: r for r in runs}


def test_every_trial_is_a_child_run_with_its_params_and_value_and_the_best_is_tagged(local):
    result = sweep(quadratic, SPACE, n_trials=8, seed=3, name="quad")
    trials = children(local, result.run_id)
    assert sorted(trials) == [f"trial-{i}" for i in range(8)]
    for record in result.trials:
        run = trials[f"trial-{record.number}"]
        assert run.info.run_id == record.run_id
        assert run.info.status == "FINISHED"
        assert float(run.data.params["x"]) == record.params["x"]
        assert run.data.params["kind"] == record.params["kind"]
        assert run.data.metrics["objective"] == pytest.approx(quadratic(record.params))
        assert run.data.tags[TAG_STATE] == "COMPLETE"
    best = min(result.trials, key=lambda t: t.value)
    assert result.best_run_id == best.run_id and result.best_value == best.value
    tagged = [name for name, r in trials.items() if r.data.tags.get(TAG_BEST) == "true"]
    assert tagged == [f"trial-{best.number}"]
    parent = local.get_run(result.run_id)
    assert parent.info.status == "FINISHED"
    assert parent.data.tags[TAG_BEST_RUN] == best.run_id
    assert parent.data.metrics["best_objective"] == best.value
    assert parent.data.params["sweep.n_trials"] == "8"
    assert local.get_experiment(parent.info.experiment_id).name == "sweeps"


def test_unpromising_trials_are_pruned_from_the_metric_they_log_per_step(local):
    result = sweep(curve, SPACE, n_trials=16, metric="loss", seed=1, name="prune")
    pruned = [t for t in result.trials if t.state == "PRUNED"]
    assert pruned, "the median pruner stopped no trial"
    trials = children(local, result.run_id)
    for record in pruned:
        run = trials[f"trial-{record.number}"]
        assert run.data.tags[TAG_STATE] == "PRUNED"
        history = local.get_metric_history(run.info.run_id, "loss")
        assert 1 <= len(history) < 8  # stopped before the last step
    complete = [t for t in result.trials if t.state == "COMPLETE"]
    for record in complete:
        history = local.get_metric_history(record.run_id, "loss")
        assert [p.step for p in history] == list(range(8))  # the return value adds no point
    assert result.count("COMPLETE") + result.count("PRUNED") == 16


def test_the_fluent_api_logs_to_the_trial_that_runs(local):
    import modelyard

    def objective(params):
        modelyard.log_metric("seen", params["x"])
        modelyard.set_tag("who", "objective")
        return params["x"]

    result = sweep(objective, {"x": [1.0, 2.0]}, n_trials=2, sampler="grid", name="fluent")
    for record in result.trials:
        run = local.get_run(record.run_id)
        assert run.data.metrics["seen"] == record.params["x"]
        assert run.data.tags["who"] == "objective"


def test_the_grid_sampler_visits_every_point_once_by_default(local):
    space = {"depth": {"type": "int", "low": 2, "high": 6, "step": 2}, "kind": ["a", "b"]}
    result = sweep(lambda p: p["depth"], space, sampler="grid", name="grid")
    seen = sorted((t.params["depth"], t.params["kind"]) for t in result.trials)
    assert seen == [(d, k) for d in (2, 4, 6) for k in ("a", "b")]
    assert result.best_value == 2


def test_one_seed_gives_the_same_trials(local):
    first = sweep(quadratic, SPACE, n_trials=6, sampler="random", seed=11, name="seed-1")
    second = sweep(quadratic, SPACE, n_trials=6, sampler="random", seed=11, name="seed-2")
    assert [t.params for t in first.trials] == [t.params for t in second.trials]
    assert first.best_value == second.best_value


def test_a_sweep_started_again_continues_from_the_trials_it_has(yard):
    first = sweep(quadratic, SPACE, n_trials=4, seed=5, name="again")
    assert not first.resumed and len(first.trials) == 4
    second = sweep(quadratic, SPACE, n_trials=7, seed=5, name="again")
    assert second.resumed and second.run_id == first.run_id
    assert [t.number for t in second.trials] == list(range(7))
    assert [t.params for t in second.trials[:4]] == [t.params for t in first.trials]
    assert sorted(children(yard, first.run_id)) == sorted(f"trial-{i}" for i in range(7))
    assert second.best_value == min(t.value for t in second.trials)
    assert yard.get_run(first.run_id).info.status == "FINISHED"
    done = sweep(quadratic, SPACE, n_trials=7, seed=5, name="again")
    assert len(done.trials) == 7  # nothing left to run
    recorded = json.loads(yard.read_artifact(first.run_id, "sweep.json"))
    assert recorded["n_trials"] == 7  # what reproducing the sweep runs


def test_a_restart_with_another_space_or_direction_is_refused(yard):
    sweep(quadratic, SPACE, n_trials=2, name="fixed")
    with pytest.raises(InvalidParameter, match="another space") as caught:
        sweep(quadratic, {**SPACE, "kind": ["a"]}, n_trials=3, name="fixed")
    assert caught.value.field == "space"
    with pytest.raises(InvalidParameter, match="another direction"):
        sweep(quadratic, SPACE, n_trials=3, direction="maximize", name="fixed")


KILLED_SCRIPT = textwrap.dedent(
    """
    import sys, time
    from pathlib import Path
    import modelyard

    def objective(params):
        flags = Path(sys.argv[2])
        calls = len(list(flags.glob("call-*")))
        (flags / f"call-{calls}").write_text("")
        if calls == 3:
            (flags / "ready").write_text("")
            time.sleep(600)
        return params["x"] ** 2

    if __name__ == "__main__":
        modelyard.configure(store_uri=sys.argv[1], home=sys.argv[3])
        modelyard.sweep(objective, {"x": {"type": "float", "low": -1, "high": 1}},
                        n_trials=5, seed=2, name="killed")
    """
)


def test_a_sweep_killed_mid_trial_continues_and_fails_the_trial_it_left_running(
    yard, backend_settings, tmp_path
):
    """The process is SIGKILLed inside its fourth trial: nothing could mark it. Started
    again, the sweep fails that trial (and its run), then runs what is left."""
    script = tmp_path / "killed.py"
    script.write_text(KILLED_SCRIPT)
    flags = tmp_path / "flags"
    flags.mkdir()
    store = backend_settings.resolved_store_uri()
    home = str(backend_settings.home)
    proc = subprocess.Popen([sys.executable, str(script), store, str(flags), home])
    try:
        deadline = time.monotonic() + 300
        while not (flags / "ready").exists():
            assert proc.poll() is None, "the sweep ended before its fourth trial"
            assert time.monotonic() < deadline, "the sweep never reached its fourth trial"
            time.sleep(0.1)
    finally:
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()

    space = {"x": {"type": "float", "low": -1, "high": 1}}
    result = sweep(lambda p: p["x"] ** 2, space, n_trials=5, seed=2, name="killed")
    assert result.resumed
    states = [t.state for t in result.trials]
    assert states[:3] == ["COMPLETE"] * 3 and states[3] == "FAIL"
    assert states.count("COMPLETE") == 5  # the failed trial is run again
    stale = yard.get_run(result.trials[3].run_id)
    assert stale.info.status == str(RunStatus.KILLED)
    assert stale.data.tags[TAG_STATE] == "FAIL"
    assert yard.get_run(result.run_id).info.status == "FINISHED"


def test_parallel_workers_share_the_study_and_log_every_trial(local):
    result = sweep(quadratic, SPACE, n_trials=6, seed=4, parallel=2, name="parallel")
    assert sorted(t.number for t in result.trials) == list(range(6))
    assert all(t.state == "COMPLETE" for t in result.trials)
    trials = children(local, result.run_id)
    assert sorted(trials) == [f"trial-{i}" for i in range(6)]
    assert {r.data.tags["modelyard.pid"] for r in trials.values()} != {str(os.getpid())}
    assert result.best_value == min(quadratic(t.params) for t in result.trials)


def test_a_failing_objective_fails_its_trial_only(local):
    def sometimes(params):
        if params["kind"] == "a":
            raise RuntimeError("kind a is broken")
        return params["x"]

    result = sweep(sometimes, {"x": [1.0], "kind": ["a", "b"]}, sampler="grid", name="flaky")
    failed = [t for t in result.trials if t.state == "FAIL"]
    assert len(failed) == 1 and result.best_value == 1.0
    run = local.get_run(failed[0].run_id)
    assert run.info.status == "FAILED"
    assert "kind a is broken" in run.data.tags["modelyard.sweep.error"]


def test_a_sweep_where_no_trial_completes_fails_with_the_reason(local):
    with pytest.raises(NoTrialCompleted, match="return a number"):
        sweep(text_result, SPACE, n_trials=2, name="broken")
    experiment = local.get_experiment_by_name("sweeps").experiment_id
    runs = local.search_runs([experiment], "tags.`modelyard.sweep.name` = 'broken'").items
    parent = next(r for r in runs if not r.data.tags.get("mlflow.parentRunId"))
    assert parent.info.status == "FAILED"


@pytest.mark.parametrize(
    ("kwargs", "field", "message"),
    [
        ({"sampler": "tpee"}, "sampler", "did you mean 'tpe'"),
        ({"direction": "down"}, "direction", "use one of minimize, maximize"),
        ({"pruner": "medain"}, "pruner", "did you mean 'median'"),
        ({"n_trials": 0}, "n_trials", "1 or more"),
        ({"n_trials": None}, "n_trials", "required"),
        ({"parallel": 0}, "parallel", "1 or more"),
        ({"executor": "threads"}, "executor", "use one of local, process, ray"),
        ({"seed": 1.5}, "seed", "integer"),
        ({"name": " "}, "name", "1-200 characters"),
        ({"metric": ""}, "metric", "must name a metric"),
    ],
)
def test_bad_arguments_are_refused_naming_the_field(local, kwargs, field, message):
    arguments = {"n_trials": 3, **kwargs}
    with pytest.raises(InvalidParameter, match=message) as caught:
        sweep(quadratic, SPACE, **arguments)
    assert caught.value.field == field


@pytest.mark.parametrize(
    ("space", "message"),
    [
        ({}, "space must map"),
        ({"lr": {"type": "float", "low": 1.0, "high": 0.1}}, r"space.lr: low \(1.0\) is above"),
        ({"lr": {"type": "float", "low": 0, "high": 1, "log": True}}, "log: true needs low > 0"),
        ({"lr": {"type": "flaot", "low": 0, "high": 1}}, "did you mean 'float'"),
        ({"lr": {"low": 0, "high": 1}}, "type is required"),
        ({"lr": {"type": "float", "low": 0, "hihg": 1}}, "did you mean 'high'"),
        ({"k": {"type": "categorical", "choices": []}}, "at least one value"),
        ({"k": 3}, "give a list of choices"),
    ],
)
def test_a_bad_space_is_refused_naming_the_parameter(space, message):
    with pytest.raises(InvalidParameter, match=message):
        parse_space(space)


def test_a_float_grid_needs_a_step_and_a_grid_caps_the_trials(local):
    with pytest.raises(InvalidParameter, match="needs a step"):
        sweep(quadratic, SPACE, sampler="grid", name="g")
    with pytest.raises(InvalidParameter, match="more than the grid's 2 points"):
        sweep(quadratic, {"x": [1.0], "kind": ["a", "b"]}, sampler="grid", n_trials=3)


def test_a_parallel_sweep_needs_an_objective_its_workers_can_import(local):
    assert objective_target(quadratic) == f"{__name__}:quadratic"
    assert objective_target(lambda p: 0) is None
    with pytest.raises(InvalidParameter, match="top level") as caught:
        sweep(lambda p: 0.0, SPACE, n_trials=2, parallel=2)
    assert caught.value.field == "objective"


def test_an_objective_that_takes_nothing_is_refused(local):
    with pytest.raises(InvalidParameter, match="takes no argument"):
        sweep(lambda: 0.0, SPACE, n_trials=1, name="nothing")
    assert local.get_experiment_by_name("sweeps") is None  # refused before any run


def test_without_optuna_the_error_names_the_extra(monkeypatch, local):
    monkeypatch.setitem(sys.modules, "optuna", None)
    with pytest.raises(MissingExtra, match=r"pip install 'modelyard\[sweeps\]'"):
        sweep(quadratic, SPACE, n_trials=1)


def test_the_study_journal_lives_beside_the_metadata_database(local, settings):
    sweep(quadratic, SPACE, n_trials=1, name="where")
    store = Path(settings.resolved_store_uri().removeprefix("sqlite:///"))
    assert store.with_name(store.stem + ".sweeps.db").is_file()


def test_a_journal_that_writes_alone_refuses_records_another_process_wrote(backend_settings):
    """A sweep in one process answers reads from what it wrote; were a second process
    running the same sweep, the first's next append would be refused, not interleaved."""
    from modelyard.errors import InvalidState
    from modelyard.pipelines.sweep_journal import SqlJournal

    alone = SqlJournal(backend_settings, "shared", sole_writer=True)
    other = SqlJournal(backend_settings, "shared")
    alone.append_logs([{"op": 0}])
    assert other.count() == 0  # held until flushed
    alone.flush()
    other.append_logs([{"op": 1}])
    assert list(other.read_logs(0)) == [{"op": 0}, {"op": 1}]
    assert list(alone.read_logs(1)) == []  # no query: it wrote alone
    alone.append_logs([{"op": 2}])
    with pytest.raises(InvalidState, match="another process") as caught:
        alone.flush()
    assert caught.value.field == "name"
    assert other.count() == 2


@pytest.mark.slow
def test_trials_run_on_ray_workers_through_the_pipelines_ray_executor(local):
    ray = pytest.importorskip("ray")
    ray.init(num_cpus=2, include_dashboard=False, logging_level="WARNING", log_to_driver=False)
    try:
        result = sweep(
            quadratic, SPACE, n_trials=6, seed=4, parallel=2, executor="ray", name="on-ray"
        )
    finally:
        ray.shutdown()
    assert sorted(t.number for t in result.trials) == list(range(6))
    assert all(t.state == "COMPLETE" and t.run_id for t in result.trials)
    pids = {r.data.tags["modelyard.pid"] for r in children(local, result.run_id).values()}
    assert str(os.getpid()) not in pids


def test_maximize_picks_the_largest_value_and_hyperband_prunes_from_reports(local):
    def rising(params, trial):
        for step in range(9):
            trial.report(params["x"] * (step + 1), step)
        return params["x"] * 9

    result = sweep(
        rising,
        {"x": {"type": "float", "low": 0.0, "high": 1.0}},
        n_trials=12,
        direction="maximize",
        pruner="hyperband",
        seed=2,
        name="up",
    )
    complete = [t for t in result.trials if t.state == "COMPLETE"]
    assert result.best_value == max(t.value for t in complete)
    assert result.count("COMPLETE") + result.count("PRUNED") == 12
    history = local.get_metric_history(result.best_run_id, "objective")
    assert [p.step for p in history] == list(range(9))  # report() logs under the metric


def test_ctrl_c_kills_the_trial_and_the_sweep_which_continues_when_started_again(local):
    calls = []

    def interrupted(params):
        calls.append(params)
        if len(calls) == 3:
            raise KeyboardInterrupt
        return params["x"]

    with pytest.raises(KeyboardInterrupt):
        sweep(interrupted, SPACE, n_trials=5, seed=1, name="ctrl-c")
    runs = local.search_runs(
        [local.get_experiment_by_name("sweeps").experiment_id],
        "tags.`modelyard.sweep.name` = 'ctrl-c'",
    ).items
    statuses = {r.info.run_name: r.info.status for r in runs}
    assert statuses["ctrl-c"] == "KILLED" and statuses["trial-2"] == "KILLED"
    result = sweep(interrupted, SPACE, n_trials=5, seed=1, name="ctrl-c")
    assert result.resumed and [t.state for t in result.trials].count("COMPLETE") == 5
    assert result.trials[2].state == "FAIL"
    assert local.get_run(result.run_id).info.status == "FINISHED"


def test_an_unguarded_script_is_told_to_guard_its_call_not_swept_again_by_workers(
    settings, tmp_path
):
    """A worker imports the objective's script: an unguarded top-level sweep would start
    again there. Spawned processes stop at Python's own check; any other worker (Ray)
    loading the file is refused by the sweep."""
    script = tmp_path / "unguarded.py"
    script.write_text(
        textwrap.dedent(
            """
            import sys
            import modelyard

            def objective(params):
                return params["x"]

            modelyard.configure(home=sys.argv[1])
            modelyard.sweep(objective, {"x": [1, 2]}, sampler="grid", parallel=2)
            """
        )
    )
    done = subprocess.run(
        [sys.executable, str(script), str(settings.home)], capture_output=True, text=True
    )
    assert done.returncode == 1
    assert "2 worker(s) failed" in done.stderr
    assert "if __name__ == '__main__'" in done.stderr

    from modelyard.errors import InvalidState
    from modelyard.pipelines.sweep_trials import in_worker

    token = in_worker.set("objective")
    try:
        with pytest.raises(InvalidState, match="put the script's own call under"):
            sweep(quadratic, SPACE, n_trials=1)
    finally:
        in_worker.reset(token)
