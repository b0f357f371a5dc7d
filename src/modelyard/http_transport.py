"""HTTP/1.1 to one ``modelyard server``: a kept-alive connection per thread, one retry
loop, and error answers turned back into the exception classes local use raises.

The remote tracking store (``tracking/rest_store.py``) and the remote artifact repository
(``artifacts/remote.py``) both speak through an ``HttpTransport``; nothing else in
modelyard opens client connections.

* Connections: one per thread (``threading.local``), Nagle off, a shorter timeout for
  connecting than for waiting on an answer. A connection is closed when its thread ends,
  when the transport is closed (``close()`` or ``with``), and after a failed exchange; a
  transport is still usable after ``close()`` (the next call connects again). A kept-alive
  connection the server has meanwhile closed is reopened at once (no wait, not counted as
  a retry), and a streamed upload is made again from its factory.
* Retries: connection errors and 429/502/503/504, up to ``max_retries`` times after the
  first attempt. The wait is the server's ``Retry-After`` (seconds or an HTTP date) when
  it sends one, else ``backoff_s * 2**attempt`` with jitter; either way at most
  ``max_backoff_s``. Writes are retried too: the server's writes are idempotent where the
  MLflow API allows it (batches, params, tags, artifacts); a retried create may answer
  ``AlreadyExists``. A streamed answer is retried until its head arrives, never after.
* Proxies: ``HTTP(S)_PROXY``/``ALL_PROXY`` are honoured unless ``NO_PROXY`` names the
  host, as httpx and curl do (HTTP proxies only, ``CONNECT`` for https; not SOCKS).

Plain ``http.client`` (through its public API only) rather than a client library:
per-call logging is one small request, and httpx cost ~0.3-0.5 ms of client time per
call against ~0.05 ms for this.

Example::

    with HttpTransport("http://127.0.0.1:5000") as http:
        http.call("GET", "/api/2.0/mlflow/experiments/get", params={"experiment_id": "0"})
"""

from __future__ import annotations

import base64
import contextlib
import email.utils
import http.client
import json
import math
import os
import random
import socket
import threading
import time
import urllib.request
import weakref
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import Any
from urllib.parse import unquote, urlencode, urlsplit

from modelyard import json_codec
from modelyard.errors import (
    BadRequest,
    InvalidParameter,
    ModelyardError,
    NotFound,
    PermissionDenied,
    RequestLimitExceeded,
    StoreUnavailable,
    Unauthenticated,
    error_from_code,
)

#: Answers that mean "come back later": retried, after ``Retry-After`` when given.
RETRY_STATUSES = frozenset({429, 502, 503, 504})
CHUNK = 1 << 20
#: A request body: bytes, or a factory of byte chunks (called again for each attempt).
Body = bytes | Callable[[], Iterable[bytes]] | None
#: What a failed exchange raises in ``http.client`` (refused, reset, timed out, garbled).
TRANSPORT_ERRORS = (OSError, http.client.HTTPException)
#: TCP_CORK holds a request's head until its body joins it: one segment, one wake-up of
#: the server (Linux; elsewhere the head and a small body go as two segments).
_CORK = getattr(socket, "TCP_CORK", None)


class HttpResponse:
    """One answer: status, headers, and the body (read whole on first use of ``content``,
    or in chunks by ``iter_bytes`` for a streamed download)."""

    def __init__(self, raw: http.client.HTTPResponse, method: str, url: str) -> None:
        self.raw = raw
        self.status_code = raw.status
        self.headers = raw.headers
        self.method = method
        self.url = url
        self._content: bytes | None = None

    @property
    def is_error(self) -> bool:
        return self.status_code >= 400

    @property
    def content(self) -> bytes:
        if self._content is None:
            self._content = self.raw.read()
        return self._content

    @property
    def text(self) -> str:
        return self.content.decode("utf-8", "replace")

    def json(self) -> Any:
        """The body as JSON, read as MLflow's server writes it (``NaN`` literals are floats:
        ``json_codec.loads_lenient``); raises ``ValueError`` when it is not JSON."""
        try:
            return json_codec.loads_lenient(self.content)
        except RecursionError as exc:  # nested past what a reader can follow
            raise ValueError(f"{self.method} {self.url}: the answer nests too deeply") from exc

    def iter_bytes(self, chunk_size: int = CHUNK) -> Iterator[bytes]:
        while chunk := self.raw.read(chunk_size):
            yield chunk

    @property
    def complete(self) -> bool:
        """Whether the body was read to its end (the connection can serve another call)."""
        return self.raw.isclosed()


