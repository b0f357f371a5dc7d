"""``modelyard models …``: the registry from the command line.

    modelyard models register runs:/<run_id>/model churn
    modelyard models stage churn 3 Staging
    modelyard models approve churn 3 --comment "AUC and fairness checked"
    modelyard models stage churn 3 Production
    modelyard models alias churn champion 3
    modelyard models card churn 3 --set intended_use="Retention calls" --format html -o card.html
    modelyard models diff churn 2 3

The acting user is ``MODELYARD_USER`` (else the OS user); the promotion policy applies to
them exactly as it does to the Python API.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import typer

from modelyard.cli.experiments import format_time

if TYPE_CHECKING:
    from modelyard.registry.client import RegistryClient

app = typer.Typer(
    help="Register, promote, approve and describe model versions.", no_args_is_help=True
)
DIFF_STYLE = "bold yellow"
STAGE_STYLES = {"Production": "bold green", "Staging": "yellow", "Archived": "dim"}


@app.command("list")
def list_models(
    ctx: typer.Context,
    name_like: str | None = typer.Option(None, "--filter", help="SQL LIKE pattern, e.g. %churn%."),
) -> None:
    """List registered models with their newest version, aliases and Production version."""
    from rich.table import Table

    models = ctx.obj.registry().list_registered_models(name_like)
    if not models:
        typer.echo(
            f"no registered model matches {name_like!r}"
            if name_like
            else "no registered models yet — register one with "
            "`modelyard models register runs:/RUN_ID/PATH NAME`"
        )
        return
    table = Table(title=f"{len(models)} registered model{'s' if len(models) != 1 else ''}")
    for column in ("name", "latest", "production", "aliases", "updated"):
        table.add_column(column, no_wrap=column != "aliases")
    for model in models:
        latest = max((v.version for v in model.latest_versions), default=None)
        production = [v.version for v in model.latest_versions if v.stage.value == "Production"]
        aliases = ", ".join(f"{a}→{v}" for a, v in model.aliases.items())
        table.add_row(
            model.name,
            str(latest or "—"),
            str(production[0]) if production else "—",
            aliases or "—",
            format_time(model.last_updated_time),
        )
    ctx.obj.console().print(table)


@app.command("show")
def show(
    ctx: typer.Context, name: str = typer.Argument(..., help="Registered model name.")
) -> None:
    """A model's description, tags, aliases and versions."""
    client = ctx.obj.registry()
    model = client.get_registered_model(name)
    console = ctx.obj.console()
    console.print(
        f"[bold]{model.name}[/]  created by {model.created_by} on "
        f"{format_time(model.creation_time)}"
    )
    if model.description:
        console.print(model.description)
    for key, value in model.tags.items():
        console.print(f"  tag {key} = {value}")
    for alias, version in model.aliases.items():
        console.print(f"  alias {alias} → version {version}")
    _versions_table(ctx, client, name)


@app.command("versions")
def versions(
    ctx: typer.Context, name: str = typer.Argument(..., help="Registered model name.")
) -> None:
    """Every version of a model, newest first."""
    _versions_table(ctx, ctx.obj.registry(), name)


def _versions_table(ctx: typer.Context, client: RegistryClient, name: str) -> None:
    from rich.table import Table
    from rich.text import Text

    found = client.list_model_versions(name)
    if not found:
        typer.echo(
            f"{name} has no versions yet — register one with "
            f"`modelyard models register runs:/RUN_ID/PATH {name}`"
        )
        return
    table = Table(title=f"{name}: {len(found)} version{'s' if len(found) != 1 else ''}")
    for column in ("version", "stage", "aliases", "flavor", "run", "created by", "created"):
        table.add_column(column, no_wrap=True)
    for v in found:
        table.add_row(
            str(v.version),
            Text(v.stage.value, style=STAGE_STYLES.get(v.stage.value, "")),
            ", ".join(v.aliases) or "—",
            v.flavor or "—",
            v.run_id or "—",
            v.created_by,
            format_time(v.creation_time),
        )
    ctx.obj.console().print(table)


@app.command("register")
def register(
    ctx: typer.Context,
    source: str = typer.Argument(..., help="runs:/RUN_ID/PATH, models:/…, or an artifact path."),
    name: str = typer.Argument(..., help="Registered model name (created if needed)."),
    description: str | None = typer.Option(
        None, "--description", "-d", help="What this version is (shown by `models show`)."
    ),
) -> None:
    """Register the model at SOURCE as the next version of NAME.

    Example:
    $ modelyard models register runs:/RUN_ID/model demand -d "gbm on 2024 sales"
    """
    version = ctx.obj.registry().register_model(source, name, description)
    typer.echo(f"registered {name} version {version.version} ({version.flavor or 'no flavor'})")


