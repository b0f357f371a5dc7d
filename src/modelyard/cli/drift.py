"""``modelyard drift``: compare two tables (or a stored profile and a table); exit 0 or 1.

::

    modelyard drift train.parquet today.csv
    modelyard drift sales@3 sales@4 --json
    modelyard drift reference.profile today.parquet --html drift.html \\
        --column price --column promo --method price=psi --threshold price=0.2 --share 0.3

REFERENCE and CURRENT are CSV or Parquet files (or folders of them), dataset versions
(``sales@3``, read from the store), or — for REFERENCE — a stored reference profile
(``*.profile``); the drift core's input rules (``monitoring.tables_input``) open them.
The table of columns is printed (or, with ``--json``, ``DriftReport.to_dict()``), the
HTML report is written when asked. Exit codes:
0 the dataset has not drifted, 1 it has, 2 usage (a missing file, an unknown column or
method, a malformed ``--method``/``--threshold``) — so a pipeline tells drift from a typo.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import TYPE_CHECKING

import typer

if TYPE_CHECKING:
    from rich.console import Console

    from modelyard.data.client import DataClient
    from modelyard.monitoring.results import DriftReport

EXIT_NOT_DRIFTED = 0
EXIT_DRIFTED = 1


def drift(
    ctx: typer.Context,
    reference: str = typer.Argument(
        ..., help="Reference: CSV/Parquet, a dataset version (sales@3) or a stored profile."
    ),
    current: str = typer.Argument(..., help="Current data: CSV/Parquet or sales@4."),
    as_json: bool = typer.Option(False, "--json", help="Print the report as JSON."),
    html: Path | None = typer.Option(
        None, "--html", help="Write a self-contained HTML report here.", metavar="PATH"
    ),
    columns: list[str] | None = typer.Option(
        None, "--column", "-c", help="Compare only this column (repeatable).", metavar="NAME"
    ),
    methods: list[str] | None = typer.Option(
        None,
        "--method",
        help="A column's method: ks, wasserstein, psi, jensen_shannon, chi2 (COLUMN=METHOD).",
        metavar="COLUMN=METHOD",
    ),
    thresholds: list[str] | None = typer.Option(
        None,
        "--threshold",
        help="A column's threshold for its method (COLUMN=NUMBER).",
        metavar="COLUMN=NUMBER",
    ),
    share: float = typer.Option(
        0.5,
        "--share",
        help="The dataset drifted when this share of its columns drifted (0 < share <= 1).",
        metavar="SHARE",
    ),
) -> None:
    r"""Compare two datasets for drift: per-column tests and distances, one verdict.

    Examples:
    $ modelyard drift train.parquet today.csv
    $ modelyard drift sales@3 sales@4 --json
    $ modelyard drift reference.profile today.parquet --html drift.html \
        --method price=psi --threshold price=0.2 --share 0.3
    """
    from modelyard.monitoring.drift import drift as compare

    # Bad options raise InvalidParameter naming the option: the root prints it, exit 2.
    method = parse_methods(methods or [])
    threshold = parse_thresholds(thresholds or [])
    _check_share(share)
    report = compare(
        reference,
        current,
        columns=columns or None,
        method=method or None,
        threshold=threshold or None,
        share=share,
        data_client=_data_client(ctx, reference, current),
    )
    if html is not None:
        from modelyard.monitoring.html_report import render_drift_report

        page = render_drift_report(
            report,
            title=f"Drift: {current} against {reference}",
            reference_name=reference,
            current_name=current,
        )
        _write_atomically(html, page)
    if as_json:
        import json

        typer.echo(json.dumps(report.to_dict(), indent=2, allow_nan=False, ensure_ascii=False))
    else:
        print_report(report, ctx.obj.console(), html)
    raise typer.Exit(EXIT_DRIFTED if report.dataset_drifted else EXIT_NOT_DRIFTED)


def parse_methods(values: list[str]) -> dict[str, str]:
    """``["price=psi"]`` → ``{"price": "psi"}`` (the drift core checks the method names)."""
    return dict(_split(value, "--method", "COLUMN=METHOD", "price=psi") for value in values)


def parse_thresholds(values: list[str]) -> dict[str, float]:
    """``["price=0.2"]`` → ``{"price": 0.2}``; a threshold is a finite number >= 0."""
    from modelyard.errors import InvalidParameter

    parsed = {}
    for value in values:
        column, raw = _split(value, "--threshold", "COLUMN=NUMBER", "price=0.2")
        try:
            limit = float(raw)
        except ValueError:
            limit = math.nan
        if not math.isfinite(limit) or limit < 0:
            raise InvalidParameter(
                f"--threshold {value!r}: the threshold must be a finite number >= 0, got {raw!r}",
                field="--threshold",
            )
        parsed[column] = limit
    return parsed


def _split(value: str, option: str, form: str, example: str) -> tuple[str, str]:
    """Split at the last ``=``: a column name may hold one, a method or number never does."""
    from modelyard.errors import InvalidParameter

    column, sep, raw = value.rpartition("=")
    if not sep or not column or not raw.strip():
        raise InvalidParameter(
            f"{option} {value!r} is not {form} (e.g. {option} {example})", field=option
        )
    return column, raw.strip()


def _check_share(share: float) -> None:
    from modelyard.errors import InvalidParameter

    if not (math.isfinite(share) and 0 < share <= 1):
        raise InvalidParameter(
            f"--share must be a number in (0, 1], got {share!r} (0.5: half the columns)",
            field="--share",
        )


def _data_client(ctx: typer.Context, *values: str) -> DataClient | None:
    """The store's ``DataClient`` when a value names a dataset version (``sales@3``); two
    files need no store. A path that does not exist is refused here, by its name, rather
    than looked up as a dataset."""
    from modelyard.data.client import DataClient, looks_like_path

    versions = False
    for value in values:
        if Path(value).exists():
            continue
        if looks_like_path(value):
            raise FileNotFoundError(2, "No such file", value)
        versions = True
    return DataClient.from_settings(ctx.obj.settings()) if versions else None


def _write_atomically(path: Path, text: str) -> None:
    """Write ``path`` whole or not at all: a temporary file beside it, then a rename."""
    import os
    import tempfile

    path.parent.mkdir(parents=True, exist_ok=True)
    fd, temporary = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(text)
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


def print_report(report: DriftReport, console: Console, html: Path | None = None) -> None:
    """One row per column, drifted first; columns that could not be compared; the verdict."""
    from rich.table import Table
    from rich.text import Text

    from modelyard.monitoring.html_report import P_VALUE_METHODS, format_number, format_share

    table = Table(
        title=f"drift: {report.current_rows:,} current rows against "
        f"{report.reference_rows:,} reference rows"
    )
    for name in ("", "column", "kind", "method", "score", "threshold", "missing", "verdict"):
        justify = "right" if name in ("score", "threshold", "missing") else "left"
        table.add_column(name, overflow="fold", justify=justify)  # type: ignore[arg-type]
    for col in sorted(report.columns.values(), key=lambda c: not c.drifted):
        mark = Text("✗", style="red") if col.drifted else Text("✓", style="green")
        rule = "<" if col.method in P_VALUE_METHODS else "≥"
        missing = f"{format_share(col.reference_missing)} → {format_share(col.current_missing)}"
        table.add_row(
            mark,
            Text(col.column),
            col.kind,
            col.method,
            format_number(col.score),
            f"{rule} {format_number(col.threshold)}",
            Text(missing, style="red" if col.missing_drifted else ""),
            Text(col.verdict),
        )
    for name, reason in report.errors.items():
        table.add_row(Text("✗", style="red"), Text(name), "", "", "", "", "", Text(reason))
    console.print(table)
    drifted, compared = len(report.drifted_columns), len(report.columns) + len(report.errors)
    verdict = "dataset drifted" if report.dataset_drifted else "dataset not drifted"
    rule = "≥" if report.dataset_drifted else "<"
    line = (
        f"{verdict}: {drifted} of {compared} columns ({format_share(report.share_drifted)}) "
        f"{rule} share {format_share(report.share_threshold)}"
    )
    if html is not None:
        console.print(Text(f"HTML report: {html}", style="dim"))
    console.print(Text(line, style="bold red" if report.dataset_drifted else "bold green"))
