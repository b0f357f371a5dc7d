"""Bounded requests everywhere (security issue 18, item 5), written as the attacks.

* A compression bomb (1 MB of gzip or deflate inflating to 1 GB) against the inference
  server is a 413 naming the limit and the setting; it is inflated in chunks in a worker
  thread, so the process never holds more than the body limit of it and the event loop
  keeps answering meanwhile. A body inflating more than ``MAX_INFLATION`` times is refused
  even under the limit; a body that is not valid gzip is a 400.
* An OIP shape is checked before anything is built from it, and numbers must fit their
  datatype: a 400 naming the input and the field (``inputs[0].shape``).
* A JSON integer past Python's 4,300-digit limit, a number past a double (inference) and a
  lone surrogate are a 400 naming the field, on every route of both servers (never a 5xx,
  which the MLflow client retries for minutes): every control-plane route is sent each of
  them, then a fuzz test sends every route bodies and query strings mixing them in.
"""

from __future__ import annotations

import asyncio
import gzip
import json
import os
import re
import threading
import time
import tracemalloc
import zlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from starlette.routing import Route
from tests.serving.conftest import FEATURES, make_yard, serve_in_process, wait_until

from modelyard.config import Settings
from modelyard.server.control import mlflow_api, native_api
from modelyard.server.control.app import create_app
from modelyard.server.http.request_body import INFLATION_FLOOR, MAX_INFLATION
from modelyard.tracking.client import TrackingClient

ROW = {"x0": 1.0, "x1": -0.5, "x2": 0.25, "x3": 2.0}
INFER = "/v2/models/web/infer"
HUGE = "9" * 5000  # past Python's int-string limit (4,300 digits)
LONE = '"\\ud800"'  # a lone surrogate, as JSON writes it


def oip_body(**first: Any) -> dict[str, Any]:
    """An OIP request for the four-feature regressor; ``first`` overrides input 0."""
    inputs = [{"name": c, "shape": [1], "datatype": "FP64", "data": [ROW[c]]} for c in FEATURES]
    inputs[0] = {**inputs[0], **first}
    return {"inputs": inputs}


def error_of(response: httpx.Response) -> str:
    payload = response.json()
    return str(payload.get("error") or payload.get("message"))


# -- the inference server -----------------------------------------------------------------


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Any, httpx.Client]]:
    yard = make_yard(tmp_path_factory.mktemp("bounded"))
    yard.deployments.create("web", yard.regressor().uri)
    server, runtime = serve_in_process(yard, "web")
    with server:
        wait_until(lambda: runtime.ready, what="the first revision")
        with httpx.Client(base_url=server.url, timeout=60) as http:
            yield runtime, http


@pytest.fixture(scope="module")
def gzip_bomb() -> bytes:
    """~1 MB of gzip that inflates to 1 GiB of spaces."""
    compressor = zlib.compressobj(9, zlib.DEFLATED, 16 + zlib.MAX_WBITS)
    block = b" " * (1 << 20)
    bomb = b"".join(compressor.compress(block) for _ in range(1024)) + compressor.flush()
    assert len(bomb) < 1.1e6
    return bomb


def _peak_while(send: Any) -> tuple[httpx.Response, int]:
    """``send()``'s answer and the peak of Python memory traced meanwhile (all threads)."""
    tracemalloc.start()
    try:
        tracemalloc.reset_peak()
        base = tracemalloc.get_traced_memory()[0]
        response = send()
        return response, tracemalloc.get_traced_memory()[1] - base
    finally:
        tracemalloc.stop()


@pytest.mark.parametrize("path", [INFER, "/invocations", "/predict"])
def test_a_gzip_bomb_is_413_and_never_inflated_past_the_limit(served, gzip_bomb, path):
    runtime, http = served
    limit = runtime.options.max_body_bytes
    response, peak = _peak_while(
        lambda: http.post(
            path,
            content=gzip_bomb,
            headers={"content-encoding": "gzip", "content-type": "application/json"},
        )
    )
    assert response.status_code == 413, response.text
    assert f"limit is {limit} bytes" in error_of(response)
    assert "MODELYARD_SERVE_MAX_BODY_MB" in error_of(response)
    # At most the limit of output plus the compressed body and zlib's working chunks;
    # before, all 1 GiB was inflated in one piece (and then refused, or parsed).
    assert peak < limit + 4 * len(gzip_bomb) + (8 << 20), f"peak {peak >> 20} MiB"


