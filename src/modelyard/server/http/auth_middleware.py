"""Token authentication and role checks, the ASGI middleware both server apps put in front
of their routes (the control plane's ``server.control.auth``, the data plane's
``server.inference.auth``); each app names its open paths, role rules and error rendering.

It accepts

* ``Authorization: Bearer <token>``: what the mlflow client sends for
  ``MLFLOW_TRACKING_TOKEN``, and modelyard's own for ``MODELYARD_TRACKING_TOKEN``;
* ``Authorization: Basic`` with the user name and the token as password: what the mlflow
  client sends for ``MLFLOW_TRACKING_USERNAME`` / ``MLFLOW_TRACKING_PASSWORD``.

No or a bad token is a 401 ``UNAUTHENTICATED`` with ``WWW-Authenticate``; too low a role
is a 403 ``PERMISSION_DENIED`` naming the role needed. Neither is retried by the mlflow
client (it retries 429 and 5xx only).

Failed authentication is rate-limited (``auth.lockout.FailureLockout``, in this process's
memory) per client address and per identity the credential names (its token id, or the
user name of Basic credentials); a request without credentials guesses nothing and is not
counted. After ``MAX_FAILURES`` failures in a minute:

* the address is locked out for ``LOCKOUT_S``: every request from it but the open paths
  is a 429 ``REQUEST_LIMIT_EXCEEDED`` with ``Retry-After``, without looking at its
  credentials, so a correct token does not get through from there either (it does from
  any other address). An IPv6 client counts by its /64, the block one host usually holds.
  Behind a reverse proxy on another host, set ``FORWARDED_ALLOW_IPS`` to its address
  (uvicorn believes ``X-Forwarded-For`` from loopback only), or every client counts as
  the proxy;
* the identity: further failures naming it are 429 too, but its correct token still
  works (token ids are public; a hard lockout would let anyone lock a user out).

The mlflow client sleeps ``Retry-After`` and retries (up to 7 times); since requests made
during a lockout never extend it, its first retry after the wait gets the real 401 (unless
other clients at the address keep failing: then it gives up after 7 waits, saying "too
many 429 error responses").

The role a route needs, first match wins:

1. one ``role`` for every route, if the app gives one (the data plane's viewer);
2. declared on its endpoint (the function given to ``Route``) with
   ``@requires(Role.APPROVER)``, or per method with ``declare_roles(endpoint, {"POST":
   Role.VIEWER})`` for an endpoint that dispatches several methods; adapters that wrap
   handlers keep the declaration if they use ``functools.wraps``;
3. the app's ``rules`` table, keyed by (method, path template);
4. by method: GET, HEAD and OPTIONS need viewer, everything else editor.

A browser signed in to the web UI sends the token as the HttpOnly cookie ``SESSION_COOKIE``
instead (``server.control.session_ui_api`` sets it), when the app names the cookie
(``cookie=``; the data plane does not). A request authenticated by the cookie that is
not GET, HEAD or OPTIONS must carry ``CSRF_HEADER`` and, when it sends ``Origin``, come
from the server's own origin, else it is a 403: a cross-site form cannot set a custom
header, and a cross-site script that does needs a CORS preflight nobody grants. A
refusal of a request carrying ``CSRF_HEADER`` (the UI's) leaves out ``WWW-Authenticate``,
so the browser never opens its own password prompt over the page's sign-in form.

The authenticated ``Principal`` is put in the request scope (``principal_of(request)``)
and in a context variable (``current_principal()``) that follows the request into the
worker thread running its handler.
"""

from __future__ import annotations

import base64
import binascii
import functools
import ipaddress
import math
from collections.abc import Callable, Iterable, Mapping
from contextvars import ContextVar
from typing import Any, TypeVar

from starlette.concurrency import run_in_threadpool
from starlette.datastructures import Headers
from starlette.requests import HTTPConnection
from starlette.responses import JSONResponse, Response
from starlette.types import ASGIApp, Receive, Scope, Send

