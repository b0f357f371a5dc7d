"""``modelyard demo``: the retail demand-forecasting story end to end, on the embedded default.

Generated sales history (nothing is downloaded) goes through every room: a dataset version
and its contract, the feature store, a sweep and time-aware cross-validation, slices, a
quality gate against the champion, registration with a card, four-eyes approval,
blue-green and canary deployments, live traffic through ``modelyard serve`` over HTTP with
feedback, a monitor whose alert triggers the retraining pipeline, and the retrained model's
shadow, canary and promotion. The stages live in ``modelyard.demo``; this is the command.

    modelyard demo --home /tmp/yard              # then the UI, until Ctrl-C
    modelyard demo --home /tmp/yard --quick --no-serve
"""

from __future__ import annotations

import shlex
from pathlib import Path

import typer

DEFAULT_ROWS = 20_000
QUICK_ROWS = 8_000


def demo(
    ctx: typer.Context,
    rows: int | None = typer.Option(
        None,
        "--rows",
        help=f"History rows to generate (stores × products × days); {DEFAULT_ROWS:,} "
        f"({QUICK_ROWS:,} with --quick).",
    ),
    quick: bool = typer.Option(
        False, "--quick", help="A scaled-down story: fewer trials, rounds and live days."
    ),
    serve: bool = typer.Option(
        True, "--serve/--no-serve", help="Keep the web UI running at the end, until Ctrl-C."
    ),
    port: int = typer.Option(0, "--port", min=0, max=65535, help="The UI's port (0: a free one)."),
) -> None:
    """Run the retail demand-forecasting demo: data to a retrained model serving traffic.

    Where it stores everything follows the global options: modelyard demo --home /tmp/yard.
    A second run in the same home reuses what is there (and says so).
    """
    try:
        import matplotlib  # noqa: F401
        import optuna  # noqa: F401
        import sklearn  # noqa: F401
        import skops  # noqa: F401
        import uvicorn  # noqa: F401
    except ImportError as exc:
        from modelyard.errors import MissingExtra

        name = exc.name or "scikit-learn"
        package = {"sklearn": "scikit-learn"}.get(name, name)
        extra = {"matplotlib": "plots", "optuna": "sweeps", "uvicorn": "serving"}.get(
            name, "sklearn"
        )
        raise MissingExtra(package, extra, "modelyard demo") from None
    rows = rows if rows is not None else QUICK_ROWS if quick else DEFAULT_ROWS
    if rows < 1_000:
        raise typer.BadParameter(f"needs at least 1000 rows, got {rows}", param_hint="--rows")

    from modelyard.demo.run import Options, run_demo
    from modelyard.demo.summary import print_summary

    console = ctx.obj.console()
    settings = ctx.obj.settings()
    options = Options.quick(rows) if quick else Options(rows=rows)
    outcome = run_demo(settings, console, options)
    command, hint = how_to_run()
    where = _where(ctx, settings)
    print_summary(console, outcome, settings, where, command)
    if hint:
        console.print(f"  [dim]{hint}[/]", soft_wrap=True)
    if serve:
        _serve_ui(console, outcome, settings, port)


def _where(ctx: typer.Context, settings: object) -> str:
    return " ".join(
        f"{option} {shlex.quote(str(value))}"
        for option, value in (
            ("--home", Path(settings.home).absolute()),  # type: ignore[attr-defined]
            ("--store-uri", ctx.obj.overrides.get("store_uri")),
            ("--artifacts-uri", ctx.obj.overrides.get("artifacts_uri")),
        )
        if value
    )


def _serve_ui(console: object, outcome: object, settings: object, port: int) -> None:
    """The web UI (``modelyard server``) on these stores, until Ctrl-C."""
    import threading

    from modelyard.demo import traffic
    from modelyard.demo.workspace import Workspace

    port = port or traffic.free_port()
    env = Workspace.environment_of(settings)  # type: ignore[arg-type]
    log_path = Path(settings.home).absolute() / "demo" / "ui.log"  # type: ignore[attr-defined]
    with (
        open(log_path, "ab") as log,
        traffic.process(["server", "--port", str(port)], env, log, "/health", port) as url,
    ):
        console.print(  # type: ignore[attr-defined]
            f"\n[bold]the web UI[/]: {url}/ — runs, datasets, models (cards, approvals, gate "
            "reports), deployments and their revisions, monitors and alerts, pipeline runs, "
            "lineage. Ctrl-C to stop.",
            soft_wrap=True,
        )
        try:
            threading.Event().wait()
        except KeyboardInterrupt:
            console.print("stopped")  # type: ignore[attr-defined]


def how_to_run(
    on_path: str | None = None,
    script: Path | None = None,
    in_venv: bool | None = None,
    cwd: Path | None = None,
) -> tuple[str, str | None]:
    """How the user can type ``modelyard`` in their shell, and a hint line (or None).

    After ``make demo`` the command lives in ``.venv/bin``, which is not on the PATH: the
    next commands must name that path (or the venv be activated first). The arguments
    default to this process's view: ``shutil.which``, the running interpreter's scripts
    folder, whether it runs in a virtual environment, the working directory.

    >>> how_to_run(None, Path("/src/.venv/bin/modelyard"), True, Path("/src"))
    ('.venv/bin/modelyard', 'or run `source .venv/bin/activate` once, then `modelyard …`')
    """
    import os
    import shutil
    import sys
    import sysconfig

    if on_path is None:
        on_path = shutil.which("modelyard")
    if script is None:
        name = "modelyard.exe" if os.name == "nt" else "modelyard"
        script = Path(sysconfig.get_path("scripts")) / name
    if in_venv is None:
        in_venv = sys.prefix != sys.base_prefix
    cwd = cwd or Path.cwd()
    if on_path and (not script.exists() or _same_file(Path(on_path), script)):
        return "modelyard", None  # the shell finds this very installation
    shown = script
    if script.is_absolute() and script.is_relative_to(cwd):
        shown = script.relative_to(cwd)
    command = shlex.quote(str(shown))
    if not in_venv:
        return command, None
    activate = shlex.quote(str(shown.parent / "activate"))
    return command, f"or run `source {activate}` once, then `modelyard …`"


def _same_file(a: Path, b: Path) -> bool:
    try:
        return a.samefile(b)
    except OSError:
        return False
