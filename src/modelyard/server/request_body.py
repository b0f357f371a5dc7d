"""Read request bodies within a size limit, and JSON bodies as typed ``Fields``.

``receive_json_object`` and ``query_fields_of`` work on the raw ASGI scope and ``receive``
(no ``Request`` object): the MLflow API's per-call logging path reads its small bodies
that way.
"""

from __future__ import annotations

from typing import Any

from starlette.datastructures import QueryParams
from starlette.requests import ClientDisconnect, Request
from starlette.types import Receive, Scope

from modelyard import json_codec
from modelyard.errors import BadRequest, InvalidParameter, PayloadTooLarge
from modelyard.tracking.mlflow_wire import Fields


def declared_length(request: Request, limit: int | None, hint: str = "") -> int | None:
    """The Content-Length header, refused up front when it is over ``limit``."""
    return _checked_length(request.headers.get("content-length"), limit, hint or SPLIT_HINT)


def _checked_length(header: str | None, limit: int | None, hint: str = "") -> int | None:
    if header is None:
        return None
    try:
        length = int(header)
        if length < 0:
            raise ValueError
    except ValueError:
        raise BadRequest(f"Content-Length {header!r} is not a byte count", field="body") from None
    if limit is not None and length > limit:
        raise too_large(limit, length, hint or SPLIT_HINT)
    return length


#: What a tracking client should do about a body over the limit (the default hint).
SPLIT_HINT = "split the request, e.g. log metrics in batches of at most 1000"


def too_large(limit: int, size: int | None = None, hint: str = SPLIT_HINT) -> PayloadTooLarge:
    got = f"{size} bytes" if size is not None else "more than that"
    return PayloadTooLarge(
        f"request body is {got}; the limit is {limit} bytes ({hint})", field="body"
    )


async def read_body(request: Request, limit: int, hint: str = SPLIT_HINT) -> bytes:
    if (
        declared_length(request, limit, hint) is not None
        and "transfer-encoding" not in request.headers
    ):
        # The server reads exactly Content-Length bytes, already checked against the limit.
        return await request.body()
    chunks: list[bytes] = []
    total = 0
    async for chunk in request.stream():
        total += len(chunk)
        if total > limit:
            raise too_large(limit, hint=hint)
        chunks.append(chunk)
    return b"".join(chunks)


async def read_json(request: Request, limit: int) -> Fields:
    """The JSON object in the body (an empty body is ``{}``)."""
    return Fields(await read_json_object(request, limit))


async def read_json_object(request: Request, limit: int) -> dict[str, Any]:
    """The decoded JSON object in the body, for handlers with a fast path over raw data."""
    return json_object(await read_body(request, limit))


async def receive_body(scope: Scope, receive: Receive, limit: int) -> bytes:
    """The whole body of an HTTP request, from ASGI messages; ``read_body`` without a
    ``Request``. A declared length over ``limit`` is refused before reading."""
    length: str | None = None
    for name, value in scope["headers"]:
        if name == b"content-length":
            length = value.decode("latin-1")
            break
    _checked_length(length, limit)
    chunks: list[bytes] = []
    total = 0
    while True:
        message = await receive()
        if message["type"] == "http.request":
            chunk = message.get("body", b"")
            if chunk:
                total += len(chunk)
                if total > limit:
                    raise too_large(limit)
                chunks.append(chunk)
            if not message.get("more_body", False):
                break
        elif message["type"] == "http.disconnect":
            raise ClientDisconnect()
    return chunks[0] if len(chunks) == 1 else b"".join(chunks)


async def receive_json_object(scope: Scope, receive: Receive, limit: int) -> dict[str, Any]:
    """The decoded JSON object in the body (an empty body is ``{}``)."""
    return json_object(await receive_body(scope, receive, limit))


def json_object(raw: bytes) -> dict[str, Any]:
    """``raw`` decoded; a 400 naming the body unless it is one JSON object."""
    if not raw.strip():
        return {}
    try:
        data = json_codec.loads(raw)
    except json_codec.UnusableValue as exc:
        raise InvalidParameter(str(exc), field=exc.field) from None
    except json_codec.DecodeError as exc:
        raise BadRequest(f"request body is not valid JSON: {exc}", field="body") from None
    if not isinstance(data, dict):
        raise BadRequest(
            f"request body must be a JSON object, got {type(data).__name__}", field="body"
        )
    return data


def query_fields(request: Request) -> Fields:
    return Fields.from_query(request.query_params.multi_items())


def query_fields_of(scope: Scope) -> Fields:
    """``query_fields`` from the ASGI scope."""
    return Fields.from_query(QueryParams(scope["query_string"]).multi_items())
