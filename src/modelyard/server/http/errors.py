"""Render every failure as ``{"error_code", "message"}`` JSON, in one place.

* ``ModelyardError`` → its code, with the HTTP status from ``errors.HTTP_STATUS_BY_CODE``
  (the one table), and ``Retry-After`` on a 429 ``REQUEST_LIMIT_EXCEEDED``;
* an unknown route → 404 ``ENDPOINT_NOT_FOUND`` (JSON, never an HTML page: the MLflow
  client falls back to older endpoints on that code); a wrong method → 405 ``BAD_REQUEST``;
* a number the database cannot hold → 400 ``INVALID_PARAMETER_VALUE``;
* database lock contention or a dropped connection → 503 ``TEMPORARILY_UNAVAILABLE``
  (worth the client's retry);
* anything else is a bug → 500 ``INTERNAL_ERROR``, logged with its traceback.

Deterministic client errors must never be 5xx: the MLflow client retries 5xx for minutes.
"""

from __future__ import annotations

import logging
from typing import Any

from sqlalchemy.exc import OperationalError
from starlette.exceptions import HTTPException
from starlette.requests import ClientDisconnect, Request
from starlette.responses import JSONResponse, Response

from modelyard.errors import ModelyardError, RequestLimitExceeded, http_status_for
from modelyard.store.engine import is_transient

log = logging.getLogger("modelyard.server")


def error_json(code: str, message: str, status: int, **extra: Any) -> JSONResponse:
    return JSONResponse({"error_code": code, "message": message, **extra}, status_code=status)


def error_response(exc: ModelyardError) -> JSONResponse:
    """``exc`` as every API renders it; a rate limit also says when to come back."""
    response = JSONResponse(exc.to_dict(), status_code=http_status_for(exc))
    if isinstance(exc, RequestLimitExceeded) and exc.retry_after_s is not None:
        response.headers["Retry-After"] = str(exc.retry_after_s)
    return response


def modelyard_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, ModelyardError)
    return error_response(exc)


def http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    if exc.status_code == 404:
        return error_json(
            "ENDPOINT_NOT_FOUND",
            f"no endpoint {request.method} {request.url.path}; see /api/2.0/mlflow/… for the "
            "MLflow-compatible API",
            404,
        )
    if exc.status_code == 405:
        allowed = (exc.headers or {}).get("Allow", "")
        response = error_json(
            "BAD_REQUEST",
            f"{request.url.path} does not accept {request.method}; use {allowed or 'another'}",
            405,
        )
        if allowed:
            response.headers["Allow"] = allowed
        return response
    code = "BAD_REQUEST" if exc.status_code < 500 else "INTERNAL_ERROR"
    return error_json(code, str(exc.detail), exc.status_code)


def client_disconnected(request: Request, exc: Exception) -> Response:
    # Nobody is listening any more; the upload was discarded before anything was recorded.
    return error_json("BAD_REQUEST", "the client disconnected before the body arrived", 400)


def store_error(request: Request, exc: Exception) -> Response:
    if is_transient(exc):
        log.warning("transient store error on %s %s: %s", request.method, request.url.path, exc)
        return error_json(
            "TEMPORARILY_UNAVAILABLE", "the metadata store is busy; retry shortly", 503
        )
    log.error("store error on %s %s", request.method, request.url.path, exc_info=exc)
    return unexpected_error(request, exc)


def out_of_range(request: Request, exc: Exception) -> Response:
    # A number the database cannot hold (e.g. an id past int64) is the caller's mistake:
    # answering 5xx would make the MLflow client retry it for minutes.
    return error_json(
        "INVALID_PARAMETER_VALUE", f"a number in the request is out of range: {exc}", 400
    )


def unexpected_error(request: Request, exc: Exception) -> Response:
    # Starlette re-raises after this response is sent, so the server logs the traceback.
    return error_json(
        "INTERNAL_ERROR", f"internal server error ({type(exc).__name__}); see the server log", 500
    )


def exception_handlers() -> dict[Any, Any]:
    """The handlers to give ``Starlette(exception_handlers=...)``."""
    return {
        ModelyardError: modelyard_error,
        HTTPException: http_error,
        ClientDisconnect: client_disconnected,
        OperationalError: store_error,
        OverflowError: out_of_range,
        Exception: unexpected_error,
    }
