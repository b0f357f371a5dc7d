"""Fixtures of the monitoring room's tests: a metadata database with the whole schema, on
SQLite and (when the server is there) PostgreSQL, and deployments to hang monitors on."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest
from sqlalchemy import insert, select

from modelyard.serving.tables import deployments, serving_environments
from modelyard.store.engine import Database, open_database
from modelyard.store.migrations import ensure_schema


def _open(uri: str) -> Iterator[Database]:
    db = open_database(uri)
    ensure_schema(db)
    try:
        yield db
    finally:
        db.dispose()


@pytest.fixture(params=["sqlite", "postgres"])
def metadata_db(request, tmp_path) -> Iterator[Database]:
    """A migrated metadata database, once per backend."""
    if request.param == "sqlite":
        uri = f"sqlite:///{tmp_path / 'meta.db'}"
    else:
        uri = request.getfixturevalue("postgres_uri")
    yield from _open(uri)


@pytest.fixture
def sqlite_db(tmp_path) -> Iterator[Database]:
    """A migrated SQLite metadata database (for tests about logic, not backends)."""
    yield from _open(f"sqlite:///{tmp_path / 'meta.db'}")


def add_deployment(db: Database, name: str = "web") -> str:
    """A deployment row (monitors refer to one), written directly: these tests are about
    monitoring's tables, not about deploying models."""
    with db.write() as conn:
        if conn.execute(select(serving_environments.c.name)).first() is None:
            conn.execute(
                insert(serving_environments).values(
                    name="production", requires=None, protected=False, created_at=0
                )
            )
        conn.execute(
            insert(deployments).values(
                name=name,
                environment="production",
                current_revision=1,
                created_by="tester",
                created_at=0,
                updated_at=0,
            )
        )
    return name


@pytest.fixture
def deployment() -> Callable[[Database, str], str]:
    return add_deployment
