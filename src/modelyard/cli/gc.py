"""``modelyard gc``: purge deleted runs for good, then remove blobs nothing refers to.

Deleting a run only hides it; ``gc`` removes its metadata and artifact paths, then deletes
every stored blob that no artifact path references and that is older than the grace
period (a blob younger than that may belong to a write still in progress).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import typer

if TYPE_CHECKING:
    from rich.console import Console

    from modelyard.tracking.client import TrackingClient


def _plural(n: int, word: str) -> str:
    return f"{n:,} {word}{'' if n == 1 else 's'}"


def gc(
    ctx: typer.Context,
    older_than: str = typer.Option(
        "0",
        "--older-than",
        metavar="DURATION",
        help="Only purge runs deleted at least this long ago, e.g. 7d.",
    ),
    grace: str = typer.Option(
        "1h",
        "--grace",
        metavar="DURATION",
        help="Keep blobs younger than this (writes may be in flight); 0 = none.",
    ),
    dry_run: bool = typer.Option(
        False, "--dry-run", help="List the deleted runs that would be purged; change nothing."
    ),
) -> None:
    """Purge deleted runs and unreferenced artifact blobs; report the space freed."""
    from rich.filesize import decimal

    from modelyard.durations import parse_duration

    older_than_ms = round(parse_duration(older_than, "--older-than").total_seconds() * 1000)
    grace_s = parse_duration(grace, "--grace").total_seconds()
    client = ctx.obj.client()
    console = ctx.obj.console()
    if dry_run:
        _preview(client, older_than_ms, console)
        return
    with console.status("purging deleted runs and collecting unreferenced blobs…"):
        report = client.gc(older_than_ms=older_than_ms or None, grace_s=grace_s)
    human, exact = decimal(report.bytes_freed), _plural(report.bytes_freed, "byte")
    console.print(
        f"[green]✓[/] purged {_plural(report.runs_purged, 'run')}, "
        f"removed {_plural(report.blobs_removed, 'blob')}, "
        f"freed [bold]{human}[/]" + ("" if human == exact else f" ({exact})")
    )


def _preview(client: TrackingClient, older_than_ms: int, console: Console) -> None:
    from rich.table import Table
    from rich.text import Text

    from modelyard.cli.experiments import format_time

    infos = client.store.list_deleted_runs(older_than_ms or None)
    table = Table(title=f"would purge {_plural(len(infos), 'deleted run')}")
    table.add_column("run id", no_wrap=True, min_width=32)
    table.add_column("experiment", justify="right")
    table.add_column("name")
    table.add_column("started", no_wrap=True)
    for info in infos:
        table.add_row(
            info.run_id, info.experiment_id, Text(info.run_name or ""), format_time(info.start_time)
        )
    console.print(table)
    console.print(
        "[dim]dry run: nothing changed. Blobs are counted when collected, since other "
        "runs may share them.[/]"
    )