from modelyard.auth.lockout import FailureLockout
from modelyard.auth.roles import Role, at_least, parse_role, with_article
from modelyard.auth.service import AuthService, Principal, token_id_of
from modelyard.auth.tables import USER_LENGTH
from modelyard.errors import (
    ModelyardError,
    PermissionDenied,
    RequestLimitExceeded,
    Unauthenticated,
)
from modelyard.server.http import errors
from modelyard.server.http.route_templates import RouteResolver

REALM = "modelyard"
SCOPE_KEY = "modelyard.principal"
REQUIRED_ROLE_ATTR = "__modelyard_required_role__"
#: Seconds a verified token is remembered: how long a revocation made elsewhere (the CLI,
#: another server process) may take to bite, against one query per request without it.
DEFAULT_CACHE_TTL_S = 2.0
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
#: The web UI's session cookie (the token, HttpOnly) and the header its requests carry.
SESSION_COOKIE = "modelyard_session"
CSRF_HEADER = "x-modelyard-csrf"

_current: ContextVar[Principal | None] = ContextVar("modelyard_principal", default=None)
F = TypeVar("F", bound=Callable[..., Any])


def requires(role: str | Role) -> Callable[[F], F]:
    """Declare the role an endpoint needs (the registry and native API routes declare theirs)::

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


class AuthMiddleware:
    """Authenticate every request outside ``open_paths``; check the route's role.

    ``open_paths``: reachable without a token (what probes and scrapers call; the app names
    them, so none is open by accident). ``rules``: roles by (method, path template), for
    routes whose method says too little (a POST that only reads). ``role``: the role every
    route needs (the data plane's viewer), instead of looking it up per route.
    ``lockout``: where failures are counted (default: a new one, so one per app and
    process).
    """

    def __init__(
        self,
        app: ASGIApp,
        service: AuthService,
        *,
        open_paths: Iterable[str],
        rules: Mapping[tuple[str, str], Role] | None = None,
        role: Role | None = None,
        lockout: FailureLockout | None = None,
        render: Callable[[ModelyardError], Response] | None = None,
        cookie: str | None = None,
    ) -> None:
        self.app = app
        #: How a refusal is rendered (the data plane adds the Open Inference Protocol's key).
        self.render = render or error_response
        self.service = service
        self.rules = dict(rules or {})
        self.open_paths = frozenset(open_paths)
        self.role = role
        #: The session cookie accepted in place of an Authorization header (None: none).
        self.cookie = cookie
        self.lockout = lockout if lockout is not None else FailureLockout()
        self._routes = RouteResolver()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket") or scope["path"] in self.open_paths:
            await self.app(scope, receive, send)
            return
        try:
            address = address_key(scope)
            locked = self.lockout.locked_for(address)
            if locked:
                raise RequestLimitExceeded(
                    f"too many failed authentications from {address[5:]}: its requests are "
                    f"refused for {retry_after(locked)} s more, whatever their credentials",
                    retry_after_s=retry_after(locked),
                )
            principal = await self._authenticate(scope, address)
            self._authorize(scope, principal)
        except ModelyardError as exc:
            if scope["type"] == "websocket":
                await send({"type": "websocket.close", "code": 1008, "reason": exc.code})
                return
            response = self.render(exc)
            if CSRF_HEADER in Headers(scope=scope):  # the UI asks for a token itself
                del response.headers["www-authenticate"]
            await response(scope, receive, send)
            return
        scope[SCOPE_KEY] = principal
        reset = _current.set(principal)
        try:
            await self.app(scope, receive, send)
        finally:
            _current.reset(reset)

    async def _authenticate(self, scope: Scope, address: str) -> Principal:
        headers = Headers(scope=scope)
        header = headers.get("authorization")
        token, claimed_user = "", None
        session = None if header or not self.cookie else _cookie(headers, self.cookie)
        if session:
            check_same_origin(scope, headers)
        try:
            token, claimed_user = (session, None) if session else credentials(header)
            principal = self.service.from_cache(token)
            if principal is None:  # a query (and maybe a write): not on the event loop
                principal = await run_in_threadpool(self.service.authenticate, token)
            if claimed_user is not None and claimed_user != principal.user:
                raise Unauthenticated(
                    f"the token does not belong to user {claimed_user!r}; send its own user "
                    "name or a Bearer token"
                )
        except Unauthenticated as exc:
            if header or session:  # no credentials guess nothing: only a failed credential counts
                self._failed(exc, address, token, claimed_user)
            raise
        return principal

    def _failed(
        self, exc: Unauthenticated, address: str, token: str, claimed_user: str | None
    ) -> None:
        """Count the failure; a 429 instead of ``exc`` if an identity it names is locked."""
        keys, named = [address], []
        token_id = token_id_of(token)
        if token_id is not None:
            keys.append(f"token:{token_id}")
            named.append(f"token {token_id}")
        if claimed_user is not None:
            claimed_user = claimed_user[:USER_LENGTH]
            keys.append(f"user:{claimed_user}")
            named.append(f"user {claimed_user!r}")
        locked = self.lockout.fail(*keys)
        if locked:
            raise RequestLimitExceeded(
                f"too many failed authentications for {' and '.join(named) or address[5:]}: "
                f"refused for {retry_after(locked)} s more (a correct token still works); "
                "check the token with `modelyard tokens list`",
                retry_after_s=retry_after(locked),
            ) from exc

    def _authorize(self, scope: Scope, principal: Principal) -> None:
        needed = self.required_role(scope)
        if not at_least(principal.role, needed):
            raise PermissionDenied(
                f"{scope.get('method', 'this')} {scope['path']} needs the {needed} role; "
                f"{principal.user} is {with_article(principal.role)}"
            )

    def required_role(self, scope: Scope) -> Role:
        if self.role is not None:
            return self.role
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


def _cookie(headers: Headers, name: str) -> str | None:
    from starlette.requests import cookie_parser

    return cookie_parser(headers.get("cookie", "")).get(name) or None


def check_same_origin(scope: Scope, headers: Headers) -> None:
    """Refuse a cookie-authenticated change that a page of another site could have sent."""
    if scope.get("method", "GET") in SAFE_METHODS:
        return
    origin = headers.get("origin")
    host = headers.get("host", "")
    if CSRF_HEADER not in headers or (origin is not None and origin.split("://", 1)[-1] != host):
        raise PermissionDenied(
            f"{scope.get('method')} {scope['path']} with the session cookie must come from "
            f"this server's pages (header {CSRF_HEADER} and the same origin); scripts and "
            "other clients send 'Authorization: Bearer <token>' instead"
        )


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


def address_key(scope: Scope) -> str:
    """The lockout key of the request's client: ``addr:`` and its address (an IPv6
    address by its /64 network)."""
    client = scope.get("client")
    return _address_key(client[0] if client else "")


@functools.lru_cache(maxsize=4096)
def _address_key(host: str) -> str:
    if ":" not in host:  # IPv4, or a name such as "testclient": taken as it is
        return f"addr:{host or 'unknown'}"
    try:
        address = ipaddress.IPv6Address(host)
    except ValueError:
        return f"addr:{host[:64]}"
    if address.ipv4_mapped is not None:
        return f"addr:{address.ipv4_mapped}"
    return f"addr:{ipaddress.IPv6Network((address, 64), strict=False)}"


def retry_after(seconds: float) -> int:
    """Whole seconds for ``Retry-After`` (HTTP takes no fractions), at least 1."""
    return max(1, math.ceil(seconds))


def error_response(exc: ModelyardError) -> JSONResponse:
    """The error as every API renders it; a 401 also says how to authenticate."""
    response = errors.error_response(exc)
    if isinstance(exc, Unauthenticated):
        response.headers.append("WWW-Authenticate", f'Bearer realm="{REALM}"')
        response.headers.append("WWW-Authenticate", f'Basic realm="{REALM}", charset="UTF-8"')
    return response
