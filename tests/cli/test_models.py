"""``modelyard models …``: register, promote, approve, describe and compare versions."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import typer
from typer.testing import CliRunner

from modelyard.cli import audit, main, models
from modelyard.config import Settings
from modelyard.registry.formats.flavors import save_model
from modelyard.tracking.client import TrackingClient


def registry_app() -> typer.Typer:
    """The root ``modelyard`` app once it registers ``models`` and ``audit``; until then the
    same root callback and error handling, composed with them here."""
    if {"models", "audit"} <= {group.name for group in main.app.registered_groups}:
        return main.app
    app = typer.Typer(cls=main.ModelyardGroup, no_args_is_help=True, add_completion=False)
    app.callback()(main.root)
    app.add_typer(models.app, name="models")
    app.add_typer(audit.app, name="audit")
    return app


@pytest.fixture
def home(tmp_path):
    return tmp_path / "yard"


@pytest.fixture
def cli(home):
    runner, app = CliRunner(), registry_app()

    def invoke(*args: str, user: str = "ana"):
        return runner.invoke(app, ["--home", str(home), *args], env={"MODELYARD_USER": user})

    return invoke


@pytest.fixture
def run_ids(home, tmp_path):
    """Two runs that each logged a model; the second with another C, metric and dataset."""
    from sklearn.linear_model import LogisticRegression

    tracking = TrackingClient.from_settings(Settings(home=home, user="ana"))
    experiment = tracking.create_experiment("churn")
    ids = []
    for i, c in enumerate((1.0, 0.1)):
        run_id = tracking.create_run(experiment).info.run_id
        X = pd.DataFrame({"price": np.linspace(0, 1, 20 + i), "visits": np.arange(20 + i) % 3})
        y = (X["price"] > 0.5).astype(int)
        tracking.log_param(run_id, "C", c)
        tracking.log_metric(run_id, "auc", 0.8 + i / 10)
        tracking.log_input(run_id, X, name="accounts")
        save_model(LogisticRegression(C=c).fit(X, y), tmp_path / run_id, input_example=X.head(2))
        tracking.log_artifacts(run_id, tmp_path / run_id, "model")
        ids.append(run_id)
    return ids


@pytest.fixture
def two_versions(cli, run_ids):
    for run_id in run_ids:
        assert cli("models", "register", f"runs:/{run_id}/model", "churn").exit_code == 0


def test_register_then_list_show_and_versions(cli, run_ids):
    result = cli("models", "register", f"runs:/{run_ids[0]}/model", "churn", "-d", "baseline")
    assert result.exit_code == 0, result.output
    assert "registered churn version 1 (sklearn)" in result.output

    listing = cli("models", "list")
    assert "churn" in listing.output and "1 registered model" in listing.output
    shown = cli("models", "show", "churn")
    assert "created by ana" in shown.output and run_ids[0] in shown.output
    assert "sklearn" in cli("models", "versions", "churn").output


def test_stage_alias_and_the_promotion_path(cli, two_versions):
    assert cli("models", "stage", "churn", "2", "Staging").exit_code == 0
    result = cli("models", "stage", "churn", "2", "Production")
    assert "churn version 2 is now in Production" in result.output
    assert "churn@champion → version 2" in cli("models", "alias", "churn", "champion", "2").output

    listing = cli("models", "list").output
    assert "champion→2" in listing
    assert (
        "deleted alias churn@champion"
        in cli("models", "alias", "churn", "champion", "--delete").output
    )


def test_approvals_follow_four_eyes(cli, two_versions):
    refused = cli("models", "approve", "churn", "1")
    assert refused.exit_code == 2
    assert "four-eyes" in refused.output

    approved = cli("models", "approve", "churn", "1", "-m", "looks good", user="bo")
    assert "bo approved churn version 1" in approved.output
    rejected = cli("models", "reject", "churn", "2", "--reason", "biased on region", user="bo")
    assert "bo rejected churn version 2: biased on region" in rejected.output


def test_an_invalid_transition_is_one_clear_error_line(cli, two_versions):
    result = cli("models", "stage", "churn", "1", "Production")
    assert result.exit_code == 2
    assert "cannot move from None to Production" in result.output
    assert "Traceback" not in result.output


def test_card_edit_and_render(cli, two_versions, tmp_path):
    edited = cli(
        "models",
        "card",
        "churn",
        "1",
        "--set",
        "intended_use=Retention calls",
        "--set",
        "owners=ana, retention-team",
    )
    assert edited.exit_code == 0, edited.output
    assert "Retention calls" in edited.output
    assert "- retention-team" in edited.output

    out = tmp_path / "card.html"
    assert cli("models", "card", "churn", "1", "--format", "html", "-o", str(out)).exit_code == 0
    assert "<h2>Training data</h2>" in out.read_text()
    bad = cli("models", "card", "churn", "1", "--set", "accuracy=great")
    assert bad.exit_code == 2 and "cannot be edited" in bad.output


def test_diff_shows_params_metrics_training_data_and_signature(cli, two_versions):
    result = cli("models", "diff", "churn", "1", "2")

    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    changed = [line for line in lines if "≠" in line and "│" in line]
    assert any(" C " in line and "1.0" in line and "0.1" in line for line in changed)
    assert any("auc" in line for line in changed)
    assert any("accounts (training)" in line for line in changed)
    assert any("input price" in line for line in lines)


def test_unknown_models_and_versions_are_clear_errors(cli, two_versions):
    assert "Registered Model with name=nope not found" in cli("models", "show", "nope").output
    assert "version=9) not found" in cli("models", "stage", "churn", "9", "Staging").output
