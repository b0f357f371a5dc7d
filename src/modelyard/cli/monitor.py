"""``modelyard monitor …``: monitors of deployments — drift, live metrics, alerts.

    modelyard monitor create shop --schedule "*/15 * * * *" --rules rules.yaml
    modelyard monitor list
    modelyard monitor show shop
    modelyard monitor run shop                       # evaluate the window ending now
    modelyard monitor history shop --limit 20
    modelyard monitor live shop --window 1d --slice region
    modelyard monitor report shop --window 7d --out report.html
    modelyard monitor rules --prometheus alerts.yml   # every monitor, for Prometheus
    modelyard monitor reference models:/demand/3 --data sales@3
    modelyard monitor delete shop

``run`` exits 1 when a rule is breached (a CI job or a cron line can act on it), 0
otherwise, 2 on bad usage. ``modelyard scheduler`` evaluates monitors on their schedules.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer

if TYPE_CHECKING:
    from rich.console import Console

    from modelyard.monitoring.monitors import MonitorService
    from modelyard.monitoring.store import Evaluation

app = typer.Typer(
    help="Monitor deployments: drift, live metrics from feedback, alerts, reports.",
    no_args_is_help=True,
)
EXIT_BREACHED = 1


def _service(ctx: typer.Context) -> MonitorService:
    from modelyard.monitoring.monitors import MonitorService

    state = ctx.obj
    return MonitorService(state.registry(), state.deployments())


def _time(ms: int | None) -> str:
    if ms is None:
        return "-"
    from datetime import UTC, datetime

    return datetime.fromtimestamp(ms / 1000, UTC).strftime("%Y-%m-%d %H:%M UTC")


def _number(value: float | None) -> str:
    return "unknown" if value is None else f"{value:.4g}"


@app.command()
def create(
    ctx: typer.Context,
    deployment: str = typer.Argument(..., help="The deployment to watch."),
    rules: Path = typer.Option(..., "--rules", help="The rules YAML file.", metavar="PATH"),
    schedule: str = typer.Option(
        "*/15 * * * *", "--schedule", help="When to evaluate: five-field cron, UTC."
    ),
    name: str | None = typer.Option(
        None, "--name", help="The monitor's name (default: the deployment's)."
    ),
) -> None:
    """Create a monitor of DEPLOYMENT with a rules file and a schedule."""
    text = rules.read_text(encoding="utf-8")
    monitor = _service(ctx).create(name or deployment, deployment, schedule=schedule, rules=text)
    typer.echo(
        f"monitor {monitor.name} of {monitor.deployment}: {len(monitor.spec.rules)} rules, "
        f"window {monitor.window_s}s, schedule {monitor.schedule!r}"
    )


@app.command("list")
def list_monitors(
    ctx: typer.Context,
    deployment: str | None = typer.Option(None, "--deployment", help="Only this deployment's."),
) -> None:
    """List monitors with their latest verdict."""
    from rich.table import Table

    service = _service(ctx)
    table = Table()
    for column in ("monitor", "deployment", "schedule", "window", "rules", "last window", "status"):
        table.add_column(column)
    for m in service.list(deployment):
        latest = service.store.evaluations(m.name, limit=1)
        last = latest[-1] if latest else None
        table.add_row(
            m.name,
            m.deployment,
            m.schedule,
            f"{m.window_s}s",
            str(len(m.spec.rules)),
            _time(last.window_end if last else None),
            last.status if last else "-",
        )
    ctx.obj.console().print(table)


@app.command()
def show(ctx: typer.Context, name: str = typer.Argument(..., help="The monitor.")) -> None:
    """Show a monitor's rules, its latest evaluation and its open alerts."""
    from modelyard.monitoring.monitors import lease_name

    service = _service(ctx)
    monitor = service.get(name)
    console = ctx.obj.console()
    console.print(
        f"[bold]{monitor.name}[/] watches {monitor.deployment}: schedule {monitor.schedule!r}, "
        f"window {monitor.window_s}s, created by {monitor.created_by}"
    )
    console.print(monitor.rules.rstrip(), markup=False, highlight=False)
    latest = service.store.evaluations(name, limit=1)
    if latest:
        _print_evaluation(console, latest[-1])
    alerts = service.store.alerts(name, open_only=True)
    for a in alerts:
        console.print(
            f"alert {a.rule} {dict(a.labels) or ''}: {a.state} since {_time(a.since)} "
            f"({a.severity}, value {_number(a.value)})",
            markup=False,
        )
    lease = service.leases.current(lease_name(name))
    if lease is not None:
        console.print(f"being evaluated by {lease.holder} until {_time(lease.expires_at)}")


