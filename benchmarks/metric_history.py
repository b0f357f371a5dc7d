"""Large histories: a run with 10 million metric points, logged and read back through
``modelyard server``, and the same with ``mlflow server`` (SQLite both), side by side.

For each server and history length:

1. *log*: one client process logs the points of one metric through ``log-batch``, 1,000
   points a call (MLflow's limit), as a training loop would (raw HTTP: the mlflow
   client's own protobuf work would dominate the time);
2. *paged read*: a fresh client process reads the history back with the mlflow client's
   paged call (``RestStore.get_metric_history(run_id, key, max_results=25_000,
   page_token=…)``, what ``MlflowClient.get_metric_history`` loops over), keeping no
   page, and checks that every point came back once, in step order;
3. *chart read*: what the web UI asks for a chart — ours ``/api/v1/runs/{id}/
   metric-samples?max_points=1000``, MLflow's UI ``metrics/get-history-bulk-interval``
   with ``max_results=1000``.

Measured: wall time and CPU seconds (the machine is shared), the server's resident memory
(its whole process tree, sampled every 50 ms) before and at its peak during each phase,
and the reading client's peak RSS (``memory.PeakRss``). MLflow logs ~2,300 points/s
here, so it is measured at ``--mlflow-points`` (1M by default: 10M would take over an
hour) and ours at the same length beside it, then ours at ``--points``.

    python benchmarks/metric_history.py                  # 10M ours, 1M both
    python benchmarks/metric_history.py --quick          # 200k ours, 100k both
    python benchmarks/metric_history.py --servers modelyard --postgres --mlflow-points 1000000
"""

from __future__ import annotations

import argparse
import http.client
import json
import math
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).parent))

from databases import postgres_database
from servers import Server, client_env, cpu_spent, start_mlflow, start_modelyard

KEY = "loss"
BATCH = 1000
PAGE = 25_000  # the mlflow client's GET_METRIC_HISTORY_MAX_RESULTS
CHART_POINTS = 1000
T0 = 1_765_000_000_000


# ------------------------------------------------------------------ client processes
def client_log(url: str, run_id: str, points: int) -> dict[str, Any]:
    from server_clients import RawClient

    raw = RawClient(url)
    start = time.perf_counter()
    for first in range(0, points, BATCH):
        metrics = [
            {
                "key": KEY,
                "value": math.exp(-s / 2e6) + 0.01 * math.sin(s / 37.0),
                "timestamp": T0 + s,
                "step": s,
            }
            for s in range(first, min(points, first + BATCH))
        ]
        try:
            raw.post("/runs/log-batch", {"run_id": run_id, "metrics": metrics})
        except (http.client.RemoteDisconnected, ConnectionError):
            # mlflow server closes an idle keep-alive connection now and then (a loaded
            # machine stalls the client past its timeout): the batch was not taken, so it
            # is sent again on a new connection.
            raw = RawClient(url)
            raw.post("/runs/log-batch", {"run_id": run_id, "metrics": metrics})
    return {"seconds": time.perf_counter() - start}


def client_read(url: str, run_id: str, points: int) -> dict[str, Any]:
    """The mlflow client's paged call, each page dropped once checked."""
    from memory import PeakRss, release_memory
    from mlflow.tracking import MlflowClient

    store = MlflowClient(tracking_uri=url)._tracking_client.store
    store.get_metric_history(run_id, KEY, max_results=1)  # connection and imports warm
    release_memory()
    seen, pages, last_step, token = 0, 0, -1, None
    with PeakRss() as peak:
        before = peak.rss()
        start = time.perf_counter()
        while True:
            page = store.get_metric_history(run_id, KEY, max_results=PAGE, page_token=token)
            steps = [m.step for m in page]
            assert not steps or steps[0] > last_step, "pages overlap or go back"
            assert steps == sorted(steps), "a page out of step order"
            if steps:
                last_step = steps[-1]
            seen += len(steps)
            pages += 1
            token = page.token
            del page, steps
            if not token:
                break
        seconds = time.perf_counter() - start
    assert seen == points, f"read {seen:,} points of {points:,}"
    return {
        "seconds": seconds,
        "pages": pages,
        "client_rss_mb": before / 2**20,
        "client_peak_rss_mb": peak.peak / 2**20,
    }


