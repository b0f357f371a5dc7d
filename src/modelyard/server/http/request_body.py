"""Read request bodies within a size limit, and JSON bodies as typed ``Fields``.

``receive_json_object`` and ``query_fields_of`` work on the raw ASGI scope and ``receive``
(no ``Request`` object): the MLflow API's per-call logging path reads its small bodies
that way.

A compressed body (``Content-Encoding: gzip`` or ``deflate``) is inflated only where the
caller asks (``read_body(..., decode=True)``: the inference server, whose scoring clients
compress); elsewhere it is refused by name. Inflating is bounded, because a 1 MB gzip
body can hold 1 GB: the inflated bytes count against the same limit as the body, the
body may inflate at most ``MAX_INFLATION`` times, and it is inflated in chunks in a
worker thread, so neither memory nor the event loop pays for a bomb (see ``inflate``).
"""

from __future__ import annotations

import zlib
from typing import Any

from starlette.datastructures import QueryParams
from starlette.requests import ClientDisconnect, Request
from starlette.types import Receive, Scope

from modelyard import json_codec
from modelyard.errors import BadRequest, InvalidParameter, PayloadTooLarge
from modelyard.server.http.threads import in_thread
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


async def read_body(
    request: Request, limit: int, hint: str = SPLIT_HINT, *, decode: bool = False
) -> bytes:
    """The body, refused past ``limit`` bytes. ``decode``: a gzip or deflate body is
    inflated (``inflate``: within ``limit`` and ``MAX_INFLATION``); without it, a
    Content-Encoding other than ``identity`` is refused."""
    encoding = content_coding(request.headers.get("content-encoding"), decode)
    raw = await _read_body(request, limit, hint)
    if encoding is None or not raw:
        return raw
    return await in_thread(inflate, raw, encoding, limit, hint)


async def _read_body(request: Request, limit: int, hint: str) -> bytes:
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


#: ``wbits`` for each Content-Encoding ``inflate`` reads (HTTP's ``deflate`` is zlib's
#: format; ``x-gzip`` is gzip's old name).
_WBITS = {"gzip": 16 + zlib.MAX_WBITS, "x-gzip": 16 + zlib.MAX_WBITS, "deflate": zlib.MAX_WBITS}
#: A compressed body may inflate at most this many times its size. JSON and CSV of real
#: features compress 3-10:1 and repetitive JSON (one row repeated) ~50:1, while deflate
#: reaches ~1000:1 on a run of one byte: at 100:1 an inflated body costs the client at
#: least 1% of its size on the wire, so a bomb buys no amplification worth having.
MAX_INFLATION = 100
#: Bodies inflating to no more than this are never refused for their ratio (inflating
#: them is cheap, and a small request of repeated rows may compress past 100:1).
INFLATION_FLOOR = 1 << 20
#: Bytes of compressed input fed to zlib at a time (the unread tail is copied on every
#: call, so this bounds that copy) and bytes of output taken per call.
_IN_CHUNK = 1 << 16
_OUT_CHUNK = 1 << 18


def content_coding(header: str | None, decode: bool) -> str | None:
    """The Content-Encoding to inflate, None for none; a 400 naming it if it cannot be."""
    if header is None:
        return None
    encoding = header.strip().lower()
    if encoding in ("", "identity"):
        return None
    if not decode:
        raise BadRequest(
            f"Content-Encoding {header!r} is not accepted by this server; send the body "
            "uncompressed",
            field="body",
        )
    if encoding not in _WBITS:
        raise BadRequest(
            f"Content-Encoding {header!r} is not supported; use gzip or deflate", field="body"
        )
    return encoding


def inflate(raw: bytes, encoding: str, limit: int, hint: str = SPLIT_HINT) -> bytes:
    """``raw`` decompressed, refused (``PayloadTooLarge``, naming the limit) as soon as the
    output passes ``limit`` bytes or ``MAX_INFLATION`` times ``len(raw)`` (past
    ``INFLATION_FLOOR``); a body that is not valid ``encoding`` is a 400. Blocking: call it
    in a worker thread. Memory: the input, plus the output so far, plus its final join;
    never more than ~2 * ``limit`` + ``len(raw)``, whatever the stream claims.

    >>> inflate(zlib.compress(b'{"a": 1}'), "deflate", 100)
    b'{"a": 1}'
    """
    budget = min(limit, max(INFLATION_FLOOR, MAX_INFLATION * len(raw)))
    wbits = _WBITS[encoding]
    view = memoryview(raw)
    position = 0  # where the next piece of input starts
    decompressor = zlib.decompressobj(wbits)
    data: bytes | memoryview = b""
    chunks: list[bytes] = []
    total = 0
    try:
        while True:
            if data:
                chunk = decompressor.decompress(data, _OUT_CHUNK)
                data = decompressor.unconsumed_tail
            elif position < len(raw):
                data = view[position : position + _IN_CHUNK]
                position += len(data)
                continue
            else:  # all input given: what zlib still holds, else the stream is cut short
                chunk = decompressor.decompress(b"", _OUT_CHUNK)
                if not chunk and not decompressor.eof:
                    raise BadRequest(
                        f"the {encoding} body is truncated: it ends before the stream does",
                        field="body",
                    )
            total += len(chunk)
            if total > budget:
                raise _inflates_too_much(len(raw), encoding, limit, budget, hint)
            chunks.append(chunk)
            if decompressor.eof:
                data = decompressor.unused_data
                if not data and position >= len(raw):
                    break
                # Another gzip member follows (gzip allows several); deflate allows one.
                if wbits != _WBITS["gzip"]:
                    raise BadRequest(
                        f"the {encoding} body has data after the end of its stream",
                        field="body",
                    )
                decompressor = zlib.decompressobj(wbits)
    except zlib.error as exc:
        raise BadRequest(f"the body is not valid {encoding}: {exc}", field="body") from None
    return b"".join(chunks)


def _inflates_too_much(
    size: int, encoding: str, limit: int, budget: int, hint: str
) -> PayloadTooLarge:
    if budget >= limit:
        return PayloadTooLarge(
            f"request body inflates from {size} {encoding} bytes to more than {limit} bytes; "
            f"the limit is {limit} bytes, counted after decompression ({hint})",
            field="body",
        )
    return PayloadTooLarge(
        f"request body inflates from {size} {encoding} bytes to more than {budget} bytes, "
        f"over {MAX_INFLATION} times its size: refused as a decompression bomb (the limit "
        f"is {limit} bytes and {MAX_INFLATION}:1 after decompression; send it uncompressed, "
        f"or {hint})",
        field="body",
    )


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
        elif name == b"content-encoding":
            content_coding(value.decode("latin-1"), decode=False)
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
        data = json_codec.loads_lenient(raw)
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
