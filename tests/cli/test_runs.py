"""``modelyard runs …``: list, show, search, compare, delete and restore."""

from __future__ import annotations

import io
import json

import pandas as pd
import pytest
from rich.console import Console
from typer.testing import CliRunner

from modelyard.cli.main import app
from modelyard.cli.runs import comparison_table, format_duration
from modelyard.config import Settings
from modelyard.tracking.client import TrackingClient


@pytest.fixture
def home(tmp_path):
    return tmp_path / "yard"


@pytest.fixture
def client(home):
    return TrackingClient.from_settings(Settings(home=home))


@pytest.fixture
def cli(home):
    runner = CliRunner()

    def invoke(*args: str):
        return runner.invoke(app, ["--home", str(home), *args])

    return invoke


@pytest.fixture
def two_runs(client):
    """Two finished runs of 'demand': same model, different alpha; b has the lower rmse."""
    experiment_id = client.create_experiment("demand")
    ids = []
    for name, alpha, rmse, start in (
        ("ridge-a", "0.1", 3.0, 1_000),
        ("ridge-b", "0.5", 2.5, 2_000),
    ):
        run = client.create_run(experiment_id, run_name=name, start_time=start)
        client.log_param(run.info.run_id, "model", "ridge")
        client.log_param(run.info.run_id, "alpha", alpha)
        for step in range(3):
            client.log_metric(run.info.run_id, "rmse", rmse + 2 - step, step=step)
        client.log_metric(run.info.run_id, "rmse", rmse, step=3)
        client.log_metric(run.info.run_id, "mae", 1.5)
        client.set_tag(run.info.run_id, "objective", "cut stock-outs")
        client.set_terminated(run.info.run_id, end_time=start + 65_000)
        ids.append(run.info.run_id)
    return ids


def row_of(output: str, text: str) -> str:
    return next(line for line in output.splitlines() if text in line)


class TestList:
    def test_shows_id_name_status_start_duration_and_key_metrics(self, cli, two_runs):
        result = cli("runs", "list")
        assert result.exit_code == 0, result.output
        header = row_of(result.stdout, "run id")
        for column in ("name", "status", "start", "duration", "mae", "rmse", "experiment"):
            assert column in header
        row = row_of(result.stdout, two_runs[1])
        for cell in ("ridge-b", "FINISHED", "1m 05s", "2.5", "demand"):
            assert cell in row

    def test_newest_first_and_max_limits(self, cli, two_runs):
        result = cli("runs", "list", "--experiment", "demand", "--max", "1")
        assert two_runs[1] in result.stdout
        assert two_runs[0] not in result.stdout

    def test_experiment_by_id(self, cli, two_runs):
        assert two_runs[0] in cli("runs", "list", "-e", "1").stdout

    def test_an_unknown_experiment_exits_2_naming_it(self, cli, two_runs):
        result = cli("runs", "list", "--experiment", "ghost")
        assert result.exit_code == 2
        assert "error: no experiment named or numbered 'ghost'" in result.stderr

    def test_max_below_one_is_a_usage_error(self, cli):
        assert cli("runs", "list", "--max", "0").exit_code == 2


class TestShow:
    def test_shows_info_params_latest_metrics_tags_inputs_and_artifacts(
        self, cli, client, two_runs
    ):
        run_id = two_runs[0]
        client.log_text(run_id, "hello", "notes/readme.txt")
        client.log_input(run_id, pd.DataFrame({"x": [1, 2, 3]}), name="sales")
        result = cli("runs", "show", run_id)
        assert result.exit_code == 0, result.output
        out = result.stdout
        assert run_id in out and "ridge-a" in out and "demand (id 1)" in out
        assert "1m 05s" in out
        assert "0.1" in row_of(out, "alpha")
        assert row_of(out, "rmse").split() == ["│", "rmse", "│", "3", "│", "3", "│"]  # step 3
        assert "cut stock-outs" in row_of(out, "objective")
        assert "3 × 1" in row_of(out, "sales")
        assert "notes/" in out and "readme.txt 5 bytes" in out

    def test_system_tags_are_hidden_unless_asked_for(self, cli, two_runs):
        plain = cli("runs", "show", two_runs[0]).stdout
        assert "modelyard.user" not in plain
        assert "system tags hidden: --all-tags shows them" in plain
        assert "modelyard.user" in cli("runs", "show", two_runs[0], "--all-tags").stdout

    def test_an_unknown_run_exits_2_naming_it(self, cli, two_runs):
        result = cli("runs", "show", "0123456789abcdef")
        assert result.exit_code == 2
        assert result.stderr.strip() == "error: Run with id=0123456789abcdef not found"


