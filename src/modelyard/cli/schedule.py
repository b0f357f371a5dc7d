"""``modelyard schedule …``: start registered pipelines on cron schedules (UTC).

    modelyard pipelines register retrain-demand flows.py:retrain --param days=90
    modelyard schedule create retrain-demand --cron "0 3 * * *" --param days=30
    modelyard schedule create retrain-demand --cron "@weekly" --name weekly-full
    modelyard schedule list                     # with each schedule's next and last run
    modelyard schedule pause nightly            # its ticks are not run, nor caught up
    modelyard schedule resume nightly
    modelyard schedule delete nightly

``modelyard scheduler`` runs them: each tick once; ticks missed while no scheduler ran
are run once, for the latest of them, when a scheduler starts.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import typer

if TYPE_CHECKING:
    from datetime import datetime

    from modelyard.pipelines.schedules import Schedules

app = typer.Typer(
    help="Start registered pipelines on cron schedules: create, list, pause, resume, delete.",
    no_args_is_help=True,
)


def _schedules(ctx: typer.Context) -> Schedules:
    from modelyard.pipelines.runner import pipelines_store
    from modelyard.pipelines.schedules import Schedules

    return Schedules(pipelines_store(ctx.obj.settings()).db)


def _time(ms: int | None) -> str:
    if ms is None:
        return "-"
    from datetime import UTC, datetime

    return datetime.fromtimestamp(ms / 1000, UTC).strftime("%Y-%m-%d %H:%M UTC")


@app.command()
def create(
    ctx: typer.Context,
    pipeline: str = typer.Argument(..., help="A registered pipeline (`pipelines register`)."),
    cron: str = typer.Option(..., "--cron", help='When, in UTC: "0 3 * * *", "@hourly".'),
    param: list[str] = typer.Option(
        [], "--param", "-p", help="A param as KEY=VALUE (JSON where it parses); repeatable."
    ),
    name: str | None = typer.Option(
        None, "--name", help="The schedule's name (default: PIPELINE)."
    ),
    executor: str = typer.Option(
        "process", "--executor", "-e", help="Where steps run: local, process, ray."
    ),
) -> None:
    """Schedule a registered pipeline; the pipeline, the cron and the params are checked now."""
    from modelyard.pipelines.loading import load_target, parse_params

    schedules = _schedules(ctx)
    definition = schedules.pipelines.definition(pipeline)
    params = parse_params(load_target(definition.target), param)
    made = schedules.create(pipeline, cron, params, name=name, executor=executor)
    nxt = made.cron_schedule.next_after(_utc(made.since))
    typer.echo(f"schedule {made.name}: {made.pipeline} at {made.cron!r}, next {_dt(nxt)}")


def _utc(ms: int) -> datetime:
    from datetime import UTC, datetime

    return datetime.fromtimestamp(ms / 1000, UTC)


def _dt(value: datetime) -> str:
    return value.strftime("%Y-%m-%d %H:%M UTC")


@app.command("list")
def list_schedules(ctx: typer.Context) -> None:
    """List schedules: pipeline, cron, params, state, the next tick and the last firing."""
    from rich.table import Table

    from modelyard.ids import now_ms
    from modelyard.pipelines.firings import Firings

    schedules = _schedules(ctx)
    firings = Firings(schedules.db)
    table = Table()
    for column in ("name", "pipeline", "cron", "params", "state", "next", "last", "run"):
        table.add_column(column)
    now = _utc(now_ms())
    for s in schedules.list():
        last = firings.list(kind="schedule", source=s.name, limit=1)
        state = "paused" if s.paused else "active"
        nxt = "-" if s.paused else _dt(s.cron_schedule.next_after(now))
        params = " ".join(f"{k}={v}" for k, v in s.params.items()) or "-"
        if last:
            fired = f"{_time(last[0].due_at)} {last[0].status}"
            run = last[0].run_id or "-"
        else:
            fired, run = "-", "-"
        table.add_row(s.name, s.pipeline, s.cron, params, state, nxt, fired, run)
    ctx.obj.console().print(table)


@app.command()
def pause(ctx: typer.Context, name: str = typer.Argument(..., help="The schedule.")) -> None:
    """Stop starting runs; the ticks passed while paused are not caught up on resume."""
    _schedules(ctx).pause(name)
    typer.echo(f"paused schedule {name}")


@app.command()
def resume(ctx: typer.Context, name: str = typer.Argument(..., help="The schedule.")) -> None:
    """Start runs again, from the next tick."""
    _schedules(ctx).resume(name)
    typer.echo(f"resumed schedule {name}")


@app.command()
def delete(ctx: typer.Context, name: str = typer.Argument(..., help="The schedule.")) -> None:
    """Delete a schedule (the runs it started stay, with their cause)."""
    _schedules(ctx).delete(name)
    typer.echo(f"deleted schedule {name}")
