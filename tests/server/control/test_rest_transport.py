"""The remote client's HTTP transport and batch splitting, against a scripted local HTTP
server: retries with back-off and ``Retry-After``, error classes rebuilt from codes,
keep-alive connections (reopened when the server closed them, closed when their thread
ends or the transport is closed), and requests within the server's limits."""

from __future__ import annotations

import email.utils
import json
import socket
import threading
import time
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from modelyard.errors import (
    AlreadyExists,
    InvalidParameter,
    ModelyardError,
    NotFound,
    RequestLimitExceeded,
    StoreUnavailable,
)
from modelyard.http_transport import HttpTransport, retry_after_s
from modelyard.tracking.entities import Metric, Param, RunTag
from modelyard.tracking.rest_store import MAX_BATCH_BYTES, split_batch

#: (status, body, extra headers) answered for one request; body None sends no JSON.
Answer = tuple[int, object, dict[str, str]]


class Seen:
    """What the scripted server received: one dict per request."""

    def __init__(self) -> None:
        self.requests: list[dict[str, object]] = []
        self.connections: set[tuple[str, int]] = set()


@pytest.fixture
def scripted() -> Iterator[Callable[..., tuple[str, Seen]]]:
    servers: list[ThreadingHTTPServer] = []

    def start(answer: Callable[[dict[str, object]], Answer]) -> tuple[str, Seen]:
        seen = Seen()

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"  # keep-alive

            def _answer(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                request = {
                    "method": self.command,
                    "path": self.path,
                    "headers": dict(self.headers),
                    "body": self.rfile.read(length),
                    "client": self.client_address,
                }
                seen.requests.append(request)
                seen.connections.add(self.client_address)
                status, body, headers = answer(request)
                data = b"" if body is None else json.dumps(body).encode()
                if isinstance(body, str):
                    data = body.encode()
                self.send_response(status)
                self.send_header("Content-Length", str(len(data)))
                for name, value in headers.items():
                    self.send_header(name, value)
                self.end_headers()
                self.wfile.write(data)

            do_GET = do_POST = do_PUT = do_DELETE = _answer

            def log_message(self, *args: object) -> None:
                pass

        server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        server.daemon_threads = True
        threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True).start()
        servers.append(server)
        return f"http://127.0.0.1:{server.server_address[1]}", seen

    yield start
    _close_transports()  # first: a handler thread ends when its client hangs up
    for server in servers:
        server.shutdown()
        server.server_close()


_opened: list[HttpTransport] = []


def _close_transports() -> None:
    while _opened:
        _opened.pop().close()


@pytest.fixture(autouse=True)
def _closed_after_each_test() -> Iterator[None]:
    yield
    _close_transports()


def transport(url: str, **kwargs) -> HttpTransport:
    opened = HttpTransport(url, backoff_s=0.001, **kwargs)
    _opened.append(opened)
    return opened


def test_retries_502_503_504_then_succeeds(scripted):
    statuses = iter([502, 503, 504, 200])

    def answer(request):
        status = next(statuses)
        return status, {} if status == 200 else None, {}

    url, seen = scripted(answer)
    assert transport(url).call("POST", "/x", body={"a": 1}) == {}
    assert len(seen.requests) == 4
    assert all(json.loads(r["body"]) == {"a": 1} for r in seen.requests)


@pytest.mark.parametrize("status", [429, 503])
def test_retry_after_sets_the_wait_in_seconds_or_as_a_date_within_the_bound(
    scripted, monkeypatch, status
):
    in_5_s = email.utils.formatdate(time.time() + 5, usegmt=True)
    answers = iter([("2", status), (in_5_s, status), ("3600", status), (None, 200)])

    def answer(request):
        retry_after, code = next(answers)
        return code, {}, {"Retry-After": retry_after} if retry_after else {}

    url, seen = scripted(answer)
    waits: list[float] = []
    monkeypatch.setattr("modelyard.http_transport.time.sleep", waits.append)
    assert transport(url, max_backoff_s=7.0).call("POST", "/x", body={}) == {}
    assert len(seen.requests) == 4
    assert waits[0] == 2.0
    assert 3.0 <= waits[1] <= 5.0  # the date has whole seconds
    assert waits[2] == 7.0  # an hour, bounded by max_backoff_s


