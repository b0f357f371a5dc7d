"""A content digest for tables that depends on the data, not on how it was stored.

The same rows give the same digest whether they come from a DataFrame, a Parquet file
with any row-group size or compression, or a folder of parts: each row is hashed to 64
bits from its values (by logical type: a ``large_string`` and a ``string`` column, or a
timestamp in seconds and in nanoseconds, hash alike), and SHA-256 runs over the stream
of row hashes, after the canonical schema. Batch boundaries do not matter, since the
stream is the same however it is cut.

Everything is vectorised over Arrow buffers with NumPy: strings are hashed with a
polynomial over their bytes computed by prefix sums, so no Python object is created per
value.

>>> import pyarrow as pa
>>> table = pa.table({"store": [1, 2, 3], "units": [3.0, 4.5, None]})
>>> def digest(batches):
...     hasher = TableHasher(table.schema)
...     for batch in batches:
...         hasher.update(batch)
...     return hasher.hexdigest()
>>> digest(table.to_batches()) == digest(table.to_batches(max_chunksize=1))
True
"""

from __future__ import annotations

import hashlib
import json
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import numpy as np
    import pyarrow as pa

DIGEST_VERSION = 1
_NULL_HASH = 0x6A09E667F3BCC908
#: Bytes per slice when hashing strings: bounds the temporary arrays to ~35 MB.
_STRING_SLICE_BYTES = 1 << 20


def logical_type(dtype: pa.DataType) -> str:
    """The storage-independent name of an Arrow type, as schemas and digests record it."""
    import pyarrow as pa

    t = pa.types
    if t.is_dictionary(dtype):
        return f"category<{logical_type(dtype.value_type)}>"
    if t.is_boolean(dtype):
        return "bool"
    if t.is_integer(dtype) or t.is_floating(dtype):
        return str(dtype).replace("halffloat", "float16").replace("double", "float64")
    if t.is_string(dtype) or t.is_large_string(dtype) or _is_view(dtype, "string"):
        return "string"
    if t.is_binary(dtype) or t.is_large_binary(dtype) or t.is_fixed_size_binary(dtype):
        return "binary"
    if _is_view(dtype, "binary"):
        return "binary"
    if t.is_timestamp(dtype):
        return f"timestamp[{dtype.tz}]" if dtype.tz else "timestamp"
    if t.is_date(dtype):
        return "date"
    if t.is_time(dtype):
        return f"time[{dtype.unit}]"
    if t.is_duration(dtype):
        return f"duration[{dtype.unit}]"
    if t.is_decimal(dtype):
        return f"decimal({dtype.precision},{dtype.scale})"
    if t.is_null(dtype):
        return "null"
    return str(dtype)


def _is_view(dtype: pa.DataType, kind: str) -> bool:
    return str(dtype) == f"{kind}_view"


def schema_json(schema: pa.Schema) -> list[dict[str, Any]]:
    """The canonical schema: ``[{"name", "type", "nullable"}]`` in column order."""
    return [
        {"name": f.name, "type": logical_type(f.type), "nullable": bool(f.nullable)} for f in schema
    ]


class TableHasher:
    """Accumulates the digest of a table fed batch by batch (see the module docstring)."""

    def __init__(self, schema: pa.Schema) -> None:
        self.schema = schema
        self.num_rows = 0
        self._sha = hashlib.sha256()
        canon = [[c["name"], c["type"]] for c in schema_json(schema)]
        self._sha.update(f"modelyard-table-v{DIGEST_VERSION}\0".encode())
        self._sha.update(json.dumps(canon, separators=(",", ":")).encode() + b"\0")

    def update(self, batch: pa.RecordBatch) -> None:
        """Add the rows of ``batch`` (which has this hasher's column names and types)."""
        self._sha.update(row_hashes(batch).tobytes())
        self.num_rows += batch.num_rows

    def hexdigest(self) -> str:
        sha = self._sha.copy()
        sha.update(f"\0rows={self.num_rows}".encode())
        return sha.hexdigest()


