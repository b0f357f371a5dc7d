"""``modelyard data …``: version datasets, restore them, compare them, check contracts.

``snapshot PATH --name sales`` records a version and writes ``PATH.dataset.yaml`` (commit
it; the data goes to ``.gitignore``); ``pull POINTER`` restores exactly those bytes;
``check PATH --contract C.yaml`` prints one row per expectation and exits 1 when a
blocking check fails (2 when it cannot check: a malformed contract, a missing file or
package).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer

from modelyard.cli.experiments import format_time

if TYPE_CHECKING:
    from rich.console import Console

    from modelyard.data.client import DataClient
    from modelyard.data.contract_checks import ContractResult
    from modelyard.data.contracts.result import ValidationResult
    from modelyard.data.entities import DatasetVersion

app = typer.Typer(
    help="Version datasets (snapshot, pull, list, show, diff) and check data contracts.",
    no_args_is_help=True,
)

EXIT_FAILED = 1  # the contract does not hold; everything else that fails exits 2


def _client(ctx: typer.Context) -> DataClient:
    from modelyard.data.client import DataClient

    return DataClient.from_settings(ctx.obj.settings())


def _size(n: int) -> str:
    from rich.filesize import decimal

    return decimal(n)


@app.command("snapshot")
def snapshot(
    ctx: typer.Context,
    path: Path = typer.Argument(..., help="A CSV or Parquet file, or a folder of them."),
    name: str = typer.Option(..., "--name", "-n", help="Dataset name, e.g. sales."),
    message: str | None = typer.Option(None, "--message", "-m", help="A description."),
    no_pointer: bool = typer.Option(False, "--no-pointer", help="Do not write PATH.dataset.yaml."),
    no_gitignore: bool = typer.Option(
        False, "--no-gitignore", help="Do not add PATH to the .gitignore beside the pointer."
    ),
) -> None:
    """Record PATH as the next version of a dataset (or find the identical one).

    Example:
    $ modelyard data snapshot data/sales.parquet --name sales -m "through March"
    $ git add data/sales.parquet.dataset.yaml     # the pointer; the data stays out of git
    """
    from modelyard.data.pointer import pointer_path_for

    client = _client(ctx)
    console = ctx.obj.console()
    with console.status(f"hashing and profiling {path}…"):
        before = {v.ref for v in _versions_or_empty(client, name)}
        version = client.snapshot(
            path,
            name,
            description=message,
            pointer=not no_pointer,
            gitignore=not no_gitignore,
        )
    verb = "already recorded as" if version.ref in before else "recorded"
    console.print(
        f"[green]✓[/] {verb} [bold]{version.ref}[/]: {version.num_rows:,} rows × "
        f"{len(version.schema)} columns, {_size(version.num_bytes)}, digest {version.digest[:12]}"
    )
    if not no_pointer:
        pointer = pointer_path_for(path)
        console.print(
            f"  pointer: {pointer} (commit it; restore with `modelyard data pull {pointer}`)"
        )


def _versions_or_empty(client: DataClient, name: str) -> list[DatasetVersion]:
    from modelyard.errors import NotFound

    try:
        return client.list_versions(name)
    except NotFound:
        return []


@app.command("pull")
def pull(
    ctx: typer.Context,
    pointer: Path = typer.Argument(..., help="A .dataset.yaml pointer file (or its data path)."),
    to: Path | None = typer.Option(None, "--to", help="Restore here instead of beside it."),
) -> None:
    """Restore exactly the data a pointer file names, from the artifact store."""
    report = _client(ctx).pull(pointer, to)
    console = ctx.obj.console()
    console.print(
        f"[green]✓[/] {report.path}: {len(report.written)} file(s) restored, "
        f"{len(report.unchanged)} already up to date"
    )
    if report.extra:
        console.print(
            f"[yellow]![/] {len(report.extra)} file(s) in the folder are not part of the "
            f"version: {', '.join(report.extra[:5])}{' …' if len(report.extra) > 5 else ''}"
        )


@app.command("list")
def list_versions(
    ctx: typer.Context,
    name: str | None = typer.Argument(None, help="Only this dataset's versions."),
) -> None:
    """List dataset versions, newest first."""
    from rich.table import Table

    versions = _client(ctx).list_versions(name)
    if not versions:
        typer.echo(
            "no dataset versions yet — record one with `modelyard data snapshot PATH --name NAME`"
        )
        return
    table = Table(title=f"{len(versions)} dataset version{'s' if len(versions) != 1 else ''}")
    for column in ("version", "rows", "columns", "size", "digest", "created", "source"):
        table.add_column(column, no_wrap=column in ("version", "digest"))
    for v in versions:
        table.add_row(
            v.ref,
            f"{v.num_rows:,}",
            str(len(v.schema)),
            _size(v.num_bytes),
            v.digest[:12],
            format_time(v.created_at),
            v.source,
        )
    ctx.obj.console().print(table)


@app.command("show")
def show(
    ctx: typer.Context,
    ref: str = typer.Argument(..., help="NAME, NAME@VERSION or NAME@<digest prefix>."),
    as_json: bool = typer.Option(False, "--json", help="Print the version as JSON."),
) -> None:
    """Show a version: schema, the profile of every column, the contract checks made on it."""
    from dataclasses import asdict

    from rich.table import Table

    client = _client(ctx)
    version = client.resolve(ref)
    checks = client.contract_results(version)
    console = ctx.obj.console()
    if as_json:
        body = {**asdict(version), "contract_results": [c.to_dict() for c in checks]}
        typer.echo(json.dumps(body, indent=2, default=str))
        return
    console.print(
        f"[bold]{version.ref}[/]  {version.num_rows:,} rows, {_size(version.num_bytes)}, "
        f"{version.format}, digest {version.digest}\n  from {version.source}, "
        f"{format_time(version.created_at)} by {version.created_by}"
    )
    if version.description:
        console.print(f"  {version.description}")
    table = Table()
    for heading in ("column", "type", "nulls", "distinct", "min", "max", "mean", "std", "top"):
        table.add_column(heading, overflow="fold")
    for column in version.schema:
        stats = version.profile.get("columns", {}).get(column["name"], {})
        top = ", ".join(f"{v}({c:,})" for v, c in (stats.get("top") or [])[:3])
        table.add_row(
            column["name"],
            column["type"],
            f"{stats.get('null_fraction', 0):.1%}",
            _fmt(stats.get("distinct")),
            _fmt(stats.get("min")),
            _fmt(stats.get("max")),
            _fmt(stats.get("mean")),
            _fmt(stats.get("std")),
            top,
        )
    console.print(table)
    _print_contract_results(checks, console)


def _print_contract_results(checks: list[ContractResult], console: Console) -> None:
    """Newest first: when, which contract (and digest), the verdict and its counts."""
    from rich.table import Table
    from rich.text import Text

    if not checks:
        console.print(
            "no contract checks recorded — `modelyard data check NAME@VERSION -c C.yaml`",
            style="dim",
        )
        return
    table = Table(title="contract checks")
    for heading in ("checked", "by", "contract", "digest", "verdict", "failed", "warnings"):
        table.add_column(heading, overflow="fold")
    for c in checks:
        verdict = Text("passed", "green") if c.passed else Text("FAILED", "bold red")
        table.add_row(
            format_time(c.checked_at),
            c.checked_by,
            c.contract,
            c.contract_digest[:12],
            verdict,
            f"{c.failed}/{c.checks}",
            str(c.warnings),
        )
    console.print(table)


def _fmt(value: Any) -> str:
    if value is None:
        return "—"
    if isinstance(value, float):
        return f"{value:.6g}"
    if isinstance(value, int):
        return f"{value:,}"
    return str(value)


@app.command("diff")
def diff(
    ctx: typer.Context,
    a: str = typer.Argument(..., help="The older version, e.g. sales@2."),
    b: str = typer.Argument(..., help="The newer version, e.g. sales@3."),
) -> None:
    """Schema and profile differences between two versions (PSI per column)."""
    from rich.table import Table

    result = _client(ctx).diff(a, b)
    console = ctx.obj.console()
    rows = f"rows {result.rows[0]:,} → {result.rows[1]:,}"
    if result.same_content:
        console.print(f"{result.a} and {result.b} hold the same rows ({rows})")
    else:
        console.print(f"{result.a} → {result.b}: {rows}")
    if not result.changes:
        console.print("no schema or profile differences")
        return
    table = Table()
    for column in ("column", "change", "before", "after", "PSI"):
        table.add_column(column, overflow="fold")
    for change in result.changes:
        table.add_row(
            change.column,
            change.change,
            _pairs(change.before),
            _pairs(change.after),
            "—" if change.psi is None else f"{change.psi:.3f}",
        )
    console.print(table)


def _pairs(values: dict[str, Any]) -> str:
    return ", ".join(f"{k}={_fmt(v)}" for k, v in values.items()) or "—"


@app.command("check")
def check(
    ctx: typer.Context,
    data: str = typer.Argument(..., help="A CSV/Parquet path or a dataset version (sales@3)."),
    contract: Path = typer.Option(..., "--contract", "-c", help="The contract YAML file."),
    sample: int = typer.Option(3, "--sample", min=0, help="Offending rows shown per check."),
    as_json: bool = typer.Option(False, "--json", help="Print the result as JSON."),
) -> None:
    """Validate data against a contract: exit 0 when it holds, 1 when it does not, 2 when it
    cannot be checked (a malformed contract, a missing file, a missing extra). A check on a
    dataset version (sales@3) is recorded, passed or failed: `modelyard data show` lists it."""
    from modelyard.data.client import looks_like_path
    from modelyard.data.contracts.spec import Contract

    # A bad contract, a missing file or package raises: the root command prints it, exit 2.
    spec = Contract.from_yaml(contract)
    # A file checked against a contract without reference versions needs no store.
    needs_store = not looks_like_path(data) or any(
        column.distribution is not None for column in spec.columns.values()
    )
    if needs_store:
        result = _client(ctx).check(data, spec, sample=sample)
    else:
        result = spec.validate(data, sample=sample)
    if as_json:
        typer.echo(json.dumps(result.to_dict(), indent=2, default=str))
    else:
        print_result(result, ctx.obj.console())
    if not result.passed:
        raise typer.Exit(EXIT_FAILED)


def print_result(result: ValidationResult, console: Console) -> None:
    """One row per expectation; failures show the offending-row count and a sample."""
    from rich.table import Table
    from rich.text import Text

    table = Table(title=f"contract {result.contract} on {result.data}")
    for column in ("", "check", "expected", "offending rows", "observed / sample"):
        table.add_column(column, overflow="fold")
    for c in result.checks:
        if c.passed:
            mark = Text("✓", style="green")
        elif c.skipped:
            mark = Text("–", style="yellow")
        else:
            mark = Text("✗" if c.blocking else "!", style="red" if c.blocking else "yellow")
        count = "" if c.failed_rows is None else f"{c.failed_rows:,}"
        if c.failed_rows and c.total_rows:
            count += f" ({c.failed_fraction:.2%})"
        detail = (c.skipped and f"skipped: {c.skipped}") or ""
        if not detail and c.sample:
            detail = "; ".join(_sample_text(s) for s in c.sample)
        elif not detail and c.observed is not None:
            detail = str(c.observed)
        table.add_row(mark, c.check, c.expected, count, Text(detail))
    console.print(table)
    style = "green" if result.passed else "bold red"
    console.print(Text(result.summary() + f" in {result.duration_s:.2f}s", style=style))


def _sample_text(sample: dict[str, Any]) -> str:
    fields = ", ".join(
        f"{k}={v:.6g}" if isinstance(v, float) else f"{k}={v!r}"
        for k, v in sample.items()
        if k != "row"
    )
    return f"row {sample['row']}: {fields}"
