"""Token authentication and role checks for the control plane (``modelyard server --auth``).

An ASGI middleware in front of every route but ``OPEN_PATHS``. It accepts

* ``Authorization: Bearer <token>``: what the mlflow client sends for
  ``MLFLOW_TRACKING_TOKEN``, and modelyard's own for ``MODELYARD_TRACKING_TOKEN``;
* ``Authorization: Basic`` with the user name and the token as password: what the mlflow
  client sends for ``MLFLOW_TRACKING_USERNAME`` / ``MLFLOW_TRACKING_PASSWORD``.

No or a bad token is a 401 ``UNAUTHENTICATED`` with ``WWW-Authenticate``; too low a role
is a 403 ``PERMISSION_DENIED`` naming the role needed. Neither is retried by the mlflow
client (it retries 429 and 5xx only).

The role a route needs, first match wins:

1. declared on its endpoint (the function given to ``Route``) with
   ``@requires(Role.APPROVER)``, or per method with ``declare_roles(endpoint, {"POST":
   Role.VIEWER})`` for an endpoint that dispatches several methods; adapters that wrap
   handlers keep the declaration if they use ``functools.wraps``;
2. the ``rules`` table, keyed by (method, path template): ``DEFAULT_RULES`` lists the
   POSTs that only read (MLflow's ``runs/search``…, the native ``/api/v1/runs/search``);
3. by method: GET, HEAD and OPTIONS need viewer, everything else editor.

The authenticated ``Principal`` is put in the request scope (``principal_of(request)``)
and in a context variable (``current_principal()``) that follows the request into the
worker thread running its handler, which is how ``ServerContext.client_as`` records the
token's user on new runs whatever ``user_id`` the client claims. ``actor_of`` hands the
registry the same user as an ``Actor``.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Callable, Iterable, Mapping
from contextvars import ContextVar
from typing import TYPE_CHECKING, Any, TypeVar

from starlette.concurrency import run_in_threadpool
from starlette.datastructures import Headers
from starlette.middleware import Middleware
from starlette.requests import HTTPConnection
from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Receive, Scope, Send

from modelyard.auth.roles import Role, at_least, parse_role, roles_up_to, with_article
from modelyard.auth.service import AuthService, Principal
from modelyard.errors import ModelyardError, PermissionDenied, Unauthenticated, http_status_for
from modelyard.server.route_templates import RouteResolver

if TYPE_CHECKING:
    from starlette.applications import Starlette

    from modelyard.config import Settings
    from modelyard.registry.entities import Actor

#: Reachable without a token: load balancers and Prometheus probe these.
OPEN_PATHS = frozenset({"/health", "/metrics"})
REALM = "modelyard"
SCOPE_KEY = "modelyard.principal"
REQUIRED_ROLE_ATTR = "__modelyard_required_role__"
#: Seconds a verified token is remembered: how long a revocation made elsewhere (the CLI,
#: another server process) may take to bite, against one query per request without it.
DEFAULT_CACHE_TTL_S = 2.0
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
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

_current: ContextVar[Principal | None] = ContextVar("modelyard_principal", default=None)
F = TypeVar("F", bound=Callable[..., Any])


def requires(role: str | Role) -> Callable[[F], F]:
    """Declare the role an endpoint needs (for the registry and native API routes)::

    @requires(Role.APPROVER)
    async def approve(request: Request) -> Response: ...
    """
    needed = parse_role(role)

    def declare(endpoint: F) -> F:
        setattr(endpoint, REQUIRED_ROLE_ATTR, needed)
        return endpoint

    return declare


def declare_roles(endpoint: F, roles: Mapping[str, str | Role]) -> F:
    """Declare the role each method of a multi-method endpoint needs; methods left out
    fall back to the rules table and the method default."""
    by_method = {method.upper(): parse_role(role) for method, role in roles.items()}
    setattr(endpoint, REQUIRED_ROLE_ATTR, by_method)
    return endpoint


def current_principal() -> Principal | None:
    """Who the request being handled was authenticated as (None: auth is off)."""
    return _current.get()


def principal_of(connection: HTTPConnection) -> Principal | None:
    return connection.scope.get(SCOPE_KEY)


def actor_of(connection: HTTPConnection) -> Actor | None:
    """The authenticated user as the registry's ``Actor`` (for ``registry_routes``)."""
    from modelyard.registry.entities import Actor

    principal = principal_of(connection)
    if principal is None:
        return None
    return Actor(principal.user, roles_up_to(principal.role))


