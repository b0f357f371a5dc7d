"""Reviewing a logged prediction from the web UI: look it up by request id, flag it as
wrong with the right value, and it becomes feedback with the reviewer recorded.

* ``GET  /api/v1/predictions/{request_id}?deployment=D``: every logged answer to the
  request (primary and shadows: ``lineage.predictions.find_prediction`` finds them) with
  the inputs, outputs, error and latency the prediction log holds for each (read through
  ``monitoring.prediction_rows.LogWindow`` over the millisecond it was logged in), and
  the feedback already stored for it with who reviewed it;
* ``POST /api/v1/predictions/{request_id}/review`` ``{"row": 0, "label"?: "...",
  "value"?: 1.5, "deployment"?: D}``: declared ``editor`` (a viewer sees, never
  changes). The right value is stored as feedback (``serving.feedback.FeedbackStore``)
  attributed to the variant and version that answered (so the A/B report and live
  accuracy count it), and the reviewer is recorded in the audit trail in the same
  transaction (``feedback.review`` events, listed in the model's audit history).

Why the audit trail and not a ``reviewer`` column: the trail is where modelyard records
who did what, hash-chained so that a reviewer cannot be rewritten afterwards, and it
needs no migration of the feedback table that every data plane writes.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from sqlalchemy import select
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from modelyard import json_codec
from modelyard.auth.roles import Role
from modelyard.errors import InvalidParameter
from modelyard.registry.client import RegistryClient
from modelyard.registry.entities import Actor
from modelyard.registry.tables import audit_events
from modelyard.server.http.auth_middleware import requires
from modelyard.server.http.request_body import read_json_object
from modelyard.server.http.threads import in_thread
from modelyard.serving.deployments import check_deployment_name
from modelyard.serving.feedback import MAX_REQUEST_ID, FeedbackStore, Served, parse_feedback
from modelyard.serving.tables import serving_feedback

PREFIX = "/api/v1/predictions/{request_id}"
MAX_BODY = 64 * 1024
#: Columns of a logged answer shown to the reviewer.
LOGGED = (
    "variant",
    "model",
    "version",
    "role",
    "status",
    "latency_ms",
    "inputs",
    "outputs",
    "error",
)

REVIEW_FIELDS = frozenset({"deployment", "row", "label", "value"})

ActorOf = Callable[[Request], Actor | None]


def json_response(body: Any, status: int = 200) -> Response:
    return Response(json_codec.dumps(body), status, media_type="application/json")


def check_request_id(value: str) -> str:
    if not value or len(value) > MAX_REQUEST_ID:
        raise InvalidParameter(
            f"request_id must be 1-{MAX_REQUEST_ID} characters, got {len(value)}",
            field="request_id",
        )
    return value


def _decoded(text: Any) -> Any:
    if not isinstance(text, str):
        return text
    try:
        return json_codec.loads_lenient(text)
    except json_codec.DecodeError:
        return text


def logged_answers(
    registry: RegistryClient, request_id: str, deployment: str | None
) -> list[dict[str, Any]]:
    """The request's answers with their logged inputs and outputs, oldest first."""
    from modelyard.lineage.predictions import find_prediction
    from modelyard.monitoring.prediction_rows import LogWindow

    served = find_prediction(registry.artifacts, registry.db, request_id, deployment=deployment)
    out = []
    for where in {(s.deployment, s.ts_ms) for s in served}:
        name, ts = where
        with LogWindow(registry.artifacts, name, ts, ts + 1) as window:
            cursor = window.con.execute(
                f"SELECT {', '.join(LOGGED)}, epoch_ms(ts) AS ts_ms, revision FROM log "
                "WHERE request_id = ? ORDER BY role, variant",
                [request_id],
            )
            names = [d[0] for d in cursor.description]
            for values in cursor.fetchall():
                row = dict(zip(names, values, strict=True))
                row["inputs"], row["outputs"] = _decoded(row["inputs"]), _decoded(row["outputs"])
                out.append({"deployment": name, **row})
    return sorted(out, key=lambda r: (r["ts_ms"], r["role"] != "primary", r["variant"]))