def test_a_deflate_bomb_is_413_too(served):
    runtime, http = served
    bomb = zlib.compress(b"0" * (256 << 20), 9)
    response, peak = _peak_while(
        lambda: http.post(INFER, content=bomb, headers={"content-encoding": "deflate"})
    )
    assert response.status_code == 413, response.text
    assert "MODELYARD_SERVE_MAX_BODY_MB" in error_of(response)
    assert peak < runtime.options.max_body_bytes + (16 << 20), f"peak {peak >> 20} MiB"


def test_a_bomb_under_the_limit_is_refused_for_its_ratio(served):
    _, http = served
    inflated = 8 << 20  # over INFLATION_FLOOR, far under the 64 MB limit
    bomb = gzip.compress(b" " * inflated)
    assert inflated > INFLATION_FLOOR and inflated > MAX_INFLATION * len(bomb)
    response = http.post(INFER, content=bomb, headers={"content-encoding": "gzip"})
    assert response.status_code == 413, response.text
    assert f"{MAX_INFLATION} times" in error_of(response)


def test_the_event_loop_keeps_answering_while_a_bomb_inflates(served, gzip_bomb):
    _, http = served
    latencies: list[float] = []
    done = threading.Event()

    def ping() -> None:
        with httpx.Client(base_url=str(http.base_url), timeout=30) as other:
            while not done.is_set():
                started = time.perf_counter()
                assert other.get("/v2/health/live").status_code == 200
                latencies.append(time.perf_counter() - started)

    pinger = threading.Thread(target=ping)
    pinger.start()
    try:
        for _ in range(3):
            response = http.post(INFER, content=gzip_bomb, headers={"content-encoding": "gzip"})
            assert response.status_code == 413
    finally:
        done.set()
        pinger.join()
    assert latencies and max(latencies) < 1.0, f"slowest ping {max(latencies):.3f}s"


def test_compressed_requests_are_still_served(served):
    _, http = served
    plain = http.post(INFER, json=oip_body())
    assert plain.status_code == 200, plain.text
    raw = json.dumps(oip_body()).encode()
    for encoding, body in [
        ("gzip", gzip.compress(raw)),
        ("x-gzip", gzip.compress(raw)),
        ("deflate", zlib.compress(raw)),
        ("gzip", gzip.compress(raw[:40]) + gzip.compress(raw[40:])),  # two gzip members
    ]:
        answer = http.post(INFER, content=body, headers={"content-encoding": encoding})
        assert answer.status_code == 200, (encoding, answer.text)
        assert answer.json()["outputs"] == plain.json()["outputs"]
    # A small body of repeated rows compresses past 100:1; small bodies are never refused
    # for their ratio.
    rows = json.dumps({"dataframe_records": [ROW] * 2000}).encode()
    squeezed = gzip.compress(rows, 9)
    assert len(rows) < INFLATION_FLOOR and len(rows) > MAX_INFLATION * len(squeezed)
    answer = http.post(
        "/invocations",
        content=squeezed,
        headers={"content-encoding": "gzip", "content-type": "application/json"},
    )
    assert answer.status_code == 200 and len(answer.json()["predictions"]) == 2000


@pytest.mark.parametrize(
    ("body", "encoding", "needle"),
    [
        (b"this is not gzip", "gzip", "not valid gzip"),
        # mtime=0: gzip stamps the time in its header, and these bytes are the tests' ids,
        # which every pytest-xdist worker must collect alike
        (gzip.compress(b'{"inputs": []}', mtime=0)[:-12], "gzip", "truncated"),
        (zlib.compress(b"{}") + b"trailing", "deflate", "after the end"),
        (gzip.compress(b"{}", mtime=0) + b"trailing", "gzip", "not valid gzip"),
        (b"{}", "br", "not supported"),
    ],
)
def test_a_body_that_does_not_decompress_is_400(served, body, encoding, needle):
    _, http = served
    for path in (INFER, "/invocations"):
        response = http.post(
            path,
            content=body,
            headers={"content-encoding": encoding, "content-type": "application/json"},
        )
        assert response.status_code == 400, response.text
        assert needle in error_of(response)


