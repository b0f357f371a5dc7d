"""``modelyard demo``: the synthetic retail data set, and the tracked runs the demo leaves."""

from __future__ import annotations

import json

import numpy as np
import pytest
from typer.testing import CliRunner

from modelyard.cli.demo import CANDIDATES, EXPERIMENT, OBJECTIVE, how_to_run, make_retail_demand
from modelyard.cli.main import app
from modelyard.config import Settings
from modelyard.tracking.client import TrackingClient


class TestDataSet:
    @pytest.fixture(scope="class")
    def frame(self):
        return make_retail_demand(30_000)

    def test_is_stores_by_products_by_days(self, frame):
        series = frame.groupby(["store", "product"]).size()
        assert len(series) == 8 * 12
        assert series.nunique() == 1  # every series covers the same days
        assert 29_000 <= len(frame) <= 31_000

    def test_is_reproducible(self, frame):
        assert make_retail_demand(30_000).equals(frame)

    def test_weekends_sell_more(self, frame):
        by_day = frame.groupby("day_of_week")["units_sold"].mean()
        assert by_day[[5, 6]].min() > by_day[[0, 1, 2]].max()

    def test_promotions_lift_demand_and_cut_price(self, frame):
        promo = frame[frame["promo"] == 1]
        plain = frame[(frame["promo"] == 0) & (frame["disruption"] == 0)]
        assert promo["units_sold"].mean() > 1.2 * plain["units_sold"].mean()
        price = frame.groupby(["product", "promo"])["price"].max().unstack()
        assert (price[1] < price[0]).all()

    def test_lags_look_only_at_the_past(self, frame):
        one = frame[(frame["store"] == 0) & (frame["product"] == 0)].reset_index(drop=True)
        units = one["units_sold"].to_numpy()
        assert np.array_equal(one["lag_1"].to_numpy()[1:], units[:-1])
        assert np.array_equal(one["lag_7"].to_numpy()[7:], units[:-7])
        assert one["mean_7"].iloc[10] == pytest.approx(units[3:10].mean())


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    """One quick demo run (few rows), shared by the tests below."""
    home = tmp_path_factory.mktemp("demo") / "yard"
    result = CliRunner().invoke(app, ["demo", "--home", str(home), "--rows", "2000"])
    assert result.exit_code == 0, result.output
    client = TrackingClient.from_settings(Settings(home=home))
    experiment = client.get_experiment_by_name(EXPERIMENT)
    runs = client.search_runs([experiment.experiment_id]).items
    return result, client, runs, home


def test_trains_each_candidate_in_a_finished_run_with_the_objective(demo):
    _, _, runs, _ = demo
    assert sorted(r.info.run_name for r in runs) == sorted(c.name for c in CANDIDATES)
    for run in runs:
        assert run.info.status == "FINISHED"
        assert run.data.tags["objective"] == OBJECTIVE
        assert {"rmse", "mae", "train_rmse", "fit_seconds"} <= set(run.data.metrics)
        assert run.data.params["model"] in ("ridge", "gbm")
        assert {i.context for i in run.inputs} == {"training", "validation"}


def test_boosting_runs_log_the_validation_curve_per_stage(demo):
    _, client, runs, _ = demo
    for run in runs:
        if run.data.params["model"] != "gbm":
            continue
        curve = client.get_metric_history(run.info.run_id, "valid_rmse")
        assert [p.step for p in curve] == list(range(1, int(run.data.params["n_estimators"]) + 1))
        assert curve[-1].value == pytest.approx(run.data.metrics["rmse"])
        assert curve[-1].value < curve[0].value


def test_each_run_stores_model_figure_and_evaluation(demo):
    from modelyard.registry.log_model import registry_for

    _, client, runs, _ = demo
    registry = registry_for(client.settings)
    for run in runs:
        run_id = run.info.run_id
        files = {
            f.path
            for folder in ("model", "plots", "evaluation")
            for f in client.list_artifacts(run_id, folder)
        }
        assert files >= {
            "model/MLmodel.json",
            "model/model.skops",
            "plots/predicted_vs_actual.png",
            "evaluation/summary.json",
        }
        assert client.read_artifact(run_id, "plots/predicted_vs_actual.png").startswith(b"\x89PNG")
        summary = json.loads(client.read_artifact(run_id, "evaluation/summary.json"))
        assert summary["rmse"] == pytest.approx(run.data.metrics["rmse"])
        # a saved model: it loads untrusted, with no types listed by hand
        loaded = registry.load_model(f"runs:/{run_id}/model")
        assert loaded.flavor == "sklearn"
        assert len(loaded.predict(loaded.input_example())) == 5


def test_summary_names_the_best_run_and_where_to_look(demo):
    result, _, runs, home = demo
    best = min(runs, key=lambda r: r.data.metrics["rmse"])
    out = result.stdout
    assert f"best run: {best.info.run_name} ({best.info.run_id})" in out
    assert f"modelyard runs show {best.info.run_id} --home {home}" in out
    assert f"modelyard runs list --home {home}" in out
    assert str(home / "modelyard.db") in out


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
    result, _, _, home = demo
    command, hint = how_to_run()
    assert f"{command} runs list --home {home} --experiment {EXPERIMENT}" in result.stdout
    if hint:
        assert hint in result.stdout


def test_too_few_rows_is_a_usage_error(tmp_path):
    result = CliRunner().invoke(app, ["demo", "--home", str(tmp_path), "--rows", "10"])
    assert result.exit_code == 2