def row_hashes(batch: pa.RecordBatch) -> np.ndarray:
    """One little-endian uint64 per row, combining every column's value hash in order."""
    import numpy as np

    acc = np.full(batch.num_rows, 0xCBF29CE484222325, dtype=np.uint64)
    prime = np.uint64(0x100000001B3)
    for i in range(batch.num_columns):
        h = column_hashes(batch.column(i))
        acc = mix(acc * prime ^ h ^ np.uint64(i + 1))
    return acc.astype("<u8", copy=False)


def column_hashes(arr: pa.Array) -> np.ndarray:
    """A uint64 hash per value of ``arr``; nulls hash to a fixed constant."""
    import numpy as np
    import pyarrow as pa
    import pyarrow.compute as pc

    if isinstance(arr, pa.ChunkedArray):
        arr = arr.combine_chunks()
    dtype = arr.type
    t = pa.types
    n = len(arr)
    if n == 0:
        return np.zeros(0, dtype=np.uint64)
    if t.is_null(dtype):
        return np.full(n, _NULL_HASH, dtype=np.uint64)
    if t.is_dictionary(dtype):
        values = column_hashes(arr.dictionary)
        idx = _numeric(arr.indices).astype(np.int64)
        out = values[idx] if len(values) else np.zeros(n, dtype=np.uint64)
    elif t.is_string(dtype) or t.is_binary(dtype):
        out = _bytes_hashes(arr, 4)
    elif t.is_large_string(dtype) or t.is_large_binary(dtype):
        out = _bytes_hashes(arr, 8)
    elif _is_view(dtype, "string") or _is_view(dtype, "binary"):
        large = pa.large_string() if _is_view(dtype, "string") else pa.large_binary()
        out = _bytes_hashes(arr.cast(large), 8)
    elif t.is_floating(dtype):
        values = _numeric(arr).astype(np.float64) + 0.0  # -0.0 == 0.0
        values[np.isnan(values)] = np.nan  # one NaN payload
        out = mix(values.view(np.uint64))
    elif t.is_boolean(dtype) or t.is_unsigned_integer(dtype):
        out = mix(_numeric(arr).astype(np.uint64))
    elif t.is_integer(dtype):
        out = mix(_numeric(arr).astype(np.int64).view(np.uint64))
    elif t.is_timestamp(dtype):
        out = mix(_timestamp_ns(arr).view(np.uint64))
    elif t.is_date(dtype):
        days = arr.cast(pa.date32()).view(pa.int32())
        out = mix(_numeric(days).astype(np.int64).view(np.uint64))
    elif t.is_time(dtype) or t.is_duration(dtype):
        ints = arr.view(pa.int32() if dtype.bit_width == 32 else pa.int64())
        out = mix(_numeric(ints).astype(np.int64).view(np.uint64))
    else:  # decimals, lists, structs: hash a canonical text form (rare, slower)
        text = [
            None if v is None else json.dumps(v, default=str, sort_keys=True)
            for v in arr.to_pylist()
        ]
        out = _bytes_hashes(pa.array(text, type=pa.large_string()), 8)
    if arr.null_count:
        valid = np.asarray(pc.is_valid(arr))
        out = np.where(valid, out, np.uint64(_NULL_HASH))
    return out


def _numeric(arr: pa.Array) -> np.ndarray:
    """Values as NumPy with nulls filled by zero (the caller masks them)."""
    import numpy as np

    if arr.null_count:
        import pyarrow as pa

        fill = False if pa.types.is_boolean(arr.type) else 0
        arr = arr.fill_null(pa.scalar(fill, type=arr.type))
    return np.asarray(arr.to_numpy(zero_copy_only=False))


