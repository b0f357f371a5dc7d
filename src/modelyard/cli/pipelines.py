"""``modelyard pipelines …``: run, resume and inspect pipelines; name them for schedulers.

    modelyard pipelines run flows.py:retrain --param days=30 --executor process
    modelyard pipelines run retrain-demand --param days=30     # a registered name
    modelyard pipelines resume RUN_ID                          # only what did not finish
    modelyard pipelines list [--pipeline retrain]
    modelyard pipelines show RUN_ID                            # the steps as a tree
    modelyard pipelines register retrain-demand flows.py:retrain --param days=90
    modelyard pipelines registered

``run`` and ``resume`` exit 0 when the run finished, 1 when a step failed (the run is
recorded FAILED with the reason; ``resume`` picks up from there), 2 on bad usage.
"""

from __future__ import annotations

import json
from datetime import timedelta
from typing import TYPE_CHECKING

import typer

if TYPE_CHECKING:
    from modelyard.pipelines.store import PipelineRunRecord

app = typer.Typer(
    help="Run pipelines of steps (tracked, cached, resumable), locally or on Ray.",
    no_args_is_help=True,
)
EXIT_FAILED = 1
_STATUS_STYLE = {
    "FINISHED": "green",
    "COMPLETED": "green",
    "CACHED": "cyan",
    "RUNNING": "yellow",
    "PENDING": "dim",
    "SKIPPED": "dim",
    "FAILED": "red",
}

_EXECUTOR_HELP = "Where steps run: local (this process), process (worker processes), ray."


def _duration(ms: int | None) -> str:
    from modelyard.durations import format_duration

    if ms is None:
        return "-"
    if ms < 1000:
        return f"{ms} ms"
    return format_duration(timedelta(milliseconds=ms))


