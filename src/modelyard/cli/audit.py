"""``modelyard audit …``: read and verify the hash-chained audit trail.

    modelyard audit log --model churn
    modelyard audit verify                      # exit status 1 when the trail was tampered with
    modelyard audit verify --anchor <hash>      # also prove history up to a kept hash

Keep the head hash ``verify`` prints somewhere outside the database (a ticket, a log
shipper): passing it back as ``--anchor`` detects a wholesale rewrite of the trail.
"""

from __future__ import annotations

import typer

from modelyard.cli.experiments import format_time

app = typer.Typer(help="Show and verify the audit trail of registry changes.", no_args_is_help=True)


def _short(value: object) -> str:
    import json

    if value is None:
        return "—"
    text = json.dumps(value, sort_keys=True, ensure_ascii=False)
    return text if len(text) <= 80 else text[:79] + "…"


@app.command("log")
def log(
    ctx: typer.Context,
    model: str | None = typer.Option(None, "--model", help="Only events about this model."),
    limit: int | None = typer.Option(
        None, "--limit", min=1, help="At most this many (oldest first)."
    ),
    as_json: bool = typer.Option(False, "--json", help="One JSON object per line."),
) -> None:
    """List audit events: when, who, what, before and after."""
    import dataclasses
    import json

    from rich.table import Table

    events = ctx.obj.registry().audit_log(model, limit)
    if as_json:
        for event in events:
            typer.echo(json.dumps(dataclasses.asdict(event), sort_keys=True))
        return
    if not events:
        about = f" about {model!r}" if model else ""
        typer.echo(
            f"no audit events{about} yet — registry and deployment changes are recorded "
            "as they happen (`modelyard models register …`, `modelyard deploy create …`)"
        )
        return
    table = Table(title=f"{len(events)} audit event{'s' if len(events) != 1 else ''}")
    for column in ("#", "time", "actor", "action", "entity", "before", "after"):
        table.add_column(column, no_wrap=column in ("#", "time", "action"))
    for e in events:
        table.add_row(
            str(e.seq),
            format_time(e.ts),
            e.actor,
            e.action,
            e.entity,
            _short(e.before),
            _short(e.after),
        )
    ctx.obj.console().print(table)


@app.command("verify")
def verify(
    ctx: typer.Context,
    anchor: str | None = typer.Option(
        None, "--anchor", help="A head hash kept elsewhere earlier; it must still be in the chain."
    ),
) -> None:
    """Check the hash chain; name the first edited, deleted or reordered entry."""
    from modelyard.cli.main import print_error

    result = ctx.obj.registry().verify_audit(anchor)
    if not result.ok:
        print_error(str(result))
        raise typer.Exit(1)
    typer.echo(str(result))
