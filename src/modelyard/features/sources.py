"""Where a feature view's rows come from: files, DataFrames, SQL tables, request data.

Every source names the column holding each row's event time; an optional created-time
column breaks ties and lets a training set exclude values backfilled after the fact.
A source's ``spec()`` is plain JSON, part of its view's version digest.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any, Literal

from modelyard.errors import InvalidParameter
from modelyard.features.fields import Field, check_name


class Source:
    """Where rows of a view come from. ``timestamp_field`` holds the event time; the
    optional ``created_timestamp_field`` (when the row was written) breaks ties and lets a
    training set exclude values that were backfilled after the fact."""

    kind = "source"

    def __init__(
        self,
        *,
        timestamp_field: str,
        created_timestamp_field: str | None = None,
        name: str | None = None,
    ) -> None:
        if not isinstance(timestamp_field, str) or not timestamp_field:
            raise InvalidParameter(
                "a source needs timestamp_field, the column holding each row's event time",
                field="timestamp_field",
            )
        self.timestamp_field = timestamp_field
        self.created_timestamp_field = created_timestamp_field or None
        self.name = name

    def spec(self) -> dict[str, Any]:
        return {
            "type": type(self).__name__,
            "timestamp_field": self.timestamp_field,
            "created_timestamp_field": self.created_timestamp_field,
            "name": self.name,
        }


class FileSource(Source):
    """Parquet or CSV files (a path or a glob); the format follows the suffix unless given."""

    def __init__(
        self,
        path: str | Path,
        *,
        timestamp_field: str,
        created_timestamp_field: str | None = None,
        file_format: Literal["parquet", "csv"] | None = None,
        name: str | None = None,
    ) -> None:
        super().__init__(
            timestamp_field=timestamp_field,
            created_timestamp_field=created_timestamp_field,
            name=name or Path(str(path)).stem.replace("*", "all"),
        )
        self.path = str(Path(path).expanduser().absolute())
        fmt = file_format or (
            "csv" if self.path.lower().endswith((".csv", ".csv.gz")) else "parquet"
        )
        if fmt not in ("parquet", "csv"):
            raise InvalidParameter(
                f"file_format {fmt!r} is not supported; use 'parquet' or 'csv'", field="file_format"
            )
        self.file_format = fmt

    def spec(self) -> dict[str, Any]:
        return {**super().spec(), "path": self.path, "file_format": self.file_format}


class DataFrameSource(Source):
    """A pandas DataFrame held in memory; ``apply`` stores a Parquet copy as an artifact so
    that other processes (the CLI, a server) can read the same rows."""

    def __init__(
        self,
        frame: Any,
        *,
        timestamp_field: str,
        created_timestamp_field: str | None = None,
        name: str | None = None,
    ) -> None:
        super().__init__(
            timestamp_field=timestamp_field,
            created_timestamp_field=created_timestamp_field,
            name=name or "dataframe",
        )
        if not (hasattr(frame, "columns") and hasattr(frame, "dtypes")):
            raise InvalidParameter(
                f"DataFrameSource needs a pandas DataFrame, got {type(frame).__name__}",
                field="frame",
            )
        missing = [
            c for c in (timestamp_field, created_timestamp_field) if c and c not in frame.columns
        ]
        if missing:
            raise InvalidParameter(
                f"source {self.name} has no column {missing[0]!r} (its timestamp column); "
                f"columns are {list(map(str, frame.columns))}",
                field="timestamp_field",
            )
        self.frame = frame
        self._content_digest: str | None = None

    @property
    def content_digest(self) -> str:
        if self._content_digest is None:
            from modelyard.tracking.datasets import frame_digest

            self._content_digest = frame_digest(self.frame)
        return self._content_digest

    def spec(self) -> dict[str, Any]:
        return {**super().spec(), "digest": self.content_digest}


class SqlSource(Source):
    """A table (or a query) in a SQL database reachable by SQLAlchemy URL. It is read in
    chunks into a local Parquet snapshot per use, so memory stays bounded."""

    def __init__(
        self,
        uri: str,
        *,
        table: str | None = None,
        query: str | None = None,
        timestamp_field: str,
        created_timestamp_field: str | None = None,
        name: str | None = None,
    ) -> None:
        if (table is None) == (query is None):
            raise InvalidParameter("SqlSource takes exactly one of table= or query=", field="table")
        if table is not None:
            check_name(table, "table")
        super().__init__(
            timestamp_field=timestamp_field,
            created_timestamp_field=created_timestamp_field,
            name=name or table or "query",
        )
        self.uri = uri
        self.table = table
        self.query = query

    def spec(self) -> dict[str, Any]:
        from sqlalchemy.engine import make_url

        safe = make_url(self.uri).render_as_string(hide_password=True)
        return {**super().spec(), "uri": safe, "table": self.table, "query": self.query}


class RequestSource:
    """Fields that arrive with the request (``amount`` of a transaction), for on-demand
    features. Offline they are columns of the entity DataFrame."""

    kind = "request_source"

    def __init__(self, name: str, schema: Sequence[Field]) -> None:
        self.name = check_name(name, "request source name")
        self.schema = tuple(schema)

    def spec(self) -> dict[str, Any]:
        return {"name": self.name, "schema": [f.spec() for f in self.schema]}
