"""A monitoring window over a large prediction log: time and memory of ``evaluate_window``.

Issue 12, item 6: a window of 10 million logged rows × 20 inputs is evaluated with memory
beyond the reference under 500 MB, from the Parquet log with streaming queries.

One invocation:

1. writes the log directly in the prediction log's schema with DuckDB (``COPY ... TO
   parquet``, zstd, as the serving writer does; files of at most ``--file-rows`` rows, in
   the hour partitions of a 24-hour window) — columnar JSON inputs of 20 numerical
   features and a ``region`` column, one prediction per row, two variants (blue v1, 90 %;
   green v2), 0.1 % errors — and registers each file in a fresh artifact store (local
   folder) and metadata database (SQLite);
2. builds the reference profiles (inputs and predictions, 200,000 training rows from the
   same distributions, except ``f01`` shifted by 0.5 σ in the log so one feature must
   drift) and stores feedback for ``--feedback`` of the requests (a value for their
   row 0, by request id and row);
3. runs ``evaluate_window`` in a fresh process (its memory is its own): the profiles are
   loaded first, freed pages returned to the OS, then the peak resident set is sampled
   every 2 ms during the evaluation. "Beyond the reference" is that peak minus the
   resident set before the evaluation (imports and profiles loaded).

Measured here (2 shared cores, load average 6-10 from other work; DuckDB
``memory_limit`` 256 MB; 24-hour window, slices by ``region``: 10 groups of summaries;
only ``f01`` flagged, as it must be):

    layout                          threads  wall    CPU    beyond the reference
    10M rows, 1 row a request (10M     2      99 s    82 s   363 MB (ru_maxrss 506 MB)
      requests, 889 MB of Parquet)     1     237 s    92 s   297 MB (load average ~10)
    10M rows, 10 rows a request        2     124 s    61 s   477 MB (ru_maxrss 618 MB)
      (1M requests, 605 MB)            1     113 s    56 s   357 MB

The first version (latency by ranks always, every request's inputs parsed twice) took
186 s for the first layout. Smaller record batches (16,384 rows) cut the 10-row layout to
397 MB but doubled its CPU time; a 128 MB memory limit runs DuckDB out of memory there.

    python benchmarks/monitoring_window.py                # 10M rows, 1 row a request
    python benchmarks/monitoring_window.py --quick        # 200k rows
    python benchmarks/monitoring_window.py --rows 10000000 --rows-per-request 10
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from memory import PeakRss, release_memory  # benchmarks/memory.py

FEATURES = [f"f{i:02d}" for i in range(20)]
REGIONS = ["north", "south", "east", "west"]
HOUR_MS = 3_600_000
START_MS = 1_790_064_000_000  # an hour boundary
DEPLOYMENT = "bench"


# ------------------------------------------------------------------------------ the log
def _inputs_sql(rows_per_request: int) -> str:
    """A columnar JSON object per request: each feature uniform on [0, 10) (``f01`` on
    [~1.44, ~11.44): +0.5 σ), rounded to 3 decimals as logged numbers usually are."""
    parts = []
    for name in FEATURES:
        shift = " + 1.4434" if name == "f01" else ""
        parts.append(
            f"'{name}': list_transform(range({rows_per_request}), "
            f"lambda x: round(random() * 10{shift}, 3))"
        )
    parts.append(
        f"'region': list_transform(range({rows_per_request}), "
        f"lambda x: {REGIONS}[floor(random() * 4)::INT + 1])"
    )
    return "to_json({" + ", ".join(parts) + "})::VARCHAR"


def write_log(folder: Path, rows: int, rows_per_request: int, file_rows: int) -> list[Path]:
    import duckdb

    requests = rows // rows_per_request
    per_file = max(1, file_rows // rows_per_request)
    spacing_ms = 24 * HOUR_MS / requests
    files = []
    con = duckdb.connect(config={"threads": 2, "memory_limit": "1GB"})
    try:
        for n, first in enumerate(range(0, requests, per_file)):
            last = min(requests, first + per_file)
            path = folder / "log" / f"part-{n:05d}.parquet"
            path.parent.mkdir(parents=True, exist_ok=True)
            con.execute(
                f"""COPY (
                SELECT 'r' || i AS request_id,
                    to_timestamp(0) + to_milliseconds(CAST({START_MS} + i * {spacing_ms}
                        AS BIGINT)) AS ts,
                    '{DEPLOYMENT}' AS deployment, 1::INTEGER AS revision,
                    CASE WHEN i % 10 = 0 THEN 'green' ELSE 'blue' END AS variant,
                    'demand' AS model, CASE WHEN i % 10 = 0 THEN 2 ELSE 1 END::INTEGER AS version,
                    'primary' AS role,
                    CASE WHEN i % 1000 = 999 THEN 'error' ELSE 'ok' END AS status,
                    2 + random() * 20 AS latency_ms, {rows_per_request}::INTEGER AS n_rows,
                    NULL::VARCHAR AS key, {_inputs_sql(rows_per_request)} AS inputs,
                    to_json(list_transform(range({rows_per_request}),
                        lambda x: round(random() * 100, 3)))::VARCHAR AS outputs,
                    NULL::VARCHAR AS error, NULL::VARCHAR AS contract
                FROM range({first}, {last}) t(i)
                ) TO '{path}' (FORMAT parquet, COMPRESSION zstd)"""
            )
            files.append(path)
    finally:
        con.close()
    return files


def hour_of(path: Path) -> str:
    import pyarrow.parquet as pq

    first = pq.ParquetFile(path).read_row_group(0, columns=["ts"]).column("ts")[0].as_py()
    return first.strftime("%Y-%m-%dT%H")


def prepare(folder: Path, args: argparse.Namespace) -> dict[str, Any]:
    import numpy as np

    from modelyard.artifacts.blobs import open_blob_store
    from modelyard.artifacts.repository import ArtifactRepository
    from modelyard.monitoring.profiles import ReferenceProfile
    from modelyard.serving.feedback import FeedbackItem, FeedbackStore
    from modelyard.store.engine import open_database
    from modelyard.store.migrations import ensure_schema

    started = time.perf_counter()
    logged = folder / "log.done"  # a kept folder whose log was written: not again
    files = (
        []
        if logged.exists()
        else write_log(folder, args.rows, args.rows_per_request, args.file_rows)
    )
    generated = time.perf_counter() - started
    db = open_database(f"sqlite:///{folder / 'meta.db'}")
    try:
        ensure_schema(db)
        artifacts = ArtifactRepository(db, open_blob_store(str(folder / "artifacts")))
        for path in files:
            # The writer names files by hour of their first record; files here may span
            # two hours, and a window reads every hour it touches, so any is fine.
            artifacts.log_file(f"predictions/deployment={DEPLOYMENT}/hour={hour_of(path)}/"
                               f"{path.name}", path)  # fmt: skip
            path.unlink()
        logged.touch()
        rng = np.random.default_rng(0)
        train = {name: rng.uniform(0, 10, 200_000).round(3) for name in FEATURES}
        train["region"] = rng.choice(REGIONS, 200_000)
        inputs = ReferenceProfile.from_table(train, source="train")
        predictions = ReferenceProfile.from_table(
            {"prediction": rng.uniform(0, 100, 200_000)}, source="train"
        )
        (folder / "inputs.profile").write_bytes(inputs.to_bytes())
        (folder / "predictions.profile").write_bytes(predictions.to_bytes())
        requests = args.rows // args.rows_per_request
        step = max(1, round(1 / args.feedback)) if args.feedback else 0
        store = FeedbackStore(db)
        chunk: list[FeedbackItem] = []
        given = 0
        for i in range(0, requests, step) if step else ():
            chunk.append(FeedbackItem(f"r{i}", 0, value=float(rng.uniform(0, 100))))
            if len(chunk) == 10_000:
                store.record(DEPLOYMENT, chunk, [None] * len(chunk))
                given += len(chunk)
                chunk = []
        if chunk:
            store.record(DEPLOYMENT, chunk, [None] * len(chunk))
            given += len(chunk)
    finally:
        db.dispose()
    log_bytes = sum(p.stat().st_size for p in (folder / "artifacts").rglob("*") if p.is_file())
    return {"generate_s": round(generated, 1), "files": len(files),
            "log_mb": round(log_bytes / 1e6, 1), "feedback_items": given}  # fmt: skip


def evaluate(folder: Path, memory_limit: str, threads: int) -> dict[str, Any]:
    """Runs in its own process: profiles loaded, then one window evaluated."""
    import duckdb  # noqa: F401  (imported before the baseline, as a monitor has it)
    import pyarrow  # noqa: F401
    import scipy.special  # noqa: F401

    from modelyard.artifacts.blobs import open_blob_store
    from modelyard.artifacts.repository import ArtifactRepository
    from modelyard.monitoring.log_windows import evaluate_window
    from modelyard.monitoring.profiles import ReferenceProfile
    from modelyard.store.engine import open_database

    db = open_database(f"sqlite:///{folder / 'meta.db'}")
    artifacts = ArtifactRepository(db, open_blob_store(str(folder / "artifacts")))
    inputs = ReferenceProfile.from_bytes((folder / "inputs.profile").read_bytes())
    predictions = ReferenceProfile.from_bytes((folder / "predictions.profile").read_bytes())
    release_memory()
    meter = PeakRss()
    baseline = meter.rss()
    cpu = time.process_time()
    started = time.perf_counter()
    with meter:
        result = evaluate_window(
            artifacts, db, DEPLOYMENT, START_MS, START_MS + 24 * HOUR_MS,
            reference=inputs, prediction_reference=predictions, slices=["region"],
            metrics=["mae", "rmse", "bias"], memory_limit=memory_limit, threads=threads,
        )  # fmt: skip
    seconds = time.perf_counter() - started
    db.dispose()
    top = result.input_drift
    drifted = sorted(n for n, c in top.columns.items() if c.drifted) if top else None
    return {
        "seconds": round(seconds, 1),
        "cpu_s": round(time.process_time() - cpu, 1),
        "baseline_mb": round(baseline / 1e6),
        "beyond_reference_mb": round((meter.peak - baseline) / 1e6),
        "ru_maxrss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1e3),
        "rows": result.rows,
        "feedback_rows": result.feedback_rows,
        "groups": len(result.drift),
        "observations": len(result.observations),
        "drifted_inputs_blue": drifted,
        "notes": result.notes,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=10_000_000, help="logged data rows")
    parser.add_argument("--rows-per-request", type=int, default=1)
    parser.add_argument(
        "--file-rows", type=int, default=50_000, help="rows per Parquet file (the writer's most)"
    )
    parser.add_argument(
        "--feedback", type=float, default=0.02, help="share of requests with feedback (on row 0)"
    )
    parser.add_argument("--memory-limit", default="256MB", help="DuckDB's memory_limit")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--quick", action="store_true", help="200,000 rows")
    parser.add_argument(
        "--keep", type=Path, help="write the log into this folder and keep it (reused if there)"
    )
    parser.add_argument("--evaluate", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.evaluate:
        print(json.dumps(evaluate(args.evaluate, args.memory_limit, args.threads)))
        return
    if args.quick:
        args.rows = 200_000
    with tempfile.TemporaryDirectory(prefix="modelyard-bench-window-") as tmp:
        folder = args.keep or Path(tmp)
        if (folder / "inputs.profile").exists():
            prepared = {"reused": str(folder)}
        else:
            folder.mkdir(parents=True, exist_ok=True)
            prepared = prepare(folder, args)
        print(f"log: {args.rows:,} rows × {len(FEATURES)} inputs + region, "
              f"{args.rows_per_request} row(s) a request: {prepared}", flush=True)  # fmt: skip
        out = subprocess.run(
            [sys.executable, __file__, "--evaluate", str(folder), "--memory-limit",
             args.memory_limit, "--threads", str(args.threads)],
            capture_output=True, text=True,
        )  # fmt: skip
        if out.returncode:
            sys.exit(f"the evaluation failed:\n{out.stderr}")
        print(json.dumps(json.loads(out.stdout.strip().splitlines()[-1]), indent=2))


if __name__ == "__main__":
    main()
