"""``modelyard db``: migrate the metadata schema as a step of its own, or wait for it.

Every command migrates the schema on first use, so one machine never needs these. A
cluster does: one Job runs ``modelyard db upgrade`` before a rollout (one migrator, with
its own time limit and logs), and each new server pod waits in ``modelyard db wait``
until the schema is the one its code expects, so replicas never race to migrate and
none serves a schema older than its code (``modelyard k8s server`` writes both).
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

import typer

if TYPE_CHECKING:
    from modelyard.config import Settings
    from modelyard.store.engine import Database

#: What to check when ``db wait`` never reached a PostgreSQL database.
_CHECK_LOGIN = (
    " (check the host, the user and the password the pod reads: PGPASSWORD or the URI's Secret)"
)

app = typer.Typer(
    help="Migrate the metadata database's schema, or wait until it is migrated.",
    no_args_is_help=True,
)


def _local_settings(ctx: typer.Context) -> Settings:
    """The settings, refusing a tracking URI: a server migrates its own database."""
    from modelyard.errors import InvalidParameter

    settings: Settings = ctx.obj.settings()
    if settings.is_remote:
        raise InvalidParameter(
            f"the schema is migrated on the database, not through a tracking URI "
            f"({settings.tracking_uri}); unset MODELYARD_TRACKING_URI and pass --store-uri",
            field="tracking_uri",
        )
    return settings


def _shown(uri: str) -> str:
    from sqlalchemy.engine import make_url

    return make_url(uri).render_as_string(hide_password=True)


def _unreachable(db: Database) -> str | None:
    """Why ``db`` cannot be connected to now, in the driver's words, or None.

    ``db wait`` keeps waiting on it (a database still starting, a role its operator has
    not created yet), but says why at once and again when it gives up: a wrong password
    otherwise reads as "not migrated yet" for the whole timeout. libpq's messages name the
    host and the user, never the password.
    """
    from sqlalchemy.exc import DBAPIError

    from modelyard.errors import StoreUnavailable

    try:
        with db.engine.connect():
            return None
    except DBAPIError as exc:
        return " ".join(str(exc.orig).split())
    except StoreUnavailable as exc:
        return str(exc)


@app.command()
def upgrade(ctx: typer.Context) -> None:
    """Create or migrate the schema to this version's, then exit.

    Safe to run from several places at once: the database serialises migrations (an
    advisory lock on PostgreSQL), and a schema already current costs one query.

    Example:
    $ modelyard db upgrade --store-uri postgresql+psycopg://modelyard@db.internal/modelyard
    """
    from modelyard.store.migrations import current_revision
    from modelyard.tracking.backends import database_for

    settings = _local_settings(ctx)
    db = database_for(settings)  # migrates; an unreachable database is StoreUnavailable
    typer.echo(
        f"modelyard db: {_shown(settings.resolved_store_uri())} at schema revision "
        f"{current_revision(db)}"
    )


@app.command()
def wait(
    ctx: typer.Context,
    timeout: str = typer.Option(
        "10m",
        "--timeout",
        metavar="DURATION",
        help="Give up (exit 2) after this long, e.g. 90s, 10m.",
    ),
    interval: str = typer.Option("2s", "--interval", metavar="DURATION", help="How often to look."),
) -> None:
    """Wait until the schema is this version's (migrated by someone else), then exit 0.

    Never migrates: the init container of a server pod runs it, so the server starts
    only once the migration Job is done (an unreachable database counts as not yet). A
    schema a newer modelyard migrated is refused at once (exit 2): waiting cannot help.

    Example:
    $ modelyard db wait --timeout 10m
    """
    from modelyard.durations import parse_duration
    from modelyard.errors import StoreUnavailable
    from modelyard.store.engine import open_database
    from modelyard.store.migrations import SCHEMA_REVISION, current_revision, refuse_too_new

    limit_s = parse_duration(timeout, "--timeout").total_seconds()
    every_s = max(parse_duration(interval, "--interval").total_seconds(), 0.05)
    settings = _local_settings(ctx)
    uri = settings.resolved_store_uri()
    db = open_database(uri, sqlite_synchronous=settings.sqlite_synchronous)
    deadline = time.monotonic() + limit_s
    told = None
    try:
        while True:
            reason = _unreachable(db)
            if reason is not None and reason != told:  # in the pod's log at once, not at the end
                typer.echo(f"modelyard db: cannot reach {_shown(uri)} yet: {reason}", err=True)
                told = reason
            try:
                revision = None if reason else current_revision(db)
            except StoreUnavailable:  # SQLite's way of saying "cannot open"
                revision = None
            if revision == SCHEMA_REVISION:
                typer.echo(f"modelyard db: {_shown(uri)} at schema revision {revision}")
                return
            if revision is not None:  # older: wait on; one this code does not know: refuse
                refuse_too_new(_shown(uri), revision)
            if time.monotonic() + every_s > deadline:
                if reason is not None:
                    hint = "" if db.is_sqlite else _CHECK_LOGIN
                    raise StoreUnavailable(
                        f"could not reach {_shown(uri)} in {timeout}: {reason}{hint}"
                    )
                found = revision or "none (not created yet)"
                raise StoreUnavailable(
                    f"the schema of {_shown(uri)} is at revision {found} after {timeout}; "
                    f"this modelyard needs {SCHEMA_REVISION}: run `modelyard db upgrade` "
                    "(the migration Job `modelyard k8s server` writes) first"
                )
            time.sleep(every_s)
    finally:
        db.dispose()
