"""The JSON and bytes the web UI needs that neither MLflow's API nor ``/api/v1`` gives.

* ``GET /api/v1/runs/{run_id}/metric-samples?key=K&max_points=N&x=step|timestamp``: one
  metric's history down-sampled on the server with LTTB (``tracking.downsample``) to at
  most ``max_points`` points, as columns (``step``, ``timestamp``, ``value``), so a
  100,000-point history reaches the browser as ~1,000 points of the same shape; the
  history is read a page at a time and a long one thinned as it streams by, so a
  10-million-point history is never held (``StreamingSample``). ``x`` is
  the axis the shape is kept along (the chart's x axis). Non-finite values are left out
  of the sample and counted in ``non_finite``. The answer's ``ETag`` is the run's
  revision (bumped by every write to the run), so a page polling a running run gets a 304
  without the history being read while nothing was logged.
* ``GET /api/v1/runs/{run_id}/artifact-content?path=P``: a run's file by its path
  relative to the run's root, served so that it can never run as a page of this origin
  (``Content-Disposition: attachment``, ``Content-Security-Policy: sandbox``, ``nosniff``):
  an HTML artifact opened directly would otherwise run its scripts next to the UI's
  session. The pages fetch it and show it (HTML in a sandboxed iframe without scripts).
* ``GET /api/v1/runs/{run_id}/artifact-table?path=P&rows=N``: the first rows of a
  Parquet file (needs pyarrow: ``pip install 'modelyard[monitoring]'``) as
  ``{columns, rows, total_rows}``; CSV heads are parsed in the browser.

All are GETs, so with ``--auth`` a viewer may call them.
"""

from __future__ import annotations

import hashlib
import math
import mimetypes
from collections.abc import Iterator
from typing import Any, BinaryIO

from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import BaseRoute, Route

from modelyard.artifacts.blobs import CHUNK_SIZE
from modelyard.artifacts.repository import validate_artifact_path
from modelyard.errors import InvalidParameter, MissingExtra, NotFound
from modelyard.server.control.context import ServerContext
from modelyard.server.http.threads import in_thread
from modelyard.tracking.checks import check_key, check_run_id
from modelyard.tracking.downsample import MIN_POINTS, StreamingSample
from modelyard.tracking.store import MAX_HISTORY_PAGE

PREFIX = "/api/v1/runs/{run_id}"
DEFAULT_POINTS = 1000
MAX_POINTS = 20_000
DEFAULT_ROWS = 100
MAX_ROWS = 1000
X_AXES = ("step", "timestamp")


def _int_param(request: Request, name: str, default: int, low: int, high: int) -> int:
    raw = request.query_params.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise InvalidParameter(f"{name} must be an integer, got {raw[:40]!r}", field=name) from None
    if not low <= value <= high:
        raise InvalidParameter(f"{name} must be in [{low}, {high}], got {value}", field=name)
    return value


def _artifact_path(ctx: ServerContext, run_id: str, request: Request) -> str:
    """The repository path of the run's file named by ``?path=`` (validated, relative)."""
    relative = validate_artifact_path(request.query_params.get("path", "").strip("/"))
    root = ctx.client.store.get_run(check_run_id(run_id)).info.artifact_root
    return f"{root}/{relative}"


def metric_samples(
    ctx: ServerContext, run_id: str, key: str, max_points: int, x: str
) -> dict[str, Any]:
    """The LTTB sample of one metric history, as columns, read a page at a time (a
    10-million-point history is never held: ``tracking.downsample.StreamingSample``)."""
    check_key(key, "metric")
    sample = StreamingSample(max_points, x)
    for page in ctx.client.iter_metric_columns(check_run_id(run_id), key, MAX_HISTORY_PAGE):
        sample.add(*page)
    steps, times, values = sample.result()
    return {
        "key": key,
        "x": x,
        "total": sample.total,
        "non_finite": sample.non_finite,
        "step": steps.tolist(),
        "timestamp": times.tolist(),
        "value": values.tolist(),
    }


