"""The prediction log of one deployment and time window, read with DuckDB.

``LogWindow`` opens the window's Parquet files (``predictions/deployment=<name>/hour=<H>/``,
only the hours the window touches) as the view ``log``: read in place when the artifact
store is a local folder; from a remote store (S3) exactly those files are downloaded into
a temporary folder first, removed when the window closes. DuckDB runs with a memory limit,
a spill folder and no insertion order to keep, so queries stream.

``exploded_select`` turns the logged JSON (``inputs``: columnar ``{name: [values]}`` or a
list of records; ``outputs``: one prediction per row, or a list of class scores) into one
row per data row with ``from_json`` and ``unnest``; requests whose JSON does not parse
are left out and counted by ``request_stats``.
"""

from __future__ import annotations

import math
import os
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from modelyard import json_codec
from modelyard.durations import parse_duration
from modelyard.errors import InvalidParameter, MissingExtra
from modelyard.features.relations import literal, quote
from modelyard.ids import now_ms
from modelyard.serving.prediction_log import partition_path

if TYPE_CHECKING:
    from modelyard.artifacts.repository import ArtifactRepository

HOUR_MS = 3_600_000
#: Requests whose logged JSON is sampled to learn each column's type.
PROBE_FILES = 16
PROBE_ROWS = 200
DEFAULT_MEMORY_LIMIT = "256MB"
DEFAULT_THREADS = 2

# -- the window's files and connection ---------------------------------------------------


def window_bounds(window: str | timedelta, *, end_ms: int | None = None) -> tuple[int, int]:
    """``[end - window, end)`` in ms since the epoch (``end`` defaults to now); ``window``
    is a duration (``1h``, ``1d``, ``7d``: ``modelyard.durations``)."""
    span = parse_duration(window, "window")
    if span <= timedelta(0):
        raise InvalidParameter(f"window must be longer than zero, got {window!r}", field="window")
    end = now_ms() if end_ms is None else int(end_ms)
    return end - int(span / timedelta(milliseconds=1)), end


def _check_range(start_ms: int, end_ms: int) -> None:
    if end_ms <= start_ms:
        raise InvalidParameter(
            f"the window's end ({end_ms}) must come after its start ({start_ms})",
            field="end_ms",
        )


