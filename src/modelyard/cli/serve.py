"""``modelyard serve``: the data plane — predictions over HTTP for a deployment or a model.

    modelyard serve web                              # follows deployment "web"'s revisions
    modelyard serve models:/churn@champion           # a one-off; follows the alias
    modelyard serve ./model --workers 4              # a saved model folder (built images)

Protocols on one port: Open Inference Protocol v2 (``/v2/...``, tritonclient works),
MLflow scoring (``/invocations``, ``/ping``), native ``/predict`` and ``/feedback``,
Prometheus ``/metrics``. It listens on 127.0.0.1 unless ``--host`` says otherwise.

Without ``--auth`` anyone who can reach the port may predict (a warning says so when the
host is not loopback); with it, every request but the health probes and ``/metrics``
needs an API token of a viewer or above, from the metadata store the deployment lives in
(``modelyard users`` / ``modelyard tokens``; see ``server.inference.auth``).
"""

from __future__ import annotations

import os
import shutil
import tempfile
from typing import Any

import typer

from modelyard.cli.server import LOOPBACK

APP_FACTORY = "modelyard.server.inference.app:app_from_env"


def serve(
    ctx: typer.Context,
    target: str = typer.Argument(
        ..., help="A deployment name, models:/NAME/VERSION, models:/NAME@ALIAS, or a folder."
    ),
    host: str = typer.Option("127.0.0.1", "--host", help="Interface; 0.0.0.0 for all."),
    port: int = typer.Option(8080, "--port", min=0, max=65535, help="TCP port."),
    workers: int = typer.Option(1, "--workers", min=1, help="Worker processes."),
    batch_max_size: int = typer.Option(
        64, "--batch-max-size", min=1, help="Most rows per micro-batch (1: no batching)."
    ),
    batch_max_wait_ms: float = typer.Option(
        1.0, "--batch-max-wait-ms", min=0, help="Longest wait for a batch to fill."
    ),
    compiled: bool = typer.Option(
        True, "--compiled/--no-compiled", help="Use a version's verified ONNX graph."
    ),
    log_predictions: bool = typer.Option(
        True, "--log-predictions/--no-log-predictions", help="Log predictions to Parquet."
    ),
    poll_interval: float = typer.Option(
        2.0, "--poll-interval", min=0.05, help="Seconds between checks for a new revision."
    ),
    trusted: bool = typer.Option(
        False,
        "--trusted",
        help="Trust the model files: load any type, pickle included (only from sources you trust).",
    ),
    auth: bool = typer.Option(
        False, "--auth", help="Require an API token (a viewer or above) to predict."
    ),
) -> None:
    """Serve predictions for a deployment (following its revisions) or one model.

    Examples:
    $ modelyard serve web                         # a deployment: follows its revisions
    $ modelyard serve models:/churn@champion --port 9000 --workers 4
    $ modelyard serve web --host 0.0.0.0 --auth   # beyond this machine: require tokens
    """
    from modelyard.cli.extras import needs_extra

    with needs_extra("serving", "modelyard serve"):
        import uvicorn

        from modelyard.server.inference.app import (
            build_runtime,
            create_inference_app,
            tune_process,
        )
        from modelyard.server.inference.metrics import InferenceMetrics
        from modelyard.serving.settings import ServingSettings

    overrides: dict[str, Any] = dict(getattr(ctx.obj, "overrides", None) or {})
    fields = {
        "serve_target": target,
        "serve_batch_max_size": batch_max_size,
        "serve_batch_max_wait_ms": batch_max_wait_ms,
        "serve_compiled": compiled,
        "serve_log_predictions": log_predictions,
        "serve_poll_interval_s": poll_interval,
        "serve_trusted": trusted,
        "serve_auth": auth,
    }
    settings = ServingSettings(**{**overrides, **fields, "tracking_uri": None})
    url_host = f"[{host}]" if ":" in host else host
    typer.echo(f"modelyard serve: {target} on http://{url_host}:{port} ({workers} worker(s))")
    if auth:
        _announce_auth(settings)
    elif host not in LOOPBACK:
        typer.echo(
            f"modelyard serve: warning: listening on {host} without --auth: anyone who can "
            "reach this port can use the model; pass --auth to require API tokens",
            err=True,
        )
    options: dict[str, Any] = {
        "host": host,
        "port": port,
        "log_level": "warning",
        "access_log": False,
        "timeout_graceful_shutdown": 30,
    }
    if workers == 1:
        tune_process()
        metrics = InferenceMetrics()
        # Fails fast on a typo.
        runtime = build_runtime(settings, target, metrics=metrics, freeze_gc=True)
        middleware = []
        if auth:
            from modelyard.server.inference.auth import inference_auth

            middleware.append(inference_auth(settings))
        uvicorn.run(create_inference_app(runtime, metrics, middleware=middleware), **options)
        return
    # Workers are processes that build their own app from MODELYARD_* settings, and
    # count their metrics in files that /metrics adds up (server.inference.metrics).
    os.environ["MODELYARD_STORE_URI"] = settings.resolved_store_uri()
    os.environ["MODELYARD_ARTIFACTS_URI"] = settings.resolved_artifacts_uri()
    for name, value in fields.items():
        os.environ[f"MODELYARD_{name.upper()}"] = str(value)
    own_metrics_dir = not os.environ.get("PROMETHEUS_MULTIPROC_DIR")  # unset or empty
    if own_metrics_dir:
        os.environ["PROMETHEUS_MULTIPROC_DIR"] = tempfile.mkdtemp(prefix="modelyard-metrics-")
    try:
        uvicorn.run(APP_FACTORY, factory=True, workers=workers, **options)
    finally:
        if own_metrics_dir:
            shutil.rmtree(os.environ.pop("PROMETHEUS_MULTIPROC_DIR"), ignore_errors=True)


def _announce_auth(settings: Any) -> None:
    from modelyard.auth.service import AuthService
    from modelyard.tracking.backends import database_for

    typer.echo(
        "modelyard serve: authentication on: every request but /v2/health/*, /ping, /health "
        "and /metrics needs an API token of a viewer or above"
    )
    if not AuthService(database_for(settings)).list_users():
        typer.echo(
            "modelyard serve: no users yet, so nobody can predict: run `modelyard users "
            "create NAME` and `modelyard tokens create --user NAME`"
        )


def main() -> None:
    typer.run(serve)


if __name__ == "__main__":  # pragma: no cover
    main()
