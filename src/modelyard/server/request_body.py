"""Read request bodies within a size limit, and JSON bodies as typed ``Fields``."""

from __future__ import annotations

import json
from typing import Any

from starlette.requests import Request

from modelyard.errors import BadRequest
from modelyard.tracking.mlflow_wire import Fields


def declared_length(request: Request, limit: int | None) -> int | None:
    """The Content-Length header, refused up front when it is over ``limit``."""
    header = request.headers.get("content-length")
    if header is None:
        return None
    try:
        length = int(header)
        if length < 0:
            raise ValueError
    except ValueError:
        raise BadRequest(f"Content-Length {header!r} is not a byte count", field="body") from None
    if limit is not None and length > limit:
        raise too_large(limit, length)
    return length


def too_large(limit: int, size: int | None = None) -> BadRequest:
    got = f"{size} bytes" if size is not None else "more than that"
    return BadRequest(
        f"request body is {got}; the limit is {limit} bytes (split the request, e.g. log "
        "metrics in batches of at most 1000)",
        field="body",
    )


async def read_body(request: Request, limit: int) -> bytes:
    if declared_length(request, limit) is not None and "transfer-encoding" not in request.headers:
        # The server reads exactly Content-Length bytes, already checked against the limit.
        return await request.body()
    chunks: list[bytes] = []
    total = 0
    async for chunk in request.stream():
        total += len(chunk)
        if total > limit:
            raise too_large(limit)
        chunks.append(chunk)
    return b"".join(chunks)


async def read_json(request: Request, limit: int) -> Fields:
    """The JSON object in the body (an empty body is ``{}``)."""
    return Fields(await read_json_object(request, limit))


async def read_json_object(request: Request, limit: int) -> dict[str, Any]:
    """The decoded JSON object in the body, for handlers with a fast path over raw data."""
    raw = await read_body(request, limit)
    if not raw.strip():
        return {}
    try:
        data = json.loads(raw)
    except (UnicodeDecodeError, json.JSONDecodeError, RecursionError) as exc:
        raise BadRequest(f"request body is not valid JSON: {exc}", field="body") from None
    if not isinstance(data, dict):
        raise BadRequest(
            f"request body must be a JSON object, got {type(data).__name__}", field="body"
        )
    return data


def query_fields(request: Request) -> Fields:
    return Fields.from_query(request.query_params.multi_items())
