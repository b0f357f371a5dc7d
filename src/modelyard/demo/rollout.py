"""Moving traffic: the deployments in staging and production, blue-green, canaries with
automatic rollback, shadows, and the decision to promote or roll back."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from modelyard.demo.workspace import PRODUCTION, REVIEWER, STAGING

if TYPE_CHECKING:
    from modelyard.demo.story import Stage
    from modelyard.demo.workspace import Workspace

#: Small counts so the judge decides within the demo's minutes (defaults suit real traffic);
#: a daily forecast may take longer than the ridge it replaces, up to 2x and +250 ms at p95.
CANARY_RULES = {
    "min_requests": 10,
    "window_s": 120.0,
    "max_error_rate_increase": 0.02,
    "max_p95_ratio": 2.0,
    "min_p95_increase_ms": 250.0,
}


def ensure_deployments(stage: Stage, ws: Workspace, version: Any) -> None:
    """Staging and production deployments serving ``version`` — or, when a run before made
    them, leave them as they are, ending any canary or shadow it left running."""
    from modelyard.errors import NotFound

    for name, env in ((STAGING, "staging"), (PRODUCTION, "production")):
        try:
            ws.deployments.get(name)
        except NotFound:
            ws.deployments.create(name, version.uri, environment=env)
            stage.say(f"deployment {name} ({env}) created serving {version.uri}")
            continue
        revision = ws.deployments.get_revision(name, ws.deployments.current_revision(name))
        policy = revision.policy
        if policy.canary is not None:
            ws.deployments.rollback(name, reason="modelyard demo: a new run starts")
        if policy.shadows:
            ws.deployments.shadow(name, [], reason="modelyard demo: a new run starts")
        stage.reused(
            f"deployment {name} ({env}) at revision {ws.deployments.current_revision(name)}"
        )


def serving(ws: Workspace, name: str) -> list[tuple[str, str, int, float]]:
    """(variant, model, version, weight) of what ``name`` serves now."""
    revision = ws.deployments.get_revision(name, ws.deployments.current_revision(name))
    return [(v.name, v.model, v.version, v.weight) for v in revision.policy.variants]


def describe(ws: Workspace, name: str) -> str:
    revision = ws.deployments.get_revision(name, ws.deployments.current_revision(name))
    parts = [f"{v.name} v{v.version} {v.weight:g}%" for v in revision.policy.variants]
    parts += [f"shadow v{s.version} {s.percent:g}%" for s in revision.policy.shadows]
    return f"{name} revision {revision.revision}: " + ", ".join(parts)


def blue_green(stage: Stage, ws: Workspace, version: Any) -> None:
    """Staging switches to ``version`` at once; the old version stays loaded as standby."""
    from modelyard.errors import InvalidState

    try:
        ws.deployments.switch(STAGING, version.uri, reason="modelyard demo: blue-green")
    except InvalidState as exc:
        stage.reused(exc.message)
    stage.say(f"blue-green: {describe(ws, STAGING)}")


def start_canary(stage: Stage, ws: Workspace, version: Any, interval_s: float) -> None:
    """Production starts a canary of ``version``: 20 %, then 50 %, rolled back by the data
    plane's judge if its errors or latency are worse than the primary's."""
    reviewer = ws.deployments.as_actor(_actor(ws, REVIEWER))
    reviewer.canary(
        PRODUCTION, version.uri, steps=[20, 50], interval_s=interval_s, rules=CANARY_RULES,
        reason="modelyard demo: canary",
    )  # fmt: skip
    stage.say(f"canary: {describe(ws, PRODUCTION)} (steps 20 % → 50 %, every {interval_s:g}s)")


def _shadows(ws: Workspace) -> bool:
    revision = ws.deployments.get_revision(PRODUCTION, ws.deployments.current_revision(PRODUCTION))
    return bool(revision.policy.shadows)


def _actor(ws: Workspace, name: str) -> Any:
    return ws.as_user(name).actor


def decide(
    stage: Stage, ws: Workspace, version: Any, live_mae: dict[int, float], label: str
) -> str:
    """Promote the canary when the judge kept it and its live error (from feedback) is no
    worse than the primary's; otherwise roll it back. Returns "promoted", "rolled back" or
    "rolled back by the judge"."""
    import math

    revision = ws.deployments.get_revision(PRODUCTION, ws.deployments.current_revision(PRODUCTION))
    canary = next((v for v in revision.policy.variants if v.name == "canary"), None)
    if canary is None or canary.version != int(version.version):
        history = ws.deployments.history(PRODUCTION, limit=3)
        why = next((r.reason for r in history if r.reason and "rollback" in r.reason), "")
        stage.say(f"{label}: the data plane's judge rolled the canary back — {why}")
        return "rolled back by the judge"
    primary = next(v for v in revision.policy.variants if v.name == "primary")
    mine, theirs = live_mae.get(canary.version, math.nan), live_mae.get(primary.version, math.nan)
    compared = f"live MAE v{canary.version} {mine:.3f} vs v{primary.version} {theirs:.3f}"
    reviewer = ws.deployments.as_actor(_actor(ws, REVIEWER))
    if math.isnan(mine) or math.isnan(theirs) or mine <= theirs:
        reviewer.promote(PRODUCTION, reason=f"modelyard demo: {compared}")
        stage.say(f"{label}: promoted — the judge kept it (errors, p95) and {compared}")
        if _shadows(ws):  # the shadow it ran in before its canary has done its job
            reviewer.shadow(PRODUCTION, [], reason="modelyard demo: promoted; shadow ends")
        ws.as_user(REVIEWER).set_registered_model_alias(version.name, "champion", version.version)
        stage.say(f"{version.name}@champion → v{version.version}")
        return "promoted"
    reviewer.rollback(PRODUCTION, reason=f"modelyard demo: worse live error, {compared}")
    stage.say(f"{label}: rolled back — {compared}: worse than what it would replace")
    return "rolled back"
