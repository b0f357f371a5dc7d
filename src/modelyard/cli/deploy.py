"""``modelyard deploy …``: deployments and their rollouts from the command line.

    modelyard deploy create web-staging models:/churn/3 --env staging
    modelyard deploy create web models:/churn/3 --env production
    modelyard deploy canary web models:/churn/4 --steps 5,25,50,100 --every 10m
    modelyard deploy shadow web models:/churn/5 --percent 20
    modelyard deploy ab web models:/churn/4 --split 50 --key customer_id
    modelyard deploy ab-report web --slice category
    modelyard deploy switch web models:/churn/4        # blue-green; `switch web` flips back
    modelyard deploy promote web
    modelyard deploy rollback web
    modelyard deploy status web

Every change is a new revision and an audit event; running data planes pick it up.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

import typer

if TYPE_CHECKING:
    from modelyard.serving.deployments import Deployment

app = typer.Typer(
    help="Deploy model versions: blue-green, canary, shadow, A/B.", no_args_is_help=True
)
REASON_HELP = "Why: kept with the revision and its audit event."


def _seconds(text: str, option: str) -> float:
    """A positive duration in seconds (``modelyard.durations``: 90s, 10m, 1h, PT10M)."""
    from modelyard.durations import parse_duration
    from modelyard.errors import InvalidParameter

    seconds = parse_duration(text, option).total_seconds()
    if seconds <= 0:
        raise InvalidParameter(f"{option} {text!r} must be longer than 0", field=option)
    return seconds


def _steps(text: str) -> list[float]:
    from modelyard.errors import InvalidParameter

    try:
        return [float(part) for part in text.split(",") if part.strip()]
    except ValueError:
        raise InvalidParameter(f"steps {text!r} must be percentages like 5,25,50,100") from None


def _show(ctx: typer.Context, deployment: Deployment | None) -> None:
    if deployment is None:
        typer.echo("nothing changed: the deployment moved on meanwhile")
        return
    from rich.table import Table

    from modelyard.ids import now_ms
    from modelyard.serving.routing import Router

    policy = deployment.policy
    console = ctx.obj.console()
    console.print(
        f"[bold]{deployment.name}[/] ({deployment.environment}) revision "
        f"{deployment.current_revision}: {policy.kind}"
    )
    weights = Router(policy).weights_at(now_ms())
    share: dict[str, float] = {}
    low = 0.0
    for edge, variant in weights:
        share[variant.name] = edge - low
        low = edge
    table = Table()
    for column in ("variant", "version", "traffic now", "role"):
        table.add_column(column)
    for v in policy.variants:
        role = "standby" if share.get(v.name, 0.0) == 0 else "serving"
        table.add_row(v.name, v.uri, f"{share.get(v.name, 0.0):.1f} %", role)
    for s in policy.shadows:
        table.add_row(s.name, s.uri, f"mirror {s.percent:g} %", "shadow")
    console.print(table)
    if policy.canary is not None:
        c = policy.canary
        step = c.step_at(now_ms())
        nxt = c.started_at_ms + int((step + 1) * c.interval_s * 1000)
        more = (
            f"; next step {c.steps[step + 1]:g} % in {(nxt - now_ms()) / 1000:.0f} s"
            if step + 1 < len(c.steps)
            else "; schedule complete: `modelyard deploy promote`"
        )
        console.print(f"canary steps {list(c.steps)} every {c.interval_s:g} s{more}")
    if policy.sticky_key:
        console.print(f"sticky by request field {policy.sticky_key!r}")
    if policy.contract is not None:
        console.print(
            f"data contract {policy.contract.spec.get('contract')!r} ({policy.contract.mode})"
        )


@app.command("create")
def create(
    ctx: typer.Context,
    name: str = typer.Argument(..., help="Deployment name (lower-case, digits, '-')."),
    model_uri: str = typer.Argument(..., help="models:/NAME/VERSION or models:/NAME@ALIAS."),
    env: str = typer.Option("staging", "--env", help="Environment: staging, production, …"),
    description: str | None = typer.Option(None, "--description", help="What it serves, for whom."),
) -> None:
    """Create a deployment serving one version.

    Example:
    $ modelyard deploy create web models:/churn/3 --env production
    $ modelyard serve web
    """
    _show(
        ctx, ctx.obj.deployments().create(name, model_uri, environment=env, description=description)
    )


@app.command("status")
def status(
    ctx: typer.Context,
    name: str = typer.Argument(..., help="Deployment name."),
    history: int = typer.Option(10, "--history", help="Revisions to list."),
) -> None:
    """The traffic policy in force and the recent revisions."""
    from modelyard.cli.experiments import format_time

    svc = ctx.obj.deployments()
    _show(ctx, svc.get(name))
    for rev in svc.history(name, history):
        reason = f" — {rev.reason}" if rev.reason else ""
        typer.echo(
            f"  r{rev.revision} {rev.action} by {rev.created_by} at {format_time(rev.created_at)}"
            f"{reason}"
        )


@app.command("list")
def list_deployments(ctx: typer.Context) -> None:
    """Every deployment, its environment and revision."""
    deployments = ctx.obj.deployments().list()
    if not deployments:
        typer.echo("no deployments yet — create one with `modelyard deploy create NAME MODEL_URI`")
        return
    for d in deployments:
        main = max(d.policy.variants, key=lambda v: v.weight)
        typer.echo(f"{d.name}\t{d.environment}\tr{d.current_revision}\t{d.policy.kind}\t{main.uri}")


@app.command("switch")
def switch(
    ctx: typer.Context,
    name: str = typer.Argument(..., help="Deployment name."),
    model_uri: str | None = typer.Argument(
        None, help="The version to switch to (default: standby)."
    ),
    reason: str | None = typer.Option(None, "--reason", help=REASON_HELP),
) -> None:
    """Blue-green: all traffic to MODEL_URI at once (or back to the standby)."""
    _show(ctx, ctx.obj.deployments().switch(name, model_uri, reason=reason))


@app.command("canary")
def canary(
    ctx: typer.Context,
    name: str = typer.Argument(..., help="Deployment name."),
    model_uri: str = typer.Argument(..., help="The candidate: models:/NAME/VERSION or @ALIAS."),
    steps: str = typer.Option("5,25,50,100", "--steps", help="Percentages, in order."),
    every: str = typer.Option("10m", "--every", help="Time per step: 90s, 10m, 1h."),
    max_error_rate_increase: float = typer.Option(
        0.02,
        "--max-error-rate-increase",
        help="Roll back when the canary's error rate is this much above the primary's "
        "(0.02: two percentage points).",
    ),
    max_p95_ratio: float = typer.Option(
        1.5, "--max-p95-ratio", help="Roll back when its p95 latency exceeds this × the primary's."
    ),
    min_requests: int = typer.Option(
        50, "--min-requests", help="Requests each side needs before the rules are judged."
    ),
    feedback_metric: str | None = typer.Option(
        None,
        "--feedback-metric",
        help="Also judge live feedback: accuracy (label = prediction) or mean (outcome value).",
    ),
    max_feedback_drop: float = typer.Option(
        0.05, "--max-feedback-drop", help="Roll back when that metric falls this much below."
    ),
    auto_promote: bool = typer.Option(False, "--auto-promote", help="Promote at the last step."),
    reason: str | None = typer.Option(None, "--reason", help=REASON_HELP),
) -> None:
    """Start a canary with a stepped schedule and automatic rollback rules.

    The canary's share of traffic climbs through --steps, one step per --every; it is rolled
    back at once when a rule fails (over the last 5 minutes, once both sides have
    --min-requests requests).

    Example:
    $ modelyard deploy canary web models:/churn/4 --steps 5,25,50,100 --every 10m
    $ modelyard deploy status web      # where the schedule is
    $ modelyard deploy promote web     # or --auto-promote at the last step
    """
    rules = {
        "max_error_rate_increase": max_error_rate_increase,
        "max_p95_ratio": max_p95_ratio,
        "min_requests": min_requests,
        "feedback_metric": feedback_metric,
        "max_feedback_drop": max_feedback_drop,
    }
    _show(
        ctx,
        ctx.obj.deployments().canary(
            name,
            model_uri,
            steps=_steps(steps),
            interval_s=_seconds(every, "--every"),
            rules=rules,
            auto_promote=auto_promote,
            reason=reason,
        ),
    )


@app.command("shadow")
def shadow(
    ctx: typer.Context,
    name: str = typer.Argument(..., help="Deployment name."),
    model_uris: list[str] = typer.Argument(None, help="Versions to mirror to (none: stop)."),
    percent: float = typer.Option(100.0, "--percent", help="Share of requests mirrored."),
    reason: str | None = typer.Option(None, "--reason", help=REASON_HELP),
) -> None:
    """Mirror requests to versions whose answers are logged, never returned.

    Example:
    $ modelyard deploy shadow web models:/churn/5 --percent 20
    $ modelyard deploy shadow web      # stop mirroring
    """
    _show(ctx, ctx.obj.deployments().shadow(name, model_uris or [], percent=percent, reason=reason))


@app.command("ab")
def ab(
    ctx: typer.Context,
    name: str = typer.Argument(..., help="Deployment name."),
    model_uri: str = typer.Argument(..., help="Variant b (a is what serves now)."),
    split: float = typer.Option(50.0, "--split", help="Percent of keys that get variant b."),
    key: str = typer.Option("request_id", "--key", help="Request field to stick by."),
    reason: str | None = typer.Option(None, "--reason", help=REASON_HELP),
) -> None:
    """Start an A/B test: a sticky split by a hash of a request field.

    Example:
    $ modelyard deploy ab web models:/churn/4 --split 50 --key customer_id
    $ modelyard deploy ab-report web --slice category
    """
    _show(ctx, ctx.obj.deployments().ab(name, model_uri, split=split, key=key, reason=reason))


@app.command("ab-report")
def ab_report(
    ctx: typer.Context,
    name: str = typer.Argument(..., help="Deployment name."),
    metric: str = typer.Option("value", "--metric", help="value (mean outcome) or accuracy."),
    slice_by: str | None = typer.Option(None, "--slice", help="Input column to slice by."),
    alpha: float = typer.Option(
        0.05, "--alpha", help="Significance level of the tests (Holm-adjusted across slices)."
    ),
    as_json: bool = typer.Option(False, "--json", help="Print JSON instead of text."),
) -> None:
    """Significance test and confidence intervals for an A/B test, overall and per slice."""
    from modelyard.serving.ab_report import ab_report_for
    from modelyard.serving.feedback import FeedbackStore

    svc = ctx.obj.deployments()
    report = ab_report_for(
        svc.registry.artifacts,
        FeedbackStore(svc.db),
        name,
        metric=metric,
        slice_by=slice_by,
        alpha=alpha,
    )
    typer.echo(json.dumps(report.to_dict(), default=str, indent=2) if as_json else report.render())


@app.command("promote")
def promote(
    ctx: typer.Context,
    name: str = typer.Argument(..., help="Deployment name."),
    variant: str | None = typer.Option(None, "--variant", help="Default: the canary, or b."),
    reason: str | None = typer.Option(None, "--reason", help=REASON_HELP),
) -> None:
    """Make the canary (or an A/B variant) the primary at 100 %."""
    _show(ctx, ctx.obj.deployments().promote(name, variant, reason=reason))


@app.command("rollback")
def rollback(
    ctx: typer.Context,
    name: str = typer.Argument(..., help="Deployment name."),
    to: int | None = typer.Option(None, "--to", help="Revision to restore (default: undo)."),
    reason: str | None = typer.Option(None, "--reason", help=REASON_HELP),
) -> None:
    """Undo the last change (or restore a revision) at once."""
    _show(ctx, ctx.obj.deployments().rollback(name, to, reason=reason))


@app.command("contract")
def contract(
    ctx: typer.Context,
    name: str = typer.Argument(..., help="Deployment name."),
    path: str | None = typer.Argument(None, help="Contract YAML (none: remove)."),
    mode: str = typer.Option("reject", "--mode", help="reject (400) or flag (serve and log)."),
) -> None:
    """Enforce a data contract on the deployment's requests."""
    _show(ctx, ctx.obj.deployments().set_contract(name, path, mode=mode))


