"""A registry and a deployment written by the real rooms, for the registry, deployment and
review pages (and their JSON) to read back:

* ``churn`` versions 1 and 2 registered by alice from runs, version 1 with a card, a
  recorded quality gate and its Markdown report under ``validation/gates/...``;
* deployment ``web`` created on version 1, switched (blue-green) to version 2;
* a prediction log of ``web`` over the last minutes: ``REQUEST_ID`` answered by version 2
  with its inputs and outputs, more requests, one failed;
* users alice and ana (approvers), ed (editor), victor (viewer), and a token for each.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from modelyard.auth.service import AuthService
from modelyard.config import Settings
from modelyard.ids import now_ms
from modelyard.registry.client import RegistryClient
from modelyard.registry.formats.flavors import save_model
from modelyard.serving.deployments import DeploymentService
from modelyard.serving.prediction_log import PredictionLog, PredictionRecord
from modelyard.tracking.backends import database_for
from modelyard.tracking.client import TrackingClient

MODEL = "churn"
DEPLOYMENT = "web"
REQUEST_ID = "req-review-1"
#: A model card field holding markup: the pages must show it as text.
HOSTILE = "<img src=x onerror=alert(1)>"


@dataclass(frozen=True)
class Yard:
    settings: Settings
    tokens: dict[str, str]  # user -> token


def _register(tmp: Path, tracking: TrackingClient, registry: RegistryClient, n: int) -> None:
    from sklearn.linear_model import LinearRegression

    X = np.arange(20.0).reshape(10, 2)
    folder = tmp / f"model-{n}"
    save_model(LinearRegression().fit(X, X.sum(axis=1) * n), folder)
    run_id = tracking.create_run("0").info.run_id
    tracking.log_artifacts(run_id, folder, "model")
    registry.register_model(f"runs:/{run_id}/model", MODEL)


def _predictions(registry: RegistryClient, end_ms: int) -> None:
    log = PredictionLog(registry.artifacts, flush_interval_s=0.05)
    for i in range(12):
        ok = i != 5
        log.append(
            PredictionRecord(
                request_id=REQUEST_ID if i == 11 else f"req-{i}",
                ts_ms=end_ms - (12 - i) * 20_000,
                deployment=DEPLOYMENT,
                revision=2,
                variant="blue",
                model=MODEL,
                version=2,
                role="primary",
                status="ok" if ok else "error",
                latency_ms=2.0 + i,
                n_rows=1,
                inputs={"tenure": [float(i)], "plan": ["gold"]},
                outputs=[float(i % 2)] if ok else None,
                error=None if ok else "ValueError: bad input",
            )
        )
    log.close()


def write_yard(tmp: Path, home: Path) -> Yard:
    settings = Settings(home=home, user="alice")
    auth = AuthService(database_for(settings))
    tokens = {}
    users = (("alice", "approver"), ("ana", "approver"), ("ed", "editor"), ("victor", "viewer"))
    for user, role in users:
        auth.create_user(user, role)
        tokens[user] = auth.create_token(user).token
    with TrackingClient.from_settings(settings) as tracking:
        registry = RegistryClient.from_settings(settings)
        _register(tmp, tracking, registry, 1)
        _register(tmp, tracking, registry, 2)
    registry.update_card(MODEL, 1, intended_use=HOSTILE, owners=["alice"])
    registry.record_gate_verdict(  # an earlier run of the gate that failed
        MODEL,
        1,
        passed=False,
        policy="rmse <= champion",
        summary="rmse 0.3 > 0.2",
        created_at=now_ms() - 60_000,
    )
    folder = f"validation/gates/{MODEL}/1/{now_ms()}"
    registry.artifacts.log_bytes(f"{folder}/report.md", b"# Gate: passed\n\nrmse 0.1 <= 0.2\n")
    registry.record_gate_verdict(
        MODEL, 1, passed=True, policy="rmse <= champion", summary="rmse 0.1 <= 0.2", report=folder
    )
    deployments = DeploymentService(registry.db, registry)
    deployments.create(DEPLOYMENT, f"models:/{MODEL}/1", environment="staging")
    deployments.switch(DEPLOYMENT, f"models:/{MODEL}/2", reason="v2 is better")
    _predictions(registry, now_ms())
    return Yard(settings, tokens)


def write_ab_test(settings: Settings, name: str = "exp") -> str:
    """Deployment ``name``: an A/B test of churn v1 (a) against v2 (b), 40 logged requests
    with feedback: b converts every time, a one time in four."""
    from modelyard.serving.feedback import FeedbackItem, FeedbackStore, Served

    registry = RegistryClient.from_settings(settings)
    deployments = DeploymentService(registry.db, registry)
    deployments.create(name, f"models:/{MODEL}/1")
    deployments.ab(name, f"models:/{MODEL}/2")
    log, now = PredictionLog(registry.artifacts, flush_interval_s=0.05), now_ms()
    items, served = [], []
    for i in range(40):
        variant, version = "ab"[i % 2], 1 + i % 2
        log.append(
            PredictionRecord(
                f"{name}-{i}", now - i, name, 2, variant, MODEL, version, "primary", "ok", 1.0, 1
            )
        )
        items.append(FeedbackItem(f"{name}-{i}", value=float(variant == "b" or i % 4 == 0)))
        served.append(Served(variant, version, ()))
    log.close()
    FeedbackStore(registry.db).record(name, items, served)
    return name
