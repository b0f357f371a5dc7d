"""The scale-out online store: Redis, one string per (view version, entity).

Key: ``<prefix><table>:<entity key>``; value: the event time as 16 hex digits (offset by
2**63 so that order survives negative times) followed by the codec blob. Reading any
number of entities of a view is one ``MGET`` round trip (``read_many`` batches several
views into one). Writes go through a Lua script,
one call per chunk, which keeps a newer stored value — the same rule as SQLite — and is
atomic per chunk. The prefix isolates applications (and tests) sharing one server.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, cast

from modelyard.errors import MissingExtra, StoreUnavailable
from modelyard.features.online.base import OnlineStore, OnlineTable, Record, plain

_OFFSET = 1 << 63
#: Keep the stored value when its event time is newer. Times are compared as two 8-hex
#: halves: Lua numbers are doubles, which cannot hold 64-bit integers exactly.
_UPSERT = """
local written = 0
for i, key in ipairs(KEYS) do
  local new = ARGV[i]
  local cur = redis.call('GET', key)
  local keep = false
  if cur then
    local ch, nh = tonumber(string.sub(cur, 1, 8), 16), tonumber(string.sub(new, 1, 8), 16)
    local cl, nl = tonumber(string.sub(cur, 9, 16), 16), tonumber(string.sub(new, 9, 16), 16)
    keep = ch > nh or (ch == nh and cl > nl)
  end
  if not keep then
    redis.call('SET', key, new)
    written = written + 1
  end
end
return written
"""
_WRITE_BATCH = 2_000
_SCAN_COUNT = 1_000
#: What MGET answers: the client decodes nothing (no ``decode_responses``), so bytes.
_Values = list[bytes | None]


class RedisOnlineStore(OnlineStore):
    def __init__(self, uri: str, *, prefix: str = "modelyard:") -> None:
        try:
            import redis
        except ModuleNotFoundError as exc:
            raise MissingExtra("redis", "redis", "The Redis online store") from exc
        self.uri = uri
        self.prefix = prefix
        self._redis_errors = (redis.exceptions.ConnectionError, redis.exceptions.TimeoutError)
        self.client = redis.Redis.from_url(uri, socket_timeout=10, socket_connect_timeout=5)
        self._upsert = self.client.register_script(_UPSERT)

    @property
    def store_id(self) -> str:
        import hashlib

        return hashlib.sha256(f"{self.uri}|{self.prefix}".encode()).hexdigest()[:16]

    def _key_prefix(self, table: OnlineTable) -> str:
        return f"{self.prefix}{table.name}:"

    def write(
        self,
        table: OnlineTable,
        keys: Sequence[Any],
        event_ts: Sequence[int],
        blobs: Sequence[bytes],
    ) -> None:
        head = self._key_prefix(table)
        names = [f"{head}{k}" for k in plain(keys)]
        values = [
            b"%016x" % (ts + _OFFSET) + blob
            for ts, blob in zip(plain(event_ts), blobs, strict=True)
        ]
        try:
            for start in range(0, len(names), _WRITE_BATCH):
                end = start + _WRITE_BATCH
                self._upsert(keys=names[start:end], args=values[start:end])
        except self._redis_errors as exc:
            raise StoreUnavailable(f"Redis online store {self.uri} is unreachable: {exc}") from exc

    def read(self, table: OnlineTable, keys: Sequence[Any]) -> list[Record | None]:
        head = self._key_prefix(table)
        try:
            raw = cast(_Values, self.client.mget([f"{head}{k}" for k in keys]))
        except self._redis_errors as exc:
            raise StoreUnavailable(f"Redis online store {self.uri} is unreachable: {exc}") from exc
        return [None if v is None else (int(v[:16], 16) - _OFFSET, v[16:]) for v in raw]

    def read_many(
        self, requests: Sequence[tuple[OnlineTable, Sequence[Any]]]
    ) -> list[list[Record | None]]:
        """Several tables' keys in one ``MGET`` round trip (a service spanning views)."""
        names = [f"{self._key_prefix(t)}{k}" for t, keys in requests for k in keys]
        try:
            raw = cast(_Values, self.client.mget(names)) if names else []
        except self._redis_errors as exc:
            raise StoreUnavailable(f"Redis online store {self.uri} is unreachable: {exc}") from exc
        out, pos = [], 0
        for _, keys in requests:
            part = raw[pos : pos + len(keys)]
            pos += len(keys)
            out.append([None if v is None else (int(v[:16], 16) - _OFFSET, v[16:]) for v in part])
        return out

    def read_one(self, table: OnlineTable, key: Any) -> Record | None:
        try:
            v = cast("bytes | None", self.client.get(f"{self._key_prefix(table)}{key}"))
        except self._redis_errors as exc:
            raise StoreUnavailable(f"Redis online store {self.uri} is unreachable: {exc}") from exc
        return None if v is None else (int(v[:16], 16) - _OFFSET, v[16:])

    def _keys(self, table: OnlineTable, limit: int | None = None) -> list[bytes]:
        found: list[bytes] = []
        for key in self.client.scan_iter(match=f"{self._key_prefix(table)}*", count=_SCAN_COUNT):
            found.append(key)
            if limit is not None and len(found) >= limit:
                break
        return found

    def sample_keys(self, table: OnlineTable, n: int) -> list[Any]:
        head = len(self._key_prefix(table))
        keys = [k[head:].decode() for k in self._keys(table, n)]
        return [int(k) for k in keys] if table.int_key else keys

    def count(self, table: OnlineTable) -> int:
        return len(self._keys(table))

    def drop(self, table: OnlineTable) -> None:
        keys = self._keys(table)
        for start in range(0, len(keys), _WRITE_BATCH):
            self.client.unlink(*keys[start : start + _WRITE_BATCH])

    def close(self) -> None:
        self.client.close()