class TestSearch:
    def test_filter_order_and_json(self, cli, two_runs):
        result = cli(
            "runs", "search", "-e", "demand", "--filter", "params.model = 'ridge'",
            "--order-by", "metrics.rmse ASC", "--json",
        )  # fmt: skip
        assert result.exit_code == 0, result.output
        found = json.loads(result.stdout)
        assert [r["run_id"] for r in found] == [two_runs[1], two_runs[0]]
        assert found[0]["metrics"] == {"rmse": 2.5, "mae": 1.5}
        assert found[0]["params"] == {"model": "ridge", "alpha": "0.5"}

    def test_filter_excludes(self, cli, two_runs):
        result = cli("runs", "search", "--filter", "metrics.rmse < 2.8", "--max", "5")
        assert two_runs[1] in result.stdout and two_runs[0] not in result.stdout

    def test_a_bad_filter_exits_2_and_says_where(self, cli, two_runs):
        result = cli("runs", "search", "--filter", "metrics.rmse <<< 3")
        assert result.exit_code == 2
        assert result.stderr.startswith("error: invalid filter at position")


class TestCompare:
    def test_marks_the_rows_that_differ(self, cli, client, two_runs):
        client.log_param(two_runs[1], "extra", "only-b")
        result = cli("runs", "compare", *two_runs)
        assert result.exit_code == 0, result.output
        out = result.stdout
        assert row_of(out, "params.alpha").split()[:3] == ["│", "≠", "│"]
        assert row_of(out, "params.extra").split()[:3] == ["│", "≠", "│"]  # missing differs
        assert "—" in row_of(out, "params.extra")
        assert row_of(out, "params.model").split()[:3] == ["│", "│", "params.model"]
        assert row_of(out, "metrics.rmse").split()[:3] == ["│", "≠", "│"]
        assert row_of(out, "metrics.mae").split()[:3] == ["│", "│", "metrics.mae"]

    def test_differing_rows_are_bold_yellow_in_a_colour_terminal(self, client, two_runs):
        runs = [client.get_run(run_id) for run_id in two_runs]
        buffer = io.StringIO()
        Console(file=buffer, force_terminal=True, color_system="standard", width=200).print(
            comparison_table(runs)
        )
        bold_yellow = "\x1b[1;33m"
        assert bold_yellow in row_of(buffer.getvalue(), "params.alpha")
        assert bold_yellow not in row_of(buffer.getvalue(), "params.model")

    def test_needs_two_runs(self, cli, two_runs):
        result = cli("runs", "compare", two_runs[0])
        assert result.exit_code == 2
        assert "at least two" in result.stderr

    def test_an_unknown_run_exits_2_naming_it(self, cli, two_runs):
        result = cli("runs", "compare", two_runs[0], "nosuchrun")
        assert result.exit_code == 2
        assert "id=nosuchrun" in result.stderr


class TestDeleteRestore:
    def test_delete_hides_and_restore_brings_back(self, cli, two_runs):
        deleted = cli("runs", "delete", *two_runs)
        assert deleted.exit_code == 0
        assert deleted.stdout.splitlines() == [f"deleted run {r}" for r in two_runs]
        assert "no runs — log one" in cli("runs", "list").stdout
        assert cli("runs", "restore", two_runs[0]).exit_code == 0
        listed = cli("runs", "list").stdout
        assert two_runs[0] in listed and two_runs[1] not in listed

    def test_one_unknown_id_changes_nothing(self, cli, client, two_runs):
        result = cli("runs", "delete", two_runs[0], "nosuchrun")
        assert result.exit_code == 2
        assert "Run with id=nosuchrun not found" in result.stderr
        assert client.get_run(two_runs[0]).info.lifecycle_stage == "active"


@pytest.mark.parametrize(
    ("start", "end", "text"),
    [
        (0, None, "—"),
        (0, 420, "420ms"),
        (0, 12_345, "12.3s"),
        (0, 245_000, "4m 05s"),
        (0, 7_380_000, "2h 03m"),
        (0, 273_600_000, "3d 4h"),
    ],
)
def test_durations_are_human_sized(start, end, text):
    assert format_duration(start, end) == text