def test_without_retry_after_the_wait_doubles_with_jitter(scripted, monkeypatch):
    statuses = iter([502, 502, 502, 200])
    url, _ = scripted(lambda r: (next(statuses), {}, {}))
    waits: list[float] = []
    monkeypatch.setattr("modelyard.http_transport.time.sleep", waits.append)
    HttpTransport(url, backoff_s=1.0, max_backoff_s=3.0).call("GET", "/x")
    assert 0.5 <= waits[0] <= 1.0 and 1.0 <= waits[1] <= 2.0 and 2.0 <= waits[2] <= 3.0


def test_a_429_past_the_last_retry_says_when_to_come_back(scripted):
    body = {"error_code": "REQUEST_LIMIT_EXCEEDED", "message": "locked out"}
    url, seen = scripted(lambda r: (429, body, {"Retry-After": "30"}))
    with pytest.raises(RequestLimitExceeded, match="locked out") as info:
        transport(url, max_retries=0).call("GET", "/x")
    assert info.value.retry_after_s == 30 and len(seen.requests) == 1


@pytest.mark.parametrize(
    ("header", "seconds"),
    [
        ("0", 0.0),
        (" 12 ", 12.0),
        ("1.5", 1.5),
        ("-4", 0.0),
        ("Sun, 06 Dec 2026 05:00:10 GMT", 10.0),
        ("Sun, 06 Dec 2026 04:59:00 GMT", 0.0),  # past: at once
        ("tomorrow", None),
        ("nan", None),
        ("", None),
        (None, None),
    ],
)
def test_retry_after_values(header, seconds):
    assert retry_after_s(header, now=1796533200.0) == seconds


def test_connection_errors_are_retried_then_reported_as_unavailable():
    with socket.socket() as sock:  # a port nobody listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    with pytest.raises(StoreUnavailable, match=r"127\.0\.0\.1.*3 attempts.*Refused"):
        transport(f"http://127.0.0.1:{port}", max_retries=2).call("GET", "/x")


def test_a_500_and_client_errors_are_not_retried(scripted):
    url, seen = scripted(lambda r: (500, {"error_code": "INTERNAL_ERROR", "message": "bug"}, {}))
    with pytest.raises(ModelyardError, match="bug"):
        transport(url).call("GET", "/x")
    assert len(seen.requests) == 1


@pytest.mark.parametrize(
    ("status", "body", "error"),
    [
        (
            400,
            {"error_code": "INVALID_PARAMETER_VALUE", "message": "m", "field": "f"},
            InvalidParameter,
        ),
        (400, {"error_code": "RESOURCE_ALREADY_EXISTS", "message": "m"}, AlreadyExists),
        (404, {"error_code": "RESOURCE_DOES_NOT_EXIST", "message": "m"}, NotFound),
        (404, None, NotFound),
        (503, None, StoreUnavailable),
    ],
)
def test_errors_are_rebuilt_from_their_codes(scripted, status, body, error):
    url, _ = scripted(lambda r: (status, "<html>nope</html>" if body is None else body, {}))
    with pytest.raises(error) as info:
        transport(url, max_retries=0).call("GET", "/x")
    if body and "field" in body:
        assert info.value.field == "f"


def test_unknown_codes_keep_their_code(scripted):
    url, _ = scripted(lambda r: (404, {"error_code": "ENDPOINT_NOT_FOUND", "message": "old"}, {}))
    with pytest.raises(ModelyardError) as info:
        transport(url).call("GET", "/x")
    assert info.value.code == "ENDPOINT_NOT_FOUND"


