"""The OpenAPI 3.1 document of the native API, generated from its operation table.

Each ``Operation`` names its request model (body or query), its response model and its
handler; the document is built from those pydantic models' JSON schemas (OpenAPI 3.1
schemas *are* JSON Schema 2020-12, so pydantic's output is used as is), and the router is
built from the same table. What the document promises is therefore what the server checks
and answers, and schemathesis can hold the server to it.

>>> from modelyard.server.control.native_api import OPERATIONS, PATH_PARAMETERS
>>> doc = document(OPERATIONS, PATH_PARAMETERS)
>>> doc["openapi"], "/api/v1/runs/{run_id}" in doc["paths"]
('3.1.0', True)
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel, TypeAdapter
from pydantic.json_schema import models_json_schema

from modelyard.server.control.native_models import ErrorBody

REF = "#/components/schemas/{model}"
_PARAM = re.compile(r"{(\w+)}")
_ERRORS = {
    "400": "Malformed or invalid input; `field` names the offending field.",
    "404": "An id or name that does not exist.",
}


@dataclass(frozen=True, slots=True)
class Operation:
    """One method on one path: what it reads, what it answers, who handles it.

    ``path`` is an OpenAPI template (``/api/v1/runs/{run_id}``); parameters listed in
    ``greedy`` may contain slashes (metric keys such as ``train/loss``) and are routed with
    Starlette's ``path`` convertor. ``response=None`` answers 204 No Content.
    """

    method: str
    path: str
    handler: Callable[..., BaseModel | None]
    summary: str
    tag: str
    status: int = 200
    body: type[BaseModel] | None = None
    query: type[BaseModel] | None = None
    response: type[BaseModel] | None = None
    greedy: frozenset[str] = frozenset()

    @property
    def route_path(self) -> str:
        return _PARAM.sub(lambda m: f"{{{m[1]}:path}}" if m[1] in self.greedy else m[0], self.path)

    @property
    def path_parameters(self) -> list[str]:
        return _PARAM.findall(self.path)


def document(
    operations: Sequence[Operation],
    path_types: Mapping[str, Any],
    *,
    title: str = "modelyard native API",
    version: str = "1",
) -> dict[str, Any]:
    """The OpenAPI 3.1 document for ``operations``; ``path_types`` gives each path
    parameter's (annotated) type."""
    models: list[tuple[type[BaseModel], Any]] = [(ErrorBody, "serialization")]
    for op in operations:
        if op.body is not None:
            models.append((op.body, "validation"))
        if op.query is not None:
            models.append((op.query, "validation"))
        if op.response is not None:
            models.append((op.response, "serialization"))
    refs, defs = models_json_schema(models, ref_template=REF)
    schemas: dict[str, Any] = dict(defs.get("$defs", {}))

    paths: dict[str, dict[str, Any]] = {}
    query_models: set[str] = set()
    for op in operations:
        entry: dict[str, Any] = {
            "operationId": op.handler.__name__,
            "summary": op.summary,
            "tags": [op.tag],
        }
        doc = _docstring(op.handler)
        if doc:
            entry["description"] = doc
        parameters = [_path_parameter(name, path_types[name]) for name in op.path_parameters]
        if op.query is not None:
            query_model = _name(refs[(op.query, "validation")])
            query_models.add(query_model)
            parameters += _query_parameters(schemas[query_model])
        if parameters:
            entry["parameters"] = parameters
        if op.body is not None:
            required = bool(op.body.model_json_schema().get("required"))
            entry["requestBody"] = {
                "required": required,
                "content": {"application/json": {"schema": refs[(op.body, "validation")]}},
            }
        responses: dict[str, Any] = {}
        if op.response is None:
            responses[str(op.status)] = {"description": "Done; no content."}
        else:
            responses[str(op.status)] = {
                "description": _docstring(op.response) or op.response.__name__,
                "content": {"application/json": {"schema": refs[(op.response, "serialization")]}},
            }
        error = refs[(ErrorBody, "serialization")]
        for status, text in _ERRORS.items():
            responses[status] = {
                "description": text,
                "content": {"application/json": {"schema": error}},
            }
        entry["responses"] = responses
        paths.setdefault(op.path, {})[op.method.lower()] = entry
    for name in query_models:  # clients never send these as objects
        del schemas[name]

    return {
        "openapi": "3.1.0",
        "info": {
            "title": title,
            "version": version,
            "description": (
                "Experiments, runs, metrics, params, tags and artifact listings of a "
                "modelyard tracking server. Errors are `{error_code, message, field}` with "
                "a 4xx status for anything the caller can fix."
            ),
        },
        "paths": paths,
        "components": {"schemas": schemas},
    }


def _name(ref: Mapping[str, Any]) -> str:
    return str(ref["$ref"]).rsplit("/", 1)[-1]


def _docstring(thing: Any) -> str:
    """The first paragraph of a docstring of the thing itself (not one it inherits)."""
    doc = vars(thing).get("__doc__") if isinstance(thing, type) else thing.__doc__
    text = (doc or "").strip()
    return " ".join(text.split("\n\n")[0].split())


def _path_parameter(name: str, annotated: Any) -> dict[str, Any]:
    schema = TypeAdapter(annotated).json_schema()
    return {"name": name, "in": "path", "required": True, "schema": schema}


def _query_parameters(model: Mapping[str, Any]) -> list[dict[str, Any]]:
    """A query model's fields as ``in: query`` parameters."""
    required = set(model.get("required", ()))
    out = []
    for name, schema in model["properties"].items():
        schema = {k: v for k, v in schema.items() if k != "title"}
        param: dict[str, Any] = {"name": name, "in": "query", "required": name in required}
        if "description" in schema:
            param["description"] = schema.pop("description")
        param["schema"] = schema
        out.append(param)
    return out
