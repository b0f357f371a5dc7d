"""Tracking throughput, search latency, first use and memory: modelyard vs MLflow.

Both run the same workloads on a local SQLite store, in one invocation, on this machine,
each in its own fresh process (so peak memory and first-use figures are not shared):

1. one run × 20 params × 10 metrics × 1,000 steps — logged per call (every call durable
   when it returns), per call in modelyard's asynchronous mode, and batched (1,000 points
   a batch, MLflow's limit; the batched run is repeated and the median taken);
2. 2,000 runs × 5 params × 5 metrics, then a filtered ``search_runs``;
3. first use (database creation and migrations), ``import`` and ``modelyard --help``.

    python benchmarks/tracking.py            # full size
    python benchmarks/tracking.py --quick    # a smaller smoke run
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

FILTER = "metrics.rmse < 0.5 and params.model = 'gbm'"


def _timed(fn) -> float:  # type: ignore[no-untyped-def]
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def batched_rate(
    new_run: Callable[[], str],
    log_batch: Callable[[str, list[Any]], None],
    points: list[Any],
    repeats: int,
) -> float:
    """The batched workload (1,000 points a call) into a fresh run, ``repeats`` times; the
    median rate, so that one WAL checkpoint or a neighbour's burst does not decide it."""
    rates = []
    for _ in range(repeats):
        run_id = new_run()

        def batched(run_id: str = run_id) -> None:
            for start in range(0, len(points), 1000):
                log_batch(run_id, points[start : start + 1000])

        rates.append(len(points) / _timed(batched))
    return statistics.median(rates)