@pytest.mark.parametrize(
    ("first", "needle"),
    [
        ({"shape": [4294967296, 4294967296], "data": []}, "inputs[0].shape"),
        ({"shape": [2**62, 4], "data": [1.0]}, "inputs[0].shape"),
        ({"shape": [0, 2**70], "data": []}, "inputs[0].shape"),
        ({"shape": [-1], "data": [1.0]}, "inputs[0].shape"),
        ({"shape": [1.5], "data": [1.0]}, "inputs[0].shape"),
        ({"shape": ["1"], "data": [1.0]}, "inputs[0].shape"),
        ({"shape": [True], "data": [1.0]}, "inputs[0].shape"),
        ({"shape": [], "data": [1.0]}, "inputs[0].shape"),
        ({"shape": 1, "data": [1.0]}, "inputs[0].shape"),
        ({"shape": [2, 2], "data": [1.0, 2.0, 3.0]}, "inputs[0].shape"),
        ({"shape": [1] * 100, "data": [1.0]}, "inputs[0].shape"),  # past NumPy's dimensions
        ({"shape": [2] * 20_000, "data": [1.0]}, "inputs[0].shape"),  # a product of 20k bits
        ({"shape": [1], "datatype": "INT64", "data": [2**63]}, "inputs[0].data"),
        ({"shape": [1], "datatype": "INT64", "data": [-(2**64)]}, "inputs[0].data"),
        ({"shape": [1], "datatype": "INT8", "data": [300]}, "inputs[0].data"),
        ({"shape": [1], "datatype": "UINT8", "data": [-1]}, "inputs[0].data"),
        ({"shape": [1], "datatype": "FP32", "data": [1e39]}, "inputs[0].data[0]"),
        ({"shape": [1], "datatype": "FP16", "data": [70000]}, "inputs[0].data[0]"),
        ({"shape": [2**31], "parameters": {"binary_data_size": 8}}, "inputs[0].shape"),
    ],
)
def test_oip_shapes_and_numbers_are_checked_before_anything_is_built(served, first, needle):
    _, http = served
    response = http.post(INFER, json=oip_body(**first))
    assert response.status_code == 400, response.text
    assert needle in error_of(response) and "'x0'" in error_of(response)


def tensor(name: str = '"x0"', datatype: str = "FP64", data: str = "1") -> str:
    """An OIP request's JSON text with raw JSON for the name and data."""
    return (
        f'{{"inputs": [{{"name": {name}, "shape": [1], "datatype": "{datatype}", '
        f'"data": [{data}]}}]}}'
    )


@pytest.mark.parametrize(
    ("path", "raw", "field"),
    [
        (INFER, tensor(data="1e400"), "inputs[0].data[0]"),
        (INFER, tensor(datatype="INT64", data=HUGE), "inputs[0].data[0]"),
        (INFER, tensor(name=LONE), "inputs[0].name"),
        ("/invocations", '{"dataframe_records": [{"x0": 1e400}]}', "dataframe_records[0].x0"),
        ("/invocations", '{"instances": [[' + "9" * 400 + ', 1, 2, 3]]}', "instances[0][0]"),
        ("/invocations", '{"dataframe_split": {"columns": [' + LONE + "]}}",
         "dataframe_split.columns[0]"),
        ("/predict", '[{"x0": ' + HUGE + "}]", "[0].x0"),
        ("/predict", '{"records": [{"x0": 1}], "key": ' + LONE + "}", "key"),
        ("/feedback", '[{"request_id": ' + LONE + ', "value": 1}]', "[0].request_id"),
    ],
)  # fmt: skip
def test_huge_numbers_and_lone_surrogates_are_400_naming_the_field(served, path, raw, field):
    _, http = served
    response = http.post(path, content=raw, headers={"content-type": "application/json"})
    assert response.status_code == 400, response.text
    assert field in error_of(response)


@pytest.mark.parametrize(
    ("path", "raw"),
    [
        (INFER, tensor(data="NaN")),
        (INFER, tensor(data="-Infinity")),
        ("/invocations", '{"dataframe_records": [{"x0": Infinity}]}'),
        ("/predict", '[{"x0": NaN}]'),
    ],
)
def test_non_finite_literals_are_400_on_the_data_plane_which_reads_strict_json(served, path, raw):
    """The control plane reads ``NaN`` as MLflow does (a metric may be NaN); a model's input
    may not, so the data plane refuses it with or without orjson (``loads_strict``)."""
    _, http = served
    response = http.post(path, content=raw, headers={"content-type": "application/json"})
    assert response.status_code == 400, response.text
    assert "is not a JSON number" in error_of(response)


