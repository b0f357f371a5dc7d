"""Team conventions: required run tags and experiment name patterns, warn or refuse."""

from __future__ import annotations

import pytest

from modelyard.config import Settings
from modelyard.errors import ConventionViolation, ConventionWarning
from modelyard.tracking.client import TrackingClient


def client_with(tmp_path, **conventions):
    return TrackingClient.from_settings(Settings(home=tmp_path / "yard", **conventions))


def test_required_tags_refused(tmp_path):
    client = client_with(tmp_path, required_run_tags="objective, team", convention_mode="refuse")
    with pytest.raises(ConventionViolation, match=r"'objective'.*'team'"):
        client.create_run("0", tags={"other": "x"})
    assert len(client.search_runs(["0"])) == 0
    run = client.create_run("0", tags={"objective": "cut stock-outs", "team": "retail"})
    assert run.data.tags["objective"] == "cut stock-outs"


def test_required_tags_warned(tmp_path):
    client = client_with(tmp_path, required_run_tags=["objective"])
    with pytest.warns(ConventionWarning, match="'objective'"):
        run = client.create_run("0")
    assert run.info.status == "RUNNING"


def test_experiment_name_pattern(tmp_path):
    client = client_with(
        tmp_path, experiment_name_pattern=r"[a-z]+/[a-z-]+", convention_mode="refuse"
    )
    client.create_experiment("retail/demand")
    with pytest.raises(ConventionViolation, match="Demand"):
        client.create_experiment("Demand")
    assert client.get_experiment_by_name("Demand") is None


def test_settings_come_from_the_environment(tmp_path, monkeypatch):
    monkeypatch.setenv("MODELYARD_REQUIRED_RUN_TAGS", "objective,team")
    monkeypatch.setenv("MODELYARD_CONVENTION_MODE", "refuse")
    settings = Settings(home=tmp_path)
    assert settings.required_run_tags == ["objective", "team"]
    assert settings.convention_mode == "refuse"
