"""The online store interface: the latest value per entity and view, read by key.

Each view's values live in an ``OnlineTable`` named after the view and its data digest,
so a changed transformation writes to a fresh table instead of mixing old and new values.
A row is ``(key, event_ts in microseconds, codec blob)``. Writes never replace a newer
event time with an older one, so materialising windows out of order is safe.

Implementations: ``SqliteOnlineStore`` (embedded default) and ``RedisOnlineStore``
(scale-out). One contract test suite runs against both.
"""

from __future__ import annotations

import hashlib
from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlparse

from modelyard.errors import InvalidParameter

#: Separator of composite keys (``store_id, sku`` → ``"12\x1fA-7"``).
KEY_SEPARATOR = "\x1f"

Record = tuple[int, bytes]


def plain(values: Sequence[Any]) -> Sequence[Any]:
    """Python objects for a driver: a NumPy array (``write`` accepts them for keys and
    event times) becomes a list; anything else is returned as it is."""
    tolist = getattr(values, "tolist", None)
    return tolist() if tolist is not None else values  # type: ignore[no-any-return]


@dataclass(frozen=True)
class OnlineTable:
    """Where one view version's values live. ``int_key`` when the view has one int64 key."""

    view: str
    data_digest: str
    int_key: bool

    @cached_property
    def name(self) -> str:  # cached: it is read on every online request
        return f"fv_{self.view}_{self.data_digest[:12]}"


class OnlineStore(ABC):
    """Latest values by entity key. Every method is abstract: a backend implements all."""

    uri: str

    @property
    def store_id(self) -> str:
        """Stable id of this store (for materialisation watermarks)."""
        return hashlib.sha256(self.uri.encode()).hexdigest()[:16]

    @abstractmethod
    def write(
        self,
        table: OnlineTable,
        keys: Sequence[Any],
        event_ts: Sequence[int],
        blobs: Sequence[bytes],
    ) -> None:
        """Upsert rows, keys unique within one call; a row older than the stored one for
        its key is ignored. ``keys`` and ``event_ts`` may be lists or NumPy arrays."""

    @abstractmethod
    def read(self, table: OnlineTable, keys: Sequence[Any]) -> list[Record | None]:
        """``(event_ts, blob)`` per key, aligned with ``keys``; ``None`` where absent."""

    @abstractmethod
    def read_one(self, table: OnlineTable, key: Any) -> Record | None:
        """The single-key fast path of ``read``."""

    @abstractmethod
    def sample_keys(self, table: OnlineTable, n: int) -> list[Any]:
        """Up to ``n`` stored keys (for skew checks)."""

    @abstractmethod
    def count(self, table: OnlineTable) -> int:
        """How many entities the table holds."""

    @abstractmethod
    def drop(self, table: OnlineTable) -> None:
        """Remove a table and its values."""

    @abstractmethod
    def close(self) -> None:
        """Release connections."""


def default_online_uri(home: Path) -> str:
    return f"sqlite:///{(home / 'online.db').absolute()}"


def open_online_store(uri: str) -> OnlineStore:
    """``sqlite:///path.db`` (default) or ``redis://host:port/db?prefix=app:`` (scale-out)."""
    parsed = urlparse(uri)
    if parsed.scheme == "sqlite":
        from modelyard.features.online.sqlite import SqliteOnlineStore

        path = uri[len("sqlite:///") :] if uri.startswith("sqlite:///") else ""
        if not path:
            raise InvalidParameter(
                f"online store URI {uri!r} has no file path; use sqlite:////abs/path/online.db",
                field="online_store_uri",
            )
        return SqliteOnlineStore(path)
    if parsed.scheme in ("redis", "rediss"):
        from modelyard.features.online.redis import RedisOnlineStore

        prefix = parse_qs(parsed.query).get("prefix", ["modelyard:"])[0]
        return RedisOnlineStore(uri.split("?", 1)[0], prefix=prefix)
    raise InvalidParameter(
        f"online store URI {uri!r} is not supported; use sqlite:///path/online.db or "
        "redis://host:6379/0",
        field="online_store_uri",
    )
