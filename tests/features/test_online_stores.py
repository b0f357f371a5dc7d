"""One contract, two online stores: SQLite (embedded) and Redis (the real server)."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pytest

from modelyard.features.online.base import OnlineTable, open_online_store
from modelyard.features.online.codec import PackedBlobs, RowCodec
from modelyard.features.online.sqlite import SqliteOnlineStore

INT_TABLE = OnlineTable("sales", "a" * 64, int_key=True)
TEXT_TABLE = OnlineTable("prices", "b" * 64, int_key=False)


@pytest.fixture(params=["sqlite", "redis"])
def online(request, tmp_path):
    if request.param == "sqlite":
        store = open_online_store(f"sqlite:///{tmp_path / 'online.db'}")
    else:
        store = open_online_store(request.getfixturevalue("redis_uri"))
    yield store
    store.close()


def test_values_are_read_back_by_key_aligned_with_the_request(online):
    online.write(INT_TABLE, [1, 2, 3], [10, 20, 30], [b"one", b"two", b"three"])
    assert online.read(INT_TABLE, [3, 99, 1]) == [(30, b"three"), None, (10, b"one")]
    assert online.read_one(INT_TABLE, 2) == (20, b"two")
    assert online.read_one(INT_TABLE, 42) is None


def test_an_older_value_never_replaces_a_newer_one(online):
    online.write(INT_TABLE, [1, 2], [100, 100], [b"new", b"new"])
    online.write(INT_TABLE, [1, 2], [50, 150], [b"old", b"newer"])
    assert online.read(INT_TABLE, [1, 2]) == [(100, b"new"), (150, b"newer")]


def test_negative_and_large_event_times_keep_their_order(online):
    online.write(INT_TABLE, [1], [-5_000_000], [b"before 1970"])
    online.write(INT_TABLE, [1], [-6_000_000], [b"even older"])
    assert online.read_one(INT_TABLE, 1) == (-5_000_000, b"before 1970")
    online.write(INT_TABLE, [1], [2**62], [b"far future"])
    assert online.read_one(INT_TABLE, 1) == (2**62, b"far future")


def test_text_keys_and_a_table_never_written_read_as_missing(online):
    online.write(TEXT_TABLE, ["1\x1fa", "1\x1fb"], [1, 2], [b"x", b"y"])
    assert online.read(TEXT_TABLE, ["1\x1fb", "2\x1fa"]) == [(2, b"y"), None]
    never = OnlineTable("never", "c" * 64, int_key=True)
    assert online.read(never, [1, 2]) == [None, None]
    assert online.read_one(never, 1) is None


def test_sample_count_and_drop(online):
    online.write(INT_TABLE, list(range(50)), [1] * 50, [b"v"] * 50)
    assert online.count(INT_TABLE) == 50
    sample = online.sample_keys(INT_TABLE, 10)
    assert len(sample) == 10 and set(sample) <= set(range(50))
    online.drop(INT_TABLE)
    assert online.count(INT_TABLE) == 0
    assert online.read_one(INT_TABLE, 1) is None


def test_many_keys_in_one_read(online):
    keys = list(range(1_200))
    online.write(INT_TABLE, keys, keys, [str(k).encode() for k in keys])
    got = online.read(INT_TABLE, keys[::-1])
    assert got == [(k, str(k).encode()) for k in keys[::-1]]


def test_packed_blobs_and_numpy_columns_write_like_lists(online):
    # A materialisation hands over NumPy keys and times and the codec's packed blobs.
    keys = np.concatenate([np.arange(-150, 150, dtype=np.int64) * 7, [-(2**63), 2**63 - 1]])
    times = np.where(keys % 2 == 0, -(2**62), 2**62) + keys % 1_000
    codec = RowCodec(["float64", "int64"])

    def blobs(scale: int) -> PackedBlobs:
        packed = codec.encode_columns([pa.array(keys * 0.5), pa.array(keys * scale)])
        assert isinstance(packed, PackedBlobs) and len(packed) == len(keys)
        return packed

    first = blobs(1)
    assert list(first)[5] == first[5] == first[-len(keys) + 5] and first[1:3][1] == first[2]
    online.write(INT_TABLE, keys, times, first)
    got = online.read(INT_TABLE, keys.tolist())
    assert [g[0] for g in got] == times.tolist()
    assert [codec.decode(g[1]) for g in got] == list(zip(keys * 0.5, keys.tolist(), strict=True))
    # The same keys again: a newer time replaces the value, an older one does not.
    shifted = np.where(keys % 3 == 0, times + 1, times - 1)
    online.write(INT_TABLE, keys, shifted, blobs(2))
    got = online.read(INT_TABLE, keys.tolist())
    newer = keys % 3 == 0
    assert [g[0] for g in got] == np.where(newer, shifted, times).tolist()
    assert [codec.decode(g[1])[1] for g in got] == np.where(newer, keys * 2, keys).tolist()


def test_the_codec_round_trips_every_type_and_null():
    import datetime as dt

    dtypes = ["int64", "int32", "float64", "float32", "bool", "string", "timestamp"]
    when = dt.datetime(2024, 1, 2, 3, 4, 5, 6, tzinfo=dt.UTC)
    columns = [
        pa.array([1, None]),
        pa.array([2, 3], pa.int32()),
        pa.array([0.1, None]),
        pa.array([0.5, 1.5], pa.float32()),
        pa.array([True, None]),
        pa.array(['é"x', None]),
        pa.array([when, None], pa.timestamp("us", tz="UTC")),
    ]
    codec = RowCodec(dtypes)
    first, second = (codec.decode(b) for b in codec.encode_columns(columns))
    assert first == (1, 2, 0.1, 0.5, True, 'é"x', when)
    assert second == (None, 3, None, 1.5, None, None, None)


def test_unsupported_online_uri_says_what_to_use():
    with pytest.raises(ValueError, match="sqlite:///"):
        open_online_store("mongodb://x")


def _packed(n: int) -> tuple[np.ndarray, np.ndarray, PackedBlobs, RowCodec]:
    codec = RowCodec(["int64"])
    keys = np.arange(n, dtype=np.int64) * 3 - n
    blobs = codec.encode_columns([pa.array(keys * 10)])
    assert isinstance(blobs, PackedBlobs)
    return keys, keys + 2**40, blobs, codec


def test_sqlite_without_json_each_writes_packed_blobs_row_by_row(tmp_path):
    store = SqliteOnlineStore(tmp_path / "online.db")
    store._json = False  # as on a SQLite older than 3.38 built without JSON
    keys, times, blobs, codec = _packed(200)
    store.write(INT_TABLE, keys, times, blobs)
    got = store.read(INT_TABLE, keys.tolist())
    assert [(t, codec.decode(v)[0]) for t, v in got] == list(
        zip(times.tolist(), (keys * 10).tolist(), strict=True)
    )
    store.close()


def test_sqlite_close_waits_for_the_background_checkpoint(tmp_path):
    path = tmp_path / "online.db"
    store = SqliteOnlineStore(path)
    keys, times, blobs, _ = _packed(500)
    store.write(INT_TABLE, keys, times, blobs)
    store.close()
    assert store._checkpointer is None
    store.write(INT_TABLE, keys[:1], times[:1] + 1, blobs[:1])  # usable again after close
    store.close()
    wal = path.with_name(path.name + "-wal")
    assert not wal.exists() or wal.stat().st_size == 0  # everything is in the database
    again = SqliteOnlineStore(path)
    assert again.count(INT_TABLE) == 500
    assert again.read_one(INT_TABLE, int(keys[0])) == (int(times[0]) + 1, blobs[0])
    again.close()


def test_sqlite_writer_checkpoints_itself_when_the_background_falls_behind(tmp_path):
    from modelyard.features.online.sqlite import WAL_BACKSTOP_PAGES

    store = SqliteOnlineStore(tmp_path / "online.db")
    keys, times, blobs, _ = _packed(100)
    store.write(INT_TABLE, keys, times, blobs)
    (limit,) = store._con().execute("PRAGMA wal_autocheckpoint").fetchone()
    store.close()
    assert limit == WAL_BACKSTOP_PAGES


@pytest.mark.parametrize("json_each", [True, False])
def test_sqlite_refuses_a_write_whose_columns_disagree_and_stores_nothing(tmp_path, json_each):
    store = SqliteOnlineStore(tmp_path / "online.db")
    store._json = json_each
    keys, times, blobs, _ = _packed(100)
    with pytest.raises(ValueError, match="100 keys, 100 times and 64 values"):
        store.write(
            INT_TABLE, keys, times, PackedBlobs(blobs.data[: 64 * blobs.width], blobs.width)
        )
    with pytest.raises(ValueError, match="64 keys"):
        store.write(INT_TABLE, keys[:64], times[:64], blobs)
    assert store.count(INT_TABLE) == 0
    store.close()
