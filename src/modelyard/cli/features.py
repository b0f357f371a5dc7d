"""``modelyard features …``: apply, list, show and diff definitions; materialise; read online
values; build training sets; check training-serving skew.

    modelyard features apply features.py
    modelyard features diff features.py          # what apply would change
    modelyard features materialize               # incremental, up to now
    modelyard features get --service demand --entity store_id=7
    modelyard features training-set orders.parquet --service demand --out train.parquet
    modelyard features skew --service demand --sample 1000
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer

if TYPE_CHECKING:
    from modelyard.features.client import FeatureStore

app = typer.Typer(
    help="Define features once; build point-in-time-correct training sets; serve them online.",
    no_args_is_help=True,
)


def _time(us: int | None) -> str:
    if us is None:
        return "—"
    from datetime import UTC, datetime

    return datetime.fromtimestamp(us / 1e6, UTC).strftime("%Y-%m-%d %H:%M:%S")


@app.command("apply")
def apply(
    ctx: typer.Context,
    path: Path = typer.Argument(Path("features.py"), help="The definitions file."),
) -> None:
    """Register the definitions in PATH; changed definitions or code get a new version."""
    from rich.table import Table

    changes = ctx.obj.feature_store().apply_file(path)
    table = Table(title=f"applied {path}")
    for column in ("kind", "name", "action", "version"):
        table.add_column(column)
    colours = {"created": "green", "updated": "yellow", "unchanged": "dim"}
    for c in changes:
        version = f"{c.previous_version} → {c.version}" if c.previous_version else str(c.version)
        table.add_row(c.kind, c.name, f"[{colours[c.action]}]{c.action}[/]", version)
    ctx.obj.console().print(table)


@app.command("list")
def list_definitions(
    ctx: typer.Context,
    kind: str | None = typer.Option(
        None, "--kind", help="entity, feature_view, on_demand_feature_view or feature_service."
    ),
) -> None:
    """List registered definitions (latest versions)."""
    from rich.table import Table

    from modelyard.cli.experiments import format_time

    records = ctx.obj.feature_store().registry.list(kind)
    if not records:
        what = f"{kind} definitions" if kind else "feature definitions"
        typer.echo(f"no {what} yet — register them with `modelyard features apply features.py`")
        return
    table = Table(title=f"{len(records)} definition{'s' if len(records) != 1 else ''}")
    for column in ("kind", "name", "version", "digest", "applied", "by"):
        table.add_column(column, no_wrap=True)
    for r in records:
        table.add_row(
            r.kind, r.name, str(r.version), r.digest[:12], format_time(r.created_at), r.created_by
        )
    ctx.obj.console().print(table)


@app.command("show")
def show(
    ctx: typer.Context,
    name: str = typer.Argument(..., help="A definition's name."),
    version: int | None = typer.Option(None, "--version", "-v", help="Default: the latest."),
    kind: str | None = typer.Option(None, "--kind", help="When several kinds share the name."),
) -> None:
    """Print a definition: its spec, its code, its version and digest."""
    from rich.syntax import Syntax

    r = ctx.obj.feature_store().registry.get(name, kind=kind, version=version)
    console = ctx.obj.console()
    console.print(f"[bold]{r.kind} {r.name}[/] version {r.version}  digest {r.digest}")
    if r.origin:
        console.print(f"applied from {r.origin}")
    console.print_json(json.dumps(r.spec, sort_keys=True))
    if r.code:
        lexer = "sql" if r.code.lstrip().upper().startswith(("SELECT", "WITH")) else "python"
        console.print(Syntax(r.code, lexer))


@app.command("diff")
def diff(
    ctx: typer.Context,
    target: str = typer.Argument(..., help="A definitions file, or a definition's name."),
    old: int | None = typer.Option(None, "--from", help="Older version (name mode)."),
    new: int | None = typer.Option(None, "--to", help="Newer version (name mode)."),
) -> None:
    """What applying a file would change, or what changed between two versions."""
    from modelyard.features.catalog import load_definitions_file

    store = ctx.obj.feature_store()
    console = ctx.obj.console()
    if target.endswith(".py") or Path(target).is_file():
        diffs = store.registry.diff(load_definitions_file(target))
    else:
        diffs = [store.registry.diff_versions(target, old=old, new=new)]
    if not any(d.changed for d in diffs):
        console.print("no changes")
        return
    for d in diffs:
        if d.old_version is None:
            console.print(f"[green]+ {d.kind} {d.name}[/] (new)")
            continue
        to = f"v{d.new_version}" if d.new_version else "local"
        console.print(f"[yellow]~ {d.kind} {d.name}[/] v{d.old_version} → {to}")
        for path, before, after in d.changes:
            console.print(f"    {path}: {before!r} → {after!r}", markup=False, highlight=False)
        if d.code_diff:
            console.print(d.code_diff, markup=False, highlight=False)


@app.command("materialize")
def materialize(
    ctx: typer.Context,
    end: str | None = typer.Option(None, "--end", help="Up to this time (default: now)."),
    start: str | None = typer.Option(
        None, "--start", help="From this time; without it, continue from each view's watermark."
    ),
    views: list[str] = typer.Option([], "--view", help="Only these views (repeatable)."),
    chunk_rows: int | None = typer.Option(
        None, "--chunk-rows", help="Rows per write (default: ~4M values a chunk)."
    ),
) -> None:
    """Copy the latest feature values into the online store (incremental by default).

    Examples:
    $ modelyard features materialize                  # each view from its watermark to now
    $ modelyard features materialize --start 2024-01-01 --end 2024-02-01 --view sales_daily
    """
    from rich.table import Table

    store = ctx.obj.feature_store()
    if start is not None:
        if end is None:
            raise typer.BadParameter("--start needs --end", param_hint="--end")
        reports = store.materialize(start, end, views or None, chunk_rows=chunk_rows)
    else:
        reports = store.materialize_incremental(end, views or None, chunk_rows=chunk_rows)
    table = Table(title="materialized")
    for column in ("view", "rows", "from", "to", "seconds"):
        table.add_column(column, no_wrap=True)
    for r in reports:
        table.add_row(r.view, str(r.rows), _time(r.start_us), _time(r.end_us), f"{r.seconds:.2f}")
    ctx.obj.console().print(table)


def _parse_entities(
    store: FeatureStore, specs: list[str], features: Any, service: Any
) -> list[dict[str, Any]]:
    selection = store.catalog().select(features, service)
    dtypes = {k: t for v, _ in selection.views for k, t in v.key_dtypes.items()}
    rows = []
    for spec in specs:
        row: dict[str, Any] = {}
        for part in spec.split(","):
            key, sep, value = part.partition("=")
            if not sep:
                raise typer.BadParameter(f"{part!r} is not key=value", param_hint="--entity")
            if dtypes.get(key.strip()) == "int64":
                try:
                    row[key.strip()] = int(value)
                except ValueError:
                    raise typer.BadParameter(
                        f"join key {key.strip()!r} is an integer, got {value!r}",
                        param_hint="--entity",
                    ) from None
            else:
                row[key.strip()] = value
        rows.append(row)
    return rows


@app.command("get")
def get(
    ctx: typer.Context,
    entity: list[str] = typer.Option(
        ..., "--entity", "-e", help="Entity keys, e.g. store_id=7 or store_id=7,sku=A1 (repeat)."
    ),
    service: str | None = typer.Option(None, "--service", "-s", help="A feature service."),
    feature: list[str] = typer.Option([], "--feature", "-f", help="view:feature (repeatable)."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON (values and statuses)."),
) -> None:
    """Read online feature values, with a status per value (present, missing, expired)."""
    from rich.table import Table

    store = ctx.obj.feature_store()
    features = feature or None
    rows = _parse_entities(store, entity, features, service)
    result = store.get_online_features(rows, features, service)
    if as_json:
        payload = {"values": result.to_dict(), "statuses": result.status_dict()}
        typer.echo(json.dumps(payload, default=str))
        return
    table = Table()
    names = list(result.columns)
    for name in names:
        table.add_column(name, no_wrap=True)
    for i in range(len(result)):
        cells = []
        for name in names:
            value = result.columns[name][i]
            status = result.statuses.get(name)
            text = "—" if value is None else str(value)
            if status is not None and status[i] != "present":
                text = f"[red]{status[i]}[/]"
            cells.append(text)
        table.add_row(*cells)
    ctx.obj.console().print(table)


@app.command("training-set")
def training_set(
    ctx: typer.Context,
    entities: Path = typer.Argument(..., help="Entity rows: a Parquet or CSV file."),
    out: Path = typer.Option(..., "--out", "-o", help="Where to write the set (.parquet/.csv)."),
    service: str | None = typer.Option(None, "--service", "-s", help="A feature service."),
    feature: list[str] = typer.Option([], "--feature", "-f", help="view:feature (repeatable)."),
    timestamp_column: str = typer.Option(
        "event_timestamp", "--timestamp-column", help="The entity rows' time column."
    ),
    exclude_created_after: bool = typer.Option(
        False, "--exclude-created-after", help="Ignore values created after each row's time."
    ),
    name: str = typer.Option("training_set", "--name", help="A name for the recorded set."),
) -> None:
    """Build a point-in-time-correct training set for the entity rows in a file.

    Each row gets the feature values as they were at its time, never later ones.

    Example:
    $ modelyard features training-set orders.parquet -s demand_model -o train.parquet
    """
    import pandas as pd

    from modelyard.errors import InvalidParameter

    if not entities.is_file():
        raise InvalidParameter(f"entity file {str(entities)!r} does not exist", field="entities")
    if entities.suffix.lower() == ".csv":
        frame = pd.read_csv(entities)
        if timestamp_column in frame.columns:
            frame[timestamp_column] = pd.to_datetime(frame[timestamp_column], utc=True)
    else:
        frame = pd.read_parquet(entities)
    ts = ctx.obj.feature_store().get_training_set(
        frame,
        feature or None,
        service,
        timestamp_column=timestamp_column,
        exclude_created_after=exclude_created_after,
        name=name,
    )
    if out.suffix.lower() == ".csv":
        ts.frame.to_csv(out, index=False)
    else:
        ts.frame.to_parquet(out, index=False)
    ctx.obj.console().print(
        f"wrote {len(ts.frame)} rows × {len(ts.frame.columns)} columns to {out} "
        f"(training set {ts.training_set_id})"
    )


@app.command("skew")
def skew(
    ctx: typer.Context,
    service: str = typer.Option(..., "--service", "-s", help="The feature service to check."),
    sample: int = typer.Option(1000, "--sample", help="How many entities to compare."),
) -> None:
    """Compare online values with offline point-in-time values; exit 1 on any mismatch."""
    from rich.table import Table

    report = ctx.obj.feature_store().check_skew(service, sample)
    console = ctx.obj.console()
    table = Table(title=f"skew of {service}: {report.sampled} entities sampled")
    for column in ("feature", "compared", "mismatches"):
        table.add_column(column, no_wrap=True)
    for ref, count in report.by_feature.items():
        style = "red" if count else "green"
        table.add_row(ref, str(report.compared.get(ref, 0)), f"[{style}]{count}[/]")
    console.print(table)
    for m in report.examples:
        console.print(
            f"  {m.feature} {m.entity}: offline {m.offline!r} ≠ online {m.online!r}",
            markup=False,
            highlight=False,
        )
    for view in report.not_materialized:
        console.print(f"[yellow]view {view} was never materialised[/]")
    if not report.ok:
        raise typer.Exit(1)