def test_a_bearer_token_and_the_query_are_sent(scripted):
    url, seen = scripted(lambda r: (200, {"ok": True}, {}))
    own = HttpTransport(url + "/prefix/", token="s3cret")
    assert own.call("GET", "/x", params={"run_id": "a b", "n": 3, "all": True}) == {"ok": True}
    own.close()
    (request,) = seen.requests
    assert request["headers"]["Authorization"] == "Bearer s3cret"
    assert request["path"] == "/prefix/x?run_id=a+b&n=3&all=true"


def test_calls_from_one_thread_share_one_kept_alive_connection(scripted):
    url, seen = scripted(lambda r: (200, {}, {}))
    http = transport(url)
    for _ in range(5):
        http.call("POST", "/x", body={})
    assert len(seen.requests) == 5 and len(seen.connections) == 1
    threads = [threading.Thread(target=http.call, args=("GET", "/y")) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(seen.connections) == 4  # one more per thread


def test_a_thread_s_connection_is_closed_when_the_thread_ends(scripted):
    url, _ = scripted(lambda r: (200, {}, {}))
    http = transport(url)
    used: list = []

    def work() -> None:
        http.call("GET", "/x")
        used.append(http._connection()[0])

    thread = threading.Thread(target=work)
    thread.start()
    thread.join()
    assert used[0].sock is None


def test_close_closes_every_thread_s_connection_and_a_later_call_reconnects(scripted):
    url, seen = scripted(lambda r: (200, {}, {}))
    called, closed = threading.Event(), threading.Event()
    used: list = []

    def work() -> None:
        http.call("GET", "/x")
        used.append(http._connection()[0])
        called.set()
        closed.wait(10)

    with HttpTransport(url) as http:
        http.call("GET", "/x")
        used.append(http._connection()[0])
        thread = threading.Thread(target=work)
        thread.start()
        called.wait(10)
        http.close()
        assert [conn.sock for conn in used] == [None, None]
        closed.set()
        thread.join()
        assert http.call("GET", "/x") == {}
        assert len(seen.connections) == 3
    assert http._connection()[0].sock is None  # leaving the block closed it


def test_a_connection_the_server_closed_is_reopened_without_waiting(scripted):
    url, seen = scripted(lambda r: (200, {}, {"Connection": "close"}))
    http = transport(url, max_retries=0)  # no retries left: the reopening is not one
    for _ in range(3):
        assert http.call("POST", "/x", body={"a": 1}) == {}
    assert len(seen.requests) == 3 and len(seen.connections) == 3


def test_a_stale_kept_alive_connection_is_reopened(scripted):
    url, seen = scripted(lambda r: (200, {}, {}))
    http = transport(url, max_retries=0)
    http.call("GET", "/x")
    conn, reused = http._connection()
    assert reused
    conn.sock.shutdown(socket.SHUT_RDWR)  # as if the server had dropped it while idle
    assert http.call("POST", "/x", body={"a": 1}) == {}
    assert [json.loads(r["body"] or b"null") for r in seen.requests] == [None, {"a": 1}]


def test_a_streamed_download_read_in_part_does_not_spoil_the_connection(scripted):
    url, _ = scripted(lambda r: (200, {"data": "x" * 100_000}, {}))
    http = transport(url)
    with http.stream("GET", "/big") as response:
        next(response.iter_bytes(10))
    assert http.call("GET", "/next") == {"data": "x" * 100_000}
    with http.stream("GET", "/big") as response:
        assert json.loads(b"".join(response.iter_bytes(1000))) == {"data": "x" * 100_000}


class TestSplitBatch:
    def test_a_batch_within_limits_is_one_request(self):
        chunks = list(
            split_batch(
                [Metric("m", 1.0, 1, i) for i in range(900)], [Param("p", "v")], [RunTag("t", "v")]
            )
        )
        assert len(chunks) == 1

    def test_an_empty_batch_is_one_empty_request(self):
        assert list(split_batch([], [], [])) == [([], [], [])]

    def test_large_batches_respect_every_limit_and_send_params_first(self):
        metrics = [Metric("m", 1.0, 1, i) for i in range(2500)]
        params = [Param(f"p{i}", "x" * 6000) for i in range(250)]
        tags = [RunTag(f"t{i}", "y") for i in range(150)]
        chunks = list(split_batch(metrics, params, tags))
        for m, p, t in chunks:
            assert len(m) <= 1000 and len(p) <= 100 and len(t) <= 100
            assert len(m) + len(p) + len(t) <= 1000
            size = sum(len(x.key) + len(x.value) for x in (*p, *t)) + 64 * len(m)
            assert size <= MAX_BATCH_BYTES
        assert [x for c in chunks for x in c[0]] == metrics
        assert [x for c in chunks for x in c[1]] == params
        assert [x for c in chunks for x in c[2]] == tags
        last_param = max(i for i, c in enumerate(chunks) if c[1])
        first_metric = min(i for i, c in enumerate(chunks) if c[0])
        assert last_param <= first_metric  # a param conflict stops the batch before metrics


def test_an_http_proxy_from_the_environment_is_used_unless_no_proxy_says_otherwise(
    scripted, monkeypatch
):
    proxy, seen = scripted(lambda r: (200, {"via": "proxy"}, {}))
    for name in ("no_proxy", "NO_PROXY", "all_proxy", "ALL_PROXY", "HTTPS_PROXY", "https_proxy"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("HTTP_PROXY", proxy)
    monkeypatch.setenv("http_proxy", proxy)
    assert transport("http://yard.test:5000/p").call("GET", "/x") == {"via": "proxy"}
    assert seen.requests[-1]["path"] == "http://yard.test:5000/p/x"  # absolute form
    monkeypatch.setenv("NO_PROXY", "yard.test")
    monkeypatch.setenv("no_proxy", "yard.test")
    with pytest.raises(StoreUnavailable):  # straight to yard.test, which does not exist
        transport("http://yard.test:5000", max_retries=0).call("GET", "/x")


def test_a_streamed_upload_on_a_stale_connection_is_sent_again_at_once(scripted):
    url, seen = scripted(lambda r: (200, {}, {}))
    http = transport(url, max_retries=0)  # no retry: only the reopening can save it
    http.call("GET", "/x")
    conn, _ = http._connection()
    conn.sock.shutdown(socket.SHUT_RDWR)
    sent = http.request(
        "PUT", "/up", body=lambda: iter([b"ab", b"c"]), headers={"Content-Length": "3"}
    )
    assert sent.status_code == 200
    assert seen.requests[-1]["body"] == b"abc"


def test_an_answer_sent_before_the_upload_was_read_keeps_its_message():
    """A server refusing an upload over its limit answers at once and closes; the
    client reads that answer, message and all, instead of a broken pipe."""
    listener = socket.create_server(("127.0.0.1", 0))
    answer = json.dumps({"error_code": "INVALID_PARAMETER_VALUE", "message": "over 1 kB"})

    def serve() -> None:
        conn, _ = listener.accept()
        with conn:
            head = b""
            while b"\r\n\r\n" not in head:
                head += conn.recv(65536)
            conn.sendall(
                b"HTTP/1.1 400 Bad Request\r\nContent-Type: application/json\r\n"
                + f"Content-Length: {len(answer)}\r\n\r\n{answer}".encode()
            )
            # and closes without reading the body: the client's send fails midway

    threading.Thread(target=serve, daemon=True).start()
    http = transport(f"http://127.0.0.1:{listener.getsockname()[1]}", max_retries=0)
    big = b"x" * (8 << 20)
    with pytest.raises(InvalidParameter, match="over 1 kB"):
        http.request(
            "PUT", "/up", body=lambda: iter([big]), headers={"Content-Length": str(len(big))}
        )
    listener.close()
