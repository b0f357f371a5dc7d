"""``indexed`` finds fixed-path routes by lookup and answers exactly as the plain table
would; ``in_thread`` carries the request's context variables into the worker thread."""

from __future__ import annotations

import contextvars
import threading

import httpx
import pytest
from starlette.applications import Starlette
from starlette.responses import PlainTextResponse
from starlette.routing import Match, Route

from modelyard.server.http.route_index import ExactRoutes, indexed
from modelyard.server.http.threads import in_thread

pytestmark = pytest.mark.anyio


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


def answer(text: str):
    async def endpoint(request):
        return PlainTextResponse(text)

    endpoint.__name__ = text.replace("-", "_").replace(" ", "_")
    return endpoint


TABLE = [
    Route("/runs/search", answer("search"), methods=["POST"]),
    Route("/runs/{run_id}", answer("run by id"), methods=["GET"]),
    Route("/runs/latest", answer("latest"), methods=["GET"]),  # {run_id} matches it first
    Route("/experiments", answer("list"), methods=["GET"]),
    Route("/experiments", answer("create"), methods=["POST"]),
]


def app(routes) -> Starlette:
    return Starlette(routes=routes)


async def answers(routes) -> list[tuple[int, str, str]]:
    transport = httpx.ASGITransport(app=app(routes))
    out = []
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as http:
        for method, path in [
            ("GET", "/runs/abc"),
            ("GET", "/runs/search"),  # a known fixed path, but GET is {run_id}'s
            ("POST", "/runs/search"),
            ("GET", "/runs/latest"),
            ("GET", "/experiments"),
            ("POST", "/experiments"),
            ("DELETE", "/experiments"),
            ("PUT", "/runs/search"),
            ("GET", "/nothing"),
        ]:
            response = await http.request(method, path)
            out.append((response.status_code, response.text, response.headers.get("allow", "")))
    return out


async def test_an_indexed_table_answers_as_the_plain_one():
    assert await answers(indexed(TABLE)) == await answers(TABLE)


async def test_a_fixed_path_behind_a_parameterised_route_keeps_its_place():
    late = [TABLE[1], TABLE[0], *TABLE[2:]]  # {run_id} first: its 405 names GET, not POST
    assert await answers(indexed(late)) == await answers(late)
    assert [r.path for r in indexed(late)[0].routes] == ["/experiments", "/experiments"]


def test_fixed_paths_are_indexed_unless_an_earlier_route_matches_them():
    routes = indexed(TABLE)
    assert isinstance(routes[0], ExactRoutes)
    assert {r.path for r in routes[0].routes} == {"/runs/search", "/experiments"}
    assert [getattr(r, "path", "") for r in routes[1:]] == ["/runs/{run_id}", "/runs/latest"]
    scope = {"type": "http", "method": "POST", "path": "/runs/search", "root_path": ""}
    assert routes[0].matches(scope)[0] is Match.FULL
    assert routes[0].matches({**scope, "method": "GET"})[0] is Match.PARTIAL
    assert routes[0].matches({**scope, "path": "/runs/x"})[0] is Match.NONE


def test_urls_are_still_built_by_name():
    assert app(indexed(TABLE)).url_path_for("create") == "/experiments"


_who = contextvars.ContextVar("who", default="nobody")


async def test_handlers_in_threads_see_the_request_context():
    _who.set("alice")
    seen = await in_thread(lambda: (_who.get(), threading.current_thread().name))
    assert seen[0] == "alice" and seen[1].startswith("modelyard-handler")