@pytest.mark.parametrize("version", ["9" * 5000, "%C2%B2", "%D9%A3", "99999999999999999999"])
def test_a_version_in_the_path_that_is_no_version_number_is_404(served, version):
    _, http = served
    response = http.post(f"/v2/models/web/versions/{version}/infer", json=oip_body())
    assert response.status_code == 404, response.text
    assert "not a version number" in error_of(response)


def test_numbers_past_int64_in_a_long_column_are_400():
    from modelyard.errors import InvalidParameter
    from modelyard.serving.inputs import ColumnSpec, InputSpec

    spec = InputSpec((ColumnSpec("n", "long"), ColumnSpec("s", "string")))
    for value in (2**63, 2**70, 1e30, -(2**64)):
        with pytest.raises(InvalidParameter, match="'n'"):
            spec.from_records([{"n": value, "s": "a"}])
    spec = InputSpec((ColumnSpec("x", "double"), ColumnSpec("s", "string")))
    with pytest.raises(InvalidParameter, match="'x'"):
        spec.from_records([{"x": 10**400, "s": "a"}])


# -- the control plane: every route ---------------------------------------------------------

#: Every field name a control-plane handler reads (``Fields`` readers in the handlers).
SOURCES = [
    *Path(native_api.__file__).parent.glob("*.py"),
    Path(native_api.__file__).parents[2] / "tracking" / "mlflow_wire.py",
]
FIELDS = sorted(
    {
        name
        for source in SOURCES
        for name in re.findall(
            r'\.(?:text|ident|integer|number|boolean|texts|objects|object)\("(\w+)"',
            source.read_text(),
        )
    }
)
LISTS = ("tags", "metrics", "params", "datasets", "dataset_inputs", "inputs", "models")


class AppClient:
    """A synchronous client calling an ASGI app in process (no socket, no lifespan); a
    failing handler is answered 500, as the server would."""

    def __init__(self, app: Any) -> None:
        self.app_routes = app.routes
        self._loop = asyncio.new_event_loop()
        transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
        self._client = httpx.AsyncClient(transport=transport, base_url="http://yard")

    def request(self, method: str, url: str, **kwargs: Any) -> httpx.Response:
        return self._loop.run_until_complete(self._client.request(method, url, **kwargs))

    def get(self, url: str, **kwargs: Any) -> httpx.Response:
        return self.request("GET", url, **kwargs)

    def post(self, url: str, **kwargs: Any) -> httpx.Response:
        return self.request("POST", url, **kwargs)

    def close(self) -> None:
        self._loop.run_until_complete(self._client.aclose())
        self._loop.close()


@pytest.fixture(scope="module")
def control(tmp_path_factory: pytest.TempPathFactory) -> Iterator[AppClient]:
    settings = Settings(home=tmp_path_factory.mktemp("control") / "yard")
    client = AppClient(create_app(settings, TrackingClient.from_settings(settings)))
    yield client
    client.close()


def routes_of(routes: list[Any]) -> list[tuple[str, str]]:
    """(method, path template) of every route, the fixed-path index included."""
    out: list[tuple[str, str]] = []
    for route in routes:
        for leaf in getattr(route, "routes", None) or [route]:
            if isinstance(leaf, Route):
                out += [
                    (method, leaf.path) for method in sorted(leaf.methods or ()) if method != "HEAD"
                ]
    return sorted(set(out))


def reads_a_json_body(method: str, path: str) -> bool:
    if method in ("GET", "HEAD") or "/mlflow-artifacts/" in path:
        return False
    if any(f"/mlflow/{name}" in path for name in mlflow_api.OUT_OF_SCOPE):
        return False  # a resource this server does not hold: 404 whatever the body
    if path.startswith("/api/v1/"):
        return any(
            op.route_path == path and op.method == method and op.body is not None
            for op in native_api.OPERATIONS
        )
    return path.startswith(("/api/2.0/", "/ajax-api/2.0/", "/api/3.0/", "/ajax-api/3.0/"))


def fails(response: httpx.Response) -> bool:
    """A 5xx other than 501 (the registry's catch-all for endpoints it does not have,
    which the MLflow client does not retry)."""
    return response.status_code >= 500 and response.status_code != 501


def concrete(path: str) -> str:
    return re.sub(r"\{[^}]+\}", "x", path)


