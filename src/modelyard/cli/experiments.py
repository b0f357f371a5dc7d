"""``modelyard experiments …``: list, create, delete, restore and rename experiments.

Commands take an experiment by name or by id (``resolve_experiment``), so
``modelyard experiments delete retail-demand`` and ``… delete 1`` both work.
"""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING

import typer

if TYPE_CHECKING:
    from modelyard.tracking.client import TrackingClient
    from modelyard.tracking.entities import Experiment

app = typer.Typer(
    help="Create, list, rename, delete and restore experiments.", no_args_is_help=True
)


def resolve_experiment(client: TrackingClient, ref: str) -> Experiment:
    """The experiment named ``ref``, else the one whose id is ``ref`` (deleted ones too)."""
    from modelyard.errors import NotFound

    found = client.get_experiment_by_name(ref)
    if found is not None:
        return found
    if ref.isdigit():
        try:
            return client.get_experiment(ref)
        except NotFound:
            pass
    raise NotFound(
        f"no experiment named or numbered {ref!r}; `modelyard experiments list --all` shows them",
        field="experiment",
    )


def format_time(ms: int | None) -> str:
    """Milliseconds since the epoch as local ``YYYY-MM-DD HH:MM:SS`` ('—' when unknown)."""
    if ms is None:
        return "—"
    return datetime.fromtimestamp(ms / 1000).strftime("%Y-%m-%d %H:%M:%S")


@app.command("list")
def list_experiments(
    ctx: typer.Context,
    all_: bool = typer.Option(False, "--all", help="Include deleted experiments."),
    deleted: bool = typer.Option(False, "--deleted", help="Only deleted experiments."),
) -> None:
    """List experiments: id, name, stage and creation time."""
    from rich.table import Table
    from rich.text import Text

    from modelyard.tracking.entities import ViewType

    if all_ and deleted:
        raise typer.BadParameter("give --all or --deleted, not both", param_hint="--all/--deleted")
    view = ViewType.ALL if all_ else ViewType.DELETED_ONLY if deleted else ViewType.ACTIVE_ONLY
    client = ctx.obj.client()
    found: list[Experiment] = []
    token: str | None = None
    while True:
        page = client.search_experiments(view, max_results=1000, page_token=token)
        found.extend(page.items)
        token = page.next_page_token
        if not token:
            break
    if not found:
        typer.echo(
            "no deleted experiments"
            if deleted
            else "no experiments — create one with `modelyard experiments create NAME`"
        )
        return
    table = Table(title=f"{len(found)} experiment{'s' if len(found) != 1 else ''}")
    table.add_column("id", justify="right", no_wrap=True)
    table.add_column("name", no_wrap=True)
    table.add_column("stage")
    table.add_column("created", no_wrap=True)
    for exp in found:
        stage = str(exp.lifecycle_stage)
        table.add_row(
            exp.experiment_id,
            Text(exp.name),
            Text(stage, style="red" if stage == "deleted" else "green"),
            format_time(exp.creation_time),
        )
    ctx.obj.console().print(table)


@app.command("create")
def create(ctx: typer.Context, name: str = typer.Argument(..., help="A unique name.")) -> None:
    """Create an experiment and print its id."""
    experiment_id = ctx.obj.client().create_experiment(name)
    typer.echo(f"created experiment {name!r} with id {experiment_id}")


@app.command("delete")
def delete(
    ctx: typer.Context,
    experiment: str = typer.Argument(
        ..., metavar="ID_OR_NAME", help="The experiment's id or name."
    ),
) -> None:
    """Delete an experiment (and hide its runs); `restore` brings it back."""
    client = ctx.obj.client()
    found = resolve_experiment(client, experiment)
    client.delete_experiment(found.experiment_id)
    typer.echo(f"deleted experiment {found.name!r} (id {found.experiment_id})")


@app.command("restore")
def restore(
    ctx: typer.Context,
    experiment: str = typer.Argument(
        ..., metavar="ID_OR_NAME", help="A deleted experiment's id or name."
    ),
) -> None:
    """Restore a deleted experiment and its runs."""
    client = ctx.obj.client()
    found = resolve_experiment(client, experiment)
    client.restore_experiment(found.experiment_id)
    typer.echo(f"restored experiment {found.name!r} (id {found.experiment_id})")


@app.command("rename")
def rename(
    ctx: typer.Context,
    experiment: str = typer.Argument(
        ..., metavar="ID_OR_NAME", help="The experiment's id or name."
    ),
    new_name: str = typer.Argument(..., metavar="NEW", help="Its new name (unique)."),
) -> None:
    """Give an experiment a new name."""
    client = ctx.obj.client()
    found = resolve_experiment(client, experiment)
    client.rename_experiment(found.experiment_id, new_name)
    typer.echo(f"renamed experiment {found.experiment_id}: {found.name!r} → {new_name!r}")
