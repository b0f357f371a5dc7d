"""Token authentication and role checks for the control plane (``modelyard server --auth``).

The middleware (``server.http.auth_middleware``: credentials, the failed-authentication
lockout, roles declared on endpoints) in front of every route but ``OPEN_PATHS``, with
the control plane's rules: ``DEFAULT_RULES`` lists the POSTs that only read (MLflow's
``runs/search``…, the native ``/api/v1/runs/search``), which a viewer may call; other
routes need what their endpoint declares, else viewer for GET, HEAD and OPTIONS and
editor for everything else.

The authenticated user is what ``ServerContext.client_as`` records on new runs, whatever
``user_id`` the client claims; ``actor_of`` hands the registry the same user as an
``Actor``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING

from starlette.middleware import Middleware
from starlette.requests import HTTPConnection

from modelyard.auth.lockout import FailureLockout
from modelyard.auth.roles import Role, roles_up_to
from modelyard.auth.service import AuthService
from modelyard.server.control.ui_routes import public_paths
from modelyard.server.http.auth_middleware import (
    DEFAULT_CACHE_TTL_S,
    SESSION_COOKIE,
    AuthMiddleware,
    principal_of,
)

if TYPE_CHECKING:
    from starlette.applications import Starlette

    from modelyard.config import Settings
    from modelyard.registry.entities import Actor

#: Reachable without a token: load balancers and Prometheus probe these.
OPEN_PATHS = frozenset({"/health", "/ready", "/metrics"})
MLFLOW_PREFIXES = ("/api/2.0/mlflow", "/ajax-api/2.0/mlflow")
#: MLflow endpoints that take a JSON body (so POST) but only read.
MLFLOW_READ_ONLY_POSTS = (
    "/experiments/search",
    "/runs/search",
    "/registered-models/search",
    "/registered-models/get-latest-versions",
    "/model-versions/search",
    "/logged-models/search",
)
DEFAULT_RULES: Mapping[tuple[str, str], Role] = {
    **{
        ("POST", prefix + path): Role.VIEWER
        for prefix in MLFLOW_PREFIXES
        for path in MLFLOW_READ_ONLY_POSTS
    },
    ("POST", "/api/v1/runs/search"): Role.VIEWER,
}


def actor_of(connection: HTTPConnection) -> Actor | None:
    """The authenticated user as the registry's ``Actor`` (for ``registry_routes``)."""
    from modelyard.registry.entities import Actor

    principal = principal_of(connection)
    if principal is None:
        return None
    return Actor(principal.user, roles_up_to(principal.role))


def auth_middleware(
    settings: Settings,
    *,
    cache_ttl_s: float = DEFAULT_CACHE_TTL_S,
    lockout: FailureLockout | None = None,
) -> Middleware:
    """The middleware over the users and tokens in the settings' metadata store
    (``lockout``: where failures are counted; default, a new one for this app)."""
    from modelyard.tracking.backends import database_for

    service = AuthService(database_for(settings), cache_ttl_s=cache_ttl_s)
    return Middleware(
        AuthMiddleware,
        service=service,
        open_paths=OPEN_PATHS | public_paths(),  # the UI's code: it asks for a token itself
        rules=DEFAULT_RULES,
        lockout=lockout,
        cookie=SESSION_COOKIE,  # the web UI's session (server.control.session_ui_api)
    )


def app_from_env() -> Starlette:
    """``app.app_from_env`` with authentication: the factory for ``modelyard server --auth
    --workers N`` (each worker builds its own app from ``MODELYARD_*`` settings)."""
    from modelyard.config import load_settings
    from modelyard.server.control.app import create_app
    from modelyard.tracking.client import TrackingClient

    settings = load_settings(tracking_uri=None)
    client = TrackingClient.from_settings(settings)
    return create_app(settings, client, middleware=[auth_middleware(settings)])
