"""The lineage routes of the native API.

``GET /api/v1/lineage/{id}`` answers what ``modelyard lineage ID --json`` prints: the
node-and-edge document of ``LineageService.trace``. ``id`` is anything the CLI takes (a
request id, ``models:/demand/3``, ``sales@4``, a run id, a deployment, a node id); the
query string takes ``direction`` (``upstream``, the default, or ``downstream``),
``depth`` (1-64), and for a request id ``deployment`` and ``since_ms`` to narrow the
prediction-log search. Unknown ids are 404, bad parameters 400 naming the field.

``POST /api/v1/lineage`` takes an OpenLineage RunEvent — Marquez's ingestion path, so
Airflow, Spark and dbt integrations point at this server unchanged
(``OPENLINEAGE_URL=http://host:5000``) — and answers 201 with the edges it recorded; a
malformed event is a 400 naming the field (``run.runId``, ``inputs[0].name``).

    curl 'localhost:5000/api/v1/lineage/sales@4?direction=downstream'
    curl 'localhost:5000/api/v1/lineage/models:/demand/3?depth=2'
"""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from modelyard import json_codec
from modelyard.config import Settings
from modelyard.errors import BadRequest, InvalidParameter
from modelyard.lineage.graph import DIRECTIONS, UPSTREAM
from modelyard.lineage.openlineage_in import ingest
from modelyard.lineage.openlineage_out import Emitter
from modelyard.lineage.service import LineageService
from modelyard.server.http.request_body import read_body
from modelyard.server.http.threads import in_thread
from modelyard.store.engine import Database

PREFIX = "/api/v1/lineage"
#: OpenLineage events carry schemas and column metrics: larger than most API bodies.
MAX_EVENT_BYTES = 4 << 20


def _json(body: Any, status: int = 200) -> Response:
    return Response(json_codec.dumps(body), status, media_type="application/json")


def _int(request: Request, name: str) -> int | None:
    raw = request.query_params.get(name)
    if raw is None or raw == "":
        return None
    try:
        return int(raw)
    except ValueError:
        raise InvalidParameter(f"{name} must be a whole number, got {raw!r}", field=name) from None


def openlineage_emitter(settings: Settings, db: Database) -> Emitter | None:
    """The OpenLineage emitter to observe the server's tracking writes, when a sink is
    configured (``MODELYARD_OPENLINEAGE_URL`` / ``_FILE``); ``None`` otherwise. The app's
    lifespan calls ``start_following`` (what others write to the store) and ``close``."""
    if not (settings.openlineage_url or settings.openlineage_file):
        return None
    return Emitter.from_settings(settings, db)


def start_following(emitter: Emitter | None, settings: Settings) -> None:
    if emitter is not None:
        emitter.follow(settings.openlineage_follow_s)


def lineage_routes(service: LineageService) -> list[BaseRoute]:
    async def trace(request: Request) -> Response:
        ref = request.path_params["ref"]
        direction = request.query_params.get("direction", UPSTREAM)
        if direction not in DIRECTIONS:
            raise InvalidParameter(
                f"direction must be one of {', '.join(DIRECTIONS)}, got {direction!r}",
                field="direction",
            )
        doc = await in_thread(
            service.trace,
            ref,
            direction,
            depth=_int(request, "depth"),
            deployment=request.query_params.get("deployment") or None,
            since_ms=_int(request, "since_ms"),
        )
        return _json(doc.to_dict())

    async def receive(request: Request) -> Response:
        raw = await read_body(request, MAX_EVENT_BYTES, decode=True)
        try:
            body = json_codec.loads_lenient(raw)
        except json_codec.UnusableValue as exc:  # a lone surrogate, an endless integer
            raise InvalidParameter(str(exc), field=exc.field) from None
        except json_codec.DecodeError as exc:
            raise BadRequest(f"the OpenLineage event is not JSON: {exc}") from None
        accepted = await in_thread(ingest, service.db, body)
        return _json(accepted.to_dict(), 201)

    return [
        Route(PREFIX, receive, methods=["POST"]),
        Route(PREFIX + "/{ref:path}", trace, methods=["GET"]),
    ]
