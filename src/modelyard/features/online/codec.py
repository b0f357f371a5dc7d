"""How one entity's feature values of one view are stored online: a compact byte string.

Fixed-width features (ints, floats, bools, timestamps as microseconds) are packed
little-endian with ``struct``, followed by a null bitmap (one bit per feature); string
features follow as a JSON list. Encoding is vectorised with NumPy over a whole Arrow
batch (materialisation writes hundreds of thousands of rows); decoding one row is a
single ``struct.unpack`` — a microsecond — which is what keeps online reads fast. The
format is the same in SQLite and Redis, and safe to decode (no pickle).
"""

from __future__ import annotations

import json
import struct
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import pyarrow as pa

_STRUCT_CODES = {
    "int64": "q",
    "int32": "i",
    "float64": "d",
    "float32": "f",
    "bool": "?",
    "timestamp": "q",
}
_NUMPY_CODES = {
    "int64": "<i8",
    "int32": "<i4",
    "float64": "<f8",
    "float32": "<f4",
    "bool": "?",
    "timestamp": "<i8",
}
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def arrow_type(dtype: str) -> pa.DataType:
    """The Arrow type a declared feature type is carried as."""
    import pyarrow as pa

    return {
        "int64": pa.int64(),
        "int32": pa.int32(),
        "float64": pa.float64(),
        "float32": pa.float32(),
        "bool": pa.bool_(),
        "string": pa.string(),
        "timestamp": pa.timestamp("us", tz="UTC"),
    }[dtype]


def _from_us(value: int) -> datetime:
    return _EPOCH + timedelta(microseconds=value)


class PackedBlobs(Sequence[bytes]):
    """Blobs of one width, packed back to back in one buffer: what ``encode_columns``
    returns for fixed-width rows. It reads as a sequence of ``bytes`` (one copy per row
    read), and a store that can take the packed form whole (SQLite slices it in SQL)
    skips building a hundred thousand small objects."""

    __slots__ = ("data", "width")

    def __init__(self, data: bytes | memoryview, width: int) -> None:
        self.data = memoryview(data).cast("B")
        self.width = width

    def __len__(self) -> int:
        return len(self.data) // self.width

    def __getitem__(self, index: Any) -> Any:
        width = self.width
        if isinstance(index, slice):
            start, stop, step = index.indices(len(self))
            if step == 1:
                return PackedBlobs(self.data[start * width : stop * width], width)
            return [self[i] for i in range(start, stop, step)]
        n = len(self)
        if index < 0:
            index += n
        if not 0 <= index < n:
            raise IndexError("blob index out of range")
        return self.data[index * width : (index + 1) * width].tobytes()

    def __iter__(self) -> Iterator[bytes]:
        data, width = self.data, self.width
        return (data[i : i + width].tobytes() for i in range(0, len(data), width))


