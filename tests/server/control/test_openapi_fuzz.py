"""Schemathesis against ``/api/v1/openapi.json``: no input makes the server fail.

Every operation of the native API gets generated requests — valid ones and, deliberately,
invalid ones (wrong types, missing fields, out-of-range numbers, odd strings) — sent to a
real server process. None may answer 5xx (the MLflow client retries those for minutes,
and a 500 means an input escaped validation), and every answer must match the document
(status code, content type, body schema), so the document stays true.

The operations are collected from the document this code generates, and a test checks
that the live server serves exactly that document. (schemathesis' own pytest plugin does
not run under pytest 9, so the cases are driven through its Python API: one Hypothesis
test per operation and generation mode.)

Bounded for CI: derandomized (a fixed seed per test), a few examples per operation and
mode, no example database — each run is the same run, well under a minute. Raise
``FUZZ_EXAMPLES`` locally to dig deeper. Without schemathesis installed the module is
skipped, except under ``CI``, where that is a failure.
"""

from __future__ import annotations

import os

import httpx
import pytest

if os.environ.get("CI"):  # CI must fuzz: a missing package there is a failure, not a skip
    import schemathesis
else:
    schemathesis = pytest.importorskip("schemathesis", reason="pip install schemathesis")

from hypothesis import HealthCheck, given, settings
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from modelyard.server.control.native_api import OPENAPI_PATH, openapi_document

EXAMPLES = int(os.environ.get("FUZZ_EXAMPLES", "10"))
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
]
SCHEMA = schemathesis.openapi.from_dict(dict(openapi_document()))
OPERATIONS = [result.ok() for result in SCHEMA.get_all_operations()]


def test_the_live_server_serves_the_document_the_fuzzer_reads(http):
    served = http.get(OPENAPI_PATH)
    assert served.status_code == 200
    assert served.json() == httpx.Response(200, json=dict(openapi_document())).json()


def cases() -> list[tuple[object, GenerationMode, bool]]:
    """Each operation in both modes; operations on one run or experiment also once with
    the path bound to a real one, so the fuzzer gets past the 404 into the handler."""
    out = []
    for op in OPERATIONS:
        out += [(op, GenerationMode.POSITIVE, False), (op, GenerationMode.NEGATIVE, False)]
        if "{run_id}" in op.path or "{experiment_id}" in op.path:
            out.append((op, GenerationMode.POSITIVE, True))
    return out


def label(value: object) -> str:
    if isinstance(value, GenerationMode):
        return value.value
    if isinstance(value, bool):
        return "existing" if value else "any"
    return str(getattr(value, "label", value))


@pytest.mark.parametrize(("operation", "mode", "existing"), cases(), ids=label)
def test_no_input_makes_the_native_api_fail(live_server, http, unique, operation, mode, existing):
    bound: dict[str, str] = {}
    if existing:
        experiment = http.post("/api/v1/experiments", json={"name": f"fuzz-{unique}"}).json()
        run = http.post("/api/v1/runs", json={"experiment_id": experiment["experiment_id"]}).json()
        bound = {"experiment_id": experiment["experiment_id"], "run_id": run["run_id"]}
        bound = {k: v for k, v in bound.items() if f"{{{k}}}" in operation.path}

    @given(case=operation.as_strategy(generation_mode=mode, path_parameters=bound or None))
    @settings(
        max_examples=EXAMPLES,
        deadline=None,
        database=None,
        derandomize=True,
        suppress_health_check=list(HealthCheck),
    )
    def requests_never_fail(case) -> None:
        case.call_and_validate(base_url=live_server.url, checks=CHECKS, timeout=30)

    requests_never_fail()
    assert http.get("/health").status_code == 200
