"""``modelyard lineage ID``: where something came from, or what depends on it.

ID is what people already call things: a request id the data plane answered,
``models:/demand/3``, a run id, ``sales@4``, a feature view (``daily_sales`` or
``daily_sales@2``), a deployment (``web``, or ``web/4`` for one revision), a monitor, or a
node id as the graph spells it (``dataset:sales@9f…``). The answer is a tree (rich) that
reads from the start outwards; ``--json`` prints the node-and-edge document the server's
``GET /api/v1/lineage`` answers. ``--downstream`` ends with the impact: the training
sets, runs, model versions and live deployments that depend on the start.

With ``MODELYARD_TRACKING_URI`` set, the question goes to that server
(``GET /api/v1/lineage/ID``). ``--emit-openlineage DURATION`` (no ID) sends the
OpenLineage RunEvents of the runs, training sets and materialisations of that period to
the configured endpoint or file.
"""

from __future__ import annotations

from collections import defaultdict
from typing import TYPE_CHECKING

import typer

if TYPE_CHECKING:
    from rich.console import Console
    from rich.text import Text

    from modelyard.lineage.service import LineageDocument, LineageService, RemoteLineage

_KIND_STYLE = {
    "prediction": "bold magenta",
    "deployment": "bold green",
    "deployment_revision": "green",
    "model": "bold cyan",
    "run": "cyan",
    "step": "cyan",
    "artifact": "blue",
    "training_set": "yellow",
    "feature_view": "yellow",
    "dataset": "bold blue",
    "location": "blue",
    "job": "blue",
    "monitor": "red",
    "alert": "bold red",
}


def lineage(
    ctx: typer.Context,
    ref: str | None = typer.Argument(
        None,
        metavar="ID",
        help="A request id, models:/NAME/VERSION, a run id, sales@4, a feature view, "
        "a deployment, or a node id such as dataset:NAME@DIGEST.",
    ),
    upstream: bool = typer.Option(False, "--upstream", help="What it came from (the default)."),
    downstream: bool = typer.Option(
        False, "--downstream", help="What depends on it, ending with the impact."
    ),
    depth: int | None = typer.Option(
        None, "--depth", min=1, metavar="N", help="At most N hops from ID (default: all)."
    ),
    as_json: bool = typer.Option(False, "--json", help="Print the node-and-edge document."),
    deployment: str | None = typer.Option(
        None, "--deployment", metavar="NAME", help="A request id's deployment (a faster lookup)."
    ),
    since: str | None = typer.Option(
        None,
        "--since",
        metavar="DURATION",
        help="Look for a request id only in the log of this period (e.g. 1d).",
    ),
    backfill: bool = typer.Option(
        False,
        "--backfill",
        help="Record the edges of deployments, monitors and alerts stored before lineage.",
    ),
    emit_openlineage: str | None = typer.Option(
        None,
        "--emit-openlineage",
        metavar="DURATION",
        help="Send the OpenLineage events of this period (e.g. 1d) to the configured sink.",
    ),
) -> None:
    r"""Trace lineage: where a prediction, model, run or dataset came from, or what it fed.

    Examples:
    $ modelyard lineage 3f2a9c1e00000042
    $ modelyard lineage models:/demand/3 --depth 2
    $ modelyard lineage sales@4 --downstream
    $ modelyard lineage web --downstream --json
    $ modelyard lineage --emit-openlineage 1d
    $ modelyard lineage --backfill
    """
    from modelyard.errors import InvalidParameter
    from modelyard.lineage.graph import DOWNSTREAM, UPSTREAM

    if backfill:
        if ref is not None:
            raise InvalidParameter("--backfill takes no ID", field="ID")
        _backfill(ctx)
        return
    if emit_openlineage is not None:
        if ref is not None:
            raise InvalidParameter(
                "--emit-openlineage sends a period's events and takes no ID", field="ID"
            )
        _emit(ctx, emit_openlineage)
        return
    if ref is None:
        raise InvalidParameter("say what to trace: modelyard lineage ID", field="ID")
    if upstream and downstream:
        raise InvalidParameter(
            "--upstream and --downstream are two questions: ask one at a time",
            field="--downstream",
        )
    since_ms = None
    if since is not None:
        from modelyard.durations import parse_duration
        from modelyard.ids import now_ms

        since_ms = now_ms() - round(parse_duration(since, "--since").total_seconds() * 1000)
    doc = _service(ctx).trace(
        ref,
        DOWNSTREAM if downstream else UPSTREAM,
        depth=depth,
        deployment=deployment,
        since_ms=since_ms,
    )
    if as_json:
        from modelyard import json_codec

        typer.echo(json_codec.dumps(doc.to_dict()).decode())
        return
    print_document(doc, ctx.obj.console())


def _service(ctx: typer.Context) -> LineageService | RemoteLineage:
    """The local stores' graph, or the server's when a tracking URI is set."""
    from modelyard.http_transport import HttpTransport
    from modelyard.lineage.service import LineageService, RemoteLineage

    settings = ctx.obj.settings()
    if settings.is_remote:
        transport = HttpTransport(str(settings.tracking_uri), token=settings.tracking_token)
        ctx.call_on_close(transport.close)
        return RemoteLineage(transport)
    return LineageService.from_settings(settings)


