"""``modelyard gate``: evaluate a candidate against its champion and a policy; exit 0 or 1.

::

    modelyard gate --candidate models:/demand/4 --champion models:/demand@champion \\
        --data eval.parquet --policy gate.yaml --report gate.md --junit gate.xml

Both models are scored on the same data; the table of rules is printed, the Markdown
report (for a pull-request comment) and JUnit XML are written when asked, and the verdict
is recorded on the candidate version. Exit codes: 0 passed, 1 failed, 2 usage error (a
bad policy, an unknown model or data path) — so CI can tell a regression from a typo.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import typer

if TYPE_CHECKING:
    from rich.console import Console

    from modelyard.validation.report import GateReport

EXIT_PASSED = 0
EXIT_FAILED = 1


def gate(
    ctx: typer.Context,
    candidate: str = typer.Option(..., "--candidate", help="Model URI, e.g. models:/demand/4."),
    champion: str | None = typer.Option(
        None, "--champion", help="Model URI to beat, e.g. models:/demand@champion."
    ),
    data: str = typer.Option(..., "--data", help="Evaluation data: CSV/Parquet, or sales@3."),
    policy: Path = typer.Option(..., "--policy", help="The gate policy YAML file."),
    report: Path | None = typer.Option(None, "--report", help="Write the Markdown report here."),
    junit: Path | None = typer.Option(None, "--junit", help="Write JUnit XML here."),
    json_path: Path | None = typer.Option(None, "--json", help="Write the full result as JSON."),
    no_record: bool = typer.Option(
        False, "--no-record", help="Do not record the verdict on the candidate version."
    ),
    trusted: bool = typer.Option(
        False,
        "--trusted",
        help="Trust the model files: load any type, pickle included (only from sources you trust).",
    ),
) -> None:
    r"""Gate a candidate model: rules, champion comparison, slices, contract, latency.

    Examples:
    $ modelyard gate --candidate models:/demand/4 --data eval.parquet --policy gate.yaml
    $ modelyard gate --candidate models:/demand/4 --champion models:/demand@champion \
        --data sales@3 --policy gate.yaml --report gate.md --junit gate.xml
    """
    # A bad policy, model or data path raises: the root command prints it and exits 2.
    result = _run(ctx, candidate, champion, data, policy, trusted, not no_record)
    console = ctx.obj.console()
    print_report(result, console)
    _write(report, result.to_markdown())
    _write(junit, result.to_junit_xml())
    if json_path is not None:
        import json

        _write(json_path, json.dumps(result.to_dict(), indent=2, default=str))
    raise typer.Exit(EXIT_PASSED if result.passed else EXIT_FAILED)


def _run(
    ctx: typer.Context,
    candidate: str,
    champion: str | None,
    data: str,
    policy_path: Path,
    trusted: bool,
    record: bool,
) -> GateReport:
    from modelyard.data.client import DataClient
    from modelyard.registry.client import RegistryClient
    from modelyard.validation.gates import GatePolicy, record_gate, run_gate

    policy = GatePolicy.from_yaml(policy_path)
    settings = ctx.obj.settings()
    registry = RegistryClient.from_settings(settings)
    data_client = DataClient.from_settings(settings)
    console = ctx.obj.console()
    with console.status(f"evaluating {candidate} against {champion or 'no champion'}…"):
        result = run_gate(
            policy,
            candidate,
            data,
            champion,
            registry=registry,
            data_client=data_client,
            trusted=trusted,
        )
        if record:
            folder = record_gate(result, registry)
            if folder:
                result.notes.append(f"recorded on the candidate version; reports in {folder}")
    return result


def _write(path: Path | None, text: str) -> None:
    if path is not None:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")


def print_report(result: GateReport, console: Console) -> None:
    from rich.table import Table
    from rich.text import Text

    table = Table(title=f"gate {result.policy}: {result.candidate} vs {result.champion or 'none'}")
    for column in ("", "rule", "observed", "threshold", "detail"):
        table.add_column(column, overflow="fold")
    for o in result.outcomes:
        if o.passed:
            mark = Text("✓", style="green")
        else:
            mark = Text("✗" if o.blocking else "!", style="red" if o.blocking else "yellow")
        table.add_row(mark, o.rule, o.observed, o.threshold, Text(o.detail))
    console.print(table)
    metrics = Table(title=f"metrics on {result.data} ({result.candidate_eval.rows:,} rows)")
    for column in ("metric", "candidate", "95% CI", "champion"):
        metrics.add_column(column)
    theirs = result.champion_eval.metrics if result.champion_eval else {}
    for name, summary in result.candidate_eval.metrics.items():
        ci = "" if summary.ci_low is None else f"[{summary.ci_low:.4g}, {summary.ci_high:.4g}]"
        other = theirs.get(name)
        metrics.add_row(name, f"{summary.value:.4g}", ci, f"{other.value:.4g}" if other else "—")
    console.print(metrics)
    for note in result.notes:
        console.print(f"[dim]{note}[/]")
    style = "bold green" if result.passed else "bold red"
    console.print(Text(result.summary(), style=style))
