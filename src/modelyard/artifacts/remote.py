"""Artifacts on a ``modelyard server``, through its MLflow artifact proxy; and the HTTP
transport the remote tracking store shares.

``RemoteArtifactRepository`` offers the ``ArtifactRepository`` methods the tracking client
uses (``log_file``, ``log_bytes``, ``log_dir``, ``list``, ``read_bytes``, ``download``,
``delete``) over ``/api/2.0/mlflow-artifacts/artifacts``. Paths are the same logical
paths (``<exp>/<run_id>/artifacts/<file>``). Each file is one PUT and appears whole or
not at all; unlike the local repository, a directory is not logged in one transaction.

``HttpTransport`` keeps one keep-alive ``http.client`` connection per thread (Nagle off),
retries connection errors and 502/503/504 with exponential back-off, and turns error
answers back into the exception classes local use raises (``error_from_code``). Plain
``http.client`` rather than a client library: per-call logging is one small request, and
httpx cost ~0.3-0.5 ms of client time per call against ~0.05 ms for this.

Example::

    transport = HttpTransport("http://127.0.0.1:5000")
    repo = RemoteArtifactRepository(transport)
    repo.log_bytes("1/abc/artifacts/notes.txt", b"hi")
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import http.client
import json
import os
import random
import socket
import tempfile
import threading
import time
import urllib.request
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote, unquote, urlencode, urlsplit

from modelyard import json_codec
from modelyard.artifacts.repository import ArtifactEntry, FileInfo, validate_artifact_path
from modelyard.errors import (
    BadRequest,
    InvalidParameter,
    ModelyardError,
    NotFound,
    NotImplementedFeature,
    PermissionDenied,
    StoreUnavailable,
    Unauthenticated,
    error_from_code,
)
from modelyard.ids import now_ms

ARTIFACTS_ROOT = "/api/2.0/mlflow-artifacts/artifacts"
RETRY_STATUSES = frozenset({502, 503, 504})
_CHUNK = 1 << 20
Body = bytes | Callable[[], Iterable[bytes]] | None
#: What a failed exchange raises in ``http.client`` (refused, reset, timed out, garbled).
TRANSPORT_ERRORS = (OSError, http.client.HTTPException)


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
        """The body as JSON; raises ``ValueError`` when it is not JSON."""
        return json_codec.loads(self.content)

    def iter_bytes(self, chunk_size: int = _CHUNK) -> Iterator[bytes]:
        while chunk := self.raw.read(chunk_size):
            yield chunk

    @property
    def complete(self) -> bool:
        """Whether the body was read to its end (the connection can serve another call)."""
        return self.raw.isclosed()


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


def _route_for(base_url: str) -> _Route:
    parts = urlsplit(base_url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise InvalidParameter(
            f"tracking URI {base_url!r} is not an http:// or https:// URL", field="tracking_uri"
        )
    port = parts.port or (443 if parts.scheme == "https" else 80)
    route = _Route(parts.scheme, parts.hostname, port, parts.path.rstrip("/"))
    # Like httpx (and curl), honour HTTP(S)_PROXY, ALL_PROXY and NO_PROXY from the
    # environment; only HTTP proxies (CONNECT for https), not SOCKS.
    proxies = urllib.request.getproxies_environment()
    proxy_url = proxies.get(parts.scheme) or proxies.get("all")
    if not proxy_url or urllib.request.proxy_bypass_environment(parts.hostname, proxies):
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
    """Keep-alive HTTP/1.1 with Nagle's algorithm off, a shorter timeout for connecting
    than for waiting on an answer, and a small request sent in one segment (``http.client``
    sends the head and the body apart: two packets, and two wake-ups of the server)."""

    connect_timeout: float = 10.0
    read_timeout: float | None = None
    sock: Any
    _buffer: list[bytes]

    def connect(self) -> None:
        self.timeout = self.connect_timeout
        super().connect()  # type: ignore[misc]
        self.sock.settimeout(self.read_timeout)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def _send_output(self, message_body: Any = None, encode_chunked: bool = False) -> None:
        if type(message_body) is not bytes or encode_chunked or len(message_body) > _CHUNK:
            super()._send_output(message_body, encode_chunked)  # type: ignore[misc]
            return
        self._buffer.extend((b"", b""))
        head = b"\r\n".join(self._buffer)
        del self._buffer[:]
        self.send(head + message_body)  # type: ignore[attr-defined]


class _Connection(_Tuned, http.client.HTTPConnection):
    pass


class _TlsConnection(_Tuned, http.client.HTTPSConnection):
    pass


class HttpTransport:
    """One server's base URL, a keep-alive connection per thread, retries and error
    rebuilding. Safe to share between threads.

    ``max_retries`` counts retries after the first attempt; waits are
    ``backoff_s * 2**attempt`` (capped at ``max_backoff_s``) with jitter. Writes are
    retried too: the server's writes are idempotent where the MLflow API allows it
    (batches, params, tags, artifacts); a retried create may answer ``AlreadyExists``.
    A reused connection the server has meanwhile closed is reopened at once (no wait,
    not counted as a retry).
    """

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
        self._lock = threading.Lock()
        # thread id -> (thread, process id, connection): one connection per thread
        self._connections: dict[int, tuple[threading.Thread, int, http.client.HTTPConnection]]
        self._connections = {}

    def __repr__(self) -> str:
        return f"HttpTransport({self.base_url!r})"

    def close(self) -> None:
        with self._lock:
            connections, self._connections = self._connections, {}
        for _, pid, conn in connections.values():
            if pid == os.getpid():
                conn.close()

    # -- connections -----------------------------------------------------------------

    def _connection(self) -> tuple[http.client.HTTPConnection, bool]:
        """This thread's connection, and whether it has served a request before."""
        thread = threading.current_thread()
        entry = self._connections.get(thread.ident or 0)
        if entry is not None and entry[0] is thread and entry[1] == os.getpid():
            return entry[2], entry[2].sock is not None
        conn = self._new_connection()
        with self._lock:
            # Connections of finished threads are closed here, not left to the collector.
            for ident, (other, pid, old) in list(self._connections.items()):
                if not other.is_alive() or pid != os.getpid() or ident == thread.ident:
                    del self._connections[ident]
                    if pid == os.getpid() and other is not thread:
                        old.close()
            self._connections[thread.ident or 0] = (thread, os.getpid(), conn)
        return conn, False

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
                    conn.request(method, target, body=content, headers=headers)
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

    def _release(self, response: HttpResponse) -> None:
        """Make the connection reusable: drain a small unread body, else close it."""
        if not response.complete:
            self._connection()[0].close()

    # -- requests --------------------------------------------------------------------

    def _wait(self, attempt: int) -> None:
        delay = min(self.max_backoff_s, self.backoff_s * 2**attempt)
        time.sleep(delay * random.uniform(0.5, 1.0))

    def _unreachable(self, exc: Exception) -> StoreUnavailable:
        return StoreUnavailable(
            f"cannot reach the modelyard server at {self.base_url} after "
            f"{self.max_retries + 1} attempts: {type(exc).__name__}: {exc}"
        )

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
        all_headers = self._headers(headers)
        for attempt in range(self.max_retries + 1):
            try:
                response = self._exchange(method, target, body, all_headers)
                response.content  # noqa: B018 - read the whole body, freeing the connection
            except TRANSPORT_ERRORS as exc:
                self._connection()[0].close()
                if attempt >= self.max_retries:
                    raise self._unreachable(exc) from exc
                self._wait(attempt)
                continue
            if response.status_code in RETRY_STATUSES and attempt < self.max_retries:
                self._wait(attempt)
                continue
            if response.is_error:
                raise error_for(response)
            return response
        raise AssertionError("unreachable")  # pragma: no cover

    @contextlib.contextmanager
    def stream(self, method: str, path: str) -> Iterator[HttpResponse]:
        """A streamed response (retried until its headers arrive, never after)."""
        target = self._target(path, None)
        headers = self._headers(None)
        for attempt in range(self.max_retries + 1):
            try:
                response = self._exchange(method, target, None, headers)
            except TRANSPORT_ERRORS as exc:
                if attempt >= self.max_retries:
                    raise self._unreachable(exc) from exc
                self._wait(attempt)
                continue
            try:
                if response.status_code in RETRY_STATUSES and attempt < self.max_retries:
                    response.content  # noqa: B018 - drained, so the connection is reused
                    self._wait(attempt)
                    continue
                if response.is_error:
                    response.content  # noqa: B018
                    raise error_for(response)
                yield response
            except TRANSPORT_ERRORS:
                self._connection()[0].close()
                raise
            finally:
                self._release(response)
            return

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


