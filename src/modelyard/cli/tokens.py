"""``modelyard tokens …``: API tokens for ``modelyard server --auth``.

    TOKEN=$(modelyard tokens create --user alice --label laptop)   # the token alone on stdout
    MLFLOW_TRACKING_TOKEN=$TOKEN python train.py
    modelyard tokens list --user alice
    modelyard tokens revoke 3f9c                                   # an id, or its first chars

The token is printed once, at creation; the store keeps only its SHA-256 digest, so a lost
token is revoked and replaced, never recovered.
"""

from __future__ import annotations

import typer

from modelyard.cli.users import auth_service

app = typer.Typer(help="Create, list and revoke API tokens.", no_args_is_help=True)


@app.command("create")
def create(
    ctx: typer.Context,
    user: str = typer.Option(..., "--user", help="Whose token: it acts with their role."),
    label: str | None = typer.Option(None, "--label", help="What it is for, e.g. 'ci'."),
) -> None:
    """Create a token and print it, once: only its digest is stored."""
    service = auth_service(ctx)
    issued = service.create_token(user, label)
    role = service.get_user(user).role
    typer.echo(issued.token)
    typer.echo(
        f"created token {issued.info.token_id} for {user!r} ({role}); it is shown only this "
        "once, so store it now. Use it as MLFLOW_TRACKING_TOKEN or MODELYARD_TRACKING_TOKEN.",
        err=True,
    )


@app.command("list")
def list_tokens(
    ctx: typer.Context,
    user: str | None = typer.Option(None, "--user", help="Only this user's tokens."),
    all_: bool = typer.Option(False, "--all", help="Include revoked tokens."),
) -> None:
    """List tokens (never the tokens themselves): id, user, label, created, last used."""
    from rich.table import Table
    from rich.text import Text

    from modelyard.cli.experiments import format_time

    tokens = auth_service(ctx).list_tokens(user, include_revoked=all_)
    table = Table(title=f"{len(tokens)} token{'s' if len(tokens) != 1 else ''}")
    for column in ("id", "user", "label", "created", "last used", "status"):
        table.add_column(column, no_wrap=column != "label")
    for t in tokens:
        status = Text("revoked", style="red") if t.revoked else Text("active", style="green")
        table.add_row(
            t.token_id,
            Text(t.user),
            Text(t.label or "—"),
            format_time(t.created_at),
            format_time(t.last_used_at),
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

    info = auth_service(ctx).revoke_token(token)
    typer.echo(
        f"revoked token {info.token_id} of {info.user!r} (at {format_time(info.revoked_at)})"
    )
