"""Choose the tracking backends from settings, by URI scheme.

Local: a SQL metadata store (SQLite by default, PostgreSQL) plus an artifact repository
over a blob store (a folder by default, S3). Remote (``MODELYARD_TRACKING_URI=http://…``):
the same interfaces spoken over HTTP to ``modelyard server``.
"""

from __future__ import annotations

import threading
from typing import Any

from sqlalchemy.exc import OperationalError

from modelyard.config import Settings
from modelyard.errors import NotImplementedFeature, StoreUnavailable
from modelyard.store.engine import Database, open_database
from modelyard.store.migrations import ensure_schema
from modelyard.tracking.store import TrackingStore

_lock = threading.Lock()
_databases: dict[tuple[str, str], Database] = {}


def database_for(settings: Settings) -> Database:
    """One migrated ``Database`` per store URI per process (engines pool connections)."""
    key = (settings.resolved_store_uri(), settings.sqlite_synchronous)
    with _lock:
        db = _databases.get(key)
        if db is None:
            db = open_database(key[0], sqlite_synchronous=key[1])
            try:
                ensure_schema(db)
            except OperationalError as exc:
                db.dispose()
                raise StoreUnavailable(
                    f"cannot open the metadata store {db.uri}: {exc.orig}".strip()
                ) from exc
            _databases[key] = db
        return db


def open_backends(settings: Settings) -> tuple[TrackingStore, Any]:
    if settings.tracking_uri and not settings.is_remote:
        raise NotImplementedFeature(
            f"tracking URI {settings.tracking_uri!r} is not an http(s):// server address; "
            "set MODELYARD_STORE_URI for a database instead"
        )
    if settings.is_remote:
        from modelyard.artifacts.remote import RemoteArtifactRepository
        from modelyard.http_transport import HttpTransport
        from modelyard.tracking.rest_store import RestTrackingStore

        transport = HttpTransport(str(settings.tracking_uri), token=settings.tracking_token)
        return RestTrackingStore(transport), RemoteArtifactRepository(transport)
    from modelyard.artifacts.blobs import open_blob_store
    from modelyard.artifacts.repository import ArtifactRepository
    from modelyard.tracking.sql_store import SqlTrackingStore

    db = database_for(settings)
    blobs = open_blob_store(settings.resolved_artifacts_uri())
    return SqlTrackingStore(db), ArtifactRepository(db, blobs)


def reset_cache() -> None:
    """Forget opened databases (tests that switch stores call this)."""
    with _lock:
        for db in _databases.values():
            db.dispose()
        _databases.clear()