@app.command("env")
def env(
    ctx: typer.Context,
    name: str = typer.Argument(..., help="Deployment name."),
    requires: str | None = typer.Option(None, "--requires", help="Environment to pass first."),
    protected: bool = typer.Option(False, "--protected", help="Apply the promotion policy."),
) -> None:
    """Create an environment (staging and production exist already)."""
    e = ctx.obj.deployments().create_environment(name, requires=requires, protected=protected)
    typer.echo(f"environment {e.name}: requires {e.requires or '—'}, protected {e.protected}")


@app.command("compile")
def compile_model(
    ctx: typer.Context,
    model_uri: str = typer.Argument(..., help="models:/NAME/VERSION"),
    holdout: str | None = typer.Option(None, "--holdout", help="Held-out rows (CSV or Parquet)."),
) -> None:
    """Convert a version to ONNX and record whether it matches the original."""
    from modelyard.serving.compiled import compile_version

    svc = ctx.obj.deployments()
    version = svc.registry.resolve(model_uri).version
    if version is None:
        from modelyard.errors import InvalidParameter

        raise InvalidParameter(f"{model_uri!r} is not a registered version", field="model_uri")
    rows: Any = None
    if holdout:
        import pandas as pd

        rows = pd.read_parquet(holdout) if holdout.endswith(".parquet") else pd.read_csv(holdout)
    from modelyard.cli.extras import needs_extra

    with needs_extra("compile", "modelyard deploy compile"):
        check = compile_version(svc.registry, version.name, version.version, holdout=rows)
    state = "on" if check.enabled else "off"
    typer.echo(f"{version.uri}: compiled path {state} — {check.reason} ({check.rows_checked} rows)")