class RowCodec:
    """Encoder and decoder for the values of one view's features, in schema order."""

    def __init__(self, dtypes: Sequence[str]) -> None:
        self.dtypes = list(dtypes)
        self.fixed = [i for i, d in enumerate(self.dtypes) if d != "string"]
        self.strings = [i for i, d in enumerate(self.dtypes) if d == "string"]
        self.timestamps = [i for i, d in enumerate(self.dtypes) if d == "timestamp"]
        self.mask_len = (len(self.dtypes) + 7) // 8
        fmt = "<" + "".join(_STRUCT_CODES[self.dtypes[i]] for i in self.fixed)
        self._struct = struct.Struct(f"{fmt}{self.mask_len}s")
        self.fixed_size = self._struct.size
        self._zero = bytes(self.mask_len)
        self._simple = not self.strings and not self.timestamps
        self._record_dtype: Any = None
        #: The null bitmap of a row without nulls.
        self.zero_mask = self._zero
        #: For fixed-width features only (no strings or timestamps), else ``None``: the raw
        #: ``struct.unpack`` of a blob — the values in schema order, then the null bitmap.
        #: Where the bitmap equals ``zero_mask`` these are the decoded values, without the
        #: copies ``decode`` makes; otherwise use ``decode``.
        self.unpack_simple = self._struct.unpack if self._simple else None

    # ------------------------------------------------------------------ decoding
    def decode(self, blob: bytes) -> tuple[Any, ...]:
        """All feature values of one row, ``None`` where null."""
        if self._simple:
            *values, mask = self._struct.unpack(blob)
            if mask == self._zero:
                return tuple(values)
        else:
            *fixed, mask = self._struct.unpack_from(blob)
            values = [None] * len(self.dtypes)
            for i, v in zip(self.fixed, fixed, strict=True):
                values[i] = v
            if self.strings:
                for i, v in zip(self.strings, json.loads(blob[self.fixed_size :]), strict=True):
                    values[i] = v
            for i in self.timestamps:
                values[i] = _from_us(values[i])
        bits = int.from_bytes(mask, "little")
        if bits:
            values = [None if bits >> i & 1 else v for i, v in enumerate(values)]
        return tuple(values)

    def decode_columns(self, blobs: Sequence[bytes]) -> list[list[Any]]:
        """Many rows at once, column by column: one NumPy pass instead of a loop per row
        (for fixed-width features; others decode row by row)."""
        if not self._simple or len(blobs) < 8:
            rows = [self.decode(b) for b in blobs]
            if not rows:
                return [[] for _ in self.dtypes]
            return [list(column) for column in zip(*rows, strict=True)]
        import numpy as np

        record = np.frombuffer(b"".join(blobs), dtype=self._numpy_dtype())
        columns = [record[f"f{i}"].tolist() for i in range(len(self.dtypes))]
        masks = record["mask"]
        if masks.any():
            bits = np.unpackbits(masks, axis=1, bitorder="little")[:, : len(self.dtypes)]
            for i in np.flatnonzero(bits.any(axis=0)):
                column = columns[i]
                for row in np.flatnonzero(bits[:, i]):
                    column[row] = None
        return columns

    def _numpy_dtype(self) -> Any:
        if self._record_dtype is None:
            import numpy as np

            fields = [(f"f{i}", _NUMPY_CODES[self.dtypes[i]]) for i in self.fixed]
            self._record_dtype = np.dtype([*fields, ("mask", "u1", (self.mask_len,))])
        return self._record_dtype

    # ------------------------------------------------------------------ encoding
    def encode_columns(self, columns: Sequence[pa.Array | pa.ChunkedArray]) -> Sequence[bytes]:
        """One blob per row for Arrow columns given in schema order: ``PackedBlobs`` when
        every feature is fixed-width, else a list."""
        import numpy as np
        import pyarrow as pa
        import pyarrow.compute as pc

        n = len(columns[0]) if columns else 0
        record = np.zeros(n, dtype=self._numpy_dtype())
        nulls = None
        for i, column in enumerate(columns):
            if column.null_count:
                if nulls is None:
                    nulls = np.zeros((n, self.mask_len * 8), dtype=bool)
                nulls[:, i] = pc.is_null(column).to_numpy(zero_copy_only=False)
            if self.dtypes[i] == "string":
                continue
            if self.dtypes[i] == "timestamp":
                column = pc.cast(column, pa.timestamp("us", tz="UTC")).cast(pa.int64())
            if column.null_count:
                column = column.fill_null(False if self.dtypes[i] == "bool" else 0)
            record[f"f{i}"] = column.to_numpy(zero_copy_only=False)
        if nulls is not None:  # else the bitmaps stay zero
            record["mask"] = np.packbits(nulls, axis=1, bitorder="little")
        if not self.strings:
            return PackedBlobs(record.view(np.uint8).data, record.dtype.itemsize)
        # One bytes object per row, sliced by NumPy (unstructured void items convert to bytes).
        blobs: list[bytes] = record.view(np.dtype((np.void, record.dtype.itemsize))).tolist()
        texts = zip(*(columns[i].to_pylist() for i in self.strings), strict=True)
        return [
            b + json.dumps(list(t), separators=(",", ":")).encode()
            for b, t in zip(blobs, texts, strict=True)
        ]
