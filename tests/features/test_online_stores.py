"""One contract, two online stores: SQLite (embedded) and Redis (the real server)."""

from __future__ import annotations

import pyarrow as pa
import pytest

from modelyard.features.online.base import OnlineTable, open_online_store
from modelyard.features.online.codec import RowCodec

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
