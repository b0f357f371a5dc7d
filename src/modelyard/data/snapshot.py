"""Snapshot a table: one pass computes its content digest, schema, row count and profile;
its files go into the content-addressed artifact store.

What is stored are the exact files given (a CSV stays that CSV, so ``pull`` restores
byte-identical data); an in-memory table (pandas, polars, Arrow) is written once as
Parquet. Files whose bytes are already known (the same sha256 manifest snapshotted
before, under any name) are not read again: their digest and profile are reused.

Tables that fit ``memory_limit`` bytes are read whole and profiled exactly; larger
Parquet inputs stream row group by row group, so a file larger than memory can be
snapshotted (see ``profile.py`` for what stays exact when streaming).
"""

from __future__ import annotations

import hashlib
import json
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from modelyard.data.digest import TableHasher, schema_json
from modelyard.data.entities import FileRef
from modelyard.data.pointer import file_sha256
from modelyard.data.profile import TableProfiler, profile_table
from modelyard.data.sources import TableSource, open_source, require_pyarrow

#: Tables up to this many bytes (uncompressed, as Parquet footers state) are profiled in
#: memory, exactly; larger ones are streamed.
DEFAULT_MEMORY_LIMIT = 1 << 30
#: Row-group size for Parquet written from in-memory tables: a million rows streams well.
ROW_GROUP_ROWS = 1 << 20


@dataclass(frozen=True, slots=True)
class Scan:
    """What one pass over a table found."""

    digest: str
    schema: list[dict[str, Any]]
    num_rows: int
    profile: dict[str, Any]
    streamed: bool


@dataclass
class Staged:
    """A table ready to store: its files on local disk and their sha256 manifest."""

    source: TableSource
    root: Path  # the folder the file paths are relative to
    files: list[FileRef]
    format: str
    label: str  # where it came from, for the record

    @property
    def files_digest(self) -> str:
        return files_digest(self.files)

    @property
    def num_bytes(self) -> int:
        return sum(f.size for f in self.files)


def files_digest(files: list[FileRef]) -> str:
    """sha256 over the sorted (path, sha256) manifest: equal iff the stored bytes are."""
    canon = json.dumps(sorted([f.path, f.sha256] for f in files), separators=(",", ":"))
    return hashlib.sha256(canon.encode()).hexdigest()


@contextmanager
def stage(data: Any, name: str) -> Iterator[Staged]:
    """Open ``data`` and hash its files; an in-memory table is written to a temporary
    Parquet file (``<name>.parquet``) that lives as long as the context."""
    source = open_source(data)
    if source.table is None:
        assert source.root is not None
        base = source.root if source.is_folder else source.root.parent
        refs = [_file_ref(base, rel) for rel in source.files]
        label = str(source.root)
        yield Staged(source, base, refs, source.format, label)
        return
    pq = _parquet()
    with tempfile.TemporaryDirectory(prefix="modelyard-snapshot-") as tmp:
        path = Path(tmp) / f"{name}.parquet"
        pq.write_table(source.table, path, row_group_size=ROW_GROUP_ROWS, compression="zstd")
        kind = type(data).__module__.split(".")[0]
        yield Staged(source, Path(tmp), [_file_ref(Path(tmp), path.name)], "parquet", kind)


def _file_ref(base: Path, rel: str) -> FileRef:
    path = base / rel
    return FileRef(rel, file_sha256(path), path.stat().st_size)


def scan(
    source: TableSource, *, memory_limit: int = DEFAULT_MEMORY_LIMIT, profile: bool = True
) -> Scan:
    """Digest, schema, row count and (optionally) profile, in one pass over the data."""
    hasher = TableHasher(source.schema)
    if source.table is not None or estimated_bytes(source) <= memory_limit:
        table = source.read_all()
        for batch in table.to_batches():
            hasher.update(batch)
        stats = profile_table(table) if profile else {}
        return Scan(hasher.hexdigest(), schema_json(source.schema), table.num_rows, stats, False)
    profiler = TableProfiler(source.schema, ranges=source.ranges) if profile else None
    for batch in source.batches():
        hasher.update(batch)
        if profiler is not None:
            profiler.update(batch)
    stats = profiler.result() if profiler is not None else {}
    return Scan(hasher.hexdigest(), schema_json(source.schema), hasher.num_rows, stats, True)


def estimated_bytes(source: TableSource) -> int:
    """The in-memory size of a file source: Parquet footers state it; CSV is guessed at
    twice its file size (text is usually larger than its columns, but not always)."""
    if source.table is not None:
        return int(source.table.nbytes)
    total = 0
    for path in source.paths():
        if source.format == "parquet":
            meta = _parquet().ParquetFile(path).metadata
            total += sum(meta.row_group(g).total_byte_size for g in range(meta.num_row_groups))
        else:
            total += 2 * path.stat().st_size
    return total


def _parquet() -> Any:
    require_pyarrow()
    import pyarrow.parquet as pq

    return pq