def stored_feedback(
    registry: RegistryClient, request_id: str, models: set[str]
) -> list[dict[str, Any]]:
    """Feedback rows for the request, each with the reviewer the audit trail names (None
    for machine feedback sent to ``POST /feedback``). Reviews are looked up among the
    events of the ``models`` that answered (the trail's index is by model)."""
    c, a = serving_feedback.c, audit_events.c
    with registry.db.read() as conn:
        rows = conn.execute(
            select(serving_feedback).where(c.request_id == request_id).order_by(c.id)
        ).all()
        reviews = conn.execute(
            select(a.actor, a.after)
            .where(
                a.model_name.in_(sorted(models)),
                a.entity == f"prediction:{request_id}",
                a.action == "feedback.review",
            )
            .order_by(a.seq)
        ).all()
    reviewed = [(r.actor, json_codec.loads_lenient(r.after or "{}")) for r in reviews]
    out = []
    for r in rows:
        item = dict(r._mapping)
        same = ("deployment", "row", "label", "value")
        item["reviewer"] = next(
            (who for who, after in reviewed if all(after.get(k) == item[k] for k in same)), None
        )
        out.append(item)
    return out


def prediction(registry: RegistryClient, request_id: str, deployment: str | None) -> dict[str, Any]:
    answers = logged_answers(registry, request_id, deployment)
    return {
        "request_id": request_id,
        "answers": answers,
        "feedback": stored_feedback(registry, request_id, {str(a["model"]) for a in answers}),
    }


def review(
    registry: RegistryClient, reviewer: str, request_id: str, body: dict[str, Any]
) -> dict[str, Any]:
    """Store the reviewer's right value as feedback on the answer users got."""
    unknown = sorted(set(body) - REVIEW_FIELDS)
    if unknown:
        raise InvalidParameter(
            f"unknown field {unknown[0]!r}; a review takes {', '.join(sorted(REVIEW_FIELDS))}",
            field=unknown[0],
        )
    deployment = body.get("deployment")
    if deployment is not None:
        deployment = check_deployment_name(deployment)
    fields = {k: body[k] for k in ("row", "label", "value") if body.get(k) not in (None, "")}
    if "label" not in fields and "value" not in fields:
        raise InvalidParameter("enter the right value: a label or a numeric value", field="label")
    (item,) = parse_feedback({"request_id": request_id, **fields})
    answers = [
        a for a in logged_answers(registry, request_id, deployment) if a["role"] == "primary"
    ]
    if not answers:
        raise InvalidParameter(
            f"request {request_id!r} has no primary answer in the log to review",
            field="request_id",
        )
    answer = answers[-1]
    outputs = answer["outputs"]
    served = Served(
        variant=answer["variant"],
        version=int(answer["version"]),
        predictions=tuple(outputs) if isinstance(outputs, list) else (),
    )
    FeedbackStore(registry.db).record(
        answer["deployment"], [item], [served], reviewer=reviewer, model=answer["model"]
    )
    return prediction(registry, request_id, answer["deployment"])


def routes(registry: RegistryClient, actor_of: ActorOf) -> list[BaseRoute]:
    def request_id_of(request: Request) -> str:
        return check_request_id(request.path_params["request_id"])

    async def get_prediction(request: Request) -> Response:
        deployment = request.query_params.get("deployment") or None
        if deployment is not None:
            deployment = check_deployment_name(deployment)
        body = await in_thread(prediction, registry, request_id_of(request), deployment)
        return json_response(body)

    @requires(Role.EDITOR)
    async def post_review(request: Request) -> Response:
        body = await read_json_object(request, MAX_BODY)
        actor = actor_of(request) or registry.actor
        answer = await in_thread(review, registry, actor.name, request_id_of(request), body)
        return json_response(answer)

    return [
        Route(PREFIX, get_prediction, methods=["GET"]),
        Route(PREFIX + "/review", post_review, methods=["POST"]),
    ]