def _backfill(ctx: typer.Context) -> None:
    from modelyard.errors import InvalidParameter
    from modelyard.lineage.backfill import backfill
    from modelyard.lineage.service import LineageService

    settings = ctx.obj.settings()
    if settings.is_remote:
        raise InvalidParameter(
            "--backfill writes to the metadata store itself: unset MODELYARD_TRACKING_URI "
            "and pass --store-uri",
            field="tracking_uri",
        )
    counts = backfill(LineageService.from_settings(settings).db)
    read = ", ".join(
        f"{n:,} {kind.replace('_', ' ')}{'' if n == 1 else 's'}" for kind, n in counts.items()
    )
    ctx.obj.console().print(f"[green]✓[/] lineage edges recorded for {read}")


def _emit(ctx: typer.Context, period: str) -> None:
    from modelyard.durations import parse_duration
    from modelyard.errors import InvalidParameter
    from modelyard.ids import now_ms
    from modelyard.lineage.openlineage_out import Emitter
    from modelyard.lineage.service import LineageService

    settings = ctx.obj.settings()
    if settings.is_remote:
        raise InvalidParameter(
            "--emit-openlineage reads the metadata store itself; a server sends its own "
            f"events: unset MODELYARD_TRACKING_URI ({settings.tracking_uri}) and pass "
            "--store-uri / --artifacts-uri",
            field="tracking_uri",
        )
    emitter = Emitter.from_settings(settings, LineageService.from_settings(settings).db)
    since_ms = now_ms() - round(parse_duration(period, "--emit-openlineage").total_seconds() * 1000)
    sent = emitter.emit_since(since_ms)
    ctx.obj.console().print(f"[green]✓[/] sent {sent:,} OpenLineage event{'s' * (sent != 1)}")


def print_document(doc: LineageDocument, console: Console) -> None:
    """The answer as a tree from the start outwards (a node met again is shown once, then
    referred to), then the impact of a downstream question."""
    from rich.text import Text
    from rich.tree import Tree

    from modelyard.lineage.graph import UPSTREAM

    children: dict[str, list[tuple[str, str]]] = defaultdict(list)
    for e in doc.edges:
        near, far = (e.dst, e.src) if doc.direction == UPSTREAM else (e.src, e.dst)
        children[near].append((far, e.relation))
    arrow = "←" if doc.direction == UPSTREAM else "→"
    root = Tree(_label(doc, doc.start))
    shown = {doc.start}

    def grow(branch: Tree, at: str) -> None:
        for far, relation in sorted(children.get(at, ())):
            text = Text(f"{arrow} {relation} ", style="dim")
            text.append_text(_label(doc, far))
            if far in shown:
                text.append(" (above)", style="dim")
                branch.add(text)
                continue
            shown.add(far)
            grow(branch.add(text), far)

    grow(root, doc.start)
    console.print(root)
    if not doc.edges:
        what = "comes from" if doc.direction == UPSTREAM else "depends on it"
        console.print(f"nothing recorded {what}", style="dim")
    if doc.truncated:
        console.print("the answer was cut at its first edges: pass --depth", style="yellow")
    if doc.impact is not None:
        _print_impact(doc, console)


def _label(doc: LineageDocument, node_id: str) -> Text:
    from rich.text import Text

    node = doc.nodes[node_id]
    text = Text(node.kind.replace("_", " ") + " ", style="dim")
    text.append(node.label, style=_KIND_STYLE.get(node.kind, ""))
    facts = node.attributes
    if node.kind == "feature_view" and "code_hash" in facts:
        text.append(f" code {str(facts['code_hash'])[:12]}", style="dim")
    if node.kind == "dataset" and "rows" in facts:
        text.append(f" {facts['rows']:,} rows from {facts.get('source', '?')}", style="dim")
    for verdict in facts.get("contracts", ()) if node.kind == "dataset" else ():
        passed = verdict["passed"]
        text.append(
            f" contract {verdict['contract']} {'passed' if passed else 'FAILED'}",
            style="green" if passed else "red",
        )
    if node.kind == "run" and "status" in facts:
        text.append(f" {str(facts['status']).lower()}", style="dim")
    if node.kind == "model" and facts.get("aliases"):
        text.append(" @" + ", @".join(facts["aliases"]), style="cyan")
    if node.kind == "model" and facts.get("gate"):
        verdict = "passed" if facts["gate"]["passed"] else "failed"
        text.append(f" gate {verdict}", style="green" if facts["gate"]["passed"] else "red")
    if node.kind == "deployment_revision" and facts.get("live"):
        text.append(" live", style="bold green")
    if facts.get("versioned") is False:
        text.append(" not a dataset version", style="dim")
    if facts.get("missing"):
        text.append(" (no longer recorded)", style="red")
    return text


def _print_impact(doc: LineageDocument, console: Console) -> None:
    from rich.table import Table

    assert doc.impact is not None
    table = Table(title="impact", show_header=True)
    table.add_column("what")
    table.add_column("count", justify="right")
    table.add_column("which")
    for what, items in doc.impact.items():
        table.add_row(what.replace("_", " "), str(len(items)), ", ".join(items) or "–")
    console.print(table)