def _timestamp_ns(arr: pa.Array) -> np.ndarray:
    """Int64 nanoseconds; values outside what nanoseconds can hold keep their own unit."""
    import numpy as np
    import pyarrow as pa

    plain = arr.cast(pa.timestamp(arr.type.unit))  # drop the zone: values are UTC already
    try:
        as_ns = plain.cast(pa.timestamp("ns"))
    except pa.ArrowInvalid:
        as_ns = plain
    return _numeric(as_ns.cast(pa.int64())).astype(np.int64)


def _bytes_hashes(arr: pa.Array, offset_width: int) -> np.ndarray:
    """Polynomial hashes of variable-length values, from the offsets and data buffers.

    ``h(s) = sum(b[i] * P**i)`` for the bytes of ``s``: with prefix sums of
    ``b[k] * P**k`` over the whole data buffer, each value's hash is a difference of two
    prefix sums times the inverse power of its start offset (P is odd, so invertible
    modulo 2**64). Long buffers are processed in slices to bound memory.
    """
    import numpy as np

    n = len(arr)
    buffers = arr.buffers()
    offsets = np.frombuffer(buffers[1], dtype=np.int32 if offset_width == 4 else np.int64)
    offsets = offsets[arr.offset : arr.offset + n + 1].astype(np.int64)
    data = (
        np.frombuffer(buffers[2], dtype=np.uint8)
        if buffers[2] is not None
        else np.zeros(0, np.uint8)
    )
    out = np.empty(n, dtype=np.uint64)
    start = 0
    while start < n:
        # Grow the slice of rows until it spans about _STRING_SLICE_BYTES bytes.
        limit = offsets[start] + _STRING_SLICE_BYTES
        stop = int(np.searchsorted(offsets, limit, side="right"))
        stop = min(max(stop - 1, start + 1), n)
        out[start:stop] = _hash_slice(data, offsets[start : stop + 1])
        start = stop
    return out


_P = 0x100000001B3
_P_INV = pow(_P, -1, 1 << 64)


def _hash_slice(data: np.ndarray, offsets: np.ndarray) -> np.ndarray:
    import numpy as np

    lo, hi = int(offsets[0]), int(offsets[-1])
    lengths = np.diff(offsets).astype(np.uint64)
    if hi == lo:  # only empty values: the same as the general formula with zero sums
        return mix(mix(lengths))
    chunk = data[lo:hi].astype(np.uint64) + np.uint64(1)  # so that b"\0" counts
    powers = _powers(hi - lo, _P)
    prefix = np.zeros(hi - lo + 1, dtype=np.uint64)
    np.cumsum(chunk * powers, out=prefix[1:])
    rel = offsets - lo
    inverse = _powers(hi - lo + 1, _P_INV)[rel[:-1]]
    sums = (prefix[rel[1:]] - prefix[rel[:-1]]) * inverse
    return mix(sums ^ mix(lengths))


_POWER_CACHE: dict[int, np.ndarray] = {}


def _powers(count: int, base: int) -> np.ndarray:
    """``base**k mod 2**64`` for ``k < count`` (cached; grown by doubling)."""
    import numpy as np

    cached = _POWER_CACHE.get(base)
    if cached is None or len(cached) < count:
        size = max(count, 1 << 16, 2 * (len(cached) if cached is not None else 0))
        steps = np.full(size, base, dtype=np.uint64)
        steps[0] = 1
        cached = np.cumprod(steps, dtype=np.uint64)
        _POWER_CACHE[base] = cached
    return cached[:count]


def mix(x: np.ndarray) -> np.ndarray:
    """The splitmix64 finaliser: spreads every input bit over the whole 64-bit output."""
    import numpy as np

    x = x.astype(np.uint64, copy=True)
    x ^= x >> np.uint64(30)
    x *= np.uint64(0xBF58476D1CE4E5B9)
    x ^= x >> np.uint64(27)
    x *= np.uint64(0x94D049BB133111EB)
    x ^= x >> np.uint64(31)
    return x