def client_main(args: argparse.Namespace) -> None:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    if args.client == "log":
        result = client_log(args.url, args.run_id, args.n)
    else:
        result = client_read(args.url, args.run_id, args.n)
    after = resource.getrusage(resource.RUSAGE_SELF)
    result["client_cpu_s"] = (after.ru_utime - usage.ru_utime) + (after.ru_stime - usage.ru_stime)
    print(json.dumps(result))


# ------------------------------------------------------------------ the driver
class Sampler:
    """The server tree's RSS every 50 ms, the peak since ``reset``."""

    def __init__(self, server: Server) -> None:
        self.server, self.peak = server, 0.0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.wait(0.05):
            self.peak = max(self.peak, self.server.rss()[0])

    def reset(self) -> float:
        self.peak = self.server.rss()[0]
        return self.peak

    def stop(self) -> None:
        self._stop.set()
        self._thread.join()


def phase(server: Server, sampler: Sampler, work: Any) -> dict[str, Any]:
    """Run ``work()`` measuring the server: RSS before and peak, CPU seconds, wall time."""
    before_mb = sampler.reset()
    cpu = server.cpu()
    start = time.perf_counter()
    result = work()
    wall = time.perf_counter() - start
    return {
        **result,
        "wall_s": wall,
        "server_cpu_s": cpu_spent(cpu, server.cpu()),
        "server_rss_before_mb": before_mb,
        "server_peak_rss_mb": max(sampler.peak, server.rss()[0]),
    }


