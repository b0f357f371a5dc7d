"""Which route a request reaches: its path template and endpoint, found before routing.

Both the auth middleware (which role does this route need?) and the metrics middleware
(which label does this request count under?) wrap the router, so they see a raw path such
as ``/api/2.0/mlflow/logged-models/m-3f…``. They ask the app's own routes, in the order
Starlette's router tries them, and get ``/api/2.0/mlflow/logged-models/{model_id}``:
a label set bounded by the route table, not by what clients send. Routes inside a
``Mount`` are found too, with the mount's prefix in the template.

Answers are cached per (method, path); the cache is cleared when it fills, so a client
walking random paths costs a re-scan, never unbounded memory.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from starlette.routing import BaseRoute, Match
from starlette.types import Scope

from modelyard.server.http.route_index import ExactRoutes

MAX_CACHED_PATHS = 4096


@dataclass(frozen=True, slots=True)
class RouteMatch:
    #: The route's path as declared (``/runs/{run_id}``); ``UNMATCHED`` for no route.
    template: str
    #: The function or app given to the route (None when unmatched).
    endpoint: Any = None


UNMATCHED = RouteMatch("unmatched")


class RouteResolver:
    """Resolve requests against the routes of ``scope["app"]`` (set by Starlette before
    any middleware runs). Call it before passing the request on: the router rewrites
    ``root_path`` and ``path_params`` in the scope as it descends into mounts."""

    def __init__(self, max_cached: int = MAX_CACHED_PATHS) -> None:
        self.max_cached = max_cached
        self._cache: dict[tuple[str, str, str], RouteMatch] = {}

    def resolve(self, scope: Scope) -> RouteMatch:
        key = (scope["type"], scope.get("method", ""), scope["path"])
        found = self._cache.get(key)
        if found is None:
            routes = getattr(scope.get("app"), "routes", None) or ()
            found = _search(routes, scope, "") or UNMATCHED
            if len(self._cache) >= self.max_cached:
                self._cache.clear()
            self._cache[key] = found
        return found


def _search(routes: Sequence[BaseRoute], scope: Scope, prefix: str) -> RouteMatch | None:
    """The first full match, else the first partial one (a known path, another method:
    Starlette answers it with 405, and it is labelled with its route all the same)."""
    partial: RouteMatch | None = None
    for route in routes:
        match, child_scope = route.matches(scope)
        if match is Match.NONE:
            continue
        template = prefix + getattr(route, "path", "")
        inner = getattr(route, "routes", None)
        if isinstance(route, ExactRoutes):  # only the routes at this path can match
            inner = route.routes_at(scope)
        if inner is not None:  # a Mount: look inside, as its router will
            found = _search(inner, {**scope, **child_scope}, template)
            if found is not None:
                return found
            continue
        found = RouteMatch(template, getattr(route, "endpoint", None))
        if match is Match.FULL:
            return found
        partial = partial or found
    return partial
