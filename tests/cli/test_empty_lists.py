"""A list command with nothing to list says so, and what to do next: never a blank screen."""

from __future__ import annotations

import pytest
from typer.testing import CliRunner

from modelyard.cli.main import app

LISTS = [
    ("runs", "list"),
    ("runs", "search"),
    ("models", "list"),
    ("data", "list"),
    ("features", "list"),
    ("deploy", "list"),
    ("users", "list"),
    ("tokens", "list"),
    ("audit", "log"),
]


@pytest.fixture(scope="module")
def empty_home(tmp_path_factory):
    return tmp_path_factory.mktemp("empty") / "yard"


@pytest.mark.parametrize("command", LISTS, ids=" ".join)
def test_an_empty_list_names_the_command_that_fills_it(empty_home, command) -> None:
    result = CliRunner().invoke(app, ["--home", str(empty_home), *command])

    assert result.exit_code == 0, result.output
    assert result.stdout.startswith("no ")
    assert " — " in result.stdout and "`modelyard" in result.stdout


def test_deploy_list_says_how_to_create_the_first_deployment(empty_home) -> None:
    result = CliRunner().invoke(app, ["--home", str(empty_home), "deploy", "list"])
    assert result.stdout == (
        "no deployments yet — create one with `modelyard deploy create NAME MODEL_URI`\n"
    )


def test_a_search_that_matches_nothing_says_to_loosen_the_filter(empty_home) -> None:
    result = CliRunner().invoke(
        app, ["--home", str(empty_home), "runs", "search", "-f", "metrics.rmse < 1"]
    )
    assert "no runs match — loosen --filter" in result.stdout


def test_json_output_stays_json_when_empty(empty_home) -> None:
    result = CliRunner().invoke(app, ["--home", str(empty_home), "runs", "search", "--json"])
    assert result.stdout.strip() == "[]"
