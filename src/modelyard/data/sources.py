"""Open what a user hands us (a file, a folder, a DataFrame, an Arrow table) as Arrow.

Everything downstream (digest, profile, snapshot) sees one shape: a schema plus an
iterator of ``RecordBatch``. Parquet is read one row group at a time, so a file larger
than memory streams through; CSV files are read one file at a time (a CSV has no row
groups to stream by, and type inference needs the whole file), with every file of a
folder read against the first file's schema so that a folder is one table.

>>> import pandas as pd
>>> pd.DataFrame({"store": [1, 2, 3], "units": [5, 0, 7]}).to_parquet("sales.parquet")
>>> src = open_source("sales.parquet")
>>> src.schema.names, [batch.num_rows for batch in src.batches()]
(['store', 'units'], [3])
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from modelyard.errors import InvalidParameter, MissingExtra, NotFound

if TYPE_CHECKING:
    import pyarrow as pa

PARQUET_SUFFIXES = (".parquet", ".pq", ".parq")
CSV_SUFFIXES = (".csv", ".tsv", ".csv.gz", ".tsv.gz")
#: Rows per batch when an in-memory table or a CSV file is streamed through the profiler.
BATCH_ROWS = 1 << 20

Format = Literal["parquet", "csv", "table"]


def require_pyarrow() -> Any:
    """Import pyarrow or say which extra brings it."""
    try:
        import pyarrow
    except ImportError as exc:  # pragma: no cover - pyarrow ships with the data extra
        raise MissingExtra("pyarrow", "data", "Dataset snapshots and profiles") from exc
    return pyarrow


def file_format(path: Path) -> Format | None:
    """The format a file's name says it holds, or None for other files."""
    name = path.name.lower()
    if name.endswith(PARQUET_SUFFIXES):
        return "parquet"
    if name.endswith(CSV_SUFFIXES):
        return "csv"
    return None


@dataclass
class TableSource:
    """A table to read: files under ``root`` (relative paths in ``files``) or in memory.

    ``ranges`` holds each numeric column's (min, max) when the files' metadata knows it
    (Parquet statistics), which lets a streamed profile bin histograms exactly.
    """

    format: Format
    schema: pa.Schema
    root: Path | None = None
    files: list[str] = field(default_factory=list)
    table: pa.Table | None = None
    num_rows: int | None = None
    ranges: dict[str, tuple[Any, Any]] = field(default_factory=dict)
    is_folder: bool = False
    #: The first CSV file, already read to learn the schema (used once, then dropped).
    _first_csv: pa.Table | None = None

    def paths(self) -> list[Path]:
        assert self.root is not None
        base = self.root if self.is_folder else self.root.parent
        return [base / rel for rel in self.files]

    def batches(self, batch_rows: int = BATCH_ROWS) -> Iterator[pa.RecordBatch]:
        """Every row, in order, as record batches conforming to ``schema``."""
        if self.table is not None:
            yield from self.table.to_batches(max_chunksize=batch_rows)
            return
        for path in self.paths():
            if self.format == "parquet":
                yield from _parquet_batches(path, self.schema)
            else:
                table, self._first_csv = self._first_csv, None
                if table is None or path != self.paths()[0]:
                    table = _read_csv(path, self.schema)
                yield from table.to_batches(max_chunksize=batch_rows)

    def read_all(self) -> pa.Table:
        """The whole table in memory (for in-memory checks; streaming callers use batches)."""
        pa = require_pyarrow()
        if self.table is not None:
            return self.table
        return pa.Table.from_batches(list(self.batches()), schema=self.schema)


def open_source(data: Any) -> TableSource:
    """A ``TableSource`` for a path (CSV, Parquet, or a folder of them), a pandas or polars
    DataFrame, or an Arrow table / record batch."""
    if isinstance(data, TableSource):
        return data
    if isinstance(data, (str, os.PathLike)):
        return _open_path(Path(data))
    return from_memory(data)


def from_memory(data: Any) -> TableSource:
    """Wrap an in-memory table (pandas, polars, Arrow) without copying where possible."""
    table = to_arrow(data)
    return TableSource("table", table.schema, table=table, num_rows=table.num_rows)


def to_arrow(data: Any) -> pa.Table:
    """An Arrow table for a pandas or polars DataFrame or an Arrow table/batch."""
    pa = require_pyarrow()
    if isinstance(data, pa.Table):
        return data
    if isinstance(data, pa.RecordBatch):
        return pa.Table.from_batches([data])
    module = type(data).__module__
    if module.startswith("polars"):
        return data.to_arrow()
    if hasattr(data, "to_arrow") and not hasattr(data, "iloc"):  # pragma: no cover
        return data.to_arrow()
    if hasattr(data, "iloc") and hasattr(data, "dtypes"):
        columns = [str(c) for c in data.columns]
        if len(set(columns)) != len(columns):
            dupes = sorted({c for c in columns if columns.count(c) > 1})
            raise InvalidParameter(
                f"the DataFrame has duplicate column names {dupes}; rename them first",
                field="data",
            )
        try:
            return pa.Table.from_pandas(data, preserve_index=False)
        except (pa.ArrowInvalid, pa.ArrowTypeError) as exc:
            raise InvalidParameter(
                f"the DataFrame cannot be stored as a table: {exc}; give mixed-type (object) "
                "columns one type each",
                field="data",
            ) from None
    raise InvalidParameter(
        f"cannot read a {type(data).__name__} as a dataset; pass a CSV or Parquet path, a "
        "folder of them, a pandas or polars DataFrame, or a pyarrow Table",
        field="data",
    )


