"""``modelyard users …``: who may use a ``modelyard server --auth``, and with which role.

    modelyard users create alice --role editor
    modelyard users list
    modelyard users set-role alice approver
    modelyard users disable alice               # her tokens stop working; `enable` restores

These work on the local metadata store the settings name, the one the server shares, so an
administrator runs them on the server's machine (or against its PostgreSQL database).
Roles, lowest first: viewer (read), editor (also write), approver (also approve model
versions), admin (everything).
"""

from __future__ import annotations

import typer

from modelyard.auth.roles import Role

app = typer.Typer(
    help="Create and list users of an authenticated server; change their roles.",
    no_args_is_help=True,
)


@app.command("create")
def create(
    ctx: typer.Context,
    name: str = typer.Argument(..., help="Letters, digits and . _ @ + -"),
    role: Role = typer.Option(Role.VIEWER, "--role", case_sensitive=False, help="Their role."),
) -> None:
    """Create a user; give them a token with `modelyard tokens create --user NAME`."""
    user = ctx.obj.auth().create_user(name, role)
    typer.echo(f"created user {user.name!r} with the {user.role} role")


@app.command("list")
def list_users(
    ctx: typer.Context,
    as_json: bool = typer.Option(False, "--json", help="One JSON object per line."),
) -> None:
    """List users: name, role, whether disabled, when created, how many live tokens."""
    import json

    from rich.table import Table
    from rich.text import Text

    from modelyard.cli.experiments import format_time

    service = ctx.obj.auth()
    users = service.list_users()
    live: dict[str, int] = {}
    for token in service.list_tokens(include_revoked=False):
        live[token.user] = live.get(token.user, 0) + 1
    if as_json:
        for u in users:
            row = {"name": u.name, "role": str(u.role), "disabled": u.disabled}
            typer.echo(
                json.dumps({**row, "created_at": u.created_at, "tokens": live.get(u.name, 0)})
            )
        return
    if not users:
        typer.echo("no users yet — create one with `modelyard users create NAME --role admin`")
        return
    table = Table(title=f"{len(users)} user{'s' if len(users) != 1 else ''}")
    for column in ("name", "role", "status", "created", "tokens"):
        table.add_column(column, no_wrap=True, justify="right" if column == "tokens" else "left")
    for u in users:
        status = Text("disabled", style="red") if u.disabled else Text("active", style="green")
        table.add_row(
            Text(u.name), str(u.role), status, format_time(u.created_at), str(live.get(u.name, 0))
        )
    ctx.obj.console().print(table)


@app.command("set-role")
def set_role(
    ctx: typer.Context,
    name: str = typer.Argument(..., help="The user's name."),
    role: Role = typer.Argument(
        ..., case_sensitive=False, help="viewer, editor, approver or admin."
    ),
) -> None:
    """Change a user's role (a running server notices within seconds)."""
    user = ctx.obj.auth().set_role(name, role)
    typer.echo(f"user {user.name!r} now has the {user.role} role")


@app.command("disable")
def disable(ctx: typer.Context, name: str = typer.Argument(..., help="The user's name.")) -> None:
    """Stop a user's tokens from working, without revoking them."""
    user = ctx.obj.auth().set_disabled(name, True)
    typer.echo(f"disabled user {user.name!r}; `modelyard users enable {user.name}` undoes it")


@app.command("enable")
def enable(ctx: typer.Context, name: str = typer.Argument(..., help="The user's name.")) -> None:
    """Let a disabled user's unrevoked tokens work again."""
    user = ctx.obj.auth().set_disabled(name, False)
    typer.echo(f"enabled user {user.name!r}")
