"""The control-plane app with ``--auth``, in process, over the governance yard
(``tests/ui/governance_yard.py``): what the registry, deployment, review and session
JSON tests call."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from starlette.testclient import TestClient
from tests.ui.governance_yard import Yard, write_yard

from modelyard.server.control.app import create_app
from modelyard.server.control.auth import auth_middleware
from modelyard.tracking.client import TrackingClient


@dataclass
class UiApp:
    http: TestClient
    yard: Yard

    def as_user(self, user: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.yard.tokens[user]}"}


def serve_yard(tmp: Path, base_url: str = "http://testserver") -> Iterator[UiApp]:
    yard = write_yard(tmp, tmp / "yard")
    client = TrackingClient.from_settings(yard.settings)
    app = create_app(yard.settings, client, middleware=[auth_middleware(yard.settings)])
    with TestClient(app, base_url=base_url) as http:
        yield UiApp(http, yard)
    client.close()
