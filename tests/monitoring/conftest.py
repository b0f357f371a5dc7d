"""Fixtures of the monitoring room's tests: deployments to hang monitors on (the migrated
databases, ``metadata_db`` and ``sqlite_db``, come from tests/conftest.py)."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from sqlalchemy import insert, select

from modelyard.serving.tables import deployments, serving_environments
from modelyard.store.engine import Database


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
