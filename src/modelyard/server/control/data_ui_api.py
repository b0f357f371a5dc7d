"""Dataset versions and feature definitions as JSON for the web UI.

* ``GET /api/v1/datasets``: dataset versions (by name, newest first within a name; with
  ``newest=true`` newest first across names), without profiles: name, version, rows,
  bytes, format, source, who and when, its lineage node; a page of ``max_results`` (at
  most 1000, the default) and its ``next_page_token`` (pass it back as ``page_token``);
* ``GET /api/v1/datasets/{name}/versions/{version}``: one version with its schema, its
  stored profile (per column: nulls, distinct, min/max/mean/std, quantiles, histogram,
  top values), its files, and the contract checks made on it (``modelyard data check
  sales@3``: contract, digest, passed, counts, who and when, newest first) — an empty
  list when none was made, which the page says rather than reading as "passed";
* ``GET /api/v1/features``: the newest version of every feature definition (entities,
  feature views, on-demand views, services) with its spec, code and freshness: for a
  feature view, each online store's materialisation watermark of its current layout
  (``feature_materializations``: event times materialised so far, rows, last update);
* ``GET /api/v1/features/{kind}/{name}``: one definition's versions, newest first.

All are GETs: with ``--auth`` a viewer reads them.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import asdict
from typing import Any

from sqlalchemy import select
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from modelyard import json_codec
from modelyard.data.client import MAX_PAGE, DataClient, dataset_node
from modelyard.data.entities import DatasetVersion, check_dataset_name
from modelyard.errors import InvalidParameter
from modelyard.features.definitions_store import KINDS, DefinitionRecord, Registry
from modelyard.features.tables import feature_materializations
from modelyard.registry.client import RegistryClient
from modelyard.server.http.threads import in_thread
from modelyard.store.engine import Database
from modelyard.tracking.mlflow_wire import Fields


def json_response(body: Any, status: int = 200) -> Response:
    return Response(json_codec.dumps(body), status, media_type="application/json")


def version_summary(v: DatasetVersion) -> dict[str, Any]:
    return {
        "name": v.name,
        "version": v.version,
        "ref": v.ref,
        "digest": v.digest,
        "num_rows": v.num_rows,
        "num_bytes": v.num_bytes,
        "num_columns": len(v.schema),
        "format": v.format,
        "source": v.source,
        "created_by": v.created_by,
        "created_at": v.created_at,
        "description": v.description,
        "lineage_node": dataset_node(v.name, v.digest),
    }


def version_detail(v: DatasetVersion, checks: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        **version_summary(v),
        "files_digest": v.files_digest,
        "schema": v.schema,
        "profile": v.profile,
        "files": [asdict(f) for f in v.files],
        "storage_location": v.storage_location,
        "contract_results": checks,
    }


def freshness(db: Database) -> dict[tuple[str, str], list[dict[str, Any]]]:
    """(view, data digest) → each online store's materialisation of it."""
    c = feature_materializations.c
    with db.read() as conn:
        rows = conn.execute(select(feature_materializations).order_by(c.view, c.store)).all()
    out: dict[tuple[str, str], list[dict[str, Any]]] = defaultdict(list)
    for r in rows:
        out[(r.view, r.data_digest)].append(
            {
                "store": r.store,
                "start_us": int(r.start_us),
                "watermark_us": int(r.watermark_us),
                "rows": int(r.rows),
                "updated_at": int(r.updated_at),
            }
        )
    return out


def definition_json(
    r: DefinitionRecord, fresh: dict[tuple[str, str], list[dict[str, Any]]] | None = None
) -> dict[str, Any]:
    body = {
        "kind": r.kind,
        "name": r.name,
        "version": r.version,
        "digest": r.digest,
        "spec": r.spec,
        "code": r.code,
        "origin": r.origin,
        "created_at": r.created_at,
        "created_by": r.created_by,
        "lineage_node": r.node,
    }
    if fresh is not None and r.kind == "feature_view":
        body["materializations"] = fresh.get((r.name, r.data_digest), [])
    return body


def _version(raw: str) -> int:
    if not raw.isdigit() or len(raw) > 9 or int(raw) < 1:
        raise InvalidParameter(
            f"version must be a positive integer, got {raw[:40]!r}", field="version"
        )
    return int(raw)


def _kind(raw: str) -> str:
    if raw not in KINDS:
        raise InvalidParameter(
            f"kind must be one of {', '.join(KINDS)}, got {raw[:40]!r}", field="kind"
        )
    return raw


def routes(registry: RegistryClient) -> list[BaseRoute]:
    data = DataClient(registry.db, registry.artifacts, registry.settings)
    features = Registry(registry.db)

    def all_features() -> dict[str, Any]:
        fresh = freshness(registry.db)
        return {"definitions": [definition_json(r, fresh) for r in features.list()]}

    def one_feature(kind: str, name: str) -> dict[str, Any]:
        features.get(name, kind=kind)  # NotFound naming it
        fresh = freshness(registry.db)
        versions = sorted(features.versions(name, kind), key=lambda r: -r.version)
        return {
            "definition": definition_json(versions[0], fresh),
            "versions": [definition_json(r) for r in versions],
        }

    async def list_datasets(request: Request) -> Response:
        f = Fields.from_query(request.query_params.multi_items())
        found = await in_thread(
            data.search_versions,
            None,
            f.integer("max_results", default=MAX_PAGE),
            f.text("page_token"),
            f.boolean("newest"),
        )
        return json_response(
            {
                "versions": [version_summary(v) for v in found],
                "next_page_token": found.next_page_token,
            }
        )

    async def get_dataset(request: Request) -> Response:
        name = check_dataset_name(request.path_params["name"])
        version = _version(request.path_params["version"])
        found = await in_thread(data.get_version, name, version)
        checks = await in_thread(data.contract_results, found)
        return json_response({"version": version_detail(found, [c.to_dict() for c in checks])})

    async def list_features(request: Request) -> Response:
        return json_response(await in_thread(all_features))

    async def get_feature(request: Request) -> Response:
        kind = _kind(request.path_params["kind"])
        return json_response(await in_thread(one_feature, kind, request.path_params["name"]))

    return [
        Route("/api/v1/datasets", list_datasets, methods=["GET"]),
        Route("/api/v1/datasets/{name}/versions/{version}", get_dataset, methods=["GET"]),
        Route("/api/v1/features", list_features, methods=["GET"]),
        Route("/api/v1/features/{kind}/{name}", get_feature, methods=["GET"]),
    ]
