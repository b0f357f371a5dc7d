"""Lineage questions on a 1M-edge graph: upstream of one prediction, downstream of one
dataset version, on SQLite and PostgreSQL (issue 14, item 4: each ≤ 50 ms).

The graph is shaped like a busy yard's (edges point the way data flows):

    dataset --source--> feature_view --input--> training_set --input--> run
    dataset --input--> run --produced--> model --serves--> deployment_revision
    deployment_revision --revision_of--> deployment --monitors--> monitor
    run --step--> step --output--> artifact (pipelines) … to 1,000,000 edges

20,000 dataset versions, 20,000 feature views (1-3 sources each), 60,000 training sets (3
views each), 100,000 runs (a training set and a dataset each), 100,000 model versions,
100,000 deployment revisions over 1,000 deployments, the rest pipeline steps and
artifacts. Rows are written in bulk (SQLite: one transaction; PostgreSQL: COPY), then
``ANALYZE``. The timed questions are what ``modelyard lineage`` runs:

* **upstream of one prediction**: the walk from the revision and model version a
  prediction's log row names back to the datasets (``graph.walk``), then the nodes
  described (``nodes.describe``); plus, separately, finding the request id in a
  prediction log of ``--log-rows`` predictions (DuckDB over the Parquet files);
* **downstream of one dataset version**: the impact walk and description.

Each is run ``--repeat`` times on a warm connection for a random start each time; the
median and the 95th percentile are printed, with the size of the answers.

    python benchmarks/lineage.py                        # SQLite and PostgreSQL (127.0.0.1)
    python benchmarks/lineage.py --edges 200000 --repeat 50
    python benchmarks/lineage.py --postgres none        # SQLite only
"""

from __future__ import annotations

import argparse
import random
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

from databases import bulk_insert, p95, postgres_database, timed  # benchmarks/databases.py

from modelyard.lineage.graph import DOWNSTREAM, UPSTREAM, walk
from modelyard.lineage.nodes import describe
from modelyard.store.engine import Database, open_database
from modelyard.store.migrations import ensure_schema
from modelyard.store.schema import lineage_edges
from modelyard.store.statistics import refresh_statistics

DATASETS, VIEWS, SETS, RUNS, DEPLOYMENTS = 20_000, 20_000, 60_000, 100_000, 1_000


def graph(total: int, seed: int = 0) -> Iterator[tuple[str, str, str]]:
    """``total`` distinct edges (fewer runs and views when ``total`` is under 1M)."""
    rng = random.Random(seed)
    datasets = [f"dataset:ds{i}@{rng.getrandbits(128):032x}" for i in range(DATASETS)]
    scale = min(1.0, total / 1_000_000)
    views, sets, runs = int(VIEWS * scale), int(SETS * scale), int(RUNS * scale)
    made = 0
    for v in range(views):
        for d in rng.sample(datasets, rng.randint(1, 3)):
            made += 1
            yield d, f"feature_view:fv{v}@1", "source"
    for t in range(sets):
        for v in rng.sample(range(views), 3):
            made += 1
            yield f"feature_view:fv{v}@1", f"training_set:ts{t}", "input"
    for r in range(runs):
        run = f"run:{r:032x}"
        model = f"model:m{r % 5000}/{r // 5000 + 1}"
        deployment = f"d{rng.randrange(DEPLOYMENTS)}"
        revision = f"deployment_revision:{deployment}/{r + 1}"
        made += 5
        yield f"training_set:ts{rng.randrange(sets)}", run, "input"
        yield rng.choice(datasets), run, "input"
        yield run, model, "produced"
        yield model, revision, "serves"
        yield revision, f"deployment:{deployment}", "revision_of"
    for d in range(DEPLOYMENTS):
        made += 1
        yield f"deployment:d{d}", f"monitor:d{d}-drift", "monitors"
    step = 0
    while made + 3 <= total:  # pipeline runs of 5 steps: run -> step -> artifact -> step
        run = f"run:{rng.randrange(runs):032x}"
        for _ in range(5):
            s = f"step:{step:032x}"
            made += 2
            yield run, s, "step"
            yield s, f"artifact:pipelines/{step}/out.parquet", "output"
            if step % 5:
                made += 1
                yield f"artifact:pipelines/{step - 1}/out.parquet", s, "input"
            step += 1


def load(db: Database, edges: Iterator[tuple[str, str, str]]) -> int:
    """The edges in bulk (``databases.bulk_insert``: one transaction on SQLite, COPY on
    PostgreSQL), streamed as they are made, then the planner's statistics as a migration
    leaves them (``refresh_statistics``)."""
    loaded = 0

    def rows() -> Iterator[tuple[str, str, str, int]]:
        nonlocal loaded
        for src, dst, relation in edges:  # distinct by construction
            loaded += 1
            yield src, dst, relation, 0

    columns = ", ".join(column.name for column in lineage_edges.columns)
    bulk_insert(db.engine, {f"{lineage_edges.name} ({columns})": rows()})
    refresh_statistics(db, [lineage_edges.name])
    return loaded


def summary(name: str, times: list[float], cpus: list[float], sizes: list[int]) -> str:
    return (
        f"  {name:<34} median {statistics.median(times):7.2f} ms   p95 {p95(times):7.2f} ms   "
        f"max {max(times):7.2f} ms   cpu median {statistics.median(cpus):6.2f} ms   "
        f"edges/answer {statistics.median(sizes):.0f} (max {max(sizes)})"
    )


