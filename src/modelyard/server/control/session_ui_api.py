"""The web UI's session: who is signed in, signing in with a token, signing out.

* ``GET    /api/v1/session``: ``{"auth": bool, "user", "role"}`` — the page shows buttons
  by the role (the server refuses anyway); without ``--auth`` the local user acts with
  every role, as ``RegistryClient`` does;
* ``POST   /api/v1/session`` with ``Authorization: Bearer <token>``: the middleware checks
  the token as for any request (so failed sign-ins are counted and locked out like any
  other), then the answer sets it as the session cookie ``modelyard_session``:
  ``HttpOnly`` (no script reads it), ``SameSite=Strict`` (no other site's page sends
  it), ``Secure`` when the page came over https, ``Path=/``, no ``Max-Age`` (gone when
  the browser closes; the token's own expiry still applies);
* ``DELETE /api/v1/session``: clears the cookie.

Requests authenticated by the cookie that change something must carry the
``X-Modelyard-CSRF`` header and, when the browser sends ``Origin``, come from this
server's origin (``server.http.auth_middleware``): a cross-site form cannot set a
custom header, and a cross-site ``fetch`` that does needs a CORS preflight this server
never grants. That, over ``SameSite=Strict``, is the CSRF protection: no token to keep
per session, so it works across worker processes unchanged.
"""

from __future__ import annotations

from collections.abc import Callable

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from modelyard.auth.roles import Role
from modelyard.registry.client import RegistryClient
from modelyard.registry.entities import Actor
from modelyard.server.http.auth_middleware import (
    SESSION_COOKIE,
    credentials,
    declare_roles,
    principal_of,
)

PATH = "/api/v1/session"

ActorOf = Callable[[Request], Actor | None]


def routes(registry: RegistryClient, actor_of: ActorOf) -> list[BaseRoute]:
    def who(request: Request) -> dict[str, object]:
        principal = principal_of(request)
        if principal is None:
            return {"auth": False, "user": registry.actor.name, "role": str(Role.ADMIN)}
        return {"auth": True, "user": principal.user, "role": str(principal.role)}

    async def session(request: Request) -> Response:
        if request.method == "GET":
            return JSONResponse(who(request))
        if request.method == "DELETE":
            response = JSONResponse({"auth": principal_of(request) is not None, "user": None})
            response.delete_cookie(SESSION_COOKIE, path="/", httponly=True, samesite="strict")
            return response
        response = JSONResponse(who(request))
        header = request.headers.get("authorization")
        if principal_of(request) is not None and header:
            token, _ = credentials(header)
            response.set_cookie(
                SESSION_COOKIE,
                token,
                path="/",
                httponly=True,
                samesite="strict",
                secure=request.url.scheme == "https",
            )
        return response

    declare_roles(session, {"GET": Role.VIEWER, "POST": Role.VIEWER, "DELETE": Role.VIEWER})
    return [Route(PATH, session, methods=["GET", "POST", "DELETE"])]
