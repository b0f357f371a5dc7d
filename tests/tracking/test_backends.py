"""Choosing backends from settings, and saying clearly when one cannot be reached."""

from __future__ import annotations

import pytest

from modelyard.config import Settings
from modelyard.errors import NotImplementedFeature, StoreUnavailable
from modelyard.tracking.client import TrackingClient


def test_an_unreachable_database_is_store_unavailable():
    settings = Settings(store_uri="postgresql+psycopg://nobody@127.0.0.1:1/nowhere")
    with pytest.raises(StoreUnavailable, match=r"127\.0\.0\.1:1/nowhere"):
        TrackingClient.from_settings(settings)


def test_a_tracking_uri_that_is_not_http_is_refused():
    with pytest.raises(NotImplementedFeature, match="http"):
        TrackingClient.from_settings(Settings(tracking_uri="ftp://x"))


def test_defaults_live_under_home(tmp_path):
    settings = Settings(home=tmp_path / "yard")
    TrackingClient.from_settings(settings).create_experiment("e")
    assert (tmp_path / "yard" / "modelyard.db").exists()
    assert settings.resolved_artifacts_uri() == str((tmp_path / "yard" / "artifacts").absolute())