def _print_evaluation(console: Console, evaluation: Evaluation) -> None:
    from rich.table import Table

    console.print(
        f"window {_time(evaluation.window_start)} – {_time(evaluation.window_end)}: "
        f"[bold]{evaluation.status}[/] ({evaluation.rows or 0} rows)"
    )
    if evaluation.detail:
        console.print(f"note: {evaluation.detail}", markup=False)
    table = Table()
    for column in ("rule", "labels", "value", "threshold", "verdict", "detail"):
        table.add_column(column)
    for o in evaluation.outcomes:
        verdict = {True: "BREACHED", False: "ok", None: "unknown"}[o["breached"]]
        labels = ", ".join(f"{k}={v}" for k, v in o["labels"].items())
        table.add_row(
            o["rule"],
            labels,
            _number(o["value"]),
            _number(o["threshold"]),
            verdict,
            o["detail"],
        )
    console.print(table)


@app.command()
def run(
    ctx: typer.Context,
    name: str = typer.Argument(..., help="The monitor."),
    at: str | None = typer.Option(
        None, "--at", help="Evaluate the window ending at this ISO time (default: now)."
    ),
    as_json: bool = typer.Option(False, "--json", help="Print the evaluation as JSON."),
) -> None:
    """Evaluate a monitor's window now; exit 1 when a rule is breached."""
    service = _service(ctx)
    result = service.run(name, end_ms=_instant(at))
    evaluation = result.evaluation
    if as_json:
        typer.echo(json.dumps(evaluation.to_dict(), indent=2))
    else:
        console = ctx.obj.console()
        if not result.created:
            console.print("this window was evaluated before; showing what was stored")
        _print_evaluation(console, evaluation)
        for t in result.transitions:
            console.print(f"alert {t.alert.rule}: {t.previous or 'new'} → {t.state}", markup=False)
        for d in result.deliveries:
            if not d.ok:
                console.print(f"[red]notification to {d.target} failed: {d.error}[/]")
    if evaluation.status == "breached":
        raise typer.Exit(EXIT_BREACHED)


def _instant(text: str | None) -> int | None:
    if text is None:
        return None
    from datetime import UTC, datetime

    from modelyard.errors import InvalidParameter

    try:
        when = datetime.fromisoformat(text)
    except ValueError:
        raise InvalidParameter(
            f"--at {text!r} is not an ISO time like 2026-12-06T09:00Z", field="at"
        ) from None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return int(when.timestamp() * 1000)


@app.command()
def history(
    ctx: typer.Context,
    name: str = typer.Argument(..., help="The monitor."),
    limit: int = typer.Option(20, "--limit", min=1, help="How many windows, newest last."),
    alerts: bool = typer.Option(False, "--alerts", help="Show alert transitions instead."),
) -> None:
    """A monitor's evaluated windows (or its alerts' transitions)."""
    from rich.table import Table

    service = _service(ctx)
    table = Table()
    if alerts:
        for column in ("time", "alert", "from", "to", "value", "detail"):
            table.add_column(column)
        rules = {a.id: a.rule for a in service.store.alerts(name)}
        for e in service.store.alert_events(monitor=name, limit=limit):
            table.add_row(
                _time(e.at),
                rules.get(e.alert_id, str(e.alert_id)),
                e.previous or "-",
                e.state,
                _number(e.value),
                e.detail or "",
            )
    else:
        for column in ("window end", "status", "rows", "breached", "unknown"):
            table.add_column(column)
        for ev in service.store.evaluations(name, limit=limit):
            breached = [o["rule"] for o in ev.outcomes if o["breached"]]
            unknown = [o["rule"] for o in ev.outcomes if o["breached"] is None]
            table.add_row(
                _time(ev.window_end),
                ev.status,
                str(ev.rows or 0),
                ", ".join(dict.fromkeys(breached)),
                ", ".join(dict.fromkeys(unknown)),
            )
    ctx.obj.console().print(table)