def retry_after_s(value: str | None, *, now: float | None = None) -> float | None:
    """The wait a ``Retry-After`` header asks for, in seconds (never negative), or None
    when there is none or it is neither a number of seconds nor an HTTP date.

    >>> retry_after_s("3"), retry_after_s("soon"), retry_after_s(None)
    (3.0, None, None)
    >>> retry_after_s("Sun, 06 Dec 2026 05:00:10 GMT", now=1796533200.0)
    10.0
    """
    if not value:
        return None
    value = value.strip()
    try:
        seconds = float(value)
    except ValueError:
        try:
            when = email.utils.parsedate_to_datetime(value)
        except (TypeError, ValueError, IndexError):
            return None
        if when.tzinfo is None:  # HTTP dates are GMT
            return None
        seconds = when.timestamp() - (time.time() if now is None else now)
    if seconds != seconds:  # NaN
        return None
    return max(0.0, seconds)


@dataclass(frozen=True, slots=True)
class _Route:
    """Where connections go: the server itself, or an HTTP proxy in front of it."""

    scheme: str
    host: str
    port: int
    #: The server's base path ("" or "/prefix"), prepended to every request path.
    base_path: str
    proxy: tuple[str, int] | None = None
    proxy_headers: dict[str, str] | None = None


#: Whether NO_PROXY names a host, as urllib reads it (typeshed lacks this function).
_bypass_proxy: Callable[[str, dict[str, str]], bool]
_bypass_proxy = urllib.request.proxy_bypass_environment  # type: ignore[attr-defined]


def _route_for(base_url: str) -> _Route:
    parts = urlsplit(base_url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise InvalidParameter(
            f"tracking URI {base_url!r} is not an http:// or https:// URL", field="tracking_uri"
        )
    port = parts.port or (443 if parts.scheme == "https" else 80)
    route = _Route(parts.scheme, parts.hostname, port, parts.path.rstrip("/"))
    proxies = urllib.request.getproxies_environment()
    proxy_url = proxies.get(parts.scheme) or proxies.get("all")
    if not proxy_url or _bypass_proxy(parts.hostname, proxies):
        return route
    proxy = urlsplit(proxy_url if "://" in proxy_url else f"http://{proxy_url}")
    if proxy.scheme != "http":
        return route
    headers = {}
    if proxy.username:
        user = f"{unquote(proxy.username)}:{unquote(proxy.password or '')}"
        headers["Proxy-Authorization"] = "Basic " + base64.b64encode(user.encode()).decode()
    return _Route(
        route.scheme,
        route.host,
        route.port,
        route.base_path,
        (proxy.hostname or "localhost", proxy.port or 80),
        headers,
    )


class _Tuned:
    """Nagle's algorithm off, and a shorter timeout for connecting than for waiting on an
    answer (``connect`` is ``http.client``'s documented place to set up the socket)."""

    connect_timeout: float = 10.0
    read_timeout: float | None = None
    sock: Any
    timeout: float | None

    def connect(self) -> None:
        self.timeout = self.connect_timeout
        super().connect()  # type: ignore[misc]
        self.sock.settimeout(self.read_timeout)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)


class _Connection(_Tuned, http.client.HTTPConnection):
    pass


class _TlsConnection(_Tuned, http.client.HTTPSConnection):
    pass


class _Held:
    """A thread's connection, kept in a ``threading.local``: when the thread ends, the
    holder is dropped and closes its connection (rather than leaving the socket to the
    garbage collector). ``pid`` tells a connection inherited through ``fork``."""

    __slots__ = ("__weakref__", "conn", "pid")

    def __init__(self, conn: http.client.HTTPConnection) -> None:
        self.conn = conn
        self.pid = os.getpid()

    def __del__(self, _getpid: Callable[[], int] = os.getpid) -> None:  # bound: safe at exit
        if self.pid == _getpid():
            self.conn.close()


def _send(
    conn: http.client.HTTPConnection, method: str, target: str, body: Any, headers: dict[str, str]
) -> None:
    """Send one request on ``conn``, a small one as a single TCP segment."""
    if _CORK is None or type(body) is not bytes or len(body) > CHUNK:
        conn.request(method, target, body=body, headers=headers)
        return
    if conn.sock is None:
        conn.connect()
    sock = conn.sock
    sock.setsockopt(socket.IPPROTO_TCP, _CORK, 1)
    try:
        conn.request(method, target, body=body, headers=headers)
    finally:
        with contextlib.suppress(OSError):
            sock.setsockopt(socket.IPPROTO_TCP, _CORK, 0)


