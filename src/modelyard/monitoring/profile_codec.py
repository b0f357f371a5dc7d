"""A reference profile as bytes, and back — reading the bytes as untrusted.

The bytes are an uncompressed ``.npz`` (NumPy's zip of ``.npy`` arrays, readable by any
NumPy with ``allow_pickle=False``): ``header.npy`` holds the JSON header (source, rows, per
column its kind, counts and moments, categorical labels) as UTF-8 bytes, and each numerical
column's ``edges``, ``counts``, ``sums`` and ``sample`` are arrays ``c<i>_<name>.npy``, and
a categorical column with more than ``TOP_K`` categories has its label hashes in
``c<i>_hashes.npy``.

Decoding refuses, with an ``InvalidParameter`` saying what is wrong: bytes over
``MAX_STORED_BYTES``, anything that is not a zip, members that are compressed (a zip bomb
needs compression) or not named by the header, a header that is not the expected JSON
shape, arrays of another dtype or length than the header implies, edges not strictly
increasing, negative counts, categories that do not match their counts.
"""

from __future__ import annotations

import io
import math
import zipfile
from typing import Any

import numpy as np

from modelyard import json_codec
from modelyard.errors import InvalidParameter
from modelyard.monitoring.profiles import (
    FORMAT,
    FORMAT_VERSION,
    LABEL_SKETCH,
    MAX_STORED_BYTES,
    CategoricalProfile,
    NumericalProfile,
    ReferenceProfile,
)

ARRAYS = ("edges", "counts", "sums", "sample")
MAX_HEADER_BYTES = 64 << 20


def encode(profile: ReferenceProfile) -> bytes:
    columns: list[dict[str, Any]] = []
    arrays: dict[str, np.ndarray] = {}
    for i, (name, col) in enumerate(profile.columns.items()):
        entry: dict[str, Any] = {
            "name": name,
            "kind": col.kind,
            "rows": col.rows,
            "missing": col.missing,
            "type": col.type_name,
        }
        if isinstance(col, NumericalProfile):
            entry["mean"] = _float_out(col.mean)
            entry["std"] = _float_out(col.std)
            for key in ARRAYS:
                arrays[f"c{i}_{key}"] = np.ascontiguousarray(getattr(col, key))
        else:
            entry["categories"] = list(col.categories)
            entry["counts"] = col.counts.tolist()
            entry["other"] = col.other
            entry["distinct"] = col.distinct
            entry["sketch_capped"] = col.sketch_capped
            if len(col.known_hashes):
                arrays[f"c{i}_hashes"] = np.ascontiguousarray(col.known_hashes, np.uint64)
        columns.append(entry)
    header = {
        "format": FORMAT,
        "version": FORMAT_VERSION,
        "source": profile.source,
        "rows": profile.rows,
        "sample_size": profile.sample_size,
        "skipped": profile.skipped,
        "columns": columns,
    }
    raw = json_codec.dumps(header)
    out = io.BytesIO()
    arrays["header"] = np.frombuffer(raw, np.uint8)
    np.savez(out, allow_pickle=False, **arrays)  # type: ignore[arg-type]
    return out.getvalue()


def decode(data: bytes) -> ReferenceProfile:
    if not isinstance(data, (bytes, bytearray, memoryview)):
        raise _bad(f"expected bytes, got {type(data).__name__}")
    data = bytes(data)
    if len(data) > MAX_STORED_BYTES:
        raise _bad(f"{len(data):,} bytes is over the {MAX_STORED_BYTES:,}-byte limit")
    if not data.startswith(b"PK"):
        raise _bad("it is not a stored reference profile (not an .npz archive)")
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            members = {info.filename: info for info in archive.infolist()}
            for info in members.values():
                if info.compress_type != zipfile.ZIP_STORED or info.file_size > len(data):
                    raise _bad(f"member {info.filename!r} is compressed or larger than the file")
    except zipfile.BadZipFile as exc:
        raise _bad(f"the archive is damaged ({exc})") from None
    if "header.npy" not in members:
        raise _bad("it has no header")
    try:
        with np.load(io.BytesIO(data), allow_pickle=False) as npz:
            header = _header(npz["header"])
            return _profile(header, npz, set(members))
    except InvalidParameter:
        raise
    except (ValueError, OSError, KeyError, zipfile.BadZipFile, EOFError) as exc:
        raise _bad(f"it cannot be read ({type(exc).__name__}: {exc})") from None