def _optional_path(path: str | None, field: str) -> str:
    """A valid artifact path, or '' (or None) for the repository root."""
    return "" if path in (None, "") else validate_artifact_path(path, field)


def _url(path: str) -> str:
    return f"{ARTIFACTS_ROOT}/{quote(path, safe='/')}"


class RemoteArtifactRepository:
    """The artifact repository of a ``modelyard server``, over its artifact proxy."""

    def __init__(self, transport: HttpTransport) -> None:
        self.http = transport

    def __repr__(self) -> str:
        return f"RemoteArtifactRepository({self.http.base_url!r})"

    # -- writing ---------------------------------------------------------------------

    def log_file(self, dest_path: str, local_file: str | os.PathLike[str]) -> ArtifactEntry:
        validate_artifact_path(dest_path)
        src = os.fspath(local_file)
        if not os.path.isfile(src):
            raise NotFound(f"local file {src!r} does not exist", field="local_path")
        hasher: list[Any] = []

        def chunks() -> Iterator[bytes]:
            digest = hashlib.sha256()
            hasher[:] = [digest]
            with open(src, "rb") as f:
                while block := f.read(_CHUNK):
                    digest.update(block)
                    yield block

        size = os.path.getsize(src)
        self.http.request(
            "PUT", _url(dest_path), body=chunks, headers={"Content-Length": str(size)}
        )
        return ArtifactEntry(dest_path, hasher[0].hexdigest(), size, now_ms())

    def log_bytes(self, dest_path: str, data: bytes) -> ArtifactEntry:
        validate_artifact_path(dest_path)
        self.http.request("PUT", _url(dest_path), body=bytes(data))
        return ArtifactEntry(dest_path, hashlib.sha256(data).hexdigest(), len(data), now_ms())

    def log_dir(self, dest_prefix: str, local_dir: str | os.PathLike[str]) -> list[ArtifactEntry]:
        """Upload every file under ``local_dir`` to ``dest_prefix/<relative path>``."""
        prefix = _optional_path(dest_prefix, "dest_prefix")
        root = os.fspath(local_dir)
        if not os.path.isdir(root):
            raise NotFound(f"local directory {root!r} does not exist", field="local_dir")
        entries: list[ArtifactEntry] = []
        for dirpath, dirnames, filenames in os.walk(root):
            dirnames.sort()
            for name in sorted(filenames):
                full = os.path.join(dirpath, name)
                rel = os.path.relpath(full, root).replace(os.sep, "/")
                entries.append(self.log_file(f"{prefix}/{rel}" if prefix else rel, full))
        return entries

    def delete(self, path_or_prefix: str) -> None:
        """Remove a file or a whole directory (the server does not report a count)."""
        validate_artifact_path(path_or_prefix, "path_or_prefix")
        self.http.request("DELETE", _url(path_or_prefix))

    # -- reading ---------------------------------------------------------------------

    def list(self, prefix: str | None = "", *, relative_to: str | None = None) -> list[FileInfo]:
        """The direct children of ``prefix``, as full paths (or relative to ``relative_to``)."""
        base = _optional_path(prefix, "prefix")
        strip = 0
        if relative_to:
            root = validate_artifact_path(relative_to, "relative_to")
            if base != root and not base.startswith(f"{root}/"):
                raise BadRequest(
                    f"prefix {base!r} is not inside relative_to {root!r}", field="relative_to"
                )
            strip = len(root) + 1
        data = self.http.call("GET", ARTIFACTS_ROOT, params={"path": base})
        out = []
        for item in data.get("files", []):
            full = f"{base}/{item['path']}" if base else item["path"]
            size = None if item.get("is_dir") else int(item.get("file_size", 0))
            out.append(FileInfo(full[strip:], bool(item.get("is_dir")), size))
        return out

    def read_bytes(self, path: str) -> bytes:
        validate_artifact_path(path)
        return self.http.request("GET", _url(path)).content

    def download(self, path: str, dst_dir: str | os.PathLike[str]) -> str:
        """Copy the file or directory at ``path`` into ``dst_dir``; returns the local path.

        Same layout as the local repository: a file lands at ``dst_dir/<name>``, a
        directory at ``dst_dir/<name>/...``, '' fills ``dst_dir``. Each file is written to a
        temporary name and renamed, so it appears complete or not at all.
        """
        base = _optional_path(path, "path")
        dst = os.path.abspath(os.fspath(dst_dir))
        children = self.list(base)
        if not children:
            if not base:
                raise NotFound("the artifact repository is empty", field="path")
            target = os.path.join(dst, base.rsplit("/", 1)[-1])
            self._fetch(base, target)
            return target
        target = os.path.join(dst, base.rsplit("/", 1)[-1]) if base else dst
        self._fetch_tree(base, children, target)
        return target

    def _fetch_tree(self, base: str, children: list[FileInfo], target: str) -> None:
        os.makedirs(target, exist_ok=True)
        for child in children:
            name = child.path[len(base) + 1 :] if base else child.path
            local = os.path.join(target, name)
            if child.is_dir:
                self._fetch_tree(child.path, self.list(child.path), local)
            else:
                self._fetch(child.path, local)

    def _fetch(self, path: str, local_path: str) -> None:
        folder = os.path.dirname(local_path) or "."
        os.makedirs(folder, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=".modelyard-", suffix=".part", dir=folder)
        try:
            with os.fdopen(fd, "wb") as out, self.http.stream("GET", _url(path)) as response:
                for chunk in response.iter_bytes(_CHUNK):
                    out.write(chunk)
            os.replace(tmp, local_path)
        except NotFound:
            raise NotFound(f"artifact path {path!r} does not exist", field="path") from None
        finally:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(tmp)

    # -- maintenance -----------------------------------------------------------------

    def collect_garbage(self, dry_run: bool = False, *, grace_s: float | None = None) -> Any:
        raise NotImplementedFeature(
            "artifact garbage collection runs next to the store: run `modelyard gc` on the "
            "server's host"
        )
