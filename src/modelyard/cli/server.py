"""``modelyard server``: the control plane over HTTP (MLflow-compatible API, artifact proxy).

It listens on 127.0.0.1 unless ``--host`` says otherwise: without ``--auth``, anyone who
can reach the port can read and write every run. With ``--auth`` every request but
``/health``, ``/ready`` and ``/metrics`` needs an API token (``modelyard users`` /
``modelyard tokens``).

    modelyard server                              # http://127.0.0.1:5000, ./.modelyard
    modelyard server --host 0.0.0.0 --auth --workers 4 --store-uri postgresql+psycopg://…/yard

Point an MLflow client at it with ``MLFLOW_TRACKING_URI=http://127.0.0.1:5000``, or
modelyard with ``MODELYARD_TRACKING_URI``. Also runnable as
``python -m modelyard.cli.server --port 5000``.
"""

from __future__ import annotations

import os
from typing import Any

import typer

LOOPBACK = ("127.0.0.1", "localhost", "::1")
APP_FACTORY = "modelyard.server.control.app:app_from_env"
#: No access log: it cost ~15% of the per-call logging path, and /metrics counts requests.
#: Keep-alive of 75 s (uvicorn's default is 5 s): clients that log every few seconds keep
#: their connection instead of reconnecting, and rarely race the server closing it.
UVICORN_OPTIONS: dict[str, Any] = {
    "log_level": "info",
    "access_log": False,
    "timeout_keep_alive": 75,
}
AUTH_APP_FACTORY = "modelyard.server.control.auth:app_from_env"


def server(
    ctx: typer.Context,
    host: str = typer.Option(
        "127.0.0.1", "--host", help="Interface to listen on; 0.0.0.0 for every interface."
    ),
    port: int = typer.Option(5000, "--port", min=0, max=65535, help="TCP port."),
    store_uri: str | None = typer.Option(
        None, "--store-uri", help="Metadata store URI (default: SQLite under --home)."
    ),
    artifacts_uri: str | None = typer.Option(
        None, "--artifacts-uri", help="Artifact store: a folder or s3://bucket/prefix."
    ),
    workers: int = typer.Option(
        1, "--workers", min=1, help="Worker processes (use PostgreSQL for many writers)."
    ),
    auth: bool = typer.Option(
        False,
        "--auth",
        help="Require API tokens with roles (create them with `modelyard users` and "
        "`modelyard tokens`).",
    ),
) -> None:
    r"""Serve the MLflow-compatible tracking API and artifact proxy over HTTP.

    Examples:
    $ modelyard server                               # 127.0.0.1:5000, the stores under --home
    $ modelyard server --host 0.0.0.0 --workers 4 --auth \
        --store-uri postgresql+psycopg://modelyard@db/modelyard --artifacts-uri s3://ml/yard
    """
    from sqlalchemy.engine import make_url

    from modelyard.cli.extras import needs_extra
    from modelyard.config import load_settings
    from modelyard.tracking.client import TrackingClient

    with needs_extra("server", "modelyard server"):
        import uvicorn

        from modelyard.server.control.app import create_app

    overrides: dict[str, Any] = dict(getattr(ctx.obj, "overrides", None) or {})
    if store_uri:
        overrides["store_uri"] = store_uri
    if artifacts_uri:
        overrides["artifacts_uri"] = artifacts_uri
    # A server stores runs itself; it never forwards to another server.
    settings = load_settings(**{**overrides, "tracking_uri": None})
    client = TrackingClient.from_settings(settings)  # migrates the schema once, up front
    store = make_url(settings.resolved_store_uri()).render_as_string(hide_password=True)

    typer.echo(f"modelyard server: metadata {store}, artifacts {settings.resolved_artifacts_uri()}")
    url_host = f"[{host}]" if ":" in host else host
    typer.echo(f"modelyard server: listening on http://{url_host}:{port} ({workers} worker(s))")
    if auth:
        _announce_auth(settings)
    if host in LOOPBACK:
        typer.echo(
            "modelyard server: loopback only, reachable from this machine alone; pass "
            "--host 0.0.0.0 to accept other machines"
        )
    elif not auth:
        typer.echo(
            f"modelyard server: listening on {host}: anyone who can reach this port can read "
            "and write every run (no authentication: pass --auth to require API tokens)"
        )

    if workers == 1:
        if auth:
            from modelyard.server.control.auth import auth_middleware

            app = create_app(settings, client, middleware=[auth_middleware(settings)])
        else:
            app = create_app(settings, client)
        uvicorn.run(app, host=host, port=port, **UVICORN_OPTIONS)
        return
    # Workers are separate processes that build their own app from MODELYARD_* settings.
    os.environ["MODELYARD_STORE_URI"] = settings.resolved_store_uri()
    os.environ["MODELYARD_ARTIFACTS_URI"] = settings.resolved_artifacts_uri()
    factory = AUTH_APP_FACTORY if auth else APP_FACTORY
    uvicorn.run(factory, factory=True, host=host, port=port, workers=workers, **UVICORN_OPTIONS)


def _announce_auth(settings: Any) -> None:
    from modelyard.auth.service import AuthService
    from modelyard.tracking.backends import database_for

    typer.echo(
        "modelyard server: authentication on: every request but /health, /ready and /metrics "
        "needs an API token (roles viewer < editor < approver < admin)"
    )
    if not AuthService(database_for(settings)).list_users():
        typer.echo(
            "modelyard server: no users yet, so nobody can connect: run `modelyard users "
            "create NAME --role admin` and `modelyard tokens create --user NAME`"
        )


def main() -> None:
    typer.run(server)


if __name__ == "__main__":  # pragma: no cover
    main()