def _header(raw: np.ndarray) -> dict[str, Any]:
    if raw.dtype != np.uint8 or raw.ndim != 1 or raw.size > MAX_HEADER_BYTES:
        raise _bad("its header is not a byte string")
    try:
        header = json_codec.loads_strict(raw.tobytes())
    except (ValueError, RecursionError) as exc:  # json_codec.DecodeError and UnusableValue
        raise _bad(f"its header is not JSON ({exc})") from None
    if not isinstance(header, dict) or header.get("format") != FORMAT:
        raise _bad("its header does not name the reference-profile format")
    if header.get("version") != FORMAT_VERSION:
        raise _bad(
            f"format version {header.get('version')!r} is not the one this modelyard reads "
            f"({FORMAT_VERSION}); rebuild the profile"
        )
    return header


def _profile(header: dict[str, Any], npz: Any, members: set[str]) -> ReferenceProfile:
    rows = _count(header, "rows", "profile")
    sample_size = _count(header, "sample_size", "profile")
    source = header.get("source")
    skipped = header.get("skipped", {})
    entries = header.get("columns")
    if not isinstance(source, str) or not isinstance(entries, list):
        raise _bad("its header lacks the source or the column list")
    if not isinstance(skipped, dict) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in skipped.items()
    ):
        raise _bad("its list of skipped columns is malformed")
    expected = {"header.npy"}
    columns: dict[str, NumericalProfile | CategoricalProfile] = {}
    for i, entry in enumerate(entries):
        if not isinstance(entry, dict) or not isinstance(entry.get("name"), str):
            raise _bad(f"column entry {i} is malformed")
        name = entry["name"]
        if name in columns:
            raise _bad(f"column {name!r} appears twice")
        col_rows = _count(entry, "rows", name)
        missing = _count(entry, "missing", name)
        type_name = entry.get("type")
        if missing > col_rows or col_rows != rows or not isinstance(type_name, str):
            raise _bad(f"column {name!r} has inconsistent row counts or no type")
        if entry.get("kind") == "numerical":
            keys = {key: f"c{i}_{key}" for key in ARRAYS}
            expected.update(f"{member}.npy" for member in keys.values())
            arrays = {}
            for key, member in keys.items():
                if f"{member}.npy" not in members:
                    raise _bad(f"column {name!r} lacks its {key}")
                arrays[key] = npz[member]
            columns[name] = _numerical(
                name, col_rows, missing, type_name, entry, arrays, sample_size
            )
        elif entry.get("kind") == "categorical":
            member = f"c{i}_hashes"
            hashes = np.zeros(0, np.uint64)
            if f"{member}.npy" in members:
                expected.add(f"{member}.npy")
                hashes = npz[member]
            columns[name] = _categorical(name, col_rows, missing, type_name, entry, hashes)
        else:
            raise _bad(f"column {name!r} has an unknown kind {entry.get('kind')!r}")
    extra = members - expected
    if extra:
        raise _bad(f"it holds members no column names: {sorted(extra)[:5]}")
    return ReferenceProfile(
        rows=rows, source=source, columns=columns, sample_size=sample_size, skipped=skipped
    )