class HttpTransport:
    """One server's base URL, a keep-alive connection per thread, retries and error
    rebuilding. Safe to share between threads; a context manager that closes its
    connections on leaving (see the module's docstring for the rules)."""

    def __init__(
        self,
        base_url: str,
        *,
        token: str | None = None,
        timeout_s: float = 120.0,
        max_retries: int = 5,
        backoff_s: float = 0.5,
        max_backoff_s: float = 30.0,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.max_retries = max_retries
        self.backoff_s = backoff_s
        self.max_backoff_s = max_backoff_s
        self.timeout_s = timeout_s
        self.headers = {"User-Agent": "modelyard-client"}
        if token:
            self.headers["Authorization"] = f"Bearer {token}"
        self._route = _route_for(self.base_url)
        parts = urlsplit(self.base_url)
        self._origin = f"{parts.scheme}://{parts.netloc}"
        self._local = threading.local()
        # Every thread's holder, so that close() reaches connections of other threads.
        self._held: weakref.WeakSet[_Held] = weakref.WeakSet()
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        return f"HttpTransport({self.base_url!r})"

    def __enter__(self) -> HttpTransport:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    def close(self) -> None:
        """Close every thread's connection (a later call opens a new one)."""
        with self._lock:
            held = list(self._held)
        for holder in held:
            if holder.pid == os.getpid():
                holder.conn.close()

    # -- connections -----------------------------------------------------------------

    def _connection(self) -> tuple[http.client.HTTPConnection, bool]:
        """This thread's connection, and whether it is open from an earlier request."""
        holder: _Held | None = getattr(self._local, "held", None)
        if holder is not None and holder.pid == os.getpid():
            return holder.conn, holder.conn.sock is not None
        holder = _Held(self._new_connection())
        self._local.held = holder
        with self._lock:
            self._held.add(holder)
        return holder.conn, False

    def _drop_connection(self) -> None:
        """Close this thread's connection after a failed or unfinished exchange."""
        holder: _Held | None = getattr(self._local, "held", None)
        if holder is not None:
            holder.conn.close()

    def _new_connection(self) -> http.client.HTTPConnection:
        route = self._route
        cls: type[Any] = _TlsConnection if route.scheme == "https" else _Connection
        host, port = route.proxy or (route.host, route.port)
        conn = cls(host, port)
        if route.proxy and route.scheme == "https":
            conn.set_tunnel(route.host, route.port, headers=route.proxy_headers)
        conn.connect_timeout = min(self.timeout_s, 10.0)
        conn.read_timeout = self.timeout_s
        return conn

    def _target(self, path: str, params: dict[str, Any] | None) -> str:
        route = self._route
        target = route.base_path + path
        if params:
            target += "?" + urlencode([(k, _query_value(v)) for k, v in params.items()])
        if route.proxy and route.scheme == "http":  # absolute form, for the proxy
            target = f"http://{route.host}:{route.port}{target}"
        return target

    def _headers(self, extra: dict[str, str] | None) -> dict[str, str]:
        headers = dict(self.headers)
        if self._route.proxy and self._route.scheme == "http" and self._route.proxy_headers:
            headers.update(self._route.proxy_headers)
        if extra:
            headers.update(extra)
        return headers

    def _exchange(
        self, method: str, target: str, body: Body, headers: dict[str, str]
    ) -> HttpResponse:
        """One request and its answer's head on this thread's connection, reopening a
        kept-alive connection once if the server closed it meanwhile (a streamed body is
        made again from its factory)."""
        url = target if target.startswith("http") else f"{self._origin}{target}"
        while True:
            conn, reused = self._connection()
            content = body() if callable(body) else body
            try:
                try:
                    _send(conn, method, target, content, headers)
                except OSError as failed:
                    if conn.sock is None:  # never connected
                        raise
                    # The server may have answered (and closed) before reading the whole
                    # body, e.g. refusing an upload over its limit: prefer its answer,
                    # read before the connection (and the answer with it) is closed.
                    try:
                        early = HttpResponse(conn.getresponse(), method, url)
                        early.content  # noqa: B018
                    except TRANSPORT_ERRORS:
                        raise failed from None
                    conn.close()
                    return early
                raw = conn.getresponse()
            except TRANSPORT_ERRORS:
                conn.close()
                if reused:
                    continue  # a stale keep-alive connection: reopen it, at once
                raise
            return HttpResponse(raw, method, url)

    # -- the retry loop --------------------------------------------------------------

    def _delay_s(self, attempt: int, response: HttpResponse | None) -> float:
        asked = retry_after_s(response.headers.get("Retry-After")) if response else None
        if asked is None:
            asked = self.backoff_s * 2**attempt * random.uniform(0.5, 1.0)
        return min(self.max_backoff_s, asked)

    def _unreachable(self, exc: Exception) -> StoreUnavailable:
        return StoreUnavailable(
            f"cannot reach the modelyard server at {self.base_url} after "
            f"{self.max_retries + 1} attempts: {type(exc).__name__}: {exc}"
        )

    def _attempts(
        self, method: str, target: str, body: Body, headers: dict[str, str], *, read: bool
    ) -> HttpResponse:
        """The one retry loop: an answer that is not to be retried (or the last one), its
        body read when ``read`` (a failure while reading is retried too); a streamed
        answer (``read`` false) is retried until its head arrives, never after."""
        for attempt in range(self.max_retries + 1):
            last = attempt >= self.max_retries
            try:
                response = self._exchange(method, target, body, headers)
                if read:
                    response.content  # noqa: B018 - the whole body, freeing the connection
                if response.status_code not in RETRY_STATUSES or last:
                    return response
                response.content  # noqa: B018 - drained, so the connection is reused
            except TRANSPORT_ERRORS as exc:
                self._drop_connection()
                if last:
                    raise self._unreachable(exc) from exc
                response = None
            time.sleep(self._delay_s(attempt, response))
        raise AssertionError("unreachable")  # pragma: no cover

    # -- requests --------------------------------------------------------------------

    def request(
        self,
        method: str,
        path: str,
        *,
        params: dict[str, Any] | None = None,
        body: Body = None,
        headers: dict[str, str] | None = None,
    ) -> HttpResponse:
        """Send with retries; an error status raises the matching ModelyardError. The
        answer's body has been read (``content``)."""
        target = self._target(path, params)
        response = self._attempts(method, target, body, self._headers(headers), read=True)
        if response.is_error:
            raise error_for(response)
        return response

    @contextlib.contextmanager
    def stream(self, method: str, path: str) -> Iterator[HttpResponse]:
        """A streamed response; the connection is reused if the body was read to its end,
        else closed."""
        target = self._target(path, None)
        response = self._attempts(method, target, None, self._headers(None), read=False)
        try:
            if response.is_error:
                response.content  # noqa: B018
                raise error_for(response)
            yield response
        except TRANSPORT_ERRORS:
            self._drop_connection()
            raise
        finally:
            if not response.complete:
                self._drop_connection()

    def call(
        self, method: str, path: str, *, params: dict[str, Any] | None = None, body: Any = None
    ) -> dict[str, Any]:
        """A JSON API call: ``body`` is sent as JSON, the answer must be a JSON object."""
        payload = None
        headers = None
        if body is not None:
            payload = json.dumps(body, separators=(",", ":"), allow_nan=False).encode()
            headers = {"Content-Type": "application/json"}
        query = {k: v for k, v in (params or {}).items() if v is not None}
        response = self.request(method, path, params=query, body=payload, headers=headers)
        try:
            data = response.json() if response.content else {}
        except ValueError as exc:
            raise StoreUnavailable(
                f"{self.base_url}{path} did not answer JSON (is it a modelyard server?)"
            ) from exc
        if not isinstance(data, dict):
            raise StoreUnavailable(f"{self.base_url}{path} answered {type(data).__name__}")
        return data


def _query_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def error_for(response: HttpResponse) -> ModelyardError:
    """The exception a server's error answer stands for."""
    try:
        data = response.json()
    except ValueError:
        data = None
    if isinstance(data, dict) and isinstance(data.get("error_code"), str):
        code, message = data["error_code"], str(data.get("message", ""))
        error = error_from_code(code, message)
        if type(error) is ModelyardError:
            error.code = code  # keep codes without a class of their own (ENDPOINT_NOT_FOUND)
        if isinstance(error, RequestLimitExceeded):
            wait = retry_after_s(response.headers.get("Retry-After"))
            error.retry_after_s = None if wait is None else math.ceil(wait)
        field = data.get("field")
        if isinstance(field, str):
            error.field = field
        return error
    status = response.status_code
    text = response.text[:200]
    where = f"{response.method} {response.url}"
    if status == 401:
        return Unauthenticated(f"{where}: {status} {text}")
    if status == 403:
        return PermissionDenied(f"{where}: {status} {text}")
    if status == 404:
        return NotFound(f"{where}: 404 (is this a modelyard server?) {text}")
    if status >= 500:
        return StoreUnavailable(f"{where}: {status} {text}")
    return BadRequest(f"{where}: {status} {text}")
