"""Settings: code arguments beat MODELYARD_* variables, which beat .env, which beats defaults."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError

from modelyard.config import Settings, load_settings


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch, tmp_path):
    import os

    for name in list(os.environ):
        if name.upper().startswith("MODELYARD_"):
            monkeypatch.delenv(name)
    monkeypatch.chdir(tmp_path)


def test_defaults_put_everything_under_the_home_folder():
    settings = Settings()
    assert settings.home == Path(".modelyard")
    assert settings.resolved_store_uri().endswith(".modelyard/modelyard.db")
    assert settings.required_run_tags == [] and settings.convention_mode == "warn"


def test_code_beats_environment_which_beats_dotenv(monkeypatch, tmp_path):
    (tmp_path / ".env").write_text(
        "MODELYARD_USER=from-file\nMODELYARD_CONVENTION_MODE=refuse\n"
        "# a comment\nOTHER_TOOL_SETTING=1\nexport MODELYARD_SERVE_BATCH_MAX_SIZE=8\n"
    )
    monkeypatch.setenv("MODELYARD_USER", "from-env")
    assert Settings().user == "from-env"
    assert Settings().convention_mode == "refuse"
    assert Settings().serve_batch_max_size == 8
    assert Settings(user="from-code").user == "from-code"
    assert load_settings(user="override").user == "override"


def test_variable_names_are_case_insensitive_and_values_are_typed(monkeypatch):
    monkeypatch.setenv("modelyard_async_logging", "true")
    monkeypatch.setenv("MODELYARD_SERVE_POLL_INTERVAL_S", "0.25")
    monkeypatch.setenv("MODELYARD_REQUIRED_RUN_TAGS", "objective, team,")
    settings = Settings()
    assert settings.async_logging is True
    assert settings.serve_poll_interval_s == 0.25
    assert settings.required_run_tags == ["objective", "team"]


def test_a_bad_value_names_the_setting_and_builds_nothing(monkeypatch):
    monkeypatch.setenv("MODELYARD_SERVE_BATCH_MAX_SIZE", "lots")
    with pytest.raises(ValidationError, match="serve_batch_max_size"):
        Settings()
    with pytest.raises(ValidationError, match="convention_mode"):
        Settings(serve_batch_max_size=1, convention_mode="sometimes")


def test_settings_are_frozen_and_unknown_names_are_ignored(monkeypatch):
    monkeypatch.setenv("MODELYARD_NO_SUCH_SETTING", "x")
    settings = Settings()
    with pytest.raises(ValidationError):
        settings.user = "someone"  # type: ignore[misc]
    assert settings.model_copy(update={"user": "b"}).user == "b"