def body_with(payload: str) -> bytes:
    """A JSON object with ``payload`` (raw JSON text) in every field, and in the fields of
    one object in each list field (``tags[0].key``); well under the 1 MB body limit."""
    members = [f"{json.dumps(name)}: {payload}" for name in FIELDS if name not in LISTS]
    nested = ", ".join(f'"{name}": {payload}' for name in ITEM_FIELDS)
    lists = [f"{json.dumps(name)}: [{{{nested}}}]" for name in LISTS]
    return ("{" + ", ".join(members + lists) + "}").encode("utf-8", "surrogatepass")


ITEM_FIELDS = ("key", "value", "timestamp", "step", "name")


PAYLOADS = {
    "huge integer": HUGE,
    "huge negative integer": "-" + HUGE,
    "lone surrogate escape": LONE,
    "lone low surrogate escape": '"a\\udfff"',
    "lone surrogate bytes": '"\ud800"',  # raw UTF-8 bytes ED A0 80, read with surrogatepass
}


def test_the_route_table_is_the_one_fuzzed():
    assert len(FIELDS) > 40 and "name" in FIELDS and "max_results" in FIELDS


@pytest.mark.parametrize("payload", sorted(PAYLOADS))
def test_every_route_answers_unusable_json_with_a_400_naming_the_field(control, payload):
    failures, checked = [], 0
    for method, path in routes_of(control.app_routes):
        url = concrete(path)
        if method == "GET":
            value = "9" * 5000 if "integer" in payload else "%ED%A0%80"
            for start in range(0, len(FIELDS), 8):  # URLs stay under httpx's 64 kB
                query = "&".join(f"{name}={value}" for name in FIELDS[start : start + 8])
                response = control.get(f"{url}?{query}")
                if response.status_code >= 500:
                    break
        else:
            response = control.request(
                method,
                url,
                content=body_with(PAYLOADS[payload]),
                headers={"content-type": "application/json"},
            )
        checked += 1
        if fails(response):
            failures.append((method, path, response.status_code, response.text[:200]))
        elif reads_a_json_body(method, path):
            body = response.json()
            if (
                response.status_code != 400
                or body.get("error_code") != "INVALID_PARAMETER_VALUE"
                or not body.get("field")
                or body["field"].split(".")[0].split("[")[0] not in FIELDS
            ):
                failures.append((method, path, response.status_code, response.text[:200]))
    assert checked > 150
    assert not failures, "\n".join(map(str, failures))


def test_a_query_string_with_a_huge_integer_or_invalid_utf8_is_4xx(control):
    # A query string is percent-decoded with replacement characters, so a surrogate's
    # bytes (or a cut UTF-8 sequence) become U+FFFD: valid text, an unknown name.
    for name in ("%ED%A0%80", "%ED%A0", "%F0%9F"):
        response = control.get(f"/api/2.0/mlflow/registered-models/get?name={name}")
        assert response.status_code == 404, response.text
    for path in (
        "/api/2.0/mlflow/registered-models/search",
        "/api/2.0/mlflow/experiments/search",
        "/api/2.0/mlflow/model-versions/search",
    ):
        response = control.get(f"{path}?max_results={'9' * 5000}")
        assert response.status_code == 400, (path, response.text)
        assert response.json()["field"] == "max_results"


def test_a_compressed_body_is_refused_by_name_on_the_control_plane(control):
    raw = gzip.compress(b'{"name": "compressed"}')
    for path in (
        "/api/2.0/mlflow/experiments/create",  # the MLflow API's ASGI endpoint
        "/api/2.0/mlflow/registered-models/create",  # the registry API
        "/api/v1/experiments",  # the native API
    ):
        response = control.post(
            path,
            content=raw,
            headers={"content-encoding": "gzip", "content-type": "application/json"},
        )
        assert response.status_code == 400, (path, response.text)
        assert (
            "Content-Encoding" in response.json()["message"] and response.json()["field"] == "body"
        )
    plain = control.post(
        "/api/2.0/mlflow/experiments/create",
        json={"name": "plain"},
        headers={"content-encoding": "identity"},
    )
    assert plain.status_code == 200, plain.text


# -- the control plane: a fuzz test over every route --------------------------------------


class Raw(str):
    """JSON text written as it is (a number ``json.dumps`` cannot write)."""


