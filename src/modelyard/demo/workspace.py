"""The demo's stores and people: one set of clients over the settings' home, the two demo
users (four eyes), and the folder the demo writes its files to.

The retraining pipeline's steps open the stores of the settings of the process they run in
(the ``MODELYARD_*`` environment), and so do the data plane and the UI the demo starts:
``environment`` is what they are given, so that all of them use this home.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from modelyard.config import Settings

MODEL = "retail-demand"
EXPERIMENT = "retail-demand"
STAGING, PRODUCTION = "retail-demand-staging", "retail-demand"
MONITOR = "retail-demand-watch"
PIPELINE = "retrain-demand"
DATASET = "retail-sales"
#: The data scientist registers; the reviewer approves (an approver cannot approve their
#: own version: the four-eyes rule).
SCIENTIST, REVIEWER = "ana", "bo"


@dataclass
class Workspace:
    """The clients every stage uses, opened once."""

    settings: Settings
    folder: Path
    tracking: Any
    data: Any
    features: Any
    registry: Any
    deployments: Any
    monitors: Any

    @classmethod
    def open(cls, settings: Settings) -> Workspace:
        from modelyard.data.client import DataClient
        from modelyard.features.client import FeatureStore
        from modelyard.monitoring.monitors import MonitorService
        from modelyard.registry.client import RegistryClient
        from modelyard.serving.deployments import DeploymentService
        from modelyard.tracking import fluent

        folder = Path(settings.home).absolute() / "demo"
        folder.mkdir(parents=True, exist_ok=True)
        return cls(
            settings=settings,
            folder=folder,
            tracking=fluent.configure(settings),
            data=DataClient.from_settings(settings),
            features=FeatureStore.from_settings(settings),
            registry=RegistryClient.from_settings(settings),
            deployments=DeploymentService.from_settings(settings),
            monitors=MonitorService.from_settings(settings),
        )

    def close(self) -> None:
        self.features.close()

    def as_user(self, name: str) -> Any:
        """The registry acting as ``name`` with the roles the auth store gives them."""
        from modelyard.auth.roles import ORDER
        from modelyard.registry.entities import Actor

        role = self.users()[name]
        roles = frozenset(str(r) for r in ORDER[: ORDER.index(role) + 1])
        return self.registry.as_actor(Actor(name, roles))

    def users(self) -> dict[str, Any]:
        """The demo users, created once (a second run finds them)."""
        from modelyard.auth.roles import Role
        from modelyard.auth.service import AuthService
        from modelyard.errors import NotFound

        auth = AuthService(self.registry.db)
        wanted = {SCIENTIST: Role.APPROVER, REVIEWER: Role.APPROVER}
        found = {}
        for name, role in wanted.items():
            try:
                found[name] = auth.get_user(name).role
            except NotFound:
                found[name] = auth.create_user(name, role).role
        return found

    def environment(self) -> dict[str, str]:
        """The ``MODELYARD_*`` variables naming these stores, for other processes."""
        return self.environment_of(self.settings)

    @staticmethod
    def environment_of(settings: Settings) -> dict[str, str]:
        return {
            "MODELYARD_HOME": str(Path(settings.home).absolute()),
            "MODELYARD_STORE_URI": settings.resolved_store_uri(),
            "MODELYARD_ARTIFACTS_URI": settings.resolved_artifacts_uri(),
        }


@contextmanager
def environment(values: dict[str, str]) -> Iterator[None]:
    """This process's environment with ``values`` set, restored afterwards (the pipeline's
    steps read their settings from it)."""
    saved = {k: os.environ.get(k) for k in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