class AuthMiddleware:
    """Authenticate every request outside ``open_paths``; check the route's role."""

    def __init__(
        self,
        app: ASGIApp,
        service: AuthService,
        *,
        rules: Mapping[tuple[str, str], Role] = DEFAULT_RULES,
        open_paths: Iterable[str] = OPEN_PATHS,
    ) -> None:
        self.app = app
        self.service = service
        self.rules = dict(rules)
        self.open_paths = frozenset(open_paths)
        self._routes = RouteResolver()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket") or scope["path"] in self.open_paths:
            await self.app(scope, receive, send)
            return
        try:
            principal = await self._authenticate(scope)
            self._authorize(scope, principal)
        except ModelyardError as exc:
            if scope["type"] == "websocket":
                await send({"type": "websocket.close", "code": 1008, "reason": exc.code})
                return
            await error_response(exc)(scope, receive, send)
            return
        scope[SCOPE_KEY] = principal
        reset = _current.set(principal)
        try:
            await self.app(scope, receive, send)
        finally:
            _current.reset(reset)

    async def _authenticate(self, scope: Scope) -> Principal:
        token, claimed_user = credentials(Headers(scope=scope).get("authorization"))
        principal = self.service.from_cache(token)
        if principal is None:  # a query (and maybe a write): not on the event loop
            principal = await run_in_threadpool(self.service.authenticate, token)
        if claimed_user is not None and claimed_user != principal.user:
            raise Unauthenticated(
                f"the token does not belong to user {claimed_user!r}; send its own user name "
                "or a Bearer token"
            )
        return principal

    def _authorize(self, scope: Scope, principal: Principal) -> None:
        needed = self.required_role(scope)
        if not at_least(principal.role, needed):
            raise PermissionDenied(
                f"{scope.get('method', 'this')} {scope['path']} needs the {needed} role; "
                f"{principal.user} is {with_article(principal.role)}"
            )

    def required_role(self, scope: Scope) -> Role:
        method = scope.get("method", "GET")
        route = self._routes.resolve(scope)
        declared = getattr(route.endpoint, REQUIRED_ROLE_ATTR, None)
        if isinstance(declared, Mapping):
            declared = declared.get(method)
        if declared is not None:
            return declared
        ruled = self.rules.get((method, route.template))
        if ruled is not None:
            return ruled
        return Role.VIEWER if method in SAFE_METHODS else Role.EDITOR


def credentials(authorization: str | None) -> tuple[str, str | None]:
    """(token, claimed user name or None) from an ``Authorization`` header."""
    if not authorization:
        raise Unauthenticated(
            "this server requires an API token: send 'Authorization: Bearer <token>' "
            "(MLFLOW_TRACKING_TOKEN for the mlflow client, MODELYARD_TRACKING_TOKEN for "
            "modelyard); an admin creates one with `modelyard tokens create --user NAME`"
        )
    scheme, _, value = authorization.strip().partition(" ")
    value = value.strip()
    if scheme.lower() in ("bearer", "basic") and not value:
        raise Unauthenticated(f"the Authorization header says {scheme} but carries no credentials")
    if scheme.lower() == "bearer":
        return value, None
    if scheme.lower() == "basic":
        try:
            decoded = base64.b64decode(value, validate=True).decode("utf-8")
        except (binascii.Error, UnicodeDecodeError):
            raise Unauthenticated(
                "malformed Basic credentials: not base64 of 'user:token'"
            ) from None
        user, sep, token = decoded.partition(":")
        if not sep or not token:
            raise Unauthenticated("Basic credentials need the user name and the token as password")
        return token, user or None
    raise Unauthenticated(
        f"unsupported Authorization scheme {scheme[:20]!r}; use 'Bearer <token>' or Basic "
        "with the token as password"
    )


def error_response(exc: ModelyardError) -> JSONResponse:
    """The error as every API renders it; a 401 also says how to authenticate."""
    response = JSONResponse(exc.to_dict(), status_code=http_status_for(exc))
    if isinstance(exc, Unauthenticated):
        response.headers.append("WWW-Authenticate", f'Bearer realm="{REALM}"')
        response.headers.append("WWW-Authenticate", f'Basic realm="{REALM}", charset="UTF-8"')
    return response


def auth_middleware(settings: Settings, *, cache_ttl_s: float = DEFAULT_CACHE_TTL_S) -> Middleware:
    """The middleware over the users and tokens in the settings' metadata store."""
    from modelyard.tracking.backends import database_for

    service = AuthService(database_for(settings), cache_ttl_s=cache_ttl_s)
    return Middleware(AuthMiddleware, service=service)


def app_from_env() -> Starlette:
    """``app.app_from_env`` with authentication: the factory for ``modelyard server --auth
    --workers N`` (each worker builds its own app from ``MODELYARD_*`` settings)."""
    from modelyard.config import load_settings
    from modelyard.server.app import create_app
    from modelyard.tracking.client import TrackingClient

    settings = load_settings(tracking_uri=None)
    client = TrackingClient.from_settings(settings)
    return create_app(settings, client, middleware=[auth_middleware(settings)])
