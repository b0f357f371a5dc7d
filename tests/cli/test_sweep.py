"""``modelyard sweep FILE.py:objective --config sweep.yaml``: the sweep's YAML checked
(unknown keys refused with the closest one), the best run printed and comparable with
``runs compare``, a sweep continued by name, exit 1 when no trial completes."""

from __future__ import annotations

import textwrap

import pytest
from typer.testing import CliRunner

from modelyard.cli.main import app
from modelyard.tracking.client import TrackingClient

OBJECTIVES = textwrap.dedent(
    """
    def objective(params, trial):
        for step in range(3):
            trial.log_metric("rmse", (params["depth"] - 4) ** 2 + params["lr"] + 1 / (step + 1),
                             step=step)
        return None

    def broken(params):
        raise ValueError("no data")
    """
)

CONFIG = textwrap.dedent(
    """
    name: demand
    metric: rmse
    direction: minimize
    n_trials: 6
    sampler: random
    seed: 4
    space:
      depth: {type: int, low: 2, high: 6}
      lr: {type: float, low: 0.001, high: 0.3, log: true}
    """
)


@pytest.fixture
def files(tmp_path):
    (tmp_path / "train.py").write_text(OBJECTIVES)
    (tmp_path / "sweep.yaml").write_text(CONFIG)
    return tmp_path


def invoke(home, *args):
    return CliRunner().invoke(app, ["--home", str(home), *args])


def test_a_sweep_from_the_command_line_prints_the_best_run_to_compare(files):
    home = files / "yard"
    result = invoke(home, "sweep", f"{files}/train.py:objective", "--config", f"{files}/sweep.yaml")
    assert result.exit_code == 0, result.output
    assert "sweep demand ran" in result.output and "6 trials (6 complete)" in result.output
    best = result.output.split("best: run ")[1].split()[0]
    with _client(home) as client:
        run = client.get_run(best)
        parent = client.get_run(run.data.tags["mlflow.parentRunId"])
        other = next(
            r
            for r in client.search_runs(
                [run.info.experiment_id],
                f"tags.`mlflow.parentRunId` = '{parent.info.run_id}'",
            ).items
            if r.info.run_id != best
        )
    assert run.data.tags["modelyard.sweep.best"] == "true"
    assert parent.data.tags["modelyard.sweep.best_run"] == best
    compared = invoke(home, "runs", "compare", best, other.info.run_id)
    assert compared.exit_code == 0, compared.output
    assert "params.depth" in compared.output and "metrics.rmse" in compared.output

    more = invoke(
        home,
        "sweep",
        f"{files}/train.py:objective",
        "--config",
        f"{files}/sweep.yaml",
        "--n-trials",
        "8",
    )
    assert more.exit_code == 0, more.output
    assert "sweep demand continued" in more.output and "8 trials" in more.output


def _client(home):
    from modelyard.config import Settings

    return TrackingClient.from_settings(Settings(home=home))


def test_an_unknown_key_in_the_config_is_refused_with_the_closest_one(files):
    (files / "sweep.yaml").write_text(CONFIG.replace("n_trials:", "n_trail:"))
    result = invoke(
        files / "yard", "sweep", f"{files}/train.py:objective", "--config", f"{files}/sweep.yaml"
    )
    assert result.exit_code == 2
    assert "unknown key 'n_trail'; did you mean 'n_trials'?" in result.output


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (("sampler: random", "sampler: randon"), "did you mean 'random'"),
        (("{type: int, low: 2, high: 6}", "{type: int, low: 6, high: 2}"), "space.depth: low"),
        (("direction: minimize", "direction: [minimize]"), "direction"),
        (("name: demand", "name: demand\nparallel: 0"), "parallel"),
    ],
)
def test_bad_values_in_the_config_are_named(files, change, message):
    (files / "sweep.yaml").write_text(CONFIG.replace(*change))
    result = invoke(
        files / "yard", "sweep", f"{files}/train.py:objective", "--config", f"{files}/sweep.yaml"
    )
    assert result.exit_code == 2, result.output
    assert message in result.output


def test_a_missing_objective_or_config_exits_2(files):
    home = files / "yard"
    config = f"{files}/sweep.yaml"
    missing = invoke(home, "sweep", f"{files}/train.py:nothing", "--config", config)
    assert missing.exit_code == 2 and "'nothing' in" in missing.output
    no_file = invoke(home, "sweep", f"{files}/absent.py:objective", "--config", config)
    assert no_file.exit_code == 2 and "does not exist" in no_file.output
    no_config = invoke(home, "sweep", f"{files}/train.py:objective", "--config", "nope.yaml")
    assert no_config.exit_code == 2


def test_a_sweep_where_every_trial_fails_exits_1_with_the_reason(files):
    result = invoke(
        files / "yard", "sweep", f"{files}/train.py:broken", "--config", f"{files}/sweep.yaml"
    )
    assert result.exit_code == 1, result.output
    assert "no trial completed" in result.output and "no data" in result.output
