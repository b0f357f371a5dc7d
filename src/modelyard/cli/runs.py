"""``modelyard runs …``: list, show, search, compare, delete and restore runs.

Search uses MLflow's grammar (``--filter "metrics.rmse < 10 and params.model = 'gbm'"``,
``--order-by "metrics.rmse ASC"``). ``compare`` marks every row whose values differ with
``≠`` (and colour), so differences stand out in a pipe or a log as well as a terminal.
"""

from __future__ import annotations

import json
import math
from collections import Counter
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import typer

from modelyard.cli.experiments import format_time, resolve_experiment

if TYPE_CHECKING:
    from rich.table import Table
    from rich.text import Text
    from rich.tree import Tree

    from modelyard.tracking.client import TrackingClient
    from modelyard.tracking.entities import Run

app = typer.Typer(help="Inspect, search, compare, delete and restore runs.", no_args_is_help=True)

#: Tags written by modelyard itself (and their MLflow twins): hidden unless --all-tags.
SYSTEM_TAG_PREFIXES = ("modelyard.", "mlflow.")
KEY_METRIC_COLUMNS = 4
ARTIFACTS_PER_FOLDER = 50
DIFF_STYLE = "bold yellow"
PAGE_SIZE = 1000


def format_duration(start_ms: int | None, end_ms: int | None) -> str:
    """A run's wall time, human-sized: ``850ms``, ``12.3s``, ``4m 05s``, ``2h 03m``, ``3d 4h``."""
    if start_ms is None or end_ms is None:
        return "—"
    seconds = max(end_ms - start_ms, 0) / 1000
    if seconds < 1:
        return f"{seconds * 1000:.0f}ms"
    if seconds < 60:
        return f"{seconds:.1f}s"
    minutes, secs = divmod(int(seconds), 60)
    if minutes < 60:
        return f"{minutes}m {secs:02d}s"
    hours, minutes = divmod(minutes, 60)
    if hours < 24:
        return f"{hours}h {minutes:02d}m"
    days, hours = divmod(hours, 24)
    return f"{days}d {hours}h"


def format_metric(value: float | None) -> str:
    if value is None:
        return "—"
    if math.isnan(value):
        return "nan"
    return f"{value:.6g}"


def _status_text(status: str) -> Text:
    from rich.text import Text

    colours = {"FINISHED": "green", "RUNNING": "cyan", "FAILED": "red", "KILLED": "magenta"}
    return Text(str(status), style=colours.get(str(status), ""))


def _experiment_ids(client: TrackingClient, refs: Sequence[str]) -> list[str]:
    """Ids of the named experiments, or of every active experiment when none is named."""
    if refs:
        return [resolve_experiment(client, ref).experiment_id for ref in refs]
    ids: list[str] = []
    token: str | None = None
    while True:
        page = client.search_experiments(max_results=PAGE_SIZE, page_token=token)
        ids.extend(e.experiment_id for e in page.items)
        token = page.next_page_token
        if not token:
            return ids


def _search(
    client: TrackingClient,
    experiment_ids: list[str],
    filter_string: str | None,
    order_by: Sequence[str] | None,
    limit: int,
) -> list[Run]:
    """Up to ``limit`` runs, paging through the store."""
    runs: list[Run] = []
    token: str | None = None
    while len(runs) < limit:
        page = client.search_runs(
            experiment_ids,
            filter_string,
            max_results=min(limit - len(runs), PAGE_SIZE),
            order_by=list(order_by) if order_by else None,
            page_token=token,
        )
        runs.extend(page.items)
        token = page.next_page_token
        if not token:
            break
    return runs[:limit]


def _check_max(value: int) -> int:
    if value < 1:
        raise typer.BadParameter(f"must be at least 1, got {value}", param_hint="--max")
    return value


def runs_table(runs: Sequence[Run], experiment_names: dict[str, str] | None = None) -> Table:
    """Run id, name, status, start, duration and the metrics most runs share."""
    from rich.table import Table
    from rich.text import Text

    counts = Counter(key for run in runs for key in run.data.metrics)
    keys = sorted(counts, key=lambda k: (-counts[k], k))
    shown, hidden = sorted(keys[:KEY_METRIC_COLUMNS]), len(keys) - KEY_METRIC_COLUMNS
    caption = f"+{hidden} more metrics: modelyard runs show RUN_ID" if hidden > 0 else None
    table = Table(title=f"{len(runs)} run{'s' if len(runs) != 1 else ''}", caption=caption)
    table.add_column("run id", no_wrap=True, min_width=32)
    if experiment_names:
        table.add_column("experiment")
    table.add_column("name")
    table.add_column("status")
    table.add_column("start", no_wrap=True)
    table.add_column("duration", justify="right", no_wrap=True)
    for key in shown:
        table.add_column(key, justify="right")
    for run in runs:
        info = run.info
        row: list[Any] = [info.run_id]
        if experiment_names:
            row.append(Text(experiment_names.get(info.experiment_id, info.experiment_id)))
        row += [
            Text(info.run_name or ""),
            _status_text(info.status),
            format_time(info.start_time),
            format_duration(info.start_time, info.end_time),
        ]
        row += [format_metric(run.data.metrics.get(key)) for key in shown]
        table.add_row(*row)
    return table


