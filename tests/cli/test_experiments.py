"""``modelyard experiments …``, and what every command shares: global options, errors, help."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import pytest
from typer.testing import CliRunner

from modelyard.cli.main import app, hoist_global_options


@pytest.fixture
def cli(tmp_path):
    """Run ``modelyard --home <tmp> ARGS…`` in-process."""
    runner = CliRunner()

    def invoke(*args: str):
        return runner.invoke(app, ["--home", str(tmp_path / "yard"), *args])

    return invoke


def names_listed(result) -> list[str]:
    return [line.split("│")[2].strip() for line in result.stdout.splitlines() if "│" in line]


def test_create_then_list_shows_id_name_stage_and_creation_time(cli):
    created = cli("experiments", "create", "demand")
    assert created.exit_code == 0, created.output
    assert "created experiment 'demand' with id 1" in created.stdout
    listed = cli("experiments", "list")
    assert listed.exit_code == 0
    assert names_listed(listed) == ["Default", "demand"]
    row = next(line for line in listed.stdout.splitlines() if "demand" in line)
    assert "1" in row and "active" in row and time.strftime("%Y-") in row


def test_deleted_experiments_are_listed_only_on_request(cli):
    cli("experiments", "create", "kept")
    cli("experiments", "create", "dropped")
    assert cli("experiments", "delete", "dropped").exit_code == 0
    assert names_listed(cli("experiments", "list")) == ["Default", "kept"]
    assert names_listed(cli("experiments", "list", "--deleted")) == ["dropped"]
    assert names_listed(cli("experiments", "list", "--all")) == ["Default", "kept", "dropped"]


def test_all_and_deleted_together_is_a_usage_error(cli):
    result = cli("experiments", "list", "--all", "--deleted")
    assert result.exit_code == 2
    assert "--all or --deleted" in result.stderr


def test_delete_and_restore_take_a_name_or_an_id(cli):
    cli("experiments", "create", "demand")
    assert "deleted experiment 'demand' (id 1)" in cli("experiments", "delete", "1").stdout
    restored = cli("experiments", "restore", "demand")
    assert restored.exit_code == 0
    assert "restored experiment 'demand' (id 1)" in restored.stdout
    assert names_listed(cli("experiments", "list")) == ["Default", "demand"]


def test_rename(cli):
    cli("experiments", "create", "old")
    result = cli("experiments", "rename", "old", "new")
    assert result.exit_code == 0
    assert "'old' → 'new'" in result.stdout
    assert names_listed(cli("experiments", "list")) == ["Default", "new"]


@pytest.mark.parametrize("command", ["delete", "restore", "rename"])
def test_an_unknown_experiment_exits_2_naming_it(cli, command):
    args = ["experiments", command, "ghost"] + (["other"] if command == "rename" else [])
    result = cli(*args)
    assert result.exit_code == 2
    assert result.stderr.strip().splitlines() == [
        "error: no experiment named or numbered 'ghost'; "
        "`modelyard experiments list --all` shows them"
    ]
    assert "Traceback" not in result.output


def test_a_taken_name_exits_2_with_the_store_message(cli):
    cli("experiments", "create", "demand")
    result = cli("experiments", "create", "demand")
    assert result.exit_code == 2
    assert result.stderr.startswith("error: an experiment named 'demand' already exists")


def test_global_options_may_follow_the_command(tmp_path):
    home = str(tmp_path / "yard")
    runner = CliRunner()
    assert runner.invoke(app, ["experiments", "create", "after", "--home", home]).exit_code == 0
    listed = runner.invoke(app, ["experiments", "list", f"--home={home}"])
    assert "after" in listed.stdout
    assert (tmp_path / "yard" / "modelyard.db").exists()


def test_hoisting_moves_only_global_options_and_stops_at_double_dash():
    assert hoist_global_options(["runs", "list", "--home", "h", "--max", "3"]) == [
        "--home",
        "h",
        "runs",
        "list",
        "--max",
        "3",
    ]
    assert hoist_global_options(["runs", "--store-uri=x", "--", "--home", "y"]) == [
        "--store-uri=x",
        "runs",
        "--",
        "--home",
        "y",
    ]
    assert hoist_global_options(["runs", "search", "--home"]) == ["runs", "search", "--home"]


def test_invalid_settings_exit_2_naming_the_setting(tmp_path):
    result = CliRunner().invoke(
        app, ["--home", str(tmp_path), "--store-uri", "nosuchdb://x", "experiments", "list"]
    )
    assert result.exit_code == 2
    assert result.stderr.startswith("error: ")
    assert "Traceback" not in result.output


def test_help_runs_as_a_program_and_lists_the_commands():
    exe = Path(sys.executable).with_name("modelyard")
    command = [str(exe)] if exe.exists() else [sys.executable, "-m", "modelyard.cli.main"]
    result = subprocess.run([*command, "--help"], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    for name in ("experiments", "runs", "gc", "demo", "--home", "--store-uri"):
        assert name in result.stdout


def test_the_client_a_command_opened_is_closed_when_it_ends(cli, monkeypatch):
    from modelyard.tracking.client import TrackingClient

    closed: list[TrackingClient] = []
    original = TrackingClient.close
    monkeypatch.setattr(TrackingClient, "close", lambda self: closed.append(self) or original(self))
    assert cli("experiments", "list").exit_code == 0
    assert len(closed) == 1
    assert cli("experiments", "--help").exit_code == 0  # opened none, closes none
    assert len(closed) == 1