def run_client(kind: str, server: Server, run_id: str, n: int) -> dict[str, Any]:
    cmd = [sys.executable, __file__, "--client", kind, "--url", server.url]
    cmd += ["--run-id", run_id, "--n", str(n)]
    proc = subprocess.run(cmd, env=client_env(), capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        sys.exit(f"{kind} against {server.name} failed:\n{proc.stderr[-3000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def new_run(server: Server, label: str) -> str:
    import httpx

    api = f"{server.url}/api/2.0/mlflow"
    name = f"history-{label}-{time.time_ns()}"
    experiment = httpx.post(f"{api}/experiments/create", json={"name": name}).json()
    run = httpx.post(
        f"{api}/runs/create",
        json={"experiment_id": experiment["experiment_id"], "start_time": T0},
    ).json()
    return str(run["run"]["info"]["run_id"])


def chart_read(server: Server, run_id: str, ours: bool) -> dict[str, Any]:
    import httpx

    if ours:
        url = f"{server.url}/api/v1/runs/{run_id}/metric-samples"
        params: dict[str, Any] = {"key": KEY, "max_points": CHART_POINTS}
    else:
        url = f"{server.url}/ajax-api/2.0/mlflow/metrics/get-history-bulk-interval"
        params = {"run_ids": run_id, "metric_key": KEY, "max_results": CHART_POINTS}
    start = time.perf_counter()
    answer = httpx.get(url, params=params, timeout=3600)
    seconds = time.perf_counter() - start
    if answer.status_code != 200:
        return {"seconds": seconds, "error": f"{answer.status_code} {answer.text[:200]}"}
    body = answer.json()
    points = len(body["value"]) if ours else len(body.get("metrics", []))
    return {"seconds": seconds, "points": points}


def measure(server: Server, n: int, ours: bool) -> dict[str, Any]:
    sampler = Sampler(server)
    try:
        run_id = new_run(server, str(n))
        out = {"points": n}
        out["log"] = phase(server, sampler, lambda: run_client("log", server, run_id, n))
        print(f"  {server.name} {n:,}: logged in {out['log']['wall_s']:.0f} s", file=sys.stderr)
        out["read"] = phase(server, sampler, lambda: run_client("read", server, run_id, n))
        print(f"  {server.name} {n:,}: read in {out['read']['wall_s']:.0f} s", file=sys.stderr)
        out["chart"] = phase(server, sampler, lambda: chart_read(server, run_id, ours))
    finally:
        sampler.stop()
    return out


def report(results: dict[str, Any]) -> None:
    rows = [
        ("log: points/s", lambda r: r["points"] / r["log"]["wall_s"]),
        ("log: server CPU s per 1M points", lambda r: r["log"]["server_cpu_s"] * 1e6 / r["points"]),
        ("log: server peak RSS (MB)", lambda r: r["log"]["server_peak_rss_mb"]),
        ("paged read: points/s", lambda r: r["points"] / r["read"]["seconds"]),
        ("paged read: wall s (client's loop)", lambda r: r["read"]["seconds"]),
        ("paged read: pages", lambda r: r["read"]["pages"]),
        ("paged read: server CPU s", lambda r: r["read"]["server_cpu_s"]),
        ("paged read: client CPU s", lambda r: r["read"]["client_cpu_s"]),
        ("paged read: server RSS before (MB)", lambda r: r["read"]["server_rss_before_mb"]),
        ("paged read: server peak RSS (MB)", lambda r: r["read"]["server_peak_rss_mb"]),
        ("paged read: client RSS before (MB)", lambda r: r["read"]["client_rss_mb"]),
        ("paged read: client peak RSS (MB)", lambda r: r["read"]["client_peak_rss_mb"]),
        ("chart read: wall s", lambda r: r["chart"]["wall_s"]),
        ("chart read: server CPU s", lambda r: r["chart"]["server_cpu_s"]),
        ("chart read: server peak RSS (MB)", lambda r: r["chart"]["server_peak_rss_mb"]),
    ]
    columns = list(results["runs"])
    print(f"{'':38}" + "".join(f"{c:>22}" for c in columns))
    for label, value in rows:
        cells = []
        for c in columns:
            try:
                cells.append(f"{value(results['runs'][c]):22,.1f}")
            except (KeyError, TypeError):
                cells.append(f"{'-':>22}")
        print(f"{label:38}" + "".join(cells))
    for c in columns:
        chart = results["runs"][c]["chart"]
        print(f"chart answer {c}: {chart.get('points', chart.get('error'))}")
    print(
        f"load average before {results['load_before'][0]:.2f}, after "
        f"{results['load_after'][0]:.2f} ({os.cpu_count()} CPUs)"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--points", type=int, help="ours, the long history (10,000,000)")
    parser.add_argument("--mlflow-points", type=int, help="both servers (1,000,000)")
    parser.add_argument("--quick", action="store_true", help="200k ours, 100k both")
    parser.add_argument(
        "--servers", default="modelyard,mlflow", help="which to run (two processes can share)"
    )
    parser.add_argument(
        "--postgres",
        action="store_true",
        help="ours on a fresh PostgreSQL database (the server's RSS then excludes PostgreSQL's)",
    )
    parser.add_argument("--workdir", type=Path, help="where stores and logs go (a temp dir)")
    parser.add_argument("--json", type=Path, help="also write the figures to this file")
    parser.add_argument("--client", choices=["log", "read"], help=argparse.SUPPRESS)
    parser.add_argument("--url", help=argparse.SUPPRESS)
    parser.add_argument("--run-id", help=argparse.SUPPRESS)
    parser.add_argument("--n", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.client:
        client_main(args)
        return
    long = args.points or (200_000 if args.quick else 10_000_000)
    both = args.mlflow_points or (100_000 if args.quick else 1_000_000)
    work = args.workdir or Path(tempfile.mkdtemp(prefix="modelyard-bench-history-"))
    work.mkdir(parents=True, exist_ok=True)
    results: dict[str, Any] = {"load_before": os.getloadavg(), "runs": {}}
    wanted = args.servers.split(",")
    try:
        if "modelyard" in wanted:
            with postgres_database("auto" if args.postgres else None) as store_uri:
                if args.postgres and store_uri is None:
                    return
                server = start_modelyard(work, store_uri)
                try:
                    results["runs"][f"modelyard {both:,}"] = measure(server, both, ours=True)
                    results["runs"][f"modelyard {long:,}"] = measure(server, long, ours=True)
                finally:
                    server.stop()
        if "mlflow" in wanted:
            server = start_mlflow(work, None)
            try:
                results["runs"][f"mlflow {both:,}"] = measure(server, both, ours=False)
            finally:
                server.stop()
    finally:
        if not args.workdir:
            shutil.rmtree(work, ignore_errors=True)
    results["load_after"] = os.getloadavg()
    report(results)
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