def questions(db: Database, repeat: int, seed: int) -> list[str]:
    rng = random.Random(seed + 1)
    out = []
    with db.read() as conn:
        revisions = [
            r[0]
            for r in conn.exec_driver_sql(
                "SELECT src FROM lineage_edges WHERE relation = 'revision_of' LIMIT 20000"
            )
        ]
        rev_models = {
            r[1]: r[0][len("model:") :]
            for r in conn.exec_driver_sql(
                "SELECT src, dst FROM lineage_edges WHERE relation = 'serves' LIMIT 20000"
            )
        }
        revisions = list(rev_models)
        datasets = [
            r[0]
            for r in conn.exec_driver_sql(
                "SELECT src FROM lineage_edges WHERE relation = 'source' LIMIT 20000"
            )
        ]

        def prediction() -> int:
            rev = rng.choice(revisions)
            # the model version the log row names: the one the revision serves
            model = "model:" + rev_models[rev]
            answer = walk(conn, [rev, model], UPSTREAM)
            describe(conn, answer.nodes)
            return len(answer.edges) + 2

        def impact() -> int:
            answer = walk(conn, [rng.choice(datasets)], DOWNSTREAM)
            describe(conn, answer.nodes)
            return len(answer.edges)

        for name, fn in (
            ("upstream of one prediction", prediction),
            ("downstream of one dataset", impact),
        ):
            fn()  # warm: statement caches, pages
            times, cpus, sizes = timed(fn, repeat)
            out.append(summary(name, times, cpus, sizes))
    return out


def prediction_log(rows: int, repeat: int) -> str:
    """Finding one request id in a log of ``rows`` predictions (one deployment, files of
    50,000 rows as the writer makes them)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    from modelyard.artifacts.blobs import open_blob_store
    from modelyard.artifacts.repository import ArtifactRepository
    from modelyard.lineage.predictions import find_prediction
    from modelyard.serving.prediction_log import partition_path

    with tempfile.TemporaryDirectory(prefix="modelyard-bench-lineage-") as tmp:
        db = open_database(f"sqlite:///{tmp}/meta.db")
        ensure_schema(db)
        artifacts = ArtifactRepository(db, open_blob_store(f"{tmp}/artifacts"))
        ids = []
        start = 1_790_064_000_000
        per_file = 50_000
        prefixes = [uuid.uuid4().hex[:16] for _ in range(4)]
        counters = [1, 1, 1, 1]
        for f in range(0, rows, per_file):
            n = min(per_file, rows - f)
            # as the data plane names requests: a per-process prefix and a counter
            # (serving.runtime.new_request_id); each of four workers writes its own files
            writer = (f // per_file) % 4
            first = counters[writer]
            counters[writer] += n
            rid = [f"{prefixes[writer]}{c:08x}" for c in range(first, first + n)]
            ids += rid[:: max(1, n // 50)]
            table = pa.table(
                {
                    "request_id": rid,
                    "ts": pa.array(
                        [start + f * 10 + i * 10 for i in range(n)], pa.timestamp("ms", "UTC")
                    ),
                    "deployment": ["web"] * n,
                    "revision": pa.array([1] * n, pa.int32()),
                    "variant": ["primary"] * n,
                    "model": ["demand"] * n,
                    "version": pa.array([1] * n, pa.int32()),
                    "role": ["primary"] * n,
                    "status": ["ok"] * n,
                    "latency_ms": [1.0] * n,
                    "n_rows": pa.array([1] * n, pa.int32()),
                    "inputs": ['{"a": [1.0], "b": [2.0]}'] * n,
                    "outputs": ["[3.0]"] * n,
                }
            )
            path = Path(tmp) / f"part-{f}.parquet"
            pq.write_table(table, path, compression="zstd")
            hour = partition_path("web", start + f * 10)
            artifacts.log_file(f"{hour}/part-{f}.parquet", path)
        rng = random.Random(3)
        find_prediction(artifacts, db, ids[0])  # warm
        times, cpus, sizes = timed(
            lambda: len(find_prediction(artifacts, db, rng.choice(ids), deployment="web")), repeat
        )
        db.dispose()
    return summary(f"request id in a {rows:,}-row log", times, cpus, sizes)


def bench(uri: str, label: str, edges: int, repeat: int, seed: int) -> None:
    db = open_database(uri)
    try:
        ensure_schema(db)
        t0 = time.perf_counter()
        n = load(db, graph(edges, seed))
        print(f"{label}: {n:,} edges loaded in {time.perf_counter() - t0:.1f} s")
        for line in questions(db, repeat, seed):
            print(line)
    finally:
        db.dispose()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--edges", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=200)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--log-rows", type=int, default=1_000_000)
    parser.add_argument(
        "--postgres",
        default="auto",
        help="a database URI, 'auto' (a fresh one on 127.0.0.1), 'none'",
    )
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="modelyard-bench-lineage-") as tmp:
        bench(f"sqlite:///{tmp}/meta.db", "SQLite", args.edges, args.repeat, args.seed)
    if args.postgres != "none":
        with postgres_database(args.postgres) as uri:
            if uri is not None:
                bench(uri, "PostgreSQL", args.edges, args.repeat, args.seed)
    if args.log_rows:
        print("prediction log:")
        print(prediction_log(args.log_rows, max(10, args.repeat // 10)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