def samples_etag(ctx: ServerContext, run_id: str, query: str) -> str:
    """The run's revision and the query: equal tags mean an equal answer."""
    revision = ctx.client.run_revisions([check_run_id(run_id)]).get(run_id)
    if revision is None:
        raise NotFound(f"Run with id={run_id} not found", field="run_id")
    digest = hashlib.sha256(query.encode()).hexdigest()[:16]
    return f'"{run_id}.{revision}.{digest}"'


def parquet_head(ctx: ServerContext, path: str, rows: int) -> dict[str, Any]:
    try:
        import pyarrow.parquet as pq
    except ImportError:
        raise MissingExtra("pyarrow", "monitoring", "previewing a Parquet artifact") from None
    import pyarrow as pa

    with ctx.client.artifacts.open(path) as handle:
        try:
            table = pq.ParquetFile(handle)
            total = table.metadata.num_rows
            batch = next(table.iter_batches(batch_size=rows), None)
        except (pa.ArrowException, OSError) as exc:
            raise InvalidParameter(
                f"artifact {path.rsplit('/', 1)[-1]!r} is not a readable Parquet file: {exc}",
                field="path",
            ) from None
        columns = list(table.schema_arrow.names)
        data = batch.to_pylist() if batch is not None else []
    return {
        "columns": columns,
        "rows": [[_cell(row.get(c)) for c in columns] for row in data],
        "total_rows": total,
    }


def _cell(value: Any) -> Any:
    """A JSON-safe cell: numbers and strings as they are, everything else as text."""
    if value is None or isinstance(value, bool | int | str):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else str(value)
    return str(value)


def _chunks(handle: BinaryIO) -> Iterator[bytes]:
    with handle:
        while chunk := handle.read(CHUNK_SIZE):
            yield chunk


def routes(ctx: ServerContext) -> list[BaseRoute]:
    async def samples(request: Request) -> Response:
        key = request.query_params.get("key", "")
        if not key:
            raise InvalidParameter("missing required parameter 'key'", field="key")
        x = request.query_params.get("x", "step")
        if x not in X_AXES:
            raise InvalidParameter(f"x must be one of {X_AXES}, got {x[:40]!r}", field="x")
        points = _int_param(request, "max_points", DEFAULT_POINTS, MIN_POINTS, MAX_POINTS)
        run_id = request.path_params["run_id"]
        etag = await in_thread(samples_etag, ctx, run_id, f"{key}\0{x}\0{points}")
        headers = {"ETag": etag, "Cache-Control": "private, no-cache"}
        if etag in request.headers.get("if-none-match", ""):
            return Response(status_code=304, headers=headers)
        body = await in_thread(metric_samples, ctx, run_id, key, points, x)
        return JSONResponse(body, headers=headers)

    async def content(request: Request) -> Response:
        path = await in_thread(_artifact_path, ctx, request.path_params["run_id"], request)
        entry = await in_thread(ctx.client.artifacts.stat, path)
        handle = await in_thread(ctx.client.artifacts.open, path)
        guessed, _ = mimetypes.guess_type(path.rsplit("/", 1)[-1])
        return StreamingResponse(
            _chunks(handle),
            media_type=guessed or "application/octet-stream",
            headers={
                "Content-Length": str(entry.size),
                "Content-Disposition": "attachment",
                "Content-Security-Policy": "sandbox; default-src 'none'",
                "X-Content-Type-Options": "nosniff",
                "Cache-Control": "private, no-cache",
            },
        )

    async def table(request: Request) -> Response:
        rows = _int_param(request, "rows", DEFAULT_ROWS, 1, MAX_ROWS)
        path = await in_thread(_artifact_path, ctx, request.path_params["run_id"], request)
        if not path.lower().endswith(".parquet"):
            raise InvalidParameter("only .parquet files are read as tables here", field="path")
        return JSONResponse(await in_thread(parquet_head, ctx, path, rows))

    return [
        Route(f"{PREFIX}/metric-samples", samples, methods=["GET"]),
        Route(f"{PREFIX}/artifact-content", content, methods=["GET"]),
        Route(f"{PREFIX}/artifact-table", table, methods=["GET"]),
    ]