def _time(ms: int | None) -> str:
    if ms is None:
        return "-"
    from datetime import UTC, datetime

    return datetime.fromtimestamp(ms / 1000, UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def _finish(ctx: typer.Context, record: PipelineRunRecord, failed: bool) -> None:
    console = ctx.obj.console()
    _print_tree(ctx, record)
    if failed:
        console.print(f"resume with: modelyard pipelines resume {record.run_id}", markup=False)
        raise typer.Exit(EXIT_FAILED)


@app.command()
def run(
    ctx: typer.Context,
    target: str = typer.Argument(
        ..., help="FILE.py:NAME, package.module:NAME, or a registered pipeline's name."
    ),
    param: list[str] = typer.Option(
        [], "--param", "-p", help="A param as KEY=VALUE (JSON where it parses); repeatable."
    ),
    executor: str = typer.Option("process", "--executor", "-e", help=_EXECUTOR_HELP),
    workers: int | None = typer.Option(None, "--workers", help="Steps run at once.", min=1),
    experiment: str | None = typer.Option(
        None, "--experiment", help="The experiment of the run (default: pipelines)."
    ),
    tag: list[str] = typer.Option(
        [], "--tag", "-t", help="A tag KEY=VALUE for the run and each step's run; repeatable."
    ),
    no_cache: bool = typer.Option(
        False, "--no-cache", help="Execute every step, none answered from the cache."
    ),
) -> None:
    """Run a pipeline as a tracked run: each step a nested run, cached steps skipped.

    Exits 0 when the run finished, 1 when a step failed (resume it), 2 on bad usage.

    Examples:
    $ modelyard pipelines run flows.py:retrain --param days=30 --param depth=6
    $ modelyard pipelines run flows.py:retrain --executor ray --workers 8
    $ modelyard pipelines run retrain-demand     # a registered name
    $ modelyard pipelines run flows.py:retrain --no-cache
    """
    from modelyard.pipelines.loading import load_target, parse_params
    from modelyard.pipelines.registry import PipelineRegistry
    from modelyard.pipelines.runner import PipelineFailed, run_pipeline

    settings = ctx.obj.settings()
    tags = _tags(tag)
    try:
        if ":" in target:
            pipeline = load_target(target)
            record = run_pipeline(
                pipeline,
                parse_params(pipeline, param),
                executor=executor,
                settings=settings,
                experiment=experiment,
                workers=workers,
                cause={"kind": "manual", "via": "cli"},
                tags=tags,
                cache=not no_cache,
            )
        else:
            registry = PipelineRegistry(settings)
            pipeline = load_target(registry.get(target).target)
            record = registry.start(
                target,
                parse_params(pipeline, param),
                executor=executor,
                experiment=experiment,
                workers=workers,
                cause={"kind": "manual", "via": "cli"},
                tags=tags,
                cache=not no_cache,
            )
    except PipelineFailed as exc:
        _finish(ctx, exc.run, True)
        return
    _finish(ctx, record, False)


def _tags(pairs: list[str]) -> dict[str, str]:
    from modelyard.errors import InvalidParameter

    found: dict[str, str] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key.strip():
            raise InvalidParameter(f"--tag {pair!r} is not KEY=VALUE", field="tag")
        found[key.strip()] = value
    return found


@app.command()
def resume(
    ctx: typer.Context,
    run_id: str = typer.Argument(..., help="The failed pipeline run."),
    executor: str | None = typer.Option(
        None, "--executor", "-e", help=_EXECUTOR_HELP + " Default: the run's own."
    ),
    workers: int | None = typer.Option(None, "--workers", help="Steps run at once.", min=1),
    force: bool = typer.Option(
        False, "--force", help="Resume a run still marked RUNNING whose process is gone."
    ),
) -> None:
    """Re-run only the steps of RUN that did not finish.

    The pipeline is rebuilt from the run's recorded target and params; steps that finished
    keep their outputs (a step whose code changed since runs again, with what it feeds).

    Examples:
    $ modelyard pipelines resume 3f2c0d9e4b5a4c1d8e7f6a5b4c3d2e1f
    $ modelyard pipelines resume 3f2c0d9e4b5a4c1d8e7f6a5b4c3d2e1f --executor local
    """
    from modelyard.pipelines.runner import PipelineFailed
    from modelyard.pipelines.runner import resume as resume_run

    try:
        record = resume_run(
            run_id, executor=executor, settings=ctx.obj.settings(), workers=workers, force=force
        )
    except PipelineFailed as exc:
        _finish(ctx, exc.run, True)
        return
    _finish(ctx, record, False)


@app.command("list")
def list_runs(
    ctx: typer.Context,
    pipeline: str | None = typer.Option(None, "--pipeline", help="Only this pipeline's runs."),
    limit: int = typer.Option(20, "--limit", min=1, help="Most recent runs shown."),
) -> None:
    """List pipeline runs, newest first."""
    from rich.table import Table

    from modelyard.pipelines.runner import pipelines_store

    store = pipelines_store(ctx.obj.settings())
    table = Table()
    for column in ("run", "pipeline", "status", "started", "duration", "executor", "cause"):
        table.add_column(column, no_wrap=column == "run")
    for r in store.list_runs(pipeline, limit):
        style = _STATUS_STYLE.get(r.status, "")
        took = None if r.ended_at is None else r.ended_at - r.started_at
        cause = str((r.cause or {}).get("kind", "-"))
        table.add_row(
            r.run_id,
            r.pipeline,
            f"[{style}]{r.status}[/]",
            _time(r.started_at),
            _duration(took),
            r.executor,
            cause,
        )
    ctx.obj.console().print(table)


@app.command()
def show(ctx: typer.Context, run_id: str = typer.Argument(..., help="The pipeline run.")) -> None:
    """Show a run's steps as a tree: status, duration, attempts, cache hits and reasons."""
    from modelyard.pipelines.runner import pipelines_store

    _print_tree(ctx, pipelines_store(ctx.obj.settings()).get_run(run_id))


def _print_tree(ctx: typer.Context, record: PipelineRunRecord) -> None:
    """Steps in call order, each under the step it reads from first (a DAG drawn as a
    tree: a step with several upstreams names the others)."""
    from rich.markup import escape
    from rich.tree import Tree

    style = _STATUS_STYLE.get(record.status, "")
    took = None if record.ended_at is None else record.ended_at - record.started_at
    cached = sum(s.status == "CACHED" for s in record.steps)
    head = (
        f"[bold]{escape(record.pipeline)}[/] run {record.run_id}  [{style}]{record.status}[/]"
        f"  {_duration(took)}  {len(record.steps)} steps, {cached} cached"
    )
    if record.attempts > 1:
        head += f", resumed {record.attempts - 1}x"
    tree = Tree(head)
    facts = [f"started {_time(record.started_at)} on {record.executor}"]
    if record.params:
        facts.append(f"params {json.dumps(record.params, sort_keys=True)}")
    if record.cause:
        facts.append(f"cause {json.dumps(record.cause, sort_keys=True)}")
    tree.add(f"[dim]{escape('; '.join(facts))}[/]")
    if record.error:
        tree.add(f"[red]{escape(record.error)}[/]")
    branches: dict[str, Tree] = {}
    for s in record.steps:
        parent = branches.get(s.upstream[0], tree) if s.upstream else tree
        s_style = _STATUS_STYLE.get(s.status, "")
        label = f"{escape(s.step_key)}  [{s_style}]{s.status}[/]  {_duration(s.duration_ms)}"
        if s.attempts > 1:
            label += f"  {s.attempts} attempts"
        if len(s.upstream) > 1:
            label += f"  [dim](also after {escape(', '.join(s.upstream[1:]))})[/]"
        if s.reason:
            first = s.reason.splitlines()[0]
            label += f"\n[dim]{escape(first)}[/]"
        branches[s.step_key] = parent.add(label)
    ctx.obj.console().print(tree)


@app.command()
def register(
    ctx: typer.Context,
    name: str = typer.Argument(..., help="The name schedulers and alert triggers use."),
    target: str = typer.Argument(..., help="FILE.py:NAME or package.module:NAME."),
    param: list[str] = typer.Option([], "--param", "-p", help="A default param KEY=VALUE."),
    description: str | None = typer.Option(None, "--description", help="What it does."),
    replace: bool = typer.Option(False, "--replace", help="Change an existing name."),
) -> None:
    """Name a pipeline so that a schedule or a monitor's alert can start it."""
    from modelyard.pipelines.loading import load_target, parse_params
    from modelyard.pipelines.registry import PipelineRegistry

    params = parse_params(load_target(target), param)
    definition = PipelineRegistry(ctx.obj.settings()).register(
        name, target, params, description=description, replace=replace
    )
    typer.echo(f"pipeline {definition.name} -> {definition.target} {definition.params}")


@app.command()
def registered(ctx: typer.Context) -> None:
    """List the named pipelines."""
    from rich.markup import escape
    from rich.table import Table

    from modelyard.pipelines.registry import PipelineRegistry

    table = Table()
    for column in ("name", "target", "params", "description"):
        table.add_column(column)
    for d in PipelineRegistry(ctx.obj.settings()).list():
        cells = (d.name, d.target, json.dumps(d.params), d.description or "")
        table.add_row(*map(escape, cells))
    ctx.obj.console().print(table)


@app.command()
def unregister(ctx: typer.Context, name: str = typer.Argument(..., help="The name.")) -> None:
    """Forget a named pipeline (its runs stay)."""
    from modelyard.pipelines.registry import PipelineRegistry

    PipelineRegistry(ctx.obj.settings()).unregister(name)
    typer.echo(f"pipeline {name} unregistered")
