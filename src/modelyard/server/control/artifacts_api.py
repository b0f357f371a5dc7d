"""The MLflow artifact proxy: ``/api/2.0/mlflow-artifacts/artifacts[/<path>]``.

Runs' artifact URIs are ``mlflow-artifacts:/<exp>/<run_id>/artifacts``, which an MLflow
client resolves to these routes; ``<path>`` is a logical path of the
``ArtifactRepository``.

* ``PUT <path>``: the raw body is streamed into ``ArtifactRepository.log_stream`` (spooled
  and hashed chunk by chunk, never held in memory). If the client disconnects or the body
  exceeds the limit midway, the spool is discarded and nothing is recorded.
* ``GET <path>``: the bytes, streamed. ``GET ?path=<dir>``: the direct children as
  ``{files: [{path (a name), is_dir, file_size}]}`` (``{}`` when empty).
* ``DELETE <path>``: a file or a whole directory; deleting nothing succeeds (retries are safe).

Written once: ``PUT`` and ``DELETE`` are refused (403, naming why) in the folders modelyard
itself writes (``artifacts/namespaces.py``: registered versions' frozen files, dataset
versions, the prediction log, gate reports, ...) and on a finalized logged model's files,
or on any folder holding one. Reads are unaffected.
"""

from __future__ import annotations

import mimetypes
from collections.abc import AsyncIterator, Iterator
from typing import Any

import anyio.from_thread
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import BaseRoute, Route

from modelyard.artifacts.blobs import CHUNK_SIZE
from modelyard.artifacts.namespaces import system_folder_of
from modelyard.artifacts.repository import validate_artifact_path
from modelyard.errors import PermissionDenied
from modelyard.registry.logged_models import LoggedModelStore
from modelyard.server.control.context import ServerContext
from modelyard.server.http.request_body import declared_length, too_large

PREFIXES = ("/api/2.0/mlflow-artifacts", "/ajax-api/2.0/mlflow-artifacts")
#: A file opened in a browser from here (an HTML report, an SVG) must not run as a page of
#: this origin, where the web UI keeps its session: a sandbox gives it an opaque origin.
DOWNLOAD_HEADERS = {"Content-Security-Policy": "sandbox", "X-Content-Type-Options": "nosniff"}
_TEXT_NAMES = {"MLmodel", "requirements.txt", "conda.yaml", "python_env.yaml"}


class BodyReader:
    """A blocking ``read(n)`` over the request's async body stream, for a worker thread.

    Each refill hops back to the event loop for the next chunk; ``ClientDisconnect``
    raised there surfaces here, inside ``log_stream``, which then records nothing.
    """

    def __init__(self, stream: AsyncIterator[bytes], limit: int | None) -> None:
        self._stream = stream
        self._limit = limit
        self._buffer = bytearray()
        self._done = False
        self.total = 0

    async def _next_chunk(self) -> bytes | None:
        try:
            return await self._stream.__anext__()
        except StopAsyncIteration:
            return None

    def read(self, size: int = -1, /) -> bytes:
        while not self._done and (size < 0 or len(self._buffer) < size):
            chunk = anyio.from_thread.run(self._next_chunk)
            if chunk is None:
                self._done = True
                break
            self.total += len(chunk)
            if self._limit is not None and self.total > self._limit:
                raise too_large(self._limit)
            self._buffer += chunk
        if size < 0 or size >= len(self._buffer):
            out = bytes(self._buffer)
            self._buffer.clear()
        else:
            out = bytes(self._buffer[:size])
            del self._buffer[:size]
        return out


def _content_type(path: str) -> str:
    name = path.rsplit("/", 1)[-1]
    if name in _TEXT_NAMES:
        return "text/plain"
    guessed, _ = mimetypes.guess_type(name)
    return guessed or "application/octet-stream"


def _file_chunks(handle: Any) -> Iterator[bytes]:
    with handle:
        while chunk := handle.read(CHUNK_SIZE):
            yield chunk


def check_client_may_change(path: str, logged_models: LoggedModelStore) -> None:
    """Raise PermissionDenied (403) when a client's write or delete at ``path`` would
    change files that are written once."""
    validate_artifact_path(path)
    folder = system_folder_of(path)
    if folder is not None:
        raise PermissionDenied(
            f"artifact path {path!r} is in {folder}/, which modelyard writes itself "
            "(registered versions, dataset versions, prediction logs, gate reports are "
            "immutable evidence); clients may change only runs' and unfinished logged "
            "models' files. To change a registered model, register a new version",
            field="path",
        )
    model_id = logged_models.finalized_overlapping(path)
    if model_id is not None:
        raise PermissionDenied(
            f"artifact path {path!r} would change the files of logged model {model_id}, "
            "which is finalized (READY) and immutable; log a new model instead",
            field="path",
        )


def routes(ctx: ServerContext) -> list[BaseRoute]:
    repo = ctx.client.artifacts
    logged_models = LoggedModelStore(repo.db)

    async def upload(request: Request) -> Response:
        path = request.path_params["path"]
        await run_in_threadpool(check_client_may_change, path, logged_models)
        declared_length(request, ctx.limits.max_artifact_bytes)
        reader = BodyReader(request.stream(), ctx.limits.max_artifact_bytes)
        await run_in_threadpool(repo.log_stream, path, reader)
        return JSONResponse({})

    async def download(request: Request) -> Response:
        path = request.path_params["path"]
        entry = await run_in_threadpool(repo.stat, path)
        handle = await run_in_threadpool(repo.open, path)
        return StreamingResponse(
            _file_chunks(handle),
            media_type=_content_type(path),
            headers={"Content-Length": str(entry.size), **DOWNLOAD_HEADERS},
        )

    async def listing(request: Request) -> Response:
        path = (request.query_params.get("path") or "").strip("/")
        files = await run_in_threadpool(repo.list, path, relative_to=path or None)
        return JSONResponse(
            {
                "files": [
                    {"path": f.path, "is_dir": f.is_dir}
                    if f.is_dir
                    else {"path": f.path, "is_dir": False, "file_size": f.file_size}
                    for f in files
                ]
            }
            if files
            else {}
        )

    async def remove(request: Request) -> Response:
        path = request.path_params["path"]
        await run_in_threadpool(check_client_may_change, path, logged_models)
        await run_in_threadpool(repo.delete, path)
        return JSONResponse({})

    out: list[BaseRoute] = []
    for prefix in PREFIXES:
        out += [
            Route(f"{prefix}/artifacts", listing, methods=["GET"]),
            Route(f"{prefix}/artifacts/{{path:path}}", download, methods=["GET"]),
            Route(f"{prefix}/artifacts/{{path:path}}", upload, methods=["PUT"]),
            Route(f"{prefix}/artifacts/{{path:path}}", remove, methods=["DELETE"]),
        ]
    return out