def _open_path(path: Path) -> TableSource:
    if not path.exists():
        raise NotFound(f"dataset path {str(path)!r} does not exist", field="path")
    path = path.absolute()
    if path.is_dir():
        rels = sorted(
            p.relative_to(path).as_posix()
            for p in path.rglob("*")
            if p.is_file() and not _hidden(p.relative_to(path)) and file_format(p)
        )
        if not rels:
            raise InvalidParameter(
                f"folder {str(path)!r} holds no CSV or Parquet files", field="path"
            )
        formats = {file_format(Path(r)) for r in rels}
        if len(formats) > 1:
            raise InvalidParameter(
                f"folder {str(path)!r} mixes CSV and Parquet files; snapshot one format",
                field="path",
            )
        fmt = formats.pop()
        assert fmt is not None
        files = [path / r for r in rels]
        schema, first = _schema(files[0], fmt)
        source = TableSource(fmt, schema, root=path, files=rels, is_folder=True)
    else:
        fmt = file_format(path)
        if fmt is None:
            raise InvalidParameter(
                f"{path.name!r} is not a CSV or Parquet file (by its name); use .csv, .tsv, "
                ".parquet or a folder of them",
                field="path",
            )
        files = [path]
        schema, first = _schema(path, fmt)
        source = TableSource(fmt, schema, root=path, files=[path.name])
    source._first_csv = first
    if fmt == "parquet":
        _parquet_metadata(source, files)
    return source


def _hidden(rel: Path) -> bool:
    """Files such as ``_SUCCESS`` or ``.crc`` that writers leave beside data parts."""
    return any(part.startswith((".", "_")) for part in rel.parts)


def _schema(path: Path, fmt: Format) -> tuple[pa.Schema, pa.Table | None]:
    """The schema of the first file; for CSV also the table read to infer it."""
    if fmt == "parquet":
        pq = _parquet()
        try:
            return pq.read_schema(path), None
        except Exception as exc:
            raise InvalidParameter(
                f"{str(path)!r} is not a readable Parquet file: {exc}", field="path"
            ) from None
    table = _read_csv(path, None)
    return table.schema, table


def _parquet() -> Any:
    require_pyarrow()
    import pyarrow.parquet as pq

    return pq


def _parquet_metadata(source: TableSource, files: list[Path]) -> None:
    """Row count and per-column (min, max) from the files' footers: no data is read.

    A column has a range only when every row group holding values states one."""
    pq = _parquet()
    rows = 0
    ranges: dict[str, tuple[Any, Any]] = {}
    unknown: set[str] = set()
    for path in files:
        meta = pq.ParquetFile(path).metadata
        rows += meta.num_rows
        if meta.num_columns != len(source.schema):
            raise InvalidParameter(
                f"{str(path)!r} has {meta.num_columns} columns where the first file has "
                f"{len(source.schema)}; a folder must hold parts of one table",
                field="path",
            )
        for g in range(meta.num_row_groups):
            group = meta.row_group(g)
            for c in range(group.num_columns):
                col = group.column(c)
                name, stats = col.path_in_schema, col.statistics
                if stats is None or not stats.has_min_max:
                    if stats is None or stats.num_values:
                        unknown.add(name)
                    continue
                lo, hi = stats.min, stats.max
                old = ranges.get(name)
                try:
                    ranges[name] = (lo, hi) if old is None else (min(old[0], lo), max(old[1], hi))
                except TypeError:
                    unknown.add(name)
    source.num_rows = rows
    source.ranges = {k: v for k, v in ranges.items() if k not in unknown}


def _parquet_batches(path: Path, schema: pa.Schema) -> Iterator[pa.RecordBatch]:
    """One row group at a time: memory stays bounded by the largest row group."""
    pq = _parquet()
    pa = require_pyarrow()
    handle = pq.ParquetFile(path)
    for group in range(handle.metadata.num_row_groups):
        table = handle.read_row_group(group)
        if not table.schema.equals(schema, check_metadata=False):
            table = _conform(table, schema, path)
        yield from table.to_batches()
        del table
    if handle.metadata.num_row_groups == 0:  # an empty file still has a schema
        yield pa.RecordBatch.from_pylist([], schema=schema)


def _conform(table: pa.Table, schema: pa.Schema, path: Path) -> pa.Table:
    """Cast a part to the first part's schema, or name the column that differs."""
    if table.schema.names != schema.names:
        raise InvalidParameter(
            f"{str(path)!r} has columns {table.schema.names}, the first file "
            f"{schema.names}; a folder must hold parts of one table",
            field="path",
        )
    try:
        return table.cast(schema)
    except Exception:
        for name in schema.names:
            if table.schema.field(name).type != schema.field(name).type:
                raise InvalidParameter(
                    f"column {name!r} is {table.schema.field(name).type} in {str(path)!r} but "
                    f"{schema.field(name).type} in the first file",
                    field="path",
                ) from None
        raise


def _read_csv(path: Path, schema: pa.Schema | None) -> pa.Table:
    require_pyarrow()
    from pyarrow import csv

    delimiter = "\t" if path.name.lower().endswith((".tsv", ".tsv.gz")) else ","
    convert = csv.ConvertOptions(
        column_types=dict(zip(schema.names, schema.types, strict=True)) if schema else None,
        strings_can_be_null=True,
    )
    try:
        table = csv.read_csv(
            path,
            parse_options=csv.ParseOptions(delimiter=delimiter),
            convert_options=convert,
        )
    except Exception as exc:
        raise InvalidParameter(f"cannot read CSV file {str(path)!r}: {exc}", field="path") from None
    if schema is not None and table.schema.names != schema.names:
        raise InvalidParameter(
            f"{str(path)!r} has columns {table.schema.names}, the first file {schema.names}; "
            "a folder must hold parts of one table",
            field="path",
        )
    return table
