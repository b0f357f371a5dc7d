"""``modelyard tokens …``: API tokens for ``modelyard server --auth``.

    TOKEN=$(modelyard tokens create --user alice --label laptop)   # the token alone on stdout
    MLFLOW_TRACKING_TOKEN=$TOKEN python train.py
    modelyard tokens create --user ci --expires 90d                # refused after 90 days
    modelyard tokens list --user alice                             # last use, expiry
    modelyard tokens revoke 3f9c                                   # an id, or its first chars

The token is printed once, at creation; the store keeps only its SHA-256 digest, so a lost
token is revoked and replaced, never recovered.
"""

from __future__ import annotations

import typer

app = typer.Typer(help="Create, list and revoke API tokens.", no_args_is_help=True)


@app.command("create")
def create(
    ctx: typer.Context,
    user: str = typer.Option(..., "--user", help="Whose token: it acts with their role."),
    label: str | None = typer.Option(None, "--label", help="What it is for, e.g. 'ci'."),
    expires: str | None = typer.Option(
        None,
        "--expires",
        metavar="DURATION",
        help="Refuse the token after this long, e.g. 90d, 12h, 2w (default: never).",
    ),
) -> None:
    """Create a token and print it, once: only its digest is stored.

    Example:
    $ export MODELYARD_TRACKING_TOKEN=$(modelyard tokens create --user ci --label ci --expires 90d)
    """
    from modelyard.cli.experiments import format_time
    from modelyard.durations import parse_duration

    lifetime = None
    if expires is not None:
        lifetime = parse_duration(expires, "--expires").total_seconds()
        if lifetime <= 0:
            raise typer.BadParameter("a token must live longer than 0", param_hint="--expires")
    service = ctx.obj.auth()
    issued = service.create_token(user, label, expires_in_s=lifetime)
    role = service.get_user(user).role
    expiry = issued.info.expires_at
    typer.echo(issued.token)
    typer.echo(
        f"created token {issued.info.token_id} for {user!r} ({role}), "
        f"{'expiring ' + format_time(expiry) if expiry else 'never expiring'}; it is shown only "
        "this once, so store it now. Use it as MLFLOW_TRACKING_TOKEN or "
        "MODELYARD_TRACKING_TOKEN.",
        err=True,
    )


@app.command("list")
def list_tokens(
    ctx: typer.Context,
    user: str | None = typer.Option(None, "--user", help="Only this user's tokens."),
    all_: bool = typer.Option(False, "--all", help="Include revoked tokens."),
) -> None:
    """List tokens (never the tokens themselves): id, user, label, created, last used,
    expiry and status (active, expired or revoked)."""
    from rich.table import Table
    from rich.text import Text

    from modelyard.cli.experiments import format_time
    from modelyard.ids import now_ms

    tokens = ctx.obj.auth().list_tokens(user, include_revoked=all_)
    if not tokens:
        whose = f" for {user!r}" if user else ""
        typer.echo(f"no tokens{whose} — create one with `modelyard tokens create --user NAME`")
        return
    table = Table(title=f"{len(tokens)} token{'s' if len(tokens) != 1 else ''}")
    for column in ("id", "user", "label", "created", "last used", "expires", "status"):
        table.add_column(column, no_wrap=column != "label")
    now = now_ms()
    for t in tokens:
        if t.revoked:
            status = Text("revoked", style="red")
        elif t.expired(now):
            status = Text("expired", style="yellow")
        else:
            status = Text("active", style="green")
        table.add_row(
            t.token_id,
            Text(t.user),
            Text(t.label or "—"),
            format_time(t.created_at),
            format_time(t.last_used_at),
            format_time(t.expires_at) if t.expires_at is not None else "never",
            status,
        )
    ctx.obj.console().print(table)


@app.command("revoke")
def revoke(
    ctx: typer.Context,
    token: str = typer.Argument(..., metavar="ID", help="Token id, a unique prefix, or the token."),
) -> None:
    """Revoke a token for good (a running server refuses it within seconds)."""
    from modelyard.cli.experiments import format_time

    info = ctx.obj.auth().revoke_token(token)
    typer.echo(
        f"revoked token {info.token_id} of {info.user!r} (at {format_time(info.revoked_at)})"
    )