@app.command("alias")
def alias(
    ctx: typer.Context,
    name: str = typer.Argument(..., help="Registered model name."),
    alias_name: str = typer.Argument(..., metavar="ALIAS", help="The alias, e.g. champion."),
    version: str | None = typer.Argument(None, help="Version to point at (omit with --delete)."),
    delete: bool = typer.Option(False, "--delete", help="Remove the alias."),
) -> None:
    """Point ALIAS (champion, challenger, …) at VERSION, or --delete it."""
    client = ctx.obj.registry()
    if delete:
        client.delete_registered_model_alias(name, alias_name)
        typer.echo(f"deleted alias {name}@{alias_name}")
        return
    if version is None:
        raise typer.BadParameter("give a VERSION, or --delete", param_hint="VERSION")
    client.set_registered_model_alias(name, alias_name, version)
    typer.echo(f"{name}@{alias_name} → version {version}")


@app.command("stage")
def stage(
    ctx: typer.Context,
    name: str = typer.Argument(..., help="Registered model name."),
    version: str = typer.Argument(..., help="Version number."),
    to: str = typer.Argument(..., metavar="STAGE", help="None, Staging, Production, Archived."),
    archive_existing: bool = typer.Option(
        False, "--archive-existing", help="Archive the other versions in STAGE."
    ),
) -> None:
    """Move a version to STAGE (Production follows the promotion policy)."""
    moved = ctx.obj.registry().transition_model_version_stage(name, version, to, archive_existing)
    typer.echo(f"{name} version {moved.version} is now in {moved.stage.value}")


@app.command("approve")
def approve(
    ctx: typer.Context,
    name: str = typer.Argument(..., help="Registered model name."),
    version: str = typer.Argument(..., help="Version number."),
    comment: str | None = typer.Option(
        None, "--comment", "-m", help="Why, kept with the approval."
    ),
) -> None:
    """Approve a version for Production (you must not be its creator)."""
    decision = ctx.obj.registry().approve(name, version, comment)
    typer.echo(f"{decision.actor} approved {name} version {decision.version}")


@app.command("reject")
def reject(
    ctx: typer.Context,
    name: str = typer.Argument(..., help="Registered model name."),
    version: str = typer.Argument(..., help="Version number."),
    reason: str = typer.Option(..., "--reason", "-m", help="What must change."),
) -> None:
    """Reject a version; it cannot enter Production until you approve it."""
    decision = ctx.obj.registry().reject(name, version, reason)
    typer.echo(f"{decision.actor} rejected {name} version {decision.version}: {reason}")


@app.command("card")
def card(
    ctx: typer.Context,
    name: str = typer.Argument(..., help="Registered model name."),
    version: str = typer.Argument(..., help="Version number."),
    set_: list[str] = typer.Option(
        [], "--set", help="FIELD=VALUE to edit (owners: comma-separated); repeatable."
    ),
    fmt: str = typer.Option("markdown", "--format", help="markdown, html or json."),
    output: Path | None = typer.Option(None, "--output", "-o", help="Write to a file."),
) -> None:
    """Show (and with --set, edit) a version's model card."""
    import json

    client = ctx.obj.registry()
    if set_:
        changes: dict[str, object] = {}
        for item in set_:
            field, eq, value = item.partition("=")
            if not eq:
                raise typer.BadParameter(f"{item!r} is not FIELD=VALUE", param_hint="--set")
            field = field.strip()
            changes[field] = (
                [o.strip() for o in value.split(",") if o.strip()] if (field == "owners") else value
            )
        current = client.update_card(name, version, **changes)
    else:
        current = client.get_card(name, version)
    renderers = {
        "markdown": current.to_markdown,
        "html": current.to_html,
        "json": lambda: json.dumps(current.to_dict(), indent=2) + "\n",
    }
    if fmt not in renderers:
        raise typer.BadParameter("use markdown, html or json", param_hint="--format")
    text = renderers[fmt]()
    if output is not None:
        output.write_text(text, encoding="utf-8")
        typer.echo(f"wrote {output}")
    else:
        typer.echo(text, nl=False)


@app.command("diff")
def diff(
    ctx: typer.Context,
    name: str = typer.Argument(..., help="Registered model name."),
    left: str = typer.Argument(..., metavar="V1", help="A version number."),
    right: str = typer.Argument(..., metavar="V2", help="The version to compare it with."),
    only_changes: bool = typer.Option(False, "--changes", help="Only rows that differ."),
) -> None:
    """Compare two versions: params, metrics, training data and signature (≠ marks changes)."""
    from rich.table import Table
    from rich.text import Text

    from modelyard.registry.diff import version_diff
    from modelyard.registry.uris import check_version

    rows = version_diff(ctx.obj.registry(), name, check_version(left), check_version(right))
    table = Table(title=f"{name}: version {left} vs {right}", caption="≠ marks rows that differ")
    for column in ("≠", "section", "key", f"v{left}", f"v{right}"):
        table.add_column(column, no_wrap=column != "key")
    for row in rows:
        if only_changes and not row.differs:
            continue
        style = DIFF_STYLE if row.differs else ""
        table.add_row(
            Text("≠" if row.differs else "", style=style),
            row.section,
            Text(row.key, style=style),
            Text(row.left if row.left is not None else "—", style=style),
            Text(row.right if row.right is not None else "—", style=style),
        )
    ctx.obj.console().print(table)
