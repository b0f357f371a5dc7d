"""Find a request's route in one dict lookup instead of a scan of the whole table.

Starlette tries routes in order, one regular expression each. The control plane has
~150 routes (MLflow tracking and registry under two prefixes, the native API, artifacts),
and a scan to ``runs/log-metric`` cost ~190 µs — a third of a whole round trip on
loopback. ``indexed`` puts every route with a fixed path (no ``{param}``) behind one
``ExactRoutes`` entry at the front that looks the path up in a dict; routes with path
parameters keep their order behind it.

Order semantics are kept: a fixed path is indexed only if no route before it in the table
would also match it, so the route that answered before still answers. A known path with
another method is a partial match, as before (405 with ``Allow``, unless a later route
takes the method).

>>> app = Starlette(routes=indexed([*system_routes, *api_routes]))  # doctest: +SKIP
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from starlette.routing import BaseRoute, Match, NoMatchFound, Route
from starlette.types import Receive, Scope, Send

_MATCHED = "modelyard.matched_route"
_PROBE_METHODS = ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE")


class ExactRoutes(BaseRoute):
    """Routes with fixed paths, found by path; each keeps its own ``matches``/``handle``.

    ``routes`` and ``path = ""`` make it look like a mount to code that walks route
    tables (the metrics and auth middleware resolve route templates that way).
    """

    path = ""

    def __init__(self, routes: Sequence[Route]) -> None:
        self.routes = list(routes)
        self._by_path: dict[str, list[Route]] = {}
        for route in self.routes:
            self._by_path.setdefault(route.path, []).append(route)

    def routes_at(self, scope: Scope) -> list[Route]:
        """The routes declared at the request's path (none for most paths)."""
        return self._by_path.get(_route_path(scope)) or []

    def matches(self, scope: Scope) -> tuple[Match, Scope]:
        if scope["type"] != "http":
            return Match.NONE, {}
        candidates = self._by_path.get(_route_path(scope))
        if not candidates:
            return Match.NONE, {}
        partial: tuple[Route, Scope] | None = None
        for route in candidates:
            match, child = route.matches(scope)
            if match is Match.FULL:
                return Match.FULL, {**child, _MATCHED: route}
            if match is Match.PARTIAL and partial is None:
                partial = (route, child)
        if partial is None:
            return Match.NONE, {}
        return Match.PARTIAL, {**partial[1], _MATCHED: partial[0]}

    async def handle(self, scope: Scope, receive: Receive, send: Send) -> None:
        await scope.pop(_MATCHED).handle(scope, receive, send)

    def url_path_for(self, name: str, /, **path_params: Any) -> Any:
        for route in self.routes:
            try:
                return route.url_path_for(name, **path_params)
            except NoMatchFound:
                pass
        raise NoMatchFound(name, path_params)


def indexed(routes: Sequence[BaseRoute]) -> list[BaseRoute]:
    """``routes`` with their fixed-path routes moved into one ``ExactRoutes`` in front."""
    exact: list[Route] = []
    rest: list[BaseRoute] = []
    for route in routes:
        if _is_fixed(route) and not _shadowed(route, rest):  # type: ignore[arg-type]
            exact.append(route)  # type: ignore[arg-type]
        else:
            rest.append(route)
    return [ExactRoutes(exact), *rest] if exact else rest


def _is_fixed(route: BaseRoute) -> bool:
    return type(route) is Route and "{" not in route.path


def _shadowed(route: Route, earlier: Sequence[BaseRoute]) -> bool:
    """Whether a parameterised route before ``route`` would match its path."""
    for method in _PROBE_METHODS:
        scope = {"type": "http", "method": method, "path": route.path, "root_path": ""}
        if any(other.matches(scope)[0] is not Match.NONE for other in earlier):
            return True
    return False


def _route_path(scope: Scope) -> str:
    root = scope.get("root_path", "")
    path: str = scope["path"]
    return path[len(root) :] if root and path.startswith(root) else path
