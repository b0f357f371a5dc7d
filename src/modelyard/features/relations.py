"""Turn sources and feature views into DuckDB relations: the one place that knows how a
view's rows are read, transformed and typed, used by training sets, materialisation and
skew checks alike — which is what keeps offline and online values the same.

A view's *normalised relation* has the join keys (cast to their key types), ``__ts`` (and
``__created`` when the source has a created-timestamp column; ``TIMESTAMPTZ``, UTC) and
the features cast to their declared types (casts that would change nothing are left out). Naive
timestamps are read as UTC. Python transformations run once per source version, chunk by
chunk, into a cached Parquet file, so neither the source nor its transformed copy has to
fit in memory.
"""

from __future__ import annotations

import hashlib
import os
import threading
import uuid
import warnings
from collections import OrderedDict
from collections.abc import Iterator, Sequence
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from glob import glob
from pathlib import Path
from typing import TYPE_CHECKING, Any

from modelyard.errors import InvalidParameter, MissingExtra
from modelyard.features.definitions import FeatureView
from modelyard.features.fields import DUCKDB_TYPES
from modelyard.features.sources import DataFrameSource, FileSource, Source, SqlSource

if TYPE_CHECKING:
    import duckdb

#: Rows per chunk when transforming, snapshotting or streaming.
CHUNK_ROWS = 65_536
#: Prepared views kept per thread for later training sets (least recently used dropped).
PREPARED_VIEWS = 8
_INT_TYPES = {
    "TINYINT",
    "SMALLINT",
    "INTEGER",
    "BIGINT",
    "UTINYINT",
    "USMALLINT",
    "UINTEGER",
    "UBIGINT",
    "HUGEINT",
}
_FLOAT_TYPES = {"FLOAT", "DOUBLE"}
#: Source column types each declared type accepts (anything else is a wrong type).
ACCEPTED_TYPES: dict[str, set[str]] = {
    "int64": _INT_TYPES,
    "int32": _INT_TYPES,
    "float64": _INT_TYPES | _FLOAT_TYPES | {"DECIMAL"},
    "float32": _INT_TYPES | _FLOAT_TYPES | {"DECIMAL"},
    "bool": {"BOOLEAN"},
    "string": {"VARCHAR"},
    "timestamp": {
        "TIMESTAMP",
        "TIMESTAMP WITH TIME ZONE",
        "TIMESTAMP_NS",
        "TIMESTAMP_MS",
        "TIMESTAMP_S",
        "DATE",
    },
}
#: Event and created times may also be ISO-8601 text (CSV files, SQLite tables).
_TS_TYPES = ACCEPTED_TYPES["timestamp"] | {"VARCHAR"}
#: How DESCRIBE names each declared type (to skip casts that would change nothing).
_DESCRIBED = {**DUCKDB_TYPES, "timestamp": "TIMESTAMP WITH TIME ZONE"}


def quote(identifier: str) -> str:
    """A SQL identifier, double-quoted (names are validated, but columns may be anything)."""
    return '"' + identifier.replace('"', '""') + '"'


