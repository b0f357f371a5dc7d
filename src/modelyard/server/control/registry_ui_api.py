"""The registry's governance as JSON for the web UI: cards, approvals, gate reports, audit.

MLflow's registry API (``registered-models/*``, ``model-versions/*``) answers models,
versions, stages and aliases; what it has no route for is here, under ``/api/v1/models``:

* ``GET  /api/v1/models/{name}/versions/{version}/governance``: the model card, every
  approval and rejection, the newest recorded gate verdict with what the promotion
  policy makes of it (``registry.policy.recorded_gate``: a verdict on other files does
  not count) and its report from ``validation/gates/...``, the policy, and whether the
  requesting user may decide (``decision``: allowed, or the reason they may not), so the
  page shows a working button only to someone the server would accept;
* ``POST .../approve`` ``{"comment": ...}`` and ``POST .../reject`` ``{"reason": ...}``:
  declared ``approver`` (a viewer or editor gets a 403 from the middleware); the
  registry's policy then refuses the version's creator (four-eyes) and anyone outside a
  configured approver list, inside the write;
* ``GET  /api/v1/models/{name}/audit?limit=N&verify=1``: the model's audit trail, newest
  first; with ``verify``, whether the whole hash chain verifies.

Handlers call ``RegistryClient`` acting as the authenticated user (``actor_of``), never
a store, so the rules are exactly those of ``modelyard models approve``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from modelyard import json_codec
from modelyard.auth.roles import Role
from modelyard.errors import InvalidParameter, ModelyardError
from modelyard.registry import audit as audit_trail
from modelyard.registry.client import RegistryClient
from modelyard.registry.entities import Actor, Approval, AuditEvent, GateVerdict
from modelyard.registry.policy import recorded_gate
from modelyard.registry.uris import check_model_name, check_version
from modelyard.server.http.auth_middleware import requires
from modelyard.server.http.request_body import read_json_object
from modelyard.server.http.threads import in_thread

PREFIX = "/api/v1/models/{name}"
VERSION = PREFIX + "/versions/{version}"
DEFAULT_AUDIT_EVENTS = 200
MAX_AUDIT_EVENTS = 5000
#: Longest comment or reason kept (a form field, not a document).
MAX_TEXT = 4000
#: Bodies here are a comment: a few KB.
MAX_BODY = 64 * 1024

ActorOf = Callable[[Request], Actor | None]


def approval_json(a: Approval) -> dict[str, Any]:
    return {
        "actor": a.actor,
        "decision": a.decision.value,
        "created_at": a.created_at,
        "reason": a.reason,
    }


def verdict_json(v: GateVerdict) -> dict[str, Any]:
    return asdict(v)


def event_json(e: AuditEvent) -> dict[str, Any]:
    return asdict(e)


def gate_report(registry: RegistryClient, folder: str | None) -> dict[str, Any] | None:
    """The Markdown and JSON reports ``validation.gates.record_gate`` stored, when present."""
    if not folder:
        return None
    out: dict[str, Any] = {"folder": folder}
    for name, key in (("report.md", "markdown"), ("report.json", "json")):
        path = f"{folder}/{name}"
        if registry.artifacts.exists(path):
            text = registry.artifacts.read_bytes(path).decode("utf-8", "replace")
            out[key] = json_codec.loads_lenient(text) if key == "json" else text
    return out


def governance(registry: RegistryClient, name: str, version: int) -> dict[str, Any]:
    """Everything the version page shows beyond MLflow's ``model-versions/get``."""
    target = registry.get_model_version(name, version)  # NotFound naming it
    policy = registry.policy
    verdict = registry.latest_gate_verdict(name, version)
    result = recorded_gate(target, verdict)
    try:
        policy.check_can_decide(registry.actor, target)
        decision: dict[str, Any] = {"allowed": True, "reason": None}
    except ModelyardError as exc:
        decision = {"allowed": False, "reason": exc.message}
    return {
        "name": target.name,
        "version": target.version,
        "created_by": target.created_by,
        "files_digest": target.files_digest,
        "card": registry.get_card(name, version).to_dict(),
        "approvals": [approval_json(a) for a in registry.list_approvals(name, version)],
        "gate": {
            "verdict": verdict_json(verdict) if verdict else None,
            "counts": result.passed,
            "detail": result.detail,
            "required": policy.gate is not None,
            "report": gate_report(registry, verdict.report if verdict else None),
        },
        "policy": {
            "required_approvals": policy.required_approvals,
            "four_eyes": policy.four_eyes,
            "approvers": sorted(policy.approvers) if policy.approvers is not None else None,
            "gated_aliases": sorted(policy.gated_aliases),
        },
        "you": {"user": registry.actor.name, "decision": decision},
    }