@app.command("list")
def list_runs(
    ctx: typer.Context,
    experiment: str | None = typer.Option(
        None, "--experiment", "-e", metavar="NAME_OR_ID", help="Only this experiment."
    ),
    max_results: int = typer.Option(
        50, "--max", "-n", metavar="N", help="Show at most N runs, newest first."
    ),
) -> None:
    """List the newest runs (of one experiment, or of all active ones)."""

    client = ctx.obj.client()
    ids = _experiment_ids(client, [experiment] if experiment else [])
    runs = _search(client, ids, None, None, _check_max(max_results))
    if not runs:
        where = f" in experiment {experiment!r}" if experiment else ""
        typer.echo(f"no runs{where} — log one from Python with `modelyard.start_run()`")
        return
    names = None
    if not experiment:
        names = {e: client.get_experiment(e).name for e in {r.info.experiment_id for r in runs}}
    ctx.obj.console().print(runs_table(runs, names))


@app.command("search")
def search(
    ctx: typer.Context,
    experiment: list[str] = typer.Option(
        [], "--experiment", "-e", metavar="NAME_OR_ID", help="Repeat for several (default: all)."
    ),
    filter_string: str | None = typer.Option(
        None,
        "--filter",
        "-f",
        metavar="FILTER",
        help="e.g. \"metrics.rmse < 10 and params.model = 'gbm'\"",
    ),
    order_by: list[str] = typer.Option(
        [], "--order-by", "-o", metavar="ORDER", help='e.g. "metrics.rmse ASC"; repeat for ties.'
    ),
    max_results: int = typer.Option(100, "--max", "-n", metavar="N", help="Return at most N runs."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON (one array) instead."),
) -> None:
    """Search runs with MLflow's filter and order-by grammar.

    Examples:
    $ modelyard runs search -e retail-demand -f "metrics.rmse < 0.5 and params.model = 'gbm'"
    $ modelyard runs search -o "metrics.rmse ASC" -n 5 --json
    """
    client = ctx.obj.client()
    ids = _experiment_ids(client, experiment)
    runs = _search(client, ids, filter_string, order_by, _check_max(max_results))
    if as_json:
        typer.echo(json.dumps([_run_dict(r) for r in runs], indent=2, default=str))
        return
    if not runs:
        typer.echo(
            "no runs match — loosen --filter, or list the newest with `modelyard runs list`"
            if filter_string
            else "no runs — log one from Python with `modelyard.start_run()`"
        )
        return

    names = {e: client.get_experiment(e).name for e in {r.info.experiment_id for r in runs}}
    ctx.obj.console().print(runs_table(runs, names if len(ids) > 1 else None))


def _run_dict(run: Run) -> dict[str, Any]:
    """A run as JSON-ready data; NaN metrics become null, since JSON has no NaN."""
    info = run.info
    return {
        "run_id": info.run_id,
        "experiment_id": info.experiment_id,
        "run_name": info.run_name,
        "status": str(info.status),
        "start_time": info.start_time,
        "end_time": info.end_time,
        "lifecycle_stage": str(info.lifecycle_stage),
        "artifact_uri": info.artifact_uri,
        "metrics": {k: None if math.isnan(v) else v for k, v in run.data.metrics.items()},
        "params": dict(run.data.params),
        "tags": dict(run.data.tags),
    }


@app.command("show")
def show(
    ctx: typer.Context,
    run_id: str = typer.Argument(..., metavar="RUN_ID", help="The run's id."),
    all_tags: bool = typer.Option(False, "--all-tags", help="Also show system tags (dimmed)."),
) -> None:
    """Everything about one run: info, params, metrics, tags, inputs and artifacts."""
    from rich.panel import Panel
    from rich.table import Table
    from rich.text import Text
    from rich.tree import Tree

    client = ctx.obj.client()
    run = client.get_run(run_id)
    info, data = run.info, run.data
    console = ctx.obj.console()

    about = Table.grid(padding=(0, 2))
    about.add_column(style="bold")
    about.add_column()
    experiment = client.get_experiment(info.experiment_id)
    for label, value in (
        ("run id", info.run_id),
        ("name", info.run_name or ""),
        ("experiment", f"{experiment.name} (id {experiment.experiment_id})"),
        ("user", info.user_id),
        ("started", format_time(info.start_time)),
        ("ended", format_time(info.end_time)),
        ("duration", format_duration(info.start_time, info.end_time)),
        ("stage", str(info.lifecycle_stage)),
        ("parent run", info.parent_run_id or "—"),
        ("artifacts", info.artifact_uri),
    ):
        about.add_row(label, Text(value))
    about.add_row("status", _status_text(info.status))
    console.print(Panel(about, title=Text(f"run {info.run_name or info.run_id}"), expand=False))

    params = Table(title=f"params ({len(data.params)})", title_justify="left")
    params.add_column("key")
    params.add_column("value", overflow="fold")
    for key in sorted(data.params):
        params.add_row(Text(key), Text(data.params[key]))

    metrics = Table(title=f"metrics ({len(data.metrics)}, latest)", title_justify="left")
    metrics.add_column("key")
    metrics.add_column("value", justify="right")
    metrics.add_column("step", justify="right")
    for key in sorted(data.metrics):
        point = data.metric_points.get(key)
        metrics.add_row(
            Text(key), format_metric(data.metrics[key]), str(point.step) if point else ""
        )
    console.print(params, metrics)

    user = {k: v for k, v in data.tags.items() if not k.startswith(SYSTEM_TAG_PREFIXES)}
    system = {k: v for k, v in data.tags.items() if k.startswith(SYSTEM_TAG_PREFIXES)}
    tags = Table(title=f"tags ({len(user)})", title_justify="left")
    tags.add_column("key")
    tags.add_column("value", overflow="fold")
    for key in sorted(user):
        tags.add_row(Text(key), Text(user[key]))
    if all_tags:
        for key in sorted(system):
            tags.add_row(Text(key, style="dim"), Text(system[key], style="dim"))
    console.print(tags)
    if system and not all_tags:
        console.print(f"[dim]{len(system)} system tags hidden: --all-tags shows them[/]")

    if run.inputs:
        inputs = Table(title=f"inputs ({len(run.inputs)})", title_justify="left")
        for column in ("name", "context", "digest", "source", "rows × cols"):
            inputs.add_column(column)
        for item in run.inputs:
            inputs.add_row(
                Text(item.name),
                item.context,
                item.digest[:12],
                Text(item.source or item.source_type),
                _shape(item.profile),
            )
        console.print(inputs)

    tree = Tree("[bold]artifacts[/]")
    _add_artifacts(client, info.run_id, tree, None)
    console.print(tree if tree.children else Text("artifacts: none", style="dim"))


def _shape(profile: str | None) -> str:
    try:
        described = json.loads(profile or "")
        return f"{described['num_rows']:,} × {described['num_columns']}"
    except (ValueError, KeyError, TypeError):
        return ""


def _add_artifacts(client: TrackingClient, run_id: str, tree: Tree, path: str | None) -> None:
    from rich.filesize import decimal
    from rich.markup import escape

    entries = client.list_artifacts(run_id, path)
    for entry in entries[:ARTIFACTS_PER_FOLDER]:
        name = escape(entry.path.rsplit("/", 1)[-1])
        if entry.is_dir:
            _add_artifacts(client, run_id, tree.add(f"[bold blue]{name}/[/]"), entry.path)
        else:
            tree.add(f"{name} [dim]{decimal(entry.file_size or 0)}[/]")
    if len(entries) > ARTIFACTS_PER_FOLDER:
        tree.add(f"[dim]… {len(entries) - ARTIFACTS_PER_FOLDER} more[/]")


@app.command("compare")
def compare(
    ctx: typer.Context,
    run_ids: list[str] = typer.Argument(..., metavar="RUN_ID RUN_ID…", help="Two or more runs."),
) -> None:
    """Params and metrics side by side; rows that differ are marked ≠ and highlighted."""

    if len(run_ids) < 2:
        raise typer.BadParameter("compare needs at least two run ids", param_hint="RUN_ID")
    client = ctx.obj.client()
    runs = [client.get_run(run_id) for run_id in run_ids]
    ctx.obj.console().print(comparison_table(runs))


def comparison_table(runs: Sequence[Run]) -> Table:
    """One row per param and metric (``params.alpha``, ``metrics.rmse``), one column per run.

    A row whose values are not all equal (a missing value counts as different) gets ``≠``
    in the first column and the DIFF_STYLE; the lowest value of a differing metric is
    underlined.
    """
    from rich.table import Table
    from rich.text import Text

    table = Table(title=f"comparing {len(runs)} runs", caption="≠ marks rows that differ")
    table.add_column("≠", justify="center", no_wrap=True)
    table.add_column("key")
    for run in runs:
        table.add_column(Text(f"{run.info.run_name or ''}\n{run.info.run_id[:8]}"), justify="right")

    def add(key: str, values: list[Any], cells: list[str], lowest: float | None = None) -> None:
        differs = len({repr(v) for v in values}) > 1
        style = DIFF_STYLE if differs else ""
        row = [Text("≠" if differs else "", style=style), Text(key, style=style)]
        for value, cell in zip(values, cells, strict=True):
            best = lowest is not None and value == lowest
            row.append(Text(cell, style=f"{style} underline" if best and differs else style))
        table.add_row(*row)

    for key in sorted({k for run in runs for k in run.data.params}):
        values = [run.data.params.get(key) for run in runs]
        add(f"params.{key}", values, ["—" if v is None else v for v in values])
    metric_keys = sorted({k for run in runs for k in run.data.metrics})
    if metric_keys:
        table.add_section()
    for key in metric_keys:
        numbers = [run.data.metrics.get(key) for run in runs]
        present = [v for v in numbers if v is not None and not math.isnan(v)]
        add(
            f"metrics.{key}",
            numbers,
            [format_metric(v) for v in numbers],
            min(present, default=None),
        )
    return table


@app.command("delete")
def delete(
    ctx: typer.Context,
    run_ids: list[str] = typer.Argument(..., metavar="RUN_ID…", help="One or more run ids."),
) -> None:
    """Delete runs (recoverable until `modelyard gc` purges them)."""
    client = ctx.obj.client()
    for run_id in run_ids:  # check every id first, so a typo changes nothing
        client.get_run(run_id)
    for run_id in run_ids:
        client.delete_run(run_id)
        typer.echo(f"deleted run {run_id}")


@app.command("restore")
def restore(
    ctx: typer.Context,
    run_ids: list[str] = typer.Argument(..., metavar="RUN_ID…", help="One or more deleted runs."),
) -> None:
    """Restore deleted runs."""
    client = ctx.obj.client()
    for run_id in run_ids:
        client.get_run(run_id)
    for run_id in run_ids:
        client.restore_run(run_id)
        typer.echo(f"restored run {run_id}")


@app.command("reproduce")
def reproduce(
    ctx: typer.Context,
    run_id: str = typer.Argument(..., help="A sweep, pipeline or script run."),
    rtol: float = typer.Option(
        0.0,
        "--rtol",
        min=0.0,
        max=0.999,
        help="Relative difference allowed per metric value (default 0: bit-identical).",
    ),
) -> None:
    """Execute a run again from its git commit and compare every metric side by side.

    Exit 0 when every metric history, param and dataset input matches; 1 with the
    differing ones (or when the code fails); 2 when something it needs is gone (a dirty
    worktree at logging time, a deleted dataset version, no entry point).
    """
    from rich.table import Table
    from rich.text import Text

    from modelyard.errors import InvalidState
    from modelyard.pipelines.reproduce import CannotReproduce
    from modelyard.pipelines.reproduce import reproduce as run_again

    console = ctx.obj.console()
    try:
        done = run_again(run_id, settings=ctx.obj.settings(), rtol=rtol)
    except CannotReproduce as exc:
        raise CannotReproduce(f"cannot reproduce: {exc.message}", field=exc.field) from None
    except InvalidState as exc:
        console.print(exc.message, markup=False)
        raise typer.Exit(1) from None
    tolerance = "bit-identical" if done.rtol == 0 else f"rtol {done.rtol:g}"
    table = Table(title=f"run {done.run_id} reproduced as {done.reproduced_run_id} ({tolerance})")
    for column in ("", "run", "what", "key", "original", "reproduced"):
        table.add_column(column, no_wrap=column in ("", "key"))
    for row in done.rows:
        style = "" if row.matches else DIFF_STYLE
        cells = ("=" if row.matches else "≠", row.run, row.what, row.key, row.original)
        table.add_row(*(Text(c, style=style) for c in (*cells, row.reproduced)))
    console.print(table)
    differing = done.differing
    if differing:
        names = ", ".join(f"{r.run}:{r.what}s.{r.key}" for r in differing[:20])
        more = f" and {len(differing) - 20} more" if len(differing) > 20 else ""
        console.print(f"{len(differing)} differ: {names}{more}", markup=False)
        raise typer.Exit(1)
    console.print(f"all {len(done.rows)} values match ({tolerance})", markup=False)
