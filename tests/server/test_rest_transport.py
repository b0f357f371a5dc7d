"""The remote client's HTTP transport and batch splitting, without a server: retries with
back-off, error classes rebuilt from codes, and requests within the server's limits."""

from __future__ import annotations

import json

import httpx
import pytest

from modelyard.artifacts.remote import HttpTransport
from modelyard.errors import (
    AlreadyExists,
    InvalidParameter,
    ModelyardError,
    NotFound,
    StoreUnavailable,
)
from modelyard.tracking.entities import Metric, Param, RunTag
from modelyard.tracking.rest_store import MAX_BATCH_BYTES, split_batch


def transport(handler, **kwargs) -> HttpTransport:
    client = httpx.Client(base_url="http://yard.test", transport=httpx.MockTransport(handler))
    return HttpTransport("http://yard.test", client=client, backoff_s=0.001, **kwargs)


def test_retries_502_503_504_then_succeeds():
    answers = iter([502, 503, 504, 200])
    calls = []

    def handler(request: httpx.Request) -> httpx.Response:
        calls.append(request.content)
        status = next(answers)
        return httpx.Response(status, json={} if status == 200 else None)

    assert transport(handler).call("POST", "/x", body={"a": 1}) == {}
    assert len(calls) == 4 and all(json.loads(c) == {"a": 1} for c in calls)


def test_connection_errors_are_retried_then_reported_as_unavailable():
    calls = []

    def handler(request: httpx.Request) -> httpx.Response:
        calls.append(1)
        raise httpx.ConnectError("refused", request=request)

    with pytest.raises(StoreUnavailable, match=r"yard\.test.*3 attempts"):
        transport(handler, max_retries=2).call("GET", "/x")
    assert len(calls) == 3


def test_a_500_and_client_errors_are_not_retried():
    calls = []

    def handler(request: httpx.Request) -> httpx.Response:
        calls.append(1)
        return httpx.Response(500, json={"error_code": "INTERNAL_ERROR", "message": "bug"})

    with pytest.raises(ModelyardError, match="bug"):
        transport(handler).call("GET", "/x")
    assert len(calls) == 1


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
def test_errors_are_rebuilt_from_their_codes(status, body, error):
    def handler(request: httpx.Request) -> httpx.Response:
        if body is None:
            return httpx.Response(status, text="<html>nope</html>")
        return httpx.Response(status, json=body)

    with pytest.raises(error) as info:
        transport(handler, max_retries=0).call("GET", "/x")
    if body and "field" in body:
        assert info.value.field == "f"


def test_unknown_codes_keep_their_code():
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(404, json={"error_code": "ENDPOINT_NOT_FOUND", "message": "old"})

    with pytest.raises(ModelyardError) as info:
        transport(handler).call("GET", "/x")
    assert info.value.code == "ENDPOINT_NOT_FOUND"


def test_a_bearer_token_is_sent():
    own = HttpTransport("http://yard.test", token="s3cret")
    assert own.http.headers["authorization"] == "Bearer s3cret"
    own.close()


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
