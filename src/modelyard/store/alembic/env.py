"""Alembic environment: runs migrations on the connection modelyard hands it."""

from __future__ import annotations

from alembic import context

from modelyard.store.schema import load_all_tables, metadata

target_metadata = metadata


def _run() -> None:
    connection = context.config.attributes.get("connection")
    if connection is None:  # `alembic revision --autogenerate` from a developer's shell
        from sqlalchemy import create_engine

        engine = create_engine(context.config.get_main_option("sqlalchemy.url", ""))
        with engine.connect() as connection:
            _configure_and_run(connection)
        return
    _configure_and_run(connection)


def _configure_and_run(connection) -> None:  # type: ignore[no-untyped-def]
    load_all_tables()  # autogenerate compares against every room's tables
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        render_as_batch=connection.dialect.name == "sqlite",
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()


_run()
