"""Run search at 100,000 and 1,000,000 runs, on SQLite and PostgreSQL (issue 20, item 1:
≤ 20 ms server time at 100k runs, ≤ 50 ms at 1M, first page and a deep page).

The yard is shaped like a busy team's year: every run has 4 params, 3 tags and 2 latest
metrics; 90 % FINISHED, 5 % FAILED, 5 % RUNNING; 2 % deleted. ``--runs N`` runs sit in
experiment 1 and 9 more experiments hold 1,000 runs each, so "across experiments" searches
all ten. Rows are written in bulk into the real tables after ``ensure_schema`` (SQLite: one
transaction; PostgreSQL: COPY; secondary indexes built after), then statistics are
refreshed as the product does after a migration
(``modelyard.store.statistics.refresh_statistics``). MLflow's own SQL store
(``SqlAlchemyStore``, what ``mlflow server`` runs), loaded with the same runs, answers the
same searches beside ours up to ``--peer-max`` runs (its deep page is its own offset token).

Each search runs through ``SqlTrackingStore.search_runs`` (what the server's
``runs/search`` handler calls: the query and loading the page's 100 runs with their params,
metrics and tags) ``--repeat`` times on a warm connection; the median and 95th percentile
are printed with the matches on the page. The deep page is the page after the first
``depth`` matches (half of them, at most 500,000), reached with the page token a client
walking the pages would hold there. ``--explain`` prints each query's plan (``EXPLAIN
ANALYZE`` on PostgreSQL, ``EXPLAIN QUERY PLAN`` on SQLite).

    python benchmarks/search_runs.py                      # 100k and 1M, both databases
    python benchmarks/search_runs.py --runs 100000 --postgres none --explain
"""

from __future__ import annotations

import argparse
import base64
import json
import statistics
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
from databases import bulk_insert, p95, postgres_database, timed  # benchmarks/databases.py

from modelyard.store.engine import Database, open_database
from modelyard.store.migrations import ensure_schema
from modelyard.tracking.sql_store import SqlTrackingStore

SMALL_EXPERIMENTS, SMALL_EXPERIMENT_RUNS = 9, 1_000
MODELS = ("lgbm", "xgb", "linear")
TEAMS = ("search", "ads", "pricing", "supply", "growth")

#: (name, experiments: "one" or "all", filter, order_by)
SEARCHES: list[tuple[str, str, str | None, list[str]]] = [
    ("no filter", "one", None, []),
    ("no filter, across experiments", "all", None, []),
    ("status = FINISHED (90 %)", "one", "attributes.status = 'FINISHED'", []),
    ("run_name = one run", "one", "attributes.run_name = 'run-424242'", []),
    ("params.model = xgb (33 %)", "one", "params.model = 'xgb'", []),
    ("params.lr = 0.0042 (1 %)", "one", "params.lr = '0.0042'", []),
    ("params.seed = one run", "one", "params.seed = '424242'", []),
    ("params.seed = one run, across", "all", "params.seed = '424242'", []),
    ("tags.team = search (20 %)", "one", "tags.team = 'search'", []),
    ("tags.stage = prod (0.1 %)", "one", "tags.stage = 'prod'", []),
    ("metrics.rmse < 0.5 (50 %)", "one", "metrics.rmse < 0.5", []),
    ("metrics.rmse < 0.001 (0.1 %)", "one", "metrics.rmse < 0.001", []),
    ("model = xgb and rmse < 0.1", "one", "params.model = 'xgb' and metrics.rmse < 0.1", []),
    ("order by metrics.rmse", "one", None, ["metrics.rmse ASC"]),
    ("team = ads, order by rmse", "one", "tags.team = 'ads'", ["metrics.rmse ASC"]),
    ("order by start_time ASC", "one", None, ["attributes.start_time ASC"]),
]