# --------------------------------------------------------------------------- workers
def run_modelyard(home: Path, sizes: dict[str, int]) -> dict[str, float]:
    from modelyard.config import Settings
    from modelyard.tracking.client import TrackingClient
    from modelyard.tracking.entities import Metric, Param

    out: dict[str, float] = {}
    t0 = time.perf_counter()
    client = TrackingClient.from_settings(Settings(home=home))
    experiment = client.create_experiment("bench")
    out["first_use_s"] = time.perf_counter() - t0

    run_id = client.create_run(experiment).info.run_id
    client.log_batch(run_id, params=[Param(f"p{i}", str(i)) for i in range(20)])
    n = sizes["per_call_points"]
    keys = [f"m{i}" for i in range(10)]
    elapsed = _timed(
        lambda: [client.log_metric(run_id, keys[i % 10], i * 0.1, step=i // 10) for i in range(n)]
    )
    out["per_call_points_per_s"] = n / elapsed

    run_id = client.create_run(experiment).info.run_id
    n_async = sizes["async_points"]

    def log_async() -> None:
        for i in range(n_async):
            client.log_metric(run_id, keys[i % 10], i * 0.1, step=i // 10, synchronous=False)

    out["async_call_points_per_s"] = n_async / _timed(log_async)
    out["async_flushed_points_per_s"] = n_async / (
        _timed(log_async) + _timed(lambda: client.flush())
    )

    points = [Metric(k, s * 0.1, 1_700_000_000_000 + s, s) for s in range(1000) for k in keys]
    out["batch_points_per_s"] = batched_rate(
        lambda: client.create_run(experiment).info.run_id,
        lambda run_id, chunk: client.log_batch(run_id, metrics=chunk),
        points,
        sizes["batch_repeats"],
    )
    run_id = client.create_run(experiment).info.run_id
    big = [Metric(k, s * 0.1, 1_700_000_000_000 + s, s) for s in range(10_000) for k in keys]
    out["big_batch_points_per_s"] = len(big) / _timed(lambda: client.log_batch(run_id, metrics=big))

    search_exp = client.create_experiment("search")
    models = ("gbm", "ridge", "rf", "lasso")

    def create_runs() -> None:
        for i in range(sizes["runs"]):
            rid = client.create_run(search_exp, record_system_tags=False).info.run_id
            client.log_batch(
                rid,
                metrics=[
                    Metric(n, ((i * 7919 + j) % 1000) / 1000, 1, 0)
                    for j, n in enumerate(("rmse", "mae", "r2", "mape", "loss"))
                ],
                params=[Param("model", models[i % 4])]
                + [Param(f"p{j}", str(i % (j + 3))) for j in range(4)],
            )

    out["create_runs_s"] = _timed(create_runs)
    client.search_runs([search_exp], FILTER, max_results=1000)  # warm
    samples = [
        _timed(lambda: client.search_runs([search_exp], FILTER, max_results=1000))
        for _ in range(sizes["search_repeats"])
    ]
    out["search_s"] = statistics.median(samples)
    out["search_hits"] = len(client.search_runs([search_exp], FILTER, max_results=1000))
    return out


def run_mlflow(home: Path, sizes: dict[str, int]) -> dict[str, float]:
    import mlflow  # noqa: F401
    from mlflow.entities import Metric, Param
    from mlflow.tracking import MlflowClient

    out: dict[str, float] = {}
    home.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    client = MlflowClient(tracking_uri=f"sqlite:///{home / 'mlflow.db'}")
    experiment = client.create_experiment("bench", artifact_location=str(home / "artifacts"))
    out["first_use_s"] = time.perf_counter() - t0

    run_id = client.create_run(experiment).info.run_id
    client.log_batch(run_id, params=[Param(f"p{i}", str(i)) for i in range(20)])
    n = sizes["mlflow_per_call_points"]
    keys = [f"m{i}" for i in range(10)]
    elapsed = _timed(
        lambda: [client.log_metric(run_id, keys[i % 10], i * 0.1, step=i // 10) for i in range(n)]
    )
    out["per_call_points_per_s"] = n / elapsed

    points = [Metric(k, s * 0.1, 1_700_000_000_000 + s, s) for s in range(1000) for k in keys]
    out["batch_points_per_s"] = batched_rate(
        lambda: client.create_run(experiment).info.run_id,
        lambda run_id, chunk: client.log_batch(run_id, metrics=chunk),
        points,
        sizes["batch_repeats"],
    )

    search_exp = client.create_experiment("search", artifact_location=str(home / "a2"))
    models = ("gbm", "ridge", "rf", "lasso")

    def create_runs() -> None:
        for i in range(sizes["runs"]):
            rid = client.create_run(search_exp).info.run_id
            client.log_batch(
                rid,
                metrics=[
                    Metric(n, ((i * 7919 + j) % 1000) / 1000, 1, 0)
                    for j, n in enumerate(("rmse", "mae", "r2", "mape", "loss"))
                ],
                params=[Param("model", models[i % 4])]
                + [Param(f"p{j}", str(i % (j + 3))) for j in range(4)],
            )

    out["create_runs_s"] = _timed(create_runs)
    client.search_runs([search_exp], FILTER, max_results=1000)
    samples = [
        _timed(lambda: client.search_runs([search_exp], FILTER, max_results=1000))
        for _ in range(sizes["search_repeats"])
    ]
    out["search_s"] = statistics.median(samples)
    out["search_hits"] = len(client.search_runs([search_exp], FILTER, max_results=1000))
    return out


# --------------------------------------------------------------------------- driver
def startup_costs(repeats: int = 7) -> dict[str, float]:
    def best(cmd: list[str]) -> float:
        times = []
        for _ in range(repeats):
            start = time.perf_counter()
            subprocess.run(cmd, check=True, capture_output=True)
            times.append(time.perf_counter() - start)
        return min(times)

    python = sys.executable
    cli = str(Path(python).with_name("modelyard"))
    return {
        "python_startup_s": best([python, "-c", "pass"]),
        "import_modelyard_s": best([python, "-c", "import modelyard"]),
        "import_mlflow_s": best([python, "-c", "import mlflow"]),
        "cli_help_s": best([cli, "--help"]),
    }


def worker(system: str, home: Path, sizes: dict[str, int]) -> None:
    result = (run_modelyard if system == "modelyard" else run_mlflow)(home, sizes)
    result["peak_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps(result))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="smaller sizes, for a smoke run")
    parser.add_argument("--worker", choices=["modelyard", "mlflow"], help=argparse.SUPPRESS)
    parser.add_argument("--home", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--json", type=Path, help="also write the figures to this file")
    args = parser.parse_args()
    sizes = {
        "per_call_points": 3_000 if args.quick else 20_000,
        "mlflow_per_call_points": 300 if args.quick else 2_000,
        "async_points": 20_000 if args.quick else 200_000,
        "runs": 200 if args.quick else 2_000,
        "search_repeats": 5 if args.quick else 15,
        "batch_repeats": 3 if args.quick else 7,
    }
    if args.worker:
        worker(args.worker, args.home, sizes)
        return

    work = Path(tempfile.mkdtemp(prefix="modelyard-bench-"))
    results: dict[str, dict[str, float]] = {}
    try:
        for system in ("modelyard", "mlflow"):
            env = {**os.environ, "MLFLOW_ENABLE_ASYNC_LOGGING": "false"}
            proc = subprocess.run(
                [sys.executable, __file__, "--worker", system, "--home", str(work / system)]
                + (["--quick"] if args.quick else []),
                capture_output=True,
                text=True,
                env=env,
                check=False,
            )
            if proc.returncode != 0:
                sys.exit(f"{system} worker failed:\n{proc.stderr}")
            results[system] = json.loads(proc.stdout.strip().splitlines()[-1])
    finally:
        shutil.rmtree(work, ignore_errors=True)
    results["startup"] = startup_costs()
    report(results)
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))


def report(r: dict[str, dict[str, float]]) -> None:
    my, ml, st = r["modelyard"], r["mlflow"], r["startup"]
    rows = [
        (
            "per-call log_metric (points/s, durable)",
            my["per_call_points_per_s"],
            ml["per_call_points_per_s"],
            "higher",
        ),
        (
            "per-call log_metric, async (points/s)",
            my["async_call_points_per_s"],
            ml["per_call_points_per_s"],
            "higher",
        ),
        (
            "  async incl. final flush (points/s)",
            my["async_flushed_points_per_s"],
            ml["per_call_points_per_s"],
            "higher",
        ),
        (
            "log_batch, 1,000 a batch (points/s)",
            my["batch_points_per_s"],
            ml["batch_points_per_s"],
            "higher",
        ),
        (
            "log_batch, one 100k batch (points/s)",
            my["big_batch_points_per_s"],
            ml["batch_points_per_s"],
            "higher",
        ),
        (
            "create 2,000 runs × 5 params × 5 metrics (s)",
            my["create_runs_s"],
            ml["create_runs_s"],
            "lower",
        ),
        (
            f"filtered search_runs (ms, {int(my['search_hits'])} hits)",
            my["search_s"] * 1000,
            ml["search_s"] * 1000,
            "lower",
        ),
        ("first use: create DB + migrate (s)", my["first_use_s"], ml["first_use_s"], "lower"),
        ("peak memory of the worker (MB)", my["peak_rss_mb"], ml["peak_rss_mb"], "lower"),
        ("import (s)", st["import_modelyard_s"], st["import_mlflow_s"], "lower"),
    ]
    print(f"{'workload':48} {'modelyard':>12} {'mlflow':>12} {'ratio':>9}")
    for name, mine, theirs, better in rows:
        ratio = mine / theirs if better == "higher" else theirs / mine
        print(f"{name:48} {mine:12.4g} {theirs:12.4g} {ratio:8.1f}×")
    print(f"{'modelyard --help (s)':48} {st['cli_help_s']:12.3f}")
    print(f"{'python -c pass (s)':48} {st['python_startup_s']:12.3f}")
    assert my["search_hits"] == ml["search_hits"], "the two searches disagree"


if __name__ == "__main__":
    main()