@app.command()
def live(
    ctx: typer.Context,
    deployment: str = typer.Argument(..., help="The deployment."),
    window: str = typer.Option("1d", "--window", help="How far back: 1h, 1d, 7d, ..."),
    slices: list[str] | None = typer.Option(
        None, "--slice", help="Break down by this logged input column (repeatable)."
    ),
    metrics: list[str] | None = typer.Option(
        None, "--metric", help="Only this metric (mae, rmse, mape, bias, accuracy, ...)."
    ),
    as_json: bool = typer.Option(False, "--json", help="Print the metrics as JSON."),
) -> None:
    """Live metrics from feedback over a window, with counts, 95 % intervals and coverage."""
    from rich.table import Table

    from modelyard.monitoring.log_windows import evaluate_window
    from modelyard.monitoring.prediction_rows import window_bounds

    service = _service(ctx)
    service.deployments.get(deployment)
    start, end = window_bounds(window)
    result = evaluate_window(
        service.artifacts,
        service.db,
        deployment,
        start,
        end,
        reference=None,
        prediction_reference=None,
        slices=slices or (),
        metrics=metrics or None,
    )
    if as_json:
        rows = [
            o.to_dict() for o in result.observations if o.name in ("metric", "feedback_coverage")
        ]
        typer.echo(json.dumps({"deployment": deployment, "start_ms": start, "end_ms": end,
                               "rows": result.rows, "observations": rows}, indent=2))  # fmt: skip
        return
    console = ctx.obj.console()
    console.print(
        f"{deployment}: {result.rows} rows served in {_time(start)} – {_time(end)}, "
        f"{result.feedback_rows} with feedback"
    )
    table = Table()
    for column in ("variant", "version", "slice", "metric", "value", "95% interval", "n"):
        table.add_column(column)
    for m in result.live:
        interval = f"[{_number(m.ci_low)}, {_number(m.ci_high)}]" if m.ci_low is not None else "-"
        table.add_row(
            m.variant, str(m.version), m.slice or "all", m.name, _number(m.value), interval,
            str(m.count),
        )  # fmt: skip
    for c in result.coverage:
        table.add_row(
            c.variant, str(c.version), c.slice or "all", "feedback coverage", _number(c.share),
            "-", str(c.predictions),
        )  # fmt: skip
    console.print(table)
    for note in result.notes:
        console.print(f"note: {note}", markup=False)


@app.command()
def report(
    ctx: typer.Context,
    deployment: str = typer.Argument(..., help="The deployment."),
    window: str = typer.Option("7d", "--window", help="How far back: 1d, 7d, 30d, ..."),
    out: Path = typer.Option(Path("monitoring-report.html"), "--out", help="Where to write."),
) -> None:
    """Write a self-contained HTML report: drift and live metrics over time, alerts."""
    from modelyard.monitoring.monitor_report import render, report_data

    page = render(report_data(_service(ctx), deployment, window=window))
    partial = out.with_name(f".{out.name}.partial")
    partial.write_text(page, encoding="utf-8")
    partial.replace(out)
    typer.echo(f"wrote {out} ({len(page.encode()) // 1024} KB)")


@app.command()
def rules(
    ctx: typer.Context,
    prometheus: Path = typer.Option(
        ..., "--prometheus", help="Write the monitors' rules as a Prometheus rules file."
    ),
    name: list[str] | None = typer.Option(None, "--monitor", help="Only this monitor."),
) -> None:
    """Write every monitor's rules as Prometheus alerting rules (promtool check rules)."""
    from modelyard.monitoring.prometheus_rules import render_prometheus_rules

    service = _service(ctx)
    chosen = [service.get(n) for n in name] if name else service.list()
    prometheus.write_text(render_prometheus_rules(chosen), encoding="utf-8")
    typer.echo(f"wrote {prometheus}: {sum(len(m.spec.rules) for m in chosen)} rules")


@app.command()
def reference(
    ctx: typer.Context,
    model: str = typer.Argument(..., help="The version: models:/demand/3."),
    data: str = typer.Option(..., "--data", help="Its reference data: sales@3, CSV or Parquet."),
    trusted: bool = typer.Option(
        False, "--trusted", help="Trust the model files (pickle) to predict for the profile."
    ),
) -> None:
    """Profile a version's reference data now (inputs and predictions), replacing any."""
    from modelyard.data.client import DataClient
    from modelyard.errors import InvalidParameter
    from modelyard.monitoring.references import build_reference
    from modelyard.monitoring.tables_input import load_current

    registry = ctx.obj.registry()
    version = registry.resolve(model).version
    if version is None:
        raise InvalidParameter(
            f"{model!r} is not a registered version; name one like models:/demand/3",
            field="model",
        )
    client = DataClient(registry.db, registry.artifacts, registry.settings)
    table, label = _table(load_current(data, data_client=client), data)
    stored = build_reference(registry, version, table, source=label, trusted=trusted)
    typer.echo(
        f"{version.uri}: reference profile of {stored.inputs.rows} rows from {label} "
        f"({len(stored.inputs.columns)} columns"
        + (", and its predictions)" if stored.predictions is not None else ")")
    )


def _table(loaded: Any, label: str) -> tuple[Any, str]:
    """``tables_input.load_current`` answers a table or (table, label)."""
    import pandas as pd

    table, name = loaded if isinstance(loaded, tuple) else (loaded, label)
    if not isinstance(table, pd.DataFrame):
        table = table.to_pandas()
    return table, str(name)


@app.command()
def delete(ctx: typer.Context, name: str = typer.Argument(..., help="The monitor.")) -> None:
    """Delete a monitor with its evaluations and alerts."""
    _service(ctx).delete(name)
    typer.echo(f"deleted monitor {name}")