def rows(n: int, seed: int) -> dict[str, Iterator[tuple[Any, ...]]]:
    """Every table's rows for ``n`` runs in experiment 1 and the small experiments'."""
    rng = np.random.default_rng(seed)
    total = n + SMALL_EXPERIMENTS * SMALL_EXPERIMENT_RUNS
    run_ids = [f"{x:032x}" for x in rng.integers(0, 2**62, total, dtype=np.int64)]
    experiment = np.ones(total, dtype=np.int64)
    experiment[n:] = 2 + (np.arange(total - n) // SMALL_EXPERIMENT_RUNS)
    start = 1_700_000_000_000 + np.arange(total) * 1_000 + rng.integers(0, 1_000, total)
    status = rng.choice(["FINISHED", "FAILED", "RUNNING"], total, p=[0.9, 0.05, 0.05])
    deleted = rng.random(total) < 0.02
    model = rng.integers(0, 3, total)
    lr = rng.integers(0, 100, total)
    team = rng.integers(0, 5, total)
    prod = rng.random(total) < 0.001
    rmse = rng.random(total)
    accuracy = rng.random(total)

    def runs() -> Iterator[tuple[Any, ...]]:
        for i in range(total):
            e, rid, s = int(experiment[i]), run_ids[i], int(start[i])
            stage = "deleted" if deleted[i] else "active"
            yield (
                rid,
                e,
                f"run-{i}",
                f"user{i % 20}",
                status[i],
                s,
                s + 60_000,
                stage,
                f"mlflow-artifacts:/{e}/{rid}/artifacts",
                None,
                None,
            )

    def params() -> Iterator[tuple[Any, ...]]:
        for i in range(total):
            rid = run_ids[i]
            yield (rid, "batch", str(32 << (i % 4)))
            yield (rid, "lr", f"{lr[i] / 10_000:.4f}")
            yield (rid, "model", MODELS[model[i]])
            yield (rid, "seed", str(i))

    def tags() -> Iterator[tuple[Any, ...]]:
        for i in range(total):
            rid = run_ids[i]
            yield (rid, "mlflow.source.name", "train.py")
            yield (rid, "stage", "prod" if prod[i] else "dev")
            yield (rid, "team", TEAMS[team[i]])

    def metrics() -> Iterator[tuple[Any, ...]]:
        for i in range(total):
            rid, end = run_ids[i], int(start[i]) + 60_000
            yield (rid, "accuracy", 99, end, float(accuracy[i]), False)
            yield (rid, "rmse", 99, end, float(rmse[i]), False)

    return {
        "runs (run_id, experiment_id, run_name, user_id, status, start_time, end_time, "
        "lifecycle_stage, artifact_uri, parent_run_id, deleted_time)": runs(),
        "params (run_id, key, value)": params(),
        "tags (run_id, key, value)": tags(),
        "latest_metrics (run_id, key, step, timestamp, value, is_nan)": metrics(),
    }


def load(db: Database, n: int, seed: int) -> None:
    store = SqlTrackingStore(db)
    for e in range(1, 2 + SMALL_EXPERIMENTS):
        store.create_experiment(f"experiment-{e}")
    # Bulk-load practice: the secondary indexes are dropped first and built once at the end
    # (a hash index maintained row by row through a 4M-row COPY took longer than the rest).
    from modelyard.tracking import tables

    indexes = [
        i
        for table in (tables.runs, tables.params, tables.tags, tables.latest_metrics)
        for i in table.indexes
    ]
    with db.engine.begin() as conn:
        for index in indexes:
            index.drop(conn)
    bulk_insert(db.engine, rows(n, seed))
    with db.engine.begin() as conn:
        for index in indexes:
            index.create(conn)
    from modelyard.store.statistics import refresh_statistics

    refresh_statistics(db)
    if not db.is_sqlite:
        # What autovacuum does to a table that grew by inserts (PostgreSQL ≥ 13's
        # insert threshold) — here at once: it marks the pages all-visible, without which
        # every index-only scan of a freshly COPYed table also reads the heap.
        with db.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            for table in ("runs", "params", "tags", "latest_metrics"):
                conn.exec_driver_sql(f"VACUUM {table}")


def offset_token(offset: int) -> str:
    """The token a client holds after ``offset`` matches (the store accepts offsets)."""
    return base64.urlsafe_b64encode(json.dumps({"offset": offset}).encode()).decode()


def explain(db: Database, store: SqlTrackingStore, search: tuple[Any, ...]) -> str:
    """The plan of the search's SQL (not of loading the page's runs)."""
    captured: list[str] = []
    from sqlalchemy import event

    def grab(_conn: Any, _cursor: Any, statement: str, parameters: Any, *_: Any) -> None:
        if not captured and "FROM runs" in statement and "SELECT runs.run_id" in statement:
            captured.append((statement, parameters))  # type: ignore[arg-type]

    event.listen(db.engine, "before_cursor_execute", grab)
    try:
        store.search_runs(*search)
    finally:
        event.remove(db.engine, "before_cursor_execute", grab)
    if not captured:
        return "    (the SQLite fast path runs on a raw cursor; plan not captured)"
    statement, parameters = captured[0]  # type: ignore[misc]
    prefix = "EXPLAIN QUERY PLAN " if db.is_sqlite else "EXPLAIN (ANALYZE, BUFFERS) "
    raw = db.engine.raw_connection()
    try:
        cur = raw.cursor()
        cur.execute(prefix + statement, parameters)
        lines = [" ".join(str(c) for c in row) for row in cur.fetchall()]
    finally:
        raw.close()
    return "\n".join("    " + line for line in lines)


def bench(
    uri: str,
    label: str,
    n: int,
    repeat: int,
    seed: int,
    show_plans: bool,
    peer_uri: str | None,
    only: str | None = None,
    reuse: bool = False,
) -> None:
    db = open_database(uri)
    try:
        ensure_schema(db)
        t0 = time.perf_counter()
        if reuse and _loaded(db) == n + SMALL_EXPERIMENTS * SMALL_EXPERIMENT_RUNS:
            print(f"{label}: reusing the {n:,} runs already in {uri}", flush=True)
        else:
            load(db, n, seed)
            print(
                f"{label}: {n:,} runs (+{SMALL_EXPERIMENTS * SMALL_EXPERIMENT_RUNS:,} in 9 "
                f"more experiments) loaded in {time.perf_counter() - t0:.1f} s",
                flush=True,
            )
        store = SqlTrackingStore(db)
        mlflow = _mlflow_store(peer_uri, n, seed) if peer_uri else None
        every = [str(e) for e in range(1, 2 + SMALL_EXPERIMENTS)]
        for name, scope, filter_string, order_by in SEARCHES:
            if only and only not in name:
                continue
            experiments = ["1"] if scope == "one" else every
            first = (experiments, filter_string, "ACTIVE_ONLY", 100, order_by)
            matches = _matches(store, first)
            depth = min(500_000, matches // 2) if matches > 200 else 0

            def ours(token: str | None, first: tuple[Any, ...] = first) -> Any:
                return store.search_runs(*first, page_token=token)

            deep_token = _deep_token(store, first, depth) if depth else None
            print(_timings(f"{label} ours", n, name, ours, deep_token, depth, repeat), flush=True)
            if mlflow is not None:
                from mlflow.entities import ViewType
                from mlflow.utils.search_utils import SearchUtils

                def theirs(token: str | None, first: tuple[Any, ...] = first) -> Any:
                    return mlflow.search_runs(
                        first[0], first[1], ViewType.ACTIVE_ONLY, 100, first[4], token
                    )

                token = SearchUtils.create_page_token(depth) if depth else None
                print(
                    _timings(f"{label} MLflow", n, name, theirs, token, depth, repeat), flush=True
                )
            if show_plans:
                print(explain(db, store, first), flush=True)
    finally:
        db.dispose()


def _loaded(db: Database) -> int:
    """How many runs the store holds (a reused database must hold the benchmark's)."""
    from sqlalchemy import func, select

    from modelyard.tracking import tables

    with db.read() as conn:
        return int(conn.execute(select(func.count()).select_from(tables.runs)).scalar_one())


def _deep_token(store: SqlTrackingStore, first: tuple[Any, ...], depth: int) -> str | None:
    """The token a client paging from the start holds after ``depth - 100`` matches.

    A seekable order gets it from the store (an offset token of an earlier version still
    pages, and the next token it returns seeks); a metric order's position is read from
    the run at that depth, as its seek token would hold it."""
    from sqlalchemy import and_, select

    from modelyard.tracking import tables
    from modelyard.tracking.search_filter import parse_filter, parse_order_by
    from modelyard.tracking.search_plan import RunSearch
    from modelyard.tracking.search_query import run_search_statement

    experiments, filter_string, view_type, limit, order_by = first
    search = RunSearch([int(e) for e in experiments], filter_string, view_type, order_by, limit)
    if search.metric is None:
        return store.search_runs(*first, page_token=offset_token(depth - 100)).next_page_token
    found = run_search_statement(
        search.experiment_pks,
        parse_filter(filter_string),
        view_type,
        parse_order_by(order_by),
        depth - 101,
        1,
    )
    r, m = tables.runs.c, tables.latest_metrics.c
    with store.db.read() as conn:
        run_id = conn.execute(found).scalar_one()
        joined = tables.runs.outerjoin(
            tables.latest_metrics, and_(m.run_id == r.run_id, m.key == search.metric.key)
        )
        row = conn.execute(
            select(r.start_time, m.value, m.is_nan).select_from(joined).where(r.run_id == run_id)
        ).one()
    part = 2 if row.value is None else 1 if row.is_nan else 0
    return search.next_token((part, row.value if part == 0 else None, row.start_time, run_id))


def _timings(
    label: str, n: int, name: str, search: Any, deep_token: str | None, depth: int, repeat: int
) -> str:
    walls, cpus, _ = timed(lambda: search(None), repeat)
    line = (
        f"  {label:<17} {n:>9,}  {name:<32} first {statistics.median(walls):8.2f} ms "
        f"p95 {p95(walls):8.2f}  cpu {statistics.median(cpus):7.2f}"
    )
    if deep_token:
        walls, cpus, _ = timed(lambda: search(deep_token), repeat)
        line += (
            f"   deep@{depth:,} {statistics.median(walls):8.2f} ms "
            f"p95 {p95(walls):8.2f}  cpu {statistics.median(cpus):7.2f}"
        )
    return line


def _mlflow_store(uri: str, n: int, seed: int) -> Any:
    """MLflow's own SQL store (what ``mlflow server`` runs) holding the same runs, loaded
    in bulk into its tables after its own migrations, as ours are."""
    from mlflow.store.tracking.sqlalchemy_store import SqlAlchemyStore

    t0 = time.perf_counter()
    store = SqlAlchemyStore(uri, tempfile.mkdtemp(prefix="mlflow-artifacts-"))
    for e in range(1, 2 + SMALL_EXPERIMENTS):
        store.create_experiment(f"experiment-{e}")
    shaped = {
        "runs (run_uuid, experiment_id, name, user_id, status, start_time, end_time, "
        "lifecycle_stage, artifact_uri, source_type, source_name, entry_point_name, "
        "source_version)": lambda r: (*r[:9], "LOCAL", "", "", ""),
        "params (run_uuid, key, value)": lambda r: r,
        "tags (run_uuid, key, value)": lambda r: r,
        "latest_metrics (run_uuid, key, step, timestamp, value, is_nan)": lambda r: r,
    }
    shaped_rows = {
        target: map(shape, table_rows)
        for (target, shape), table_rows in zip(shaped.items(), rows(n, seed).values(), strict=True)
    }
    bulk_insert(store.engine, shaped_rows)
    with store.engine.connect() as conn:
        conn.exec_driver_sql("ANALYZE")
        conn.commit()
    print(f"  MLflow {mlflow_version()}: the same runs loaded in {time.perf_counter() - t0:.1f} s")
    return store


def mlflow_version() -> str:
    import mlflow

    return mlflow.__version__


def _matches(store: SqlTrackingStore, search: tuple[Any, ...]) -> int:
    """How many runs match (counted once per search, outside the timing)."""
    experiments, filter_string, view_type = search[:3]
    from sqlalchemy import func, select

    from modelyard.tracking.search_filter import parse_filter
    from modelyard.tracking.search_query import run_search_statement
    from modelyard.tracking.sql_experiments import experiment_pk

    stmt = run_search_statement(
        [experiment_pk(e) for e in experiments],
        parse_filter(filter_string),
        view_type,
        [],
        0,
        None,
    )
    with store.db.read() as conn:
        return int(conn.execute(select(func.count()).select_from(stmt.subquery())).scalar_one())


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", default="100000,1000000", help="comma-separated sizes")
    parser.add_argument("--repeat", type=int, default=20)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--postgres", default="auto", help="'auto', 'none' or a URI")
    parser.add_argument("--sqlite", default="yes", choices=("yes", "no"))
    parser.add_argument("--explain", action="store_true")
    parser.add_argument("--only", help="run only the searches whose name contains this")
    parser.add_argument(
        "--reuse",
        action="store_true",
        help="with --postgres URI: search the runs a previous run loaded there (kept)",
    )
    parser.add_argument(
        "--peer-max",
        type=int,
        default=100_000,
        help="also load and search MLflow's SqlAlchemyStore up to this many runs",
    )
    args = parser.parse_args(argv)
    mine = (args.only, args.reuse)
    for n in (int(s) for s in args.runs.split(",")):
        peer = n <= args.peer_max
        if args.sqlite == "yes":
            with tempfile.TemporaryDirectory() as tmp:
                uri = f"sqlite:///{Path(tmp) / 'search.db'}"
                peer_uri = f"sqlite:///{Path(tmp) / 'mlflow.db'}" if peer else None
                bench(uri, "SQLite", n, args.repeat, args.seed, args.explain, peer_uri, args.only)
        if args.postgres != "none":
            with postgres_database(args.postgres) as uri:
                if uri is None:
                    continue
                if not peer:
                    bench(uri, "PostgreSQL", n, args.repeat, args.seed, args.explain, None, *mine)
                    continue
                with postgres_database("auto") as peer_uri:
                    bench(
                        uri, "PostgreSQL", n, args.repeat, args.seed, args.explain, peer_uri, *mine
                    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
