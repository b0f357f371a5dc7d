"""Fixtures of the lineage tests: a migrated metadata database on SQLite and (when the
server is there) PostgreSQL, and the whole story written by the real rooms on each."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from modelyard.config import Settings
from modelyard.store.engine import Database, open_database
from modelyard.store.migrations import ensure_schema

from .lineage_yard import Story, write_story


@pytest.fixture(params=["sqlite", "postgres"])
def store_uri(request, tmp_path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'meta.db'}"
    return str(request.getfixturevalue("postgres_uri"))


@pytest.fixture
def metadata_db(store_uri) -> Iterator[Database]:
    """A migrated metadata database, once per backend."""
    db = open_database(store_uri)
    ensure_schema(db)
    try:
        yield db
    finally:
        db.dispose()


@pytest.fixture
def story(tmp_path, store_uri) -> Iterator[Story]:
    """Dataset → feature view → training set → run → model → deployment → prediction,
    written by the rooms themselves, once per backend."""
    settings = Settings(home=tmp_path / "yard", user="ana", store_uri=store_uri)
    written = write_story(tmp_path, settings)
    try:
        yield written
    finally:
        written.close()
