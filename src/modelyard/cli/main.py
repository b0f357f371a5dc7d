"""The ``modelyard`` command: global options, the command tree, and error rendering.

The global options (``--home``, ``--store-uri``, ``--artifacts-uri``) build one
``Settings`` object, handed to every command through ``ctx.obj``; they may be given
before or after the command (``modelyard --home y runs list`` = ``modelyard runs list
--home y``).

Exit codes mean one thing each: 0 done, 1 the check failed (the verdict of ``data
check``, ``gate``, ``audit verify``, ``features skew``), 2 usage or environment (bad
arguments, unknown names, missing files, a missing extra, a refused request, a store out
of reach). A ``ModelyardError``, a missing file or a missing optional package is printed
as one red line on stderr and exits with 2, never as a traceback.

Only typer is imported here: settings, stores and pandas load inside the commands, so
``modelyard --help`` answers instantly.

>>> from typer.testing import CliRunner
>>> CliRunner().invoke(app, ["--home", str(tmp_home), "experiments", "list"])
<Result okay>
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer

from modelyard.cli.help_format import PlainHelpCommand, PlainHelpGroup, use_plain_help
from modelyard.errors import InvalidParameter, ModelyardError

if TYPE_CHECKING:  # typer 0.29 vendors its own click: importing click would cost 17 ms
    from rich.console import Console
    from typer import _click as click

    from modelyard.auth.service import AuthService
    from modelyard.config import Settings
    from modelyard.features.client import FeatureStore
    from modelyard.registry.client import RegistryClient
    from modelyard.serving.deployments import DeploymentService
    from modelyard.tracking.client import TrackingClient

#: Options of the root command that may also follow the subcommand.
GLOBAL_OPTIONS = ("--home", "--store-uri", "--artifacts-uri")
#: The commands, in the order ``modelyard --help`` lists them (the lifecycle: experiments,
#: runs, ..., gc, demo): name → ``(module, attribute, help)``. The attribute is a typer app
#: (a command group) or a function (a single command) in ``modelyard.cli.<module>``;
#: modules load only when their command runs, so ``modelyard features apply`` never
#: imports the server. The root ``--help`` lists each command by this help (the first
#: paragraph of the command's own help, which tests/cli/test_main.py keeps equal) and
#: imports none of them.
COMMANDS: dict[str, tuple[str, str, str]] = {
    "experiments": (
        "experiments",
        "app",
        "Create, list, rename, delete and restore experiments.",
    ),
    "runs": ("runs", "app", "Inspect, search, compare, delete and restore runs."),
    "data": (
        "data",
        "app",
        "Version datasets (snapshot, pull, list, show, diff) and check data contracts.",
    ),
    "models": ("models", "app", "Register, promote, approve and describe model versions."),
    "gate": (
        "gate",
        "gate",
        "Gate a candidate model: rules, champion comparison, slices, contract, latency.",
    ),
    "features": (
        "features",
        "app",
        "Define features once; build point-in-time-correct training sets; serve them online.",
    ),
    "deploy": ("deploy", "app", "Deploy model versions: blue-green, canary, shadow, A/B."),
    "serve": (
        "serve",
        "serve",
        "Serve predictions for a deployment (following its revisions) or one model.",
    ),
    "server": (
        "server",
        "server",
        "Serve the MLflow-compatible tracking API and artifact proxy over HTTP.",
    ),
    "ui": (
        "ui",
        "ui",
        "Open the web UI: runs, charts, artifacts, served from this machine's stores.",
    ),
    "drift": (
        "drift",
        "drift",
        "Compare two datasets for drift: per-column tests and distances, one verdict.",
    ),
    "monitor": (
        "monitor",
        "app",
        "Monitor deployments: drift, live metrics from feedback, alerts, reports.",
    ),
    "pipelines": (
        "pipelines",
        "app",
        "Run pipelines of steps (tracked, cached, resumable), locally or on Ray.",
    ),
    "schedule": (
        "schedule",
        "app",
        "Start registered pipelines on cron schedules: create, list, pause, resume, delete.",
    ),
    "scheduler": (
        "scheduler",
        "scheduler",
        "Run monitors, pipeline schedules and alert triggers: each due run started once.",
    ),
    "sweep": (
        "sweep",
        "sweep",
        "Search hyperparameters with Optuna: each trial a tracked child run, pruned early.",
    ),
    "build": ("build", "build", "Write a container build context serving one model version."),
    "k8s": (
        "build",
        "k8s_app",
        "Kubernetes manifests: the data plane (serve DEPLOYMENT) or the control plane (server).",
    ),
    "lineage": (
        "lineage",
        "lineage",
        "Trace lineage: where a prediction, model, run or dataset came from, or what it fed.",
    ),
    "audit": ("audit", "app", "Show and verify the audit trail of registry changes."),
    "users": (
        "users",
        "app",
        "Create and list users of an authenticated server; change their roles.",
    ),
    "tokens": ("tokens", "app", "Create, list and revoke API tokens."),
    "db": (
        "db",
        "app",
        "Migrate the metadata database's schema, or wait until it is migrated.",
    ),
    "gc": (
        "gc",
        "gc",
        "Purge deleted runs and unreferenced artifact blobs; report the space freed.",
    ),
    "init": ("init", "app", "Scaffold project files (CI workflows)."),
    "demo": (
        "demo",
        "demo",
        "Run the retail demand-forecasting demo: data to a retrained model serving traffic.",
    ),
}
#: ``ctx.meta`` key set while the root help lists the commands: they are shown from
#: COMMANDS, not loaded.
_LISTING = "modelyard.listing"
#: Line width when stdout is a pipe or a file: wide enough that tables never cut run ids.
PIPE_WIDTH = 240
#: The exit codes (README, "Exit codes"): a script tells "the data is bad" (1) from "the
#: command could not run" (2).
EXIT_OK = 0
EXIT_CHECK_FAILED = 1
EXIT_USAGE = 2


class CliState:
    """What every command shares: the settings overrides given on the command line, the
    ``Settings`` and the services built from them, and the output console.

    Each is created on first use and kept for the command: the root callback runs even for
    ``modelyard runs --help``, which must not open a database. ``close`` closes what was
    opened.
    """

    def __init__(self, overrides: dict[str, Any]) -> None:
        self.overrides = {k: v for k, v in overrides.items() if v is not None}
        self._settings: Settings | None = None
        self._client: TrackingClient | None = None
        self._registry: RegistryClient | None = None
        self._deployments: DeploymentService | None = None
        self._feature_store: FeatureStore | None = None
        self._auth: AuthService | None = None
        self._console: Console | None = None

    def console(self) -> Console:
        """Rich output on stdout; in a pipe, lines are PIPE_WIDTH wide instead of 80."""
        if self._console is None:
            from rich.console import Console

            console = Console()
            self._console = console if console.is_terminal else Console(width=PIPE_WIDTH)
        return self._console

    def settings(self) -> Settings:
        if self._settings is None:
            from pydantic import ValidationError

            from modelyard.config import load_settings

            try:
                self._settings = load_settings(**self.overrides)
            except ValidationError as exc:
                first = exc.errors()[0]
                where = ".".join(str(part) for part in first["loc"]) or "settings"
                raise InvalidParameter(
                    f"setting {where} is invalid: {first['msg']} (got {first.get('input')!r}); "
                    f"fix the MODELYARD_{where.upper()} variable or the command-line option",
                    field=where,
                ) from None
        return self._settings

    def client(self) -> TrackingClient:
        """The tracking client."""
        if self._client is None:
            from modelyard.tracking.client import TrackingClient

            self._client = TrackingClient.from_settings(self.settings())
        return self._client

    def registry(self) -> RegistryClient:
        """The model registry."""
        if self._registry is None:
            from modelyard.monitoring.references import recording_references
            from modelyard.registry.client import RegistryClient

            self._registry = recording_references(RegistryClient.from_settings(self.settings()))
        return self._registry

    def deployments(self) -> DeploymentService:
        """The deployments and their revisions."""
        if self._deployments is None:
            from modelyard.serving.deployments import DeploymentService

            self._deployments = DeploymentService.from_settings(self.settings())
        return self._deployments

    def feature_store(self) -> FeatureStore:
        """The feature store (closed by ``close``: online writes checkpointed, WAL emptied)."""
        if self._feature_store is None:
            from modelyard.features.client import FeatureStore

            self._feature_store = FeatureStore.from_settings(self.settings())
        return self._feature_store

    def auth(self) -> AuthService:
        """The users and tokens of the metadata store. Only a local store has them: a
        tracking URI is refused, as the server manages its own."""
        if self._auth is None:
            from modelyard.auth.service import AuthService
            from modelyard.tracking.backends import database_for

            settings = self.settings()
            if settings.is_remote:
                raise InvalidParameter(
                    "users and tokens are managed on the server's own metadata store, not "
                    f"through a tracking URI ({settings.tracking_uri}); unset "
                    "MODELYARD_TRACKING_URI and pass --store-uri (or --home) of the server",
                    field="tracking_uri",
                )
            self._auth = AuthService(database_for(settings))
        return self._auth

    def close(self) -> None:
        """Close the feature store and the client if the command opened them."""
        if self._feature_store is not None:
            self._feature_store.close()
        if self._client is not None:
            self._client.close()


class ModelyardGroup(PlainHelpGroup):
    """The root group: lifts global options written after the command, renders errors."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        """The lifecycle order of COMMANDS, then any others."""
        return [*COMMANDS, *(n for n in super().list_commands(ctx) if n not in COMMANDS)]

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        found = super().get_command(ctx, cmd_name)
        if found is None and cmd_name in COMMANDS:
            if ctx.meta.get(_LISTING):  # the root help: name and help, nothing imported
                return typer.core.TyperCommand(cmd_name, help=COMMANDS[cmd_name][2])
            found = _load_command(cmd_name)
            self.add_command(found, cmd_name)
        return found

    def format_help(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        ctx.meta[_LISTING] = True
        try:
            super().format_help(ctx, formatter)
        finally:
            ctx.meta[_LISTING] = False

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        return super().parse_args(ctx, hoist_global_options(args))

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except ModelyardError as exc:
            print_error(str(exc))
            raise typer.Exit(EXIT_USAGE) from None
        except ImportError as exc:
            from modelyard.cli.extras import missing_extra

            found = missing_extra(exc, f"modelyard {ctx.invoked_subcommand or ''}".strip())
            if found is None:  # not an optional package: a bug, shown in full
                raise
            print_error(str(found))
            raise typer.Exit(EXIT_USAGE) from None
        except (FileNotFoundError, IsADirectoryError, NotADirectoryError) as exc:
            print_error(f"{exc.strerror}: {exc.filename}" if exc.filename else str(exc))
            raise typer.Exit(EXIT_USAGE) from None


def _load_command(name: str) -> click.Command:
    """Import the module behind ``name`` and turn its typer app or function into a command
    (with the plain-help classes: ``NAME``, not ``{name}``; ``--json``, not ``--json <bool>``)."""
    from importlib import import_module

    module_name, attribute, _ = COMMANDS[name]
    found = getattr(import_module(f"modelyard.cli.{module_name}"), attribute)
    if isinstance(found, typer.Typer):
        group = typer.main.get_group(use_plain_help(found))
        group.name = name
        return group
    holder = typer.Typer()
    holder.command(name, cls=PlainHelpCommand)(found)
    holder.callback()(lambda: None)  # keep a group, so the command keeps its name
    return typer.main.get_group(holder).commands[name]


def hoist_global_options(args: list[str]) -> list[str]:
    """Move ``--home X`` / ``--home=X`` (and the other global options) to the front.

    Everything after ``--`` is left alone, as is an option missing its value.
    """
    front: list[str] = []
    rest: list[str] = []
    i = 0
    while i < len(args):
        arg = args[i]
        if arg == "--":
            rest.extend(args[i:])
            break
        if arg in GLOBAL_OPTIONS and i + 1 < len(args):
            front.extend(args[i : i + 2])
            i += 2
            continue
        if arg.split("=", 1)[0] in GLOBAL_OPTIONS and "=" in arg:
            front.append(arg)
        else:
            rest.append(arg)
        i += 1
    return front + rest


def print_error(message: str) -> None:
    """One red line on stderr: ``error: <message>``."""
    from rich.console import Console
    from rich.markup import escape

    line = " ".join(message.split())
    Console(stderr=True, soft_wrap=True).print(f"[bold red]error:[/] {escape(line)}")


app = typer.Typer(
    name="modelyard",
    cls=ModelyardGroup,
    help="modelyard: take machine-learning models from experiment to reliable production.\n\n"
    "Global options may also follow the command: modelyard runs list --home PATH.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_show_locals=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)


def _version(value: bool) -> None:
    if value:
        from modelyard import __version__

        typer.echo(f"modelyard {__version__}")
        raise typer.Exit()


@app.callback()
def root(
    ctx: typer.Context,
    home: Path | None = typer.Option(
        None,
        "--home",
        help="Root of the embedded store (default: $MODELYARD_HOME or ./.modelyard).",
        metavar="PATH",
    ),
    store_uri: str | None = typer.Option(
        None,
        "--store-uri",
        metavar="URI",
        help="Metadata store URI, e.g. postgresql+psycopg://user@host/db.",
    ),
    artifacts_uri: str | None = typer.Option(
        None,
        "--artifacts-uri",
        metavar="URI",
        help="Artifact store: a folder or s3://bucket/prefix.",
    ),
    version: bool = typer.Option(
        False, "--version", callback=_version, is_eager=True, help="Print the version and exit."
    ),
) -> None:
    """modelyard: take machine-learning models from experiment to reliable production."""
    ctx.obj = CliState({"home": home, "store_uri": store_uri, "artifacts_uri": artifacts_uri})
    ctx.call_on_close(ctx.obj.close)


def main() -> None:
    """The console-script entry point (``modelyard = modelyard.cli.main:main``)."""
    app()


if __name__ == "__main__":  # pragma: no cover
    main()