def audit(registry: RegistryClient, name: str, limit: int, verify: bool) -> dict[str, Any]:
    """The newest ``limit`` events of the model; ``verify``: also check the whole chain
    (a read of every event, so only on request)."""
    registry.get_registered_model(name)  # NotFound naming it
    events = audit_trail.list_events(registry.db, name, limit=limit, newest_first=True)
    out: dict[str, Any] = {"events": [event_json(e) for e in events], "verified": None}
    if verify:
        check = registry.verify_audit()
        out["verified"] = {"ok": check.ok, "checked": check.checked, "problem": check.problem}
    return out


def _text(body: dict[str, Any], key: str, *, required: bool) -> str | None:
    value = body.get(key)
    if value is None or value == "":
        if required:
            raise InvalidParameter(f"{key} is required: say why", field=key)
        return None
    if not isinstance(value, str):
        raise InvalidParameter(f"{key} must be a string, got {type(value).__name__}", field=key)
    if len(value) > MAX_TEXT:
        raise InvalidParameter(f"{key} is longer than {MAX_TEXT} characters", field=key)
    return value.strip() or None


def _limit(request: Request) -> int:
    raw = request.query_params.get("limit") or str(DEFAULT_AUDIT_EVENTS)
    if not raw.isdigit() or not 1 <= int(raw) <= MAX_AUDIT_EVENTS:
        raise InvalidParameter(
            f"limit must be an integer in [1, {MAX_AUDIT_EVENTS}], got {raw[:40]!r}", field="limit"
        )
    return int(raw)


def routes(registry: RegistryClient, actor_of: ActorOf) -> list[BaseRoute]:
    def acting(request: Request) -> tuple[RegistryClient, str, int]:
        client = registry.for_clients(actor_of(request))
        name = check_model_name(request.path_params["name"])
        return client, name, check_version(request.path_params["version"])

    async def get_governance(request: Request) -> Response:
        client, name, version = acting(request)
        return JSONResponse(await in_thread(governance, client, name, version))

    @requires(Role.APPROVER)
    async def approve(request: Request) -> Response:
        client, name, version = acting(request)
        body = await read_json_object(request, MAX_BODY)
        comment = _text(body, "comment", required=False)
        approval = await in_thread(client.approve, name, version, comment)
        return JSONResponse({"approval": approval_json(approval)})

    @requires(Role.APPROVER)
    async def reject(request: Request) -> Response:
        client, name, version = acting(request)
        body = await read_json_object(request, MAX_BODY)
        reason = _text(body, "reason", required=True) or ""
        approval = await in_thread(client.reject, name, version, reason)
        return JSONResponse({"approval": approval_json(approval)})

    async def get_audit(request: Request) -> Response:
        client = registry.for_clients(actor_of(request))
        name = check_model_name(request.path_params["name"])
        verify = request.query_params.get("verify") in ("1", "true")
        return JSONResponse(await in_thread(audit, client, name, _limit(request), verify))

    return [
        Route(f"{VERSION}/governance", get_governance, methods=["GET"]),
        Route(f"{VERSION}/approve", approve, methods=["POST"]),
        Route(f"{VERSION}/reject", reject, methods=["POST"]),
        Route(f"{PREFIX}/audit", get_audit, methods=["GET"]),
    ]