def _numerical(
    name: str,
    rows: int,
    missing: int,
    type_name: str,
    entry: dict[str, Any],
    arrays: dict[str, np.ndarray],
    sample_size: int,
) -> NumericalProfile:
    edges, counts, sums, sample = (arrays[k] for k in ARRAYS)
    for key, array, dtype in (
        ("edges", edges, np.float64),
        ("counts", counts, np.int64),
        ("sums", sums, np.float64),
        ("sample", sample, np.float64),
    ):
        if array.dtype != dtype or array.ndim != 1:
            raise _bad(f"column {name!r}: {key} is not a 1-D {np.dtype(dtype).name} array")
    values = rows - missing
    if len(counts) != len(edges) + 1 or len(sums) != len(counts):
        raise _bad(f"column {name!r}: counts and sums need len(edges) + 1 entries")
    if values and (len(edges) == 0 or not np.all(np.isfinite(edges))):
        raise _bad(f"column {name!r}: its edges are missing or not finite")
    if np.any(edges[1:] <= edges[:-1]):
        raise _bad(f"column {name!r}: its edges are not strictly increasing")
    if np.any(counts < 0) or int(counts.sum()) != values:
        raise _bad(f"column {name!r}: its counts do not add up to its {values} values")
    if len(sample) > min(sample_size, values) or np.any(sample[1:] < sample[:-1]):
        raise _bad(f"column {name!r}: its sample is larger than allowed or not sorted")
    if not np.all(np.isfinite(sample)):
        raise _bad(f"column {name!r}: its sample holds non-finite values")
    mean, std = _float_in(entry.get("mean")), _float_in(entry.get("std"))
    if values and not (math.isfinite(mean) and math.isfinite(std) and std >= 0):
        raise _bad(f"column {name!r}: its mean or standard deviation is not a number")
    return NumericalProfile(rows, missing, type_name, edges, counts, sums, mean, std, sample)


def _categorical(
    name: str, rows: int, missing: int, type_name: str, entry: dict[str, Any], hashes: np.ndarray
) -> CategoricalProfile:
    categories, counts = entry.get("categories"), entry.get("counts")
    if not isinstance(categories, list) or not all(isinstance(c, str) for c in categories):
        raise _bad(f"column {name!r}: its categories are not a list of strings")
    if (
        not isinstance(counts, list)
        or len(counts) != len(categories)
        or not all(isinstance(c, int) and not isinstance(c, bool) and c >= 0 for c in counts)
    ):
        raise _bad(f"column {name!r}: its counts do not match its categories")
    if len(set(categories)) != len(categories):
        raise _bad(f"column {name!r}: a category appears twice")
    other = _count(entry, "other", name)
    distinct = _count(entry, "distinct", name)
    if sum(counts) + other != rows - missing or distinct < len(categories):
        raise _bad(f"column {name!r}: its counts do not add up to its {rows - missing} values")
    capped = entry.get("sketch_capped", False)
    if not isinstance(capped, bool):
        raise _bad(f"column {name!r}: sketch_capped is not true or false")
    if hashes.dtype != np.uint64 or hashes.ndim != 1 or len(hashes) > LABEL_SKETCH:
        raise _bad(f"column {name!r}: its label hashes are not a 1-D uint64 array")
    if np.any(hashes[1:] <= hashes[:-1]) or (capped and not len(hashes)):  # np.diff wraps around
        raise _bad(f"column {name!r}: its label hashes are not strictly increasing")
    return CategoricalProfile(
        rows=rows,
        missing=missing,
        type_name=type_name,
        categories=tuple(categories),
        counts=np.asarray(counts, np.int64),
        other=other,
        distinct=distinct,
        known_hashes=hashes,
        sketch_capped=capped,
    )


def _count(entry: dict[str, Any], key: str, where: str) -> int:
    value = entry.get(key)
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise _bad(f"{where}: {key} is not a count")
    return value


def _float_out(value: float) -> float | None:
    return value if math.isfinite(value) else None


def _float_in(value: Any) -> float:
    if value is None:
        return math.nan
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise _bad(f"{value!r} is not a number")
    return float(value)


def _bad(reason: str) -> InvalidParameter:
    return InvalidParameter(f"not a usable reference profile: {reason}", field="reference")