NASTY = st.sampled_from(
    [
        Raw(HUGE),
        Raw("-" + "1" * 4301),
        Raw("1e400"),
        Raw("9" * 400),
        "\ud800",
        "x\udfff",
        "\ud83d\ude00",  # a pair: valid
        2**63,
        -(2**63) - 1,
        2**64,
        -1,
        0,
        1.5,
        None,
        True,
        "",
        "x" * 300,
    ]
)
KEYS = st.sampled_from(FIELDS) | st.text(max_size=4)
VALUES = st.recursive(
    NASTY | st.integers() | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(KEYS, inner, max_size=4),
    max_leaves=8,
)
#: Requests in the fuzz test, spread over all routes; raise locally to dig deeper.
FUZZ_EXAMPLES = int(os.environ.get("FUZZ_EXAMPLES", "10")) * 40
BODIES = st.dictionaries(st.sampled_from(FIELDS), VALUES, min_size=1, max_size=6)


def render(value: Any, ascii: bool = True) -> str:
    """JSON text of ``value``; ``ascii=False`` writes surrogates as raw (UTF-8) bytes."""
    if isinstance(value, Raw):
        return str(value)
    if isinstance(value, dict):
        return (
            "{"
            + ",".join(
                f"{json.dumps(k, ensure_ascii=ascii)}:{render(v, ascii)}" for k, v in value.items()
            )
            + "}"
        )
    if isinstance(value, list):
        return "[" + ",".join(render(v, ascii) for v in value) + "]"
    return json.dumps(value, ensure_ascii=ascii)


def test_no_fuzzed_body_or_query_makes_any_route_fail(control):
    routes = routes_of(control.app_routes)

    @given(
        index=st.integers(min_value=0, max_value=len(routes) - 1),
        body=BODIES,
        raw_bytes=st.booleans(),
    )
    @settings(
        max_examples=FUZZ_EXAMPLES,
        deadline=None,
        database=None,
        derandomize=True,
        suppress_health_check=list(HealthCheck),
    )
    def never_5xx(index: int, body: dict[str, Any], raw_bytes: bool) -> None:
        method, path = routes[index]
        url = concrete(path)
        if method == "GET":
            response = control.get(url, params=[(k, render(v)) for k, v in body.items()])
        else:
            text = render(body, ascii=not raw_bytes)  # surrogates as escapes, or as bytes
            response = control.request(
                method,
                url,
                content=text.encode("utf-8", "surrogatepass"),
                headers={"content-type": "application/json"},
            )
        assert not fails(response), (method, path, render(body)[:300], response.text)

    never_5xx()


# -- the inference server: a fuzz test over every route -----------------------------------

INFERENCE_KEYS = (
    "inputs", "name", "shape", "datatype", "data", "parameters", "binary_data_size",
    "dataframe_split", "dataframe_records", "instances", "columns", "records", "key",
    "version", "request_id", "value", "id", "outputs", *FEATURES,
)  # fmt: skip
INFERENCE_VALUES = st.recursive(
    NASTY | st.sampled_from(["FP64", "INT64", "INT8", "FP16", "BYTES", "BOOL", [1], [2, 2]]),
    lambda inner: (
        st.lists(inner, max_size=4)
        | st.dictionaries(st.sampled_from(INFERENCE_KEYS), inner, max_size=5)
    ),
    max_leaves=10,
)
INFERENCE_BODIES = st.dictionaries(
    st.sampled_from(INFERENCE_KEYS), INFERENCE_VALUES, min_size=1, max_size=5
) | st.lists(INFERENCE_VALUES, max_size=3)


def test_no_fuzzed_body_makes_any_inference_route_fail(served):
    _, http = served
    paths = ["/invocations", "/predict", "/feedback", INFER, "/v2/models/web/versions/1/infer"]

    @given(path=st.sampled_from(paths), body=INFERENCE_BODIES, raw_bytes=st.booleans())
    @settings(
        max_examples=FUZZ_EXAMPLES // 2,
        deadline=None,
        database=None,
        derandomize=True,
        suppress_health_check=list(HealthCheck),
    )
    def never_5xx(path: str, body: Any, raw_bytes: bool) -> None:
        text = render(body, ascii=not raw_bytes)
        response = http.post(
            path,
            content=text.encode("utf-8", "surrogatepass"),
            headers={"content-type": "application/json"},
        )
        assert response.status_code < 500, (path, text[:300], response.text)

    never_5xx()