class LogWindow:
    """One deployment's prediction log in ``[start_ms, end_ms)``, as the DuckDB view ``log``
    (a context manager: it closes the connection and removes any downloaded files).

    ``files`` are the Parquet files of the hours the window touches; ``empty`` says no file
    exists (the view then has the log's columns and no rows)."""

    def __init__(
        self,
        artifacts: ArtifactRepository,
        deployment: str,
        start_ms: int,
        end_ms: int,
        *,
        memory_limit: str = DEFAULT_MEMORY_LIMIT,
        threads: int = DEFAULT_THREADS,
    ) -> None:
        _check_range(start_ms, end_ms)
        try:
            import duckdb
        except ImportError as exc:
            raise MissingExtra("duckdb", "monitoring", "Monitoring the prediction log") from exc
        self.deployment = deployment
        self.start_ms, self.end_ms = int(start_ms), int(end_ms)
        self._folder = tempfile.TemporaryDirectory(prefix="modelyard-window-")
        try:
            self.files = _window_files(artifacts, deployment, start_ms, end_ms, self._folder.name)
            spill = os.path.join(self._folder.name, "spill")
            self.con = duckdb.connect(
                ":memory:",
                config={
                    "memory_limit": memory_limit,
                    "threads": threads,
                    "temp_directory": spill,
                    # Streaming needs no order; keeping it would buffer whole row groups.
                    "preserve_insertion_order": False,
                },
            )
            self.con.execute(f"CREATE VIEW log AS {self._log_select()}")
        except BaseException:
            self._folder.cleanup()
            raise

    @property
    def empty(self) -> bool:
        return not self.files

    def _log_select(self) -> str:
        if not self.files:
            return (
                "SELECT NULL::VARCHAR AS request_id, NULL::TIMESTAMPTZ AS ts, "
                "NULL::VARCHAR AS deployment, NULL::INTEGER AS revision, "
                "NULL::VARCHAR AS variant, NULL::VARCHAR AS model, NULL::INTEGER AS version, "
                "NULL::VARCHAR AS role, NULL::VARCHAR AS status, NULL::DOUBLE AS latency_ms, "
                "NULL::INTEGER AS n_rows, NULL::VARCHAR AS key, NULL::VARCHAR AS inputs, "
                "NULL::VARCHAR AS outputs, NULL::VARCHAR AS error, NULL::VARCHAR AS contract "
                "WHERE false"
            )
        paths = "[" + ", ".join(literal(p) for p in self.files) + "]"
        return (
            f"SELECT * FROM read_parquet({paths}, union_by_name = true) "
            f"WHERE deployment = {literal(self.deployment)} "
            f"AND ts >= to_timestamp(0) + to_milliseconds({self.start_ms}) "
            f"AND ts < to_timestamp(0) + to_milliseconds({self.end_ms})"
        )

    def probe_selects(self) -> list[str]:
        """A few requests from each of a few files spread over the window (to learn the
        logged types without scanning it all); one query per file, run one after the
        other, so at most one file's row group is in memory."""
        step = max(1, len(self.files) // PROBE_FILES)
        return [
            f"SELECT inputs, outputs FROM read_parquet({literal(p)}) WHERE status = 'ok' "
            f"AND deployment = {literal(self.deployment)} LIMIT {PROBE_ROWS}"
            for p in self.files[::step][:PROBE_FILES]
        ]

    def close(self) -> None:
        self.con.close()
        self._folder.cleanup()

    def __enter__(self) -> LogWindow:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _window_files(
    artifacts: ArtifactRepository, deployment: str, start_ms: int, end_ms: int, folder: str
) -> list[str]:
    """Local paths of the Parquet files of every hour partition ``[start, end)`` touches;
    a remote store's are downloaded into ``folder`` (those hours' files only)."""
    blobs = artifacts.blobs
    out: list[str] = []
    seen: set[str] = set()
    for hour_ms in range(start_ms - start_ms % HOUR_MS, end_ms, HOUR_MS):
        for path, digest in artifacts.digests_under(partition_path(deployment, hour_ms)):
            if not path.endswith(".parquet") or digest in seen:
                continue
            seen.add(digest)
            local = blobs.local_path(digest)
            if local is None:
                local = blobs.download(digest, os.path.join(folder, "files", f"{digest}.parquet"))
            out.append(local)
    return out


# -- requests: counts, latency, errors -----------------------------------------------------


@dataclass(frozen=True, slots=True)
class RequestStats:
    """Requests of one variant and version (in one time bucket, for rolling windows)."""

    variant: str
    version: int
    bucket_ms: int | None
    requests: int
    errors: int
    rows: int  # data rows of the requests answered
    latency_p50_ms: float | None
    latency_p99_ms: float | None
    malformed_inputs: int  # requests whose logged inputs are not JSON (skipped)
    malformed_outputs: int
    record_requests: int = 0  # requests whose inputs were logged as a list of records
    logged_inputs: int = 0  # answered requests that logged inputs for at least one row

    @property
    def error_rate(self) -> float | None:
        return self.errors / self.requests if self.requests else None


def _bucket(step_ms: int | None) -> str:
    return "NULL::BIGINT" if step_ms is None else f"(epoch_ms(ts) // {step_ms}) * {step_ms}"


def request_stats(
    window: LogWindow, *, step_ms: int | None = None, validate_inputs: bool = True
) -> list[RequestStats]:
    """Per variant and version (and ``step_ms`` bucket): requests, errors, rows, latency
    quantiles, and requests whose JSON does not parse. ``validate_inputs=False`` skips
    parsing every request's inputs here (a full pass over the log's largest column) when
    a stream that parses them anyway will count the malformed ones (``logged_inputs``
    minus the requests it read)."""
    bad_inputs = (
        "count(*) FILTER (WHERE status = 'ok' AND inputs IS NOT NULL AND NOT json_valid(inputs))"
        if validate_inputs
        else "0"
    )
    sql = f"""
        SELECT variant, version, {_bucket(step_ms)} AS bucket, count(*) AS requests,
            count(*) FILTER (WHERE status <> 'ok') AS errors,
            coalesce(sum(n_rows) FILTER (WHERE status = 'ok'), 0) AS rows,
            count(*) FILTER (WHERE status = 'ok' AND inputs IS NOT NULL AND n_rows > 0)
                AS logged_inputs,
            {bad_inputs} AS bad_inputs,
            count(*) FILTER (WHERE status = 'ok' AND outputs IS NOT NULL
                             AND NOT json_valid(outputs)) AS bad_outputs,
            count(*) FILTER (WHERE starts_with(inputs, '[')) AS record_requests
        FROM log GROUP BY ALL ORDER BY ALL"""
    latency = latency_quantiles(window, (0.5, 0.99), step_ms=step_ms)
    cursor = window.con.execute(sql)
    names = [d[0] for d in cursor.description]
    out = []
    for values in cursor.fetchall():
        r = dict(zip(names, values, strict=True))
        key = (str(r["variant"]), int(r["version"]), _int(r["bucket"]))
        p50, p99 = latency.get(key, (None, None))
        out.append(
            RequestStats(
                *key,
                int(r["requests"]),
                int(r["errors"]),
                int(r["rows"]),
                p50,
                p99,
                int(r["bad_inputs"]),
                int(r["bad_outputs"]),
                int(r["record_requests"]),
                int(r["logged_inputs"]),
            )
        )
    return out


def latency_quantiles(
    window: LogWindow, quantiles: Sequence[float], *, step_ms: int | None = None
) -> dict[tuple[str, int, int | None], tuple[float | None, ...]]:
    """Exact latency quantiles per variant, version (and bucket), interpolated linearly
    between order statistics as ``numpy.percentile`` does (DuckDB's ``quantile_cont``).
    ``quantile_cont`` keeps every value of a group in memory; when that exceeds DuckDB's
    memory limit (tens of millions of requests), the same quantiles are read from ranks
    given by a window function, which DuckDB sorts out of core (slower: ~3× at 10M)."""
    import duckdb

    bucket = _bucket(step_ms)
    listed = ", ".join(repr(q) for q in quantiles)
    try:
        found = records(
            window.con,
            f"SELECT variant, version, {bucket} AS bucket, "
            f"quantile_cont(latency_ms, [{listed}]) AS q FROM log "
            "WHERE latency_ms IS NOT NULL GROUP BY ALL",
        )
    except duckdb.OutOfMemoryException:
        return _ranked_quantiles(window, quantiles, step_ms)
    return {
        (str(r["variant"]), int(r["version"]), _int(r["bucket"])): tuple(
            None if v is None else float(v) for v in r["q"]
        )
        for r in found
    }


def _ranked_quantiles(
    window: LogWindow, quantiles: Sequence[float], step_ms: int | None
) -> dict[tuple[str, int, int | None], tuple[float | None, ...]]:
    picks = []
    for i, q in enumerate(quantiles):
        picks.append(
            f"max(latency_ms) FILTER (WHERE k = floor((n - 1) * {q!r}) + 1) AS lo{i}, "
            f"max(latency_ms) FILTER (WHERE k = ceil((n - 1) * {q!r}) + 1) AS hi{i}"
        )
    sql = f"""
        SELECT variant, version, bucket, any_value(n) AS n, {", ".join(picks)}
        FROM (
            SELECT variant, version, bucket, latency_ms,
                row_number() OVER (PARTITION BY variant, version, bucket ORDER BY latency_ms)
                    AS k,
                count(*) OVER (PARTITION BY variant, version, bucket) AS n
            FROM (SELECT variant, version, {_bucket(step_ms)} AS bucket, latency_ms FROM log
                  WHERE latency_ms IS NOT NULL))
        GROUP BY ALL"""
    cursor = window.con.execute(sql)
    names = [d[0] for d in cursor.description]
    out: dict[tuple[str, int, int | None], tuple[float | None, ...]] = {}
    for values in cursor.fetchall():
        r = dict(zip(names, values, strict=True))
        n = int(r["n"])
        picked = []
        for i, q in enumerate(quantiles):
            low, high = r[f"lo{i}"], r[f"hi{i}"]
            position = (n - 1) * q
            fraction = position - math.floor(position)
            picked.append(None if low is None else float(low + (high - low) * fraction))
        out[(str(r["variant"]), int(r["version"]), _int(r["bucket"]))] = tuple(picked)
    return out


def records(con: Any, sql: str) -> list[dict[str, Any]]:
    """The rows of ``sql`` as dicts by column name (never read by position)."""
    cursor = con.execute(sql)
    names = [d[0] for d in cursor.description]
    return [dict(zip(names, values, strict=True)) for values in cursor.fetchall()]


def _int(value: Any) -> int | None:
    return None if value is None else int(value)


# -- exploding the logged JSON -------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Extraction:
    """What to pull out of each logged row: input columns by type, the prediction, slices.

    ``columns`` maps an input column to its DuckDB type (``DOUBLE`` or ``VARCHAR``);
    ``slices`` are read as text; ``prediction`` is ``DOUBLE``, ``VARCHAR``, ``JSON`` (kept
    as logged, for the metrics) or ``None`` (not needed)."""

    columns: Mapping[str, str] = field(default_factory=dict)
    slices: Sequence[str] = ()
    prediction: str | None = None
    scores: bool = False  # outputs are lists of class scores per row
    records: bool = True  # some requests logged their inputs as a list of records


def exploded_select(
    extraction: Extraction, source: str = "log", *, step_ms: int | None = None, extra: str = ""
) -> str:
    """SQL giving one row per logged data row: ``variant, version, request_id, bucket,
    _row`` (the row's index in its request), each column of ``extraction`` under its own
    name, slices as ``_s0, _s1 ...`` and the prediction as ``prediction``. Requests whose
    inputs do not parse are left out (``request_stats`` counts them). Both logged input
    shapes are read: columnar, and lists of records unless ``extraction.records`` is
    false (``request_stats`` counts them, so a window without any skips that scan)."""
    wanted = dict.fromkeys([*extraction.columns, *extraction.slices])
    spec_types = {
        name: ("VARCHAR" if name in extraction.slices else extraction.columns[name])
        for name in wanted
    }
    object_spec = json_codec.dumps({k: [t] for k, t in spec_types.items()}).decode()
    record_spec = json_codec.dumps([spec_types]).decode()
    if extraction.prediction is None:
        output_spec = None
    elif extraction.scores:
        output_spec = '[["DOUBLE"]]'
    else:
        output_spec = json_codec.dumps([extraction.prediction]).decode()
    keys = f"variant, version, request_id, n_rows, {_bucket(step_ms)} AS bucket"
    outputs = f", try(from_json(outputs, {literal(output_spec)})) AS o" if output_spec else ""
    where = f"WHERE status = 'ok' {extra}"
    outer = ["variant", "version", "request_id", "bucket", "_row"]
    for name, duck_type in extraction.columns.items():
        value = f"v_{_ident(name)}"
        if spec_types[name] != duck_type:  # a slice column that is also a numerical input
            value = f"TRY_CAST({value} AS {duck_type})"
        outer.append(f"{value} AS {quote(name)}")
    for i, name in enumerate(extraction.slices):
        outer.append(f"v_{_ident(name)} AS _s{i}")
    if output_spec:
        if extraction.scores:
            outer.append(
                "CASE WHEN len(o1) = 2 THEN o1[2] "
                "ELSE list_position(o1, list_max(o1)) - 1 END AS prediction"
            )
        else:
            outer.append("o1 AS prediction")
    output_unnest = ", unnest(o) AS o1" if output_spec else ""
    unnested = "variant, version, request_id, bucket, unnest(range(n_rows)) AS _row"
    if wanted:
        columnar_values = ", ".join(
            f"unnest(c.{quote(name)}) AS v_{_ident(name)}" for name in wanted
        )
        # Only the columns needed travel on: the logged text stops at from_json.
        rows = f"""
            SELECT {unnested}, {columnar_values}{output_unnest}
            FROM (SELECT {keys}, try(from_json(inputs, {literal(object_spec)})) AS c{outputs}
                  FROM {source} {where} AND NOT starts_with(inputs, '['))
            WHERE c IS NOT NULL"""
        if extraction.records:
            record_values = ", ".join(f"r.{quote(name)} AS v_{_ident(name)}" for name in wanted)
            records = f"""
                SELECT * EXCLUDE (r), {record_values} FROM (
                    SELECT {unnested}, unnest(c) AS r{output_unnest}
                    FROM (SELECT {keys}, try(from_json(inputs, {literal(record_spec)})) AS c
                                 {outputs}
                          FROM {source} {where} AND starts_with(inputs, '['))
                    WHERE c IS NOT NULL)"""
            rows = f"({rows}) UNION ALL BY NAME ({records})"
    else:
        rows = (
            f"SELECT {unnested}{output_unnest} FROM (SELECT {keys}{outputs} FROM {source} {where})"
        )
    return f"SELECT {', '.join(outer)} FROM ({rows}) WHERE _row IS NOT NULL"


def _ident(name: str) -> str:
    """A column name made safe as part of an unquoted SQL identifier (stable, unique)."""
    return name.encode().hex()


def probe_types(window: LogWindow, columns: Sequence[str]) -> tuple[dict[str, set[str]], bool]:
    """The JSON types each column's first value takes in sampled requests (``NULL`` for a
    logged null; empty when no sampled request has the column), and whether outputs are
    lists of scores."""
    seen: dict[str, set[str]] = {name: set() for name in columns}
    if window.empty:
        return seen, False
    selects = ["json_type(outputs, '$[0]') AS out_type"]
    for i, name in enumerate(columns):
        key = json_codec.dumps(name).decode()
        selects.append(
            f"CASE WHEN starts_with(ltrim(inputs), '{{') THEN json_type(inputs, "
            f"{literal('$.' + key + '[0]')}) ELSE json_type(inputs, {literal('$[0].' + key)}) "
            f"END AS t{i}"
        )
    scores = False
    for probe in window.probe_selects():
        cursor = window.con.execute(
            f"SELECT {', '.join(selects)} FROM ({probe}) "
            "WHERE try(json(inputs)) IS NOT NULL AND try(json(outputs)) IS NOT NULL"
        )
        names = [d[0] for d in cursor.description]
        for values in cursor.fetchall():
            row = dict(zip(names, values, strict=True))
            scores = scores or row["out_type"] == "ARRAY"
            for i, name in enumerate(columns):
                if row[f"t{i}"] is not None:  # "NULL": logged, as null
                    seen[name].add(row[f"t{i}"])
    return seen, scores