def literal(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def _base_type(duck_type: str) -> str:
    return duck_type.split("(")[0].upper()


def arrow_table(con: duckdb.DuckDBPyConnection, sql: str) -> Any:
    """Run ``sql`` and return an Arrow table. ``execute`` plans the query once; this DuckDB's
    ``sql()`` binds it in Python first, which costs more than its advertised extra copy."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", "Arrow output on a DB-API result", UserWarning)
        return con.execute(sql).to_arrow_table()


def arrow_reader(con: duckdb.DuckDBPyConnection, sql: str, batch_rows: int) -> Any:
    """Stream the rows of ``sql`` as Arrow record batches of ``batch_rows``.

    Through a relation (``sql()``): a DB-API result (``execute``) is materialised whole
    before the first batch, which would defeat bounded-memory materialisation.
    """
    return con.sql(sql).to_arrow_reader(batch_rows)


def _require_duckdb() -> Any:
    try:
        import duckdb
    except ModuleNotFoundError as exc:  # pragma: no cover - duckdb is in the features extra
        raise MissingExtra("duckdb", "features", "The feature store") from exc
    return duckdb


@dataclass
class ViewRelation:
    """A view ready to query: SQL text of its normalised relation, and what it read."""

    view: FeatureView
    sql: str
    source_digest: str
    has_created: bool
    #: Temp tables holding the rows (set by ``Session.prepare``): all of them, and one row
    #: per (keys, event time) after the tie-break (the same table when there are no ties).
    table: str = ""
    deduplicated: str = ""
    keys_table: str = ""


@dataclass
class _FileStamp:
    stamp: tuple[Any, ...]
    digest: str


@dataclass
class OfflineEngine:
    """DuckDB connections (one per thread: a connection is not thread-safe), a cache folder
    for transformed views and SQL snapshots, and the memory limit that bounds every query
    (DuckDB spills to ``cache_dir/spill`` beyond it)."""

    cache_dir: Path
    memory_limit: str = "1GB"
    threads: int | None = None
    _local: threading.local = field(default_factory=threading.local, repr=False)
    _digests: dict[str, _FileStamp] = field(default_factory=dict, repr=False)
    _checked: dict[tuple[str, str], dict[str, str]] = field(default_factory=dict, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def connection(self) -> duckdb.DuckDBPyConnection:
        con = getattr(self._local, "con", None)
        if con is None:
            duckdb = _require_duckdb()
            spill = self.cache_dir / "spill"
            spill.mkdir(parents=True, exist_ok=True)
            con = duckdb.connect(config={"python_enable_replacements": False})
            con.execute("SET TimeZone = 'UTC'")
            con.execute(f"SET memory_limit = {literal(self.memory_limit)}")
            con.execute(f"SET temp_directory = {literal(str(spill))}")
            if self.threads:
                con.execute(f"SET threads = {int(self.threads)}")
            self._local.con = con
        return con

    def warm(self, paths: Sequence[str]) -> None:
        """Open this thread's connection while the source files at ``paths`` are hashed
        (both release the GIL): a first materialisation waits for the slower of the two,
        not for both. A file that cannot be hashed is left to the read that needs its
        digest, which reports it."""

        def hash_all() -> None:
            for path in paths:
                with suppress(InvalidParameter, OSError):
                    self.file_digest(path)

        if not paths or getattr(self._local, "con", None) is not None:
            hash_all()  # nothing to overlap with
            return
        hashing = threading.Thread(target=hash_all, daemon=True)
        hashing.start()
        try:
            self.connection()
        finally:
            hashing.join()

    def close(self) -> None:
        con = getattr(self._local, "con", None)
        if con is not None:
            con.close()
            self._local.con = None
            self._local.prepared = OrderedDict()

    def prepared(self) -> OrderedDict[tuple[str, str], tuple[str, str, str]]:
        """This thread's prepared views: (data digest, source digest) → table names."""
        cache = getattr(self._local, "prepared", None)
        if cache is None:
            cache = self._local.prepared = OrderedDict()
        return cache

    # ------------------------------------------------------------------ sources
    @contextmanager
    def session(self) -> Iterator[Session]:
        """Sources read for one operation; SQL snapshots are removed when it ends."""
        session = Session(self, self.connection())
        try:
            yield session
        finally:
            session.cleanup()

    def file_digest(self, pattern: str) -> str:
        """sha256 over the files a path or glob names, remembered while size and mtime hold."""
        paths = sorted(glob(pattern)) if any(c in pattern for c in "*?[") else [pattern]
        if not paths or not all(os.path.isfile(p) for p in paths):
            raise InvalidParameter(f"source file {pattern!r} does not exist", field="path")
        stamp = tuple((p, os.stat(p).st_size, os.stat(p).st_mtime_ns) for p in paths)
        known = self._digests.get(pattern)
        if known is not None and known.stamp == stamp:
            return known.digest
        h = hashlib.sha256()
        for p in paths:
            h.update(p.encode() + b"\0")
            with open(p, "rb") as fh:
                while block := fh.read(1 << 20):
                    h.update(block)
        digest = h.hexdigest()
        with self._lock:
            self._digests[pattern] = _FileStamp(stamp, digest)
        return digest


class Session:
    """One operation's view of the sources, on one connection."""

    def __init__(self, engine: OfflineEngine, con: duckdb.DuckDBPyConnection) -> None:
        self.engine = engine
        self.con = con
        self._scans: dict[int, tuple[str, str]] = {}
        self._temp_files: list[Path] = []
        self._registered: list[str] = []

    def cleanup(self) -> None:
        for name in self._registered:
            with suppress(Exception):
                self.con.unregister(name)
        for path in self._temp_files:
            with suppress(OSError):
                path.unlink()

    def register(self, obj: Any, prefix: str = "rel") -> str:
        name = f"__{prefix}_{uuid.uuid4().hex[:12]}"
        self.con.register(name, obj)
        self._registered.append(name)
        return name

    def scan(self, source: Source) -> tuple[str, str]:
        """``(FROM-clause SQL, content digest)`` for a source, computed once per session."""
        known = self._scans.get(id(source))
        if known is not None:
            return known
        if isinstance(source, FileSource):
            digest = self.engine.file_digest(source.path)
            reader = "read_csv" if source.file_format == "csv" else "read_parquet"
            extra = ", header = true" if source.file_format == "csv" else ""
            scan = f"{reader}({literal(source.path)}{extra})"
        elif isinstance(source, DataFrameSource):
            digest = source.content_digest
            scan = self.register(source.frame, "frame")
        elif isinstance(source, SqlSource):
            path = self._snapshot_sql(source)
            digest = self.engine.file_digest(str(path))
            scan = f"read_parquet({literal(str(path))})"
        else:  # pragma: no cover - definitions only build the three kinds
            raise InvalidParameter(f"unsupported source {source!r}", field="source")
        self._scans[id(source)] = (scan, digest)
        return scan, digest

    def _snapshot_sql(self, source: SqlSource) -> Path:
        """Stream a SQL table or query into a Parquet file, chunk by chunk."""
        import pyarrow as pa
        import pyarrow.parquet as pq
        from sqlalchemy import create_engine, text

        target = self.engine.cache_dir / f"sql-{uuid.uuid4().hex}.parquet"
        target.parent.mkdir(parents=True, exist_ok=True)
        self._temp_files.append(target)
        query = source.query or f"SELECT * FROM {quote(source.table or '')}"
        engine = create_engine(source.uri)
        writer = None
        try:
            with engine.connect() as conn:
                result = conn.execution_options(yield_per=CHUNK_ROWS).execute(text(query))
                columns = list(result.keys())
                for rows in result.partitions():
                    table = pa.Table.from_pylist([dict(zip(columns, r, strict=True)) for r in rows])
                    if writer is None:
                        writer = pq.ParquetWriter(target, table.schema)
                    writer.write_table(table.cast(writer.schema))
        finally:
            if writer is not None:
                writer.close()
            engine.dispose()
        if writer is None:
            raise InvalidParameter(f"SQL source {source.name} returned no rows", field="source")
        return target

    # ------------------------------------------------------------------ views
    def view(self, view: FeatureView) -> ViewRelation:
        """The normalised relation of ``view``, checked against its declared schema."""
        scan, digest = self.scan(view.source)
        if view.transform is not None:
            body = f"read_parquet({literal(str(self._transformed(view, scan, digest)))})"
        elif view.sql is not None:
            body = f"(WITH source AS (SELECT * FROM {scan}) {view.sql})"
        else:
            body = scan
        types = self._check(view, body, digest)
        src = view.source

        def column(name: str, duck_type: str, alias: str) -> str:
            # A cast that changes nothing still costs a projection per row: skip it.
            if types.get(name) == duck_type:
                return alias if quote(name) == alias else f"{quote(name)} AS {alias}"
            return f"CAST({quote(name)} AS {duck_type}) AS {alias}"

        parts = [column(k, DUCKDB_TYPES[view.key_dtypes[k]], quote(k)) for k in view.join_keys]
        parts.append(column(src.timestamp_field, "TIMESTAMP WITH TIME ZONE", "__ts"))
        if src.created_timestamp_field:
            parts.append(
                column(src.created_timestamp_field, "TIMESTAMP WITH TIME ZONE", "__created")
            )
        parts += [column(f.name, _DESCRIBED[f.dtype], quote(f.name)) for f in view.schema]
        sql = f"SELECT {', '.join(parts)} FROM {body} AS __body"
        return ViewRelation(view, sql, digest, bool(src.created_timestamp_field))

    def prepare(self, rel: ViewRelation) -> ViewRelation:
        """Load a view's normalised rows into temp tables once per source version.

        Later training sets on this thread reuse them (no re-read of the source, no second
        tie-break). Ties are looked for with a cheap hash aggregate; only when there are
        some is a deduplicated copy built with the documented tie-break (``offline``).
        Each row gets a ``__rid``, and a narrow ``keys`` table (rid, join keys, event time)
        is what the ASOF join sorts — carrying 200 feature columns through that sort costs
        several times more than fetching them afterwards by rid. DuckDB spills temp tables
        to disk beyond its memory limit.
        """
        from modelyard.features.offline import tie_break

        cache = self.engine.prepared()
        key = (rel.view.data_digest, rel.source_digest)
        known = cache.get(key)
        if known is None:
            table = f"__view_{uuid.uuid4().hex[:16]}"
            keys = ", ".join(quote(k) for k in rel.view.join_keys)
            self.con.execute(
                f"CREATE TEMP TABLE {table} AS SELECT row_number() OVER () AS __rid, * "
                f"FROM ({rel.sql})"
            )
            ties = self.con.execute(
                f"SELECT 1 FROM {table} GROUP BY {keys}, __ts HAVING count(*) > 1 LIMIT 1"
            ).fetchone()
            deduplicated = table
            if ties is not None:
                deduplicated = f"{table}_dedup"
                self.con.execute(
                    f"CREATE TEMP TABLE {deduplicated} AS SELECT * FROM {table} QUALIFY "
                    f"row_number() OVER (PARTITION BY {keys}, __ts ORDER BY "
                    f"{tie_break(rel.view)}) = 1"
                )
            self.con.execute(
                f"CREATE TEMP TABLE {table}_keys AS SELECT __rid, {keys}, __ts FROM {deduplicated}"
            )
            known = cache[key] = (table, deduplicated, f"{table}_keys")
            while len(cache) > PREPARED_VIEWS:
                _, dropped = cache.popitem(last=False)
                for name in set(dropped):
                    self.con.execute(f"DROP TABLE IF EXISTS {name}")
        cache.move_to_end(key)
        rel.table, rel.deduplicated, rel.keys_table = known
        return rel

    def _check(self, view: FeatureView, body: str, digest: str) -> dict[str, str]:
        """Check that the keys, timestamps and features exist with acceptable types; the
        column types (remembered per source version)."""
        key = (view.data_digest, digest)
        known = self.engine._checked.get(key)
        if known is not None:
            return known
        rows = self.con.execute(f"DESCRIBE SELECT * FROM {body} AS __body").fetchall()
        columns = {str(r[0]): str(r[1]) for r in rows}
        where = f"source {view.source.name!r} of feature view {view.name}"
        if view.transform is not None or view.sql is not None:
            where = f"the transformation of feature view {view.name}"
        src = view.source
        for role, col in (
            ("timestamp column", src.timestamp_field),
            ("created-timestamp column", src.created_timestamp_field),
        ):
            if col is None:
                continue
            if col not in columns:
                raise InvalidParameter(
                    f"{where} has no {role} {col!r}; its columns are {sorted(columns)}",
                    field="timestamp_field",
                )
            if _base_type(columns[col]) not in _TS_TYPES:
                raise InvalidParameter(
                    f"{role} {col!r} of {where} is {columns[col]}, not a timestamp",
                    field="timestamp_field",
                )
        wanted = [(k, view.key_dtypes[k], "join key") for k in view.join_keys]
        wanted += [(f.name, f.dtype, "feature") for f in view.schema]
        for name, dtype, role in wanted:
            if name not in columns:
                raise InvalidParameter(
                    f"{where} has no {role} column {name!r}; its columns are {sorted(columns)}",
                    field=name,
                )
            if _base_type(columns[name]) not in ACCEPTED_TYPES[dtype]:
                raise InvalidParameter(
                    f"{role} {name!r} of {where} is {columns[name]}, which cannot be read as "
                    f"the declared {dtype}; fix the declared type or cast it in the source",
                    field=name,
                )
        with self.engine._lock:
            self.engine._checked[key] = columns
        return columns

    def _transformed(self, view: FeatureView, scan: str, digest: str) -> Path:
        """Run the Python transform over the source in chunks into a cached Parquet file."""
        import pyarrow as pa
        import pyarrow.parquet as pq

        folder = self.engine.cache_dir / "views"
        target = folder / f"{view.name}-{view.data_digest[:16]}-{digest[:16]}.parquet"
        if target.exists():
            return target
        folder.mkdir(parents=True, exist_ok=True)
        tmp = folder / f".{target.name}.{uuid.uuid4().hex}.tmp"
        reader = arrow_reader(self.con, f"SELECT * FROM {scan}", CHUNK_ROWS)
        writer = None
        try:
            for batch in reader:
                out = view.transform(batch.to_pandas())  # type: ignore[misc]
                if not (hasattr(out, "columns") and hasattr(out, "dtypes")):
                    raise InvalidParameter(
                        f"the transform of feature view {view.name} returned "
                        f"{type(out).__name__}; it must return a pandas DataFrame",
                        field="transform",
                    )
                table = pa.Table.from_pandas(out, preserve_index=False)
                if writer is None:
                    writer = pq.ParquetWriter(tmp, table.schema)
                writer.write_table(table.cast(writer.schema))
            if writer is None:  # an empty source still has a schema
                empty = view.transform(reader.schema.empty_table().to_pandas())  # type: ignore[misc]
                writer = pq.ParquetWriter(tmp, pa.Table.from_pandas(empty).schema)
            writer.close()
            writer = None
            os.replace(tmp, target)
        finally:
            if writer is not None:
                writer.close()
            with suppress(OSError):
                tmp.unlink()
        return target
