"""``runs reproduce``: a run logged from a committed script (or a sweep) is executed again
from its commit in a temporary git worktree and compared metric by metric: 0 on a match,
1 with the differing metrics, 2 when something it needs is gone, said plainly."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pandas as pd
import pytest
from typer.testing import CliRunner

from modelyard.cli.main import app
from modelyard.config import Settings
from modelyard.errors import InvalidParameter
from modelyard.pipelines import pipelines_store
from modelyard.pipelines.reproduce import TAG_REPRODUCES, CannotReproduce, reproduce
from modelyard.tracking.client import TrackingClient

TRAIN = textwrap.dedent(
    """
    import json
    import sys
    from pathlib import Path

    import modelyard
    from modelyard import DataClient

    sys.path.insert(0, "OUTSIDE")  # code outside the repository: it may change
    from helper import scale

    modelyard.set_experiment("repro")
    with modelyard.start_run(run_name="train") as run:
        modelyard.log_param("alpha", 0.5)
        refs = json.loads(Path(__file__).with_name("datasets.json").read_text())
        for ref in refs:
            DataClient.from_settings().log_input(run.info.run_id, ref)
        for step in range(3):
            modelyard.log_metric("loss", scale * 0.1 / (step + 1), step=step)
        # differs from one execution to the next, by less than 1e-6 relative
        noise = int.from_bytes(__import__("os").urandom(4), "big") + 1
        modelyard.log_metric("noisy", 1.0 + noise * 1e-16)
    """
)

OBJECTIVE = textwrap.dedent(
    """
    import modelyard

    def objective(params, trial):
        for step in range(3):
            trial.log_metric("loss", (params["x"] - 1) ** 2 + 1 / (step + 1), step=step)
        return None

    if __name__ == "__main__":
        modelyard.sweep(objective, {"x": {"type": "float", "low": -2, "high": 2}},
                        n_trials=4, seed=3, metric="loss", name="repro-sweep")
    """
)


FLOW = textwrap.dedent(
    """
    from modelyard.pipelines import pipeline, step

    @step(cache=CACHE)
    def total(days: int, label: str) -> float:
        assert label == "7", label  # text that looks like a number stays text
        return float(sum(range(days)))  # a numeric output: a metric of the runs

    @pipeline
    def flow(days: int = 3, label: str = "x"):
        return total(days, label)

    if __name__ == "__main__":
        flow.run({"days": 5, "label": "7"}, executor="local")
    """
)


def git(repo: Path, *args: str) -> str:
    done = subprocess.run(["git", *args], cwd=repo, check=True, capture_output=True, text=True)
    return done.stdout.strip()


@pytest.fixture
def settings(tmp_path) -> Settings:
    return Settings(home=tmp_path / "yard")


@pytest.fixture
def repo(tmp_path) -> Path:
    """A git repository with a training script and an objective, committed; a helper
    module outside it (``outside/helper.py``) that the script imports."""
    root = tmp_path / "project"
    (root / "src").mkdir(parents=True)
    (tmp_path / "outside").mkdir()
    (tmp_path / "outside" / "helper.py").write_text("scale = 1.0\n")
    (root / "src" / "train.py").write_text(TRAIN.replace("OUTSIDE", str(tmp_path / "outside")))
    (root / "src" / "datasets.json").write_text("[]")
    (root / "src" / "search.py").write_text(OBJECTIVE)
    (root / "src" / "flow.py").write_text(FLOW.replace("CACHE", "False"))
    (root / "src" / "cached_flow.py").write_text(FLOW.replace("CACHE", "True"))
    git(root, "init", "--quiet", "--initial-branch=main")
    git(root, "config", "user.email", "ana@example.com")
    git(root, "config", "user.name", "Ana")
    git(root, "add", ".")
    git(root, "commit", "--quiet", "-m", "train")
    return root


def env_for(settings: Settings) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("MODELYARD_")}
    env["MODELYARD_HOME"] = str(settings.home)
    return env


def log_run(repo: Path, settings: Settings, script: str = "src/train.py") -> str:
    """Run a script of the repository as a user would; the id of the top-level run it logged."""
    subprocess.run(
        [sys.executable, str(repo / script)],
        cwd=repo,
        env=env_for(settings),
        check=True,
        capture_output=True,
    )
    with TrackingClient.from_settings(settings) as client:
        names = [e.experiment_id for e in client.search_experiments().items]
        runs = client.search_runs(names, order_by=["start_time DESC"]).items
    top = [r for r in runs if "mlflow.parentRunId" not in r.data.tags]
    return top[0].info.run_id


def test_a_committed_script_run_is_reproduced_and_every_metric_matches(repo, settings):
    run_id = log_run(repo, settings)
    done = reproduce(run_id, settings=settings, rtol=1e-6)
    assert done.matches, done.differing
    assert done.kind == "script" and done.commit == git(repo, "rev-parse", "HEAD")
    keys = {(r.what, r.key) for r in done.rows}
    assert {("metric", "loss"), ("metric", "noisy"), ("param", "alpha")} <= keys
    loss = next(r for r in done.rows if r.key == "loss")
    assert loss.original == loss.reproduced == "0.03333333333333333 (3 points)"
    with TrackingClient.from_settings(settings) as client:
        again = client.get_run(done.reproduced_run_id)
    assert again.data.tags[TAG_REPRODUCES] == run_id
    assert git(repo, "worktree", "list").count("\n") == 0  # the temporary worktree is gone


def test_the_cli_prints_both_sides_and_exits_0_on_a_match(repo, settings):
    run_id = log_run(repo, settings)
    result = CliRunner().invoke(
        app, ["--home", str(settings.home), "runs", "reproduce", run_id, "--rtol", "1e-6"]
    )
    assert result.exit_code == 0, result.output
    assert "loss" in result.output and "0.03333333333333333" in result.output
    assert "values match (rtol 1e-06)" in result.output


def test_bit_identical_is_the_default_and_a_noisy_metric_differs(repo, settings):
    """``noisy`` is random below 1e-6: it matches within a tolerance, not bit for bit."""
    run_id = log_run(repo, settings)
    done = reproduce(run_id, settings=settings)
    assert [(r.run, r.key) for r in done.differing] == [("(run)", "noisy")]


def test_changed_code_outside_the_commit_does_not_match_and_exits_1(repo, settings, tmp_path):
    run_id = log_run(repo, settings)
    (tmp_path / "outside" / "helper.py").write_text("scale = 2.0\n")
    result = CliRunner().invoke(
        app, ["--home", str(settings.home), "runs", "reproduce", run_id, "--rtol", "1e-6"]
    )
    assert result.exit_code == 1, result.output
    assert "1 differ: (run):metrics.loss" in result.output
    assert "0.06666666666666667" in result.output  # the reproduced side, shown beside


def test_a_run_logged_from_a_dirty_worktree_cannot_be_reproduced_exit_2(repo, settings):
    train = repo / "src" / "train.py"
    train.write_text(train.read_text().replace("0.5)", "0.7)"))  # not committed
    run_id = log_run(repo, settings)
    with pytest.raises(CannotReproduce, match="dirty worktree"):
        reproduce(run_id, settings=settings)
    result = CliRunner().invoke(app, ["--home", str(settings.home), "runs", "reproduce", run_id])
    assert result.exit_code == 2
    assert "cannot reproduce" in result.output and "uncommitted changes" in result.output


def test_a_deleted_dataset_version_stops_the_reproduction_exit_2(repo, settings):
    from modelyard.data.client import DataClient

    data = DataClient.from_settings(settings)
    version = data.snapshot(pd.DataFrame({"units": [1, 2, 3]}), name="sales")
    (repo / "src" / "datasets.json").write_text(f'["{version.ref}"]')
    git(repo, "commit", "--quiet", "-am", "read sales")
    run_id = log_run(repo, settings)
    with TrackingClient.from_settings(settings) as client:
        assert [i.source for i in client.get_run(run_id).inputs] == [version.ref]
    assert reproduce(run_id, settings=settings, rtol=1e-6).matches
    for f in version.files:  # the version's data is deleted (gc, a lost bucket)
        data.artifacts.blobs.delete(f.sha256)
    result = CliRunner().invoke(app, ["--home", str(settings.home), "runs", "reproduce", run_id])
    assert result.exit_code == 2
    assert f"dataset version {version.ref}: its files are deleted" in result.output


def test_a_run_without_an_entry_point_or_a_commit_exits_2(settings, tmp_path):
    with TrackingClient.from_settings(settings) as client:
        experiment = client.create_experiment("bare")
        run = client.create_run(experiment, record_system_tags=False)
    with pytest.raises(CannotReproduce, match="recorded no entry point"):
        reproduce(run.info.run_id, settings=settings)
    script = tmp_path / "loose.py"  # not in a git repository
    script.write_text("import modelyard\nwith modelyard.start_run():\n    pass\n")
    subprocess.run([sys.executable, str(script)], env=env_for(settings), check=True)
    with TrackingClient.from_settings(settings) as client:
        found = client.search_runs([client.get_experiment_by_name("Default").experiment_id]).items
    with pytest.raises(CannotReproduce, match="not logged from a git repository"):
        reproduce(found[0].info.run_id, settings=settings)


def test_a_sweep_is_reproduced_trial_by_trial(repo, settings):
    run_id = log_run(repo, settings, "src/search.py")
    done = reproduce(run_id, settings=settings)
    assert done.kind == "sweep"
    assert done.matches, done.differing
    trials = {r.run for r in done.rows if r.run.startswith("trial-")}
    assert trials == {f"trial-{i}" for i in range(4)}
    assert ("(run)", "best_loss") in {(r.run, r.key) for r in done.rows}


def test_a_trial_names_its_sweep_and_rtol_is_checked(repo, settings):
    run_id = log_run(repo, settings, "src/search.py")
    with TrackingClient.from_settings(settings) as client:
        experiment = client.get_run(run_id).info.experiment_id
        child = client.search_runs([experiment], f"tags.`mlflow.parentRunId` = '{run_id}'").items[0]
    with pytest.raises(CannotReproduce, match="reproduce that run instead") as caught:
        reproduce(child.info.run_id, settings=settings)
    assert run_id in caught.value.message
    with pytest.raises(InvalidParameter, match="rtol"):
        reproduce(run_id, settings=settings, rtol=-1)


def test_a_pipeline_run_is_reproduced_with_its_params(repo, settings):
    run_id = log_run(repo, settings, "src/flow.py")
    done = reproduce(run_id, settings=settings)
    assert done.kind == "pipeline"
    assert done.matches, done.differing
    rows = {(r.run, r.what, r.key): r for r in done.rows}
    assert rows[("(run)", "param", "days")].reproduced == "5"
    assert rows[("(run)", "param", "label")].reproduced == '"7"'  # as JSON, like the original
    assert rows[("total", "metric", "total")].original == "10.0"


def test_a_reproduction_executes_every_step_even_those_the_cache_holds(repo, settings):
    """The original run cached ``total``; the reproduction bypasses the cache, so the value
    compared was computed again, not read back."""
    run_id = log_run(repo, settings, "src/cached_flow.py")
    done = reproduce(run_id, settings=settings)
    assert done.matches, done.differing
    with TrackingClient.from_settings(settings) as client:
        new = client.get_run(done.reproduced_run_id)
        steps = client.search_runs(
            [new.info.experiment_id], f"tags.`mlflow.parentRunId` = '{new.info.run_id}'"
        ).items
    assert new.data.tags["modelyard.pipeline.cache"] == "false"
    assert [s.data.tags["modelyard.step.status"] for s in steps] == ["COMPLETED"]
    (step,) = pipelines_store(settings).get_run(new.info.run_id).steps
    assert step.reason is not None and step.reason.startswith("cache bypassed for this run")


def test_a_pipeline_run_from_the_cli_records_its_file_s_commit_and_is_reproduced(repo, settings):
    """``modelyard pipelines run FILE.py:NAME`` runs the modelyard script: the run records
    the commit of FILE's repository, not the one the script (or pytest) lives in."""
    home = ["--home", str(settings.home)]
    target = f"{repo / 'src' / 'cached_flow.py'}:flow"
    ran = CliRunner().invoke(
        app, [*home, "pipelines", "run", target, "-p", "days=5", "-p", "label=7", "-e", "local"]
    )
    assert ran.exit_code == 0, ran.output
    run_id = ran.output.split(" run ", 1)[1].split()[0]
    with TrackingClient.from_settings(settings) as client:
        tags = client.get_run(run_id).data.tags
    assert tags["modelyard.source.git.commit"] == git(repo, "rev-parse", "HEAD")
    assert tags["modelyard.source.git.root"] == str(repo.resolve())
    assert tags["modelyard.source.git.dirty"] == "false"
    assert tags["modelyard.source.kind"] == "pipeline"
    result = CliRunner().invoke(app, [*home, "runs", "reproduce", run_id])
    assert result.exit_code == 0, result.output
    assert "values match" in result.output
